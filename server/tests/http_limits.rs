//! The HTTP limits of `coper_server::serve`, over real sockets on loopback with a real database:
//! a request body trickled past its deadline is refused and the connection closed.

use std::time::{Duration, Instant};

use coper_server::{AppState, clock::Clock, limits::Limits, serve, store::Db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_refused_after_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("coper.sqlite3")).unwrap();
    let limits = Limits {
        http_body: Duration::from_secs(2),
        ..Limits::default()
    };
    let state = AppState::with_limits(db, Clock::System, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    socket
        .write_all(
            b"POST /status-check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nsurname=",
        )
        .await
        .unwrap();
    // One byte a second, for longer than the deadline.
    let mut answer = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if socket.write_all(b"x").await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
