//! Every limit the server applies to what arrives from the network, in one place, each with a
//! safe default. docs/SECURITY.md lists them; a new limit belongs here.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use coper_shared::decide::RequestLimits;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Threads the server runs blocking work on (SQLite, documents waiting for their lock, the
/// sandbox). Tokio's default is 512: when hundreds of kiosks sync at once, each waiting task took
/// a thread of its own, with its stack and its heap, and the server held 60–80 MiB more with 500
/// kiosks connected (docs/BENCHMARKS.md). The work itself runs on one writing connection and a
/// few readers, so more threads than this only wait.
pub const BLOCKING_THREADS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest WebSocket message a kiosk may send. A message beyond it ends the session
    /// before it is held whole (a day of offline bookings is a few kilobytes).
    pub sync_message_bytes: usize,
    /// Sync connections starting, in total: not yet past the challenge, or past it and being
    /// brought up to date before their session starts (the key keeps its first name).
    pub unauthenticated_syncs: usize,
    /// Sync connections waiting for one of those places, and how long each may wait before it
    /// is refused (`503` with `Retry-After`). After an outage hundreds of kiosks come back at
    /// once: waiting a moment in line keeps the server busy with them, where a refusal sends each
    /// away for seconds while the server sits idle (docs/BENCHMARKS.md, the reconnect storm).
    /// The wait is below the kiosk's 5 s connection timeout.
    pub syncs_waiting: usize,
    pub sync_admission_wait: Duration,
    /// Sync connections from one address (a partner office's kiosks share its address).
    pub syncs_per_address: usize,
    /// How long a kiosk has to answer the challenge.
    pub auth_timeout: Duration,
    /// What one request may carry, and how many one batch may hold.
    pub requests: RequestLimits,
    /// The most a kiosk's outbox document may take in the store. Past it, the kiosk's next sync
    /// message to its outbox is refused unapplied (`outbox_full`) and its session ends; what was
    /// already received is decided as usual. A request takes a few hundred bytes: this is years
    /// of an office's bookings, and bounds what one kiosk can make the server store.
    pub outbox_bytes: u64,
    /// How long a client may take to send a request's headers, and how long an idle
    /// connection waits for its next request, before it is closed.
    pub http_header_read: Duration,
    /// How long a client may take to send a request's body, from its headers on.
    pub http_body: Duration,
    /// The executable that parses kiosks' changes in a child process first
    /// (`crate::sync::sandbox`): the server binary itself, set by `serve`. `None` applies them
    /// directly (for tests that run the server inside their own process).
    pub sync_sandbox: Option<std::path::PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (none by default): behind them, every
    /// limit keyed on an address is keyed on the real client's. See [`client_address`].
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// "Tell me when my permit is ready" requests kept at once, and for how many days each. A
    /// request past the first limit is refused (the person is told to check again later).
    pub ready_watches: usize,
    pub ready_watch_days: i64,
    /// A file a person sends for the document pre-check, and how many one conversation holds.
    pub precheck_file_bytes: usize,
    pub precheck_files_per_conversation: usize,
    /// A message of the pre-check conversation, in characters.
    pub precheck_message_chars: usize,
    /// Messages and files a minute through one person's link, and from one network.
    pub precheck_per_minute: u32,
    /// Days the files a person sent are kept after their booking ends or their conversation
    /// is closed.
    pub precheck_keep_days: i64,
    /// Below this much free disk where the data folder is, `/healthz/ready` answers 503 (a
    /// full disk stops every booking: the technician must hear of it before).
    pub ready_min_free_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sync_message_bytes: 1 << 20,
            unauthenticated_syncs: 32,
            syncs_waiting: 1024,
            sync_admission_wait: Duration::from_secs(3),
            syncs_per_address: 32,
            auth_timeout: Duration::from_secs(10),
            requests: RequestLimits::default(),
            outbox_bytes: 32 << 20,
            http_header_read: Duration::from_secs(10),
            http_body: Duration::from_secs(60),
            sync_sandbox: None,
            trusted_proxies: Vec::new(),
            ready_watches: 20_000,
            ready_watch_days: 180,
            precheck_file_bytes: 10 << 20,
            precheck_files_per_conversation: 30,
            precheck_message_chars: 2_000,
            precheck_per_minute: 20,
            precheck_keep_days: 30,
            ready_min_free_bytes: 256 << 20,
        }
    }
}

