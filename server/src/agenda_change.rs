//! Changing a service's rules (hours, places, exceptions such as closing a day) when bookings
//! already exist: preview what the change does, then apply it with the bookings it displaces moved
//! to the nearest free slot — never silently dropped.
//!
//! The rules are checked by `ServiceRules::new` (overlaps, zero places, a slot longer than its
//! range: Italian messages), the displaced bookings are found and placed by the pure
//! `coper_shared::relocate`; this module loads, writes and audits. A kiosk's booking that moves has
//! its verdict rewritten as "relocated", so the kiosk shows the new time; the caller then asks
//! the sync hub to republish the documents this returns.

use std::collections::BTreeSet;

use coper_shared::{
    agenda::{Agenda, DaySummary, SlotKey, TakenPlaces},
    documents::{DocName, KioskId},
    jiff::{Timestamp, ToSpan, civil::Date},
    relocate::{self, Held, Move},
    rules::{ServiceRules, hh_mm},
};
use rusqlite::{Connection, Transaction, params};

use crate::store::{
    self, StoreError,
    agenda::{parse_date, parse_time},
};

/// A displaced booking, as the preview and the report list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displaced {
    pub appointment: String,
    pub booking_code: String,
    pub name: String,
    pub partner: String,
    pub from: SlotKey,
    /// `None`: no free place before the horizon; it stays where it was, for the staff to handle.
    pub to: Option<SlotKey>,
}

/// What a change of rules does.
#[derive(Debug, Clone)]
pub struct ChangePlan {
    /// The next weeks under the new rules, as a calendar shows them.
    pub days: Vec<DaySummary>,
    pub displaced: Vec<Displaced>,
}

/// What applying a change touched, for republishing.
#[derive(Debug, Default)]
pub struct Applied {
    pub displaced: Vec<Displaced>,
    pub agendas: BTreeSet<DocName>,
    pub kiosks: BTreeSet<KioskId>,
}

/// How far the preview calendar looks ahead.
pub const PREVIEW_DAYS: i64 = 42;

struct Booking {
    id: String,
    code: String,
    name: String,
    partner: String,
    kiosk: Option<String>,
}

