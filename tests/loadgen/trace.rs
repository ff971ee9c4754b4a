//! `coper-loadgen trace`: where the time of one online booking goes, stage by stage.
//!
//! The server and the kiosk core mark each stage of a booking with a `debug` event of the target
//! `coper_timeline` (kiosk: request committed, sent, received, applied; server: received,
//! changes checked, applied, writer taken, committed, projected, notified, sent). The server runs
//! with `COPER_LOG=warn,coper_timeline=debug` and `COPER_LOG_FORMAT=json`, its log in a file;
//! the kiosk cores, in this process, log to memory the same way. Bookings are made one at a time
//! with a pause between them, so every event between one booking's start and the next belongs
//! to it; each event is labelled by stage, document kind and whether it concerns the booking's
//! own kiosk or the others, and the median time of each label from the booking's start is
//! printed in order.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use coper_e2e::harness::Options;
use jiff::Timestamp;
use serde_json::Value;

use crate::{book_first_free, enrol_many, floors::Floors, percentile, spawn_for_load};

/// Log lines written by the kiosk cores of this process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Event {
    at: Timestamp,
    stage: String,
    kiosk: Option<String>,
    document: Option<String>,
}

fn parse(lines: &str) -> Vec<Event> {
    lines
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["target"] == "coper_timeline")
        .filter_map(|v| {
            Some(Event {
                at: v["timestamp"].as_str()?.parse().ok()?,
                stage: v["message"].as_str()?.to_owned(),
                kiosk: v["kiosk"].as_str().map(str::to_owned),
                document: v["document"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

/// One traced booking: its kiosk, when it started and when the verdict was seen.
struct Run {
    kiosk: String,
    start: Timestamp,
    verdict: Timestamp,
}

impl Run {
    /// How long after this booking's start `at` came (zero if before it).
    fn offset(&self, at: Timestamp) -> Duration {
        Duration::try_from(at.duration_since(self.start)).unwrap_or_default()
    }
}

/// What happened at one label within a booking: first and last time from its start, how often.
struct Seen {
    first: Duration,
    last: Duration,
    count: usize,
}

pub async fn trace(kiosks: usize, bookings: usize, pause: Duration) {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("coper_timeline=debug"))
        .with_writer(move || writer.clone())
        .init();
    let dir = tempfile::tempdir().unwrap();
    let floors = Floors::measure(dir.path()).await;
    let server_log = dir.path().join("server.jsonl");
    let app = spawn_for_load(Options {
        env: vec![
            ("COPER_LOG".into(), "warn,coper_timeline=debug".into()),
            ("COPER_LOG_FORMAT".into(), "json".into()),
        ],
        log_file: Some(server_log.clone()),
        ..Options::default()
    })
    .await;
    app.set_lease_places(0);
    let kiosks_dir = crate::kiosks_dir();
    let cores = enrol_many(&app, kiosks, &app.ws_url(), kiosks_dir.path()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut runs = Vec::with_capacity(bookings);
    for i in 0..bookings {
        let core = &cores[i % cores.len()];
        let start = Timestamp::now();
        let Some(request) = book_first_free(core, i) else {
            continue;
        };
        if core
            .wait_for_verdict(request, Duration::from_secs(30))
            .await
            .is_some()
        {
            runs.push(Run {
                kiosk: core.kiosk_id().to_string(),
                start,
                verdict: Timestamp::now(),
            });
        }
        // Quiet before the next one (with a pause), so the counts reach every kiosk within this
        // booking's window; none: bookings back to back, as `round-trip` makes them.
        tokio::time::sleep(pause).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut events = parse(&std::fs::read_to_string(&server_log).unwrap());
    events.extend(parse(&String::from_utf8_lossy(
        &captured.0.lock().unwrap_or_else(|p| p.into_inner()),
    )));
    events.sort_by_key(|e| e.at);
    report(kiosks, &runs, &events, &floors);
    drop(app);
}

/// The label of an event within a booking made at `kiosk`.
fn label(event: &Event, kiosk: &str) -> String {
    let document = event
        .document
        .as_deref()
        .map(|d| format!(" {}", d.split('/').next().unwrap_or(d)))
        .unwrap_or_default();
    let whose = match &event.kiosk {
        Some(k) if k != kiosk => " [other kiosks]",
        _ => "",
    };
    format!("{}{document}{whose}", event.stage)
}

fn report(kiosks: usize, runs: &[Run], events: &[Event], floors: &Floors) {
    let mut per_label: HashMap<String, Vec<Seen>> = HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(Timestamp::MAX, |next| next.start);
        let mut seen: HashMap<String, Seen> = HashMap::new();
        for event in events.iter().filter(|e| e.at >= run.start && e.at < end) {
            let offset = run.offset(event.at);
            seen.entry(label(event, &run.kiosk))
                .and_modify(|s| {
                    s.last = offset;
                    s.count += 1;
                })
                .or_insert(Seen {
                    first: offset,
                    last: offset,
                    count: 1,
                });
        }
        let verdict = run.offset(run.verdict);
        seen.insert(
            "loadgen: verdict seen".into(),
            Seen {
                first: verdict,
                last: verdict,
                count: 1,
            },
        );
        for (label, s) in seen {
            per_label.entry(label).or_default().push(s);
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        percentile(&v, 0.5)
    };
    let mut rows: Vec<(Duration, Duration, usize, usize, String)> = per_label
        .into_iter()
        .map(|(label, seen)| {
            let runs_with = seen.len();
            let mut counts: Vec<usize> = seen.iter().map(|s| s.count).collect();
            counts.sort_unstable();
            let first = median(seen.iter().map(|s| s.first).collect());
            let last = median(seen.iter().map(|s| s.last).collect());
            (first, last, counts[counts.len() / 2], runs_with, label)
        })
        .collect();
    rows.sort();
    floors.print();
    println!(
        "timeline of one online booking, {kiosks} kiosks connected, median of {} bookings made \
         one at a time (ms from the operator's confirm; first … last occurrence, times per \
         booking, bookings in which it occurred):",
        runs.len()
    );
    for (first, last, count, runs_with, label) in rows {
        println!(
            "{:>9.2} … {:>8.2}  ×{count:<4} {runs_with:>4}  {label}",
            crate::floors::ms(first),
            crate::floors::ms(last),
        );
    }
    slowest(runs, events);
}

/// The slowest bookings (the last percent, at least three) stage by stage: where the tail's time
/// went, and how much else the server and the kiosks were doing meanwhile.
fn slowest(runs: &[Run], events: &[Event]) {
    let took = |run: &Run| run.offset(run.verdict);
    let mut order: Vec<&Run> = runs.iter().collect();
    order.sort_by_key(|run| std::cmp::Reverse(took(run)));
    println!("\nthe slowest bookings, their own kiosk's stages (ms from the confirm; + the gap):");
    for run in order.iter().take((runs.len() / 100).max(3)) {
        let window = events
            .iter()
            .filter(|e| e.at >= run.start && e.at <= run.verdict);
        let mut line = format!("{:>8.2} ms:", crate::floors::ms(took(run)));
        let (mut previous, mut others) = (Duration::ZERO, 0);
        for event in window {
            if event.kiosk.as_deref().is_some_and(|k| k != run.kiosk) {
                others += 1;
                continue;
            }
            let at = run.offset(event.at);
            line.push_str(&format!(
                " | {} {:.1} +{:.1}",
                label(event, &run.kiosk),
                crate::floors::ms(at),
                crate::floors::ms(at - previous),
            ));
            previous = at;
        }
        println!("{line} | meanwhile {others} events of other kiosks");
    }
}