/// The `[limits]` table of the configuration file: any limit, in plain numbers (bytes, counts,
/// seconds); what is left out keeps its default. An unknown key is an error, never ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub sync_message_bytes: Option<usize>,
    pub unauthenticated_syncs: Option<usize>,
    pub syncs_waiting: Option<usize>,
    pub sync_admission_wait_secs: Option<u64>,
    pub syncs_per_address: Option<usize>,
    pub auth_timeout_secs: Option<u64>,
    pub name_chars: Option<usize>,
    pub phone_chars: Option<usize>,
    pub requests_per_batch: Option<usize>,
    pub outbox_bytes: Option<u64>,
    pub http_header_read_secs: Option<u64>,
    pub http_body_secs: Option<u64>,
    pub ready_watches: Option<usize>,
    pub ready_watch_days: Option<i64>,
    pub precheck_file_bytes: Option<usize>,
    pub precheck_files_per_conversation: Option<usize>,
    pub precheck_message_chars: Option<usize>,
    pub precheck_per_minute: Option<u32>,
    pub precheck_keep_days: Option<i64>,
    pub ready_min_free_bytes: Option<u64>,
}

impl LimitsFile {
    /// The defaults with what the file sets; a zero where zero would stop the service is refused.
    pub fn apply(&self, mut limits: Limits) -> Result<Limits, String> {
        let positive = |name: &str, value: u64| {
            if value == 0 {
                Err(format!("limits.{name} must be more than 0"))
            } else {
                Ok(value)
            }
        };
        macro_rules! set {
            ($field:ident => $target:expr, $convert:expr) => {
                if let Some(value) = self.$field {
                    positive(stringify!($field), value as u64)?;
                    $target = $convert(value);
                }
            };
        }
        set!(sync_message_bytes => limits.sync_message_bytes, |v| v);
        set!(unauthenticated_syncs => limits.unauthenticated_syncs, |v| v);
        set!(syncs_waiting => limits.syncs_waiting, |v| v);
        set!(sync_admission_wait_secs => limits.sync_admission_wait, Duration::from_secs);
        set!(syncs_per_address => limits.syncs_per_address, |v| v);
        set!(auth_timeout_secs => limits.auth_timeout, Duration::from_secs);
        set!(name_chars => limits.requests.name_chars, |v| v);
        set!(phone_chars => limits.requests.phone_chars, |v| v);
        set!(requests_per_batch => limits.requests.per_batch, |v| v);
        set!(outbox_bytes => limits.outbox_bytes, |v| v);
        set!(http_header_read_secs => limits.http_header_read, Duration::from_secs);
        set!(http_body_secs => limits.http_body, Duration::from_secs);
        set!(ready_watches => limits.ready_watches, |v| v);
        set!(ready_watch_days => limits.ready_watch_days, |v| v);
        set!(precheck_file_bytes => limits.precheck_file_bytes, |v| v);
        set!(precheck_files_per_conversation => limits.precheck_files_per_conversation, |v| v);
        set!(precheck_message_chars => limits.precheck_message_chars, |v| v);
        set!(precheck_per_minute => limits.precheck_per_minute, |v| v);
        set!(precheck_keep_days => limits.precheck_keep_days, |v| v);
        set!(ready_min_free_bytes => limits.ready_min_free_bytes, |v| v);
        Ok(limits)
    }
}

/// The address of the client behind a connection from `peer`: `peer` itself, unless `peer` is
/// a trusted proxy, in which case the right-most address of `X-Forwarded-For` (`forwarded`, the
/// header's values in order) that is not itself a trusted proxy. A client can write anything in
/// the header, but only what our own proxies appended to its right is believed.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a [u8]>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A garbled header was not written by our proxy whole: believe only the connection.
        .unwrap_or_default();
    hops.iter()
        .rev()
        .find(|hop| !is_trusted(hop))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// Admission of sync connections: at most [`Limits::unauthenticated_syncs`] starting (the
/// challenge, then the kiosk brought up to date), and behind them at most [`Limits::syncs_waiting`] waiting in line for a place, each
/// for [`Limits::sync_admission_wait`] at most; at most [`Limits::syncs_per_address`] from one
/// address, waiting or not.
#[derive(Debug)]
pub struct SyncGate {
    unauthenticated: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// A sync connection let in: it holds its address's place for its lifetime, and a place among
/// the unauthenticated until [`Admitted::authenticated`].
#[derive(Debug)]
pub struct Admitted {
    unauthenticated: Option<OwnedSemaphorePermit>,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a sync connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdmitted {
    /// Its address has [`Limits::syncs_per_address`] connections already.
    Address,
    /// Every place was taken, and the line was full or did not move in time.
    Busy,
}

impl SyncGate {
    pub fn new(limits: &Limits) -> Self {
        Self {
            unauthenticated: Arc::new(Semaphore::new(limits.unauthenticated_syncs)),
            waiting: AtomicUsize::new(0),
            max_waiting: limits.syncs_waiting,
            wait: limits.sync_admission_wait,
            per_address: Arc::default(),
            max_per_address: limits.syncs_per_address,
        }
    }

