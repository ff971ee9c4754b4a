//! How the sessions learn which documents changed, without waking hundreds of them per booking.
//!
//! A booking changes an agenda every kiosk replicates. Sessions send such changes only at their
//! group's next instant of a common grid anyway (`ws::gather_deadline`), so they are not woken
//! for them: each change of a shared document ([`DocName::is_shared`]) takes the next number of a
//! counter, and a session, when its instant comes, asks for the shared documents changed since
//! the number it last saw ([`SharedChanges::since`]), one atomic read when nothing changed. Before,
//! every change woke every session through one broadcast channel: 200 wake-ups per booking for
//! a change none of them sends at once.
//!
//! A kiosk's own documents (its inbox, its copy of its body's bookings, its operators) wake its
//! session alone ([`Session::take_own`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use coper_shared::documents::{DocName, KioskId};
use tokio::sync::Notify;

/// The live session of each kiosk: a new one replaces the old (one WebSocket per kiosk).
pub type Sessions = Arc<Mutex<HashMap<KioskId, Arc<Session>>>>;

/// End the live sessions of `kiosks` (their kiosks reconnect).
pub(super) fn end_sessions(sessions: &Sessions, kiosks: &[KioskId], why: &'static str) {
    let sessions = sessions.lock().unwrap_or_else(|p| p.into_inner());
    for kiosk in kiosks {
        if let Some(session) = sessions.get(kiosk) {
            session.end(why);
        }
    }
}

/// The changes to the documents every kiosk receives, numbered.
#[derive(Default)]
pub(super) struct SharedChanges {
    /// The number of the latest change: read without the lock to see that nothing changed.
    latest: AtomicU64,
    /// Each shared document's latest change.
    changed: Mutex<HashMap<DocName, u64>>,
}

impl SharedChanges {
    /// `name` changed.
    pub(super) fn record(&self, name: DocName) {
        let mut changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        // Numbered under the lock, so a reader that sees the number sees the document too.
        let number = self.latest.load(Ordering::Relaxed) + 1;
        changed.insert(name, number);
        self.latest.store(number, Ordering::Release);
    }

    /// The number of the latest change: what a session has seen when it starts sending.
    pub(super) fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// The shared documents changed after change number `*seen`, which becomes the latest.
    pub(super) fn since(&self, seen: &mut u64) -> Vec<DocName> {
        if self.latest() == *seen {
            return Vec::new();
        }
        let changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        let after = *seen;
        *seen = self.latest.load(Ordering::Relaxed);
        changed
            .iter()
            .filter(|(_, number)| **number > after)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// A live session of one kiosk: told when it must end (a newer one replaces it, its body's
/// bookings started afresh), and when the kiosk's own documents change.
#[derive(Default)]
pub struct Session {
    ended: Notify,
    why: OnceLock<&'static str>,
    own_changed: Notify,
    own: Mutex<HashSet<DocName>>,
    /// The documents the kiosk was told it replicates, once the session has told it.
    documents: OnceLock<Vec<DocName>>,
}

impl Session {
    /// End the session, for the reason `why` (logged).
    pub(super) fn end(&self, why: &'static str) {
        let _ = self.why.set(why);
        self.ended.notify_one();
    }

    /// The kiosk was told it replicates `names` (checked by the upkeep against the horizon).
    pub(super) fn set_documents(&self, names: Vec<DocName>) {
        let _ = self.documents.set(names);
    }

    /// The documents the kiosk was told it replicates, if it was told yet.
    pub(super) fn documents(&self) -> Option<&[DocName]> {
        self.documents.get().map(Vec::as_slice)
    }

    /// Wait until the session must end; why.
    pub(super) async fn ended(&self) -> &'static str {
        self.ended.notified().await;
        self.why.get().copied().unwrap_or("ended")
    }

    /// The kiosk's own document `name` changed: its session wakes.
    pub(super) fn tell(&self, name: DocName) {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name);
        self.own_changed.notify_one();
    }

    /// Wait until one of the kiosk's own documents changed, then take which.
    pub(super) async fn take_own(&self) -> HashSet<DocName> {
        loop {
            let taken = std::mem::take(&mut *self.own.lock().unwrap_or_else(|p| p.into_inner()));
            if !taken.is_empty() {
                return taken;
            }
            self.own_changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session sees each shared change once, however many there were since it last looked,
    /// and nothing when nothing changed.
    #[test]
    fn a_session_sees_every_shared_change_once() {
        let changes = SharedChanges::default();
        let mut seen = changes.latest();
        assert!(changes.since(&mut seen).is_empty());
        changes.record(DocName::Directory);
        changes.record(DocName::Ready);
        changes.record(DocName::Directory);
        let mut got = changes.since(&mut seen);
        got.sort();
        assert_eq!(got, vec![DocName::Directory, DocName::Ready]);
        assert!(changes.since(&mut seen).is_empty());
        // A session that started later sees only what changed after it started.
        let mut later = changes.latest();
        changes.record(DocName::Ready);
        assert_eq!(changes.since(&mut later), vec![DocName::Ready]);
        assert_eq!(changes.since(&mut seen), vec![DocName::Ready]);
    }

    /// A change made while the session was busy is taken at its next wait, not lost.
    #[tokio::test]
    async fn an_own_change_told_before_the_wait_is_taken() {
        let session = Session::default();
        let inbox = DocName::Inbox(coper_shared::documents::KioskId(uuid::Uuid::from_u128(1)));
        session.tell(inbox.clone());
        let taken = session.take_own().await;
        assert_eq!(taken, HashSet::from([inbox]));
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), session.take_own());
        assert!(waiting.await.is_err(), "nothing more was told");
    }
}
