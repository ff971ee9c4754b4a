//! How the sessions learn which documents changed, without waking hundreds of them per booking,
//! nor any of them while nothing changes.
//!
//! A booking changes an agenda every kiosk replicates. Sessions send such changes only at their
//! group's next instant of a grid common to all ([`GATHER_SHARED`], [`GATHER_PHASES`]): each
//! change of a shared document ([`DocName::is_shared`]) takes the next number of a counter, and
//! at each instant of the grid one task ([`run_grid`]) wakes the sessions of that instant's group
//! if the counter moved since the group's last instant; each asks for the shared documents changed
//! since the number it last saw ([`SharedChanges::since`]). Before, every change woke every
//! session through one broadcast channel (200 wake-ups per booking for a change none of them
//! sends at once), and later each session woke at each of its instants to look (500 kiosks
//! connected and nothing happening: a thousand wake-ups a second).
//!
//! A kiosk's own documents (its inbox, its copy of its body's bookings, its operators) wake its
//! session alone ([`Session::take_own`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use coper_shared::documents::{DocName, KioskId};
use tokio::sync::{Notify, watch};

/// How long a session gathers changes to the documents many kiosks are sent for one booking
/// (the agendas, the ready list, the directory, the body's bookings) before sending them: one
/// message then carries every booking of the period, instead of each of hundreds of kiosks being
/// sent, and answering, one per booking. The inbox, which carries the kiosk's verdicts, goes at
/// once, so the period delays only what other offices see (a count half a second old; the
/// server decides every request anyway). `coper-loadgen round-trip`, 200 kiosks, one booking in
/// flight: 50 ms gave p99 68–74 ms, 500 ms (with `GATHER_PHASES`) 28–30 ms (docs/BENCHMARKS.md).
pub(super) const GATHER_SHARED: Duration = Duration::from_millis(500);
/// The sessions are split into this many groups, each sending at its own instants of the
/// `GATHER_SHARED` grid: a group's kiosks are sent the same bytes (their states are equal, so
/// the memo answers all but the first), and the groups take turns, so the work of one change
/// spreads over the period instead of falling at one instant (one group: p99 89 ms).
pub(super) const GATHER_PHASES: u64 = 16;

/// The grid's start, common to every session.
static EPOCH: std::sync::LazyLock<tokio::time::Instant> =
    std::sync::LazyLock::new(tokio::time::Instant::now);

/// The group of `kiosk`'s session on the grid.
fn group_of(kiosk: KioskId) -> usize {
    (kiosk.0.as_u128() % u128::from(GATHER_PHASES)) as usize
}

/// When `kiosk`'s session next sends the changes it gathered: the next instant of its group.
pub(super) fn gather_deadline(kiosk: KioskId) -> tokio::time::Instant {
    *EPOCH + next_gather(EPOCH.elapsed(), kiosk)
}

/// The first instant of `kiosk`'s group after `elapsed`, both counted from the grid's start.
fn next_gather(elapsed: Duration, kiosk: KioskId) -> Duration {
    let every = GATHER_SHARED.as_micros() as u64;
    let phase = group_of(kiosk) as u64 * every / GATHER_PHASES;
    let elapsed = elapsed.as_micros() as u64;
    let periods = if elapsed < phase {
        0
    } else {
        (elapsed - phase) / every + 1
    };
    Duration::from_micros(phase + periods * every)
}

/// The first instant of any group after `elapsed` (counted from the grid's start), and its group.
fn next_instant(elapsed: Duration) -> (Duration, usize) {
    let step = GATHER_SHARED.as_micros() as u64 / GATHER_PHASES;
    let n = elapsed.as_micros() as u64 / step + 1;
    (
        Duration::from_micros(n * step),
        (n % GATHER_PHASES) as usize,
    )
}

/// Keep the grid: at each instant, wake that group's sessions if a shared document changed since
/// the group's last instant. Ends once the hub (the last holder of `changes`) is gone.
pub(super) async fn run_grid(changes: Weak<SharedChanges>) {
    let step = GATHER_SHARED / GATHER_PHASES as u32;
    let (mut at, mut group) = next_instant(EPOCH.elapsed());
    loop {
        tokio::time::sleep_until(*EPOCH + at).await;
        let Some(changes) = changes.upgrade() else {
            return;
        };
        let latest = changes.latest();
        changes.groups[group].send_if_modified(|seen| {
            let moved = *seen != latest;
            *seen = latest;
            moved
        });
        // The next instant in turn, even when this one came late (a busy machine): every group
        // has its turn, late rather than a period later.
        at += step;
        group = (group + 1) % GATHER_PHASES as usize;
    }
}

