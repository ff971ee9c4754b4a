//! Finding appointments: a day's list, by ticket, code or id, by name, and by the
//! administration's filters.

use coper_shared::{
    jiff::{Timestamp, civil::Date},
    ticket::{Issuer, Ticket},
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::AppointmentStatus;
use crate::store::{StoreError, parse_date, parse_time};

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
    pub no_show_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    pub ready_permit_id: Option<i64>,
    pub drawer: Option<String>,
}

const SELECT: &str = "SELECT a.id, a.booking_code, a.service_id, s.name, a.slot_date, a.slot_time,
        a.surname, a.given_names, a.status, p.name, a.checked_in_at, a.delivered_at,
        a.cancel_reason, a.ready_permit_id, r.drawer, a.no_show_at
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
        no_show_at: instant(15)?,
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

/// A page of the appointments found by name, and how many were found in all.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub total: usize,
    pub page: Vec<CounterAppointment>,
}

/// Appointments searched by name look at no more than this many candidates.
const SEARCH_CANDIDATES: usize = 5_000;

/// Find today's (or any day's) appointments whose surname or names contain every word typed,
/// whatever the accents and case ("ben said" finds "Ben Saïd"); the newest days first, `limit`
/// from `offset`, with the total.
pub fn search_by_name(
    conn: &Connection,
    date: Option<Date>,
    typed: &str,
    offset: usize,
    limit: usize,
) -> Result<Found, StoreError> {
    let words: Vec<String> = coper_shared::names::words(typed)
        .into_iter()
        .take(4)
        .collect();
    if words.is_empty() {
        return Ok(Found::default());
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
           AND instr(coper_fold(a.surname || ' ' || a.given_names), ?2) > 0
         ORDER BY a.slot_date DESC, a.slot_time, a.surname LIMIT {SEARCH_CANDIDATES}"
    ))?;
    let found: Vec<CounterAppointment> = stmt
        .query_map(params![date.map(|d| d.to_string()), longest], read)?
        .filter(|a| {
            a.as_ref().map_or(true, |a| {
                crate::store::name_contains_all(&format!("{} {}", a.surname, a.given_names), &words)
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Found {
        total: found.len(),
        page: found.into_iter().skip(offset).take(limit).collect(),
    })
}

/// Whose bookings [`held_by`] counts.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Kiosk(&'a str),
    Partner(i64),
}

/// Places `holder` holds on each slot date from `from` to `to`: every booking not cancelled
/// (delivered and missed ones took their place too). Quotas are counted from this.
pub fn held_by(
    conn: &Connection,
    holder: Holder<'_>,
    from: Date,
    to: Date,
) -> Result<std::collections::BTreeMap<Date, u32>, StoreError> {
    let (column, key): (&str, rusqlite::types::Value) = match holder {
        Holder::Kiosk(id) => ("kiosk_id", id.to_owned().into()),
        Holder::Partner(id) => ("partner_body_id", id.into()),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT slot_date, count(*) FROM appointments
         WHERE {column} = ?1 AND slot_date BETWEEN ?2 AND ?3 AND status <> 'cancelled'
         GROUP BY slot_date"
    ))?;
    let rows = stmt.query_map(params![key, from.to_string(), to.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
    })?;
    let mut held = std::collections::BTreeMap::new();
    for row in rows {
        let (date, n) = row?;
        held.insert(parse_date(&date)?, n);
    }
    Ok(held)
}

/// Filters of the appointments page and its export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub service: Option<String>,
    pub status: Option<AppointmentStatus>,
    pub partner: Option<i64>,
    /// The kiosk that made the booking (its id).
    pub kiosk: Option<String>,
    /// Words of a name, or a booking code.
    pub text: String,
}

