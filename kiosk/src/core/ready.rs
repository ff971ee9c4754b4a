//! The ready list as the kiosk holds it (salted hashes, never names): the operator's search for
//! the person in front of them, and the public self-check, limited per kiosk so nobody can try
//! dates at length.

use std::time::Duration;

use coper_shared::{
    documents::{DocName, collections, records},
    ready_index::ReadyEntry,
};
use jiff::civil::Date;

use super::{KioskCore, limits::SlidingWindow};

/// Self-checks one kiosk answers per [`SELF_CHECK_WINDOW`].
pub const MAX_SELF_CHECKS: usize = 8;
const SELF_CHECK_WINDOW: Duration = Duration::from_secs(300);

pub(super) fn self_check_limit() -> SlidingWindow {
    SlidingWindow::new(MAX_SELF_CHECKS, SELF_CHECK_WINDOW)
}

/// The public self-check's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfCheck {
    ByName {
        surname: String,
        given_names: String,
        birth: Date,
        fingerprint: Date,
    },
    ByNumber {
        number: String,
        birth: Date,
    },
}

/// Why the self-check gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelfCheckRefusal {
    #[error("too many attempts at this kiosk: wait a few minutes")]
    TooManyAttempts,
    #[error("the kiosk has not received the list yet")]
    NoList,
}

impl KioskCore {
    fn ready_entries(&self) -> Vec<ReadyEntry> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Ready)
            .map(|doc| {
                records(doc, collections::PERMITS)
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The operator's check: the ready permit of the person with this surname, given names and
    /// birth date, if the list the server last sent has it.
    pub fn find_ready(&self, surname: &str, given_names: &str, birth: Date) -> Option<i64> {
        self.ready_entries()
            .into_iter()
            .find(|e| e.matches_name(surname, given_names, birth))
            .map(|e| e.permit)
    }

    /// The public self-check, offline: by name, birth date and fingerprinting date, or by
    /// receipt or pratica number with the birth date. Limited per kiosk, so nobody can try dates
    /// at length.
    pub fn self_check(&self, question: &SelfCheck) -> Result<bool, SelfCheckRefusal> {
        if !self.shared.self_checks.try_record() {
            return Err(SelfCheckRefusal::TooManyAttempts);
        }
        let entries = self.ready_entries();
        if entries.is_empty() && self.status().last_sync_ms.is_none() {
            return Err(SelfCheckRefusal::NoList);
        }
        Ok(entries.iter().any(|e| match question {
            SelfCheck::ByName {
                surname,
                given_names,
                birth,
                fingerprint,
            } => e.matches_person(surname, given_names, *birth, *fingerprint),
            SelfCheck::ByNumber { number, birth } => e.matches_number(number, *birth),
        }))
    }
}
