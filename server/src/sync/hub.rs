//! [`SyncHub`]: what every kiosk session shares. The live session of each kiosk (a new one
//! replaces the old), the documents under one lock with the database, a channel that says which
//! document changed, and the three ways documents change: a kiosk connects ([`SyncHub::reconcile`]),
//! a kiosk's outbox brings requests ([`SyncHub::process_outbox`]), or the staff changed SQLite
//! ([`SyncHub::republish`]).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use automerge::{
    AutoCommit,
    sync::{self, SyncDoc},
};
use coper_shared::{
    documents::{DocName, KioskId, Request, Writer, collections, records},
    protocol::has_changes,
};
use jiff::{Timestamp, ToSpan};
use tokio::sync::broadcast;

use super::{
    Context, SyncConfig,
    changes::{Session, Sessions, SharedChanges},
    docs::{Documents, Loaded, write_in_transaction},
    leases::settle_leases,
    memo::{Outgoing, SyncMemo, encoded_frame},
    outbox::decide_requests,
    project::{
        project, write_agenda, write_booked, write_bookings, write_inbox, write_operators,
        write_shared,
    },
};
use crate::{
    clock::Clock,
    store::{self, Connection, Db, StoreError, Transaction, kiosks},
};

/// Shared by every connection: the documents, the database, and a channel that says which
/// document changed.
#[derive(Clone)]
pub struct SyncHub {
    db: Db,
    clock: Clock,
    pub config: SyncConfig,
    /// Where kiosks' changes are parsed first (see `sandbox`); `None`: applied directly.
    pub sandbox: Option<super::sandbox::Sandbox>,
    /// Where people reach this server (`[notices] public_url`): the pre-check links in the
    /// partner bodies' bookings documents start with it; without it they carry none.
    pub public_url: Option<Arc<str>>,
    /// The writer's side of the documents, used with the database's writing connection.
    docs: Arc<Mutex<Documents>>,
    /// The documents in memory, for sessions reading the server's own (see [`SyncHub::with_doc`]).
    loaded: Loaded,
    /// Every change, for the counter's live day view (the sessions learn through `sessions` and
    /// `shared_changes`, see `changes`).
    changed: broadcast::Sender<DocName>,
    sessions: Sessions,
    /// The changes to the documents every kiosk receives, numbered for the sessions to ask.
    shared_changes: Arc<SharedChanges>,
    /// Outboxes waiting to be decided (see [`SyncHub::process_outbox`]).
    queued: Arc<Mutex<Vec<OutboxJob>>>,
    /// The decision latency, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Sync messages of the documents every kiosk receives, made once per kiosk state (see
    /// `memo`).
    memo: Arc<SyncMemo>,
    /// Set once the tasks every session relies on run, started with the first session: the
    /// sessions' upkeep (`upkeep`) and the grid of their sending instants (`changes`).
    background: Arc<std::sync::OnceLock<()>>,
}

/// A kiosk's outbox waiting to be decided, and who waits for the outcome.
struct OutboxJob {
    kiosk: KioskId,
    clock_trusted: bool,
    work: OutboxWork,
    done: tokio::sync::oneshot::Sender<Result<Decided, StoreError>>,
}

/// What the writer does with a kiosk's outbox.
enum OutboxWork {
    /// Decide the requests it holds; `in_sync`: the server holds everything the kiosk wrote.
    Decide { in_sync: bool },
    /// Apply the kiosk's sync message to it first, in the transaction that decides it (one disk
    /// flush for the request and its verdict), then decide if it brought anything.
    Receive(Box<(sync::State, sync::Message)>),
}

/// What became of an outbox job.
struct Decided {
    /// How many requests were decided.
    count: usize,
    /// For [`OutboxWork::Receive`]: the kiosk's sync state, advanced, and whether Automerge took
    /// the message and, if so, whether the outbox went through the rules (it brought requests,
    /// or the kiosk is now in step).
    received: Option<(sync::State, Result<bool, automerge::AutomergeError>)>,
}

