//! The server under hostile input (issue "Hardening"): each finding of the attack on the demo
//! server becomes a test that failed before the fix.

use std::time::Duration;

use coper_shared::documents::{Outcome, Request, RequestKind};
use futures_util::{SinkExt, future::join_all};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use coper_server::demo::DEMO_PASSWORD;

use crate::helpers::{TestApp, TestKiosk, connect_sync, delivery, eventually, spawn_demo};

/// The server's resident memory, in bytes.
fn rss(app: &TestApp) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// A request as a kiosk would write it, for the first free slot, with `surname`.
fn request(kiosk: &TestKiosk, id: Uuid, surname: String) -> Request {
    let proposal = kiosk.core.first_free(&delivery()).unwrap().unwrap();
    Request {
        id,
        kind: RequestKind::Book,
        service: delivery(),
        date: proposal.slot.date,
        time: proposal.slot.start,
        surname,
        given_names: "Test".into(),
        phone: None,
        booking_code: "K7QM-4XTA".into(),
        created_at_ms: kiosk.core.now().as_millisecond(),
        lease: None,
        cancels: None,
        permit: None,
        sealed: None,
        moves: None,
    }
}

/// Finding 1: clients that never authenticate, each sending a 16 MiB message, neither grow the
/// server's memory nor stop it answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_floods_leave_memory_flat() {
    let app = spawn_demo().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let before = rss(&app);
    let huge = tokio_tungstenite::tungstenite::Bytes::from(vec![7u8; 16 << 20]);
    let attempts = (0..50).map(|_| {
        let (url, huge) = (app.ws_url(), huge.clone());
        async move {
            // Connections beyond the limits are refused before the upgrade; those let in are
            // cut as soon as the message passes the limit.
            if let Ok(mut socket) = connect_sync(&url).await {
                let _ = socket.send(Message::Binary(huge)).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    join_all(attempts).await;
    let grown = rss(&app).saturating_sub(before);
    assert!(grown < 64 << 20, "the server grew by {} MiB", grown >> 20);
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// Findings 3 and 9: a request with a megabyte of surname is rejected and not stored, and a
/// request id another kiosk already used is rejected on its own; either way the kiosk's next
/// request is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_rejected_alone_and_never_stored() {
    let app = spawn_demo().await;
    let first = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let second = TestKiosk::enrol(&app, 2, &app.ws_url()).await;
    first.wait_up_to_date().await;
    second.wait_up_to_date().await;

    let proposal = first.core.first_free(&delivery()).unwrap().unwrap();
    let booked = first
        .core
        .book(&delivery(), proposal.slot.key(), "Rossi", "Ana", None)
        .unwrap();
    let verdict = first
        .core
        .wait_for_verdict(booked.request, Duration::from_secs(20))
        .await
        .expect("a verdict");
    assert_eq!(verdict.outcome, Outcome::Confirmed);

    // The second kiosk reuses the first one's request id (it could read it from a ticket).
    let reused = request(&second, booked.request, "Bianchi".into());
    second.core.write_raw_request(&reused).unwrap();
    let huge = request(&second, Uuid::now_v7(), "X".repeat(1_000_000));
    second.core.write_raw_request(&huge).unwrap();
    for id in [reused.id, huge.id] {
        let verdict = second
            .core
            .wait_for_verdict(id, Duration::from_secs(20))
            .await
            .expect("a verdict of its own");
        assert_eq!(verdict.outcome, Outcome::Rejected, "{verdict:?}");
    }
    assert_eq!(
        second.core.verdict(huge.id).unwrap().reason.as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM appointments WHERE length(surname) > 1000"),
        0,
        "the name was never stored"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM appointments WHERE surname = 'Bianchi'"),
        0
    );

    // Neither wedged the kiosk: its next booking is decided, and the first kiosk's stands.
    let proposal = second.core.first_free(&delivery()).unwrap().unwrap();
    let next = second
        .core
        .book(&delivery(), proposal.slot.key(), "Verdi", "Luca", None)
        .unwrap();
    let verdict = second
        .core
        .wait_for_verdict(next.request, Duration::from_secs(20))
        .await
        .expect("the next request is decided");
    assert!(matches!(
        verdict.outcome,
        Outcome::Confirmed | Outcome::Relocated
    ));
    assert_eq!(
        first.core.verdict(booked.request).unwrap().outcome,
        Outcome::Confirmed
    );
}

/// Finding 4: a client that trickles its headers, or just holds a connection open, is cut off
/// after the header-read timeout (10 s by default; 4 s here, set in the configuration file's
/// `[limits]`), so idle sockets cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[limits]\nhttp_header_read_secs = 4\n").unwrap();
    let app = crate::helpers::spawn(crate::helpers::Options {
        demo: true,
        args: vec!["--config".into(), config.path().display().to_string()],
        ..Default::default()
    })
    .await;
    let mut trickle = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let started = std::time::Instant::now();
    for piece in ["GET /healthz HTTP/1.1\r\n", "Host: x\r\n", "X-A: 1\r\n"] {
        trickle.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Within the limit the server still waits; well after it, both sockets are closed.
    for socket in [&mut trickle, &mut idle] {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer))
            .await
            .expect("the server closes the connection");
        assert!(
            matches!(read, Ok(0) | Err(_)) || buffer.starts_with(b"HTTP/1.1 408"),
            "{read:?}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(3500),
        "not before the limit"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "at the file's limit, not the default's 10 s"
    );
    // Meanwhile, and after, the server answers.
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// The places `kiosk` holds (bookings not cancelled) on each slot date.
fn held_by_kiosk(app: &TestApp, kiosk: &TestKiosk) -> Vec<(String, i64)> {
    let db = app.database();
    let mut stmt = db
        .prepare(
            "SELECT slot_date, count(*) FROM appointments WHERE kiosk_id = ?1
             AND status <> 'cancelled' GROUP BY slot_date ORDER BY slot_date",
        )
        .unwrap();
    stmt.query_map([kiosk.core.kiosk_id().to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Finding 2: a kiosk that sends 3,000 booking requests gets at most its quota (per day and per
/// week, set on its partner body's page) and the others are refused with a reason; revoking it
/// lists its bookings still to come, which the administration cancels together, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_gets_at_most_its_quota_and_revoking_it_offers_to_cancel_its_bookings() {
    let app = spawn_demo().await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let field = |column: &str| -> String {
        app.one(
            &format!("SELECT {column} FROM partner_bodies WHERE id = ?1"),
            1,
        )
    };
    let (status, _) = app
        .submit(
            &admin,
            "/admin/partners/1",
            &[
                ("name", &field("name")),
                ("address", &field("address")),
                ("city", &field("city")),
                ("active", "1"),
                ("lease_places_per_day", "0"),
                ("quota_day", "8"),
                ("quota_week", "30"),
                ("kiosk_quota_day", "5"),
                ("kiosk_quota_week", "12"),
            ],
        )
        .await;
    assert_eq!(status, 303, "the quotas are saved");
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    kiosk.wait_up_to_date().await;

    let ids: Vec<Uuid> = (0..3000).map(|_| Uuid::now_v7()).collect();
    let flood: Vec<Request> = ids
        .iter()
        .map(|id| request(&kiosk, *id, "Flood".into()))
        .collect();
    kiosk.core.write_raw_requests(&flood).unwrap();
    eventually(120, "every request to be decided", || {
        ids.iter().all(|id| kiosk.core.verdict(*id).is_some())
    })
    .await;

    let held = held_by_kiosk(&app, &kiosk);
    let booked: i64 = held.iter().map(|(_, n)| n).sum();
    assert!(booked > 0, "the quota lets some through");
    for (date, n) in &held {
        assert!(*n <= 5, "{n} places on {date}");
    }
    let mut weeks: std::collections::BTreeMap<String, i64> = Default::default();
    for (date, n) in &held {
        let date: coper_shared::jiff::civil::Date = date.parse().unwrap();
        let week = date.iso_week_date();
        *weeks
            .entry(format!("{}-{}", week.year(), week.week()))
            .or_default() += n;
    }
    assert!(weeks.values().all(|n| *n <= 12), "{weeks:?}");
    // Every other request says why: its quota, or (past the first 500 of one batch) too many.
    let reasons: Vec<Option<String>> = ids
        .iter()
        .map(|id| kiosk.core.verdict(*id).unwrap().reason)
        .filter(Option::is_some)
        .collect();
    assert_eq!(reasons.len() as i64, 3000 - booked);
    assert!(
        reasons
            .iter()
            .all(|r| matches!(r.as_deref(), Some("quota_reached" | "too_many_requests")))
    );
    assert!(reasons.contains(&Some("quota_reached".into())));

    // Revoked, the kiosk's bookings stay valid until cancelled; the page lists them first.
    let kiosk_id = kiosk.core.kiosk_id().to_string();
    let (status, _) = app
        .submit(&admin, &format!("/admin/kiosks/{kiosk_id}/revoke"), &[])
        .await;
    assert_eq!(status, 303);
    let listed = String::from_utf8(
        app.fetch(
            &admin,
            &format!("/admin/appointments?status=booked&revoked=1&kiosk={kiosk_id}"),
        )
        .await
        .1,
    )
    .unwrap();
    assert!(listed.contains("id=\"revoked\""));
    assert!(listed.contains(&format!("Annulla tutte le {booked} prenotazioni")));
    // Without the confirmation, nothing happens.
    let cancel_fields = [("kiosk", kiosk_id.as_str()), ("reason", "Chiosco rubato")];
    let (_, page) = app
        .submit(&admin, "/admin/appointments/cancel-all", &cancel_fields)
        .await;
    assert!(page.contains("spuntare la conferma"));
    assert_eq!(held_by_kiosk(&app, &kiosk).len(), held.len());
    let mut confirmed = cancel_fields.to_vec();
    confirmed.push(("confirm", "1"));
    let (status, page) = app
        .submit(&admin, "/admin/appointments/cancel-all", &confirmed)
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("Prenotazioni annullate: {booked}.")),
        "{page}"
    );
    assert!(held_by_kiosk(&app, &kiosk).is_empty());
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'appointments.bulk_cancelled'
             AND json_extract(detail, '$.count') > 0 AND json_extract(detail, '$.reason') = 'Chiosco rubato'"
        ),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'appointment.cancelled'"),
        booked
    );
}

/// Finding 5: while a 20,000-row ready list is being imported, `/healthz` (and every page that
/// only reads) answers from a query-only connection, not behind the import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_within_100_ms_while_a_big_import_runs() {
    let app = spawn_demo().await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let mut csv = String::from("cognome;nome;data di nascita;data impronte;assicurata\n");
    for n in 0..20_000u32 {
        csv.push_str(&format!(
            "Persona{n};Nome{};{:02}/{:02}/19{:02};{:02}/{:02}/2026;88{n:010}\n",
            n % 97,
            n % 28 + 1,
            n % 12 + 1,
            n % 90 + 10,
            n % 28 + 1,
            n % 9 + 1,
        ));
    }
    let import = {
        let (app_url, admin) = (app.url("/admin/permits/import"), admin.clone());
        let client = app.page_client();
        tokio::spawn(async move {
            let response = client
                .post(app_url)
                .header("cookie", &admin.cookie)
                .form(&[("csrf", admin.csrf.as_str()), ("csv", csv.as_str())])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    let mut during = 0;
    while !import.is_finished() {
        let started = std::time::Instant::now();
        let (status, _) = app.get("/healthz").await;
        let took = started.elapsed();
        assert_eq!(status, 200);
        // Probes that ended before the import did were made while it ran.
        if !import.is_finished() {
            slowest = slowest.max(took);
            during += 1;
        }
        probes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, page) = import.await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("20000 aggiunti"), "the import ran");
    assert_eq!(
        app.scalar("SELECT count(*) FROM ready_permits WHERE surname LIKE 'Persona%'"),
        20_000
    );
    assert!(
        during >= 5,
        "only {during} of {probes} probes ran during the import"
    );
    assert!(
        slowest < Duration::from_millis(100),
        "/healthz took {slowest:?} during the import"
    );
}

/// The bytes the server stores for `kiosk`'s outbox.
async fn outbox_bytes(db: &coper_server::store::Db, kiosk: &TestKiosk) -> u64 {
    let name = coper_shared::documents::DocName::Outbox(kiosk.core.kiosk_id()).to_string();
    db.read(move |conn| coper_server::store::documents::stored_bytes(conn, &name))
        .await
        .unwrap()
}

/// Finding 3, the document as a whole: a kiosk's outbox may take only so much of the server's
/// store. Past the limit its next sync message is refused unapplied, the kiosk is told why
/// (`outbox_full`, on its status bar), and what it sent later is never decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_takes_no_more_and_the_kiosk_is_told() {
    use coper_server::{AppState, clock::Clock, limits::Limits, serve, store::Db};

    let mut app = spawn_demo().await;
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    kiosk.wait_up_to_date().await;
    let data = app.keep_data().expect("the demo's folder");
    app.signal_and_wait("TERM");

    // The same database, served in this process with a small outbox limit.
    let db = Db::open(&data.path().join("data/coper.sqlite3")).unwrap();
    let start = outbox_bytes(&db, &kiosk).await;
    let limits = Limits {
        outbox_bytes: start + 1_000,
        ..Limits::default()
    };
    let message_limit = limits.sync_message_bytes as u64;
    let state = AppState::with_limits(db.clone(), Clock::System, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/api/v1/sync", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    let kiosk = kiosk.reconnect_via(&url).await;
    kiosk.wait_up_to_date().await;

    // A first burst passes the limit (it was checked before it arrived) and is decided.
    let burst = |n: usize| -> Vec<Request> {
        (0..n)
            .map(|i| request(&kiosk, Uuid::now_v7(), format!("Persona{i:03}")))
            .collect()
    };
    let first = burst(60);
    kiosk.core.write_raw_requests(&first).unwrap();
    eventually(30, "the first burst to be decided", || {
        first.iter().all(|r| kiosk.core.verdict(r.id).is_some())
    })
    .await;
    let full = outbox_bytes(&db, &kiosk).await;
    assert!(
        full > start + 1_000,
        "the outbox is full now: {start} then {full}"
    );

    // The next one is refused unapplied, and the kiosk shows why.
    let second = burst(5);
    kiosk.core.write_raw_requests(&second).unwrap();
    eventually(30, "the kiosk to be told its outbox is full", || {
        kiosk.core.status().refused.as_deref() == Some("outbox_full")
    })
    .await;
    assert!(second.iter().all(|r| kiosk.core.verdict(r.id).is_none()));
    let stored = outbox_bytes(&db, &kiosk).await;
    assert!(
        stored < start + 1_000 + message_limit,
        "past the limit by one message at most: {stored}"
    );
    kiosk.core.shutdown().await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Finding 7, the key: a kiosk's signing key is sealed with its key file. The same folder
/// copied without the key file cannot start, so a stolen disk cannot sign as the kiosk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_kiosk_folder_without_its_key_file_cannot_sign() {
    let app = spawn_demo().await;
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let proposal = kiosk.core.first_free(&delivery()).unwrap().unwrap();
    let booked = kiosk
        .core
        .book(&delivery(), proposal.slot.key(), "Rossi", "Ana", None)
        .unwrap();
    let verdict = kiosk
        .core
        .wait_for_verdict(booked.request, Duration::from_secs(20))
        .await
        .expect("a sealed key signs as well as any");
    assert_eq!(verdict.outcome, Outcome::Confirmed);
    let (core, config, _dir) = kiosk.into_parts();
    core.shutdown().await;
    let copied = coper_kiosk::core::KioskConfig {
        key_file: None,
        ..config.clone()
    };
    assert!(matches!(
        coper_kiosk::core::KioskCore::start(copied),
        Err(coper_kiosk::core::CoreError::KeyLocked(_))
    ));
    // With its key file, the kiosk starts again.
    let again = coper_kiosk::core::KioskCore::start(config).expect("starts with its key file");
    again.shutdown().await;
}

/// Every byte under `dir`, for looking for what must not be there.
fn bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(bytes_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

/// Finding 7, the people: a kiosk's outbox carries names and phones sealed for the server, and
/// the clear copy the kiosk keeps for its list and the reminder is deleted once the booking is
/// decided and printed; the server books the person under their name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_keeps_names_in_clear_only_until_the_booking_is_settled() {
    use coper_shared::automerge::AutoCommit;
    use coper_shared::documents::{DocName, collections, records};

    let app = spawn_demo().await;
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let proposal = kiosk.core.first_free(&delivery()).unwrap().unwrap();
    let booked = kiosk
        .core
        .book(
            &delivery(),
            proposal.slot.key(),
            "Zyxwvutsrq",
            "Qwertyuiop",
            Some("+39 333 987 6543"),
        )
        .unwrap();
    let verdict = kiosk
        .core
        .wait_for_verdict(booked.request, Duration::from_secs(20))
        .await
        .expect("a verdict");
    assert_eq!(verdict.outcome, Outcome::Confirmed);
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM appointments WHERE surname = 'Zyxwvutsrq'
             AND given_names = 'Qwertyuiop' AND phone = '+393339876543'"
        ),
        1,
        "the server opened the sealed fields"
    );

    // The outbox the kiosk keeps has the request sealed: no name, no phone.
    let database = kiosk.config.data_dir.join("kiosk.sqlite3");
    let outbox_name = DocName::Outbox(kiosk.core.kiosk_id()).to_string();
    let snapshot: Vec<u8> = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row(
            "SELECT snapshot FROM documents WHERE name = ?1",
            [&outbox_name],
            |r| r.get(0),
        )
        .unwrap();
    let outbox = AutoCommit::load(&snapshot).unwrap();
    let requests = records::<Request>(&outbox, collections::REQUESTS);
    assert!(!requests.is_empty());
    for (_, request) in &requests {
        assert!(
            request.surname.is_empty() && request.phone.is_none(),
            "{request:?}"
        );
        assert!(request.sealed.is_some());
    }

    // Its list shows the name until the reminder is printed; then the kiosk forgets it.
    let listed = |core: &coper_kiosk::core::KioskCore| {
        core.bookings()
            .into_iter()
            .find(|b| b.request == booked.request)
            .unwrap()
            .surname
    };
    assert_eq!(listed(&kiosk.core), "Zyxwvutsrq");
    let booking = kiosk
        .core
        .bookings()
        .into_iter()
        .find(|b| b.request == booked.request)
        .unwrap();
    kiosk.core.reminder_printed(&booking, false).unwrap();
    assert_eq!(listed(&kiosk.core), "");
    // The partner body's list has the person, in memory only: never on the disk.
    crate::helpers::eventually(15, "the body's bookings to arrive", || {
        kiosk
            .core
            .partner_bookings()
            .iter()
            .any(|b| b.surname == "Zyxwvutsrq")
    })
    .await;
    let disk = bytes_under(&kiosk.config.data_dir);
    for secret in ["Zyxwvutsrq", "Qwertyuiop", "3339876543"] {
        assert!(
            !disk.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is still on the kiosk's disk"
        );
    }
}

/// Kiosks coming back together (after an outage, a restart of the server) wait their turn at
/// the gate instead of being refused and sent away for seconds: with a single place for a
/// starting session, six kiosks restarted at once are all brought up to date, and the server
/// turned none of them away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosks_connecting_together_wait_their_turn_instead_of_being_refused() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[limits]\nunauthenticated_syncs = 1\nsync_admission_wait_secs = 60\n",
    )
    .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let app = crate::helpers::spawn(crate::helpers::Options {
        demo: true,
        args: vec!["--config".into(), config.path().display().to_string()],
        log_file: Some(log.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let mut kiosks = Vec::new();
    for partner in [1, 2, 1, 2, 1, 2] {
        kiosks.push(TestKiosk::enrol(&app, partner, &app.ws_url()).await);
    }
    let kiosks = join_all(kiosks.into_iter().map(TestKiosk::restart)).await;
    for kiosk in &kiosks {
        kiosk.wait_up_to_date().await;
    }
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        !log.contains("too many connections"),
        "a kiosk was turned away:\n{log}"
    );
    assert_eq!(app.get("/healthz").await.0, 200);
}
