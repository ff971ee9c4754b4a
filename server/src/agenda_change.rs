//! Changing a service's rules (hours, places, exceptions such as closing a day) when bookings
//! already exist: preview what the change does, then apply it with the bookings it displaces moved
//! to the nearest free slot — never silently dropped.
//!
//! The rules are checked by `ServiceRules::new` (overlaps, zero places, a slot longer than its
//! range: Italian messages), the displaced bookings are found and placed by the pure
//! `coper_shared::relocate`; this module loads, writes and audits. A kiosk's booking that moves has
//! its verdict rewritten as "relocated", so the kiosk shows the new time; the operations of
//! `crate::ops::agenda` turn what this returns into the changes `AppState::perform` publishes.

use std::collections::BTreeSet;

use crate::store::{
    self, Connection, StoreError, Transaction,
    appointments::{self, Movable},
    settings,
    slots::{self, Existing, LeaseScope},
};
use coper_shared::{
    agenda::{Agenda, DayPlan, DaySummary, SlotKey, TakenPlaces},
    documents::{DocName, KioskId},
    jiff::{Timestamp, ToSpan, civil::Date},
    relocate::{self, Held, Move},
    rules::{ServiceRules, hh_mm},
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

/// The bookings still to come (all of them only booked), the ones a change may move.
fn held(
    conn: &Connection,
    rules: &ServiceRules,
    today: Date,
) -> Result<(Vec<Held<usize>>, Vec<Movable>), StoreError> {
    let bookings = appointments::movable_from(conn, rules.service(), today)?;
    let held = bookings
        .iter()
        .enumerate()
        .map(|(id, b)| Held {
            id,
            slot: b.slot,
            seq: b.seq,
        })
        .collect();
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
    for (key, occupied) in slots::occupied_from(conn, rules.service(), today)? {
        let movable = held.iter().filter(|h| h.slot == key).count() as u32;
        fixed.add(key, occupied.saturating_sub(movable));
    }
    Ok(fixed)
}

/// The moves planned, the bookings they index, and today's date.
type Planned = (Vec<Move<usize>>, Vec<Movable>, Date);

fn moves(conn: &Connection, rules: &ServiceRules, now: Timestamp) -> Result<Planned, StoreError> {
    let questura = settings::questura(conn)?
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

fn shown(moves: &[Move<usize>], bookings: &[Movable]) -> Vec<Displaced> {
    moves
        .iter()
        .map(|m| {
            let b = &bookings[m.id];
            Displaced {
                appointment: b.id.clone(),
                booking_code: b.booking_code.clone(),
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
    let questura = settings::questura(conn)?
        .ok_or_else(|| StoreError::InvalidData("no Questura configured".into()))?;
    let agenda = Agenda::new(rules, &questura.holidays, &questura.time_zone);
    let last = today
        .checked_add(PREVIEW_DAYS.days())
        .map_err(|e| StoreError::InvalidData(e.to_string()))?;
    let mut taken = slots::taken_between(conn, rules.service(), today, last)?;
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

/// Save `rules` and move the bookings they displace, in `tx`, for `reason` (as the administrator
/// typed it: the partner bodies and the people read it); audited as `actor`.
pub fn apply(
    tx: &Transaction<'_>,
    rules: &ServiceRules,
    reason: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Applied, StoreError> {
    let (moves, bookings, today) = moves(tx, rules, now)?;
    store::services::save_rules(tx, rules)?;
    let service = rules.service();
    let mut applied = Applied::default();
    for m in &moves {
        let booking = &bookings[m.id];
        let Some(to) = m.to else { continue };
        slots::set_places(tx, service, to.key(), to.places, Existing::AtLeastHeld)?;
        appointments::relocate(tx, &booking.id, to.key(), now, reason)?;
        if let Some(kiosk) = &booking.kiosk
            && let Ok(id) = kiosk.parse()
        {
            applied.kiosks.insert(KioskId(id));
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
                "reason": reason,
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
    let questura = settings::questura(tx)?
        .ok_or_else(|| StoreError::InvalidData("no Questura configured".into()))?;
    let agenda = Agenda::new(rules, &questura.holidays, &questura.time_zone);
    for (key, occupied) in slots::occupied_from(tx, service, today)? {
        let places = match agenda.day(key.date) {
            DayPlan::Open(slots) => slots
                .iter()
                .find(|s| s.key() == key)
                .map_or(0, |s| s.places),
            DayPlan::Closed(_) => 0,
        };
        // A slot closed or shrunk below what it holds gives back the places leased to kiosks
        // and not used yet: a kiosk that books there offline is then relocated by the server,
        // never confirmed on a closed day.
        let withdrawn = u32::from(places) < occupied
            && !slots::return_unused(tx, LeaseScope::Slot(service, key))?.is_empty();
        if slots::set_places(tx, service, key, places, Existing::AtLeastHeld)? || withdrawn {
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