impl SyncHub {
    pub fn new(db: Db, clock: Clock, config: SyncConfig) -> Self {
        let (changed, _) = broadcast::channel(1024);
        let loaded = Loaded::default();
        let sessions = Sessions::default();
        Self {
            db,
            clock,
            config,
            sandbox: None,
            public_url: None,
            docs: Arc::new(Mutex::new(Documents::new(loaded.clone(), sessions.clone()))),
            loaded,
            changed,
            sessions,
            shared_changes: Arc::default(),
            queued: Arc::default(),
            metrics: Arc::default(),
            memo: Arc::default(),
            background: Arc::default(),
        }
    }

    /// Kiosks with a live session now.
    pub fn connected_kiosks(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Outboxes received and waiting for the writer to decide them.
    pub fn outboxes_waiting(&self) -> usize {
        self.queued.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Register a new session of `kiosk`, ending the one it replaces. The session returned is told
    /// when it is replaced in turn, and when the kiosk's own documents change.
    pub fn open_session(&self, kiosk: KioskId) -> Arc<Session> {
        self.background.get_or_init(|| {
            let sessions = Arc::downgrade(&self.sessions);
            tokio::spawn(super::upkeep::run(sessions, self.db.clone(), self.clock));
            tokio::spawn(super::changes::run_grid(Arc::downgrade(
                &self.shared_changes,
            )));
        });
        let fresh = Arc::new(Session::default());
        let old = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kiosk, fresh.clone());
        if let Some(old) = old {
            old.end("replaced by a newer one");
        }
        fresh
    }

    /// Forget `kiosk`'s session if it is still `session`, and its body's bookings under its name,
    /// which only a session needs (the body's document goes with the last of its kiosks).
    pub fn close_session(&self, kiosk: KioskId, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions
            .get(&kiosk)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&kiosk);
            self.loaded.forget(&DocName::Bookings(kiosk));
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Every document that changes from now on (for the counter's live day view).
    pub fn subscribe(&self) -> broadcast::Receiver<DocName> {
        self.changed.subscribe()
    }

    /// The number of the latest change to a shared document (see `changes`).
    pub(super) fn shared_seen(&self) -> u64 {
        self.shared_changes.latest()
    }

    /// What `kiosk`'s session waits on to send the shared documents' changes: it moves at an
    /// instant of the session's group when one changed (see `changes`).
    pub(super) fn shared_instants(&self, kiosk: KioskId) -> tokio::sync::watch::Receiver<u64> {
        self.shared_changes.instants_of(kiosk)
    }

    /// The shared documents changed since change number `*seen`, which becomes the latest.
    pub(super) fn shared_changed_since(&self, seen: &mut u64) -> Vec<DocName> {
        self.shared_changes.since(seen)
    }

    /// Tell whoever holds them that `names` changed: a shared document is numbered for the
    /// sessions to ask at their next sending instant, a kiosk's own wakes its session alone.
    fn notify(&self, names: impl IntoIterator<Item = DocName>) {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        for name in names {
            if name.is_shared() {
                self.shared_changes.record(name.clone());
            } else if let Some(session) = name.kiosk().and_then(|kiosk| sessions.get(&kiosk)) {
                session.tell(name.clone());
            }
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
        let url = self.public_url.clone();
        let config = self.config;
        let now = self.now();
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                write_in_transaction(conn, &mut docs, |conn, docs| {
                    let ctx = Context::load(conn)?;
                    let mut changed = write_shared(conn, docs, ctx.as_ref(), config, now)?;
                    // Operators' accounts and partner bodies change rarely: rewrite every kiosk's.
                    for kiosk in kiosks::enrolled(conn)? {
                        if write_operators(conn, docs, kiosk)? {
                            changed.push(DocName::Operators(kiosk));
                        }
                    }
                    for name in agendas {
                        if write_agenda(conn, docs, &name)? {
                            changed.push(name);
                        }
                    }
                    for kiosk in kiosks {
                        if write_inbox(conn, docs, kiosk)? {
                            changed.push(DocName::Inbox(kiosk));
                        }
                    }
                    if let Some(ctx) = &ctx {
                        changed.extend(write_bookings(conn, docs, ctx, now, None, url.as_deref())?);
                    }
                    Ok(changed)
                })
            })
            .await?;
        self.notify(changed);
        Ok(())
    }

    /// After the counter changed appointments (a check-in, a delivery, a no-show): rewrite the
    /// partner bodies' bookings documents, so their kiosks show it.
    pub async fn republish_bookings(&self) -> Result<(), StoreError> {
        let docs = self.docs.clone();
        let url = self.public_url.clone();
        let now = self.now();
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                write_in_transaction(conn, &mut docs, |conn, docs| {
                    let Some(ctx) = Context::load(conn)? else {
                        return Ok(Vec::new());
                    };
                    let mut changed = write_bookings(conn, docs, &ctx, now, None, url.as_deref())?;
                    // Who is being served, who is back on the list: every kiosk's warning follows.
                    if write_booked(conn, docs, &ctx, now)? {
                        changed.push(DocName::Ready);
                    }
                    Ok(changed)
                })
            })
            .await?;
        self.notify(changed);
        Ok(())
    }

    /// Run `f` on one document, under that document's lock.
    ///
    /// The server's own documents change only in the projections, with the writing connection,
    /// and a kiosk's sync state for them is read-only, so `f` (a sync message out, a kiosk's
    /// acknowledgement in) cannot change them: once in memory they are read without the database,
    /// at once when the document is free, else on the blocking pool. A kiosk's outbox, which
    /// `f` changes, and a document not yet loaded go through the writing connection, which saves
    /// the change before the lock is let go.
    ///
    /// Automerge may panic on a malformed message instead of returning an error (the fuzzer
    /// found such input): a panic in `f` is caught, the document dropped from memory (so a
    /// half-applied change is never saved or sent) and reloaded from the store at its next use,
    /// and the caller gets [`StoreError::DocumentRefused`]. Nothing else is affected.
    pub async fn with_doc<T: Send + 'static>(
        &self,
        name: DocName,
        f: impl FnOnce(&mut AutoCommit) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let reads_only = name.writer() == Writer::Server;
        self.access(name, reads_only, f).await
    }

    /// [`SyncHub::with_doc`], where `reads_only` says that `f` cannot change the document (the
    /// server's own documents, or a sync message out of any): then a document in memory is read
    /// under its own lock, without the writing connection.
    async fn access<T: Send + 'static>(
        &self,
        name: DocName,
        reads_only: bool,
        f: impl FnOnce(&mut AutoCommit) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut f = f;
        if reads_only {
            match self.loaded.try_lock(&name) {
                Some(Ok(doc)) => return read_doc(&self.loaded, &name, doc, f),
                Some(Err(())) => {
                    let (loaded, wanted) = (self.loaded.clone(), name.clone());
                    let read = tokio::task::spawn_blocking(move || match loaded.lock(&wanted) {
                        Some(doc) => Ok(read_doc(&loaded, &wanted, doc, f)),
                        // Dropped from memory meanwhile: loaded again below.
                        None => Err(f),
                    })
                    .await
                    .map_err(|e| StoreError::InvalidData(e.to_string()))?;
                    match read {
                        Ok(out) => return out,
                        Err(back) => f = back,
                    }
                }
                None => {}
            }
        }
        let docs = self.docs.clone();
        self.db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                write_in_transaction(conn, &mut docs, |conn, docs| {
                    let mut doc = docs.get(conn, &name)?;
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut doc))) {
                        Ok(out) => {
                            docs.persist(conn, &name, doc)?;
                            Ok(out)
                        }
                        Err(_) => {
                            drop(doc);
                            docs.forget(&name);
                            Err(StoreError::DocumentRefused(name.to_string()))
                        }
                    }
                })
            })
            .await
    }

    /// The next sync frame of `name` for a kiosk whose state is `state` (advanced as sent), and
    /// whether it carries changes; `None` when the kiosk has everything. The documents every
    /// kiosk receives are answered from the memo when another kiosk in the same state was
    /// answered already.
    pub async fn next_frame(
        &self,
        name: DocName,
        state: sync::State,
    ) -> Result<(sync::State, Outgoing), StoreError> {
        let memo = self.memo.clone();
        let doc_name = name.clone();
        // Making a sync message changes no document, a kiosk's outbox included: the booking's
        // own kiosk is answered without queueing behind the writer.
        self.access(name, true, move |doc| {
            let mut state = state;
            let next = if doc_name.is_shared() {
                memo.next_frame(doc, &doc_name, &mut state)
            } else {
                encoded_frame(doc, &doc_name, &mut state)
            };
            (state, next)
        })
        .await
    }

    /// The documents kiosk `kiosk` replicates: the directory, the agenda of every service for
    /// every month from this one to the end of its booking horizon, its outbox and inbox.
    pub async fn documents_for(&self, kiosk: KioskId) -> Result<Vec<DocName>, StoreError> {
        let now = self.now();
        let agendas = self
            .db
            .call(move |conn| agendas_in_horizon(conn, now))
            .await?;
        Ok(documents_of(kiosk, &agendas))
    }

    /// Rewrite the projections from SQLite: the directory, the agendas, kiosk `kiosk`'s inbox, and
    /// its body's bookings, which it joins under its name (the kiosk keeps that document in
    /// memory only and starts each session from empty; see `docs` for how its history is kept
    /// to today's and later records). Otherwise idempotent: records already right add nothing.
    pub async fn reconcile(&self, kiosk: KioskId) -> Result<(), StoreError> {
        let docs = self.docs.clone();
        let url = self.public_url.clone();
        let now = self.now();
        let config = self.config;
        let names = self.documents_for(kiosk).await?;
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                write_in_transaction(conn, &mut docs, |conn, docs| {
                    let ctx = Context::load(conn)?;
                    let mut changed = write_shared(conn, docs, ctx.as_ref(), config, now)?;
                    if write_operators(conn, docs, kiosk)? {
                        changed.push(DocName::Operators(kiosk));
                    }
                    if let Some(ctx) = &ctx
                        && let Some(partner) = kiosks::partner_of(conn, kiosk)?
                    {
                        docs.join_body(conn, kiosk, partner, ctx.today(now))?;
                        let body = BTreeSet::from([partner]);
                        changed.extend(write_bookings(
                            conn,
                            docs,
                            ctx,
                            now,
                            Some(&body),
                            url.as_deref(),
                        )?);
                    }
                    let agendas = names
                        .iter()
                        .filter(|n| matches!(n, DocName::Agenda { .. }))
                        .cloned();
                    changed.extend(project(conn, docs, agendas.chain([DocName::Inbox(kiosk)]))?);
                    Ok(changed)
                })
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
        let mut out = HashMap::new();
        for name in names {
            // Reading heads changes nothing: any document in memory and free is read at once.
            let heads = match self.loaded.try_lock(&name) {
                Some(Ok(mut doc)) => doc.get_heads(),
                _ => self.with_doc(name.clone(), |doc| doc.get_heads()).await?,
            };
            out.insert(name, heads);
        }
        Ok(out)
    }

    /// Kiosk `kiosk` was heard from now: its partner body's page shows when it was last alive.
    pub async fn seen(&self, kiosk: KioskId) -> Result<(), StoreError> {
        let now = self.now();
        self.db
            .call(move |conn| kiosks::seen(conn, &[kiosk], now))
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
        self.queue_outbox(kiosk, clock_trusted, OutboxWork::Decide { in_sync })
            .await
            .map(drop)
    }

    /// Apply `message`, the kiosk's sync message for its own outbox, and decide what it brought
    /// (as [`SyncHub::process_outbox`], `in_sync` when the server then holds everything the kiosk
    /// has written), in one transaction. The kiosk's sync state back, and whether Automerge took
    /// the message (a refused one changes nothing) and the outbox went through the rules. A
    /// message that makes Automerge panic is [`StoreError::DocumentRefused`], as in
    /// [`SyncHub::with_doc`].
    pub async fn receive_outbox(
        &self,
        kiosk: KioskId,
        state: sync::State,
        message: sync::Message,
        clock_trusted: bool,
    ) -> Result<(sync::State, Result<bool, automerge::AutomergeError>), StoreError> {
        let work = OutboxWork::Receive(Box::new((state, message)));
        let decided = self.queue_outbox(kiosk, clock_trusted, work).await?;
        decided
            .received
            .ok_or_else(|| StoreError::InvalidData("the outbox message was not applied".into()))
    }

    /// Group commit: the job joins a queue, and whichever caller takes the writing connection
    /// first decides every job queued by then and writes their documents in one transaction, so
    /// under load many kiosks' bookings share one disk flush and one projection (the agendas,
    /// the booked permits and each body's bookings written once, not per booking).
    /// Each job runs in a savepoint of its own: a kiosk whose decision fails is told so alone.
    async fn queue_outbox(
        &self,
        kiosk: KioskId,
        clock_trusted: bool,
        work: OutboxWork,
    ) -> Result<Decided, StoreError> {
        let received = std::time::Instant::now();
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(OutboxJob {
                kiosk,
                clock_trusted,
                work,
                done,
            });
        let hub = self.clone();
        let changed = self.db.call(move |conn| hub.decide_queued(conn)).await?;
        self.notify(changed);
        // Decided by this call or by another that found the job queued; a job dropped unanswered
        // (that call failed before deciding it) ends the session, and the next one decides it.
        let decided = outcome.await.unwrap_or_else(|_| {
            Err(StoreError::InvalidData("the outbox was not decided".into()))
        })?;
        if decided.count > 0 {
            self.metrics.observe_decision(received.elapsed());
        }
        Ok(decided)
    }

    /// Decide every queued outbox job (see [`SyncHub::process_outbox`]); the documents changed.
    fn decide_queued(&self, conn: &mut Connection) -> Result<Vec<DocName>, StoreError> {
        let jobs = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let config = self.config;
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        // No Questura set up yet: the kiosks' messages are still applied, nothing is decided.
        let ctx = Context::load(conn)?;
        let url = self.public_url.clone();
        let first = jobs.first().map(|job| job.kiosk);
        let stage = |what: &str| {
            if let Some(kiosk) = first {
                tracing::debug!(target: "coper_timeline", %kiosk, "server: {what}");
            }
        };
        let mut outcomes: Vec<(OutboxJob, Result<Decided, StoreError>)> =
            Vec::with_capacity(jobs.len());
        // The decisions and the documents they change in one transaction, so one disk flush:
        // the documents stay locked until it commits, so no session sends a verdict or a count
        // that could still be rolled back, and if anything fails nothing of it stays (the jobs
        // are told, their sessions end, and the next decides them again).
        let written = write_in_transaction(conn, &mut docs, |tx, docs| {
            let mut touched: BTreeSet<DocName> = BTreeSet::new();
            let mut bodies: BTreeSet<i64> = BTreeSet::new();
            for mut job in jobs {
                let kiosk = job.kiosk;
                tracing::debug!(target: "coper_timeline", %kiosk, "server: writer taken");
                let work = std::mem::replace(&mut job.work, OutboxWork::Decide { in_sync: false });
                let (in_sync, received) = match work {
                    OutboxWork::Decide { in_sync } => (in_sync, None),
                    OutboxWork::Receive(received) => {
                        let (state, message) = *received;
                        match receive_message(tx, docs, kiosk, state, message)? {
                            Some((state, Ok((changed, in_sync)))) => {
                                tracing::debug!(target: "coper_timeline", %kiosk, document = %DocName::Outbox(kiosk), "server: applied");
                                if !changed && !in_sync {
                                    // Nothing new to decide: the kiosk has more to send.
                                    let received = Some((state, Ok(false)));
                                    outcomes.push((job, Ok(Decided { count: 0, received })));
                                    continue;
                                }
                                (in_sync, Some((state, Ok(true))))
                            }
                            Some((state, Err(refused))) => {
                                let received = Some((state, Err(refused)));
                                outcomes.push((job, Ok(Decided { count: 0, received })));
                                continue;
                            }
                            None => {
                                let refused =
                                    StoreError::DocumentRefused(DocName::Outbox(kiosk).to_string());
                                outcomes.push((job, Err(refused)));
                                continue;
                            }
                        }
                    }
                };
                let Some(ctx) = &ctx else {
                    outcomes.push((job, Ok(Decided { count: 0, received })));
                    continue;
                };
                let requests: Vec<Request> = records(
                    &*docs.get(tx, &DocName::Outbox(kiosk))?,
                    collections::REQUESTS,
                )
                .into_iter()
                .map(|(_, r)| r)
                .collect();
                let outcome = store::in_savepoint(tx, |tx| {
                    if kiosks::is_revoked(tx, kiosk)? {
                        return Ok(0);
                    }
                    let mut mine = BTreeSet::new();
                    let decided = decide_requests(
                        tx,
                        ctx,
                        kiosk,
                        requests,
                        now,
                        &config.requests,
                        &mut mine,
                    )?;
                    if in_sync {
                        settle_leases(tx, ctx, kiosk, now, config, job.clock_trusted, &mut mine)?;
                    }
                    // The bodies' bookings and the permits booked change only with a decision:
                    // a kiosk merely in step costs no rewrite of them. This kiosk's body, and
                    // that of any kiosk whose booking a move replaced.
                    if decided > 0 {
                        for k in mine
                            .iter()
                            .filter_map(|n| match n {
                                DocName::Inbox(k) => Some(*k),
                                _ => None,
                            })
                            .chain([kiosk])
                        {
                            bodies.extend(kiosks::partner_of(tx, k)?);
                        }
                        mine.insert(DocName::Inbox(kiosk));
                    }
                    touched.extend(mine);
                    Ok(decided)
                })?;
                let outcome = outcome.map(|count| Decided { count, received });
                outcomes.push((job, outcome));
            }
            stage("decided");
            let Some(ctx) = &ctx else {
                return Ok(Vec::new());
            };
            // The booked permits change with a listed permit's booking (made or ended), and with
            // the day (yesterday's leave the list).
            let rewrite_booked =
                touched.contains(&DocName::Ready) || docs.booked_written_on != Some(ctx.today(now));
            // Each document syncs on its own, so a kiosk may learn a verdict before the new
            // counts: its replica counts its own lease bookings itself, and a provisional
            // booking proposed from a count a moment old is at worst relocated.
            let mut changed = project(tx, docs, touched)?;
            stage("agendas and inboxes written");
            if !bodies.is_empty() {
                changed.extend(write_bookings(
                    tx,
                    docs,
                    ctx,
                    now,
                    Some(&bodies),
                    url.as_deref(),
                )?);
                stage("bookings written");
            }
            // Every kiosk warns before booking these people again.
            if rewrite_booked && write_booked(tx, docs, ctx, now)? {
                changed.push(DocName::Ready);
                stage("booked permits written");
            }
            Ok(changed)
        });
        for (job, outcome) in outcomes {
            tracing::debug!(target: "coper_timeline", kiosk = %job.kiosk, "server: committed");
            let outcome = match (&written, outcome) {
                (Err(e), _) => Err(StoreError::InvalidData(format!("not committed: {e}"))),
                (Ok(_), outcome) => outcome,
            };
            let _ = job.done.send(outcome);
        }
        written
    }
}

