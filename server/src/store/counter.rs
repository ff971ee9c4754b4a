//! The counter's view of appointments: a day's list, finding one booking (by ticket, code or
//! name), and moving it along its lifecycle (check-in, delivery, no-show), each step audited.
//!
//! The lifecycle itself is enforced by the schema's trigger; this module only asks for the steps.

use coper_shared::{
    jiff::{Timestamp, civil::Date},
    ticket::{Issuer, Ticket},
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, agenda::parse_date, agenda::parse_time, audit_from, instant_text};

/// One appointment as the counter shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CounterAppointment {
    pub id: String,
    pub booking_code: String,
    pub service_id: String,
    pub service_name: String,
    pub date: Date,
    /// `HH:MM`, the Questura's local time.
    pub time: String,
    pub surname: String,
    pub given_names: String,
    pub status: String,
    pub partner_name: Option<String>,
    pub checked_in_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    pub ready_permit_id: Option<i64>,
    pub drawer: Option<String>,
}

const SELECT: &str = "SELECT a.id, a.booking_code, a.service_id, s.name, a.slot_date, a.slot_time,
        a.surname, a.given_names, a.status, p.name, a.checked_in_at, a.delivered_at,
        a.cancel_reason, a.ready_permit_id, r.drawer
    FROM appointments a
    JOIN services s ON s.id = a.service_id
    LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
    LEFT JOIN ready_permits r ON r.id = a.ready_permit_id";

fn read(row: &Row<'_>) -> rusqlite::Result<CounterAppointment> {
    let instant = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row
            .get::<_, Option<String>>(i)?
            .and_then(|t| t.parse::<Timestamp>().ok()))
    };
    let date: String = row.get(4)?;
    Ok(CounterAppointment {
        id: row.get(0)?,
        booking_code: row.get(1)?,
        service_id: row.get(2)?,
        service_name: row.get(3)?,
        date: parse_date(&date).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
        })?,
        time: row.get(5)?,
        surname: row.get(6)?,
        given_names: row.get(7)?,
        status: row.get(8)?,
        partner_name: row.get(9)?,
        checked_in_at: instant(10)?,
        delivered_at: instant(11)?,
        cancel_reason: row.get(12)?,
        ready_permit_id: row.get(13)?,
        drawer: row.get(14)?,
    })
}

/// The appointments of `date` (all services, or one), by time, then service, then surname;
/// cancelled ones too, so the counter can answer "it was cancelled".
pub fn day(
    conn: &Connection,
    date: Date,
    service: Option<&str>,
) -> Result<Vec<CounterAppointment>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE a.slot_date = ?1 AND (?2 IS NULL OR a.service_id = ?2)
         ORDER BY a.slot_time, s.sort_order, a.service_id, a.surname COLLATE NOCASE, a.given_names"
    ))?;
    let rows = stmt
        .query_map(params![date.to_string(), service], read)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The appointment a verified ticket names, if any.
pub fn by_ticket(
    conn: &Connection,
    ticket: &Ticket,
) -> Result<Option<CounterAppointment>, StoreError> {
    let booking = ticket.booking.to_string();
    let found = match ticket.issuer {
        Issuer::Kiosk(kiosk) => conn
            .query_row(
                &format!("{SELECT} WHERE a.kiosk_id = ?1 AND a.request_id = ?2"),
                params![kiosk.to_string(), booking],
                read,
            )
            .optional()?,
        Issuer::Server => conn
            .query_row(
                &format!("{SELECT} WHERE a.kiosk_id IS NULL AND a.id = ?1"),
                [booking],
                read,
            )
            .optional()?,
    };
    Ok(found)
}

/// The appointment with this booking code (already normalised), if any.
pub fn by_code(conn: &Connection, code: &str) -> Result<Option<CounterAppointment>, StoreError> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE a.booking_code = ?1"), [code], read)
        .optional()?)
}

/// One appointment by id.
pub fn by_id(conn: &Connection, id: &str) -> Result<Option<CounterAppointment>, StoreError> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE a.id = ?1"), [id], read)
        .optional()?)
}

/// The public key of an enrolled kiosk, and whether it has been revoked.
pub fn kiosk_key(conn: &Connection, kiosk: &str) -> Result<Option<([u8; 32], bool)>, StoreError> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = conn
        .query_row(
            "SELECT public_key, revoked_at FROM kiosks WHERE id = ?1",
            [kiosk],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(key, revoked)| {
        let key: [u8; 32] = key?.try_into().ok()?;
        Some((key, revoked.is_some()))
    }))
}

/// The server's own signing key, made on first use.
pub fn server_key(conn: &Connection, now: Timestamp) -> Result<[u8; 32], StoreError> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT secret_key FROM server_identity WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(key) = existing {
        return key
            .try_into()
            .map_err(|_| StoreError::InvalidData("server key".into()));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS has randomness");
    conn.execute(
        "INSERT INTO server_identity (id, secret_key, created_at) VALUES (1, ?1, ?2)",
        params![key.to_vec(), instant_text(now)],
    )?;
    Ok(key)
}

