//! Slots and leases: the places of each booked slot (`slot_capacity`: places, taken, held) and
//! the places leased to kiosks for offline booking (`leases`).
//!
//! `taken` is kept by the schema's triggers on `appointments`; `held` is written here only. This
//! is the one module that grants, uses and returns leased places, so the pool's arithmetic lives
//! in one place: [`grant_place`], [`use_leased_place`] and [`return_unused`].

use coper_shared::{
    agenda::{SlotKey, TakenPlaces},
    documents::{KioskId, LeaseEntry, SlotCounts},
    ids::ServiceId,
    rules::hh_mm,
};
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{StoreError, parse_date, parse_time};

/// Places taken per slot of `service` between two dates inclusive.
pub fn taken_between(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
    to: Date,
) -> Result<TakenPlaces, StoreError> {
    let rows = per_slot(
        conn,
        "SELECT slot_date, slot_time, taken FROM slot_capacity
         WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3 AND taken > 0",
        service,
        &[&from.to_string(), &to.to_string()],
        |r| r.get::<_, u32>(2),
    )?;
    let mut taken = TakenPlaces::default();
    for (key, n) in rows {
        taken.add(key, n);
    }
    Ok(taken)
}

/// The counts of every slot of `service` between two dates inclusive.
pub fn counts_between(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
    to: Date,
) -> Result<Vec<(SlotKey, SlotCounts)>, StoreError> {
    per_slot(
        conn,
        "SELECT slot_date, slot_time, places, taken, held FROM slot_capacity
         WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3",
        service,
        &[&from.to_string(), &to.to_string()],
        |r| {
            Ok(SlotCounts {
                places: r.get(2)?,
                taken: r.get(3)?,
                held: r.get(4)?,
            })
        },
    )
}

/// Everything each slot of `service` from `from` on holds (places taken plus places leased).
pub fn occupied_from(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
) -> Result<Vec<(SlotKey, u32)>, StoreError> {
    per_slot(
        conn,
        "SELECT slot_date, slot_time, taken + held FROM slot_capacity
         WHERE service_id = ?1 AND slot_date >= ?2",
        service,
        &[&from.to_string()],
        |r| r.get::<_, u32>(2),
    )
}

fn slot_key(date: &str, time: &str) -> Result<SlotKey, StoreError> {
    Ok(SlotKey {
        date: parse_date(date)?,
        start: parse_time(time)?,
    })
}

/// Run `sql` (whose first two columns are a slot's date and time, and whose parameters are a
/// service, then `more`) and read each row's slot and the value `value` reads from the rest.
fn per_slot<T>(
    conn: &Connection,
    sql: &str,
    service: &ServiceId,
    more: &[&dyn rusqlite::ToSql],
    value: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<(SlotKey, T)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let service = service.as_str();
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![&service];
    args.extend_from_slice(more);
    let rows = stmt.query_map(args.as_slice(), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, value(r)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (date, time, value) = row?;
        out.push((slot_key(&date, &time)?, value));
    }
    Ok(out)
}

/// The places a slot was opened with, if it has a row.
pub fn places_of(
    conn: &Connection,
    service: &ServiceId,
    slot: SlotKey,
) -> Result<Option<u16>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT places FROM slot_capacity WHERE service_id = ?1 AND slot_date = ?2
             AND slot_time = ?3",
        )?
        .query_row(
            params![service.as_str(), slot.date.to_string(), hh_mm(slot.start)],
            |r| r.get(0),
        )
        .optional()?)
}

/// What [`set_places`] does to a slot that already has a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Leave it: a slot is counted once it is booked or leased.
    Keep,
    /// Restate its places as the engine gives them, before booking it: they may only shrink
    /// down to what the slot holds (the schema's CHECK refuses anything else).
    Restate,
    /// Set its places as a change of rules gives them, but never below what it holds.
    AtLeastHeld,
}

/// Give the slot a row with `places`, or do to its row what `existing` says. Returns whether
/// the row was created or changed.
pub fn set_places(
    conn: &Connection,
    service: &ServiceId,
    slot: SlotKey,
    places: u16,
    existing: Existing,
) -> Result<bool, StoreError> {
    let on_conflict = match existing {
        Existing::Keep => "DO NOTHING",
        Existing::Restate => "DO UPDATE SET places = excluded.places",
        Existing::AtLeastHeld => {
            "DO UPDATE SET places = max(excluded.places, taken + held)
             WHERE places <> max(excluded.places, taken + held)"
        }
    };
    let changed = conn.execute(
        &format!(
            "INSERT INTO slot_capacity (service_id, slot_date, slot_time, places)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (service_id, slot_date, slot_time) {on_conflict}"
        ),
        params![
            service.as_str(),
            slot.date.to_string(),
            hh_mm(slot.start),
            places
        ],
    )?;
    Ok(changed > 0)
}

