//! Test 7. A randomised fault campaign, replayable by seed: several kiosks book while their
//! offices go offline and back, kiosks restart, the server is killed and restarted, and a proxy
//! between each kiosk and the server drops, duplicates, delays and reorders WebSocket messages.
//! When the dust settles, the seven invariants of SYNC.md must hold.
//!
//! Every seed first plays a prologue that forces an offline booking inside a lease and a
//! relocation; the random walk then kills the server at least once and restarts a kiosk at least
//! once, and the campaign checks at the end that each kind of fault (kill, restart, drop,
//! duplicate, reorder, offline lease booking, relocation) really happened.
//!
//! CI runs the regression seeds and the day's seed, printed so a failure can be replayed.
//! `COPER_FAULT_SEEDS=1000` runs a thousand (`COPER_FAULT_FROM=5000` from seed 5000); `COPER_FAULT_SEED=42` replays one (the fault
//! decisions and the actions come from the seed; thread timing still varies).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::helpers::{
    Faults, Options, Proxy, TestApp, TestKiosk, delivery, eventually, overbooked_slots, spawn_demo,
    spawn_in,
};
use automerge::{AutoCommit, ChangeHash};
use coper_kiosk::core::{BookingStatus, CoreError};
use coper_shared::documents::{DocName, Outcome, Request, collections};

/// Probabilities, in percent, of what happens to each WebSocket message crossing a proxy.
const FAULTS: Faults = Faults {
    drop: 3,
    duplicate: 5,
    delay: 10,
};

/// Seeds replayed on every run besides the day's seed: the three CI has always run. A seed that
/// finds a bug is added here with the bug's commit.
const REGRESSION_SEEDS: &[u64] = &[1, 2, 3];

/// What the campaign did, so it can check that every kind of fault really happened.
#[derive(Debug, Default)]
struct Happened {
    kills: usize,
    kiosk_restarts: usize,
    offline_lease_bookings: usize,
    /// Relocations the prologue forced and saw decided.
    relocations: usize,
    /// Relocated verdicts the kiosks hold at the end.
    relocated_verdicts: usize,
}

