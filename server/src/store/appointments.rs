//! Appointments: booking a place in a slot under the schema's capacity guard, finding bookings
//! (a day's list, by ticket, code, name or filter), and moving them along their lifecycle
//! (check-in, delivery, no-show, cancellation, relocation), each step audited.
//!
//! The engine decides which slot to offer; this module writes the appointment and lets the schema
//! (`slot_capacity` and its triggers) refuse a slot that is full or was never opened. Both happen
//! in the caller's transaction, so a booking and the count it changes commit together or not at
//! all. The lifecycle itself is enforced by the schema's trigger; this module only asks for the
//! steps.

/// Where an appointment is in its lifecycle: booked → checked in → delivered; booked → cancelled
/// or no-show (a check-in can be undone; a no-show can still be checked in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Delivered,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [Self; 5] = [
        Self::Booked,
        Self::CheckedIn,
        Self::Delivered,
        Self::Cancelled,
        Self::NoShow,
    ];

    /// The word stored in `appointments.status` (and used in URLs and CSS classes).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked_in",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The Italian word the staff read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Booked => "prenotato",
            Self::CheckedIn => "presente",
            Self::Delivered => "consegnato",
            Self::Cancelled => "annullato",
            Self::NoShow => "assente",
        }
    }
}

impl rusqlite::types::FromSql for AppointmentStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("unknown appointment status {text:?}").into(),
            )
        })
    }
}

impl rusqlite::ToSql for AppointmentStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

use coper_shared::{
    agenda::{Slot, SlotKey},
    booking_code::booking_code,
    ids::ServiceId,
    jiff::{Timestamp, civil::Date},
    rules::hh_mm,
    ticket::{Issuer, Ticket},
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::{
    StoreError,
    audit::audit_from,
    instant_text, parse_date, parse_time,
    verdicts::{self, Restated},
};

/// A booking to write: who, where, and on whose behalf.
#[derive(Debug, Clone)]
pub struct NewAppointment<'a> {
    pub service: &'a ServiceId,
    pub slot: Slot,
    pub surname: &'a str,
    pub given_names: &'a str,
    pub phone: Option<&'a str>,
    pub ready_permit_id: Option<i64>,
    pub partner_body_id: Option<i64>,
    /// The kiosk and the request that asked for it, for bookings that came through sync.
    pub kiosk: Option<(&'a str, &'a str)>,
    pub created_by: &'a str,
}

/// What the store made of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub id: Uuid,
    pub booking_code: String,
}

/// Why a booking was not written.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("the slot is full")]
    SlotFull,
    #[error("the slot is not open")]
    SlotNotOpen,
    #[error("the booking code is already taken")]
    CodeTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Book one place in `new.slot`, inside `tx`. The slot's places are (re)stated from the engine's
/// slot, so a capacity row exists for every slot ever booked.
pub fn book(
    tx: &Transaction<'_>,
    new: &NewAppointment<'_>,
    now: Timestamp,
) -> Result<Booked, BookingError> {
    book_with_code(tx, new, &booking_code(fastrand::u128(..)), now)
}

/// As [`book`], with the booking code the kiosk already printed.
pub fn book_with_code(
    tx: &Transaction<'_>,
    new: &NewAppointment<'_>,
    code: &str,
    now: Timestamp,
) -> Result<Booked, BookingError> {
    let date = new.slot.date.to_string();
    let time = hh_mm(new.slot.start);
    // Places may only shrink down to what is already taken: the CHECK refuses anything else.
    tx.execute(
        "INSERT INTO slot_capacity (service_id, slot_date, slot_time, places) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (service_id, slot_date, slot_time) DO UPDATE SET places = excluded.places",
        params![new.service.as_str(), date, time, new.slot.places],
    )
    .map_err(classify)?;
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO appointments (id, booking_code, service_id, slot_date, slot_time, surname,
             given_names, phone, ready_permit_id, partner_body_id, created_at, created_by,
             kiosk_id, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            id.to_string(),
            code,
            new.service.as_str(),
            date,
            time,
            new.surname,
            new.given_names,
            new.phone,
            new.ready_permit_id,
            new.partner_body_id,
            instant_text(now),
            new.created_by,
            new.kiosk.map(|k| k.0),
            new.kiosk.map(|k| k.1),
        ],
    )
    .map_err(classify)?;
    Ok(Booked {
        id,
        booking_code: code.to_owned(),
    })
}

