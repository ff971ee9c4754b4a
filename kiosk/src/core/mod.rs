//! The kiosk's core, with no UI: its identity, its replicas of the agenda, the API the screens
//! call, and the sync client that keeps it all in step with the server.
//!
//! Everything the UI asks is answered from the local replica at once, online or offline. A booking
//! is written into the kiosk's outbox and committed to the local SQLite store **before**
//! [`KioskCore::book`] returns, so nothing printed can be lost; the sync client then carries it to
//! the server, and the server's verdict comes back through the inbox.
//!
//! Offline, a booking inside one of the kiosk's leases is confirmed at once (the server honours it
//! in place); any other booking is provisional until the server decides.
//!
//! [`KioskCore`] is one type whose methods live by concern: `booking` (propose, book, cancel,
//! bookings, verdicts, tickets), `operators` (logging in with the accounts the server sent),
//! `ready` (the ready list and the public self-check), `limits` (the per-kiosk sliding windows),
//! `status` (the status bar, change notifications, and what tests inspect). Here: starting,
//! stopping and enrolling.

mod booking;
mod client;
mod limits;
mod operators;
mod ready;
mod replica;
mod status;
mod store;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use automerge::AutoCommit;
use coper_shared::{
    documents::{DocName, KioskId, Outcome, Verdict},
    ids::ServiceId,
    rules::ServiceRules,
};
use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use booking::BookingRequest;
pub use client::{PINNED_CERTIFICATE, PROTOCOL_VERSION_REFUSAL};
use limits::SlidingWindow;
pub use operators::{LoginAttempt, LoginRefusal};
pub use ready::{MAX_SELF_CHECKS, SelfCheck, SelfCheckRefusal};
pub use replica::Proposal;
pub use status::SyncStatus;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("local database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("local data is damaged: {0}")]
    Corrupt(String),
    #[error("this kiosk is not enrolled yet")]
    NotEnrolled,
    #[error("the kiosk has never synchronised with the server: no agenda yet")]
    NoAgenda,
    #[error("unknown service {0}")]
    UnknownService(String),
    #[error("that slot is no longer free")]
    SlotNotFree,
    #[error("surname is required")]
    MissingSurname,
    /// A phone number or e-mail address that cannot be right.
    #[error("{0}")]
    Contact(#[from] coper_shared::contact::ContactError),
    #[error("no such booking")]
    UnknownBooking,
    #[error("the server refused this kiosk: {code} ({message})")]
    Refused { code: String, message: String },
    #[error("network: {0}")]
    Network(String),
    /// The server is up but turned the connection away for now (too many kiosks connecting at
    /// once), and said when to try again.
    #[error("the server is busy: trying again in {} s", retry_after.as_secs())]
    Busy { retry_after: std::time::Duration },
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server speaks another version of the sync protocol: this kiosk (or the server) must
    /// be updated before they can talk.
    #[error("the server speaks sync protocol {server:?}, this kiosk {kiosk}: update the kiosk")]
    ProtocolVersion { kiosk: u8, server: Option<u8> },
    /// `wss://` asked, and the certificate pinned at enrolment cannot be read.
    #[error("the server's pinned certificate: {0}")]
    Certificate(String),
    /// The signing key is sealed and the key that unseals it is missing or wrong.
    #[error("the kiosk's key is sealed and cannot be opened: {0}")]
    KeyLocked(String),
}

/// How to start a kiosk core.
#[derive(Debug, Clone)]
pub struct KioskConfig {
    /// Folder of the kiosk's local store.
    pub data_dir: PathBuf,
    /// Added to the system clock: for tests of a kiosk whose clock is wrong.
    pub clock_offset_ms: i64,
    /// Flush every commit to disk (true for a real kiosk). `coper-loadgen` turns it off to
    /// simulate hundreds of kiosks on one disk; a commit still survives a crash of the program.
    pub power_loss_safe: bool,
    /// A file of at least 32 random bytes that the operating system protects (a systemd
    /// credential, which `systemd-creds` can bind to the machine's TPM): with it, the kiosk's
    /// signing key is stored sealed, so a copied disk does not hold it. See [`store::KeySeal`].
    pub key_file: Option<PathBuf>,
}

impl KioskConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            clock_offset_ms: 0,
            power_loss_safe: true,
            key_file: None,
        }
    }

    /// The seal for the signing key, if a key file is configured.
    fn key_seal(&self) -> Result<Option<store::KeySeal>, CoreError> {
        self.key_file
            .as_deref()
            .map(store::KeySeal::from_file)
            .transpose()
    }

    fn database(&self) -> PathBuf {
        self.data_dir.join("kiosk.sqlite3")
    }

    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(jiff::SignedDuration::from_millis(self.clock_offset_ms))
            .unwrap_or_else(|_| Timestamp::now())
    }
}

