//! The live sessions' upkeep, done for all of them at once by one task.
//!
//! Every connected kiosk needs the same two things now and then: its last contact written (its
//! partner body's page shows "2 min fa"), and a check that it is still enrolled (a revocation from
//! the command line reaches no session otherwise) and that its list of documents still holds (a
//! new month in the horizon is a new agenda, which its next session lists).
//!
//! Each session used to do both itself, on timers of its own and through the writing
//! connection. With 500 kiosks connected and nothing happening, that was 33 disk flushes a second
//! for the last contacts and 200 writer jobs a second for the checks, each loading the services'
//! rules again: 90 ms of processor a second and 333 KiB of disk writes a second for no work
//! (`coper-loadgen memory`, docs/BENCHMARKS.md). Here the last contacts of every live kiosk are
//! written in one transaction, and the checks run on a reading connection with the agendas of
//! the horizon worked out once for all the kiosks.
//!
//! A session the upkeep ends is told why ([`REVOKED`], [`DOCUMENTS_CHANGED`]); it tells a revoked
//! kiosk so before closing.

use std::{
    collections::HashSet,
    sync::{Arc, Weak},
    time::Duration,
};

use coper_shared::documents::KioskId;
use jiff::Timestamp;

use super::{
    changes::{LiveSessions, Session},
    hub::{agendas_in_horizon, documents_of},
};
use crate::{
    clock::Clock,
    store::{Db, StoreError, kiosks},
};

/// How often every live session is checked: its kiosk still enrolled, its documents unchanged.
const REVIEW_EVERY: Duration = Duration::from_secs(5);
/// How often every connected kiosk's last contact is written: often enough for "2 min fa".
const SEEN_EVERY: Duration = Duration::from_secs(15);

/// Why the upkeep ended a session: its kiosk was revoked (or removed).
pub(super) const REVOKED: &str = "revoked";
/// Why the upkeep ended a session: its kiosk's list of documents changed.
pub(super) const DOCUMENTS_CHANGED: &str = "documents changed";

/// Keep up the sessions in `sessions` until the last handle on them (the hub's) is gone.
pub(super) async fn run(sessions: Weak<LiveSessions>, db: Db, clock: Clock) {
    let mut review = tokio::time::interval(REVIEW_EVERY);
    let mut seen = tokio::time::interval(SEEN_EVERY);
    for timer in [&mut review, &mut seen] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: a session is checked and seen as it starts.
        timer.tick().await;
    }
    loop {
        let write_seen = tokio::select! {
            _ = review.tick() => false,
            _ = seen.tick() => true,
        };
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let live: Vec<(KioskId, Arc<Session>)> = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(kiosk, session)| (*kiosk, session.clone()))
            .collect();
        drop(sessions);
        if live.is_empty() {
            continue;
        }
        let done = if write_seen {
            seen_now(&db, clock.now(), &live).await
        } else {
            check(&db, clock.now(), &live).await.map(drop)
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "the sessions' upkeep failed: tried again at its next turn");
        }
    }
}

/// Write that every kiosk of `live` was heard from `now`, in one transaction.
async fn seen_now(
    db: &Db,
    now: Timestamp,
    live: &[(KioskId, Arc<Session>)],
) -> Result<(), StoreError> {
    let connected: Vec<KioskId> = live.iter().map(|(kiosk, _)| *kiosk).collect();
    db.call(move |conn| {
        let tx = conn.transaction()?;
        kiosks::seen(&tx, &connected, now)?;
        Ok(tx.commit()?)
    })
    .await
}

