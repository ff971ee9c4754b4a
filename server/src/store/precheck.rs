//! The document pre-check's tables (`precheck_files`, `precheck_items`, `precheck_messages`,
//! `precheck_uploads`): a conversation per application between pre-check staff and the person,
//! the documents asked for and where each stands, and what the person sent (the files
//! themselves live in the data folder, `crate::precheck` writes and deletes them).

use coper_shared::{
    jiff::Timestamp,
    precheck::{ItemState, PrecheckSummary, ToBring},
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, audit_from, instant_text};

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: i64,
    pub pratica: String,
    pub surname: String,
    pub given_names: String,
    pub birth_date: String,
    pub ready_permit_id: Option<i64>,
    pub appointment_id: Option<String>,
    pub lang: String,
    pub token: String,
    /// `open`, `complete` or `closed`.
    pub state: String,
    /// `us` or `person`: whose turn it is.
    pub waiting: String,
    pub updated_at: String,
    /// The checklist it was opened from.
    pub kind_id: Option<i64>,
}

const FILE: &str = "SELECT id, pratica, surname, given_names, birth_date, ready_permit_id,
        appointment_id, lang, token, state, waiting, updated_at, kind_id FROM precheck_files";

fn file_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<File> {
    Ok(File {
        id: r.get(0)?,
        pratica: r.get(1)?,
        surname: r.get(2)?,
        given_names: r.get(3)?,
        birth_date: r.get(4)?,
        ready_permit_id: r.get(5)?,
        appointment_id: r.get(6)?,
        lang: r.get(7)?,
        token: r.get(8)?,
        state: r.get(9)?,
        waiting: r.get(10)?,
        updated_at: r.get(11)?,
        kind_id: r.get(12)?,
    })
}

/// What staff type to open a conversation.
#[derive(Debug, Clone, Default)]
pub struct NewFile {
    pub pratica: String,
    pub surname: String,
    pub given_names: String,
    /// `YYYY-MM-DD`, or empty.
    pub birth_date: String,
    pub ready_permit_id: Option<i64>,
    pub appointment_id: Option<String>,
    pub lang: String,
    pub kind_id: Option<i64>,
}

/// Open a conversation with `token`, asking for `documents`. Audited. Its id.
pub fn open(
    conn: &Connection,
    new: &NewFile,
    token: &str,
    documents: &[&str],
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO precheck_files (pratica, surname, given_names, birth_date, ready_permit_id,
             appointment_id, lang, token, created_at, created_by, updated_at, kind_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11)",
    )?
    .execute(params![
        new.pratica,
        new.surname,
        new.given_names,
        new.birth_date,
        new.ready_permit_id,
        new.appointment_id,
        new.lang,
        token,
        instant_text(now),
        actor,
        new.kind_id
    ])?;
    let id = conn.last_insert_rowid();
    request(conn, id, documents, now)?;
    audit_from(
        conn,
        now,
        actor,
        "precheck.opened",
        &id.to_string(),
        &serde_json::json!({ "documents": documents }),
        source,
    )?;
    Ok(id)
}

/// Ask for more documents (those already asked for stay as they are).
pub fn request(
    conn: &Connection,
    id: i64,
    documents: &[&str],
    now: Timestamp,
) -> Result<(), StoreError> {
    for document in documents {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO precheck_items (file_id, document, updated_at)
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, document, instant_text(now)])?;
    }
    touch(conn, id, "person", now)
}

/// Whose turn it is now, and when the conversation last moved.
fn touch(conn: &Connection, id: i64, waiting: &str, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE precheck_files SET waiting = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, waiting, instant_text(now)])?;
    Ok(())
}

/// The conversations in `state` (`open` also narrowed by whose turn: `us`, `person`; and by the
/// day of the person's booking, `YYYY-MM-DD`), the latest moved first.
pub fn inbox(
    conn: &Connection,
    state: &str,
    waiting: Option<&str>,
    booked_on: Option<&str>,
    limit: usize,
) -> Result<Vec<File>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{FILE} WHERE state = ?1 AND (?2 IS NULL OR waiting = ?2)
           AND (?3 IS NULL OR appointment_id IN
                    (SELECT id FROM appointments WHERE slot_date = ?3)
                OR ready_permit_id IN
                    (SELECT ready_permit_id FROM appointments
                     WHERE slot_date = ?3 AND status IN ('booked', 'checked_in')))
         ORDER BY updated_at DESC, id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![state, waiting, booked_on, limit as i64], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn file(conn: &Connection, id: i64) -> Result<Option<File>, StoreError> {
    Ok(conn
        .query_row(&format!("{FILE} WHERE id = ?1"), [id], file_row)
        .optional()?)
}