impl AppointmentFilter {
    /// The same search narrowed to bookings still to come (from `today`) and only booked: what a
    /// bulk cancellation takes.
    pub fn still_to_come(&self, today: Date) -> Self {
        Self {
            status: Some(AppointmentStatus::Booked),
            from: Some(self.from.map_or(today, |from| from.max(today))),
            ..self.clone()
        }
    }
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
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.booking_code, a.slot_date, a.slot_time, s.name, a.surname, a.given_names,
                coalesce(a.phone, ''), coalesce(p.name, 'Questura'), a.status, a.created_at,
                coalesce(a.cancel_reason, '')
         FROM appointments a JOIN services s ON s.id = a.service_id
         LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE (?1 IS NULL OR a.slot_date >= ?1) AND (?2 IS NULL OR a.slot_date <= ?2)
           AND (?3 IS NULL OR a.service_id = ?3) AND (?4 IS NULL OR a.status = ?4)
           AND (?5 IS NULL OR a.partner_body_id = ?5) AND (?6 IS NULL OR a.booking_code = ?6)
           AND (?7 IS NULL OR a.kiosk_id = ?7)
         ORDER BY a.slot_date, a.slot_time, a.surname COLLATE NOCASE",
    )?;
    let rows = stmt.query_map(
        params![
            filter.from.map(|d| d.to_string()),
            filter.to.map(|d| d.to_string()),
            filter.service,
            filter.status.map(AppointmentStatus::as_str),
            filter.partner,
            code,
            filter.kiosk,
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

/// The slot an appointment is in, as a date and time.
pub fn slot_of(appointment: &CounterAppointment) -> Result<(Date, jiff::civil::Time), StoreError> {
    Ok((appointment.date, parse_time(&appointment.time)?))
}

/// The bookings of partner body `partner` from `today` on, in every state, by slot, with the
/// missed appointments of the last [`MISSED_LISTED_DAYS`](coper_shared::documents) (the body's
/// list of people to call back) — but not a missed one whose person has been booked again.
pub fn of_partner_from(
    conn: &Connection,
    partner: i64,
    today: Date,
) -> Result<Vec<coper_shared::documents::PartnerBooking>, StoreError> {
    use coper_shared::documents::{AppointmentState, PartnerBooking};
    let mut stmt = conn.prepare_cached(
        "SELECT id, request_id, kiosk_id, booking_code, service_id, slot_date, slot_time, surname,
                given_names, phone, status, moved_from_date, moved_from_time,
                CASE WHEN status = 'cancelled' THEN cancel_reason ELSE moved_reason END,
                max(created_at, coalesce(checked_in_at, ''), coalesce(delivered_at, ''),
                    coalesce(no_show_at, ''), coalesce(cancelled_at, ''), coalesce(moved_at, '')),
                CASE status
                    WHEN 'cancelled' THEN cancel_reason NOT IN (?3, ?4)
                    WHEN 'no_show' THEN 1
                    WHEN 'booked' THEN moved_at IS NOT NULL
                    ELSE 0 END,
                status = 'cancelled' AND cancel_reason = ?4,
                email, notice_lang
         FROM appointments a WHERE partner_body_id = ?1
           AND slot_date >= CASE status WHEN 'no_show' THEN ?5 ELSE ?2 END
           AND NOT (status = 'no_show' AND EXISTS (
               SELECT 1 FROM appointments again
               WHERE again.ready_permit_id = a.ready_permit_id
                 AND again.status IN ('booked', 'checked_in', 'delivered')
                 AND again.created_at >= a.no_show_at))
         ORDER BY slot_date, slot_time, rowid",
    )?;
    let missed_since = today
        .checked_sub(jiff::Span::new().days(coper_shared::documents::MISSED_LISTED_DAYS))
        .unwrap_or(today);
    let rows = stmt.query_map(
        params![
            partner,
            today.to_string(),
            super::CANCELLED_AT_KIOSK,
            super::REPLACED_BY_MOVE,
            missed_since.to_string()
        ],
        |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ),
                (
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, AppointmentStatus>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, String>(14)?,
                    r.get::<_, bool>(15)?,
                    r.get::<_, bool>(16)?,
                    r.get::<_, Option<String>>(17)?,
                    r.get::<_, Option<String>>(18)?,
                ),
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (
            (id, request, kiosk, booking_code, service, date, time),
            (
                surname,
                given_names,
                phone,
                status,
                from_date,
                from_time,
                reason,
                changed,
                by_questura,
                replaced,
                email,
                lang,
            ),
        ) = row?;
        let (Ok(appointment), Ok(service)) =
            (id.parse(), coper_shared::ids::ServiceId::parse(&service))
        else {
            continue;
        };
        let moved_from = match (from_date, from_time) {
            (Some(d), Some(t)) => Some((parse_date(&d)?, parse_time(&t)?)),
            _ => None,
        };
        out.push(PartnerBooking {
            appointment,
            request: request.and_then(|r| r.parse().ok()),
            made_at: kiosk
                .and_then(|k| k.parse().ok())
                .map(coper_shared::documents::KioskId),
            booking_code,
            service,
            date: parse_date(&date)?,
            time: parse_time(&time)?,
            surname,
            given_names,
            phone,
            state: match status {
                AppointmentStatus::Booked => AppointmentState::Booked,
                AppointmentStatus::CheckedIn => AppointmentState::CheckedIn,
                AppointmentStatus::Delivered => AppointmentState::Delivered,
                AppointmentStatus::Cancelled => AppointmentState::Cancelled,
                AppointmentStatus::NoShow => AppointmentState::NoShow,
            },
            moved_from,
            reason,
            changed_at_ms: changed
                .parse::<Timestamp>()
                .map(|t| t.as_millisecond())
                .unwrap_or(0),
            changed_by_questura: by_questura,
            replaced,
            email,
            lang,
            precheck_link: None,
        });
    }
    Ok(out)
}

/// A booking still to come that the Questura moved, as the list of moves for the partner bodies
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedBooking {
    pub partner_id: Option<i64>,
    pub partner: String,
    pub booking_code: String,
    pub surname: String,
    pub given_names: String,
    pub phone: Option<String>,
    pub from: (Date, String),
    pub to: (Date, String),
    pub reason: Option<String>,
    pub moved_at: String,
}

/// The bookings from `today` on that the Questura moved, still only booked, by partner body then
/// new slot; one body's with `partner`.
pub fn moved_from(
    conn: &Connection,
    today: Date,
    partner: Option<i64>,
) -> Result<Vec<MovedBooking>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.partner_body_id, coalesce(p.name, 'Questura'), a.booking_code, a.surname,
                a.given_names, a.phone, a.moved_from_date, a.moved_from_time, a.slot_date,
                a.slot_time, a.moved_reason, a.moved_at
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.moved_at IS NOT NULL AND a.status = 'booked' AND a.slot_date >= ?1
           AND (?2 IS NULL OR a.partner_body_id = ?2)
         ORDER BY coalesce(p.name, ''), a.slot_date, a.slot_time",
    )?;
    let rows = stmt.query_map(params![today.to_string(), partner], |r| {
        Ok((
            (
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ),
            (
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, String>(11)?,
            ),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            (partner_id, partner, booking_code, surname, given_names, phone),
            (from_date, from_time, to_date, to_time, reason, moved_at),
        ) = row?;
        out.push(MovedBooking {
            partner_id,
            partner,
            booking_code,
            surname,
            given_names,
            phone,
            from: (parse_date(&from_date)?, from_time),
            to: (parse_date(&to_date)?, to_time),
            reason,
            moved_at,
        });
    }
    Ok(out)
}

/// A missed appointment whose person has not been booked again, as the worklist shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedBooking {
    pub partner: String,
    pub booking_code: String,
    pub surname: String,
    pub given_names: String,
    pub date: Date,
    pub time: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub lang: Option<String>,
    /// The "missed" message went out to the person.
    pub told: bool,
}