/// Turn the schema's refusals into the domain's words.
fn classify(err: rusqlite::Error) -> BookingError {
    let text = err.to_string();
    if text.contains("slot_full") {
        BookingError::SlotFull
    } else if text.contains("slot_not_open") {
        BookingError::SlotNotOpen
    } else if text.contains("appointments.booking_code") {
        BookingError::CodeTaken
    } else {
        BookingError::Store(err.into())
    }
}

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
    pub status: AppointmentStatus,
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
    use AppointmentStatus::*;
    let (from, sql, action): (&[AppointmentStatus], &str, &str) = match step {
        Step::CheckIn => (
            &[Booked, NoShow],
            "UPDATE appointments SET status = 'checked_in', checked_in_at = ?2, no_show_at = NULL
             WHERE id = ?1",
            "appointment.checked_in",
        ),
        Step::Deliver => (
            &[CheckedIn],
            "UPDATE appointments SET status = 'delivered', delivered_at = ?2 WHERE id = ?1",
            "appointment.delivered",
        ),
        Step::NoShow => (
            &[Booked],
            "UPDATE appointments SET status = 'no_show', no_show_at = ?2 WHERE id = ?1",
            "appointment.no_show",
        ),
    };
    if !from.contains(&current.status) {
        return Ok(Err(StepError::WrongStatus(current.status.label().into())));
    }
    tx.execute(sql, params![id, at])?;
    if step == Step::Deliver
        && let Some(permit) = current.ready_permit_id
    {
        super::ready::mark_delivered(&tx, permit, now)?;
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

/// Filters of the appointments page and its export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub service: Option<String>,
    pub status: Option<AppointmentStatus>,
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
    pub status: AppointmentStatus,
    pub created_at: String,
    pub cancel_reason: String,
}

/// The appointments matching `filter`, by date and time; at most `limit`.
pub fn search(
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
            filter.status.map(AppointmentStatus::as_str),
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
    let row: Option<(AppointmentStatus, Option<String>, String, String)> = tx
        .query_row(
            "SELECT status, kiosk_id, service_id, slot_date FROM appointments WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((status, kiosk, service, date)) = row else {
        return Ok(Err(CancelError::NotFound));
    };
    if status != AppointmentStatus::Booked {
        return Ok(Err(CancelError::WrongStatus(status.label().into())));
    }
    tx.execute(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2, cancel_reason = ?3 WHERE id = ?1",
        params![id, instant_text(now), reason.trim()],
    )?;
    verdicts::restate(&tx, id, Restated::Cancelled)?;
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
    Ok(Ok((kiosk, service, parse_date(&date)?)))
}

/// A booking still to come that a change of hours may move.
#[derive(Debug, Clone)]
pub struct Movable {
    pub id: String,
    pub booking_code: String,
    pub name: String,
    pub partner: String,
    pub kiosk: Option<String>,
    pub slot: SlotKey,
    /// The order bookings were made in: earlier ones are placed first.
    pub seq: u64,
}

/// The bookings of `service` still only booked on or after `from`, by slot then booking order.
pub fn movable_from(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
) -> Result<Vec<Movable>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT a.id, a.booking_code, a.surname || ' ' || a.given_names, coalesce(p.name, 'Questura'),
                a.kiosk_id, a.slot_date, a.slot_time, a.rowid
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.service_id = ?1 AND a.status = 'booked' AND a.slot_date >= ?2
         ORDER BY a.slot_date, a.slot_time, a.rowid",
    )?;
    let rows = stmt.query_map(params![service.as_str(), from.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, booking_code, name, partner, kiosk, date, time, seq) = row?;
        out.push(Movable {
            id,
            booking_code,
            name,
            partner,
            kiosk,
            slot: SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
            seq: seq as u64,
        });
    }
    Ok(out)
}

/// Move appointment `id` to `to` (the slot's row must hold a place for it), restating the
/// verdict of the kiosk that booked it.
pub fn relocate(conn: &Connection, id: &str, to: SlotKey) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE appointments SET slot_date = ?2, slot_time = ?3 WHERE id = ?1",
        params![id, to.date.to_string(), hh_mm(to.start)],
    )?;
    verdicts::restate(conn, id, Restated::Relocated(to))
}

