//! What the administration keeps for the document pre-check (`precheck_documents`,
//! `precheck_kinds`, `precheck_answers`): the documents it adds beside the shipped catalogue,
//! the checklists per service and kind of permit, and the short answers on times and procedures
//! (the public site shows them; staff send them as replies, which the person reads in their
//! language). Documents and answers are retired, never deleted: a conversation that named one
//! keeps reading it.

use std::collections::BTreeMap;

use coper_shared::{
    jiff::Timestamp,
    precheck::{Translations, added_code, document_name, text, translated},
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, audit_from, instant_text, precheck::Message};

/// A document the administration added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedDocument {
    pub code: String,
    pub names: Translations,
    pub retired: bool,
}

/// A checklist: the documents asked for a kind of permit at a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub id: i64,
    /// A service id.
    pub service: String,
    pub name: String,
    pub documents: Vec<String>,
}

/// An answer on times and procedures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub id: i64,
    /// A service id, or empty for every service.
    pub service: String,
    pub question: Translations,
    pub answer: Translations,
    pub retired: bool,
}

fn json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Every document the administration added, retired ones too (conversations may name them).
pub fn added_documents(conn: &Connection) -> Result<Vec<AddedDocument>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, names, retired_at IS NOT NULL FROM precheck_documents")?;
    let rows = stmt.query_map([], |r| Row::try_from(r))?;
    type Row = (i64, String, bool);
    Ok(rows
        .map(|row| {
            row.map(|(id, names, retired)| AddedDocument {
                code: added_code(id),
                names: json(&names),
                retired,
            })
        })
        .collect::<Result<_, _>>()?)
}

/// The names of every document the administration added, by code (retired ones too: a
/// conversation may still name one).
pub fn added_names(conn: &Connection) -> Result<super::precheck::Added, StoreError> {
    Ok(added_documents(conn)?
        .into_iter()
        .map(|d| (d.code, d.names))
        .collect())
}

/// Add a document (its names per language, Italian required by the caller). Audited. Its code.
pub fn add_document(
    conn: &Connection,
    names: &Translations,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<String, StoreError> {
    conn.prepare_cached("INSERT INTO precheck_documents (names, created_at) VALUES (?1, ?2)")?
        .execute(params![to_json(names), instant_text(now)])?;
    let code = added_code(conn.last_insert_rowid());
    audit_from(
        conn,
        now,
        actor,
        "precheck.document_added",
        &code,
        &serde_json::json!({ "it": names.get("it") }),
        source,
    )?;
    Ok(code)
}

/// Retire a document: no longer offered, kept by the conversations and checklists that name it
/// until staff settle it. Audited. How many conversations not closed still ask for it.
pub fn retire_document(
    conn: &Connection,
    code: &str,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<Option<usize>, StoreError> {
    let Some(id) = code.strip_prefix('x').and_then(|n| n.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let changed = conn
        .prepare_cached(
            "UPDATE precheck_documents SET retired_at = coalesce(retired_at, ?2) WHERE id = ?1",
        )?
        .execute(params![id, instant_text(now)])?;
    if changed == 0 {
        return Ok(None);
    }
    audit_from(
        conn,
        now,
        actor,
        "precheck.document_retired",
        code,
        &serde_json::json!({}),
        source,
    )?;
    let in_use: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM precheck_items i JOIN precheck_files f ON f.id = i.file_id
         WHERE i.document = ?1 AND f.state <> 'closed'",
        )?
        .query_row([code], |r| r.get(0))?;
    Ok(Some(in_use as usize))
}

/// The checklists, by service and name.
pub fn kinds(conn: &Connection) -> Result<Vec<Kind>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, service, name, documents FROM precheck_kinds ORDER BY service, name",
    )?;
    let rows = stmt.query_map([], |r| Row::try_from(r))?;
    type Row = (i64, String, String, String);
    Ok(rows
        .map(|row| {
            row.map(|(id, service, name, documents)| Kind {
                id,
                service,
                name,
                documents: json(&documents),
            })
        })
        .collect::<Result<_, _>>()?)
}

pub fn kind(conn: &Connection, id: i64) -> Result<Option<Kind>, StoreError> {
    Ok(kinds(conn)?.into_iter().find(|k| k.id == id))
}

