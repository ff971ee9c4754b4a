//! The conflict rules: how the server decides a batch of kiosks' requests. Pure: the server loads
//! the capacity of the slots concerned, calls [`decide`], and commits the decisions in one SQLite
//! transaction before any verdict is written.
//!
//! The rules (SYNC.md):
//! - a confirmed appointment is never moved or withdrawn by the system;
//! - a booking inside a valid lease is confirmed in place, always;
//! - any other booking is confirmed if its place is still free, otherwise relocated to the nearest
//!   later free slot of the same service, otherwise rejected;
//! - requests are taken in the order of their creation time, then id, so replaying the same
//!   inputs gives the same outcome;
//! - every booking counts against the kiosk's and its partner body's quotas ([`crate::quota`]):
//!   a day or week whose quota is used up looks full to that kiosk, so a booking is relocated to
//!   a day the quota still allows, or rejected (`quota_reached`). A lease's places were granted
//!   within the quota, so a booking inside a lease is confirmed and counted;
//! - a person has one active booking per service: a booking for a ready permit that already has
//!   one is rejected (`already_booked`), even inside a lease, unless it names that booking in
//!   `moves` (the operator chose "move"): then the old booking gives its place back and the new
//!   one is decided as any other; if the new one finds no place, the old one stays.

use std::collections::BTreeMap;

use jiff::Timestamp;
use uuid::Uuid;

use crate::{
    agenda::{self, Agenda, Occupancy, SlotKey},
    documents::{KioskId, LeaseEntry, Outcome, Request, RequestKind, SlotCounts},
    ids::ServiceId,
    quota::Quotas,
};

/// What the server knows of the slots and leases a batch may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capacity {
    pub slots: BTreeMap<(ServiceId, SlotKey), SlotCounts>,
    pub leases: BTreeMap<(KioskId, ServiceId, SlotKey), LeaseEntry>,
    /// Active bookings by the request that made them, for cancellations.
    pub bookings: BTreeMap<Uuid, Booking>,
    /// The deciding kiosk's quotas and what it and its partner body already hold.
    pub quotas: Quotas,
    /// The active booking of each ready permit, per service, that the batch's requests name.
    pub permits: BTreeMap<(i64, ServiceId), ActiveBooking>,
}

/// A ready permit's active booking (booked or checked in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBooking {
    /// The appointment; `None` for one made earlier in the same batch.
    pub appointment: Option<Uuid>,
    pub slot: SlotKey,
    /// Still only booked: a move may replace it (a person checked in is being served).
    pub movable: bool,
    /// The kiosk request that made it, if one did: its cancellation in the same batch frees the
    /// person.
    pub request: Option<Uuid>,
    /// Made by the deciding kiosk, or by another kiosk of its partner body: a move gives its place
    /// back to the quotas it counted against.
    pub this_kiosk: bool,
    pub this_body: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub kiosk: KioskId,
    pub service: ServiceId,
    pub slot: SlotKey,
}

/// What one kiosk's request may carry, and how many a batch may hold. A request beyond them is
/// rejected with its own verdict (`invalid_request`, `too_many_requests`) and never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Characters of a surname, and of the given names.
    pub name_chars: usize,
    /// Characters of a phone number.
    pub phone_chars: usize,
    /// Requests decided from one kiosk in one batch; later ones are refused.
    pub per_batch: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            name_chars: 100,
            phone_chars: 32,
            per_batch: 500,
        }
    }
}

/// Whether `request` carries only what a person's booking can: a surname, names and a phone of
/// bounded length without control characters, and a booking code of the kiosk's shape.
pub fn well_formed(request: &Request, limits: &RequestLimits) -> Result<(), &'static str> {
    let text_ok =
        |text: &str, max: usize| text.chars().count() <= max && !text.chars().any(char::is_control);
    let ok = text_ok(&request.surname, limits.name_chars)
        && text_ok(&request.given_names, limits.name_chars)
        && request
            .phone
            .as_deref()
            .is_none_or(|p| text_ok(p, limits.phone_chars))
        && request.booking_code.len() <= 16
        && (request.kind == RequestKind::Cancel || !request.surname.trim().is_empty());
    if ok { Ok(()) } else { Err("invalid_request") }
}

