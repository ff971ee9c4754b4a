//! What the core says of itself: the status bar's figures, a notification whenever they or the
//! documents change (so screens are pushed changes rather than polling), and the inspection hooks
//! tests and diagnostics use (documents, heads, raw records).

use std::path::Path;

use coper_shared::documents::{DocName, KioskId, records};
use jiff::Timestamp;

use super::{BookingStatus, KioskCore, replica};

/// What the sync status bar shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub online: bool,
    /// Requests written here that the server has not decided yet.
    pub pending: usize,
    pub last_sync_ms: Option<i64>,
    pub clock_trusted: bool,
    /// Leased places this kiosk can still book today without the network, all services.
    pub lease_places_today: u32,
    /// Set when the server refused this kiosk (revoked, unknown): a person must act.
    pub refused: Option<String>,
    /// Online, and every document holds everything the server last said it has.
    pub up_to_date: bool,
}

impl KioskCore {
    pub fn kiosk_id(&self) -> KioskId {
        self.shared.lock().kiosk
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.config.data_dir
    }

    pub fn now(&self) -> Timestamp {
        self.shared.config.now()
    }

    /// Call `changed` (on the core's runtime) after anything the screens show may have changed:
    /// a document received or written, the connection opened, lost or refused. Changes that come
    /// quickly one after another may be reported once.
    pub fn on_change(&self, changed: impl Fn() + Send + 'static) {
        let mut changes = self.shared.changes.subscribe();
        self.runtime.spawn(async move {
            while changes.changed().await.is_ok() {
                changed();
            }
        });
    }

    pub fn status(&self) -> SyncStatus {
        let inner = self.shared.lock();
        let now = self.now();
        let bookings = replica::bookings(&inner);
        let pending = bookings
            .iter()
            .filter(|b| {
                matches!(
                    b.status,
                    BookingStatus::Pending { .. } | BookingStatus::CancelPending
                )
            })
            .count();
        let lease_places_today = replica::services(&inner.docs)
            .into_iter()
            .filter_map(|(id, _)| replica::View::build(&inner, &id, now).ok())
            .map(|view| view.lease_places_on(now.to_zoned(view.tz.clone()).date()))
            .sum();
        SyncStatus {
            online: inner.online,
            pending,
            last_sync_ms: inner.last_sync_ms,
            clock_trusted: inner.clock_trusted,
            lease_places_today,
            refused: inner.refused.clone(),
            up_to_date: inner.online
                && !inner.session_docs.is_empty()
                && inner.session_docs.values().all(|synced| *synced),
        }
    }

    /// The heads of one local document, for convergence checks.
    pub fn heads(&self, name: &DocName) -> Vec<automerge::ChangeHash> {
        let mut inner = self.shared.lock();
        inner
            .docs
            .get_mut(name)
            .map(|d| d.get_heads())
            .unwrap_or_default()
    }

    /// Every record of one collection of a local document, as raw JSON: for tests that check
    /// what reached this kiosk.
    pub fn raw_records(
        &self,
        name: &DocName,
        collection: &str,
    ) -> Vec<(String, serde_json::Value)> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(name)
            .map(|d| records(d, collection))
            .unwrap_or_default()
    }

    /// Documents of the current session not yet in step with the server: for diagnostics.
    pub fn unsettled_documents(&self) -> Vec<DocName> {
        let inner = self.shared.lock();
        let mut names: Vec<DocName> = inner
            .session_docs
            .iter()
            .filter(|(_, synced)| !**synced)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Names of the documents held locally.
    pub fn documents(&self) -> Vec<DocName> {
        let inner = self.shared.lock();
        let mut names: Vec<DocName> = inner.docs.keys().cloned().collect();
        names.sort();
        names
    }
}