/// The conversation behind a person's link, unless it was closed.
pub fn by_token(conn: &Connection, token: &str) -> Result<Option<File>, StoreError> {
    Ok(conn
        .query_row(
            &format!("{FILE} WHERE token = ?1 AND state <> 'closed'"),
            [token],
            file_row,
        )
        .optional()?)
}

/// A new link for the person: the old one stops working at once. Audited.
pub fn new_token(
    conn: &Connection,
    id: i64,
    token: &str,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE precheck_files SET token = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, token, instant_text(now)])?;
    audit_from(
        conn,
        now,
        actor,
        "precheck.link_renewed",
        &id.to_string(),
        &serde_json::json!({}),
        source,
    )?;
    Ok(())
}

/// Mark the conversation `complete` or `closed` (or `open` again). Audited.
pub fn set_state(
    conn: &Connection,
    id: i64,
    state: &str,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE precheck_files SET state = ?2, updated_at = ?3,
             closed_at = CASE WHEN ?2 = 'closed' THEN ?3 END
         WHERE id = ?1",
    )?
    .execute(params![id, state, instant_text(now)])?;
    audit_from(
        conn,
        now,
        actor,
        "precheck.state",
        &id.to_string(),
        &serde_json::json!({ "state": state }),
        source,
    )?;
    Ok(())
}

/// A document asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub document: String,
    pub state: ItemState,
    pub reason: Option<String>,
}

pub fn items(conn: &Connection, id: i64) -> Result<Vec<Item>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT document, state, reason FROM precheck_items WHERE file_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (document, state, reason) = row?;
        out.push(Item {
            document,
            state: ItemState::from_key(&state).unwrap_or(ItemState::Requested),
            reason,
        });
    }
    Ok(out)
}

/// Staff mark a document. Audited. Whether the document was asked for.
pub fn mark(
    conn: &Connection,
    id: i64,
    document: &str,
    state: ItemState,
    reason: Option<&str>,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE precheck_items SET state = ?3, reason = ?4, updated_at = ?5
         WHERE file_id = ?1 AND document = ?2",
        )?
        .execute(params![
            id,
            document,
            state.key(),
            reason,
            instant_text(now)
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    touch(conn, id, "person", now)?;
    audit_from(
        conn,
        now,
        actor,
        "precheck.marked",
        &id.to_string(),
        &serde_json::json!({ "document": document, "state": state.key(), "reason": reason }),
        source,
    )?;
    Ok(true)
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `staff` or `person`.
    pub author: String,
    pub phrase: Option<String>,
    pub document: Option<String>,
    pub body: String,
    pub at: String,
}

pub fn messages(conn: &Connection, id: i64) -> Result<Vec<Message>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT author, phrase, document, body, at FROM precheck_messages WHERE file_id = ?1
         ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Message {
            author: r.get(0)?,
            phrase: r.get(1)?,
            document: r.get(2)?,
            body: r.get(3)?,
            at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Add a message; the turn passes to the other side.
pub fn say(
    conn: &Connection,
    id: i64,
    message: &Message,
    now: Timestamp,
    by: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO precheck_messages (file_id, author, phrase, document, body, at, by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        message.author,
        message.phrase,
        message.document,
        message.body,
        instant_text(now),
        by
    ])?;
    let waiting = if message.author == "person" {
        "us"
    } else {
        "person"
    };
    touch(conn, id, waiting, now)
}

/// A file the person sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: i64,
    pub file_id: i64,
    pub document: Option<String>,
    /// `image` or `pdf`.
    pub kind: String,
    /// Its name in the data folder's `precheck/`.
    pub stored_as: String,
    pub bytes: i64,
    pub at: String,
}

const UPLOAD: &str =
    "SELECT id, file_id, document, kind, stored_as, bytes, at FROM precheck_uploads";

fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: r.get(0)?,
        file_id: r.get(1)?,
        document: r.get(2)?,
        kind: r.get(3)?,
        stored_as: r.get(4)?,
        bytes: r.get(5)?,
        at: r.get(6)?,
    })
}

pub fn uploads(conn: &Connection, id: i64) -> Result<Vec<Upload>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{UPLOAD} WHERE file_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([id], upload_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn upload(conn: &Connection, upload: i64) -> Result<Option<Upload>, StoreError> {
    Ok(conn
        .query_row(&format!("{UPLOAD} WHERE id = ?1"), [upload], upload_row)
        .optional()?)
}

/// Record a file the person sent (already written to the folder): the document it is for is
/// now to be looked at, and it is the Questura's turn.
pub fn add_upload(
    conn: &Connection,
    id: i64,
    document: Option<&str>,
    kind: &str,
    stored_as: &str,
    bytes: usize,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO precheck_uploads (file_id, document, kind, stored_as, bytes, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        id,
        document,
        kind,
        stored_as,
        bytes as i64,
        instant_text(now)
    ])?;
    if let Some(document) = document {
        conn.prepare_cached(
            "UPDATE precheck_items SET state = 'received', reason = NULL, updated_at = ?3
             WHERE file_id = ?1 AND document = ?2 AND state IN ('requested', 'invalid')",
        )?
        .execute(params![id, document, instant_text(now)])?;
    }
    touch(conn, id, "us", now)
}

