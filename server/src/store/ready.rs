//! The ready list (`ready_permits`): permits the national system says are ready, as imported,
//! looked up by the status check and the counter, hashed into the kiosks' index, and marked
//! delivered.

use coper_shared::jiff::{Timestamp, civil::Date};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, instant_text};

/// A permit's fields as imported (dates as stored text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    pub surname: String,
    pub given_names: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: String,
    pub fingerprint_date: String,
    pub receipt_number: Option<String>,
    pub pratica_number: Option<String>,
    pub drawer: String,
}

/// A permit from the columns `surname, given_names, birth_date, fingerprint_date,
/// receipt_number, pratica_number, drawer` starting at `first`.
fn permit_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Permit> {
    Ok(Permit {
        surname: r.get(first)?,
        given_names: r.get(first + 1)?,
        birth_date: r.get(first + 2)?,
        fingerprint_date: r.get(first + 3)?,
        receipt_number: r.get(first + 4)?,
        pratica_number: r.get(first + 5)?,
        drawer: r.get(first + 6)?,
    })
}

/// The stored permit an imported one is: the same receipt, else the same pratica, else the same
/// person and dates. One indexed lookup each (a single query with `OR` scanned the whole list).
pub fn find(conn: &Connection, p: &Permit) -> Result<Option<(i64, Permit)>, StoreError> {
    const COLUMNS: &str = "id, surname, given_names, birth_date, fingerprint_date, receipt_number,
        pratica_number, drawer";
    let read = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, permit_row(r, 1)?));
    let found = match (&p.receipt_number, &p.pratica_number) {
        (Some(receipt), _) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM ready_permits WHERE receipt_number = ?1"
            ))?
            .query_row([receipt], read),
        (None, Some(pratica)) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM ready_permits WHERE pratica_number = ?1"
            ))?
            .query_row([pratica], read),
        (None, None) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM ready_permits WHERE fingerprint_date = ?1 AND surname = ?2
                 AND given_names = ?3 AND birth_date = ?4 ORDER BY id LIMIT 1"
            ))?
            .query_row(
                params![p.fingerprint_date, p.surname, p.given_names, p.birth_date],
                read,
            ),
    };
    Ok(found.optional()?)
}

/// Add a permit to the list; its id.
pub fn insert(conn: &Connection, p: &Permit, now: Timestamp) -> Result<i64, StoreError> {
    put(conn, None, p, now)
}

/// Replace permit `id`'s fields with `p`'s (an import).
pub fn update(conn: &Connection, id: i64, p: &Permit, now: Timestamp) -> Result<(), StoreError> {
    put(conn, Some(id), p, now).map(drop)
}

/// Correct permit `id`'s fields with `p`'s (the administration): its import time stays.
/// `Ok(false)`: another entry has the receipt or pratica number given.
pub fn correct(conn: &Connection, id: i64, p: &Permit, now: Timestamp) -> Result<bool, StoreError> {
    let done = conn
        .prepare_cached(
            "UPDATE ready_permits SET surname = ?2, given_names = ?3, birth_date = ?4,
             fingerprint_date = ?5, receipt_number = ?6, pratica_number = ?7, drawer = ?8,
             corrected_at = ?9
         WHERE id = ?1",
        )?
        .execute(params![
            id,
            p.surname,
            p.given_names,
            p.birth_date,
            p.fingerprint_date,
            p.receipt_number,
            p.pratica_number,
            p.drawer,
            instant_text(now)
        ]);
    match done {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Write `p` as permit `id`, or as a new permit; its id.
fn put(conn: &Connection, id: Option<i64>, p: &Permit, now: Timestamp) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO ready_permits (id, surname, given_names, birth_date, fingerprint_date,
             receipt_number, pratica_number, drawer, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET surname = excluded.surname,
             given_names = excluded.given_names, birth_date = excluded.birth_date,
             fingerprint_date = excluded.fingerprint_date,
             receipt_number = excluded.receipt_number, pratica_number = excluded.pratica_number,
             drawer = excluded.drawer, imported_at = excluded.imported_at, removed_at = NULL
         RETURNING id",
        )?
        .query_row(
            params![
                id,
                p.surname,
                p.given_names,
                p.birth_date,
                p.fingerprint_date,
                p.receipt_number,
                p.pratica_number,
                p.drawer,
                instant_text(now)
            ],
            |r| r.get(0),
        )?)
}

/// Which number a status check gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Receipt,
    Pratica,
}

/// (surname, given names, birth date) of the permits not yet delivered that a status check may
/// be about: those fingerprinted on `fingerprint_date`, or with the number given.
pub fn candidates(
    conn: &Connection,
    fingerprint_date: Option<Date>,
    number: Option<(Number, &str)>,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let (sql, arg) = match (fingerprint_date, number) {
        (_, Some((Number::Receipt, n))) => (
            "SELECT surname, given_names, birth_date FROM ready_permits
             WHERE delivered_at IS NULL AND removed_at IS NULL AND upper(receipt_number) = ?1",
            n.to_owned(),
        ),
        (_, Some((Number::Pratica, n))) => (
            "SELECT surname, given_names, birth_date FROM ready_permits
             WHERE delivered_at IS NULL AND removed_at IS NULL AND upper(pratica_number) = ?1",
            n.to_owned(),
        ),
        (Some(date), None) => (
            "SELECT surname, given_names, birth_date FROM ready_permits
             WHERE delivered_at IS NULL AND removed_at IS NULL AND fingerprint_date = ?1",
            date.to_string(),
        ),
        (None, None) => return Ok(Vec::new()),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt
        .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?)
}