/// Cancel the booking a kiosk's request made, at that kiosk's request.
pub fn cancel_at_kiosk(conn: &Connection, request: Uuid, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2,
             cancel_reason = 'cancelled at the kiosk'
         WHERE request_id = ?1 AND status = 'booked'",
        params![request.to_string(), instant_text(now)],
    )?;
    Ok(())
}

/// The slot of the booking `kiosk`'s request `request` made, if it is still only booked.
pub fn booked_by_request(
    conn: &Connection,
    kiosk: &str,
    request: Uuid,
) -> Result<Option<(ServiceId, SlotKey)>, StoreError> {
    let row: Option<(String, String, String)> = conn
        .query_row(
            "SELECT service_id, slot_date, slot_time FROM appointments
             WHERE request_id = ?1 AND kiosk_id = ?2 AND status = 'booked'",
            params![request.to_string(), kiosk],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(service, date, time)| {
        Ok((
            ServiceId::parse(&service).map_err(|e| StoreError::InvalidData(e.to_string()))?,
            SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
        ))
    })
    .transpose()
}

/// The slot an appointment is in, as a date and time.
pub fn slot_of(appointment: &CounterAppointment) -> Result<(Date, jiff::civil::Time), StoreError> {
    Ok((appointment.date, parse_time(&appointment.time)?))
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;
    use crate::store::Db;

    fn setup() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call_blocking(|conn| {
            conn.execute(
                "INSERT INTO services (id, name, horizon_days, lead_minutes)
                 VALUES ('consegna-pse', 'Consegna', 30, 0)",
                [],
            )
            .unwrap();
        });
        (dir, db)
    }

    fn slot(places: u16) -> Slot {
        Slot {
            date: date(2026, 12, 1),
            start: time(9, 0, 0, 0),
            end: time(9, 10, 0, 0),
            places,
        }
    }

    /// A booking made at the counter for a synthetic person.
    fn walk_in(service: &ServiceId, slot: Slot) -> NewAppointment<'_> {
        NewAppointment {
            service,
            slot,
            surname: "Rossi",
            given_names: "Ana",
            phone: None,
            ready_permit_id: None,
            partner_body_id: None,
            kiosk: None,
            created_by: "test",
        }
    }

    /// The schema itself refuses a booking beyond a slot's places, whatever the code above it does.
    #[test]
    fn the_schema_refuses_more_bookings_than_places() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        db.call_blocking(|conn| {
            let tx = conn.transaction().unwrap();
            let new = walk_in(&service, slot(2));
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            assert!(matches!(
                book(&tx, &new, Timestamp::UNIX_EPOCH),
                Err(BookingError::SlotFull)
            ));
            // Even raw SQL that bypasses `book` cannot overfill the slot.
            let raw = tx.execute(
                "INSERT INTO appointments (id, booking_code, service_id, slot_date, slot_time,
                     surname, created_at, created_by)
                 VALUES ('x', 'XXXX-XXXX', 'consegna-pse', '2026-12-01', '09:00', 'Bianchi', '', '')",
                [],
            );
            assert!(raw.unwrap_err().to_string().contains("slot_full"));
            tx.commit().unwrap();
            let taken: i64 = conn
                .query_row("SELECT taken FROM slot_capacity", [], |r| r.get(0))
                .unwrap();
            assert_eq!(taken, 2);
        });
    }

    /// Cancelling gives the place back, and the lifecycle is enforced.
    #[test]
    fn cancelling_frees_the_place_and_the_lifecycle_is_enforced() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        db.call_blocking(|conn| {
            let tx = conn.transaction().unwrap();
            let new = walk_in(&service, slot(1));
            let first = book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            tx.execute(
                "UPDATE appointments SET status = 'cancelled', cancelled_at = 'now' WHERE id = ?1",
                [first.id.to_string()],
            )
            .unwrap();
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            let back = tx.execute(
                "UPDATE appointments SET status = 'booked', cancelled_at = NULL WHERE id = ?1",
                [first.id.to_string()],
            );
            assert!(
                back.unwrap_err()
                    .to_string()
                    .contains("invalid_status_transition")
            );
            let delivered_directly = tx.execute(
                "UPDATE appointments SET status = 'delivered' WHERE status = 'booked'",
                [],
            );
            assert!(
                delivered_directly
                    .unwrap_err()
                    .to_string()
                    .contains("invalid_status_transition")
            );
        });
    }
}
