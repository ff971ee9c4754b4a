//! The ready list as the kiosk holds it (salted hashes, never names): the operator's search for
//! the person in front of them, and the public self-check, limited per kiosk so nobody can try
//! dates at length.

use std::time::Duration;

use coper_shared::{
    documents::{BookedPermit, DocName, collections, record, records},
    ids::ServiceId,
    precheck::PrecheckSummary,
    ready_index::{ReadyEntry, Stretch, TypedBirth},
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
    /// `birth` stretched, remembering the last one: the search and the booking that follows it
    /// check the same date, and each stretch costs tens of milliseconds.
    fn stretched(&self, stretch: &Stretch, birth: Date) -> TypedBirth {
        let id = stretch.id();
        let mut last = self
            .shared
            .last_birth
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((same_id, same_birth, keys)) = last.as_ref()
            && *same_id == id
            && *same_birth == birth
        {
            return keys.clone();
        }
        let keys = TypedBirth::new(stretch, birth);
        *last = Some((id, birth, keys.clone()));
        keys
    }

    /// The list the server last sent, and how its birth dates are stretched.
    fn ready_entries(&self) -> (Option<Stretch>, Vec<ReadyEntry>) {
        let inner = self.shared.lock();
        let Some(doc) = inner.docs.get(&DocName::Ready) else {
            return (None, Vec::new());
        };
        let entries = records(doc, collections::PERMITS)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        (record(doc, collections::SETTINGS, "stretch"), entries)
    }

    /// The operator's check: the ready permit of the person with this surname, given names and
    /// birth date, if the list the server last sent has it. The birth date is stretched once
    /// (Argon2id: call it off the UI thread).
    pub fn find_ready(&self, surname: &str, given_names: &str, birth: Date) -> Option<i64> {
        let (stretch, entries) = self.ready_entries();
        let birth = self.stretched(&stretch?, birth);
        entries
            .into_iter()
            .find(|e| e.matches_name(surname, given_names, &birth))
            .map(|e| e.permit)
    }

    /// The active booking ready permit `permit` already has for `service`, as the replica last
    /// heard it: the operator is told before booking the person again, and may move it.
    pub fn booked_already(&self, permit: i64, service: &ServiceId) -> Option<BookedPermit> {
        let inner = self.shared.lock();
        let doc = inner.docs.get(&DocName::Ready)?;
        record(
            doc,
            collections::BOOKED,
            &BookedPermit::key(permit, service),
        )
    }

    /// The document pre-check of ready permit `permit`, as the replica last heard it: whether it
    /// is complete and what is still to bring (no names, no link).
    pub fn precheck_of(&self, permit: i64) -> Option<PrecheckSummary> {
        let inner = self.shared.lock();
        let doc = inner.docs.get(&DocName::Ready)?;
        record(doc, collections::PRECHECK, &permit.to_string())
    }

    /// The person's pre-check page of a booking of this partner body, when the Questura opened
    /// one (in the body's bookings, kept in memory only).
    pub fn precheck_link(&self, request: uuid::Uuid) -> Option<String> {
        self.partner_bookings()
            .into_iter()
            .find(|b| b.request == Some(request))
            .and_then(|b| b.precheck_link)
    }

    /// The public self-check, offline: by name, birth date and fingerprinting date, or by
    /// receipt or pratica number with the birth date. Limited per kiosk, so nobody can try dates
    /// at length.
    pub fn self_check(&self, question: &SelfCheck) -> Result<bool, SelfCheckRefusal> {
        if !self.shared.self_checks.try_record() {
            return Err(SelfCheckRefusal::TooManyAttempts);
        }
        let (stretch, entries) = self.ready_entries();
        let Some(stretch) = stretch else {
            return Err(SelfCheckRefusal::NoList);
        };
        let birth = match question {
            SelfCheck::ByName { birth, .. } | SelfCheck::ByNumber { birth, .. } => {
                self.stretched(&stretch, *birth)
            }
        };
        Ok(entries.iter().any(|e| match question {
            SelfCheck::ByName {
                surname,
                given_names,
                fingerprint,
                ..
            } => e.matches_person(surname, given_names, &birth, *fingerprint),
            SelfCheck::ByNumber { number, .. } => e.matches_number(number, &birth),
        }))
    }
}
