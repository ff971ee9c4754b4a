//! `coper-loadgen`: load against a real `coper-server` over real WebSockets on loopback, with
//! real kiosk cores. Each scenario starts its own server (the binary built next to this one) on a
//! temporary database seeded with the demo Questura, prints its figures, and stops.
//!
//! ```sh
//! cargo build --workspace --release
//! target/release/coper-loadgen round-trip --kiosks 200 --bookings 2000
//! target/release/coper-loadgen storm --kiosks 500 --per-kiosk 20
//! target/release/coper-loadgen batch --requests 20
//! target/release/coper-loadgen doc-size --bookings-per-year 40000
//! target/release/coper-loadgen live-view --kiosks 50 --bookings 100
//! target/release/coper-loadgen notices --count 1000
//! ```
//!
//! Figures, with the machine and the command, go to `docs/BENCHMARKS.md`.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

mod cpu;
mod floors;
mod kiosk_start;
mod trace;

use clap::{Parser, Subcommand};
use coper_e2e::harness::{Options, TestApp, spawn, spawn_in};
use coper_kiosk::core::{CoreError, KioskConfig, KioskCore};
use coper_shared::{
    agenda::SlotKey,
    documents::{LeaseEntry, SlotCounts, collections, put_record, slot_key_text},
    ids::ServiceId,
};

#[derive(Parser)]
#[command(about = "Load generator for coper: simulated kiosks against a real server")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Run each simulated kiosk on an operating-system thread of its own (its own single-threaded
    /// runtime), as a kiosk runs on a machine of its own, instead of all of them as tasks on this
    /// process's two runtime threads, where a kiosk's verdict waits behind other kiosks' work.
    #[arg(long, global = true)]
    kiosk_threads: bool,
}

/// Set from `--kiosk-threads` (see [`Cli`]).
static KIOSK_THREADS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Start a simulated kiosk's core: as a task of this runtime, or with `--kiosk-threads` on a
/// thread of its own that runs it for as long as the process lives.
fn start_kiosk(config: KioskConfig) -> KioskCore {
    if !KIOSK_THREADS.get().copied().unwrap_or(false) {
        return KioskCore::start(config).expect("start");
    }
    let (started, core) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kiosk".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let _ = started.send(KioskCore::start(config).expect("start"));
                // The core's client runs here until the core is dropped (which stops it).
                std::future::pending::<()>().await
            });
        })
        .expect("start a kiosk's thread");
    core.recv().expect("the kiosk started")
}