/// How many files the conversation holds.
pub fn upload_count(conn: &Connection, id: i64) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM precheck_uploads WHERE file_id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(n as usize)
}

/// The pre-check of a booking's person as the counter and kiosks read it: the latest
/// conversation about its appointment or its ready permit, if one is not closed.
pub fn outstanding_for(
    conn: &Connection,
    appointment: &str,
    permit: Option<i64>,
    added: &Added,
) -> Result<Option<PrecheckSummary>, StoreError> {
    let found = conn
        .query_row(
            &format!(
                "{FILE} WHERE state <> 'closed'
                   AND (appointment_id = ?1 OR (?2 IS NOT NULL AND ready_permit_id = ?2))
                 ORDER BY id DESC LIMIT 1"
            ),
            params![appointment, permit],
            file_row,
        )
        .optional()?;
    found
        .map(|file| summary_of(conn, file.id, file.state == "complete", added))
        .transpose()
}

/// The names of the documents the administration added, by code.
pub type Added = std::collections::BTreeMap<String, coper_shared::precheck::Translations>;

/// Conversation `id`'s documents not valid yet, with the names of those the administration added.
fn summary_of(
    conn: &Connection,
    id: i64,
    complete: bool,
    added: &Added,
) -> Result<PrecheckSummary, StoreError> {
    let to_bring: Vec<ToBring> = items(conn, id)?
        .into_iter()
        .filter(|i| i.state.outstanding())
        .map(|i| ToBring {
            document: i.document,
            state: i.state.key().to_owned(),
        })
        .collect();
    let added = to_bring
        .iter()
        .filter_map(|t| Some((t.document.clone(), added.get(&t.document)?.clone())))
        .collect();
    Ok(PrecheckSummary {
        complete,
        to_bring,
        added,
    })
}

/// The staff's audit of a file looked at (every view of a person's document is recorded).
pub fn viewed(
    conn: &Connection,
    upload: &Upload,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<(), StoreError> {
    audit_from(
        conn,
        now,
        actor,
        "precheck.upload_viewed",
        &upload.file_id.to_string(),
        &serde_json::json!({ "upload": upload.id }),
        source,
    )?;
    Ok(())
}

/// The ready permit and the active booking of a person, by pratica number, else by surname and
/// birth date (exact, as the list has them): what a new conversation is linked to.
pub fn person_of(
    conn: &Connection,
    pratica: &str,
    surname: &str,
    birth_date: &str,
) -> Result<(Option<i64>, Option<String>), StoreError> {
    let permit: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM ready_permits
             WHERE (?1 <> '' AND pratica_number = ?1)
                OR (?1 = '' AND coper_fold(surname) = coper_fold(?2) AND birth_date = ?3)
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![pratica, surname, birth_date], |r| r.get(0))
        .optional()?;
    let appointment = match permit {
        Some(permit) => conn
            .prepare_cached(
                "SELECT id FROM appointments WHERE ready_permit_id = ?1
                   AND status IN ('booked', 'checked_in')
                 ORDER BY slot_date, slot_time LIMIT 1",
            )?
            .query_row([permit], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok((permit, appointment))
}

/// The files to delete: those of conversations closed before `before`, or whose booking ended
/// (delivered, cancelled, no-show) before it. Their rows go in the same call; the caller deletes
/// the files named (a row never outlives its file: the rows first, then the files, and a file
/// left by a crash in between is one no row names, which `orphans` finds).
pub fn expire_uploads(conn: &Connection, before: Timestamp) -> Result<Vec<String>, StoreError> {
    let cut = instant_text(before);
    let mut stmt = conn.prepare_cached(
        "SELECT u.stored_as FROM precheck_uploads u
         JOIN precheck_files f ON f.id = u.file_id
         LEFT JOIN appointments a ON a.id = f.appointment_id
         WHERE (f.state = 'closed' AND f.closed_at < ?1)
            OR (a.status = 'delivered' AND a.delivered_at < ?1)
            -- The permit delivered, whichever booking the conversation was opened with.
            OR EXISTS (SELECT 1 FROM appointments d WHERE d.ready_permit_id = f.ready_permit_id
                       AND d.status = 'delivered' AND d.delivered_at < ?1)
            OR (a.status = 'cancelled' AND a.cancelled_at < ?1)
            OR (a.status = 'no_show' AND a.no_show_at < ?1)",
    )?;
    let names: Vec<String> = stmt
        .query_map([&cut], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in &names {
        conn.prepare_cached("DELETE FROM precheck_uploads WHERE stored_as = ?1")?
            .execute([name])?;
    }
    Ok(names)
}

/// Whether some row names the stored file `name`.
pub fn is_recorded(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM precheck_uploads WHERE stored_as = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Each ready permit's pre-check as kiosks hold it (the latest conversation not closed): whether
/// it is complete, and the documents not valid yet with the names of those the administration
/// added.
pub fn summaries(
    conn: &Connection,
    added: &Added,
) -> Result<Vec<(i64, PrecheckSummary)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, f.ready_permit_id, f.state = 'complete' FROM precheck_files f
         WHERE f.state <> 'closed'
           AND f.ready_permit_id IN (SELECT id FROM ready_permits WHERE delivered_at IS NULL)
           AND f.id = (SELECT max(g.id) FROM precheck_files g
                       WHERE g.ready_permit_id = f.ready_permit_id AND g.state <> 'closed')",
    )?;
    let rows: Vec<(i64, i64, bool)> = stmt
        .query_map([], |r| <(i64, i64, bool)>::try_from(r))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, permit, complete)| Ok((permit, summary_of(conn, id, complete, added)?)))
        .collect()
}