/// The check-in window: minutes before and after a slot's start.
pub fn checkin_window(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn
        .query_row(
            "SELECT checkin_early_minutes, checkin_late_minutes FROM settings WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((60, 90)))
}

/// A step of the counter's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CheckIn,
    Deliver,
    NoShow,
}

/// Why a step was not taken. Italian: the clerk reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("prenotazione non trovata")]
    NotFound,
    #[error("operazione non possibile per una prenotazione in stato «{0}»")]
    WrongStatus(String),
}

/// Take `step` on appointment `id`, audited as `actor` from `source`. Delivering also marks the
/// ready permit delivered, so it leaves the list of permits to book.
pub fn take_step(
    conn: &mut Connection,
    id: &str,
    step: Step,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<CounterAppointment, StepError>, StoreError> {
    let tx = conn.transaction()?;
    let Some(current) = by_id(&tx, id)? else {
        return Ok(Err(StepError::NotFound));
    };
    let at = instant_text(now);
    let (from, sql, action): (&[&str], &str, &str) = match step {
        Step::CheckIn => (
            &["booked", "no_show"],
            "UPDATE appointments SET status = 'checked_in', checked_in_at = ?2, no_show_at = NULL
             WHERE id = ?1",
            "appointment.checked_in",
        ),
        Step::Deliver => (
            &["checked_in"],
            "UPDATE appointments SET status = 'delivered', delivered_at = ?2 WHERE id = ?1",
            "appointment.delivered",
        ),
        Step::NoShow => (
            &["booked"],
            "UPDATE appointments SET status = 'no_show', no_show_at = ?2 WHERE id = ?1",
            "appointment.no_show",
        ),
    };
    if !from.contains(&current.status.as_str()) {
        return Ok(Err(StepError::WrongStatus(
            status_label(&current.status).into(),
        )));
    }
    tx.execute(sql, params![id, at])?;
    if step == Step::Deliver
        && let Some(permit) = current.ready_permit_id
    {
        tx.execute(
            "UPDATE ready_permits SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL",
            params![permit, at],
        )?;
    }
    audit_from(
        &tx,
        now,
        actor,
        action,
        id,
        &serde_json::json!({ "booking_code": current.booking_code }),
        source,
    )?;
    let updated = by_id(&tx, id)?.ok_or(StoreError::InvalidData("appointment vanished".into()))?;
    tx.commit()?;
    Ok(Ok(updated))
}

/// Mark as no-show every appointment of `date` still only booked whose slot has started before
/// `cut_off` (`HH:MM`); returns how many.
pub fn mark_no_shows(
    conn: &mut Connection,
    date: Date,
    cut_off: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<usize, StoreError> {
    let tx = conn.transaction()?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM appointments WHERE slot_date = ?1 AND slot_time < ?2 AND status = 'booked'",
        )?;
        stmt.query_map(params![date.to_string(), cut_off], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in &ids {
        tx.execute(
            "UPDATE appointments SET status = 'no_show', no_show_at = ?2 WHERE id = ?1",
            params![id, instant_text(now)],
        )?;
        audit_from(
            &tx,
            now,
            actor,
            "appointment.no_show",
            id,
            &serde_json::json!({}),
            source,
        )?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// Find today's (or any day's) appointments whose surname or names contain every word typed.
pub fn search_by_name(
    conn: &Connection,
    date: Option<Date>,
    typed: &str,
) -> Result<Vec<CounterAppointment>, StoreError> {
    let words: Vec<String> = typed
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .take(4)
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    // The longest word narrows the search in SQL; the others are checked below. Newest days
    // first, so a person who comes on the wrong day is found among the recent bookings.
    let longest = words
        .iter()
        .max_by_key(|w| w.len())
        .cloned()
        .unwrap_or_default();
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR a.slot_date = ?1)
           AND instr(lower(a.surname || ' ' || a.given_names), ?2) > 0
         ORDER BY a.slot_date DESC, a.slot_time LIMIT 200"
    ))?;
    let rows: Vec<CounterAppointment> = stmt
        .query_map(params![date.map(|d| d.to_string()), longest], read)?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter(|a| {
            let haystack = format!("{} {}", a.surname, a.given_names).to_lowercase();
            words.iter().all(|w| haystack.contains(w.as_str()))
        })
        .take(20)
        .collect())
}

/// The Italian word for a status, as the counter shows it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "booked" => "prenotato",
        "checked_in" => "presente",
        "delivered" => "consegnato",
        "cancelled" => "annullato",
        "no_show" => "assente",
        _ => "sconosciuto",
    }
}

/// The slot an appointment is in, as a date and time.
pub fn slot_of(appointment: &CounterAppointment) -> Result<(Date, jiff::civil::Time), StoreError> {
    Ok((appointment.date, parse_time(&appointment.time)?))
}