fn held(
    conn: &Connection,
    rules: &ServiceRules,
    today: Date,
) -> Result<(Vec<Held<usize>>, Vec<Booking>), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT a.id, a.booking_code, a.surname || ' ' || a.given_names, coalesce(p.name, 'Questura'),
                a.kiosk_id, a.slot_date, a.slot_time, a.rowid
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.service_id = ?1 AND a.status = 'booked' AND a.slot_date >= ?2
         ORDER BY a.slot_date, a.slot_time, a.rowid",
    )?;
    let rows = stmt.query_map(params![rules.service().as_str(), today.to_string()], |r| {
        Ok((
            Booking {
                id: r.get(0)?,
                code: r.get(1)?,
                name: r.get(2)?,
                partner: r.get(3)?,
                kiosk: r.get(4)?,
            },
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut held = Vec::new();
    let mut bookings = Vec::new();
    for row in rows {
        let (booking, date, time, seq) = row?;
        held.push(Held {
            id: bookings.len(),
            slot: SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
            seq: seq as u64,
        });
        bookings.push(booking);
    }
    Ok((held, bookings))
}

/// Places that a change cannot move: everything a slot holds (appointments in any state but
/// cancelled, places leased to kiosks) except the bookings in `held`, which may move.
fn unmovable(
    conn: &Connection,
    rules: &ServiceRules,
    today: Date,
    held: &[Held<usize>],
) -> Result<TakenPlaces, StoreError> {
    let mut fixed = TakenPlaces::default();
    let mut stmt = conn.prepare(
        "SELECT slot_date, slot_time, taken + held FROM slot_capacity
         WHERE service_id = ?1 AND slot_date >= ?2",
    )?;
    let rows = stmt.query_map(params![rules.service().as_str(), today.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })?;
    for row in rows {
        let (date, time, occupied) = row?;
        let key = SlotKey {
            date: parse_date(&date)?,
            start: parse_time(&time)?,
        };
        let movable = held.iter().filter(|h| h.slot == key).count() as u32;
        fixed.add(key, occupied.saturating_sub(movable));
    }
    Ok(fixed)
}

/// The moves planned, the bookings they index, and today's date.
type Planned = (Vec<Move<usize>>, Vec<Booking>, Date);

fn moves(conn: &Connection, rules: &ServiceRules, now: Timestamp) -> Result<Planned, StoreError> {
    let questura = store::agenda::questura(conn)?
        .ok_or_else(|| StoreError::InvalidData("no Questura configured".into()))?;
    let agenda = Agenda::new(rules, &questura.holidays, &questura.time_zone);
    let local = now.to_zoned(questura.time_zone.clone()).datetime();
    let today = local.date();
    let (held, bookings) = held(conn, rules, today)?;
    // Slots already started stay as they are (the counter deals with who came); only what is
    // still ahead moves.
    let held: Vec<Held<usize>> = held
        .into_iter()
        .filter(|h| h.slot.date.to_datetime(h.slot.start) >= local)
        .collect();
    let fixed = unmovable(conn, rules, today, &held)?;
    let (kept, lost) = relocate::displaced(&agenda, &held, fixed);
    Ok((relocate::plan(&agenda, kept, &lost, now), bookings, today))
}

fn shown(moves: &[Move<usize>], bookings: &[Booking]) -> Vec<Displaced> {
    moves
        .iter()
        .map(|m| {
            let b = &bookings[m.id];
            Displaced {
                appointment: b.id.clone(),
                booking_code: b.code.clone(),
                name: b.name.clone(),
                partner: b.partner.clone(),
                from: m.from,
                to: m.to.map(|s| s.key()),
            }
        })
        .collect()
}

/// What `rules` would do if saved now: the calendar of the coming weeks and the bookings moved.
pub fn preview(
    conn: &Connection,
    rules: &ServiceRules,
    now: Timestamp,
) -> Result<ChangePlan, StoreError> {
    let (moves, bookings, today) = moves(conn, rules, now)?;
    let questura = store::agenda::questura(conn)?
        .ok_or_else(|| StoreError::InvalidData("no Questura configured".into()))?;
    let agenda = Agenda::new(rules, &questura.holidays, &questura.time_zone);
    let last = today
        .checked_add(PREVIEW_DAYS.days())
        .map_err(|e| StoreError::InvalidData(e.to_string()))?;
    let mut taken = store::agenda::taken_between(conn, rules.service(), today, last)?;
    // The calendar counts the moved bookings where they will be.
    for m in &moves {
        if let Some(to) = m.to {
            taken.add(to.key(), 1);
        }
    }
    Ok(ChangePlan {
        days: agenda.days(&taken, now, today, last),
        displaced: shown(&moves, &bookings),
    })
}

/// Save `rules` and move the bookings they displace, in `tx`; audited as `actor`.
pub fn apply(
    tx: &Transaction<'_>,
    rules: &ServiceRules,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Applied, StoreError> {
    let (moves, bookings, today) = moves(tx, rules, now)?;
    store::agenda::save_rules(tx, rules)?;
    let service = rules.service();
    let mut applied = Applied::default();
    for m in &moves {
        let booking = &bookings[m.id];
        let Some(to) = m.to else { continue };
        tx.execute(
            "INSERT INTO slot_capacity (service_id, slot_date, slot_time, places) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (service_id, slot_date, slot_time) DO UPDATE SET places = max(excluded.places, taken + held)",
            params![service.as_str(), to.date.to_string(), hh_mm(to.start), to.places],
        )?;
        tx.execute(
            "UPDATE appointments SET slot_date = ?2, slot_time = ?3 WHERE id = ?1",
            params![booking.id, to.date.to_string(), hh_mm(to.start)],
        )?;
        if let Some(kiosk) = &booking.kiosk {
            tx.execute(
                "UPDATE sync_verdicts SET outcome = 'relocated', slot_date = ?2, slot_time = ?3
                 WHERE appointment_id = ?1",
                params![booking.id, to.date.to_string(), hh_mm(to.start)],
            )?;
            if let Ok(id) = kiosk.parse() {
                applied.kiosks.insert(KioskId(id));
            }
        }
        store::audit_from(
            tx,
            now,
            actor,
            "appointment.relocated",
            &booking.id,
            &serde_json::json!({
                "from": format!("{} {}", m.from.date, hh_mm(m.from.start)),
                "to": format!("{} {}", to.date, hh_mm(to.start)),
                "reason": "rules_changed",
            }),
            source,
        )?;
        applied
            .agendas
            .insert(DocName::agenda_for(service, m.from.date));
        applied
            .agendas
            .insert(DocName::agenda_for(service, to.date));
    }
    // Slots that remain state the places the new rules give them (never below what they hold).
    let questura = store::agenda::questura(tx)?
        .ok_or_else(|| StoreError::InvalidData("no Questura configured".into()))?;
    let agenda = Agenda::new(rules, &questura.holidays, &questura.time_zone);
    let rows: Vec<(String, String, u32)> = {
        let mut stmt = tx.prepare(
            "SELECT slot_date, slot_time, taken + held FROM slot_capacity
             WHERE service_id = ?1 AND slot_date >= ?2",
        )?;
        stmt.query_map(params![service.as_str(), today.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?
    };
    for (date, time, occupied) in rows {
        let key = SlotKey {
            date: parse_date(&date)?,
            start: parse_time(&time)?,
        };
        let places = match agenda.day(key.date) {
            coper_shared::agenda::DayPlan::Open(slots) => slots
                .iter()
                .find(|s| s.key() == key)
                .map_or(0, |s| s.places),
            coper_shared::agenda::DayPlan::Closed(_) => 0,
        };
        // A slot closed or shrunk below what it holds gives back the places leased to kiosks
        // and not used yet: a kiosk that books there offline is then relocated by the server,
        // never confirmed on a closed day.
        if u32::from(places) < occupied {
            let withdrawn = tx.execute(
                "UPDATE slot_capacity SET held = held - (
                     SELECT coalesce(sum(l.granted - l.used), 0) FROM leases l
                     WHERE l.service_id = ?1 AND l.slot_date = ?2 AND l.slot_time = ?3)
                 WHERE service_id = ?1 AND slot_date = ?2 AND slot_time = ?3 AND held > 0",
                params![service.as_str(), date, time],
            )?;
            tx.execute(
                "UPDATE leases SET granted = used
                 WHERE service_id = ?1 AND slot_date = ?2 AND slot_time = ?3 AND granted > used",
                params![service.as_str(), date, time],
            )?;
            if withdrawn > 0 {
                applied
                    .agendas
                    .insert(DocName::agenda_for(service, key.date));
            }
        }
        let changed = tx.execute(
            "UPDATE slot_capacity SET places = max(?4, taken + held)
             WHERE service_id = ?1 AND slot_date = ?2 AND slot_time = ?3 AND places <> max(?4, taken + held)",
            params![service.as_str(), date, time, places],
        )?;
        if changed > 0 {
            applied
                .agendas
                .insert(DocName::agenda_for(service, key.date));
        }
    }
    store::audit_from(
        tx,
        now,
        actor,
        "service.rules_saved",
        service.as_str(),
        &serde_json::json!({
            "moved": moves.iter().filter(|m| m.to.is_some()).count(),
            "stuck": moves.iter().filter(|m| m.to.is_none()).count(),
        }),
        source,
    )?;
    applied.displaced = shown(&moves, &bookings);
    Ok(applied)
}