/// The booking a conversation is about: the person's active booking, found through the ready
/// permit (a booking made after the conversation opened counts, and so does a move), else the
/// one it was opened with, whatever became of it.
pub fn booking_of(conn: &Connection, id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(
                 (SELECT a.id FROM appointments a WHERE a.ready_permit_id = f.ready_permit_id
                    AND a.status IN ('booked', 'checked_in') ORDER BY a.slot_date, a.slot_time
                    LIMIT 1),
                 f.appointment_id)
             FROM precheck_files f WHERE f.id = ?1",
        )?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// When the person was last told of news (or will be, by a message waiting).
pub fn told_at(conn: &Connection, id: i64) -> Result<Option<Timestamp>, StoreError> {
    let told: Option<Option<String>> = conn
        .prepare_cached("SELECT told_at FROM precheck_files WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(told.flatten().and_then(|t| t.parse().ok()))
}

/// When the person was (or will be) told of the latest news.
pub fn set_told(conn: &Connection, id: i64, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE precheck_files SET told_at = ?2 WHERE id = ?1")?
        .execute(params![id, instant_text(at)])?;
    Ok(())
}

/// Conversations opened before the ready list had the person: linked to the permit an import
/// brought (by pratica number, else surname and birth date), so the kiosks and the counter see
/// them. How many were linked.
pub fn link_new_permits(conn: &Connection) -> Result<usize, StoreError> {
    // Two indexed lookups per conversation not linked yet (an `OR` of both would scan the list).
    let by_pratica = conn
        .prepare_cached(
            "UPDATE precheck_files SET ready_permit_id =
             (SELECT r.id FROM ready_permits r WHERE r.pratica_number = precheck_files.pratica)
         WHERE ready_permit_id IS NULL AND state <> 'closed' AND pratica <> ''
           AND EXISTS (SELECT 1 FROM ready_permits r
                       WHERE r.pratica_number = precheck_files.pratica)",
        )?
        .execute([])?;
    let by_name = conn
        .prepare_cached(
            "UPDATE precheck_files SET ready_permit_id = (
             SELECT r.id FROM ready_permits r
             WHERE r.birth_date = precheck_files.birth_date
               AND coper_fold(r.surname) = coper_fold(precheck_files.surname)
             ORDER BY r.id DESC LIMIT 1)
         WHERE ready_permit_id IS NULL AND state <> 'closed' AND birth_date <> ''",
        )?
        .execute([])?;
    Ok(by_pratica + by_name)
}

/// The person's link (token) of each active booking with a conversation not closed, by
/// appointment id: the conversation names the booking, or the ready permit the booking is for.
pub fn tokens_by_appointment(
    conn: &Connection,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, f.token FROM precheck_files f
         JOIN appointments a ON a.id = f.appointment_id
              OR (f.ready_permit_id IS NOT NULL AND a.ready_permit_id = f.ready_permit_id)
         WHERE f.state <> 'closed' AND a.status IN ('booked', 'checked_in')
         ORDER BY f.id",
    )?;
    let rows = stmt.query_map([], |r| <(String, String)>::try_from(r))?;
    // The latest conversation wins: rows come oldest first.
    Ok(rows.collect::<Result<_, _>>()?)
}