/// One request and the kiosk it came from (authenticated, not taken from the request).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub kiosk: KioskId,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub request: Uuid,
    pub kiosk: KioskId,
    pub outcome: Outcome,
    pub service: ServiceId,
    /// Where the booking ended (for `Relocated`, the new slot; for `Rejected`, the slot asked).
    pub slot: SlotKey,
    /// The booking consumed one of the kiosk's leased places.
    pub used_lease: bool,
    pub reason: Option<&'static str>,
    /// The appointment this booking replaces (the request's `moves`, granted).
    pub moves: Option<Uuid>,
}

/// The common pool's view of a service: places taken plus places held for leases; with
/// `quotas`, a day the kiosk's quota no longer allows looks full.
struct PoolOccupancy<'a> {
    capacity: &'a Capacity,
    service: &'a ServiceId,
    quotas: Option<&'a Quotas>,
}

impl Occupancy for PoolOccupancy<'_> {
    fn taken(&self, key: SlotKey) -> u32 {
        if self.quotas.is_some_and(|q| !q.allows(key.date)) {
            return u32::MAX;
        }
        self.capacity
            .slots
            .get(&(self.service.clone(), key))
            .map(|c| c.taken + c.held)
            .unwrap_or(0)
    }

    /// A day the quota does not allow is full whole (the quota asked once, not per slot); the
    /// others are one walk over the day's counts.
    fn taken_each(&self, slots: &[agenda::Slot]) -> Vec<u32> {
        let Some(first) = slots.first() else {
            return Vec::new();
        };
        if self.quotas.is_some_and(|q| !q.allows(first.date))
            && slots.iter().all(|s| s.date == first.date)
        {
            return vec![u32::MAX; slots.len()];
        }
        let entries = self
            .capacity
            .slots
            .range((self.service.clone(), first.key())..)
            .take_while(|((service, _), _)| service == self.service)
            .map(|((_, key), c)| (*key, c.taken + c.held));
        agenda::taken_in_order(slots, entries)
    }
}

/// Decide `incoming` in deterministic order, updating `capacity` as each decision takes effect.
/// A request that is not [`well_formed`], or beyond `limits.per_batch`, is rejected on its own.
pub fn decide(
    mut incoming: Vec<Incoming>,
    capacity: &mut Capacity,
    agendas: &BTreeMap<ServiceId, Agenda<'_>>,
    now: Timestamp,
    limits: &RequestLimits,
) -> Vec<Decision> {
    incoming.sort_by_key(|i| (i.request.created_at_ms, i.request.id));
    // The same request delivered twice (even with different clocks) is decided once.
    let mut seen = std::collections::BTreeSet::new();
    incoming.retain(|i| seen.insert(i.request.id));
    incoming
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            let refusal = if n >= limits.per_batch {
                Err("too_many_requests")
            } else {
                well_formed(&i.request, limits)
            };
            match refusal {
                Ok(()) => decide_one(i, capacity, agendas, now),
                Err(reason) => Decision {
                    request: i.request.id,
                    kiosk: i.kiosk,
                    outcome: Outcome::Rejected,
                    service: i.request.service.clone(),
                    slot: i.request.slot(),
                    used_lease: false,
                    reason: Some(reason),
                    moves: None,
                },
            }
        })
        .collect()
}

