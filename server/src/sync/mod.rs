//! The server side of the sync core: the documents every kiosk replicates, the decisions on
//! kiosks' requests, and the leases that let kiosks book offline without conflicts.
//!
//! SQLite is the source of truth; the Automerge documents are projections of it. The order is
//! always: decide, commit in SQLite, then write the verdicts and counts into the documents, save
//! them, and only then tell connected kiosks. A crash between the commit and the documents is
//! repaired by [`SyncHub::reconcile`], which rewrites the projections from SQLite.
//!
//! - `docs`: the in-memory documents and their persistence.
//! - `ws`: one WebSocket per kiosk: challenge, authentication, sync loop.
//! - `enrol`: one-time enrolment codes and kiosk revocation.

pub mod docs;
pub mod enrol;
pub mod ws;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use automerge::AutoCommit;
use coper_shared::{
    agenda::{Agenda, SlotKey},
    decide::{Booking, Capacity, Incoming, decide},
    documents::{
        DocName, KioskId, LeaseEntry, OperatorEntry, Outcome, PartnerEntry, QuesturaInfo, Request,
        ServiceInfo, SlotCounts, SyncSettings, Verdict, collections, delete_record, put_record,
        records,
    },
    ids::ServiceId,
    rules::hh_mm,
};
use jiff::{Timestamp, ToSpan, civil::Date};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::{
    clock::Clock,
    store::{
        self, Db, StoreError,
        agenda::{Questura, Service, parse_date, parse_time},
        appointments::{BookingError, NewAppointment, book, book_with_code},
        instant_text,
    },
};
use docs::Documents;

/// Tunables of the sync core.
#[derive(Debug, Clone, Copy)]
pub struct SyncConfig {
    /// Kiosks whose clock is further than this from the server's get no leases.
    pub clock_skew_bound_ms: i64,
    /// How long a lease lasts after it was last topped up.
    pub lease_ttl_ms: i64,
    /// Leases cover this many of the next open days of each service.
    pub lease_days: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            clock_skew_bound_ms: 120_000,
            lease_ttl_ms: 24 * 3600 * 1000,
            lease_days: 3,
        }
    }
}

/// Shared by every connection: the documents, the database, and a channel that says which
/// document changed.
#[derive(Clone)]
pub struct SyncHub {
    db: Db,
    clock: Clock,
    pub config: SyncConfig,
    docs: Arc<Mutex<Documents>>,
    changed: broadcast::Sender<DocName>,
    /// The live session of each kiosk: a new one replaces the old (one WebSocket per kiosk).
    sessions: Arc<Mutex<HashMap<KioskId, Arc<Notify>>>>,
}

/// What the hub needs from the store to run the engine for every service.
struct Context {
    questura: Questura,
    services: Vec<Service>,
}

impl Context {
    fn load(conn: &Connection) -> Result<Option<Self>, StoreError> {
        let Some(questura) = store::agenda::questura(conn)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            questura,
            services: store::agenda::services(conn)?,
        }))
    }

    fn agendas(&self) -> BTreeMap<ServiceId, Agenda<'_>> {
        self.services
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    Agenda::new(&s.rules, &self.questura.holidays, &self.questura.time_zone),
                )
            })
            .collect()
    }

    fn today(&self, now: Timestamp) -> Date {
        now.to_zoned(self.questura.time_zone.clone()).date()
    }
}