/// End the sessions of `live` whose kiosk was revoked or whose documents changed as of `now`;
/// which ended, and why.
async fn check(
    db: &Db,
    now: Timestamp,
    live: &[(KioskId, Arc<Session>)],
) -> Result<Vec<(KioskId, &'static str)>, StoreError> {
    let connected: Vec<KioskId> = live.iter().map(|(kiosk, _)| *kiosk).collect();
    let (agendas, revoked) = db
        .read(move |conn| {
            let mut revoked = HashSet::new();
            for kiosk in connected {
                if kiosks::is_revoked(conn, kiosk)? {
                    revoked.insert(kiosk);
                }
            }
            Ok::<_, StoreError>((agendas_in_horizon(conn, now)?, revoked))
        })
        .await?;
    let mut ended = Vec::new();
    for (kiosk, session) in live {
        let why = if revoked.contains(kiosk) {
            REVOKED
        } else if session
            .documents()
            .is_some_and(|names| *names != documents_of(*kiosk, &agendas))
        {
            DOCUMENTS_CHANGED
        } else {
            continue;
        };
        session.end(why);
        ended.push((*kiosk, why));
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coper_shared::documents::DocName;

    /// A database with the demo's Questura and services, and three kiosks of partner body 1
    /// enrolled as a kiosk enrols (a code, redeemed with a key).
    fn database(dir: &std::path::Path) -> (Db, Vec<KioskId>) {
        let db = Db::open(&dir.join("t.sqlite3")).unwrap();
        let now = Timestamp::now();
        let kiosks = db.call_blocking(|conn| {
            crate::demo::seed(conn, now).unwrap();
            (1..=3u8)
                .map(|n| {
                    let code = kiosks::issue_code(conn, 1, "upkeep", 1, now, "test")
                        .unwrap()
                        .unwrap();
                    kiosks::redeem(conn, &code, &[n; 32], now)
                        .unwrap()
                        .unwrap()
                        .0
                })
                .collect()
        });
        (db, kiosks)
    }

    fn live_session(kiosk: KioskId, documents: Vec<DocName>) -> (KioskId, Arc<Session>) {
        let session = Arc::new(Session::default());
        session.set_documents(documents);
        (kiosk, session)
    }

    /// The check ends the session of a revoked kiosk and that of a kiosk whose documents are no
    /// longer the horizon's, and only those; each session learns why.
    #[tokio::test]
    async fn the_check_ends_revoked_and_outdated_sessions_only() {
        let dir = tempfile::tempdir().unwrap();
        let (db, k) = database(dir.path());
        let now = Timestamp::now();
        let agendas = db
            .read(move |conn| agendas_in_horizon(conn, now))
            .await
            .unwrap();
        let Some(DocName::Agenda { service, .. }) = agendas.first().cloned() else {
            panic!("the demo's services have agendas: {agendas:?}");
        };
        let revoked = k[1].to_string();
        db.call_blocking(|conn| kiosks::revoke(conn, &revoked, now, "test"))
            .unwrap()
            .unwrap();
        // Kiosk 3's session started before a month left the horizon: one agenda too many.
        let gone = DocName::Agenda {
            service,
            year: 2000,
            month: 1,
        };
        let live = vec![
            live_session(k[0], documents_of(k[0], &agendas)),
            live_session(k[1], documents_of(k[1], &agendas)),
            live_session(k[2], documents_of(k[2], &[vec![gone], agendas].concat())),
        ];
        let ended = check(&db, now, &live).await.unwrap();
        assert_eq!(ended, vec![(k[1], REVOKED), (k[2], DOCUMENTS_CHANGED)]);
        assert_eq!(live[1].1.ended().await, REVOKED);
        assert_eq!(live[2].1.ended().await, DOCUMENTS_CHANGED);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), live[0].1.ended())
                .await
                .is_err(),
            "kiosk 1's session goes on"
        );
    }

    /// Every connected kiosk's last contact is written at once, and only theirs.
    #[tokio::test]
    async fn every_connected_kiosk_is_seen_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let (db, k) = database(dir.path());
        let now = Timestamp::now();
        let live = vec![
            live_session(k[0], Vec::new()),
            live_session(k[2], Vec::new()),
        ];
        seen_now(&db, now, &live).await.unwrap();
        let listed = db.call_blocking(|conn| kiosks::kiosks_of(conn, 1)).unwrap();
        let seen_of = |kiosk: KioskId| {
            listed
                .iter()
                .find(|listed| listed.id == kiosk.to_string())
                .and_then(|listed| listed.last_seen_at.clone())
        };
        let at = Some(crate::store::instant_text(now));
        assert_eq!(
            [seen_of(k[0]), seen_of(k[1]), seen_of(k[2])],
            [at.clone(), None, at]
        );
    }
}