/// A lease from the columns `lease_id, granted, used, expires_at_ms` starting at `first`.
fn lease_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LeaseEntry> {
    let id: String = r.get(first)?;
    Ok(LeaseEntry {
        id: id.parse().map_err(|e: uuid::Error| {
            rusqlite::Error::FromSqlConversionFailure(first, rusqlite::types::Type::Text, e.into())
        })?,
        granted: r.get(first + 1)?,
        used: r.get(first + 2)?,
        expires_at_ms: r.get(first + 3)?,
    })
}

/// Every lease on slots of `service` between two dates inclusive, with its kiosk.
pub fn leases_between(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
    to: Date,
) -> Result<Vec<(KioskId, SlotKey, LeaseEntry)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kiosk_id, slot_date, slot_time, lease_id, granted, used, expires_at_ms
         FROM leases WHERE service_id = ?1 AND slot_date BETWEEN ?2 AND ?3",
    )?;
    let rows = stmt.query_map(
        params![service.as_str(), from.to_string(), to.to_string()],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                lease_row(r, 3)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (kiosk, date, time, lease) = row?;
        let kiosk = kiosk
            .parse()
            .map_err(|e: uuid::Error| StoreError::InvalidData(e.to_string()))?;
        out.push((KioskId(kiosk), slot_key(&date, &time)?, lease));
    }
    Ok(out)
}

/// Every lease of `kiosk`.
pub fn leases_of(
    conn: &Connection,
    kiosk: KioskId,
) -> Result<Vec<(ServiceId, SlotKey, LeaseEntry)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT service_id, slot_date, slot_time, lease_id, granted, used, expires_at_ms
         FROM leases WHERE kiosk_id = ?1",
    )?;
    let rows = stmt.query_map([kiosk.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            lease_row(r, 3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (service, date, time, lease) = row?;
        let service =
            ServiceId::parse(&service).map_err(|e| StoreError::InvalidData(e.to_string()))?;
        out.push((service, slot_key(&date, &time)?, lease));
    }
    Ok(out)
}

/// Places `kiosk` holds and has not used on `date` for `service`.
pub fn unused_on(
    conn: &Connection,
    kiosk: KioskId,
    service: &ServiceId,
    date: Date,
) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(granted - used), 0) FROM leases WHERE kiosk_id = ?1
         AND service_id = ?2 AND slot_date = ?3",
        )?
        .query_row(
            params![kiosk.to_string(), service.as_str(), date.to_string()],
            |r| r.get(0),
        )?)
}

/// Lease one more place of `slot` to `kiosk`, if the pool still has one (the schema's CHECK
/// refuses otherwise). The slot's row must exist ([`set_places`]). Returns whether it was granted.
pub fn grant_place(
    conn: &Connection,
    kiosk: KioskId,
    service: &ServiceId,
    slot: SlotKey,
    expires_at_ms: i64,
) -> Result<bool, StoreError> {
    let (date, time) = (slot.date.to_string(), hh_mm(slot.start));
    let held = conn
        .prepare_cached(
            "UPDATE slot_capacity SET held = held + 1 WHERE service_id = ?1 AND slot_date = ?2
         AND slot_time = ?3 AND taken + held < places",
        )?
        .execute(params![service.as_str(), date, time])?;
    if held == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO leases (kiosk_id, service_id, slot_date, slot_time, lease_id,
             granted, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT (kiosk_id, service_id, slot_date, slot_time)
         DO UPDATE SET granted = granted + 1, expires_at_ms = excluded.expires_at_ms",
    )?
    .execute(params![
        kiosk.to_string(),
        service.as_str(),
        date,
        time,
        Uuid::now_v7().to_string(),
        expires_at_ms
    ])?;
    Ok(true)
}

/// A booking made inside `kiosk`'s lease of `slot` takes one of its places: the place moves from
/// `held` to the appointment (whose trigger counts it in `taken`).
pub fn use_leased_place(
    conn: &Connection,
    kiosk: KioskId,
    service: &ServiceId,
    slot: SlotKey,
) -> Result<(), StoreError> {
    let (date, time) = (slot.date.to_string(), hh_mm(slot.start));
    conn.prepare_cached(
        "UPDATE leases SET used = used + 1 WHERE kiosk_id = ?1 AND service_id = ?2
         AND slot_date = ?3 AND slot_time = ?4",
    )?
    .execute(params![kiosk.to_string(), service.as_str(), date, time])?;
    conn.prepare_cached(
        "UPDATE slot_capacity SET held = held - 1 WHERE service_id = ?1
         AND slot_date = ?2 AND slot_time = ?3",
    )?
    .execute(params![service.as_str(), date, time])?;
    Ok(())
}

