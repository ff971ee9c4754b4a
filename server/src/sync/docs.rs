//! The server's copies of the synchronised Automerge documents, and their persistence in SQLite.
//!
//! Each document is kept in memory under a lock of its own and saved as a snapshot plus
//! incremental changes (`sync_documents`, `sync_document_changes`); after [`COMPACT_AFTER`]
//! increments the snapshot is rewritten and the increments dropped. A change is saved before any
//! peer is told of it, so no kiosk ever holds a server change the server could lose: the
//! documents a write changes stay locked until its transaction commits
//! ([`write_in_transaction`]), and a save that fails is retried as a whole snapshot at the next
//! one. A partner body's bookings documents (`bookings/K`) are never saved: each kiosk session
//! starts them afresh from SQLite, and the kiosk keeps them in memory only too.
//!
//! One writer at a time changes documents ([`Documents`], used with the database's writing
//! connection); the sessions read the server's own documents through [`Loaded`], with no
//! database and only that one document's lock, so 200 kiosks being sent an agenda's new counts
//! do not queue behind each other's inboxes or behind the database.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use crate::store::{Connection, StoreError, Transaction, documents};
use automerge::{ActorId, AutoCommit};
use coper_shared::documents::{DocName, KioskId, PartnerBooking};
use parking_lot::{Mutex, RawMutex, RwLock, lock_api::ArcMutexGuard};

/// Increments kept before the snapshot is rewritten.
pub const COMPACT_AFTER: i64 = 64;

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
    /// What the bookings documents were last written with, per partner body (appointment →
    /// the kiosk that made it and the record but for `here`), and the kiosks whose document
    /// holds exactly that: the next write gives them only the difference.
    pub bookings_written: HashMap<i64, BTreeMap<String, (Option<String>, PartnerBooking)>>,
    pub bookings_in_step: HashSet<KioskId>,
}

impl Documents {
    pub fn new(loaded: Loaded) -> Self {
        Self {
            loaded,
            actor: ActorId::random(),
            needs_snapshot: HashSet::new(),
            held: Vec::new(),
            ready_version: None,
            booked_written_on: None,
            bookings_written: HashMap::new(),
            bookings_in_step: HashSet::new(),
        }
    }

    /// The document `name`, locked: from the write under way, from memory, or loaded from
    /// SQLite (created empty if it was never saved).
    pub fn get(&mut self, conn: &Connection, name: &DocName) -> Result<DocGuard, StoreError> {
        if let Some(i) = self.held.iter().position(|(n, _)| n == name) {
            return Ok(self.held.swap_remove(i).1);
        }
        if let Some(doc) = self.loaded.lock(name) {
            return Ok(doc);
        }
        let mut doc = if matches!(name, DocName::Bookings(_)) {
            AutoCommit::new()
        } else {
            load(conn, name)?
        };
        doc.set_actor(self.actor.clone());
        let shared = Arc::new(Mutex::new(doc));
        self.loaded.0.write().insert(name.clone(), shared.clone());
        Ok(shared.lock_arc())
    }

    /// Whether `name` is in memory (a kiosk's bookings document is, while it has a session).
    pub fn is_loaded(&self, name: &DocName) -> bool {
        self.loaded.contains(name) || self.held.iter().any(|(n, _)| n == name)
    }

    /// Start `name` again from empty, in memory and in the store (sync states included), with an
    /// actor of its own: for a document whose history must not outlive its records (a partner
    /// body's bookings, whose deleted records Automerge would keep), rewritten from SQLite next.
    pub fn start_afresh(&mut self, conn: &Connection, name: &DocName) -> Result<(), StoreError> {
        documents::delete(conn, &name.to_string())?;
        self.needs_snapshot.remove(name);
        if let DocName::Bookings(kiosk) = name {
            self.bookings_in_step.remove(kiosk);
        }
        self.held.retain(|(n, _)| n != name);
        let mut doc = AutoCommit::new();
        doc.set_actor(ActorId::random());
        self.loaded
            .0
            .write()
            .insert(name.clone(), Arc::new(Mutex::new(doc)));
        Ok(())
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
            self.bookings_written.clear();
            self.bookings_in_step.clear();
            self.booked_written_on = None;
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
                let mut docs = Documents::new(Loaded::default());
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
            let mut docs = Documents::new(Loaded::default());
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
}