impl SyncHub {
    pub fn new(db: Db, clock: Clock, config: SyncConfig) -> Self {
        let (changed, _) = broadcast::channel(1024);
        Self {
            db,
            clock,
            config,
            docs: Arc::new(Mutex::new(Documents::default())),
            changed,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Register a new session of `kiosk`, ending the one it replaces. The returned notifier fires
    /// when this session is replaced in turn.
    pub fn open_session(&self, kiosk: KioskId) -> Arc<Notify> {
        let fresh = Arc::new(Notify::new());
        let old = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kiosk, fresh.clone());
        if let Some(old) = old {
            old.notify_one();
        }
        fresh
    }

    /// Forget `kiosk`'s session if it is still `session`.
    pub fn close_session(&self, kiosk: KioskId, session: &Arc<Notify>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions
            .get(&kiosk)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&kiosk);
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DocName> {
        self.changed.subscribe()
    }

    fn notify(&self, names: impl IntoIterator<Item = DocName>) {
        for name in names {
            let _ = self.changed.send(name);
        }
    }

    /// After an administrator changed SQLite (rules, relocations, cancellations, settings):
    /// rewrite the directory, the `agendas` named and the inboxes of `kiosks`, and tell the
    /// sessions, so every kiosk shows the change.
    pub async fn republish(
        &self,
        agendas: Vec<DocName>,
        kiosks: Vec<KioskId>,
    ) -> Result<(), StoreError> {
        let docs = self.docs.clone();
        let config = self.config;
        let now = self.now();
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let mut changed = write_shared(conn, &mut docs, config, now)?;
                // Operators' accounts and partner bodies change rarely: rewrite every kiosk's.
                let enrolled: Vec<String> = {
                    let mut stmt = conn.prepare_cached(
                        "SELECT id FROM kiosks WHERE public_key IS NOT NULL AND revoked_at IS NULL",
                    )?;
                    stmt.query_map([], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                for id in enrolled {
                    let Ok(id) = id.parse() else { continue };
                    if write_operators(conn, &mut docs, KioskId(id))? {
                        changed.push(DocName::Operators(KioskId(id)));
                    }
                }
                for name in agendas {
                    if write_agenda(conn, &mut docs, &name)? {
                        changed.push(name);
                    }
                }
                for kiosk in kiosks {
                    if write_inbox(conn, &mut docs, kiosk)? {
                        changed.push(DocName::Inbox(kiosk));
                    }
                }
                Ok::<_, StoreError>(changed)
            })
            .await?;
        self.notify(changed);
        Ok(())
    }

    /// Run `f` on one document, under the documents' lock, with the database connection.
    pub async fn with_doc<T: Send + 'static>(
        &self,
        name: DocName,
        f: impl FnOnce(&mut AutoCommit) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let docs = self.docs.clone();
        self.db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let doc = docs.get(conn, &name)?;
                let out = f(doc);
                docs.persist(conn, &name)?;
                Ok(out)
            })
            .await
    }

    /// The documents kiosk `kiosk` replicates: the directory, the agenda of every service for
    /// every month from this one to the end of its booking horizon, its outbox and inbox.
    pub async fn documents_for(&self, kiosk: KioskId) -> Result<Vec<DocName>, StoreError> {
        let now = self.now();
        self.db
            .call(move |conn| {
                let mut names = vec![
                    DocName::Directory,
                    DocName::Outbox(kiosk),
                    DocName::Inbox(kiosk),
                    DocName::Ready,
                    DocName::Operators(kiosk),
                ];
                if let Some(ctx) = Context::load(conn)? {
                    let today = ctx.today(now);
                    for service in &ctx.services {
                        let last =
                            today.saturating_add((service.rules.horizon_days() as i32).days());
                        let mut month = today.first_of_month();
                        while month <= last {
                            names.push(DocName::agenda_for(&service.id, month));
                            month = month.saturating_add(1.month());
                        }
                    }
                }
                Ok(names)
            })
            .await
    }

    /// Rewrite the projections from SQLite: the directory, the agendas, and kiosk `kiosk`'s inbox.
    /// Idempotent; records that are already right add nothing to the documents.
    pub async fn reconcile(&self, kiosk: KioskId) -> Result<(), StoreError> {
        let docs = self.docs.clone();
        let now = self.now();
        let config = self.config;
        let names = self.documents_for(kiosk).await?;
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let mut changed = write_shared(conn, &mut docs, config, now)?;
                if write_operators(conn, &mut docs, kiosk)? {
                    changed.push(DocName::Operators(kiosk));
                }
                let agendas = names
                    .iter()
                    .filter(|n| matches!(n, DocName::Agenda { .. }))
                    .cloned();
                changed.extend(project(conn, &mut docs, kiosk, agendas)?);
                Ok::<_, StoreError>(changed)
            })
            .await?;
        self.notify(changed);
        Ok(())
    }

    /// The current heads of `names`, in one call.
    pub async fn heads_of(
        &self,
        names: Vec<DocName>,
    ) -> Result<HashMap<DocName, Vec<automerge::ChangeHash>>, StoreError> {
        let docs = self.docs.clone();
        self.db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let mut out = HashMap::new();
                for name in names {
                    out.insert(name.clone(), docs.get(conn, &name)?.get_heads());
                }
                Ok(out)
            })
            .await
    }

    /// Whether `kiosk` has been revoked (from the command line or, later, the admin pages).
    pub async fn is_revoked(&self, kiosk: KioskId) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| {
                let revoked: Option<Option<String>> = conn
                    .query_row(
                        "SELECT revoked_at FROM kiosks WHERE id = ?1",
                        [kiosk.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(!matches!(revoked, Some(None)))
            })
            .await
    }

    /// Decide every request in `kiosk`'s outbox that has no verdict yet; when `in_sync` (the
    /// server holds everything the kiosk has written), also settle and top up its leases. A
    /// revoked kiosk gets neither: its requests stay undecided and it gets no new lease.
    pub async fn process_outbox(
        &self,
        kiosk: KioskId,
        in_sync: bool,
        clock_trusted: bool,
    ) -> Result<(), StoreError> {
        let docs = self.docs.clone();
        let now = self.now();
        let config = self.config;
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let requests: Vec<Request> = records(
                    docs.get(conn, &DocName::Outbox(kiosk))?,
                    collections::REQUESTS,
                )
                .into_iter()
                .map(|(_, r)| r)
                .collect();
                let Some(ctx) = Context::load(conn)? else {
                    return Ok(Vec::new());
                };
                let revoked: Option<String> = conn.query_row(
                    "SELECT revoked_at FROM kiosks WHERE id = ?1",
                    [kiosk.to_string()],
                    |r| r.get(0),
                )?;
                if revoked.is_some() {
                    return Ok(Vec::new());
                }
                let mut touched: BTreeSet<DocName> = BTreeSet::new();
                let tx = conn.transaction()?;
                decide_requests(&tx, &ctx, kiosk, requests, now, &mut touched)?;
                if in_sync {
                    settle_leases(&tx, &ctx, kiosk, now, config, clock_trusted, &mut touched)?;
                }
                tx.commit()?;
                // Only now, after the commit, do the documents learn the verdicts and counts.
                // (Each document syncs on its own, so a kiosk may learn a verdict before the new
                // counts: its replica counts its own lease bookings itself, and a provisional
                // booking proposed from a count a moment old is at worst relocated.)
                project(conn, &mut docs, kiosk, touched)
            })
            .await?;
        self.notify(changed);
        Ok(())
    }
}

