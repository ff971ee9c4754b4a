//! The server's copies of the synchronised Automerge documents, and their persistence in SQLite.
//!
//! Each document is kept in memory and saved as a snapshot plus incremental changes
//! (`sync_documents`, `sync_document_changes`); after [`COMPACT_AFTER`] increments the snapshot is
//! rewritten and the increments dropped. A change is saved before any peer is told of it, so no
//! kiosk ever holds a server change the server could lose; a save that fails is retried as a whole
//! snapshot at the next one.

use std::collections::{HashMap, HashSet};

use crate::store::{Connection, StoreError, documents};
use automerge::{ActorId, AutoCommit};
use coper_shared::documents::DocName;

/// Increments kept before the snapshot is rewritten.
pub const COMPACT_AFTER: i64 = 64;

/// In-memory documents, loaded on first use.
pub struct Documents {
    docs: HashMap<DocName, AutoCommit>,
    /// A fresh actor per server process: a change lost in a crash before it was saved can then
    /// never share its (actor, sequence number) with a different change made after the restart.
    actor: ActorId,
    /// Documents whose last save failed: the next save writes a whole snapshot, since the
    /// increment that failed is gone from Automerge's bookkeeping.
    needs_snapshot: HashSet<DocName>,
    /// What the ready list looked like (row count and last changes) when `ready` was last
    /// written: rebuilding its hashes is skipped while the list is unchanged.
    pub ready_version: Option<String>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            docs: HashMap::new(),
            actor: ActorId::random(),
            needs_snapshot: HashSet::new(),
            ready_version: None,
        }
    }
}

impl Documents {
    /// The document `name`, loaded from SQLite or created empty.
    pub fn get(
        &mut self,
        conn: &Connection,
        name: &DocName,
    ) -> Result<&mut AutoCommit, StoreError> {
        if !self.docs.contains_key(name) {
            let mut doc = load(conn, name)?;
            doc.set_actor(self.actor.clone());
            self.docs.insert(name.clone(), doc);
        }
        Ok(self.docs.get_mut(name).expect("just inserted"))
    }

    /// Start `name` again from empty, in memory and in the store (sync states included), with an
    /// actor of its own: for a document whose history must not outlive its records (a partner
    /// body's bookings, whose deleted records Automerge would keep), rewritten from SQLite next.
    pub fn start_afresh(&mut self, conn: &Connection, name: &DocName) -> Result<(), StoreError> {
        documents::delete(conn, &name.to_string())?;
        self.needs_snapshot.remove(name);
        let mut doc = AutoCommit::new();
        doc.set_actor(ActorId::random());
        self.docs.insert(name.clone(), doc);
        Ok(())
    }

    /// Drop `name` from memory: the next use loads it from the store again (after an operation
    /// on it failed half-way).
    pub fn forget(&mut self, name: &DocName) {
        self.docs.remove(name);
        self.needs_snapshot.remove(name);
    }

    /// Save what changed in `name` since its last save.
    pub fn persist(&mut self, conn: &Connection, name: &DocName) -> Result<(), StoreError> {
        let Some(doc) = self.docs.get_mut(name) else {
            return Ok(());
        };
        let whole = self.needs_snapshot.contains(name);
        match save(conn, name, doc, whole) {
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
        documents::save_snapshot(conn, &key, &doc.save(), jiff::Timestamp::now())
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
                let mut docs = Documents::default();
                for i in 0..(COMPACT_AFTER + 10) {
                    let doc = docs.get(conn, &name).unwrap();
                    put_record(doc, collections::SETTINGS, &format!("k{i}"), &i);
                    docs.persist(conn, &name).unwrap();
                }
                docs.get(conn, &name).unwrap().get_heads()
            })
        };
        let db = Db::open(&path).unwrap();
        db.call_blocking(|conn| {
            let mut docs = Documents::default();
            let doc = docs.get(conn, &name).unwrap();
            assert_eq!(doc.get_heads(), heads);
            assert_eq!(
                records::<i64>(doc, collections::SETTINGS).len() as i64,
                COMPACT_AFTER + 10
            );
            let increments = documents::increment_count(conn).unwrap();
            assert!(increments < COMPACT_AFTER, "compacted: {increments}");
        });
    }
}
