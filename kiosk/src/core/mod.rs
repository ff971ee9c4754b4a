//! The kiosk's core, with no UI: its identity, its replicas of the agenda, the booking API the
//! screens call, and the sync client that keeps it all in step with the server.
//!
//! Everything the UI asks is answered from the local replica at once, online or offline. A booking
//! is written into the kiosk's outbox and committed to the local SQLite store **before**
//! [`KioskCore::book`] returns, so nothing printed can be lost; the sync client then carries it to
//! the server, and the server's verdict comes back through the inbox.
//!
//! Offline, a booking inside one of the kiosk's leases is confirmed at once (the server honours it
//! in place); any other booking is provisional until the server decides.

mod client;
mod replica;
mod store;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use automerge::AutoCommit;
use coper_shared::{
    agenda::SlotKey,
    booking_code::booking_code,
    documents::{
        DocName, KioskId, Outcome, Request, RequestKind, Verdict, collections, put_record, record,
        records,
    },
    ids::ServiceId,
    rules::ServiceRules,
};
use jiff::{Timestamp, civil::DateTime};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use replica::Proposal;
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
    #[error("no such booking")]
    UnknownBooking,
    #[error("the server refused this kiosk: {code} ({message})")]
    Refused { code: String, message: String },
    #[error("network: {0}")]
    Network(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Why an operator could not log in at the kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("this account is deactivated")]
    Inactive,
    #[error("the kiosk has never synchronised: it knows no account yet")]
    NeverSynchronised,
    #[error("too many wrong passwords: wait a minute")]
    TooManyAttempts,
}

/// The public self-check's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfCheck {
    ByName {
        surname: String,
        given_names: String,
        birth: jiff::civil::Date,
        fingerprint: jiff::civil::Date,
    },
    ByNumber {
        number: String,
        birth: jiff::civil::Date,
    },
}

/// Why the self-check gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelfCheckRefusal {
    #[error("too many attempts at this kiosk: wait a few minutes")]
    TooManyAttempts,
    #[error("the kiosk has not received the list yet")]
    NoList,
}

/// Wrong passwords at one kiosk before it waits [`LOGIN_LOCK`].
const MAX_LOGIN_FAILURES: usize = 5;
const LOGIN_LOCK: std::time::Duration = std::time::Duration::from_secs(60);
/// Self-checks one kiosk answers per [`SELF_CHECK_WINDOW`].
pub const MAX_SELF_CHECKS: usize = 8;
const SELF_CHECK_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

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
}

impl KioskConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            clock_offset_ms: 0,
            power_loss_safe: true,
        }
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

/// What the sync status bar shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub online: bool,
    /// Requests written here that the server has not decided yet.
    pub pending: usize,
    pub last_sync_ms: Option<i64>,
    pub clock_trusted: bool,
    /// Leased places this kiosk can still book today without the network, all services.
    pub lease_places_today: u32,
    /// Set when the server refused this kiosk (revoked, unknown): a person must act.
    pub refused: Option<String>,
    /// Online, and every document holds everything the server last said it has.
    pub up_to_date: bool,
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
}

struct Shared {
    config: KioskConfig,
    secret_key: [u8; 32],
    server_url: String,
    inner: Mutex<Inner>,
    /// Woken when the outbox has something new to send.
    outbox_changed: Notify,
    /// Bumped whenever the inbox changes, for [`KioskCore::wait_for_verdict`].
    inbox_version: watch::Sender<u64>,
    /// Set by [`KioskCore::shutdown`]: the sync client saves what it holds and stops.
    stopping: std::sync::atomic::AtomicBool,
    stop: Notify,
    /// Recent wrong passwords and self-checks, for the per-kiosk limits (in memory).
    login_failures: Mutex<Vec<std::time::Instant>>,
    self_checks: Mutex<Vec<std::time::Instant>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running kiosk core. Dropping it stops its sync client.
pub struct KioskCore {
    shared: Arc<Shared>,
    client: Option<tokio::task::JoinHandle<()>>,
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
    let secret_key = match store.identity()? {
        Some(identity) => identity.secret_key,
        None => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS has randomness");
            key
        }
    };
    store.save_key(&secret_key, server_url)?;
    let (kiosk, partner) = client::enrol(server_url, &secret_key, code, config.now()).await?;
    store.save_enrolment(kiosk, partner)?;
    Ok(kiosk)
}