/// Decide the undecided requests of `kiosk` and commit appointments and verdicts in `tx`.
fn decide_requests(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    requests: Vec<Request>,
    now: Timestamp,
    touched: &mut BTreeSet<DocName>,
) -> Result<(), StoreError> {
    let kiosk_text = kiosk.to_string();
    let decided: BTreeSet<String> = {
        let mut stmt = tx.prepare("SELECT request_id FROM sync_verdicts WHERE kiosk_id = ?1")?;
        stmt.query_map([&kiosk_text], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let pending: Vec<Request> = requests
        .into_iter()
        .filter(|r| !decided.contains(&r.id.to_string()))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut capacity = load_capacity(tx, ctx, kiosk, &pending, now)?;
    let agendas = ctx.agendas();
    let by_id: BTreeMap<Uuid, Request> = pending.iter().map(|r| (r.id, r.clone())).collect();
    let incoming = pending
        .into_iter()
        .map(|request| Incoming { kiosk, request })
        .collect();
    let partner: i64 = tx.query_row(
        "SELECT partner_body_id FROM kiosks WHERE id = ?1",
        [&kiosk_text],
        |r| r.get(0),
    )?;
    for decision in decide(incoming, &mut capacity, &agendas, now) {
        let request = &by_id[&decision.request];
        // Each decision in its own savepoint: a request the store cannot take is rejected on its
        // own, and never blocks the verdicts of the others.
        tx.execute_batch("SAVEPOINT decision")?;
        let written = write_decision(tx, ctx, kiosk, partner, request, &decision, now);
        let written = match written {
            Ok(written) => {
                tx.execute_batch("RELEASE decision")?;
                written
            }
            Err(e) => {
                tracing::error!(request = %request.id, error = %e, "decision not written: rejected");
                tx.execute_batch("ROLLBACK TO decision; RELEASE decision")?;
                Written::rejected("store_refused")
            }
        };
        tx.execute(
            "INSERT INTO sync_verdicts (request_id, kiosk_id, outcome, service_id, slot_date,
                 slot_time, appointment_id, reason, used_lease, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                request.id.to_string(),
                kiosk_text,
                outcome_text(written.outcome),
                decision.service.as_str(),
                decision.slot.date.to_string(),
                hh_mm(decision.slot.start),
                written.appointment,
                written.reason,
                decision.used_lease && written.outcome == Outcome::Confirmed,
                instant_text(now),
            ],
        )?;
        store::audit(
            tx,
            now,
            &format!("kiosk:{kiosk_text}"),
            "sync.decided",
            &request.id.to_string(),
            &serde_json::json!({
                "outcome": outcome_text(written.outcome),
                "lease": decision.used_lease,
            }),
        )?;
        touched.insert(DocName::agenda_for(&decision.service, decision.slot.date));
        if decision.slot != request.slot() {
            touched.insert(DocName::agenda_for(&request.service, request.date));
        }
    }
    Ok(())
}

/// What a decision left in the store.
struct Written {
    outcome: Outcome,
    appointment: Option<String>,
    reason: Option<String>,
}

impl Written {
    fn rejected(reason: &str) -> Self {
        Self {
            outcome: Outcome::Rejected,
            appointment: None,
            reason: Some(reason.to_owned()),
        }
    }
}

/// Write one decision: the appointment (or the cancellation) and the lease's use.
fn write_decision(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    partner: i64,
    request: &Request,
    decision: &coper_shared::decide::Decision,
    now: Timestamp,
) -> Result<Written, StoreError> {
    let kiosk_text = kiosk.to_string();
    let (date, time) = (decision.slot.date.to_string(), hh_mm(decision.slot.start));
    match decision.outcome {
        Outcome::Rejected => Ok(Written {
            outcome: Outcome::Rejected,
            appointment: None,
            reason: decision.reason.map(str::to_owned),
        }),
        Outcome::Cancelled => {
            tx.execute(
                "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2,
                     cancel_reason = 'cancelled at the kiosk'
                 WHERE request_id = ?1 AND status = 'booked'",
                params![request.cancels.map(|c| c.to_string()), instant_text(now)],
            )?;
            Ok(Written {
                outcome: Outcome::Cancelled,
                appointment: None,
                reason: None,
            })
        }
        Outcome::Confirmed | Outcome::Relocated => {
            let Some(service) = ctx.services.iter().find(|s| s.id == decision.service) else {
                return Ok(Written::rejected("unknown_service"));
            };
            let slot = if decision.used_lease {
                tx.execute(
                    "UPDATE leases SET used = used + 1 WHERE kiosk_id = ?1 AND service_id = ?2
                     AND slot_date = ?3 AND slot_time = ?4",
                    params![kiosk_text, service.id.as_str(), date, time],
                )?;
                tx.execute(
                    "UPDATE slot_capacity SET held = held - 1 WHERE service_id = ?1
                     AND slot_date = ?2 AND slot_time = ?3",
                    params![service.id.as_str(), date, time],
                )?;
                // The place was set aside when the lease was granted: book it as it was then,
                // even if the rules have changed since.
                let places: Option<u16> = tx
                    .query_row(
                        "SELECT places FROM slot_capacity WHERE service_id = ?1 AND slot_date = ?2
                         AND slot_time = ?3",
                        params![service.id.as_str(), date, time],
                        |r| r.get(0),
                    )
                    .optional()?;
                places.map(|places| coper_shared::agenda::Slot {
                    date: decision.slot.date,
                    start: decision.slot.start,
                    end: decision.slot.start,
                    places,
                })
            } else {
                let agenda = Agenda::new(
                    &service.rules,
                    &ctx.questura.holidays,
                    &ctx.questura.time_zone,
                );
                match agenda.day(decision.slot.date) {
                    coper_shared::agenda::DayPlan::Open(slots) => {
                        slots.into_iter().find(|s| s.start == decision.slot.start)
                    }
                    coper_shared::agenda::DayPlan::Closed(_) => None,
                }
            };
            let Some(slot) = slot else {
                return Ok(Written::rejected("slot_not_open"));
            };
            let request_id = request.id.to_string();
            let created_by = format!("kiosk:{kiosk_text}");
            // Only a permit the list still has: a stale kiosk must not make the booking fail.
            let permit: Option<i64> = match request.permit {
                Some(id) => tx
                    .query_row("SELECT id FROM ready_permits WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .optional()?,
                None => None,
            };
            let new = NewAppointment {
                service: &service.id,
                slot,
                surname: &request.surname,
                given_names: &request.given_names,
                phone: request.phone.as_deref(),
                ready_permit_id: permit,
                partner_body_id: Some(partner),
                kiosk: Some((&kiosk_text, &request_id)),
                created_by: &created_by,
            };
            // A code the kiosk drew offline may already be taken: the server then draws another,
            // and the verdict carries it back.
            let mut booked = book_with_code(tx, &new, &request.booking_code, now);
            if matches!(booked, Err(BookingError::CodeTaken)) {
                booked = book(tx, &new, now);
            }
            match booked {
                Ok(b) => Ok(Written {
                    outcome: decision.outcome,
                    appointment: Some(b.id.to_string()),
                    reason: None,
                }),
                // The schema disagreed with the decision (it never should): reject, loudly.
                Err(
                    BookingError::SlotFull | BookingError::SlotNotOpen | BookingError::CodeTaken,
                ) => {
                    tracing::error!(request = %request.id, "store refused a decided booking");
                    Ok(Written::rejected("store_refused"))
                }
                Err(BookingError::Store(e)) => Err(e),
            }
        }
    }
}

/// A lease from the columns `lease_id, granted, used, expires_at_ms` starting at `first`.
fn lease_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LeaseEntry> {
    let id: String = r.get(first)?;
    Ok(LeaseEntry {
        id: id.parse().map_err(|e: uuid::Error| {
            rusqlite::Error::FromSqlConversionFailure(first, rusqlite::types::Type::Text, e.into())
        })?,
        granted: r.get(first + 1)?,
        used: r.get(first + 2)?,
        expires_at_ms: r.get(first + 3)?,
    })
}

fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Confirmed => "confirmed",
        Outcome::Relocated => "relocated",
        Outcome::Rejected => "rejected",
        Outcome::Cancelled => "cancelled",
    }
}

