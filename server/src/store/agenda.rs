//! The agenda as stored: the Questura's settings, services with their rules, and the places taken
//! per slot. Reads rows into the engine's types (`coper_shared`), which check them once more.

use coper_shared::{
    agenda::{SlotKey, TakenPlaces},
    holidays::{HolidayCalendar, PatronSaint},
    ids::ServiceId,
    rules::{
        DateException, ExceptionKind, OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule,
        hh_mm,
    },
};
use jiff::{
    civil::{Date, Time, Weekday},
    tz::TimeZone,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;

/// The Questura: who it is and the calendar it lives by.
#[derive(Debug, Clone)]
pub struct Questura {
    pub name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub time_zone: TimeZone,
    pub holidays: HolidayCalendar,
}

/// A service as listed to the public: what it is, plus its checked rules.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    pub description: String,
    pub what_to_bring: String,
    pub rules: ServiceRules,
}

/// The Questura's settings, or `None` on a database nobody has set up yet.
pub fn questura(conn: &Connection) -> Result<Option<Questura>, StoreError> {
    let row = conn
        .query_row(
            "SELECT questura_name, address, phone, email, time_zone,
                    patron_month, patron_day, patron_name
             FROM settings WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i8>>(5)?,
                    r.get::<_, Option<i8>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((name, address, phone, email, zone, month, day, patron_name)) = row else {
        return Ok(None);
    };
    let time_zone = TimeZone::get(&zone)
        .map_err(|e| StoreError::InvalidData(format!("time zone {zone:?}: {e}")))?;
    let patron = match (month, day) {
        (Some(month), Some(day)) => Some(PatronSaint {
            month,
            day,
            name: patron_name.unwrap_or_else(|| "Santo patrono".into()),
        }),
        _ => None,
    };
    Ok(Some(Questura {
        name,
        address,
        phone,
        email,
        time_zone,
        holidays: HolidayCalendar::new(patron),
    }))
}

/// Active services in display order.
pub fn services(conn: &Connection) -> Result<Vec<Service>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id FROM services WHERE active = 1 ORDER BY sort_order, id")?;
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.iter()
        .map(|id| {
            service(conn, id)?
                .ok_or_else(|| StoreError::InvalidData(format!("service {id} vanished")))
        })
        .collect()
}

/// One active service by id, or `None` if there is no such active service.
pub fn service(conn: &Connection, id: &str) -> Result<Option<Service>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, name, description, what_to_bring, horizon_days, lead_minutes
             FROM services WHERE id = ?1 AND active = 1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u16>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((id, name, description, what_to_bring, horizon_days, lead_minutes)) = row else {
        return Ok(None);
    };
    let service_id = ServiceId::parse(&id).map_err(|e| StoreError::InvalidData(e.to_string()))?;
    let draft = ServiceRulesDraft {
        service: service_id.clone(),
        weekly: weekly_rules(conn, &id)?,
        exceptions: exceptions(conn, &id)?,
        horizon_days,
        lead_minutes,
    };
    let rules = ServiceRules::new(draft)
        .map_err(|e| StoreError::InvalidData(format!("rules of service {id}: {e}")))?;
    Ok(Some(Service {
        id: service_id,
        name,
        description,
        what_to_bring,
        rules,
    }))
}

fn weekly_rules(conn: &Connection, service: &str) -> Result<Vec<WeeklyRule>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT weekday, start_time, end_time, slot_minutes, places
         FROM service_weekly_rules WHERE service_id = ?1 ORDER BY weekday, start_time",
    )?;
    let rows = stmt.query_map([service], |r| {
        Ok((
            r.get::<_, i8>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u16>(3)?,
            r.get::<_, u16>(4)?,
        ))
    })?;
    let mut rules = Vec::new();
    for row in rows {
        let (weekday, start, end, slot_minutes, places) = row?;
        let weekday = Weekday::from_monday_one_offset(weekday)
            .map_err(|_| StoreError::InvalidData(format!("weekday {weekday}")))?;
        rules.push(WeeklyRule {
            weekday,
            range: opening_range(&start, &end, slot_minutes, places)?,
        });
    }
    Ok(rules)
}

