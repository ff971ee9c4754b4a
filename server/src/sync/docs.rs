//! The server's copies of the synchronised Automerge documents, and their persistence in SQLite.
//!
//! Each document is kept in memory under a lock of its own and saved as a snapshot plus
//! incremental changes (`sync_documents`, `sync_document_changes`); after [`COMPACT_AFTER`]
//! increments the snapshot is rewritten and the increments dropped. A change is saved before any
//! peer is told of it, so no kiosk ever holds a server change the server could lose: the
//! documents a write changes stay locked until its transaction commits
//! ([`write_in_transaction`]), and a save that fails is retried as a whole snapshot at the next
//! one.
//!
//! A partner body's bookings are one document in memory for the whole body ([`BodyBookings`]),
//! held under the name of each of its kiosks with a session (`bookings/K`: who may read it stays a
//! property of its name), so a booking is written once, not once per kiosk. It is never saved: it
//! starts from SQLite when the first of the body's kiosks connects, and the kiosks keep it in
//! memory only too. Its history must not outlive its records (yesterday's people, a cancelled
//! booking's name), so it starts afresh on a new day, past [`BODY_BOOKINGS_CHANGES`] changes, and
//! after a rolled-back write: then the body's sessions end, and each kiosk, reconnecting, takes
//! the fresh one whole.
//!
//! One writer at a time changes documents ([`Documents`], used with the database's writing
//! connection); the sessions read the server's own documents through [`Loaded`], with no
//! database and only that one document's lock, so 200 kiosks being sent an agenda's new counts
//! do not queue behind each other's inboxes or behind the database.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Weak},
};

use crate::store::{Connection, StoreError, Transaction, documents};
use automerge::{ActorId, AutoCommit};
use coper_shared::documents::{DocName, KioskId, PartnerBooking};
use jiff::civil::Date;
use parking_lot::{Mutex, RawMutex, RwLock, lock_api::ArcMutexGuard};

use super::changes::Sessions;

/// Increments kept before the snapshot is rewritten.
pub const COMPACT_AFTER: i64 = 64;

/// Changes a partner body's bookings document takes before it starts afresh (see the module's
/// documentation): a kiosk that connects is sent its whole history. A booking, a cancellation or
/// a step at the counter is one change (several, written together, one); the busiest Questura
/// makes a few hundred a day, so this is reached only by a load test.
pub const BODY_BOOKINGS_CHANGES: u32 = 2_000;

/// One document, locked.
pub type DocGuard = ArcMutexGuard<RawMutex, AutoCommit>;

/// The documents in memory, each under its own lock: shared by the writer and the sessions.
#[derive(Clone, Default)]
pub struct Loaded(Arc<RwLock<HashMap<DocName, Arc<Mutex<AutoCommit>>>>>);

impl Loaded {
    /// `name`, locked, if it is in memory.
    pub fn lock(&self, name: &DocName) -> Option<DocGuard> {
        let doc = self.0.read().get(name)?.clone();
        Some(doc.lock_arc())
    }

    /// `name`, locked, if it is in memory and free now; `Err(())` if it is in memory but held.
    pub fn try_lock(&self, name: &DocName) -> Option<Result<DocGuard, ()>> {
        let doc = self.0.read().get(name)?.clone();
        Some(doc.try_lock_arc().ok_or(()))
    }

    pub fn contains(&self, name: &DocName) -> bool {
        self.0.read().contains_key(name)
    }

    /// Drop `name` from memory: its next use loads it from the store.
    pub fn forget(&self, name: &DocName) {
        self.0.write().remove(name);
    }
}

