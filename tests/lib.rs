//! `coper-e2e`: end-to-end tests and load generation against the real `coper-server` binary.
//!
//! - [`harness`]: start a server on a free port with a temporary database, talk to it, enrol
//!   kiosks. Used by the tests in `e2e/` and by `coper-loadgen`.
//! - [`proxy`]: the office's network between a kiosk and the server: cut it, or make it lossy.
//! - [`browser`]: headless Chromium through WebDriver, for the web pages.
//! - `e2e/`: the end-to-end tests, one module per area.
//! - `loadgen/`: the `coper-loadgen` binary, whose figures go to `docs/BENCHMARKS.md`.

pub mod browser;
pub mod harness;
pub mod proxy;
