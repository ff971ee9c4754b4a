//! The server side of the sync core: the documents every kiosk replicates, the decisions on
//! kiosks' requests, and the leases that let kiosks book offline without conflicts.
//!
//! SQLite is the source of truth; the Automerge documents are projections of it. The order is
//! always: decide, write the verdicts and counts into the documents from SQLite and save them,
//! all in one transaction, and only after it has committed tell connected kiosks (the documents
//! stay locked until then). A document that missed a change made elsewhere (the counter, the
//! command line) is repaired by [`SyncHub::reconcile`], which rewrites the projections from
//! SQLite.
//!
//! - `hub`: [`SyncHub`], what every session shares: live sessions, document access, and the
//!   entry points (reconcile, process an outbox, republish after a change by the staff).
//! - `outbox`: deciding a kiosk's requests and writing the decisions.
//! - `leases`: settling and topping up a kiosk's leases (within its quotas).
//! - `quotas`: a kiosk's and its partner body's quotas and holdings, for the rules to count.
//! - `sandbox`: kiosks' changes parsed first in a child process with bounded memory and time.
//! - `project`: the documents written from SQLite (directory, ready list, operators, agendas,
//!   inboxes).
//! - `docs`: the in-memory documents and their persistence.
//! - `memo`: sync messages of the server's own documents made once for every kiosk in the same
//!   state (hundreds of kiosks in step are owed the same bytes after a booking).
//! - `changes`: how sessions learn which documents changed (shared ones numbered, and a group of
//!   sessions woken at its sending instant only if one changed; a kiosk's own waking its session
//!   alone).
//! - `handshake`: the challenge and the kiosk's answer (authentication or enrolment).
//! - `ws`: one WebSocket per kiosk: admission, then the sync loop.
//! - `upkeep`: what every live session needs now and then (its kiosk's last contact, a check
//!   that it is still enrolled and its documents unchanged), done by one task for all of them.
//!
//! None of these writes SQL: they call `crate::store`.

mod changes;
pub mod docs;
mod handshake;
mod hub;
mod leases;
mod memo;
mod outbox;
mod project;
mod quotas;
pub mod sandbox;
mod upkeep;
pub mod ws;

use std::collections::BTreeMap;

use coper_shared::{agenda::Agenda, decide::RequestLimits, ids::ServiceId};
use jiff::{Timestamp, civil::Date};

pub use hub::SyncHub;

use crate::store::{
    Connection, StoreError,
    services::{self, Service},
    settings::{self, Questura},
};

/// Tunables of the sync core.
#[derive(Debug, Clone, Copy)]
pub struct SyncConfig {
    /// Kiosks whose clock is further than this from the server's get no leases.
    pub clock_skew_bound_ms: i64,
    /// How long a lease lasts after it was last topped up.
    pub lease_ttl_ms: i64,
    /// Leases cover this many of the next open days of each service.
    pub lease_days: usize,
    /// What a kiosk's request may carry (`crate::limits::Limits::requests`).
    pub requests: RequestLimits,
    /// The most a kiosk's outbox may take in the store (`crate::limits::Limits::outbox_bytes`).
    pub outbox_bytes: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            clock_skew_bound_ms: 120_000,
            lease_ttl_ms: 24 * 3600 * 1000,
            lease_days: 3,
            requests: RequestLimits::default(),
            outbox_bytes: crate::limits::Limits::default().outbox_bytes,
        }
    }
}

/// What the sync core needs from the store to run the engine for every service.
struct Context {
    questura: Questura,
    services: Vec<Service>,
}

impl Context {
    fn load(conn: &Connection) -> Result<Option<Self>, StoreError> {
        let Some(questura) = settings::questura(conn)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            questura,
            services: services::services(conn)?,
        }))
    }

    fn agenda<'a>(&'a self, service: &'a Service) -> Agenda<'a> {
        Agenda::new(
            &service.rules,
            &self.questura.holidays,
            &self.questura.time_zone,
        )
    }

    fn agendas(&self) -> BTreeMap<ServiceId, Agenda<'_>> {
        self.services
            .iter()
            .map(|s| (s.id.clone(), self.agenda(s)))
            .collect()
    }

    fn today(&self, now: Timestamp) -> Date {
        now.to_zoned(self.questura.time_zone.clone()).date()
    }
}
