//! The floors every figure is printed beside, measured in the same run on the same machine: what
//! a durable SQLite commit costs on this disk, and what a WebSocket round trip costs on loopback.
//! A decided booking cannot be faster than one of each.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::percentile;

/// The floors, measured once per run.
pub struct Floors {
    /// Median of one committed INSERT, WAL mode, `synchronous = FULL` (as the server runs).
    pub durable_commit: Duration,
    /// Its 99th percentile and its longest, of 2,000: the disk's own tail.
    pub durable_commit_p99: Duration,
    pub durable_commit_max: Duration,
    /// Median and 99th percentile of a 200-byte binary message echoed over a loopback WebSocket.
    pub echo_p50: Duration,
    pub echo_p99: Duration,
}

impl Floors {
    /// Measure both, with a database file in `dir` (put it where the server's data is).
    pub async fn measure(dir: &Path) -> Self {
        let (durable_commit, durable_commit_p99, durable_commit_max) = durable_commit(dir, 2000);
        let (echo_p50, echo_p99) = websocket_echo(1000).await;
        Self {
            durable_commit,
            durable_commit_p99,
            durable_commit_max,
            echo_p50,
            echo_p99,
        }
    }

    /// One decided booking at its floor: the kiosk's request to the server and its verdict back
    /// (one WebSocket round trip) plus one durable commit.
    pub fn booking(&self) -> Duration {
        self.echo_p50 + self.durable_commit
    }

    pub fn print(&self) {
        println!(
            "floors on this machine: durable SQLite commit (WAL, synchronous=FULL) {:.3} ms \
             (p99 {:.2} ms, max {:.1} ms of 2,000); WebSocket echo on loopback p50 {:.3} ms, p99 \
             {:.3} ms; a booking's floor (one of each) {:.2} ms",
            ms(self.durable_commit),
            ms(self.durable_commit_p99),
            ms(self.durable_commit_max),
            ms(self.echo_p50),
            ms(self.echo_p99),
            ms(self.booking()),
        );
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A durable commit's median, 99th percentile and longest, of `rounds`.
fn durable_commit(dir: &Path, rounds: usize) -> (Duration, Duration, Duration) {
    let path = dir.join("floor.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute("CREATE TABLE t (x BLOB)", []).unwrap();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            conn.execute("INSERT INTO t (x) VALUES (randomblob(200))", [])
                .unwrap();
            t0.elapsed()
        })
        .collect();
    drop(conn);
    let _ = std::fs::remove_file(&path);
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default(),
    )
}

async fn websocket_echo(rounds: usize) -> (Duration, Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(message)) = socket.next().await {
            if message.is_binary() && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}"), None, true)
            .await
            .unwrap();
    let payload = vec![7u8; 200];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t0 = Instant::now();
        socket
            .send(Message::Binary(payload.clone().into()))
            .await
            .unwrap();
        while let Some(Ok(message)) = socket.next().await {
            if message.is_binary() {
                break;
            }
        }
        times.push(t0.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}