fn parse_outcome(text: &str) -> Outcome {
    match text {
        "confirmed" => Outcome::Confirmed,
        "relocated" => Outcome::Relocated,
        "cancelled" => Outcome::Cancelled,
        _ => Outcome::Rejected,
    }
}

/// The capacity the batch may touch: every slot of the services concerned from the earliest
/// asked date to the end of the horizon, the kiosk's leases, and the bookings being cancelled.
fn load_capacity(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    pending: &[Request],
    now: Timestamp,
) -> Result<Capacity, StoreError> {
    let mut capacity = Capacity::default();
    let services: BTreeSet<&ServiceId> = pending.iter().map(|r| &r.service).collect();
    let today = ctx.today(now);
    for service in services {
        let Some(known) = ctx.services.iter().find(|s| &s.id == service) else {
            continue;
        };
        let from = pending
            .iter()
            .filter(|r| &r.service == service)
            .map(|r| r.date)
            .min()
            .unwrap_or(today)
            .min(today);
        // Through the horizon, and through any date asked (a leased slot may lie beyond a horizon
        // shortened since the lease was granted).
        let asked_last = pending
            .iter()
            .filter(|r| &r.service == service)
            .map(|r| r.date)
            .max()
            .unwrap_or(today);
        let to = today
            .saturating_add((known.rules.horizon_days() as i32).days())
            .max(asked_last);
        let mut stmt = tx.prepare_cached(
            "SELECT slot_date, slot_time, places, taken, held FROM slot_capacity
             WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3",
        )?;
        let rows = stmt.query_map(
            params![service.as_str(), from.to_string(), to.to_string()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            },
        )?;
        for row in rows {
            let (date, time, places, taken, held) = row?;
            let key = SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            };
            capacity.slots.insert(
                (service.clone(), key),
                SlotCounts {
                    places,
                    taken,
                    held,
                },
            );
        }
    }
    let kiosk_text = kiosk.to_string();
    {
        let mut stmt = tx.prepare(
            "SELECT service_id, slot_date, slot_time, lease_id, granted, used, expires_at_ms
             FROM leases WHERE kiosk_id = ?1",
        )?;
        let rows = stmt.query_map([&kiosk_text], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                lease_row(r, 3)?,
            ))
        })?;
        for row in rows {
            let (service, date, time, lease) = row?;
            let service =
                ServiceId::parse(&service).map_err(|e| StoreError::InvalidData(e.to_string()))?;
            let key = SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            };
            capacity.leases.insert((kiosk, service, key), lease);
        }
    }
    for cancelled in pending.iter().filter_map(|r| r.cancels) {
        let mut stmt = tx.prepare_cached(
            "SELECT service_id, slot_date, slot_time FROM appointments
             WHERE request_id = ?1 AND kiosk_id = ?2 AND status = 'booked'",
        )?;
        let mut rows = stmt.query(params![cancelled.to_string(), kiosk_text])?;
        if let Some(row) = rows.next()? {
            let service = ServiceId::parse(&row.get::<_, String>(0)?)
                .map_err(|e| StoreError::InvalidData(e.to_string()))?;
            let key = SlotKey {
                date: parse_date(&row.get::<_, String>(1)?)?,
                start: parse_time(&row.get::<_, String>(2)?)?,
            };
            capacity
                .slots
                .entry((service.clone(), key))
                .or_insert(SlotCounts {
                    places: 0,
                    taken: 0,
                    held: 0,
                });
            capacity.bookings.insert(
                cancelled,
                Booking {
                    kiosk,
                    service,
                    slot: key,
                },
            );
        }
    }
    Ok(capacity)
}