#[derive(Subcommand)]
enum Scenario {
    /// Connected kiosks book online; latency from booking to verdict, and throughput.
    RoundTrip {
        #[arg(long, default_value_t = 200)]
        kiosks: usize,
        #[arg(long, default_value_t = 2000)]
        bookings: usize,
        /// Bookings in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Pause after each verdict before that place in flight books again, in milliseconds
        /// (0: back to back, as fast as the machine answers): the latency at a set rate below
        /// the machine's ceiling.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Every kiosk books offline while the server is down; then the server comes back and all
    /// reconnect at once. Time until every verdict is back; the server's peak memory.
    Storm {
        #[arg(long, default_value_t = 500)]
        kiosks: usize,
        #[arg(long, default_value_t = 20)]
        per_kiosk: usize,
    },
    /// One kiosk's outbox batch of N requests: the server's time to apply, decide, commit and
    /// project it, against bare Automerge applying the same sync message (both in process).
    Batch {
        #[arg(long, default_value_t = 20)]
        requests: usize,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// Size of one month's agenda document for a Questura with this many bookings a year, and
    /// the time a kiosk takes to load it at start.
    DocSize {
        #[arg(long, default_value_t = 40_000)]
        bookings_per_year: usize,
    },
    /// A clerk's live day view open while kiosks book: time from a kiosk's `book` until the
    /// booking is in the day view's table (server-sent event, then the table fetched again).
    LiveView {
        #[arg(long, default_value_t = 50)]
        kiosks: usize,
        #[arg(long, default_value_t = 100)]
        bookings: usize,
    },
    /// Where the time of one online booking goes: each stage on the kiosk and on the server,
    /// from the operator's confirm to the verdict and the counts at every other kiosk.
    Trace {
        #[arg(long, default_value_t = 200)]
        kiosks: usize,
        #[arg(long, default_value_t = 50)]
        bookings: usize,
        /// Pause between bookings, in milliseconds (0: back to back).
        #[arg(long, default_value_t = 300)]
        pause_ms: u64,
    },
    /// The server's memory with this many kiosks connected and up to date, and per kiosk
    /// against a server with one; then what they cost it while nothing happens (processor time
    /// and disk writes a second).
    Memory {
        #[arg(long, default_value_t = 500)]
        kiosks: usize,
    },
    /// A fresh kiosk's first full sync, and a kiosk's cold start to its first screen.
    KioskStart {
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// Notices queued in the outbox, sent through the server's sender to a local SMTP server
    /// (`python3 -m aiosmtpd`): notices per second, from the first handed over to the last
    /// recorded sent.
    Notices {
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

fn delivery() -> ServiceId {
    ServiceId::parse("consegna-pse").unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_mib(pid: u32) -> f64 {
    memory_mib(pid, "VmHWM:")
}

/// A memory figure of a process's /proc status (`VmHWM:` peak, `VmRSS:` now), in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Options for a server under load: every simulated kiosk connects from 127.0.0.1, whereas real
/// ones come from their offices' addresses, so the limit of sync connections per address is
/// lifted (in a configuration file, as an administrator would); and the server runs with the
/// packaged service's environment (two malloc heaps).
fn for_load(mut options: Options) -> Options {
    let config = std::env::temp_dir().join(format!("coper-loadgen-{}.toml", std::process::id()));
    std::fs::write(&config, "[limits]\nsyncs_per_address = 1000000\n").unwrap();
    options
        .args
        .extend(["--config".into(), config.display().to_string()]);
    // As the packaged service runs it (packaging/server/coper-server.service).
    options.env.push(("MALLOC_ARENA_MAX".into(), "2".into()));
    options
}

/// A demo server for load (see [`for_load`]).
pub async fn spawn_for_load(options: Options) -> TestApp {
    spawn(for_load(Options {
        demo: true,
        ..options
    }))
    .await
}

/// Where the simulated kiosks keep their stores: in memory (`/dev/shm`) where there is one.
/// Real kiosks write to disks of their own; hundreds writing to the server's file system made
/// its durable commits wait (ext4 flushes other files' data with a commit's journal: commits of
/// 75–93 ms, against at most 1–7.5 ms for the same disk alone, `trace`'s floors).
fn kiosks_dir() -> tempfile::TempDir {
    let memory = Path::new("/dev/shm");
    if memory.is_dir() {
        tempfile::tempdir_in(memory).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// Enrol `n` kiosks (partner bodies in turn) and wait until each is up to date.
async fn enrol_many(app: &TestApp, n: usize, url: &str, dir: &Path) -> Vec<KioskCore> {
    let codes: Vec<Vec<String>> = (1..=5)
        .map(|partner| {
            app.cli(&[
                "kiosk-code",
                "--partner",
                &partner.to_string(),
                "--label",
                "load",
                "--count",
                &n.div_ceil(5).to_string(),
            ])
            .lines()
            .map(str::to_owned)
            .collect()
        })
        .collect();
    let mut cores = Vec::with_capacity(n);
    for i in 0..n {
        // Hundreds of simulated kiosks share one disk here: no flush per commit (see
        // docs/BENCHMARKS.md). Each real kiosk flushes its own.
        let mut config = KioskConfig::new(dir.join(format!("kiosk-{i}")));
        config.power_loss_safe = false;
        coper_kiosk::core::enrol(&config, url, &codes[i % 5][i / 5])
            .await
            .expect("enrol");
        cores.push(start_kiosk(config));
    }
    wait_until(Duration::from_secs(600), "every kiosk up to date", || {
        cores.iter().all(|c| c.status().up_to_date)
    })
    .await;
    cores
}

async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Book the first free slot at `core`, asking again if the replica was stale.
fn book_first_free(core: &KioskCore, i: usize) -> Option<uuid::Uuid> {
    for _ in 0..20 {
        let proposal = core.first_free(&delivery()).ok()??;
        match core.book(
            &delivery(),
            proposal.slot.key(),
            &format!("Carico {i}"),
            "Prova",
            None,
        ) {
            Ok(b) => return Some(b.request),
            Err(CoreError::SlotNotFree) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    None
}

async fn round_trip(kiosks: usize, bookings: usize, concurrency: usize, pause: Duration) {
    let app = spawn_for_load(Options::default()).await;
    app.set_lease_places(0);
    let dir = kiosks_dir();
    let started = Instant::now();
    let cores = Arc::new(enrol_many(&app, kiosks, &app.ws_url(), dir.path()).await);
    println!(
        "{kiosks} kiosks enrolled and up to date in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let cpu = cpu::CpuMeter::start(app.pid());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(bookings);
    for i in 0..bookings {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let cores = cores.clone();
        tasks.push(tokio::spawn(async move {
            let core = &cores[i % cores.len()];
            let t0 = Instant::now();
            let request = book_first_free(core, i)?;
            let verdict = core
                .wait_for_verdict(request, Duration::from_secs(60))
                .await;
            let latency = t0.elapsed();
            tokio::time::sleep(pause).await;
            drop(permit);
            verdict.map(|_| latency)
        }));
    }
    let mut latencies = Vec::with_capacity(bookings);
    for task in tasks {
        if let Some(latency) = task.await.unwrap() {
            latencies.push(latency);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "round trip, {kiosks} kiosks connected, {} bookings ({concurrency} in flight, {} ms \
         pause): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} bookings/s sustained; server peak RSS {:.0} MiB",
        latencies.len(),
        pause.as_millis(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        peak_rss_mib(app.pid()),
    );
    println!("{}", cpu.stop().per_booking(latencies.len()));
}

/// How long `memory` watches the server with its kiosks connected and nothing happening.
const IDLE_MEASURED: Duration = Duration::from_secs(15);

async fn memory(kiosks: usize) {
    let dir = kiosks_dir();
    let mut figures = Vec::new();
    for n in [1, kiosks] {
        let app = spawn_for_load(Options::default()).await;
        let started = Instant::now();
        let cores = enrol_many(&app, n, &app.ws_url(), &dir.path().join(n.to_string())).await;
        // Settled: every session past its first exchange and its first save of sync states.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (now, peak) = (memory_mib(app.pid(), "VmRSS:"), peak_rss_mib(app.pid()));
        println!(
            "{n} kiosks connected and up to date ({:.0} s): server RSS {now:.0} MiB, peak {peak:.0} MiB",
            started.elapsed().as_secs_f64()
        );
        // Then what the connected kiosks cost the server while nothing happens: the sessions'
        // timers and periodic writes (a national deployment keeps thousands connected).
        let cpu = cpu::CpuMeter::start(app.pid());
        tokio::time::sleep(IDLE_MEASURED).await;
        println!("{}", cpu.stop().idle(n));
        figures.push(now);
        drop(cores);
    }
    println!(
        "per connected kiosk: {:.0} KiB",
        (figures[1] - figures[0]) * 1024.0 / (kiosks - 1).max(1) as f64
    );
}

async fn live_view(kiosks: usize, bookings: usize) {
    let app = spawn_for_load(Options::default()).await;
    let dir = kiosks_dir();
    let cores = enrol_many(&app, kiosks, &app.ws_url(), dir.path()).await;
    let clerk = app
        .log_in("sportello", coper_server::demo::DEMO_PASSWORD)
        .await
        .expect("the demo clerk logs in");
    // The page's event stream, read as the browser reads it.
    let mut events = app
        .page_client()
        .get(app.url("/counter/day/events"))
        .header("cookie", &clerk.cookie)
        .send()
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = events.chunk().await {
            if String::from_utf8_lossy(&chunk).contains("event: changed") {
                let _ = tx.send(());
            }
        }
    });
    let mut latencies = Vec::with_capacity(bookings);
    for i in 0..bookings {
        let core = &cores[i % cores.len()];
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        let Some(request) = book_first_free(core, i) else {
            break;
        };
        let booking = core
            .bookings()
            .into_iter()
            .find(|b| b.request == request)
            .expect("the kiosk knows its booking");
        loop {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an event within 10 s");
            let (_, rows) = app
                .fetch(&clerk, &format!("/counter/day/rows?date={}", booking.date))
                .await;
            if String::from_utf8_lossy(&rows).contains(&booking.booking_code) {
                break;
            }
        }
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    println!(
        "live day view, {kiosks} kiosks connected, {} bookings one at a time: kiosk book → in the \
         clerk's table p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (includes the view's 150 ms coalescing)",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn storm(kiosks: usize, per_kiosk: usize) {
    let mut app = spawn_for_load(Options::default()).await;
    let dir = kiosks_dir();
    let addr = app.addr();
    let cores = enrol_many(&app, kiosks, &app.ws_url(), dir.path()).await;
    // The server goes away; every office keeps booking.
    app.signal_and_wait("TERM");
    wait_until(Duration::from_secs(60), "every kiosk offline", || {
        cores.iter().all(|c| !c.status().online)
    })
    .await;
    let mut requests = Vec::new();
    for (k, core) in cores.iter().enumerate() {
        for j in 0..per_kiosk {
            if let Some(r) = book_first_free(core, k * per_kiosk + j) {
                requests.push((k, r));
            }
        }
    }
    let data_dir = app.data_dir.clone();
    let keep = app.keep_data();
    drop(app);
    let started = Instant::now();
    let app = spawn_in(
        &data_dir,
        for_load(Options {
            listen: Some(addr),
            ..Options::default()
        }),
        keep,
    )
    .await;
    let cpu = cpu::CpuMeter::start(app.pid());
    wait_until(Duration::from_secs(1800), "every verdict back", || {
        requests
            .iter()
            .all(|(k, r)| cores[*k].verdict(*r).is_some())
    })
    .await;
    let elapsed = started.elapsed();
    println!(
        "reconnect storm: {kiosks} kiosks × {per_kiosk} offline bookings ({} requests): every verdict \
         back {:.1} s after the server restarted; server peak RSS {:.0} MiB",
        requests.len(),
        elapsed.as_secs_f64(),
        peak_rss_mib(app.pid()),
    );
    println!("{}", cpu.stop().per_booking(requests.len()));
}

/// The server's own work on one sync batch, measured in process with the server's library: apply
/// a kiosk's sync message carrying `requests` new requests to its outbox, decide them, commit in
/// SQLite, write verdicts and counts into the documents. Against: bare Automerge applying the
/// same sync message to a copy of the outbox.
async fn batch(requests: usize, rounds: usize) {
    use automerge::sync::SyncDoc;
    use coper_server::{
        clock::Clock,
        store::Db,
        sync::{SyncConfig, SyncHub},
    };
    use coper_shared::documents::{DocName, KioskId, Request, RequestKind};

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("coper.sqlite3")).unwrap();
    let now = jiff::Timestamp::now();
    db.call_blocking(|conn| coper_server::demo::seed(conn, now))
        .unwrap();
    let kiosk = KioskId(uuid::Uuid::now_v7());
    db.call_blocking(|conn| {
        conn.execute(
            "INSERT INTO kiosks (id, partner_body_id, label, public_key, created_at, enrolled_at)
             VALUES (?1, 1, 'bench', zeroblob(32), '', '')",
            [kiosk.to_string()],
        )
    })
    .unwrap();
    db.call_blocking(|conn| conn.execute("UPDATE partner_bodies SET lease_places_per_day = 0", []))
        .unwrap();
    let hub = SyncHub::new(db.clone(), Clock::System, SyncConfig::default());
    let outbox = DocName::Outbox(kiosk);
    let mut kiosk_doc = automerge::AutoCommit::new();
    let mut kiosk_state = automerge::sync::State::new();
    let mut bare_copy = automerge::AutoCommit::new();
    let mut bare_state = automerge::sync::State::new();
    // Bring everyone in step once, so each round's message carries just that round's requests.
    sync_pair(
        &mut kiosk_doc,
        &mut kiosk_state,
        &mut bare_copy,
        &mut bare_state,
    );
    let tomorrow = now
        .to_zoned(jiff::tz::TimeZone::get("Europe/Rome").unwrap())
        .date()
        .tomorrow()
        .unwrap();
    let (mut server_times, mut bare_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for i in 0..requests {
            let request = Request {
                id: uuid::Uuid::now_v7(),
                kind: RequestKind::Book,
                service: delivery(),
                date: tomorrow,
                time: jiff::civil::time(9, 0, 0, 0),
                surname: format!("Lotto {round}-{i}"),
                given_names: String::new(),
                phone: None,
                booking_code: coper_shared::booking_code::booking_code(fastrand::u128(..)),
                created_at_ms: now.as_millisecond(),
                lease: None,
                cancels: None,
                permit: None,
                sealed: None,
                moves: None,
            };
            put_record(
                &mut kiosk_doc,
                collections::REQUESTS,
                &request.id.to_string(),
                &request,
            );
        }
        // The server's state for this kiosk learns the kiosk's heads as the bare copy's did.
        let message = kiosk_doc
            .sync()
            .generate_sync_message(&mut kiosk_state)
            .expect("changes to send");
        let encoded = message.encode();

        // The server's sync state for this kiosk is the bare copy's: both hold the same outbox.
        let state = automerge::sync::State::decode(&bare_state.encode()).unwrap();
        let t0 = Instant::now();
        let for_server = automerge::sync::Message::decode(&encoded).unwrap();
        hub.with_doc(outbox.clone(), move |doc| {
            let mut state = state;
            doc.sync()
                .receive_sync_message(&mut state, for_server)
                .unwrap();
        })
        .await
        .unwrap();
        hub.process_outbox(kiosk, true, true).await.unwrap();
        server_times.push(t0.elapsed());

        let t0 = Instant::now();
        bare_copy
            .sync()
            .receive_sync_message(
                &mut bare_state,
                automerge::sync::Message::decode(&encoded).unwrap(),
            )
            .unwrap();
        bare_times.push(t0.elapsed());
        // Let both sides answer, so the next round starts in step.
        sync_pair(
            &mut kiosk_doc,
            &mut kiosk_state,
            &mut bare_copy,
            &mut bare_state,
        );
    }
    server_times.sort();
    bare_times.sort();
    let (server, bare) = (percentile(&server_times, 0.5), percentile(&bare_times, 0.5));
    println!(
        "sync batch of {requests} requests (median of {rounds}): server applies, decides, commits \
         and projects it in {:.2} ms; bare Automerge applies the same message in {:.3} ms; ratio {:.0}×",
        server.as_secs_f64() * 1e3,
        bare.as_secs_f64() * 1e3,
        server.as_secs_f64() / bare.as_secs_f64().max(1e-9),
    );
}

/// Exchange sync messages between two documents until neither has anything to say.
fn sync_pair(
    a: &mut automerge::AutoCommit,
    sa: &mut automerge::sync::State,
    b: &mut automerge::AutoCommit,
    sb: &mut automerge::sync::State,
) {
    use automerge::sync::SyncDoc;
    loop {
        let mut progressed = false;
        if let Some(m) = a.sync().generate_sync_message(sa) {
            b.sync().receive_sync_message(sb, m).unwrap();
            progressed = true;
        }
        if let Some(m) = b.sync().generate_sync_message(sb) {
            a.sync().receive_sync_message(sa, m).unwrap();
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
}

fn doc_size(bookings_per_year: usize) {
    // A month of a large Questura: its bookings land one by one on ~22 days × 21 slots × 3 places,
    // each changing its slot's counts, and each of 20 kiosks holds and uses leases.
    let per_month = bookings_per_year / 12;
    let mut doc = automerge::AutoCommit::new();
    let days: Vec<jiff::civil::Date> = (1..=31)
        .filter_map(|d| jiff::civil::Date::new(2026, 12, d).ok())
        .filter(|d| d.weekday().to_monday_one_offset() <= 5)
        .collect();
    let slots: Vec<SlotKey> = days
        .iter()
        .flat_map(|d| {
            (0..21).map(move |i| SlotKey {
                date: *d,
                start: jiff::civil::time(9, 0, 0, 0)
                    .checked_add(jiff::Span::new().minutes(10 * i))
                    .unwrap(),
            })
        })
        .collect();
    let mut taken = vec![0u32; slots.len()];
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..per_month {
        let s = rng.usize(..slots.len());
        taken[s] = (taken[s] + 1).min(3);
        put_record(
            &mut doc,
            collections::SLOTS,
            &slot_key_text(slots[s]),
            &SlotCounts {
                places: 3,
                taken: taken[s],
                held: 0,
            },
        );
        if i % 25 == 0 {
            let kiosk = uuid::Uuid::from_u128(rng.u128(..20));
            let slot = slots[rng.usize(..slots.len())];
            put_record(
                &mut doc,
                collections::LEASES,
                &format!("{kiosk} {}", slot_key_text(slot)),
                &LeaseEntry {
                    id: uuid::Uuid::now_v7(),
                    granted: 2,
                    used: rng.u32(0..3).min(2),
                    expires_at_ms: 0,
                },
            );
        }
        doc.commit();
    }
    let bytes = doc.save();
    let t0 = Instant::now();
    let loads = 20;
    for _ in 0..loads {
        let loaded = automerge::AutoCommit::load(&bytes).unwrap();
        let records: Vec<(String, SlotCounts)> =
            coper_shared::documents::records(&loaded, collections::SLOTS);
        assert!(!records.is_empty());
    }
    let load = t0.elapsed() / loads;
    println!(
        "one month's agenda document at {bookings_per_year} bookings a year ({per_month} changes): \
         {:.1} KiB saved; a kiosk loads and reads it in {:.1} ms",
        bytes.len() as f64 / 1024.0,
        load.as_secs_f64() * 1e3,
    );
}

/// `count` e-mail notices queued at once; the time until the last is recorded sent.
async fn notices(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = coper_e2e::harness::SmtpSink::start(dir.path());
    let config = dir.path().join("coper.toml");
    std::fs::write(
        &config,
        format!(
            "[notices]\nper_minute = 1000000\n[notices.email]\nhost = \"127.0.0.1\"\n\
             port = {}\nsecurity = \"none\"\nfrom = \"Questura <noreply@example.invalid>\"\n",
            smtp.port
        ),
    )
    .unwrap();
    let app = coper_e2e::harness::spawn(Options {
        demo: true,
        // A Monday morning: outside the quiet hours.
        fixed_now: Some("2026-11-23T09:00:00Z"),
        args: vec!["--config".into(), config.to_str().unwrap().into()],
        ..Options::default()
    })
    .await;
    app.queue_notices(count, "email", "2026-11-23T09:00:00Z");
    let started = Instant::now();
    let first = loop {
        if app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NOT NULL") > 0 {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    loop {
        let sent = app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NOT NULL") as usize;
        if sent >= count {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "stuck at {sent}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = first.elapsed();
    let received = smtp.messages().len();
    println!(
        "notices: {count} e-mails sent in {:.2} s after the first: {:.0} notices/s; \
         {received} at the SMTP server; server peak RSS {:.0} MiB",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64(),
        peak_rss_mib(app.pid()),
    );
}

fn main() {
    let cli = Cli::parse();
    KIOSK_THREADS.set(cli.kiosk_threads).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match cli.scenario {
        Scenario::RoundTrip {
            kiosks,
            bookings,
            concurrency,
            pause_ms,
        } => runtime.block_on(round_trip(
            kiosks,
            bookings,
            concurrency,
            Duration::from_millis(pause_ms),
        )),
        Scenario::Storm { kiosks, per_kiosk } => runtime.block_on(storm(kiosks, per_kiosk)),
        Scenario::Batch { requests, rounds } => runtime.block_on(batch(requests, rounds)),
        Scenario::DocSize { bookings_per_year } => doc_size(bookings_per_year),
        Scenario::LiveView { kiosks, bookings } => runtime.block_on(live_view(kiosks, bookings)),
        Scenario::Notices { count } => runtime.block_on(notices(count)),
        Scenario::Memory { kiosks } => runtime.block_on(memory(kiosks)),
        Scenario::KioskStart { rounds } => runtime.block_on(kiosk_start::kiosk_start(rounds)),
        Scenario::Trace {
            kiosks,
            bookings,
            pause_ms,
        } => runtime.block_on(trace::trace(
            kiosks,
            bookings,
            Duration::from_millis(pause_ms),
        )),
    }
}