/// A text that changes whenever the list does (an import, a delivery).
pub fn version(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) || ' ' || coalesce(max(imported_at), '') || ' ' ||
                coalesce(max(delivered_at), '') || ' ' || count(delivered_at) || ' ' ||
                coalesce(max(removed_at), '') || ' ' || count(removed_at) || ' ' ||
                coalesce(max(corrected_at), '')
         FROM ready_permits",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Every permit not yet delivered, with its id.
pub fn undelivered(conn: &Connection) -> Result<Vec<(i64, Permit)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, surname, given_names, birth_date, fingerprint_date, receipt_number,
                pratica_number, drawer
         FROM ready_permits WHERE delivered_at IS NULL AND removed_at IS NULL",
    )?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, permit_row(r, 1)?)))?
        .collect::<Result<_, _>>()?)
}

/// The surname and given names the list has for permit `id`, if it still has it.
pub fn names(conn: &Connection, id: i64) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT surname, given_names FROM ready_permits WHERE id = ?1 AND removed_at IS NULL",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Whether the list still has permit `id`.
pub fn exists(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM ready_permits WHERE id = ?1 AND removed_at IS NULL")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Permit `id` has been handed over: it leaves the list of permits to book.
pub fn mark_delivered(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE ready_permits SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL",
    )?
    .execute(params![id, instant_text(now)])?;
    Ok(())
}

/// One entry of the ready list as the administration browses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: i64,
    pub permit: Permit,
    pub delivered: bool,
    /// The booking code of its active booking (booked or checked in), if any.
    pub booked: Option<String>,
}

/// `?1`: today (a past day's booking never marked absent is not active).
const LISTED: &str = "SELECT r.id, r.surname, r.given_names, r.birth_date, r.fingerprint_date,
        r.receipt_number, r.pratica_number, r.drawer, r.delivered_at IS NOT NULL,
        (SELECT a.booking_code FROM appointments a WHERE a.ready_permit_id = r.id
           AND a.status IN ('booked', 'checked_in') AND a.slot_date >= ?1
         ORDER BY a.slot_date, a.slot_time LIMIT 1)
    FROM ready_permits r WHERE r.removed_at IS NULL";

fn listed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Listed> {
    Ok(Listed {
        id: r.get(0)?,
        permit: permit_row(r, 1)?,
        delivered: r.get(8)?,
        booked: r.get(9)?,
    })
}

/// Every entry of the list (not removed), in id order, with its booking of `today` or later,
/// for a search to filter: names are matched without accents or case, which SQLite cannot do.
pub fn all_listed(conn: &Connection, today: Date) -> Result<Vec<Listed>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{LISTED} ORDER BY r.id"))?;
    Ok(stmt
        .query_map([today.to_string()], listed_row)?
        .collect::<Result<_, _>>()?)
}

/// Entry `id`, unless removed, with its booking of `today` or later.
pub fn listed(conn: &Connection, id: i64, today: Date) -> Result<Option<Listed>, StoreError> {
    Ok(conn
        .query_row(
            &format!("{LISTED} AND r.id = ?2"),
            params![today.to_string(), id],
            listed_row,
        )
        .optional()?)
}

/// Remove entry `id` from the list (kept, marked removed: appointments still name it).
pub fn remove(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE ready_permits SET removed_at = ?2 WHERE id = ?1")?
        .execute(params![id, instant_text(now)])?;
    Ok(())
}

/// The delivery of permit `id` was undone at the counter: it is back on the list.
pub fn mark_undelivered(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE ready_permits SET delivered_at = NULL WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// How many ready permits wait for delivery, and when the list was last imported.
pub fn summary(conn: &Connection) -> Result<(i64, Option<String>), StoreError> {
    Ok(conn.prepare_cached("SELECT count(*) FILTER (WHERE delivered_at IS NULL AND removed_at IS NULL), max(imported_at)
         FROM ready_permits")?.query_row([],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// The stretched birth keys kept for `stretch` (its [`coper_shared::ready_index::Stretch::id`]),
/// by birth date as the list writes it.
pub fn birth_keys(
    conn: &Connection,
    stretch: &str,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT birth, key FROM ready_birth_keys WHERE stretch = ?1")?;
    let rows = stmt.query_map([stretch], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Keep stretched birth keys for `stretch`.
pub fn save_birth_keys(
    conn: &Connection,
    stretch: &str,
    keys: &[(String, String)],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO ready_birth_keys (stretch, birth, key) VALUES (?1, ?2, ?3)",
    )?;
    for (birth, key) in keys {
        stmt.execute(params![stretch, birth, key])?;
    }
    Ok(())
}