/// The writer's side of the documents: loads them on first use, saves them, and holds the
/// locks of those changed by the write under way.
pub struct Documents {
    loaded: Loaded,
    /// A fresh actor per server process: a change lost in a crash before it was saved can then
    /// never share its (actor, sequence number) with a different change made after the restart.
    actor: ActorId,
    /// Documents whose last save failed: the next save writes a whole snapshot, since the
    /// increment that failed is gone from Automerge's bookkeeping.
    needs_snapshot: HashSet<DocName>,
    /// Documents saved by the write under way, locked until its transaction ends.
    held: Vec<(DocName, DocGuard)>,
    /// What the ready list looked like (row count and last changes) when `ready` was last
    /// written: rebuilding its hashes is skipped while the list is unchanged.
    pub ready_version: Option<String>,
    /// The day the booked permits were last written for: the first decision of a new day
    /// rewrites them (yesterday's bookings leave the list) even if it books no listed permit.
    pub booked_written_on: Option<jiff::civil::Date>,
    /// Each partner body's bookings document, while a kiosk of the body has a session.
    bodies: HashMap<i64, BodyBookings>,
    /// The live sessions, to end those whose body's bookings started afresh.
    sessions: Sessions,
}

/// One partner body's bookings document (see the module's documentation).
pub struct BodyBookings {
    /// Alive while one of the body's kiosks holds it under its name in [`Loaded`].
    doc: Weak<Mutex<AutoCommit>>,
    /// What it holds, appointment → record: a write puts only the difference.
    pub written: BTreeMap<String, PartnerBooking>,
    /// The day it started: its history holds nothing older.
    started_on: Date,
    /// Writes that changed it since it started.
    pub changes: u32,
}

impl BodyBookings {
    /// Whether it must start afresh before it is written or joined on `today`.
    fn outworn(&self, today: Date) -> bool {
        self.started_on != today || self.changes >= BODY_BOOKINGS_CHANGES
    }
}

impl Documents {
    pub fn new(loaded: Loaded, sessions: Sessions) -> Self {
        Self {
            loaded,
            actor: ActorId::random(),
            needs_snapshot: HashSet::new(),
            held: Vec::new(),
            ready_version: None,
            booked_written_on: None,
            bodies: HashMap::new(),
            sessions,
        }
    }

    /// The document `name`, locked: from the write under way, from memory, or loaded from
    /// SQLite (created empty if it was never saved). A body's bookings document held under
    /// another of its kiosks' names by the write under way is that one.
    pub fn get(&mut self, conn: &Connection, name: &DocName) -> Result<DocGuard, StoreError> {
        if let Some(i) = self.held.iter().position(|(n, _)| n == name) {
            return Ok(self.held.swap_remove(i).1);
        }
        let in_memory = self.loaded.0.read().get(name).cloned();
        if let Some(doc) = in_memory {
            let held = self
                .held
                .iter()
                .position(|(_, guard)| Arc::ptr_eq(ArcMutexGuard::mutex(guard), &doc));
            return Ok(match held {
                Some(i) => self.held.swap_remove(i).1,
                None => doc.lock_arc(),
            });
        }
        if matches!(name, DocName::Bookings(_)) {
            // The kiosk has no session (or it is ending): nothing to read, and nothing written
            // here reaches anyone.
            return Ok(Arc::new(Mutex::new(AutoCommit::new())).lock_arc());
        }
        let mut doc = load(conn, name)?;
        doc.set_actor(self.actor.clone());
        let shared = Arc::new(Mutex::new(doc));
        self.loaded.0.write().insert(name.clone(), shared.clone());
        Ok(shared.lock_arc())
    }

    /// Whether `name` is in memory (a kiosk's bookings document is, while it has a session).
    pub fn is_loaded(&self, name: &DocName) -> bool {
        self.loaded.contains(name) || self.held.iter().any(|(n, _)| n == name)
    }

    /// Give kiosk `kiosk`, whose session starts, its body's bookings document under its name:
    /// the body's current one, or a fresh one (empty, for the caller to write) if there is none
    /// or it must start afresh. The sync states of the kiosk's earlier sessions go: the kiosk
    /// starts from empty too.
    pub fn join_body(
        &mut self,
        conn: &Connection,
        kiosk: KioskId,
        partner: i64,
        today: Date,
    ) -> Result<(), StoreError> {
        let name = DocName::Bookings(kiosk);
        documents::delete(conn, &name.to_string())?;
        let current = self
            .bodies
            .get(&partner)
            .filter(|body| !body.outworn(today))
            .and_then(|body| body.doc.upgrade());
        let doc = match current {
            Some(doc) => doc,
            None => {
                self.restart_body(partner);
                let mut doc = AutoCommit::new();
                // An actor of its own: the kiosks may still hold an earlier one's changes.
                doc.set_actor(ActorId::random());
                let doc = Arc::new(Mutex::new(doc));
                self.bodies.insert(
                    partner,
                    BodyBookings {
                        doc: Arc::downgrade(&doc),
                        written: BTreeMap::new(),
                        started_on: today,
                        changes: 0,
                    },
                );
                doc
            }
        };
        self.loaded.0.write().insert(name, doc);
        Ok(())
    }