/// The live session of each kiosk: a new one replaces the old (one WebSocket per kiosk).
pub type Sessions = Arc<LiveSessions>;
pub type LiveSessions = Mutex<HashMap<KioskId, Arc<Session>>>;

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
pub(super) struct SharedChanges {
    /// The number of the latest change: read without the lock to see that nothing changed.
    latest: AtomicU64,
    /// Each shared document's latest change.
    changed: Mutex<HashMap<DocName, u64>>,
    /// Per group of sessions, the latest change as of the group's last instant on the grid: its
    /// sessions wait for it to move ([`run_grid`]).
    groups: Vec<watch::Sender<u64>>,
}

impl Default for SharedChanges {
    fn default() -> Self {
        Self {
            latest: AtomicU64::default(),
            changed: Mutex::default(),
            groups: (0..GATHER_PHASES).map(|_| watch::Sender::new(0)).collect(),
        }
    }
}

impl SharedChanges {
    /// What `kiosk`'s session waits on: changed at an instant of its group when a shared
    /// document changed since the group's last instant.
    pub(super) fn instants_of(&self, kiosk: KioskId) -> watch::Receiver<u64> {
        self.groups[group_of(kiosk)].subscribe()
    }

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

    /// The kiosks of one group send at the same instant, within a period; the groups take turns
    /// on the same grid.
    #[test]
    fn a_group_sends_at_one_instant_and_the_groups_take_turns() {
        let kiosk = |n: u128| KioskId(uuid::Uuid::from_u128(n));
        let step = GATHER_SHARED / GATHER_PHASES as u32;
        for now in [0, 1, 31_249, 31_250, 499_999, 500_000, 7_777_777].map(Duration::from_micros) {
            let first = next_gather(now, kiosk(3));
            assert!(
                first > now && first <= now + GATHER_SHARED,
                "{now:?} {first:?}"
            );
            assert_eq!(
                next_gather(now, kiosk(3 + u128::from(GATHER_PHASES))),
                first,
                "the same group"
            );
            let mut instants: Vec<Duration> = (0..u128::from(GATHER_PHASES))
                .map(|n| next_gather(now, kiosk(n)))
                .collect();
            instants.sort();
            instants.dedup();
            assert_eq!(
                instants.len() as u64,
                GATHER_PHASES,
                "one instant per group"
            );
            for pair in instants.windows(2) {
                assert_eq!(pair[1] - pair[0], step, "evenly spread");
            }
            // At that instant, the group's next one is a whole period on.
            assert_eq!(next_gather(first, kiosk(3)), first + GATHER_SHARED);
        }
    }

    /// The grid's instants, one group after the other, are those of each group's own sessions,
    /// and the groups follow each other in turn.
    #[test]
    fn the_grid_wakes_each_group_at_its_own_instants() {
        let kiosk = |n: u128| KioskId(uuid::Uuid::from_u128(n));
        for now in [0, 1, 31_249, 31_250, 499_999, 500_000, 7_777_777].map(Duration::from_micros) {
            let (at, group) = next_instant(now);
            assert!(at > now && at <= now + GATHER_SHARED / GATHER_PHASES as u32);
            assert_eq!(next_gather(now, kiosk(group as u128)), at, "at {now:?}");
            // The instant after it, in turn, is the next group's.
            let next = (group as u128 + 1) % u128::from(GATHER_PHASES);
            assert_eq!(
                next_gather(at, kiosk(next)),
                at + GATHER_SHARED / GATHER_PHASES as u32
            );
        }
    }

    /// A group's sessions are woken when a shared document changed, once, and not while
    /// nothing changes (at which instant is `the_grid_wakes_each_group_at_its_own_instants`).
    #[tokio::test]
    async fn a_group_is_woken_only_when_something_changed() {
        let changes = Arc::new(SharedChanges::default());
        tokio::spawn(run_grid(Arc::downgrade(&changes)));
        let kiosk = |n: u128| KioskId(uuid::Uuid::from_u128(n));
        let (mut first, mut second) =
            (changes.instants_of(kiosk(0)), changes.instants_of(kiosk(1)));
        let quiet = tokio::time::timeout(GATHER_SHARED, first.changed()).await;
        assert!(quiet.is_err(), "nothing changed: no wake-up");
        changes.record(DocName::Ready);
        // Within a period, give or take a busy machine.
        let (one, two) = tokio::time::timeout(
            2 * GATHER_SHARED,
            futures_util::future::join(first.changed(), second.changed()),
        )
        .await
        .expect("both groups woken");
        one.unwrap();
        two.unwrap();
        let again = tokio::time::timeout(GATHER_SHARED, first.changed()).await;
        assert!(again.is_err(), "woken once for one change");
    }

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
