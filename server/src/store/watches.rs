//! "Tell me when my permit is ready" (`ready_watches`): what the public status check was asked,
//! where to write and in which language — kept until an import brings the permit (one message,
//! then the row is deleted) or until it expires. Matching is `crate::status`'s, so a watch
//! fires for exactly the person the status check would have answered "ready".

use coper_shared::jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, params};

use super::{StoreError, instant_text};

/// A watch waiting for its permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub id: i64,
    /// JSON of `crate::status::Asked`.
    pub query: String,
    pub channel: String,
    pub recipient: String,
    pub lang: String,
}

/// Whether there is room for another watch (`limit` at once).
pub fn room(conn: &Connection, limit: usize) -> Result<bool, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM ready_watches")?
        .query_row([], |r| r.get(0))?;
    Ok((count as usize) < limit)
}

/// Keep a watch for `days`; the same contact asking again about the same question replaces
/// its watch rather than adding one.
pub fn add(
    conn: &Connection,
    query: &str,
    (channel, recipient): (&str, &str),
    lang: &str,
    now: Timestamp,
    days: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM ready_watches WHERE query = ?1 AND channel = ?2 AND recipient = ?3",
    )?
    .execute(params![query, channel, recipient])?;
    conn.prepare_cached(
        "INSERT INTO ready_watches (query, channel, recipient, lang, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        query,
        channel,
        recipient,
        lang,
        instant_text(now),
        instant_text(now + SignedDuration::from_hours(24 * days)),
    ])?;
    Ok(())
}

/// Every watch not expired at `now`; the expired ones are deleted.
pub fn live(conn: &Connection, now: Timestamp) -> Result<Vec<Watch>, StoreError> {
    conn.prepare_cached("DELETE FROM ready_watches WHERE expires_at <= ?1")?
        .execute([instant_text(now)])?;
    let mut stmt =
        conn.prepare_cached("SELECT id, query, channel, recipient, lang FROM ready_watches")?;
    let rows = stmt.query_map([], |r| {
        Ok(Watch {
            id: r.get(0)?,
            query: r.get(1)?,
            channel: r.get(2)?,
            recipient: r.get(3)?,
            lang: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The watch was answered: forget it.
pub fn remove(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM ready_watches WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
