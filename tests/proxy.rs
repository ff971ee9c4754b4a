//! The office's network in the tests: a WebSocket forwarder on loopback between a kiosk and the
//! server that can be cut, restored and pointed at a restarted server, and that can mistreat
//! messages by a seeded plan (drop, duplicate, delay) while counting what it did.

use std::time::Duration;

/// Probabilities, in percent, of what happens to each WebSocket message crossing a [`Proxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub drop: u8,
    pub duplicate: u8,
    /// Delayed by 5–60 ms, so later messages overtake it.
    pub delay: u8,
}

impl Faults {
    /// A well-behaved network.
    pub const NONE: Self = Self {
        drop: 0,
        duplicate: 0,
        delay: 0,
    };
}

/// What a [`Proxy`] did to the messages it carried, for a campaign to check that each fault
/// really happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
}

/// A WebSocket forwarder on loopback between kiosks and the server, standing for the office's
/// network: `cut` takes the office offline (live connections are dropped and new ones refused),
/// `restore` brings it back, `retarget` points it at a restarted server. With [`Faults`], it
/// also drops, duplicates and delays (hence reorders) messages by a seeded plan, each direction
/// of each connection drawing from its own generator.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    target: std::net::SocketAddr,
    online: bool,
    /// Bumped on every cut, so connections of an earlier epoch close.
    epoch: tokio::sync::watch::Sender<u64>,
    faults: Faults,
    rng: fastrand::Rng,
    counts: std::sync::Arc<std::sync::Mutex<FaultCounts>>,
}

impl Proxy {
    /// A proxy that forwards every message as it is.
    pub async fn start(target: std::net::SocketAddr) -> Self {
        Self::with_faults(target, 0, Faults::NONE).await
    }

    /// A proxy that mistreats messages by `faults`, replayably from `seed`.
    pub async fn with_faults(target: std::net::SocketAddr, seed: u64, faults: Faults) -> Self {
        use futures_util::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (epoch, _) = tokio::sync::watch::channel(0);
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState {
            target,
            online: true,
            epoch,
            faults,
            rng: fastrand::Rng::with_seed(seed),
            counts: Default::default(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (online, target, mut epoch, up, down) = {
                    let mut s = shared.lock().unwrap();
                    let (up, down) = (s.rng.u64(..), s.rng.u64(..));
                    (
                        s.online,
                        s.target,
                        s.epoch.subscribe(),
                        Plan::new(up, s.faults, s.counts.clone()),
                        Plan::new(down, s.faults, s.counts.clone()),
                    )
                };
                if !online {
                    drop(stream);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(kiosk) =
                        tokio_tungstenite::accept_hdr_async(stream, state_version).await
                    else {
                        return;
                    };
                    let Ok(server) =
                        crate::harness::connect_sync(&format!("ws://{target}/api/v1/sync")).await
                    else {
                        return;
                    };
                    let (kiosk_tx, kiosk_rx) = kiosk.split();
                    let (server_tx, server_rx) = server.split();
                    tokio::select! {
                        _ = pump(kiosk_rx, server_tx, up) => {}
                        _ = pump(server_rx, kiosk_tx, down) => {}
                        _ = epoch.changed() => {}
                    }
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/api/v1/sync", self.addr)
    }

    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap();
        s.online = false;
        s.epoch.send_modify(|e| *e += 1);
    }

    pub fn restore(&self) {
        self.state.lock().unwrap().online = true;
    }

    pub fn retarget(&self, target: std::net::SocketAddr) {
        let mut s = self.state.lock().unwrap();
        s.target = target;
        s.epoch.send_modify(|e| *e += 1);
    }

    /// What the proxy has done to messages so far.
    pub fn counts(&self) -> FaultCounts {
        *self.state.lock().unwrap().counts.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction's fault plan: its own generator, and the proxy's counters.
struct Plan {
    rng: fastrand::Rng,
    faults: Faults,
    counts: std::sync::Arc<std::sync::Mutex<FaultCounts>>,
}

impl Plan {
    fn new(
        seed: u64,
        faults: Faults,
        counts: std::sync::Arc<std::sync::Mutex<FaultCounts>>,
    ) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            faults,
            counts,
        }
    }
}

/// Forward messages one way, dropping, duplicating and delaying (hence reordering) some.
async fn pump<R, W>(mut rx: R, tx: W, mut plan: Plan)
where
    R: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
    W: futures_util::Sink<tokio_tungstenite::tungstenite::Message> + Unpin + Send + 'static,
{
    use futures_util::{SinkExt, StreamExt};
    let tx = std::sync::Arc::new(tokio::sync::Mutex::new(tx));
    let Faults {
        drop,
        duplicate,
        delay,
    } = plan.faults;
    while let Some(Ok(message)) = rx.next().await {
        if message.is_close() {
            break;
        }
        let (roll, delay_ms) = (plan.rng.u8(0..100), plan.rng.u64(5..60));
        let copies = if roll < drop {
            0
        } else if roll < drop + duplicate {
            2
        } else {
            1
        };
        let delayed = copies > 0 && roll >= 100 - delay;
        {
            let mut counts = plan.counts.lock().unwrap();
            counts.forwarded += 1;
            counts.dropped += u64::from(copies == 0);
            counts.duplicated += u64::from(copies == 2);
            counts.delayed += u64::from(delayed);
        }
        if delayed {
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

/// Tell the kiosk this build's protocol version, as the server would (the proxy states it to the
/// server too, as the kiosk would).
// tungstenite's callback returns its error response by value.
#[allow(clippy::result_large_err)]
fn state_version(
    _: &tokio_tungstenite::tungstenite::handshake::server::Request,
    mut response: tokio_tungstenite::tungstenite::handshake::server::Response,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::server::Response,
    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse,
> {
    response.headers_mut().insert(
        coper_shared::protocol::VERSION_HEADER,
        tokio_tungstenite::tungstenite::http::HeaderValue::from(u16::from(
            coper_shared::protocol::VERSION,
        )),
    );
    Ok(response)
}
