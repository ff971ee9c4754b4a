//! Services as stored (`services`, `service_weekly_rules`, `service_exceptions` and their ranges):
//! what each is, and its rules read into the engine's types (`coper_shared`), which check them
//! once more.

use coper_shared::{
    ids::ServiceId,
    precheck::Translations,
    rules::{
        DateException, ExceptionKind, OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule,
        hh_mm,
    },
};
use jiff::civil::Weekday;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{StoreError, parse_date, parse_time};

/// A service as listed to the public: what it is, plus its checked rules.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    pub description: String,
    pub what_to_bring: String,
    /// "What to bring" in the other languages given (language → text).
    pub what_to_bring_in: Translations,
    pub rules: ServiceRules,
}

/// Active services in display order.
pub fn services(conn: &Connection) -> Result<Vec<Service>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM services WHERE active = 1 ORDER BY sort_order, id")?;
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
        .prepare_cached(
            "SELECT id, name, description, what_to_bring, horizon_days, lead_minutes,
                    what_to_bring_in
             FROM services WHERE id = ?1 AND active = 1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u16>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    let Some((id, name, description, what_to_bring, horizon_days, lead_minutes, bring_in)) = row
    else {
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
        what_to_bring_in: serde_json::from_str(&bring_in).unwrap_or_default(),
        rules,
    }))
}

fn weekly_rules(conn: &Connection, service: &str) -> Result<Vec<WeeklyRule>, StoreError> {
    let mut stmt = conn.prepare_cached(
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, on_date, kind, note FROM service_exceptions
         WHERE service_id = ?1 ORDER BY on_date",
    )?;
    let rows: Vec<(i64, String, String, String)> = stmt
        .query_map([service], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut ranges_stmt = conn.prepare_cached(
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

/// Replace a service's rules with `rules` (weekly hours, exceptions, horizon and lead time),
/// inside the caller's transaction.
pub fn save_rules(tx: &Transaction<'_>, rules: &ServiceRules) -> Result<(), StoreError> {
    let id = rules.service().as_str();
    tx.prepare_cached("UPDATE services SET horizon_days = ?2, lead_minutes = ?3 WHERE id = ?1")?
        .execute(params![id, rules.horizon_days(), rules.lead_minutes()])?;
    tx.prepare_cached("DELETE FROM service_weekly_rules WHERE service_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM service_exceptions WHERE service_id = ?1")?
        .execute([id])?;
    let draft = rules.to_draft();
    for rule in &draft.weekly {
        tx.prepare_cached(
            "INSERT INTO service_weekly_rules
                 (service_id, weekday, start_time, end_time, slot_minutes, places)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            rule.weekday.to_monday_one_offset(),
            hh_mm(rule.range.start),
            hh_mm(rule.range.end),
            rule.range.slot_minutes,
            rule.range.places
        ])?;
    }
    for exception in &draft.exceptions {
        let (kind, note, ranges): (&str, &str, &[OpeningRange]) = match &exception.kind {
            ExceptionKind::Closed { note } => ("closed", note, &[]),
            ExceptionKind::Open { ranges } => ("open", "", ranges),
        };
        tx.prepare_cached(
            "INSERT INTO service_exceptions (service_id, on_date, kind, note)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, exception.date.to_string(), kind, note])?;
        let exception_id = tx.last_insert_rowid();
        for range in ranges {
            tx.prepare_cached(
                "INSERT INTO service_exception_ranges
                     (exception_id, start_time, end_time, slot_minutes, places)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                exception_id,
                hh_mm(range.start),
                hh_mm(range.end),
                range.slot_minutes,
                range.places
            ])?;
        }
    }
    Ok(())
}

/// Rename and describe a service; "what to bring" in Italian and in the other languages given.
pub fn describe(
    conn: &Connection,
    id: &ServiceId,
    name: &str,
    description: &str,
    what_to_bring: &str,
    what_to_bring_in: &Translations,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE services SET name = ?2, description = ?3, what_to_bring = ?4,
             what_to_bring_in = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id.as_str(),
        name,
        description,
        what_to_bring,
        serde_json::to_string(what_to_bring_in).unwrap_or_else(|_| "{}".into())
    ])?;
    Ok(())
}

/// Create a service with no hours yet, last in display order; `false` if the id is taken.
pub fn create(conn: &Connection, id: &ServiceId, name: &str) -> Result<bool, StoreError> {
    let exists: bool = conn
        .prepare_cached("SELECT count(*) > 0 FROM services WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))?;
    if exists {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO services (id, name, horizon_days, lead_minutes, sort_order)
         VALUES (?1, ?2, 60, 60, (SELECT coalesce(max(sort_order), 0) + 1 FROM services))",
    )?
    .execute(params![id.as_str(), name])?;
    Ok(true)
}
