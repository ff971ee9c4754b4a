//! What the administration pages read and write: the Questura's settings, partner bodies with
//! their operators and kiosks, the search and cancellation of appointments, and the audit log.
//! Every change is audited by the caller's actor and source.

use coper_shared::jiff::{Timestamp, civil::Date};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, audit_from, instant_text};

/// The Questura's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub questura_name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub patron: Option<(i8, i8, String)>,
    pub checkin_early_minutes: i64,
    pub checkin_late_minutes: i64,
}

pub fn settings(conn: &Connection) -> Result<Option<Settings>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT questura_name, address, phone, email, patron_month, patron_day, patron_name,
                    checkin_early_minutes, checkin_late_minutes FROM settings WHERE id = 1",
            [],
            |r| {
                let month: Option<i8> = r.get(4)?;
                let day: Option<i8> = r.get(5)?;
                let name: Option<String> = r.get(6)?;
                Ok(Settings {
                    questura_name: r.get(0)?,
                    address: r.get(1)?,
                    phone: r.get(2)?,
                    email: r.get(3)?,
                    patron: month
                        .zip(day)
                        .map(|(m, d)| (m, d, name.unwrap_or_default())),
                    checkin_early_minutes: r.get(7)?,
                    checkin_late_minutes: r.get(8)?,
                })
            },
        )
        .optional()?)
}

/// Create or replace the settings (the first save sets a fresh install up).
pub fn save_settings(
    conn: &Connection,
    s: &Settings,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<(), StoreError> {
    let (month, day, patron) = match &s.patron {
        Some((m, d, n)) => (Some(*m), Some(*d), Some(n.clone())),
        None => (None, None, None),
    };
    conn.execute(
        "INSERT INTO settings (id, questura_name, address, phone, email, patron_month, patron_day,
             patron_name, checkin_early_minutes, checkin_late_minutes)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET questura_name = ?1, address = ?2, phone = ?3, email = ?4,
             patron_month = ?5, patron_day = ?6, patron_name = ?7, checkin_early_minutes = ?8,
             checkin_late_minutes = ?9",
        params![
            s.questura_name,
            s.address,
            s.phone,
            s.email,
            month,
            day,
            patron,
            s.checkin_early_minutes,
            s.checkin_late_minutes
        ],
    )?;
    audit_from(
        conn,
        now,
        actor,
        "settings.saved",
        "",
        &serde_json::json!({}),
        source,
    )?;
    Ok(())
}

/// A partner body with everything the administration edits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub phone: String,
    pub email: String,
    pub opening_hours: String,
    pub active: bool,
    pub lease_places_per_day: i64,
}

fn partner_row(r: &Row<'_>) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        city: r.get(3)?,
        phone: r.get(4)?,
        email: r.get(5)?,
        opening_hours: r.get(6)?,
        active: r.get(7)?,
        lease_places_per_day: r.get(8)?,
    })
}

const PARTNER_COLUMNS: &str =
    "id, name, address, city, phone, email, opening_hours, active, lease_places_per_day";

pub fn partners(conn: &Connection) -> Result<Vec<Partner>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {PARTNER_COLUMNS} FROM partner_bodies ORDER BY active DESC, city, name"
    ))?;
    Ok(stmt.query_map([], partner_row)?.collect::<Result<_, _>>()?)
}

pub fn partner(conn: &Connection, id: i64) -> Result<Option<Partner>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {PARTNER_COLUMNS} FROM partner_bodies WHERE id = ?1"),
            [id],
            partner_row,
        )
        .optional()?)
}

/// Why a partner body cannot be saved. Italian: the administrator reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    #[error("il nome è obbligatorio")]
    MissingName,
    #[error("l'indirizzo e la città sono obbligatori")]
    MissingAddress,
    #[error("esiste già un ente con questo nome")]
    DuplicateName,
    #[error("i posti riservati al giorno vanno da 0 a 50")]
    BadLeasePlaces,
}