    /// The partner bodies whose bookings document is alive, and for each the kiosks holding it
    /// (by name, for the sessions to send it); bodies left with none are forgotten.
    pub fn bodies(&mut self) -> BTreeMap<i64, Vec<KioskId>> {
        let loaded = self.loaded.0.read();
        let mut out: BTreeMap<i64, Vec<KioskId>> = BTreeMap::new();
        self.bodies.retain(|partner, body| {
            let Some(doc) = body.doc.upgrade() else {
                return false;
            };
            let kiosks = loaded
                .iter()
                .filter_map(|(name, held)| match name {
                    DocName::Bookings(k) if Arc::ptr_eq(held, &doc) => Some(*k),
                    _ => None,
                })
                .collect();
            out.insert(*partner, kiosks);
            true
        });
        out
    }

    /// Partner body `partner`'s bookings document as written last; `None` if it has none.
    pub fn body(&mut self, partner: i64) -> Option<&mut BodyBookings> {
        self.bodies.get_mut(&partner)
    }

    /// Whether partner body `partner`'s bookings document must start afresh before it is written
    /// on `today` (see [`BODY_BOOKINGS_CHANGES`]).
    pub fn body_outworn(&self, partner: i64, today: Date) -> bool {
        self.bodies
            .get(&partner)
            .is_some_and(|body| body.outworn(today))
    }

    /// Drop partner body `partner`'s bookings document and end its kiosks' sessions: each
    /// reconnects and joins a fresh one ([`Documents::join_body`]), taking it whole.
    pub fn restart_body(&mut self, partner: i64) {
        let Some(body) = self.bodies.remove(&partner) else {
            return;
        };
        let Some(doc) = body.doc.upgrade() else {
            return;
        };
        let mut kiosks = Vec::new();
        self.loaded.0.write().retain(|name, held| match name {
            DocName::Bookings(k) if Arc::ptr_eq(held, &doc) => {
                kiosks.push(*k);
                false
            }
            _ => true,
        });
        tracing::info!(
            partner,
            kiosks = kiosks.len(),
            "the body's bookings document starts afresh: its sessions end"
        );
        super::changes::end_sessions(
            &self.sessions,
            &kiosks,
            "its body's bookings started afresh",
        );
    }

    /// Save what changed in `doc` (the document `name`) since its last save, keeping it locked
    /// until the write under way ends.
    pub fn persist(
        &mut self,
        conn: &Connection,
        name: &DocName,
        mut doc: DocGuard,
    ) -> Result<(), StoreError> {
        let whole = self.needs_snapshot.contains(name);
        let saved = if matches!(name, DocName::Bookings(_)) {
            Ok(())
        } else {
            save(conn, name, &mut doc, whole)
        };
        self.held.push((name.clone(), doc));
        match saved {
            Ok(()) => {
                self.needs_snapshot.remove(name);
                Ok(())
            }
            Err(e) => {
                self.needs_snapshot.insert(name.clone());
                Err(e)
            }
        }
    }

