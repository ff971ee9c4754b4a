//! The `coper-kiosk` binary: everything is in the library, so tests and other front ends reuse it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    coper_kiosk::cli::main()
}
