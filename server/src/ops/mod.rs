//! The service layer: every operation that changes the Questura's data, used alike by the pages,
//! the JSON API and the command line. Each runs on one database connection (usually in one
//! transaction, through `crate::store`) and returns, beside its answer, the [`Changes`] it made:
//! which synchronised documents must be rewritten and whether the live views must refresh.
//!
//! [`AppState::perform`](crate::AppState::perform) runs an operation and then publishes its
//! changes, so republishing documents and notifying live views happens in one place and cannot
//! be forgotten. The command line runs the same operations without a hub to publish to: a running
//! server rewrites every projection from SQLite on each kiosk's next connection.

pub mod agenda;
pub mod appointments;
pub mod checklists;
pub mod kiosks;
pub mod partners;
pub mod precheck;
pub mod ready;
pub mod settings;

use std::collections::BTreeSet;

use coper_shared::{
    documents::{DocName, KioskId},
    ids::ServiceId,
    jiff::{Timestamp, civil::Date},
};

/// Characters a reason typed by the staff may keep (a closure's note, a change of hours, a
/// removal): it goes to every kiosk of the bodies concerned and into the audit log.
pub const REASON_CHARS: usize = 200;

/// A reason as typed, made safe to store and send: trimmed, control characters as spaces, at
/// most [`REASON_CHARS`] characters (the forms stop there already; only a forged post is cut).
pub fn clean_reason(typed: &str) -> String {
    typed
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_CHARS)
        .collect()
}

/// Who does an operation, when and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user:ID`, `kiosk:ID`, `cli` or `system`.
    pub name: String,
    /// The browser's address, or empty.
    pub source: String,
    pub now: Timestamp,
}

impl Actor {
    /// An administrator at the command line.
    pub fn cli(now: Timestamp) -> Self {
        Self {
            name: "cli".into(),
            source: String::new(),
            now,
        }
    }
}

/// What an operation changed that others must learn.
#[must_use = "changes must be published: use AppState::perform"]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Agenda documents whose counts or leases changed.
    pub agendas: BTreeSet<DocName>,
    /// Kiosks whose verdicts changed (a booking moved or cancelled by the Questura).
    pub inboxes: BTreeSet<KioskId>,
    /// The documents every kiosk shares changed: the directory (settings, services, partner
    /// bodies), the ready list, or a partner body's operators.
    pub shared: bool,
    /// Appointments changed status, time or existence: the counter's live views refresh.
    pub appointments: bool,
}

impl Changes {
    pub fn none() -> Self {
        Self::default()
    }

    /// Only the shared documents changed.
    pub fn shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }

    /// Only appointments changed, nothing kiosks hold.
    pub fn appointments() -> Self {
        Self {
            appointments: true,
            ..Self::default()
        }
    }

    /// The agenda month of `service` holding `date` changed.
    pub fn agenda(mut self, service: &ServiceId, date: Date) -> Self {
        self.agendas.insert(DocName::agenda_for(service, date));
        self
    }

    /// Kiosk `kiosk`'s verdicts changed.
    pub fn inbox(mut self, kiosk: Option<KioskId>) -> Self {
        self.inboxes.extend(kiosk);
        self
    }

    /// Whether any synchronised document must be rewritten.
    pub fn touches_documents(&self) -> bool {
        self.shared || !self.agendas.is_empty() || !self.inboxes.is_empty()
    }
}