/// Apply `message` to `kiosk`'s outbox in the write under way, saved with it: the kiosk's sync
/// state back, and whether the outbox changed and the server now holds everything the kiosk has
/// written; or the error Automerge gave. `None`: Automerge panicked on it, and the outbox is
/// dropped from memory, as in [`SyncHub::with_doc`], to be loaded again from the store.
#[allow(clippy::type_complexity)]
fn receive_message(
    tx: &Transaction<'_>,
    docs: &mut Documents,
    kiosk: KioskId,
    mut state: sync::State,
    message: sync::Message,
) -> Result<Option<(sync::State, Result<(bool, bool), automerge::AutomergeError>)>, StoreError> {
    let name = DocName::Outbox(kiosk);
    let mut doc = docs.get(tx, &name)?;
    let heads = message.heads.clone();
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let before = doc.get_heads();
        let result = doc.sync().receive_sync_message(&mut state, message);
        result.map(|()| (doc.get_heads() != before, has_changes(&mut doc, &heads)))
    }));
    match applied {
        Ok(outcome) => {
            docs.persist(tx, &name, doc)?;
            Ok(Some((state, outcome)))
        }
        Err(_) => {
            drop(doc);
            docs.forget(&name);
            Ok(None)
        }
    }
}

/// Run `f`, which must not change it, on a document in memory, locked: a panic drops it from
/// memory (see [`SyncHub::with_doc`]), and so does a change, which would be sent unsaved (only
/// the writer changes documents, and saves them before letting go).
fn read_doc<T>(
    loaded: &Loaded,
    name: &DocName,
    mut doc: super::docs::DocGuard,
    f: impl FnOnce(&mut AutoCommit) -> T,
) -> Result<T, StoreError> {
    let before = doc.get_heads();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut doc)));
    let unchanged = out.is_ok() && doc.get_heads() == before;
    drop(doc);
    if !unchanged {
        loaded.forget(name);
        return Err(StoreError::DocumentRefused(name.to_string()));
    }
    out.map_err(|_| StoreError::DocumentRefused(name.to_string()))
}

