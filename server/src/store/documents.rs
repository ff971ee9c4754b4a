//! The synchronised documents' bytes: each document as a snapshot plus incremental changes
//! (`sync_documents`, `sync_document_changes`), and each kiosk's sync state per document
//! (`sync_peer_states`). What the bytes mean (Automerge) is `sync::docs`'s business.

use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, instant_text};

/// A document as saved: its snapshot, and the increments saved after it, in order.
pub struct Saved {
    pub snapshot: Option<Vec<u8>>,
    pub increments: Vec<Vec<u8>>,
}

/// Document `name` as saved.
pub fn load(conn: &Connection, name: &str) -> Result<Saved, StoreError> {
    let snapshot: Option<Vec<u8>> = conn
        .prepare_cached("SELECT snapshot FROM sync_documents WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let mut stmt = conn
        .prepare_cached("SELECT bytes FROM sync_document_changes WHERE name = ?1 ORDER BY seq")?;
    let increments = stmt
        .query_map([name], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<_, _>>()?;
    Ok(Saved {
        snapshot,
        increments,
    })
}

/// Whether `name` has a snapshot, and how many increments follow it.
pub fn saved_shape(conn: &Connection, name: &str) -> Result<(bool, i64), StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM sync_documents WHERE name = ?1")?
        .query_row([name], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    let increments = conn
        .prepare_cached("SELECT count(*) FROM sync_document_changes WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    Ok((exists, increments))
}

/// The bytes `name` takes in the store: its snapshot and its increments.
pub fn stored_bytes(conn: &Connection, name: &str) -> Result<u64, StoreError> {
    let bytes: i64 = conn.prepare_cached("SELECT coalesce((SELECT length(snapshot) FROM sync_documents WHERE name = ?1), 0)
              + coalesce((SELECT sum(length(bytes)) FROM sync_document_changes WHERE name = ?1), 0)")?.query_row([name],
        |r| r.get(0),
    )?;
    Ok(bytes.max(0) as u64)
}

/// Replace `name`'s snapshot and drop its increments.
pub fn save_snapshot(
    conn: &Connection,
    name: &str,
    bytes: &[u8],
    now: jiff::Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_documents (name, snapshot, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot,
                                          updated_at = excluded.updated_at",
    )?
    .execute(params![name, bytes, instant_text(now)])?;
    conn.prepare_cached("DELETE FROM sync_document_changes WHERE name = ?1")?
        .execute([name])?;
    Ok(())
}

/// Append one increment to `name`.
pub fn append_increment(conn: &Connection, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_document_changes (name, seq, bytes)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM sync_document_changes
                      WHERE name = ?1), ?2)",
    )?
    .execute(params![name, bytes])?;
    Ok(())
}

/// Increments stored across all documents (for tests of compaction).
pub fn increment_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM sync_document_changes")?
        .query_row([], |r| r.get(0))?)
}

/// The sync state saved for `kiosk` and document `name`, if any.
pub fn peer_state(
    conn: &Connection,
    kiosk: &str,
    name: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT state FROM sync_peer_states WHERE kiosk_id = ?1 AND name = ?2")?
        .query_row(params![kiosk, name], |r| r.get(0))
        .optional()?)
}

/// Save `kiosk`'s sync states (document name, bytes) in one transaction.
pub fn save_peer_states(
    conn: &mut Connection,
    kiosk: &str,
    states: &[(String, Vec<u8>)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for (name, bytes) in states {
        tx.prepare_cached(
            "INSERT INTO sync_peer_states (kiosk_id, name, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (kiosk_id, name) DO UPDATE SET state = excluded.state",
        )?
        .execute(params![kiosk, name, bytes])?;
    }
    tx.commit()?;
    Ok(())
}

/// Delete document `name`, its increments and every kiosk's sync state for it.
pub fn delete(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM sync_documents WHERE name = ?1")?
        .execute([name])?;
    conn.prepare_cached("DELETE FROM sync_document_changes WHERE name = ?1")?
        .execute([name])?;
    conn.prepare_cached("DELETE FROM sync_peer_states WHERE name = ?1")?
        .execute([name])?;
    Ok(())
}
