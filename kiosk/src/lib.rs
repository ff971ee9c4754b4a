//! `coper-kiosk`: the touchscreen application partner offices use to book deliveries, and the
//! public use to check whether a permit is ready.
//!
//! - `ui/`: the screens (Slint): `api.slint` (the `Api` global, the whole contract with Rust),
//!   `pages/`, `components/`, and `app.slint`, the window; [`ui`] answers their callbacks with the
//!   kiosk core, one module per flow.
//! - [`core`]: the kiosk core without UI: local store, sync client, booking, login, checks.
//! - [`i18n`]: the eleven languages; [`reminder`]: the printed reminder (PDF and ESC/POS).
//! - [`cli`]: the `coper-kiosk` command line (run, enrol, reminder).

slint::include_modules!();

pub mod cli;
pub mod core;
pub mod i18n;
pub mod reminder;
pub mod speech;
pub mod ui;