/// The documents kiosk `kiosk` replicates: its own, the shared ones, and `agendas` (those of the
/// horizon, [`agendas_in_horizon`]).
pub(super) fn documents_of(kiosk: KioskId, agendas: &[DocName]) -> Vec<DocName> {
    let mut names = vec![
        DocName::Directory,
        DocName::Outbox(kiosk),
        DocName::Inbox(kiosk),
        DocName::Ready,
        DocName::Operators(kiosk),
        DocName::Bookings(kiosk),
    ];
    names.extend_from_slice(agendas);
    names
}

/// The agenda documents of every service, month by month from today's to the last of its
/// horizon, as of `now`: the same for every kiosk.
pub(super) fn agendas_in_horizon(
    conn: &Connection,
    now: Timestamp,
) -> Result<Vec<DocName>, StoreError> {
    let mut names = Vec::new();
    if let Some(ctx) = Context::load(conn)? {
        let today = ctx.today(now);
        for service in &ctx.services {
            let last = today.saturating_add((service.rules.horizon_days() as i32).days());
            let mut month = today.first_of_month();
            while month <= last {
                names.push(DocName::agenda_for(&service.id, month));
                month = month.saturating_add(1.month());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use automerge::sync::{self, SyncDoc};
    use coper_shared::{
        documents::{DocName, KioskId, put_record, records},
        protocol::Frame,
    };

    use super::*;

    /// A sync frame the fuzzer found that makes Automerge 0.12 panic while reading it (hexane
    /// unwraps a truncated number): refused, and the document is as it was.
    #[tokio::test]
    async fn a_message_that_makes_automerge_panic_is_refused_and_the_document_survives() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        let hub = SyncHub::new(db, Clock::System, super::super::SyncConfig::default());
        let name = DocName::Outbox(KioskId(uuid::Uuid::from_u128(7)));
        hub.with_doc(name.clone(), |doc| {
            put_record(doc, "requests", "kept", &1);
        })
        .await
        .unwrap();
        let message = panicking_message();
        let refused = hub
            .with_doc(name.clone(), move |doc| {
                doc.sync()
                    .receive_sync_message(&mut sync::State::new(), message)
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::DocumentRefused(_))),
            "{refused:?}"
        );
        let kept = hub
            .with_doc(name.clone(), |doc| records::<i32>(doc, "requests").len())
            .await
            .unwrap();
        assert_eq!(kept, 1);

        // The same message to the outbox as a kiosk sends it, applied in the writer's
        // transaction with the decisions: refused alike, and the outbox as it was.
        let DocName::Outbox(kiosk) = name else {
            unreachable!()
        };
        let refused = hub
            .receive_outbox(kiosk, sync::State::new(), panicking_message(), true)
            .await;
        assert!(
            matches!(refused, Err(StoreError::DocumentRefused(_))),
            "{refused:?}"
        );
        let kept = hub
            .with_doc(name, |doc| records::<i32>(doc, "requests").len())
            .await
            .unwrap();
        assert_eq!(kept, 1);
    }

    /// The fuzzer's sync message that makes Automerge panic.
    fn panicking_message() -> sync::Message {
        let Ok(Frame::Sync { message, .. }) =
            Frame::decode(include_bytes!("../../tests/data/automerge_panic.bin"))
        else {
            panic!("the fuzzer's input is a sync frame");
        };
        sync::Message::decode(&message).expect("it decodes")
    }
}