impl KioskCore {
    /// Open an enrolled kiosk's store and start syncing on the current tokio runtime.
    pub fn start(config: KioskConfig) -> Result<Self, CoreError> {
        let store = Store::open(&config.database(), config.power_loss_safe)?;
        let identity = store.identity()?.ok_or(CoreError::NotEnrolled)?;
        let (kiosk, _partner) = identity.kiosk.ok_or(CoreError::NotEnrolled)?;
        let docs: HashMap<DocName, AutoCommit> = store.load_documents()?.into_iter().collect();
        let (last_sync_ms, clock_trusted, _) = store.session()?;
        let (inbox_version, _) = watch::channel(0);
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
                last_progress: std::time::Instant::now(),
            }),
            outbox_changed: Notify::new(),
            inbox_version,
            stopping: std::sync::atomic::AtomicBool::new(false),
            stop: Notify::new(),
            login_failures: Mutex::new(Vec::new()),
            self_checks: Mutex::new(Vec::new()),
        });
        let client = Some(tokio::spawn(client::run(shared.clone())));
        Ok(Self { shared, client })
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

    pub fn kiosk_id(&self) -> KioskId {
        self.shared.lock().kiosk
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.config.data_dir
    }

    /// The signed text for the QR code of `booking`'s reminder, at the slot it holds now (after a
    /// relocation, the new one). Signed with this kiosk's enrolment key.
    pub fn ticket(&self, booking: &LocalBooking) -> String {
        let (date, time) = match booking.status {
            BookingStatus::Relocated { date, time } => (date, time),
            _ => (booking.date, booking.time),
        };
        coper_shared::ticket::Ticket {
            issuer: coper_shared::ticket::Issuer::Kiosk(self.kiosk_id().0),
            booking: booking.request,
            service: booking.service.clone(),
            date,
            time,
        }
        .sign(&ed25519_dalek::SigningKey::from_bytes(
            &self.shared.secret_key,
        ))
    }

    pub fn now(&self) -> Timestamp {
        self.shared.config.now()
    }

    /// Services offered, with their Italian names, from the last directory received.
    pub fn services(&self) -> Vec<(ServiceId, String)> {
        let inner = self.shared.lock();
        replica::services(&inner.docs)
            .into_iter()
            .map(|(id, info)| (id, info.name))
            .collect()
    }

    /// The slot to offer first. Offline with a lease left, the first slot this kiosk can confirm
    /// by itself; otherwise the first free slot of the replica.
    pub fn first_free(&self, service: &ServiceId) -> Result<Option<Proposal>, CoreError> {
        let inner = self.shared.lock();
        let now = self.now();
        let view = replica::View::build(&inner, service, now)?;
        let agenda = view.agenda();
        let from = now.to_zoned(view.tz.clone()).datetime();
        let mut free = agenda
            .free_slots(&view, now, from)
            .map(|f| view.proposal(f));
        let first = free.next();
        if !inner.online && first.as_ref().is_some_and(|p| p.lease.is_none()) {
            let with_lease = agenda
                .free_slots(&view, now, from)
                .map(|f| view.proposal(f))
                .find(|p| p.lease.is_some());
            if with_lease.is_some() {
                return Ok(with_lease);
            }
        }
        Ok(first)
    }

    /// "Another day": the first free slot of each of the next `count` days from `from`.
    pub fn options(
        &self,
        service: &ServiceId,
        from: DateTime,
        count: usize,
    ) -> Result<Vec<Proposal>, CoreError> {
        let inner = self.shared.lock();
        let now = self.now();
        let view = replica::View::build(&inner, service, now)?;
        Ok(view
            .agenda()
            .options(&view, now, from, count)
            .into_iter()
            .map(|f| view.proposal(f))
            .collect())
    }

    /// Book `slot` for a person. Committed to the local store before this returns.
    pub fn book(
        &self,
        service: &ServiceId,
        slot: SlotKey,
        surname: &str,
        given_names: &str,
        phone: Option<&str>,
    ) -> Result<LocalBooking, CoreError> {
        self.book_for_permit(service, slot, surname, given_names, phone, None)
    }

    /// As [`KioskCore::book`], for the ready permit `permit` found with [`KioskCore::find_ready`].
    pub fn book_for_permit(
        &self,
        service: &ServiceId,
        slot: SlotKey,
        surname: &str,
        given_names: &str,
        phone: Option<&str>,
        permit: Option<i64>,
    ) -> Result<LocalBooking, CoreError> {
        let surname = surname.trim();
        if surname.is_empty() {
            return Err(CoreError::MissingSurname);
        }
        let now = self.now();
        let mut inner = self.shared.lock();
        let view = replica::View::build(&inner, service, now)?;
        let free = view
            .agenda()
            .check_slot(&view, now, slot)
            .map_err(|_| CoreError::SlotNotFree)?;
        let lease = view.proposal(free).lease;
        let request = Request {
            id: Uuid::now_v7(),
            kind: RequestKind::Book,
            service: service.clone(),
            date: slot.date,
            time: slot.start,
            surname: surname.to_owned(),
            given_names: given_names.trim().to_owned(),
            phone: phone
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            booking_code: booking_code(random_bits()),
            created_at_ms: now.as_millisecond(),
            lease,
            cancels: None,
            permit,
        };
        write_request(&mut inner, &request)?;
        drop(inner);
        self.shared.outbox_changed.notify_one();
        Ok(LocalBooking {
            request: request.id,
            booking_code: request.booking_code,
            service: request.service,
            date: request.date,
            time: request.time,
            surname: request.surname,
            given_names: request.given_names,
            status: BookingStatus::Pending {
                lease: lease.is_some(),
            },
        })
    }

    /// Ask the server to cancel a booking made at this kiosk.
    pub fn cancel(&self, booking: Uuid) -> Result<Uuid, CoreError> {
        let now = self.now();
        let mut inner = self.shared.lock();
        let outbox = DocName::Outbox(inner.kiosk);
        let original: Request = inner
            .docs
            .get(&outbox)
            .and_then(|doc| record(doc, collections::REQUESTS, &booking.to_string()))
            .filter(|r: &Request| r.kind == RequestKind::Book)
            .ok_or(CoreError::UnknownBooking)?;
        let request = Request {
            id: Uuid::now_v7(),
            kind: RequestKind::Cancel,
            cancels: Some(booking),
            created_at_ms: now.as_millisecond(),
            lease: None,
            permit: None,
            ..original
        };
        write_request(&mut inner, &request)?;
        drop(inner);
        self.shared.outbox_changed.notify_one();
        Ok(request.id)
    }

    /// What a service asks people to bring, from the last directory received.
    pub fn what_to_bring(&self, service: &ServiceId) -> Option<String> {
        let inner = self.shared.lock();
        replica::services(&inner.docs)
            .into_iter()
            .find(|(id, _)| id == service)
            .map(|(_, info)| info.what_to_bring)
    }

    /// The Questura, from the last directory received.
    pub fn questura(&self) -> Option<coper_shared::documents::QuesturaInfo> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Directory)
            .and_then(|d| record(d, collections::QUESTURA, "questura"))
    }

    /// This kiosk's partner body, as the server last sent it.
    pub fn partner(&self) -> Option<coper_shared::documents::PartnerEntry> {
        let inner = self.shared.lock();
        let doc = inner.docs.get(&DocName::Operators(inner.kiosk))?;
        record(doc, collections::PARTNER, "partner")
    }

    /// Check an operator's credentials against the accounts the server last sent (so it works
    /// offline). A kiosk that has never synchronised knows no account and lets nobody in.
    pub fn log_in(&self, username: &str, password: &str) -> Result<String, LoginRefusal> {
        let entry: Option<coper_shared::documents::OperatorEntry> = {
            let inner = self.shared.lock();
            let Some(doc) = inner.docs.get(&DocName::Operators(inner.kiosk)) else {
                return Err(LoginRefusal::NeverSynchronised);
            };
            record(doc, collections::OPERATORS, &username.trim().to_lowercase())
        };
        {
            let mut failures = self
                .shared
                .login_failures
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            failures.retain(|t| t.elapsed() < LOGIN_LOCK);
            if failures.len() >= MAX_LOGIN_FAILURES {
                return Err(LoginRefusal::TooManyAttempts);
            }
        }
        let verified = entry.as_ref().is_some_and(|e| {
            argon2::PasswordHash::new(&e.password_hash)
                .map(|hash| {
                    use argon2::PasswordVerifier;
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                })
                .unwrap_or(false)
        });
        match entry {
            Some(e) if verified && e.active => Ok(if e.display_name.is_empty() {
                e.username
            } else {
                e.display_name
            }),
            Some(e) if verified && !e.active => Err(LoginRefusal::Inactive),
            _ => {
                self.shared
                    .login_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(std::time::Instant::now());
                Err(LoginRefusal::WrongCredentials)
            }
        }
    }

    fn ready_entries(&self) -> Vec<coper_shared::ready_index::ReadyEntry> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Ready)
            .map(|doc| {
                records(doc, collections::PERMITS)
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The operator's check: the ready permit of the person with this surname, given names and
    /// birth date, if the list the server last sent has it.
    pub fn find_ready(
        &self,
        surname: &str,
        given_names: &str,
        birth: jiff::civil::Date,
    ) -> Option<i64> {
        self.ready_entries()
            .into_iter()
            .find(|e| e.matches_name(surname, given_names, birth))
            .map(|e| e.permit)
    }

    /// The public self-check, offline: by name, birth date and fingerprinting date, or by
    /// receipt or pratica number with the birth date. Limited per kiosk, so nobody can try dates
    /// at length.
    pub fn self_check(&self, question: &SelfCheck) -> Result<bool, SelfCheckRefusal> {
        {
            let mut attempts = self
                .shared
                .self_checks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            attempts.retain(|t| t.elapsed() < SELF_CHECK_WINDOW);
            if attempts.len() >= MAX_SELF_CHECKS {
                return Err(SelfCheckRefusal::TooManyAttempts);
            }
            attempts.push(std::time::Instant::now());
        }
        let entries = self.ready_entries();
        if entries.is_empty() && self.status().last_sync_ms.is_none() {
            return Err(SelfCheckRefusal::NoList);
        }
        Ok(entries.iter().any(|e| match question {
            SelfCheck::ByName {
                surname,
                given_names,
                birth,
                fingerprint,
            } => e.matches_person(surname, given_names, *birth, *fingerprint),
            SelfCheck::ByNumber { number, birth } => e.matches_number(number, *birth),
        }))
    }

    /// Every booking made at this kiosk, newest first, with what the server said of it.
    pub fn bookings(&self) -> Vec<LocalBooking> {
        let inner = self.shared.lock();
        replica::bookings(&inner)
    }

    /// The server's verdict on `request`, if it has arrived.
    pub fn verdict(&self, request: Uuid) -> Option<Verdict> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Inbox(inner.kiosk))
            .and_then(|doc| record(doc, collections::VERDICTS, &request.to_string()))
    }

    /// Wait up to `timeout` for the verdict on `request` (the kiosk waits briefly online before
    /// printing, so the reminder can say "confirmed").
    pub async fn wait_for_verdict(&self, request: Uuid, timeout: Duration) -> Option<Verdict> {
        let mut changes = self.shared.inbox_version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(verdict) = self.verdict(request) {
                return Some(verdict);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return self.verdict(request);
            }
        }
    }

    pub fn status(&self) -> SyncStatus {
        let inner = self.shared.lock();
        let now = self.now();
        let bookings = replica::bookings(&inner);
        let pending = bookings
            .iter()
            .filter(|b| {
                matches!(
                    b.status,
                    BookingStatus::Pending { .. } | BookingStatus::CancelPending
                )
            })
            .count();
        let lease_places_today = replica::services(&inner.docs)
            .into_iter()
            .filter_map(|(id, _)| replica::View::build(&inner, &id, now).ok())
            .map(|view| view.lease_places_on(now.to_zoned(view.tz.clone()).date()))
            .sum();
        SyncStatus {
            online: inner.online,
            pending,
            last_sync_ms: inner.last_sync_ms,
            clock_trusted: inner.clock_trusted,
            lease_places_today,
            refused: inner.refused.clone(),
            up_to_date: inner.online
                && !inner.session_docs.is_empty()
                && inner.session_docs.values().all(|synced| *synced),
        }
    }

    /// The heads of one local document, for convergence checks.
    pub fn heads(&self, name: &DocName) -> Vec<automerge::ChangeHash> {
        let mut inner = self.shared.lock();
        inner
            .docs
            .get_mut(name)
            .map(|d| d.get_heads())
            .unwrap_or_default()
    }

    /// Every record of one collection of a local document, as raw JSON: for tests that check
    /// what reached this kiosk.
    pub fn raw_records(
        &self,
        name: &DocName,
        collection: &str,
    ) -> Vec<(String, serde_json::Value)> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(name)
            .map(|d| records(d, collection))
            .unwrap_or_default()
    }

    /// Documents of the current session not yet in step with the server: for diagnostics.
    pub fn unsettled_documents(&self) -> Vec<DocName> {
        let inner = self.shared.lock();
        let mut names: Vec<DocName> = inner
            .session_docs
            .iter()
            .filter(|(_, synced)| !**synced)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Names of the documents held locally.
    pub fn documents(&self) -> Vec<DocName> {
        let inner = self.shared.lock();
        let mut names: Vec<DocName> = inner.docs.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Add a request to the outbox and commit it to the local store. If the store refuses, the
/// outbox goes back to what the store holds, so a request the operator was told failed is never
/// sent.
fn write_request(inner: &mut Inner, request: &Request) -> Result<(), CoreError> {
    let outbox = DocName::Outbox(inner.kiosk);
    let doc = inner.docs.entry(outbox.clone()).or_default();
    put_record(doc, collections::REQUESTS, &request.id.to_string(), request);
    let saved = inner.store.save_document(&outbox, doc);
    if saved.is_err() {
        let restored = inner.store.load_document(&outbox).ok().flatten();
        inner.docs.insert(outbox, restored.unwrap_or_default());
    }
    saved
}

fn random_bits() -> u128 {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    u128::from_le_bytes(bytes)
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