/// Where a booking stands, as the kiosk knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingStatus {
    /// Not yet decided by the server. `lease`: booked into the kiosk's own leased place, so the
    /// server will confirm it in place.
    Pending {
        lease: bool,
    },
    Confirmed,
    Relocated {
        date: jiff::civil::Date,
        time: jiff::civil::Time,
    },
    Rejected {
        reason: String,
    },
    /// A cancellation was asked and not yet confirmed.
    CancelPending,
    Cancelled,
}

/// One booking made at this kiosk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBooking {
    pub request: Uuid,
    pub booking_code: String,
    pub service: ServiceId,
    pub date: jiff::civil::Date,
    pub time: jiff::civil::Time,
    pub surname: String,
    pub given_names: String,
    pub status: BookingStatus,
    /// The server refused this kiosk's cancellation of it, and why (a stable code).
    pub cancel_refused: Option<String>,
    /// The ready permit the operator found for the person (its pre-check is listed on the
    /// reminder).
    pub permit: Option<i64>,
    /// The person's language, while the kiosk still keeps the booking's personal details.
    pub lang: Option<String>,
}

impl LocalBooking {
    /// Whether the reminder may say "confirmed" (rather than "provisional").
    pub fn is_confirmed(&self) -> bool {
        matches!(
            self.status,
            BookingStatus::Confirmed
                | BookingStatus::Relocated { .. }
                | BookingStatus::Pending { lease: true }
        )
    }
}

struct Inner {
    store: Store,
    docs: HashMap<DocName, AutoCommit>,
    kiosk: KioskId,
    online: bool,
    clock_trusted: bool,
    last_sync_ms: Option<i64>,
    refused: Option<String>,
    /// Documents of this session, and whether each holds all the server's changes it announced.
    session_docs: HashMap<DocName, bool>,
    /// When a document last changed or came into step: the sync client's stall detector.
    last_progress: std::time::Instant,
    /// Documents started afresh at this session (see `store::kept_on_disk`) as they were at the
    /// end of the last one: read until the new copy has arrived, so a reconnection does not
    /// empty the operator's list for a moment.
    previous_docs: HashMap<DocName, AutoCommit>,
}

struct Shared {
    config: KioskConfig,
    secret_key: [u8; 32],
    server_url: String,
    inner: Mutex<Inner>,
    /// Woken when the outbox has something new to send.
    outbox_changed: Notify,
    /// Bumped whenever a document or the connection changes: for [`KioskCore::on_change`] and
    /// [`KioskCore::wait_for_verdict`].
    changes: watch::Sender<u64>,
    /// Set by [`KioskCore::shutdown`]: the sync client saves what it holds and stops.
    stopping: std::sync::atomic::AtomicBool,
    stop: Notify,
    /// Recent wrong passwords and self-checks, for the per-kiosk limits (in memory).
    login_failures: SlidingWindow,
    self_checks: SlidingWindow,
    /// The last birth date stretched for the ready list, with its stretch's id.
    last_birth: Mutex<
        Option<(
            String,
            jiff::civil::Date,
            coper_shared::ready_index::TypedBirth,
        )>,
    >,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell whoever watches the core that what it shows may have changed.
    fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// A running kiosk core. Dropping it stops its sync client.
pub struct KioskCore {
    shared: Arc<Shared>,
    client: Option<tokio::task::JoinHandle<()>>,
    /// The runtime the sync client runs on, where change watchers run too.
    runtime: tokio::runtime::Handle,
}

impl Drop for KioskCore {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            client.abort();
        }
    }
}

