//! Test 7. A randomised fault campaign, replayable by seed: several kiosks book while their
//! offices go offline and back, kiosks restart, the server is killed and restarted, and a proxy
//! between each kiosk and the server drops, duplicates, delays and reorders WebSocket messages.
//! When the dust settles, the seven invariants of SYNC.md must hold.
//!
//! CI runs a few seeds. `COPER_FAULT_SEEDS=1000` runs a thousand; `COPER_FAULT_SEED=42` replays
//! one (the fault decisions and the actions come from the seed; thread timing still varies).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use automerge::{AutoCommit, ChangeHash};
use coper_kiosk::core::{BookingStatus, CoreError};
use coper_shared::{
    documents::{DocName, Outcome, Request, collections},
    ids::ServiceId,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::{accept_async, connect_async, tungstenite::Message};

use crate::helpers::{Options, TestApp, TestKiosk, spawn_demo, spawn_in};

/// Probabilities, in percent, of what happens to each WebSocket message crossing the proxy.
#[derive(Debug, Clone, Copy)]
struct Faults {
    drop: u8,
    duplicate: u8,
    delay: u8,
}

const FAULTS: Faults = Faults {
    drop: 3,
    duplicate: 5,
    delay: 10,
};

/// A WebSocket-aware proxy that mistreats messages by a seeded random plan, and can be cut.
struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<FaultState>>,
    task: tokio::task::JoinHandle<()>,
}

struct FaultState {
    target: SocketAddr,
    online: bool,
    epoch: tokio::sync::watch::Sender<u64>,
    rng: fastrand::Rng,
}

impl FaultProxy {
    async fn start(target: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (epoch, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Mutex::new(FaultState {
            target,
            online: true,
            epoch,
            rng: fastrand::Rng::with_seed(seed),
        }));
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (online, target, mut epoch, seed) = {
                    let mut s = state.lock().unwrap();
                    (s.online, s.target, s.epoch.subscribe(), s.rng.u64(..))
                };
                if !online {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(kiosk) = accept_async(stream).await else {
                        return;
                    };
                    let Ok((server, _)) = connect_async(format!("ws://{target}/api/v1/sync")).await
                    else {
                        return;
                    };
                    let (kiosk_tx, kiosk_rx) = kiosk.split();
                    let (server_tx, server_rx) = server.split();
                    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
                    tokio::select! {
                        _ = pump(kiosk_rx, server_tx, rng.clone()) => {}
                        _ = pump(server_rx, kiosk_tx, rng) => {}
                        _ = epoch.changed() => {}
                    }
                });
            }
        });
        Self { addr, shared, task }
    }

    fn url(&self) -> String {
        format!("ws://{}/api/v1/sync", self.addr)
    }

    fn set_online(&self, online: bool) {
        let mut s = self.shared.lock().unwrap();
        s.online = online;
        if !online {
            s.epoch.send_modify(|e| *e += 1);
        }
    }

    fn retarget(&self, target: SocketAddr) {
        let mut s = self.shared.lock().unwrap();
        s.target = target;
        s.epoch.send_modify(|e| *e += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forward messages one way, dropping, duplicating and delaying (hence reordering) some.
async fn pump<R, W>(mut rx: R, tx: W, rng: Arc<Mutex<fastrand::Rng>>)
where
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    W: futures_util::Sink<Message> + Unpin + Send + 'static,
{
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    while let Some(Ok(message)) = rx.next().await {
        if message.is_close() {
            break;
        }
        let (roll, delay_ms) = {
            let mut r = rng.lock().unwrap();
            (r.u8(0..100), r.u64(5..60))
        };
        if roll < FAULTS.drop {
            continue;
        }
        let copies = if roll < FAULTS.drop + FAULTS.duplicate {
            2
        } else {
            1
        };
        if roll >= 100 - FAULTS.delay {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                let _ = tx.lock().await.send(message).await;
            });
            continue;
        }
        for _ in 0..copies {
            if tx.lock().await.send(message.clone()).await.is_err() {
                return;
            }
        }
    }
}

fn delivery() -> ServiceId {
    ServiceId::parse("consegna-pse").unwrap()
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

async fn campaign(seed: u64, steps: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut app = spawn_demo().await;
    app.set_lease_places(1);
    let mut proxies = Vec::new();
    let mut kiosks = Vec::new();
    for partner in 1..=3 {
        let proxy = FaultProxy::start(app.addr(), rng.u64(..)).await;
        // Enrol straight to the server; sync through the faulty proxy.
        let mut kiosk = TestKiosk::enrol(&app, partner, &app.ws_url()).await;
        kiosk = kiosk.reconnect_via(&proxy.url()).await;
        proxies.push(proxy);
        kiosks.push(Some(kiosk));
    }
    let mut killed = false;
    let mut seen: BTreeMap<uuid::Uuid, Outcome> = BTreeMap::new();
    for step in 0..steps {
        let i = rng.usize(..kiosks.len());
        match rng.u8(0..100) {
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
            63..=77 => proxies[i].set_online(false),
            78..=89 => proxies[i].set_online(true),
            90..=95 => {
                let kiosk = kiosks[i].take().unwrap();
                kiosks[i] = Some(kiosk.restart().await);
            }
            _ if !killed => {
                killed = true;
                for kiosk in kiosks.iter().flatten() {
                    for b in kiosk.core.bookings() {
                        if let Some(v) = kiosk.core.verdict(b.request) {
                            seen.insert(b.request, v.outcome);
                        }
                    }
                }
                assert!(!app.signal_and_wait("KILL").success());
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
        proxy.set_online(true);
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
    let over: i64 = db
        .query_row(
            "SELECT count(*) FROM slot_capacity c WHERE c.taken + c.held > c.places
               OR c.places < (SELECT count(*) FROM appointments a WHERE a.service_id = c.service_id
                              AND a.slot_date = c.slot_date AND a.slot_time = c.slot_time
                              AND a.status <> 'cancelled')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(over, 0, "seed {seed}: a slot is overbooked");
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
        // 7. Privacy: only its own outbox and inbox, and no other partner body's names.
        for name in kiosk.core.documents() {
            assert!(name.readable_by(me), "seed {seed}: {name} reached {me}");
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
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("COPER_FAULT_SEED") {
        return vec![seed.parse().expect("COPER_FAULT_SEED is a number")];
    }
    let count: u64 = std::env::var("COPER_FAULT_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    (1..=count).collect()
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
