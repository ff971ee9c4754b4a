//! The audit log (`audit_log`): append-only, by triggers that refuse UPDATE and DELETE. Details
//! carry identifiers, never people's names.

use coper_shared::jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, instant_text};

/// Append one line to the audit log, saying where the action came from (the browser's address
/// for staff pages, empty otherwise). `detail` must carry identifiers, never names of people.
pub fn audit_from(
    conn: &Connection,
    at: jiff::Timestamp,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
    source: &str,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, subject, detail, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        instant_text(at),
        actor,
        action,
        subject,
        detail.to_string(),
        source,
    ))?;
    Ok(())
}

/// Whether `actor` has done `action` from `source` before (e.g. logged in from this computer).
pub fn has(conn: &Connection, actor: &str, action: &str, source: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM audit_log WHERE actor = ?1 AND action = ?2 AND source = ?3 LIMIT 1",
        )?
        .query_row(params![actor, action, source], |_| Ok(()))
        .optional()?
        .is_some())
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub actor_name: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub source: String,
}

/// Filters of the audit page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: String,
    pub action: String,
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Lines older than this id (the next page).
    pub before: Option<i64>,
}

/// The newest lines matching `filter`, at most `limit`.
pub fn audit_lines(
    conn: &Connection,
    filter: &AuditFilter,
    limit: usize,
) -> Result<Vec<AuditLine>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT l.id, l.at, l.actor, coalesce(u.username, k.label, ''), l.action, l.subject, l.detail, l.source
         FROM audit_log l
         LEFT JOIN users u ON l.actor = 'user:' || u.id
         LEFT JOIN kiosks k ON l.actor = 'kiosk:' || k.id
         WHERE (?1 = '' OR l.actor LIKE '%' || ?1 || '%' OR u.username LIKE '%' || ?1 || '%')
           AND (?2 = '' OR l.action LIKE ?2 || '%')
           AND (?3 IS NULL OR l.at >= ?3) AND (?4 IS NULL OR l.at < ?4)
           AND (?5 IS NULL OR l.id < ?5)
         ORDER BY l.id DESC LIMIT ?6")?;
    let next_day = filter
        .to
        .and_then(|d| d.tomorrow().ok())
        .map(|d| d.to_string());
    Ok(stmt
        .query_map(
            params![
                filter.actor.trim(),
                filter.action.trim(),
                filter.from.map(|d| d.to_string()),
                next_day,
                filter.before,
                limit as i64
            ],
            |r| {
                Ok(AuditLine {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    actor_name: r.get(3)?,
                    action: r.get(4)?,
                    subject: r.get(5)?,
                    detail: r.get(6)?,
                    source: r.get(7)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?)
}