/// Create (`p.id == 0`) or update a partner body; its id.
pub fn save_partner(
    conn: &Connection,
    p: &Partner,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<i64, PartnerError>, StoreError> {
    if p.name.trim().is_empty() {
        return Ok(Err(PartnerError::MissingName));
    }
    if p.address.trim().is_empty() || p.city.trim().is_empty() {
        return Ok(Err(PartnerError::MissingAddress));
    }
    if !(0..=50).contains(&p.lease_places_per_day) {
        return Ok(Err(PartnerError::BadLeasePlaces));
    }
    let duplicate: Option<i64> = conn
        .query_row(
            "SELECT id FROM partner_bodies WHERE name = ?1 AND id <> ?2",
            params![p.name.trim(), p.id],
            |r| r.get(0),
        )
        .optional()?;
    if duplicate.is_some() {
        return Ok(Err(PartnerError::DuplicateName));
    }
    let fields = params![
        p.name.trim(),
        p.address.trim(),
        p.city.trim(),
        p.phone.trim(),
        p.email.trim(),
        p.opening_hours.trim(),
        p.active,
        p.lease_places_per_day,
    ];
    let id = if p.id == 0 {
        conn.execute(
            "INSERT INTO partner_bodies (name, address, city, phone, email, opening_hours, active,
                 lease_places_per_day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            fields,
        )?;
        conn.last_insert_rowid()
    } else {
        let mut with_id = fields.to_vec();
        with_id.push(&p.id);
        conn.execute(
            "UPDATE partner_bodies SET name = ?1, address = ?2, city = ?3, phone = ?4, email = ?5,
                 opening_hours = ?6, active = ?7, lease_places_per_day = ?8 WHERE id = ?9",
            with_id.as_slice(),
        )?;
        p.id
    };
    audit_from(
        conn,
        now,
        actor,
        if p.id == 0 {
            "partner.created"
        } else {
            "partner.updated"
        },
        &id.to_string(),
        &serde_json::json!({ "active": p.active }),
        source,
    )?;
    Ok(Ok(id))
}

/// A kiosk as the administration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kiosk {
    pub id: String,
    pub label: String,
    pub enrolled_at: Option<String>,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub fn kiosks_of(conn: &Connection, partner: i64) -> Result<Vec<Kiosk>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, label, enrolled_at, last_seen_at, revoked_at FROM kiosks
         WHERE partner_body_id = ?1 AND public_key IS NOT NULL ORDER BY revoked_at IS NOT NULL, label",
    )?;
    Ok(stmt
        .query_map([partner], |r| {
            Ok(Kiosk {
                id: r.get(0)?,
                label: r.get(1)?,
                enrolled_at: r.get(2)?,
                last_seen_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// An account as the administration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub locked: bool,
}

/// The operators of `partner`, or the Questura's staff when `partner` is `None`.
pub fn accounts(
    conn: &Connection,
    partner: Option<i64>,
    now: Timestamp,
) -> Result<Vec<Account>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, username, display_name, role, active, locked_until FROM users
         WHERE (?1 IS NULL AND partner_body_id IS NULL) OR partner_body_id = ?1
         ORDER BY username",
    )?;
    let now = instant_text(now);
    Ok(stmt
        .query_map([partner], |r| {
            let locked: Option<String> = r.get(5)?;
            Ok(Account {
                id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
                role: r.get(3)?,
                active: r.get(4)?,
                locked: locked.is_some_and(|l| l > now),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Set a new password (and unlock the account); the caller checks its length.
pub fn reset_password(
    conn: &Connection,
    user: i64,
    password: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
        params![user, crate::accounts::hash_password(password)],
    )?;
    if changed > 0 {
        conn.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user])?;
        audit_from(
            conn,
            now,
            actor,
            "user.password_reset",
            &user.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(changed > 0)
}

/// Activate or deactivate an account; deactivating ends its sessions.
pub fn set_active(
    conn: &Connection,
    user: i64,
    active: bool,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE users SET active = ?2 WHERE id = ?1",
        params![user, active],
    )?;
    if changed > 0 && !active {
        conn.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user])?;
    }
    if changed > 0 {
        audit_from(
            conn,
            now,
            actor,
            if active {
                "user.activated"
            } else {
                "user.deactivated"
            },
            &user.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(changed > 0)
}

/// Filters of the appointments page and its export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub service: Option<String>,
    pub status: Option<String>,
    pub partner: Option<i64>,
    /// Words of a name, or a booking code.
    pub text: String,
}

/// One appointment as listed and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRow {
    pub id: String,
    pub booking_code: String,
    pub date: String,
    pub time: String,
    pub service: String,
    pub surname: String,
    pub given_names: String,
    pub phone: String,
    pub partner: String,
    pub status: String,
    pub created_at: String,
    pub cancel_reason: String,
}

/// The appointments matching `filter`, by date and time; at most `limit`.
pub fn appointments(
    conn: &Connection,
    filter: &AppointmentFilter,
    limit: usize,
) -> Result<Vec<AppointmentRow>, StoreError> {
    let code = coper_shared::booking_code::normalise(&filter.text);
    let words: Vec<String> = if code.is_some() {
        Vec::new()
    } else {
        filter
            .text
            .split_whitespace()
            .map(str::to_lowercase)
            .collect()
    };
    let mut stmt = conn.prepare(
        "SELECT a.id, a.booking_code, a.slot_date, a.slot_time, s.name, a.surname, a.given_names,
                coalesce(a.phone, ''), coalesce(p.name, 'Questura'), a.status, a.created_at,
                coalesce(a.cancel_reason, '')
         FROM appointments a JOIN services s ON s.id = a.service_id
         LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE (?1 IS NULL OR a.slot_date >= ?1) AND (?2 IS NULL OR a.slot_date <= ?2)
           AND (?3 IS NULL OR a.service_id = ?3) AND (?4 IS NULL OR a.status = ?4)
           AND (?5 IS NULL OR a.partner_body_id = ?5) AND (?6 IS NULL OR a.booking_code = ?6)
         ORDER BY a.slot_date, a.slot_time, a.surname COLLATE NOCASE",
    )?;
    let rows = stmt.query_map(
        params![
            filter.from.map(|d| d.to_string()),
            filter.to.map(|d| d.to_string()),
            filter.service,
            filter.status,
            filter.partner,
            code
        ],
        |r| {
            Ok(AppointmentRow {
                id: r.get(0)?,
                booking_code: r.get(1)?,
                date: r.get(2)?,
                time: r.get(3)?,
                service: r.get(4)?,
                surname: r.get(5)?,
                given_names: r.get(6)?,
                phone: r.get(7)?,
                partner: r.get(8)?,
                status: r.get(9)?,
                created_at: r.get(10)?,
                cancel_reason: r.get(11)?,
            })
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        let haystack = coper_shared::names::words(&format!("{} {}", row.surname, row.given_names));
        let plain: Vec<String> = words
            .iter()
            .flat_map(|w| coper_shared::names::words(w))
            .collect();
        if plain
            .iter()
            .all(|w| haystack.iter().any(|h| h.starts_with(w.as_str())))
        {
            out.push(row);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Why an appointment cannot be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("prenotazione non trovata")]
    NotFound,
    #[error("si può annullare solo una prenotazione non ancora utilizzata (stato: {0})")]
    WrongStatus(String),
    #[error("indicare il motivo dell'annullamento")]
    MissingReason,
}

/// What a cancellation touched: the kiosk that booked it (if any), its service and date.
pub type Cancelled = (Option<String>, String, Date);

/// Cancel an appointment with a reason; a kiosk's booking has its verdict rewritten so the kiosk
/// shows it cancelled. Returns the kiosk and the agenda month touched.
pub fn cancel(
    conn: &mut Connection,
    id: &str,
    reason: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<Cancelled, CancelError>, StoreError> {
    if reason.trim().is_empty() {
        return Ok(Err(CancelError::MissingReason));
    }
    let tx = conn.transaction()?;
    let row: Option<(String, Option<String>, String, String)> = tx
        .query_row(
            "SELECT status, kiosk_id, service_id, slot_date FROM appointments WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((status, kiosk, service, date)) = row else {
        return Ok(Err(CancelError::NotFound));
    };
    if status != "booked" {
        return Ok(Err(CancelError::WrongStatus(
            super::counter::status_label(&status).into(),
        )));
    }
    tx.execute(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2, cancel_reason = ?3 WHERE id = ?1",
        params![id, instant_text(now), reason.trim()],
    )?;
    tx.execute(
        "UPDATE sync_verdicts SET outcome = 'cancelled' WHERE appointment_id = ?1",
        [id],
    )?;
    audit_from(
        &tx,
        now,
        actor,
        "appointment.cancelled",
        id,
        &serde_json::json!({ "by": "questura" }),
        source,
    )?;
    tx.commit()?;
    Ok(Ok((kiosk, service, super::agenda::parse_date(&date)?)))
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
    let mut stmt = conn.prepare(
        "SELECT l.id, l.at, l.actor, coalesce(u.username, k.label, ''), l.action, l.subject, l.detail, l.source
         FROM audit_log l
         LEFT JOIN users u ON l.actor = 'user:' || u.id
         LEFT JOIN kiosks k ON l.actor = 'kiosk:' || k.id
         WHERE (?1 = '' OR l.actor LIKE '%' || ?1 || '%' OR u.username LIKE '%' || ?1 || '%')
           AND (?2 = '' OR l.action LIKE ?2 || '%')
           AND (?3 IS NULL OR l.at >= ?3) AND (?4 IS NULL OR l.at < ?4)
           AND (?5 IS NULL OR l.id < ?5)
         ORDER BY l.id DESC LIMIT ?6",
    )?;
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

/// How many ready permits wait for delivery, and when the list was last imported.
pub fn ready_summary(conn: &Connection) -> Result<(i64, Option<String>), StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FILTER (WHERE delivered_at IS NULL), max(imported_at) FROM ready_permits",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
