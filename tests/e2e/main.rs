//! End-to-end tests: the real `coper-server` binary, a real SQLite file in a temporary folder, real
//! HTTP and WebSockets on loopback. One test binary, one module per area, helpers in `helpers`.

mod access;
mod admin;
mod agenda;
mod auth;
mod counter;
mod deployment;
mod faults;
mod hardening;
mod helpers;
mod kiosk;
mod kiosk_ui;
mod notices;
mod precheck;
mod public;
mod server;
mod sync;
