//! The server under hostile input (issue "Hardening"): each finding of the attack on the demo
//! server becomes a test that failed before the fix.

use std::time::Duration;

use coper_shared::documents::{Outcome, Request, RequestKind};
use futures_util::{SinkExt, future::join_all};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use uuid::Uuid;

use crate::helpers::{TestApp, TestKiosk, delivery, spawn_demo};

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
            if let Ok((mut socket, _)) = connect_async(url).await {
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
/// after the header-read timeout (10 s), so idle sockets cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_demo().await;
    let mut trickle = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let started = std::time::Instant::now();
    for piece in ["GET /healthz HTTP/1.1\r\n", "Host: x\r\n", "X-A: 1\r\n"] {
        trickle.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
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
        started.elapsed() >= Duration::from_secs(9),
        "not before the limit"
    );
    // Meanwhile, and after, the server answers.
    assert_eq!(app.get("/healthz").await.0, 200);
}