/// With the kiosk's outbox fully received: return its expired leases to the pool, extend the
/// others, and top it up to its partner body's places per day on the next open days.
fn settle_leases(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    now: Timestamp,
    config: SyncConfig,
    clock_trusted: bool,
    touched: &mut BTreeSet<DocName>,
) -> Result<(), StoreError> {
    let kiosk_text = kiosk.to_string();
    let now_ms = now.as_millisecond();
    // Everything this kiosk wrote before its leases expired has been decided (it is in sync), and
    // its clock is within the bound: what is left of a lease expired by more than the bound goes
    // back to the pool. A lease is never withdrawn before that, whatever the kiosk's clock, so a
    // kiosk can never hold a lease the server has taken back.
    let mut stmt = tx.prepare(
        "SELECT service_id, slot_date, slot_time, granted - used FROM leases
         WHERE kiosk_id = ?1 AND expires_at_ms + ?3 < ?2",
    )?;
    let expired: Vec<(String, String, String, u32)> = stmt
        .query_map(
            params![kiosk_text, now_ms, config.clock_skew_bound_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    for (service, date, time, places) in &expired {
        tx.execute(
            "UPDATE slot_capacity SET held = held - ?4 WHERE service_id = ?1 AND slot_date = ?2
             AND slot_time = ?3",
            params![service, date, time, places],
        )?;
        tx.execute(
            "DELETE FROM leases WHERE kiosk_id = ?1 AND service_id = ?2 AND slot_date = ?3
             AND slot_time = ?4",
            params![kiosk_text, service, date, time],
        )?;
        if let Ok(service) = ServiceId::parse(service) {
            touched.insert(DocName::agenda_for(&service, parse_date(date)?));
        }
    }
    if !clock_trusted {
        return Ok(());
    }
    let expires_at_ms = now_ms + config.lease_ttl_ms;
    tx.execute(
        "UPDATE leases SET expires_at_ms = ?2 WHERE kiosk_id = ?1",
        params![kiosk_text, expires_at_ms],
    )?;
    let per_day: u32 = tx.query_row(
        "SELECT p.lease_places_per_day FROM kiosks k JOIN partner_bodies p ON p.id = k.partner_body_id
         WHERE k.id = ?1",
        [&kiosk_text],
        |r| r.get(0),
    )?;
    if per_day == 0 {
        return Ok(());
    }
    for service in &ctx.services {
        let agenda = Agenda::new(
            &service.rules,
            &ctx.questura.holidays,
            &ctx.questura.time_zone,
        );
        let today = ctx.today(now);
        let last = today.saturating_add((service.rules.horizon_days() as i32).days());
        let taken = store::agenda::taken_between(tx, &service.id, today, last)?;
        let mut days_done = 0;
        let mut date = today;
        while days_done < config.lease_days && date <= last {
            let slots: Vec<_> = agenda
                .free_slots(&taken, now, date.to_datetime(jiff::civil::Time::midnight()))
                .take_while(|f| f.slot.date == date)
                .collect();
            date = date.saturating_add(1.day());
            if slots.is_empty() {
                continue;
            }
            days_done += 1;
            let day_text = slots[0].slot.date.to_string();
            let have: u32 = tx.query_row(
                "SELECT coalesce(sum(granted - used), 0) FROM leases WHERE kiosk_id = ?1 AND service_id = ?2
                 AND slot_date = ?3",
                params![kiosk_text, service.id.as_str(), day_text],
                |r| r.get(0),
            )?;
            let mut missing = per_day.saturating_sub(have);
            for free in slots {
                if missing == 0 {
                    break;
                }
                let time = hh_mm(free.slot.start);
                tx.execute(
                    "INSERT INTO slot_capacity (service_id, slot_date, slot_time, places)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![service.id.as_str(), day_text, time, free.slot.places],
                )?;
                // Hold one place if the pool still has one (the CHECK refuses otherwise).
                let held = tx.execute(
                    "UPDATE slot_capacity SET held = held + 1 WHERE service_id = ?1 AND slot_date = ?2
                     AND slot_time = ?3 AND taken + held < places",
                    params![service.id.as_str(), day_text, time],
                )?;
                if held == 0 {
                    continue;
                }
                tx.execute(
                    "INSERT INTO leases (kiosk_id, service_id, slot_date, slot_time, lease_id,
                         granted, expires_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
                     ON CONFLICT (kiosk_id, service_id, slot_date, slot_time)
                     DO UPDATE SET granted = granted + 1, expires_at_ms = excluded.expires_at_ms",
                    params![
                        kiosk_text,
                        service.id.as_str(),
                        day_text,
                        time,
                        Uuid::now_v7().to_string(),
                        expires_at_ms
                    ],
                )?;
                missing -= 1;
                touched.insert(DocName::agenda_for(&service.id, free.slot.date));
            }
        }
    }
    // Every agenda holding one of this kiosk's leases shows the new expiry.
    let mut stmt =
        tx.prepare("SELECT DISTINCT service_id, slot_date FROM leases WHERE kiosk_id = ?1")?;
    let rows: Vec<(String, String)> = stmt
        .query_map([&kiosk_text], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (service, date) in rows {
        if let Ok(service) = ServiceId::parse(&service) {
            touched.insert(DocName::agenda_for(&service, parse_date(&date)?));
        }
    }
    Ok(())
}

/// Write `agendas`, then `kiosk`'s inbox, from SQLite; the documents that changed, in that order
/// (counts before verdicts).
fn project(
    conn: &Connection,
    docs: &mut Documents,
    kiosk: KioskId,
    agendas: impl IntoIterator<Item = DocName>,
) -> Result<Vec<DocName>, StoreError> {
    let mut changed = Vec::new();
    for name in agendas {
        if write_agenda(conn, docs, &name)? {
            changed.push(name);
        }
    }
    if write_inbox(conn, docs, kiosk)? {
        changed.push(DocName::Inbox(kiosk));
    }
    Ok(changed)
}

/// Write the directory from SQLite. Returns whether the document changed.
fn write_directory(
    conn: &Connection,
    docs: &mut Documents,
    clock_skew_bound_ms: i64,
) -> Result<bool, StoreError> {
    let Some(ctx) = Context::load(conn)? else {
        return Ok(false);
    };
    let doc = docs.get(conn, &DocName::Directory)?;
    let mut changed = put_record(
        doc,
        collections::QUESTURA,
        "questura",
        &QuesturaInfo {
            name: ctx.questura.name.clone(),
            address: ctx.questura.address.clone(),
            time_zone: ctx
                .questura
                .time_zone
                .iana_name()
                .unwrap_or("Europe/Rome")
                .to_owned(),
            holidays: ctx.questura.holidays.clone(),
        },
    );
    for service in &ctx.services {
        changed |= put_record(
            doc,
            collections::SERVICES,
            service.id.as_str(),
            &ServiceInfo {
                name: service.name.clone(),
                what_to_bring: service.what_to_bring.clone(),
                rules: service.rules.to_draft(),
            },
        );
    }
    changed |= put_record(
        doc,
        collections::SETTINGS,
        "sync",
        &SyncSettings {
            clock_skew_bound_ms,
        },
    );
    for partner in store::partners::active(conn)? {
        changed |= put_record(
            doc,
            collections::PARTNERS,
            &partner.id.to_string(),
            &serde_json::json!({
                "name": partner.name, "address": partner.address, "city": partner.city,
                "phone": partner.phone, "opening_hours": partner.opening_hours,
            }),
        );
    }
    docs.persist(conn, &DocName::Directory)?;
    Ok(changed)
}

/// Write one agenda document's counts and leases from SQLite. Returns whether it changed.
fn write_agenda(
    conn: &Connection,
    docs: &mut Documents,
    name: &DocName,
) -> Result<bool, StoreError> {
    let DocName::Agenda {
        service,
        year,
        month,
    } = name
    else {
        return Ok(false);
    };
    let first = Date::new(*year, *month, 1).map_err(|e| StoreError::InvalidData(e.to_string()))?;
    let last = first.last_of_month();
    let (from, to) = (first.to_string(), last.to_string());
    let mut counts: Vec<(String, SlotCounts)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT slot_date, slot_time, places, taken, held FROM slot_capacity
             WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3",
        )?;
        let rows = stmt.query_map(params![service.as_str(), from, to], |r| {
            Ok((
                format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                SlotCounts {
                    places: r.get(2)?,
                    taken: r.get(3)?,
                    held: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            counts.push(row?);
        }
    }
    let mut leases: Vec<(String, LeaseEntry)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT kiosk_id, slot_date, slot_time, lease_id, granted, used, expires_at_ms
             FROM leases WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3",
        )?;
        let rows = stmt.query_map(params![service.as_str(), from, to], |r| {
            Ok((
                format!(
                    "{} {} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ),
                lease_row(r, 3)?,
            ))
        })?;
        for row in rows {
            leases.push(row?);
        }
    }
    let doc = docs.get(conn, name)?;
    let mut changed = false;
    for (key, value) in &counts {
        changed |= put_record(doc, collections::SLOTS, key, value);
    }
    let live: BTreeSet<&String> = leases.iter().map(|(k, _)| k).collect();
    for (key, value) in &leases {
        changed |= put_record(doc, collections::LEASES, key, value);
    }
    for (key, _) in records::<LeaseEntry>(doc, collections::LEASES) {
        if !live.contains(&key) {
            changed |= coper_shared::documents::delete_record(doc, collections::LEASES, &key);
        }
    }
    docs.persist(conn, name)?;
    Ok(changed)
}

/// Write every verdict of `kiosk` from SQLite into its inbox. Returns whether it changed.
/// Write the documents every kiosk shares: the directory and the ready list. Returns those that
/// changed.
fn write_shared(
    conn: &Connection,
    docs: &mut Documents,
    config: SyncConfig,
    now: Timestamp,
) -> Result<Vec<DocName>, StoreError> {
    let mut changed = Vec::new();
    if write_directory(conn, docs, config.clock_skew_bound_ms)? {
        changed.push(DocName::Directory);
    }
    if write_ready(conn, docs, now)? {
        changed.push(DocName::Ready);
    }
    Ok(changed)
}

/// Write the ready list's index from SQLite: permits not delivered yet, as salted hashes.
/// Returns whether the document changed.
fn write_ready(
    conn: &Connection,
    docs: &mut Documents,
    now: Timestamp,
) -> Result<bool, StoreError> {
    use coper_shared::ready_index::{Permit, ReadyEntry};
    // Every kiosk connection reconciles: hash the list again only when it changed (an import, a
    // delivery) since this process last wrote it.
    let version: String = conn.query_row(
        "SELECT count(*) || ' ' || coalesce(max(imported_at), '') || ' ' ||
                coalesce(max(delivered_at), '') || ' ' || count(delivered_at)
         FROM ready_permits",
        [],
        |r| r.get(0),
    )?;
    if docs.ready_version.as_deref() == Some(version.as_str()) {
        return Ok(false);
    }
    let secret = store::counter::server_key(conn, now)?;
    let mut entries: Vec<ReadyEntry> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, surname, given_names, birth_date, fingerprint_date, receipt_number,
                    pratica_number
             FROM ready_permits WHERE delivered_at IS NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        for row in rows {
            let (id, surname, given, born, fingerprint, receipt, pratica) = row?;
            // A stable salt per permit, which only the server can derive.
            let seed = [&secret[..], &id.to_be_bytes()].concat();
            let salt = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&seed)[..8]);
            entries.push(ReadyEntry::new(
                &Permit {
                    id,
                    surname: &surname,
                    given_names: &given,
                    birth_date: &born,
                    fingerprint_date: parse_date(&fingerprint)?,
                    receipt: receipt.as_deref(),
                    pratica: pratica.as_deref(),
                },
                &salt,
            ));
        }
    }
    let doc = docs.get(conn, &DocName::Ready)?;
    let mut changed = false;
    let keys: Vec<String> = entries.iter().map(|e| e.permit.to_string()).collect();
    for entry in &entries {
        changed |= put_record(doc, collections::PERMITS, &entry.permit.to_string(), entry);
    }
    // Delivered permits leave the list.
    for (key, _) in records::<serde_json::Value>(doc, collections::PERMITS) {
        if !keys.contains(&key) {
            delete_record(doc, collections::PERMITS, &key);
            changed = true;
        }
    }
    docs.persist(conn, &DocName::Ready)?;
    docs.ready_version = Some(version);
    Ok(changed)
}

/// Write kiosk `kiosk`'s partner body and its operators' accounts. Returns whether it changed.
fn write_operators(
    conn: &Connection,
    docs: &mut Documents,
    kiosk: KioskId,
) -> Result<bool, StoreError> {
    let partner: Option<PartnerEntry> = conn
        .query_row(
            "SELECT p.id, p.name, p.address, p.city, p.phone FROM kiosks k
             JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
            [kiosk.to_string()],
            |r| {
                Ok(PartnerEntry {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    address: r.get(2)?,
                    city: r.get(3)?,
                    phone: r.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(partner) = partner else {
        return Ok(false);
    };
    let operators: Vec<OperatorEntry> = {
        let mut stmt = conn.prepare_cached(
            "SELECT username, display_name, password_hash, active FROM users
             WHERE role = 'operator' AND partner_body_id = ?1",
        )?;
        stmt.query_map([partner.id], |r| {
            Ok(OperatorEntry {
                username: r.get(0)?,
                display_name: r.get(1)?,
                password_hash: r.get(2)?,
                active: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let doc = docs.get(conn, &DocName::Operators(kiosk))?;
    let mut changed = put_record(doc, collections::PARTNER, "partner", &partner);
    for operator in &operators {
        changed |= put_record(
            doc,
            collections::OPERATORS,
            &operator.username.to_lowercase(),
            operator,
        );
    }
    docs.persist(conn, &DocName::Operators(kiosk))?;
    Ok(changed)
}

fn write_inbox(
    conn: &Connection,
    docs: &mut Documents,
    kiosk: KioskId,
) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.request_id, v.outcome, v.service_id, v.slot_date, v.slot_time,
                v.appointment_id, v.reason, v.decided_at, a.booking_code
         FROM sync_verdicts v LEFT JOIN appointments a ON a.id = v.appointment_id
         WHERE v.kiosk_id = ?1",
    )?;
    let rows = stmt.query_map([kiosk.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut verdicts = Vec::new();
    for row in rows {
        let (request, outcome, service, date, time, appointment, reason, decided_at, code) = row?;
        let invalid = |e: String| StoreError::InvalidData(e);
        verdicts.push(Verdict {
            request: request
                .parse()
                .map_err(|e: uuid::Error| invalid(e.to_string()))?,
            outcome: parse_outcome(&outcome),
            service: ServiceId::parse(&service).map_err(|e| invalid(e.to_string()))?,
            date: parse_date(&date)?,
            time: parse_time(&time)?,
            appointment: appointment.and_then(|a| a.parse().ok()),
            reason,
            decided_at_ms: decided_at
                .parse::<Timestamp>()
                .map(|t| t.as_millisecond())
                .unwrap_or_default(),
            booking_code: code,
        });
    }
    let doc = docs.get(conn, &DocName::Inbox(kiosk))?;
    let mut changed = false;
    for verdict in &verdicts {
        changed |= put_record(
            doc,
            collections::VERDICTS,
            &verdict.request.to_string(),
            verdict,
        );
    }
    docs.persist(conn, &DocName::Inbox(kiosk))?;
    Ok(changed)
}