    /// The write under way ended: committed, its documents are let go; rolled back, they are
    /// dropped from memory (what they hold was never saved) and loaded again at their next use.
    pub fn finish(&mut self, committed: bool) {
        if !committed && !self.held.is_empty() {
            self.booked_written_on = None;
            // A body's bookings document is never saved: what the write put in it stays in
            // memory, for its kiosks to be sent, unless it starts afresh.
            let outdated: Vec<i64> = self
                .bodies
                .iter()
                .filter(|(_, body)| {
                    body.doc.upgrade().is_some_and(|doc| {
                        self.held
                            .iter()
                            .any(|(_, guard)| Arc::ptr_eq(ArcMutexGuard::mutex(guard), &doc))
                    })
                })
                .map(|(partner, _)| *partner)
                .collect();
            for partner in outdated {
                self.restart_body(partner);
            }
        }
        for (name, doc) in self.held.drain(..) {
            if !committed {
                self.loaded.forget(&name);
                self.needs_snapshot.remove(&name);
            }
            drop(doc);
        }
    }

    /// Drop `name` from memory (after an operation on it failed half-way).
    pub fn forget(&mut self, name: &DocName) {
        self.held.retain(|(n, _)| n != name);
        self.loaded.forget(name);
        self.needs_snapshot.remove(name);
    }
}