fn exceptions(conn: &Connection, service: &str) -> Result<Vec<DateException>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, on_date, kind, note FROM service_exceptions
         WHERE service_id = ?1 ORDER BY on_date",
    )?;
    let rows: Vec<(i64, String, String, String)> = stmt
        .query_map([service], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut ranges_stmt = conn.prepare(
        "SELECT start_time, end_time, slot_minutes, places FROM service_exception_ranges
         WHERE exception_id = ?1 ORDER BY start_time",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, on_date, kind, note) in rows {
        let kind = match kind.as_str() {
            "closed" => ExceptionKind::Closed { note },
            _ => {
                let ranges = ranges_stmt
                    .query_map([id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get(2)?,
                            r.get(3)?,
                        ))
                    })?
                    .map(|row| {
                        let (start, end, slot, places) = row?;
                        opening_range(&start, &end, slot, places)
                    })
                    .collect::<Result<_, StoreError>>()?;
                ExceptionKind::Open { ranges }
            }
        };
        out.push(DateException {
            date: parse_date(&on_date)?,
            kind,
        });
    }
    Ok(out)
}

fn opening_range(
    start: &str,
    end: &str,
    slot_minutes: u16,
    places: u16,
) -> Result<OpeningRange, StoreError> {
    Ok(OpeningRange {
        start: parse_time(start)?,
        end: parse_time(end)?,
        slot_minutes,
        places,
    })
}

pub fn parse_date(text: &str) -> Result<Date, StoreError> {
    text.parse()
        .map_err(|e| StoreError::InvalidData(format!("date {text:?}: {e}")))
}

pub fn parse_time(text: &str) -> Result<Time, StoreError> {
    text.parse()
        .map_err(|e| StoreError::InvalidData(format!("time {text:?}: {e}")))
}

/// Places taken per slot of `service` between two dates inclusive.
pub fn taken_between(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
    to: Date,
) -> Result<TakenPlaces, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT slot_date, slot_time, taken FROM slot_capacity
         WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3 AND taken > 0",
    )?;
    let rows = stmt.query_map(
        params![service.as_str(), from.to_string(), to.to_string()],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        },
    )?;
    let mut taken = TakenPlaces::default();
    for row in rows {
        let (date, time, n) = row?;
        taken.add(
            SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
            n,
        );
    }
    Ok(taken)
}

/// Replace a service's rules with `rules` (weekly hours, exceptions, horizon and lead time),
/// inside the caller's transaction.
pub fn save_rules(tx: &Transaction<'_>, rules: &ServiceRules) -> Result<(), StoreError> {
    let id = rules.service().as_str();
    tx.execute(
        "UPDATE services SET horizon_days = ?2, lead_minutes = ?3 WHERE id = ?1",
        params![id, rules.horizon_days(), rules.lead_minutes()],
    )?;
    tx.execute(
        "DELETE FROM service_weekly_rules WHERE service_id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM service_exceptions WHERE service_id = ?1", [id])?;
    let draft = rules.to_draft();
    for rule in &draft.weekly {
        tx.execute(
            "INSERT INTO service_weekly_rules
                 (service_id, weekday, start_time, end_time, slot_minutes, places)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                rule.weekday.to_monday_one_offset(),
                hh_mm(rule.range.start),
                hh_mm(rule.range.end),
                rule.range.slot_minutes,
                rule.range.places
            ],
        )?;
    }
    for exception in &draft.exceptions {
        let (kind, note, ranges): (&str, &str, &[OpeningRange]) = match &exception.kind {
            ExceptionKind::Closed { note } => ("closed", note, &[]),
            ExceptionKind::Open { ranges } => ("open", "", ranges),
        };
        tx.execute(
            "INSERT INTO service_exceptions (service_id, on_date, kind, note)
             VALUES (?1, ?2, ?3, ?4)",
            params![id, exception.date.to_string(), kind, note],
        )?;
        let exception_id = tx.last_insert_rowid();
        for range in ranges {
            tx.execute(
                "INSERT INTO service_exception_ranges
                     (exception_id, start_time, end_time, slot_minutes, places)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    exception_id,
                    hh_mm(range.start),
                    hh_mm(range.end),
                    range.slot_minutes,
                    range.places
                ],
            )?;
        }
    }
    Ok(())
}