    /// Let a connection from `address` in, waiting in line for a place if need be.
    pub async fn admit(&self, address: IpAddr) -> Result<Admitted, NotAdmitted> {
        let mut admitted = {
            let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(address).or_default();
            if *count >= self.max_per_address {
                return Err(NotAdmitted::Address);
            }
            *count += 1;
            // From here on, dropping `admitted` gives the address's place back.
            Admitted {
                unauthenticated: None,
                address,
                per_address: self.per_address.clone(),
            }
        };
        let permit = match self.unauthenticated.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _line = Line::join(&self.waiting, self.max_waiting).ok_or(NotAdmitted::Busy)?;
                let waited =
                    tokio::time::timeout(self.wait, self.unauthenticated.clone().acquire_owned());
                let Ok(Ok(permit)) = waited.await else {
                    return Err(NotAdmitted::Busy);
                };
                permit
            }
        };
        admitted.unauthenticated = Some(permit);
        Ok(admitted)
    }
}

/// A place in the gate's line, given back when dropped.
struct Line<'a>(&'a AtomicUsize);

impl<'a> Line<'a> {
    fn join(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admitted {
    /// The kiosk proved who it is and its session started: its place among those starting is
    /// free again.
    pub fn started(&mut self) {
        self.unauthenticated = None;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sets_some_limits_and_keeps_the_others() {
        let file: LimitsFile = toml::from_str("outbox_bytes = 1000\nhttp_body_secs = 5\n").unwrap();
        let limits = file.apply(Limits::default()).unwrap();
        assert_eq!(limits.outbox_bytes, 1000);
        assert_eq!(limits.http_body, Duration::from_secs(5));
        assert_eq!(
            limits.sync_message_bytes,
            Limits::default().sync_message_bytes
        );
        let zero: LimitsFile = toml::from_str("syncs_per_address = 0").unwrap();
        assert!(zero.apply(Limits::default()).is_err());
        assert!(toml::from_str::<LimitsFile>("sync_mesage_bytes = 1").is_err());
    }

    #[test]
    fn the_client_is_read_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let header = |v: &'static str| std::iter::once(v.as_bytes());
        // Straight from the internet: the header is the client's to forge, and ignored.
        assert_eq!(
            client_address(ip("203.0.113.5"), header("198.51.100.1"), &trusted),
            ip("203.0.113.5")
        );
        // Through our proxy: the right-most hop it did not add is the client.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                header("1.2.3.4, 203.0.113.5, 10.0.0.3"),
                &trusted
            ),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), header("2001:db8::1"), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), header("nonsense, 203.0.113.5"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), std::iter::empty(), &trusted),
            ip("10.0.0.2")
        );
        // No proxy trusted: the connection is the client.
        assert_eq!(
            client_address(ip("10.0.0.2"), header("203.0.113.5"), &[]),
            ip("10.0.0.2")
        );
    }

    #[tokio::test]
    async fn the_gate_counts_waiting_and_per_address_connections() {
        let gate = |wait: Duration| {
            SyncGate::new(&Limits {
                unauthenticated_syncs: 2,
                syncs_per_address: 2,
                syncs_waiting: 1,
                sync_admission_wait: wait,
                ..Limits::default()
            })
        };
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        let elsewhere: IpAddr = "127.0.0.3".parse().unwrap();

        // Both places taken: the next waits in line, and is refused when nobody moves in time.
        let impatient = gate(Duration::from_millis(200));
        let _first = impatient.admit(here).await.unwrap();
        let _second = impatient.admit(there).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(impatient.admit(there).await.unwrap_err(), NotAdmitted::Busy);
        assert!(started.elapsed() >= Duration::from_millis(200), "it waited");

        let gate = gate(Duration::from_secs(60));
        let mut first = gate.admit(here).await.unwrap();
        let _second = gate.admit(there).await.unwrap();
        // One in line, while the next finds the line full and is refused at once.
        let waiting = gate.admit(elsewhere);
        tokio::pin!(waiting);
        assert!(futures_util::FutureExt::now_or_never(waiting.as_mut()).is_none());
        let started = std::time::Instant::now();
        assert_eq!(gate.admit(elsewhere).await.unwrap_err(), NotAdmitted::Busy);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the line is full"
        );
        // The first's session starts: the one in line takes its place.
        first.started();
        let mut third = waiting.await.expect("let in when a place frees");
        third.started();
        let mut fourth = gate.admit(here).await.unwrap();
        fourth.started();
        assert_eq!(
            gate.admit(here).await.unwrap_err(),
            NotAdmitted::Address,
            "two from one address"
        );
        drop(first);
        assert!(
            gate.admit(here).await.is_ok(),
            "a closed connection frees its place"
        );
    }
}