/// Extend every lease of `kiosk` to `expires_at_ms`.
pub fn extend_leases(
    conn: &Connection,
    kiosk: KioskId,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE leases SET expires_at_ms = ?2 WHERE kiosk_id = ?1")?
        .execute(params![kiosk.to_string(), expires_at_ms])?;
    Ok(())
}

/// Which leases give their unused places back to the pool.
#[derive(Debug, Clone, Copy)]
pub enum LeaseScope<'a> {
    /// A kiosk's leases that expired before this instant (ms): they end.
    ExpiredOf { kiosk: KioskId, before_ms: i64 },
    /// Every lease of a revoked kiosk: they end.
    AllOf(KioskId),
    /// Every kiosk's lease of one slot closed or shrunk below what it holds: each lease stays,
    /// with `granted` down to `used` (the one exception to "a lease only grows").
    Slot(&'a ServiceId, SlotKey),
}

/// Give the places leased and not used in `scope` back to the pool, then end those leases (or
/// shrink them, for [`LeaseScope::Slot`]). Returns the (service, date) of every lease touched,
/// whose agenda documents must be rewritten.
pub fn return_unused(
    conn: &Connection,
    scope: LeaseScope<'_>,
) -> Result<Vec<(ServiceId, Date)>, StoreError> {
    // One filter on `leases l` for the three scopes: ?1 kiosk, ?2 expired before (ms),
    // ?3..?5 one slot.
    const MATCHES: &str = "(?1 IS NULL OR l.kiosk_id = ?1) AND (?2 IS NULL OR l.expires_at_ms < ?2)
         AND (?3 IS NULL OR (l.service_id = ?3 AND l.slot_date = ?4 AND l.slot_time = ?5))";
    let (kiosk, before, slot, ends) = match scope {
        LeaseScope::ExpiredOf { kiosk, before_ms } => {
            (Some(kiosk.to_string()), Some(before_ms), None, true)
        }
        LeaseScope::AllOf(kiosk) => (Some(kiosk.to_string()), None, None, true),
        LeaseScope::Slot(service, key) => (
            None,
            None,
            Some((
                service.as_str().to_owned(),
                key.date.to_string(),
                hh_mm(key.start),
            )),
            false,
        ),
    };
    let (service, date, time) = match slot {
        Some((s, d, t)) => (Some(s), Some(d), Some(t)),
        None => (None, None, None),
    };
    let args = params![kiosk, before, service, date, time];
    // Ended leases all change the documents; shrunk ones only if they had places left.
    let touched: Vec<(String, String)> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT DISTINCT l.service_id, l.slot_date FROM leases l
             WHERE {MATCHES} AND (?6 OR l.granted > l.used)"
        ))?;
        let mut with_ends = args.to_vec();
        with_ends.push(&ends);
        stmt.query_map(with_ends.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    // The places to give back, slot by slot, then one update per slot by its key: an update of
    // `slot_capacity` filtered by a subquery on the leases read every lease for every slot of
    // the horizon (most of the server's time in a reconnect storm).
    let unused: Vec<(String, String, String, i64)> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT l.service_id, l.slot_date, l.slot_time, sum(l.granted - l.used) FROM leases l
             WHERE {MATCHES} AND l.granted > l.used
             GROUP BY l.service_id, l.slot_date, l.slot_time"
        ))?;
        stmt.query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut give_back = conn.prepare_cached(
        "UPDATE slot_capacity SET held = held - ?4
         WHERE service_id = ?1 AND slot_date = ?2 AND slot_time = ?3",
    )?;
    for (service, date, time, places) in &unused {
        give_back.execute(params![service, date, time, places])?;
    }
    let end_or_shrink = if ends {
        format!("DELETE FROM leases AS l WHERE {MATCHES}")
    } else {
        format!("UPDATE leases AS l SET granted = used WHERE {MATCHES} AND l.granted > l.used")
    };
    conn.execute(&end_or_shrink, args)?;
    touched
        .into_iter()
        .map(|(service, date)| {
            Ok((
                ServiceId::parse(&service).map_err(|e| StoreError::InvalidData(e.to_string()))?,
                parse_date(&date)?,
            ))
        })
        .collect()
}

/// The (service, date) of every slot where `kiosk` holds a lease.
pub fn leased_days_of(
    conn: &Connection,
    kiosk: KioskId,
) -> Result<Vec<(ServiceId, Date)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT service_id, slot_date FROM leases WHERE kiosk_id = ?1")?;
    let rows: Vec<(String, String)> = stmt
        .query_map([kiosk.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (service, date) in rows {
        if let Ok(service) = ServiceId::parse(&service) {
            out.push((service, parse_date(&date)?));
        }
    }
    Ok(out)
}