/// Make this kiosk's key (on the device, never sent anywhere) and enrol it with the server
/// at `server_url` (`ws://host:port/api/v1/sync`) using a one-time `code` from the Questura.
pub async fn enrol(
    config: &KioskConfig,
    server_url: &str,
    code: &str,
) -> Result<KioskId, CoreError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| CoreError::Corrupt(format!("{}: {e}", config.data_dir.display())))?;
    let store = Store::open(&config.database(), config.power_loss_safe)?;
    let seal = config.key_seal()?;
    let secret_key = match store.identity(seal.as_ref())? {
        Some(identity) => identity.secret_key,
        None => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS has randomness");
            key
        }
    };
    store.save_key(&secret_key, server_url, seal.as_ref())?;
    let (kiosk, partner) = client::enrol(
        server_url,
        &config.data_dir,
        &secret_key,
        code,
        config.now(),
    )
    .await?;
    store.save_enrolment(kiosk, partner)?;
    Ok(kiosk)
}

/// Trust only the certificate(s) in the PEM file `certificate` for the server's `wss://` from
/// now on (a Questura's own CA, given with the enrolment code), instead of the system's CAs.
/// The file is checked before it replaces the pinned one.
pub fn pin_server_certificate(
    config: &KioskConfig,
    certificate: &std::path::Path,
) -> Result<(), CoreError> {
    let io = |e: std::io::Error| CoreError::Certificate(format!("{}: {e}", certificate.display()));
    std::fs::create_dir_all(&config.data_dir).map_err(io)?;
    let pinned = config.data_dir.join(client::PINNED_CERTIFICATE);
    let checking = pinned.with_extension("pem.new");
    std::fs::copy(certificate, &checking).map_err(io)?;
    let result = client::tls_connector(&checking)
        .and_then(|_| std::fs::rename(&checking, &pinned).map_err(io));
    let _ = std::fs::remove_file(&checking);
    result
}

impl KioskCore {
    /// Open an enrolled kiosk's store and start syncing on the current tokio runtime.
    pub fn start(config: KioskConfig) -> Result<Self, CoreError> {
        let store = Store::open(&config.database(), config.power_loss_safe)?;
        let seal = config.key_seal()?;
        if seal.is_none() {
            tracing::warn!("no key file: the kiosk's signing key is stored unsealed");
        }
        let identity = store
            .identity(seal.as_ref())?
            .ok_or(CoreError::NotEnrolled)?;
        let (kiosk, _partner) = identity.kiosk.ok_or(CoreError::NotEnrolled)?;
        let docs: HashMap<DocName, AutoCommit> = store.load_documents()?.into_iter().collect();
        let (last_sync_ms, clock_trusted, _) = store.session()?;
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            secret_key: identity.secret_key,
            server_url: identity.server_url,
            inner: Mutex::new(Inner {
                store,
                docs,
                kiosk,
                online: false,
                clock_trusted,
                last_sync_ms,
                refused: None,
                session_docs: HashMap::new(),
                previous_docs: HashMap::new(),
                last_progress: std::time::Instant::now(),
            }),
            outbox_changed: Notify::new(),
            changes,
            stopping: std::sync::atomic::AtomicBool::new(false),
            stop: Notify::new(),
            login_failures: operators::login_limit(),
            self_checks: ready::self_check_limit(),
            last_birth: Mutex::new(None),
        });
        let client = Some(tokio::spawn(client::run(shared.clone())));
        Ok(Self {
            shared,
            client,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Stop syncing, saving what has arrived, and return once the sync client has let go of the
    /// network and the store (so another core may open the same store).
    pub async fn shutdown(mut self) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.stop.notify_one();
        if tokio::time::timeout(Duration::from_secs(5), &mut client)
            .await
            .is_err()
        {
            client.abort();
            let _ = client.await;
        }
    }
}

/// The outcome's effect on a booking's status.
fn status_of(verdict: &Verdict) -> BookingStatus {
    match verdict.outcome {
        Outcome::Confirmed => BookingStatus::Confirmed,
        Outcome::Relocated => BookingStatus::Relocated {
            date: verdict.date,
            time: verdict.time,
        },
        Outcome::Rejected => BookingStatus::Rejected {
            reason: verdict.reason.clone().unwrap_or_default(),
        },
        Outcome::Cancelled => BookingStatus::Cancelled,
    }
}

/// Checked rules of a service from the directory.
fn rules_of(info: &coper_shared::documents::ServiceInfo) -> Option<ServiceRules> {
    ServiceRules::new(info.rules.clone()).ok()
}