/// The missed appointments from `since` on whose person has not been booked again since (one
/// partner body's, or all), by body then day: who to call back.
pub fn missed_since(
    conn: &Connection,
    since: Date,
    partner: Option<i64>,
) -> Result<Vec<MissedBooking>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(p.name, 'Questura'), a.booking_code, a.surname, a.given_names,
                a.slot_date, a.slot_time, a.phone, a.email, a.notice_lang,
                EXISTS (SELECT 1 FROM notices n WHERE n.appointment_id = a.id
                        AND n.kind = 'missed' AND n.sent_at IS NOT NULL)
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.status = 'no_show' AND a.slot_date >= ?1
           AND (?2 IS NULL OR a.partner_body_id = ?2)
           AND NOT EXISTS (
               SELECT 1 FROM appointments again
               WHERE again.ready_permit_id = a.ready_permit_id
                 AND again.status IN ('booked', 'checked_in', 'delivered')
                 AND again.created_at >= a.no_show_at)
         ORDER BY coalesce(p.name, ''), a.slot_date, a.slot_time",
    )?;
    type Fields = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
    );
    let rows = stmt.query_map(params![since.to_string(), partner], |r| Fields::try_from(r))?;
    let mut out = Vec::new();
    for row in rows {
        let (partner, booking_code, surname, given_names, date, time, phone, email, lang, told) =
            row?;
        out.push(MissedBooking {
            partner,
            booking_code,
            surname,
            given_names,
            date: parse_date(&date)?,
            time,
            phone,
            email,
            lang,
            told,
        });
    }
    Ok(out)
}