/// Save a checklist (a new one when `id` is `None`). Audited. `None` when another checklist of
/// the service already has the name.
pub fn save_kind(
    conn: &Connection,
    id: Option<i64>,
    service: &str,
    name: &str,
    documents: &[String],
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<Option<i64>, StoreError> {
    let taken: Option<i64> = conn
        .prepare_cached("SELECT id FROM precheck_kinds WHERE service = ?1 AND name = ?2")?
        .query_row(params![service, name], |r| r.get(0))
        .optional()?;
    if taken.is_some_and(|t| Some(t) != id) {
        return Ok(None);
    }
    let id = match id {
        Some(id) => {
            conn.prepare_cached(
                "UPDATE precheck_kinds SET service = ?2, name = ?3, documents = ?4 WHERE id = ?1",
            )?
            .execute(params![id, service, name, to_json(&documents)])?;
            id
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO precheck_kinds (service, name, documents) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![service, name, to_json(&documents)])?;
            conn.last_insert_rowid()
        }
    };
    audit_from(
        conn,
        now,
        actor,
        "precheck.checklist_saved",
        &id.to_string(),
        &serde_json::json!({ "service": service, "name": name, "documents": documents }),
        source,
    )?;
    Ok(Some(id))
}

/// Delete a checklist: conversations opened from it keep their documents. Audited.
pub fn delete_kind(
    conn: &Connection,
    id: i64,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM precheck_kinds WHERE id = ?1")?
        .execute([id])?
        > 0;
    if deleted {
        audit_from(
            conn,
            now,
            actor,
            "precheck.checklist_deleted",
            &id.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(deleted)
}

/// The answers (retired ones only when `with_retired`), by service and in the order added.
pub fn answers(conn: &Connection, with_retired: bool) -> Result<Vec<Answer>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, service, question, answer, retired_at IS NOT NULL FROM precheck_answers
         WHERE ?1 OR retired_at IS NULL ORDER BY service, id",
    )?;
    let rows = stmt.query_map([with_retired], |r| Row::try_from(r))?;
    type Row = (i64, String, String, String, bool);
    Ok(rows
        .map(|row| {
            row.map(|(id, service, question, answer, retired)| Answer {
                id,
                service,
                question: json(&question),
                answer: json(&answer),
                retired,
            })
        })
        .collect::<Result<_, _>>()?)
}

/// Add an answer. Audited. Its id.
pub fn add_answer(
    conn: &Connection,
    service: &str,
    question: &Translations,
    answer: &Translations,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO precheck_answers (service, question, answer, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        service,
        to_json(question),
        to_json(answer),
        instant_text(now)
    ])?;
    let id = conn.last_insert_rowid();
    audit_from(
        conn,
        now,
        actor,
        "precheck.answer_added",
        &id.to_string(),
        &serde_json::json!({ "service": service }),
        source,
    )?;
    Ok(id)
}

/// Retire an answer: off the public site and the staff's replies, still read where it was sent.
pub fn retire_answer(
    conn: &Connection,
    id: i64,
    now: Timestamp,
    (actor, source): (&str, &str),
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE precheck_answers SET retired_at = coalesce(retired_at, ?2) WHERE id = ?1",
        )?
        .execute(params![id, instant_text(now)])?
        > 0;
    if changed {
        audit_from(
            conn,
            now,
            actor,
            "precheck.answer_retired",
            &id.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(changed)
}

/// The administration's texts a conversation may name, to show it in any language.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    pub added: BTreeMap<String, Translations>,
    /// The codes of the added documents the administration retired (no longer offered).
    pub retired: Vec<String>,
    pub answers: BTreeMap<i64, Answer>,
}

/// The phrase of a message that sends answer `id`.
pub fn answer_phrase(id: i64) -> String {
    format!("answer:{id}")
}

impl Texts {
    pub fn load(conn: &Connection) -> Result<Self, StoreError> {
        let documents = added_documents(conn)?;
        Ok(Self {
            retired: documents
                .iter()
                .filter(|d| d.retired)
                .map(|d| d.code.clone())
                .collect(),
            added: documents.into_iter().map(|d| (d.code, d.names)).collect(),
            answers: answers(conn, true)?
                .into_iter()
                .map(|a| (a.id, a))
                .collect(),
        })
    }

    /// Document `code`'s name in `lang`.
    pub fn document(&self, code: &str, lang: &str) -> String {
        document_name(code, lang, &self.added)
    }

    /// A message in `lang`: a phrase or an answer translated (with the document it is about),
    /// free text as written.
    pub fn message(&self, m: &Message, lang: &str) -> String {
        let mut out = String::new();
        if let Some(d) = &m.document {
            out.push_str(&self.document(d, lang));
            out.push_str(": ");
        }
        if let Some(p) = &m.phrase {
            match p
                .strip_prefix("answer:")
                .and_then(|id| id.parse().ok())
                .and_then(|id| self.answers.get(&id))
            {
                Some(a) => {
                    out.push_str(translated(&a.question, lang).0);
                    out.push('\n');
                    out.push_str(translated(&a.answer, lang).0);
                }
                None => out.push_str(text(lang, &format!("phrases.{p}"))),
            }
            if !m.body.is_empty() {
                out.push('\n');
            }
        }
        out.push_str(&m.body);
        out
    }
}