/// The server's saved copy of a document, loaded from its SQLite file as the server would.
fn server_doc(app: &TestApp, name: &DocName) -> Option<AutoCommit> {
    let db = app.database();
    let snapshot: Vec<u8> = db
        .query_row(
            "SELECT snapshot FROM sync_documents WHERE name = ?1",
            [name.to_string()],
            |r| r.get(0),
        )
        .ok()?;
    let mut doc = AutoCommit::load(&snapshot).unwrap();
    let mut stmt = db
        .prepare("SELECT bytes FROM sync_document_changes WHERE name = ?1 ORDER BY seq")
        .unwrap();
    for bytes in stmt
        .query_map([name.to_string()], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
    {
        doc.load_incremental(&bytes.unwrap()).unwrap();
    }
    Some(doc)
}

fn server_heads(app: &TestApp, name: &DocName) -> Vec<ChangeHash> {
    server_doc(app, name)
        .map(|mut d| d.get_heads())
        .unwrap_or_default()
}

/// Whether the server's saved copy of `name` holds every one of `heads`.
fn server_has(app: &TestApp, name: &DocName, heads: &[ChangeHash]) -> bool {
    server_doc(app, name)
        .is_some_and(|mut d| heads.iter().all(|h| d.get_change_by_hash(h).is_some()))
}

/// The requests in `kiosk`'s outbox.
fn requests_of(kiosk: &TestKiosk) -> Vec<Request> {
    kiosk
        .core
        .raw_records(
            &DocName::Outbox(kiosk.core.kiosk_id()),
            collections::REQUESTS,
        )
        .into_iter()
        .map(|(_, raw)| serde_json::from_value(raw).unwrap())
        .collect()
}

/// Whether `kiosk`'s replica shows it holding a lease.
fn holds_a_lease(kiosk: &TestKiosk) -> bool {
    let me = kiosk.core.kiosk_id().to_string();
    kiosk.core.documents().iter().any(|name| {
        matches!(name, DocName::Agenda { .. })
            && kiosk
                .core
                .raw_records(name, collections::LEASES)
                .iter()
                .any(|(key, _)| key.starts_with(&me))
    })
}

/// Every verdict the kiosks have seen, for the durability check after a kill.
fn verdicts_seen(kiosks: &[Option<TestKiosk>], seen: &mut BTreeMap<uuid::Uuid, Outcome>) {
    for kiosk in kiosks.iter().flatten() {
        for b in kiosk.core.bookings() {
            if let Some(v) = kiosk.core.verdict(b.request) {
                seen.insert(b.request, v.outcome);
            }
        }
    }
}

/// The prologue every seed plays first, so that the faults a random walk may miss happen at
/// least once: kiosk 0's office goes offline and books inside its lease and then beyond it, on
/// a slot kiosk 1 fills meanwhile, so the server relocates the offline booking when the office
/// is back.
async fn offline_lease_and_relocation(
    seed: u64,
    kiosks: &[Option<TestKiosk>],
    proxies: &[Proxy],
    happened: &mut Happened,
) {
    let (first, second) = (kiosks[0].as_ref().unwrap(), kiosks[1].as_ref().unwrap());
    eventually(60, "kiosk 0 holds a lease", || {
        holds_a_lease(first) && first.core.status().up_to_date
    })
    .await;
    eventually(60, "kiosk 1 is up to date", || {
        second.core.status().up_to_date
    })
    .await;
    proxies[0].cut();
    let mut beyond = None;
    for n in 0..8 {
        let earliest = first
            .core
            .first_free(&delivery())
            .unwrap()
            .unwrap_or_else(|| panic!("seed {seed}: no free slot offline"));
        // A leased place first, whichever day the lease is on (the earliest free slot may be on
        // a day the kiosk holds none, depending on the hour the campaign runs); then beyond.
        let from = earliest.slot.date.to_datetime(earliest.slot.start);
        let proposal = first
            .core
            .options(&delivery(), from, 14)
            .unwrap()
            .into_iter()
            .find(|p| p.lease.is_some())
            .unwrap_or(earliest);
        let booked = first
            .core
            .book(
                &delivery(),
                proposal.slot.key(),
                &format!("Persona 0-p{n}"),
                "Test",
                None,
            )
            .unwrap();
        let request = requests_of(first)
            .into_iter()
            .find(|r| r.id == booked.request)
            .unwrap();
        if request.lease.is_some() {
            happened.offline_lease_bookings += 1;
        } else {
            beyond = Some((proposal.slot.key(), booked.request));
            break;
        }
    }
    let (slot, offline) =
        beyond.unwrap_or_else(|| panic!("seed {seed}: every offline booking was leased"));
    for n in 0.. {
        match second
            .core
            .book(&delivery(), slot, &format!("Persona 1-p{n}"), "Test", None)
        {
            Ok(b) => {
                let verdict = second
                    .core
                    .wait_for_verdict(b.request, Duration::from_secs(30))
                    .await
                    .unwrap_or_else(|| panic!("seed {seed}: no verdict while filling a slot"));
                if verdict.outcome != Outcome::Confirmed {
                    // The server found the slot full before this replica learnt it (the agenda
                    // can arrive after the verdict through a faulty link): wait for it to learn.
                    eventually(60, "the second kiosk sees the slot full", || {
                        !second
                            .core
                            .times_of(&delivery(), slot.date)
                            .unwrap()
                            .iter()
                            .any(|p| p.slot.key() == slot)
                    })
                    .await;
                    break;
                }
            }
            Err(CoreError::SlotNotFree) => break,
            Err(e) => panic!("seed {seed}: {e}"),
        }
        assert!(n < 20, "seed {seed}: the slot never filled");
    }
    proxies[0].restore();
    // Decided before the random walk starts, so no cancellation can free its place first.
    let verdict = first
        .core
        .wait_for_verdict(offline, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("seed {seed}: the offline booking was never decided"));
    assert_eq!(
        verdict.outcome,
        Outcome::Relocated,
        "seed {seed}: the filled slot's offline booking"
    );
    happened.relocations += 1;
}

async fn campaign(seed: u64, steps: usize) {
    // Room for a kill and a restart at distinct steps.
    let steps = steps.max(4);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut app = spawn_demo().await;
    app.set_lease_places(1);
    let mut proxies = Vec::new();
    let mut kiosks = Vec::new();
    for partner in 1..=3 {
        let proxy = Proxy::with_faults(app.addr(), rng.u64(..), FAULTS).await;
        // Enrol straight to the server; sync through the faulty proxy.
        let mut kiosk = TestKiosk::enrol(&app, partner, &app.ws_url()).await;
        kiosk = kiosk.reconnect_via(&proxy.url()).await;
        proxies.push(proxy);
        kiosks.push(Some(kiosk));
    }
    let mut happened = Happened::default();
    offline_lease_and_relocation(seed, &kiosks, &proxies, &mut happened).await;
    // The server is killed at least once, and a kiosk restarted at least once, at a random step.
    let kill_at = steps / 4 + rng.usize(..steps / 2);
    let restart_at = match rng.usize(..steps) {
        at if at == kill_at => (at + 1) % steps,
        at => at,
    };
    let mut seen: BTreeMap<uuid::Uuid, Outcome> = BTreeMap::new();
    for step in 0..steps {
        let i = rng.usize(..kiosks.len());
        let roll = rng.u8(0..100);
        let roll = if step == kill_at {
            99
        } else if step == restart_at {
            90
        } else {
            roll
        };
        match roll {
            0..=54 => {
                let kiosk = kiosks[i].as_ref().unwrap();
                let proposal = match kiosk.core.first_free(&delivery()) {
                    Ok(Some(p)) => p,
                    Ok(None) | Err(CoreError::NoAgenda) => continue,
                    Err(e) => panic!("seed {seed} step {step}: {e}"),
                };
                match kiosk.core.book(
                    &delivery(),
                    proposal.slot.key(),
                    &format!("Persona {i}-{step}"),
                    "Test",
                    None,
                ) {
                    Ok(_) | Err(CoreError::SlotNotFree) => {}
                    Err(e) => panic!("seed {seed} step {step}: {e}"),
                }
            }
            55..=62 => {
                let kiosk = kiosks[i].as_ref().unwrap();
                if let Some(b) = kiosk
                    .core
                    .bookings()
                    .into_iter()
                    .find(|b| b.status == BookingStatus::Confirmed)
                {
                    kiosk.core.cancel(b.request).unwrap();
                }
            }
            63..=77 => proxies[i].cut(),
            78..=89 => proxies[i].restore(),
            90..=95 => {
                let kiosk = kiosks[i].take().unwrap();
                kiosks[i] = Some(kiosk.restart().await);
                happened.kiosk_restarts += 1;
            }
            _ if step == kill_at || happened.kills < 2 => {
                verdicts_seen(&kiosks, &mut seen);
                assert!(!app.signal_and_wait("KILL").success());
                happened.kills += 1;
                let dir = app.keep_data();
                let data_dir = app.data_dir.clone();
                drop(app);
                app = spawn_in(&data_dir, Options::default(), dir).await;
                for proxy in &proxies {
                    proxy.retarget(app.addr());
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..30))).await;
    }
    for proxy in &proxies {
        proxy.restore();
    }
    let kiosks: Vec<TestKiosk> = kiosks.into_iter().flatten().collect();
    let settled = || {
        kiosks.iter().all(|k| {
            let s = k.core.status();
            s.up_to_date && s.pending == 0
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !settled() {
        if std::time::Instant::now() > deadline {
            for k in &kiosks {
                eprintln!(
                    "seed {seed}: kiosk {} {:?}",
                    k.core.kiosk_id(),
                    k.core.status()
                );
            }
            panic!("seed {seed}: the kiosks did not settle");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let db = app.database();
    // 1. Places: never more confirmed appointments in a slot than its places.
    assert_eq!(
        overbooked_slots(&db),
        0,
        "seed {seed}: a slot is overbooked"
    );
    for kiosk in &kiosks {
        let me = kiosk.core.kiosk_id();
        let requests: Vec<(String, serde_json::Value)> = kiosk
            .core
            .raw_records(&DocName::Outbox(me), collections::REQUESTS);
        for (id, raw) in &requests {
            let request: Request = serde_json::from_value(raw.clone()).unwrap();
            // 2. Nothing lost: every request has a verdict on the server, and the kiosk knows it.
            let stored: String = db
                .query_row(
                    "SELECT outcome FROM sync_verdicts WHERE request_id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap_or_else(|_| panic!("seed {seed}: request {id} has no verdict"));
            let local = kiosk
                .core
                .verdict(request.id)
                .unwrap_or_else(|| panic!("seed {seed}: kiosk lacks verdict {id}"));
            assert_eq!(
                stored,
                format!("{:?}", local.outcome).to_lowercase(),
                "seed {seed}"
            );
            happened.relocated_verdicts += usize::from(local.outcome == Outcome::Relocated);
            // 3. Leases: a booking inside a lease is confirmed where it asked.
            if request.lease.is_some() {
                assert_eq!(
                    local.outcome,
                    Outcome::Confirmed,
                    "seed {seed}: lease request {id}"
                );
                assert_eq!(
                    (local.date, local.time),
                    (request.date, request.time),
                    "seed {seed}"
                );
            }
            // 5. Idempotence: at most one appointment per request.
            let n: i64 = db
                .query_row(
                    "SELECT count(*) FROM appointments WHERE request_id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(n <= 1, "seed {seed}: request {id} booked {n} times");
        }
        // 4. Convergence: every document the kiosk holds has the server's heads (allowing the
        // last messages in flight a moment to land).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let diverged: Vec<(DocName, Vec<ChangeHash>, Vec<ChangeHash>)> = kiosk
                .core
                .documents()
                .into_iter()
                .filter_map(|name| {
                    let mut server = server_heads(&app, &name);
                    let mut local = kiosk.core.heads(&name);
                    server.sort();
                    local.sort();
                    (!server.is_empty() && server != local).then_some((name, local, server))
                })
                .collect();
            if diverged.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let behind: Vec<bool> = diverged
                    .iter()
                    .map(|(name, local, _)| server_has(&app, name, local))
                    .collect();
                panic!(
                    "seed {seed}: diverged (document, kiosk heads, server heads): {diverged:?}; \
                     kiosk behind the server: {behind:?}; kiosk status {:?}",
                    kiosk.core.status()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // 7. Privacy: only its own outbox and inbox, and no other partner body's names in
        // anything it holds.
        let mine = kiosks.iter().position(|k| k.core.kiosk_id() == me).unwrap();
        for name in kiosk.core.documents() {
            assert!(name.readable_by(me), "seed {seed}: {name} reached {me}");
            for (key, record) in all_records(kiosk, &name) {
                let text = format!("{key} {record}");
                for other in (0..kiosks.len()).filter(|&o| o != mine) {
                    assert!(
                        !text.contains(&format!("Persona {other}-")),
                        "seed {seed}: kiosk {mine} holds kiosk {other}'s person in {name}"
                    );
                }
            }
        }
    }
    // 6. Durability: every verdict a kiosk had seen before the kill is on the server, unchanged.
    for (request, outcome) in seen {
        let stored: String = db
            .query_row(
                "SELECT outcome FROM sync_verdicts WHERE request_id = ?1",
                [request.to_string()],
                |r| r.get(0),
            )
            .unwrap_or_else(|_| panic!("seed {seed}: seen verdict {request} lost"));
        assert_eq!(stored, format!("{outcome:?}").to_lowercase(), "seed {seed}");
    }
    let distinct: BTreeSet<String> = {
        let mut stmt = db.prepare("SELECT request_id FROM sync_verdicts").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let verdicts: i64 = db
        .query_row("SELECT count(*) FROM sync_verdicts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        distinct.len() as i64,
        verdicts,
        "seed {seed}: one verdict per request"
    );
    // Every kind of fault happened at least once, so the invariants were tested against each.
    let carried = proxies
        .iter()
        .map(Proxy::counts)
        .fold((0, 0, 0), |(d, u, r), c| {
            (d + c.dropped, u + c.duplicated, r + c.delayed)
        });
    eprintln!("seed {seed}: {happened:?}, (dropped, duplicated, delayed) {carried:?}");
    assert!(
        happened.kills >= 1,
        "seed {seed}: the server was never killed"
    );
    assert!(
        happened.kiosk_restarts >= 1,
        "seed {seed}: no kiosk restarted"
    );
    assert!(
        happened.offline_lease_bookings >= 1,
        "seed {seed}: no offline booking inside a lease"
    );
    assert!(happened.relocations >= 1, "seed {seed}: nothing relocated");
    assert!(carried.0 >= 1, "seed {seed}: no message dropped");
    assert!(carried.1 >= 1, "seed {seed}: no message duplicated");
    // A delayed message is overtaken by the ones after it: delays are the reorderings.
    assert!(
        carried.2 >= 1,
        "seed {seed}: no message delayed (reordered)"
    );
}

/// Every record of every collection of `name` that `kiosk` holds.
fn all_records(kiosk: &TestKiosk, name: &DocName) -> Vec<(String, serde_json::Value)> {
    use collections::*;
    [
        QUESTURA, SERVICES, SETTINGS, PARTNERS, SLOTS, LEASES, REQUESTS, VERDICTS, PERMITS,
        OPERATORS, PARTNER,
    ]
    .into_iter()
    .flat_map(|collection| kiosk.core.raw_records(name, collection))
    .collect()
}

/// `COPER_FAULT_SEED=N` replays one seed; `COPER_FAULT_SEEDS=N` runs N seeds from 1 (or from
/// `COPER_FAULT_FROM`, to reach seeds other runs never tried); otherwise the regression seeds and
/// the day's seed (a new one every day, printed for replay).
fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("COPER_FAULT_SEED") {
        return vec![seed.parse().expect("COPER_FAULT_SEED is a number")];
    }
    if let Some(count) = std::env::var("COPER_FAULT_SEEDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let from = std::env::var("COPER_FAULT_FROM")
            .ok()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(1);
        return (from..from + count).collect();
    }
    let day = jiff::Timestamp::now().as_second() / 86_400;
    let mut seeds = REGRESSION_SEEDS.to_vec();
    seeds.push(1_000 + day as u64);
    seeds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_invariants_hold_under_random_faults() {
    let steps = std::env::var("COPER_FAULT_STEPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    for seed in seeds() {
        eprintln!("fault campaign: seed {seed} (replay with COPER_FAULT_SEED={seed})");
        campaign(seed, steps).await;
    }
}
