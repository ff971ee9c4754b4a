//! The `coper-kiosk` binary: everything is in the library, so tests and other front ends reuse it.

fn main() -> Result<(), slint::PlatformError> {
    coper_kiosk::run()
}
