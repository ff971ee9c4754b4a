//! The administration pages (role admin), one module per page group: `home`, `settings` (the
//! Questura), `services` (a service's rules in the `editor`, with a preview), `close_day`,
//! `partners` (with their operators and kiosks), `permits` (the ready-list import),
//! `appointments` (search, export, cancellation), `precheck` (the pre-check's documents, checklists
//! and answers) and `audit`. Every change goes through
//! `crate::ops`, which tells the kiosks and the live views.

pub mod appointments;
pub mod audit;
pub mod close_day;
pub mod editor;
pub mod home;
pub mod missed;
pub mod moved;
pub mod notices;
pub mod partners;
pub mod permits;
pub mod precheck;
pub mod ready_list;
pub mod services;
pub mod settings;