fn decide_one(
    Incoming { kiosk, request }: Incoming,
    capacity: &mut Capacity,
    agendas: &BTreeMap<ServiceId, Agenda<'_>>,
    now: Timestamp,
) -> Decision {
    let asked = request.slot();
    let mut decision = Decision {
        request: request.id,
        kiosk,
        outcome: Outcome::Rejected,
        service: request.service.clone(),
        slot: asked,
        used_lease: false,
        reason: None,
        moves: None,
    };
    if request.kind == RequestKind::Cancel {
        let Some(target) = request.cancels else {
            decision.reason = Some("nothing_to_cancel");
            return decision;
        };
        match capacity.bookings.get(&target) {
            Some(booking) if booking.kiosk == kiosk => {
                let booking = capacity.bookings.remove(&target).expect("just found");
                if let Some(counts) = capacity
                    .slots
                    .get_mut(&(booking.service.clone(), booking.slot))
                {
                    counts.taken = counts.taken.saturating_sub(1);
                }
                capacity.quotas.give_back(booking.slot.date);
                capacity
                    .permits
                    .retain(|_, active| active.request != Some(target));
                decision.outcome = Outcome::Cancelled;
                decision.service = booking.service;
                decision.slot = booking.slot;
            }
            _ => decision.reason = Some("unknown_booking"),
        }
        return decision;
    }
    let Some(agenda) = agendas.get(&request.service) else {
        decision.reason = Some("unknown_service");
        return decision;
    };
    // One active booking per person and service; a move frees the old place first, and puts it
    // back if the new booking finds none.
    let permit_key = request.permit.map(|p| (p, request.service.clone()));
    let replaced = match permit_key.as_ref().and_then(|k| capacity.permits.get(k)) {
        Some(active)
            if active.movable
                && active.appointment.is_some()
                && request.moves == active.appointment =>
        {
            let active = active.clone();
            if let Some(counts) = capacity
                .slots
                .get_mut(&(request.service.clone(), active.slot))
            {
                counts.taken = counts.taken.saturating_sub(1);
            }
            if active.this_kiosk {
                capacity.quotas.give_back(active.slot.date);
            } else if active.this_body {
                capacity.quotas.partner_gives_back(active.slot.date);
            }
            Some(active)
        }
        Some(_) => {
            decision.reason = Some("already_booked");
            return decision;
        }
        None => None,
    };
    let decision = decide_booking(decision, &request, capacity, agenda, now);
    match (&replaced, decision.outcome) {
        (Some(active), Outcome::Rejected) => {
            if let Some(counts) = capacity
                .slots
                .get_mut(&(request.service.clone(), active.slot))
            {
                counts.taken += 1;
            }
            if active.this_kiosk {
                capacity.quotas.take(active.slot.date);
            } else if active.this_body {
                capacity.quotas.partner_takes(active.slot.date);
            }
            decision
        }
        (_, Outcome::Rejected) => decision,
        (_, _) => {
            if let Some(key) = permit_key {
                capacity.permits.insert(
                    key,
                    ActiveBooking {
                        appointment: None,
                        slot: decision.slot,
                        movable: false,
                        request: Some(decision.request),
                        this_kiosk: true,
                        this_body: true,
                    },
                );
            }
            Decision {
                moves: replaced.and_then(|a| a.appointment),
                ..decision
            }
        }
    }
}

/// Decide a booking request whose person may be booked: inside its lease, or the first free slot
/// from the one asked.
fn decide_booking(
    mut decision: Decision,
    request: &Request,
    capacity: &mut Capacity,
    agenda: &Agenda<'_>,
    now: Timestamp,
) -> Decision {
    let (kiosk, asked) = (decision.kiosk, decision.slot);
    // Inside a valid lease: confirmed in place, whatever the pool looks like.
    let lease_key = (kiosk, request.service.clone(), asked);
    if let Some(lease) = capacity.leases.get_mut(&lease_key)
        && request.lease == Some(lease.id)
        && lease.remaining() > 0
        && request.created_at_ms <= lease.expires_at_ms
        && let Some(counts) = capacity
            .slots
            .get_mut(&(request.service.clone(), asked))
            .filter(|c| c.held > 0)
    {
        lease.used += 1;
        counts.held -= 1;
        counts.taken += 1;
        decision.outcome = Outcome::Confirmed;
        decision.used_lease = true;
        record_booking(capacity, &decision);
        return decision;
    }
    let from = asked.date.to_datetime(asked.start);
    let within_quota = PoolOccupancy {
        capacity,
        service: &request.service,
        quotas: Some(&capacity.quotas),
    };
    let Some(free) = agenda.first_free(&within_quota, now, from) else {
        // Say why: the agenda has room this kiosk may not take, or none at all.
        let pool = PoolOccupancy {
            quotas: None,
            ..within_quota
        };
        decision.reason = Some(if agenda.first_free(&pool, now, from).is_some() {
            "quota_reached"
        } else {
            "no_free_slot"
        });
        return decision;
    };
    let key = free.slot.key();
    decision.outcome = if key == asked {
        Outcome::Confirmed
    } else {
        Outcome::Relocated
    };
    decision.slot = key;
    let counts = capacity
        .slots
        .entry((request.service.clone(), key))
        .or_insert(SlotCounts {
            places: u32::from(free.slot.places),
            taken: 0,
            held: 0,
        });
    counts.places = u32::from(free.slot.places);
    counts.taken += 1;
    record_booking(capacity, &decision);
    decision
}

fn record_booking(capacity: &mut Capacity, decision: &Decision) {
    capacity.quotas.take(decision.slot.date);
    capacity.bookings.insert(
        decision.request,
        Booking {
            kiosk: decision.kiosk,
            service: decision.service.clone(),
            slot: decision.slot,
        },
    );
}