/// Run `write`, which changes documents, in one SQLite transaction: their saves cost one commit,
/// and they stay locked until it, so no session sends a change that could still be rolled back.
/// If anything fails, the documents it changed are dropped from memory and reloaded from the
/// store at their next use.
pub fn write_in_transaction<T>(
    conn: &mut Connection,
    docs: &mut Documents,
    write: impl FnOnce(&Transaction<'_>, &mut Documents) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Documents still held by a write that panicked half-way: what they hold was never
    // committed, and sessions wait on their locks.
    docs.finish(false);
    let tx = conn.transaction()?;
    let out = write(&tx, docs).and_then(|out| {
        tx.commit()?;
        Ok(out)
    });
    docs.finish(out.is_ok());
    out
}

fn load(conn: &Connection, name: &DocName) -> Result<AutoCommit, StoreError> {
    let key = name.to_string();
    let invalid =
        |e: automerge::AutomergeError| StoreError::InvalidData(format!("document {key}: {e}"));
    let saved = documents::load(conn, &key)?;
    let mut doc = match saved.snapshot {
        Some(bytes) => AutoCommit::load(&bytes).map_err(invalid)?,
        None => AutoCommit::new(),
    };
    for bytes in saved.increments {
        doc.load_incremental(&bytes).map_err(invalid)?;
    }
    // Everything loaded is already saved: start incremental saves from here.
    let _ = doc.save_incremental();
    Ok(doc)
}

fn save(
    conn: &Connection,
    name: &DocName,
    doc: &mut AutoCommit,
    whole: bool,
) -> Result<(), StoreError> {
    let key = name.to_string();
    let increment = doc.save_incremental();
    if increment.is_empty() && !whole {
        return Ok(());
    }
    let (exists, increments) = documents::saved_shape(conn, &key)?;
    if whole || !exists || increments >= COMPACT_AFTER {
        // Uncompressed: DEFLATE of a whole agenda was 8 % of the server's CPU in a reconnect storm,
        // and the disk it saves is cheap.
        documents::save_snapshot(conn, &key, &doc.save_nocompress(), jiff::Timestamp::now())
    } else {
        documents::append_increment(conn, &key, &increment)
    }
}

#[cfg(test)]
mod tests {
    use coper_shared::documents::{collections, put_record, records};

    use super::*;
    use crate::store::Db;

    /// A document survives a restart through snapshot and increments, across a compaction.
    #[test]
    fn documents_reload_identically_across_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let name = DocName::Directory;
        let heads = {
            let db = Db::open(&path).unwrap();
            db.call_blocking(|conn| {
                let mut docs = Documents::new(Loaded::default(), Sessions::default());
                for i in 0..(COMPACT_AFTER + 10) {
                    write_in_transaction(conn, &mut docs, |conn, docs| {
                        let mut doc = docs.get(conn, &name)?;
                        put_record(&mut doc, collections::SETTINGS, &format!("k{i}"), &i);
                        docs.persist(conn, &name, doc)
                    })
                    .unwrap();
                }
                docs.get(conn, &name).unwrap().get_heads()
            })
        };
        let db = Db::open(&path).unwrap();
        db.call_blocking(|conn| {
            let mut docs = Documents::new(Loaded::default(), Sessions::default());
            let mut doc = docs.get(conn, &name).unwrap();
            assert_eq!(doc.get_heads(), heads);
            assert_eq!(
                records::<i64>(&doc, collections::SETTINGS).len() as i64,
                COMPACT_AFTER + 10
            );
            let increments = documents::increment_count(conn).unwrap();
            assert!(increments < COMPACT_AFTER, "compacted: {increments}");
        });
    }

    /// A partner body's bookings are one document under each of its kiosks' names, and it starts
    /// afresh — the kiosks holding it told to end their sessions — on a new day, past
    /// [`BODY_BOOKINGS_CHANGES`], and after a rolled-back write to it.
    #[test]
    fn a_bodys_bookings_are_one_document_that_starts_afresh_when_it_must() {
        use super::super::changes::Session;
        use futures_util::FutureExt;

        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        let kiosk = |n: u128| KioskId(uuid::Uuid::from_u128(n));
        let (a, b, c) = (kiosk(1), kiosk(2), kiosk(3));
        let sessions = Sessions::default();
        let live: Vec<Arc<Session>> = [a, b, c]
            .iter()
            .map(|k| {
                let session = Arc::new(Session::default());
                sessions.lock().unwrap().insert(*k, session.clone());
                session
            })
            .collect();
        let ended = |i: usize| live[i].ended().now_or_never().is_some();
        let loaded = Loaded::default();
        let holds_a_record = |k: KioskId, key: &str| {
            loaded.lock(&DocName::Bookings(k)).is_some_and(|doc| {
                records::<i64>(&doc, collections::BOOKINGS)
                    .iter()
                    .any(|(r, _)| r == key)
            })
        };
        let today = jiff::civil::date(2026, 12, 3);
        db.call_blocking(|conn| {
            let mut docs = Documents::new(loaded.clone(), sessions.clone());
            let write = |docs: &mut Documents, conn: &mut Connection, key: &str, fail: bool| {
                write_in_transaction(conn, docs, |tx, docs| {
                    let name = DocName::Bookings(a);
                    let mut doc = docs.get(tx, &name)?;
                    put_record(&mut doc, collections::BOOKINGS, key, &1);
                    docs.persist(tx, &name, doc)?;
                    if fail {
                        return Err(StoreError::InvalidData("rolled back".into()));
                    }
                    Ok(())
                })
            };
            docs.join_body(conn, a, 7, today).unwrap();
            docs.join_body(conn, b, 7, today).unwrap();
            write(&mut docs, conn, "one", false).unwrap();
            assert!(
                holds_a_record(b, "one"),
                "written once, held under every kiosk's name"
            );
            let mut holders = docs.bodies().remove(&7).unwrap();
            holders.sort();
            assert_eq!(holders, vec![a, b]);

            // Past the bound, the next kiosk to join starts a fresh one; the others are told to
            // reconnect, and no longer hold the old one.
            docs.body(7).unwrap().changes = BODY_BOOKINGS_CHANGES;
            docs.join_body(conn, c, 7, today).unwrap();
            assert!(ended(0) && ended(1) && !ended(2));
            assert!(!loaded.contains(&DocName::Bookings(a)));
            assert!(!holds_a_record(c, "one"), "the fresh one is empty");
            docs.join_body(conn, a, 7, today).unwrap();
            assert!(!ended(2), "joining a current one ends nobody");

            // A new day starts a fresh one.
            docs.join_body(conn, b, 7, today.tomorrow().unwrap())
                .unwrap();
            assert!(ended(2));
            assert!(
                docs.body_outworn(7, today) && !docs.body_outworn(7, today.tomorrow().unwrap())
            );

            // A rolled-back write leaves nothing in memory: the body's one is dropped.
            docs.join_body(conn, a, 7, today.tomorrow().unwrap())
                .unwrap();
            assert!(write(&mut docs, conn, "two", true).is_err());
            assert!(
                !loaded.contains(&DocName::Bookings(a)) && !loaded.contains(&DocName::Bookings(b))
            );
            assert!(docs.bodies().is_empty());
        });
    }
}
