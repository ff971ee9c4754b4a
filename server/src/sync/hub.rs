//! [`SyncHub`]: what every kiosk session shares. The live session of each kiosk (a new one
//! replaces the old), the documents under one lock with the database, a channel that says which
//! document changed, and the three ways documents change: a kiosk connects ([`SyncHub::reconcile`]),
//! a kiosk's outbox brings requests ([`SyncHub::process_outbox`]), or the staff changed SQLite
//! ([`SyncHub::republish`]).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use automerge::AutoCommit;
use coper_shared::documents::{DocName, KioskId, Request, collections, records};
use jiff::{Timestamp, ToSpan};
use tokio::sync::{Notify, broadcast};

use super::{
    Context, SyncConfig,
    docs::Documents,
    leases::settle_leases,
    outbox::decide_requests,
    project::{
        project, write_agenda, write_booked, write_bookings, write_inbox, write_operators,
        write_shared,
    },
};
use crate::{
    clock::Clock,
    store::{Db, StoreError, kiosks},
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
    docs: Arc<Mutex<Documents>>,
    changed: broadcast::Sender<DocName>,
    /// The live session of each kiosk: a new one replaces the old (one WebSocket per kiosk).
    sessions: Arc<Mutex<HashMap<KioskId, Arc<Notify>>>>,
}

impl SyncHub {
    pub fn new(db: Db, clock: Clock, config: SyncConfig) -> Self {
        let (changed, _) = broadcast::channel(1024);
        Self {
            db,
            clock,
            config,
            sandbox: None,
            public_url: None,
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
        let url = self.public_url.clone();
        let config = self.config;
        let now = self.now();
        let changed = self
            .db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let mut changed = write_shared(conn, &mut docs, config, now)?;
                // Operators' accounts and partner bodies change rarely: rewrite every kiosk's.
                for kiosk in kiosks::enrolled(conn)? {
                    if write_operators(conn, &mut docs, kiosk)? {
                        changed.push(DocName::Operators(kiosk));
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
                changed.extend(write_bookings(conn, &mut docs, now, None, url.as_deref())?);
                Ok::<_, StoreError>(changed)
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
                let mut changed = write_bookings(conn, &mut docs, now, None, url.as_deref())?;
                // Who is being served, who is back on the list: every kiosk's warning follows.
                if write_booked(conn, &mut docs, now)? {
                    changed.push(DocName::Ready);
                }
                Ok::<_, StoreError>(changed)
            })
            .await?;
        self.notify(changed);
        Ok(())
    }

    /// Run `f` on one document, under the documents' lock, with the database connection.
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
        let docs = self.docs.clone();
        self.db
            .call(move |conn| {
                let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
                let doc = docs.get(conn, &name)?;
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(doc))) {
                    Ok(out) => {
                        docs.persist(conn, &name)?;
                        Ok(out)
                    }
                    Err(_) => {
                        docs.forget(&name);
                        Err(StoreError::DocumentRefused(name.to_string()))
                    }
                }
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
                    DocName::Bookings(kiosk),
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

    /// Rewrite the projections from SQLite: the directory, the agendas, kiosk `kiosk`'s inbox, and
    /// its copy of its body's bookings, which starts afresh at each session (the kiosk keeps it
    /// in memory only and starts from empty too), so the history that goes out holds only
    /// today's and later records. Otherwise idempotent: records already right add nothing.
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
                docs.start_afresh(conn, &DocName::Bookings(kiosk))?;
                let mut changed = write_shared(conn, &mut docs, config, now)?;
                if write_operators(conn, &mut docs, kiosk)? {
                    changed.push(DocName::Operators(kiosk));
                }
                let body = kiosks::partner_of(conn, kiosk)?.into_iter().collect();
                changed.extend(write_bookings(
                    conn,
                    &mut docs,
                    now,
                    Some(&body),
                    url.as_deref(),
                )?);
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

    /// Whether `kiosk` has been revoked (from the command line or the administration pages).
    /// Kiosk `kiosk` was heard from now: its partner body's page shows when it was last alive.
    pub async fn seen(&self, kiosk: KioskId) -> Result<(), StoreError> {
        let now = self.now();
        self.db
            .call(move |conn| kiosks::seen(conn, kiosk, now))
            .await
    }

    pub async fn is_revoked(&self, kiosk: KioskId) -> Result<bool, StoreError> {
        self.db
            .call(move |conn| kiosks::is_revoked(conn, kiosk))
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
        let url = self.public_url.clone();
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
                if kiosks::is_revoked(conn, kiosk)? {
                    return Ok(Vec::new());
                }
                let mut touched: BTreeSet<DocName> = BTreeSet::new();
                let tx = conn.transaction()?;
                let decided = decide_requests(
                    &tx,
                    &ctx,
                    kiosk,
                    requests,
                    now,
                    &config.requests,
                    &mut touched,
                )?;
                if in_sync {
                    settle_leases(&tx, &ctx, kiosk, now, config, clock_trusted, &mut touched)?;
                }
                tx.commit()?;
                // Only now, after the commit, do the documents learn the verdicts and counts.
                // (Each document syncs on its own, so a kiosk may learn a verdict before the new
                // counts: its replica counts its own lease bookings itself, and a provisional
                // booking proposed from a count a moment old is at worst relocated.)
                // The bodies' bookings and the permits booked change only with a decision: a
                // kiosk merely in step costs no rewrite of them.
                let bodies = if decided > 0 {
                    // This kiosk's body, and that of any kiosk whose booking a move replaced.
                    let mut bodies = BTreeSet::new();
                    for k in touched
                        .iter()
                        .filter_map(|n| match n {
                            DocName::Inbox(k) => Some(*k),
                            _ => None,
                        })
                        .chain([kiosk])
                    {
                        bodies.extend(kiosks::partner_of(conn, k)?);
                    }
                    Some(bodies)
                } else {
                    None
                };
                let mut changed = project(conn, &mut docs, kiosk, touched)?;
                if let Some(bodies) = bodies {
                    changed.extend(write_bookings(
                        conn,
                        &mut docs,
                        now,
                        Some(&bodies),
                        url.as_deref(),
                    )?);
                    // The people just booked: every kiosk warns before booking them again.
                    if write_booked(conn, &mut docs, now)? {
                        changed.push(DocName::Ready);
                    }
                }
                Ok::<_, StoreError>(changed)
            })
            .await?;
        self.notify(changed);
        Ok(())
    }
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
        let Ok(Frame::Sync { message, .. }) =
            Frame::decode(include_bytes!("../../tests/data/automerge_panic.bin"))
        else {
            panic!("the fuzzer's input is a sync frame");
        };
        let message = sync::Message::decode(&message).expect("it decodes");
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
            .with_doc(name, |doc| records::<i32>(doc, "requests").len())
            .await
            .unwrap();
        assert_eq!(kept, 1);
    }
}
