//! `coper-kiosk`: the touchscreen application partner offices use to book deliveries, and the
//! public use to check whether a permit is ready.
//!
//! The UI lives in `ui/` as `.slint` files; Rust only sets properties and binds callbacks. For now
//! this opens the welcome window; the sync core and the screens come with their own issues.

slint::include_modules!();

pub mod core;
pub mod i18n;
pub mod reminder;

/// Open the kiosk's window and run until it is closed.
pub fn run() -> Result<(), slint::PlatformError> {
    let window = AppWindow::new()?;
    window.set_version(env!("CARGO_PKG_VERSION").into());
    window.run()
}
