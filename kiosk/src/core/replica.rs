//! Reading the kiosk's replicas into the agenda engine's inputs: the rules from the directory,
//! and an [`Occupancy`] that counts what the server says is taken or held, plus this kiosk's own
//! pending requests, minus the places leased to this kiosk that it may still use.

use std::collections::{BTreeMap, HashMap};

use automerge::AutoCommit;
use coper_shared::{
    agenda::{Agenda, FreeSlot, Occupancy, SlotKey},
    documents::{
        DocName, LeaseEntry, QuesturaInfo, Request, RequestKind, ServiceInfo, SlotCounts,
        SyncSettings, Verdict, collections, parse_slot_key, record, records,
    },
    holidays::HolidayCalendar,
    ids::ServiceId,
    rules::ServiceRules,
};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use uuid::Uuid;

use super::{BookingStatus, CoreError, Inner, LocalBooking, rules_of, status_of};

/// A slot the kiosk can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub slot: coper_shared::agenda::Slot,
    pub free: u16,
    /// The lease with a place left here: this kiosk can confirm the booking by itself.
    pub lease: Option<Uuid>,
}

pub fn services(docs: &HashMap<DocName, AutoCommit>) -> Vec<(ServiceId, ServiceInfo)> {
    let Some(directory) = docs.get(&DocName::Directory) else {
        return Vec::new();
    };
    records::<ServiceInfo>(directory, collections::SERVICES)
        .into_iter()
        .filter_map(|(id, info)| Some((ServiceId::parse(&id).ok()?, info)))
        .collect()
}

/// The clock bound the server set (its default until the directory arrives): a kiosk further off
/// does not use leases, and stops using a lease this long before it expires.
pub fn clock_skew_bound_ms(docs: &HashMap<DocName, AutoCommit>) -> i64 {
    docs.get(&DocName::Directory)
        .and_then(|d| record::<SyncSettings>(d, collections::SETTINGS, "sync"))
        .map_or(DEFAULT_CLOCK_SKEW_BOUND_MS, |s| s.clock_skew_bound_ms)
}

/// The server's key for sealing a person's name and phone, once the directory has arrived.
pub fn seal_key(docs: &HashMap<DocName, AutoCommit>) -> Option<[u8; 32]> {
    let text: String = record(
        docs.get(&DocName::Directory)?,
        collections::SETTINGS,
        "seal",
    )?;
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

/// Two minutes, as the server's default.
const DEFAULT_CLOCK_SKEW_BOUND_MS: i64 = 120_000;

/// One service as this kiosk sees it now.
pub struct View {
    rules: ServiceRules,
    holidays: HolidayCalendar,
    pub tz: TimeZone,
    /// Per slot: what the common pool has used (taken + held + own pending provisional bookings)
    /// less what this kiosk may still use of its own valid lease there.
    occupied: BTreeMap<SlotKey, u32>,
    /// Per slot: this kiosk's valid lease and how many of its places it has not booked yet.
    usable_lease: BTreeMap<SlotKey, (Uuid, u32)>,
}

impl View {
    pub fn build(inner: &Inner, service: &ServiceId, now: Timestamp) -> Result<Self, CoreError> {
        let directory = inner
            .docs
            .get(&DocName::Directory)
            .ok_or(CoreError::NoAgenda)?;
        let questura: QuesturaInfo =
            record(directory, collections::QUESTURA, "questura").ok_or(CoreError::NoAgenda)?;
        let info: ServiceInfo = record(directory, collections::SERVICES, service.as_str())
            .ok_or_else(|| CoreError::UnknownService(service.to_string()))?;
        let rules =
            rules_of(&info).ok_or_else(|| CoreError::Corrupt(format!("rules of {service}")))?;
        let margin = clock_skew_bound_ms(&inner.docs);
        let tz = TimeZone::get(&questura.time_zone).unwrap_or(TimeZone::UTC);
        let me = inner.kiosk.to_string();
        let lease_valid = |lease: &LeaseEntry| {
            inner.clock_trusted && now.as_millisecond() < lease.expires_at_ms - margin
        };
        let own = requests(inner);
        // Places of each lease this kiosk has booked into, decided or not: counted here rather
        // than read from the server's `used`, which may reach the kiosk later than the verdicts.
        let mut own_use: HashMap<Uuid, u32> = HashMap::new();
        for request in own.iter().filter(|r| r.kind == RequestKind::Book) {
            if let Some(lease) = request.lease {
                *own_use.entry(lease).or_default() += 1;
            }
        }
        let mut occupied: BTreeMap<SlotKey, u32> = BTreeMap::new();
        let mut usable_lease: BTreeMap<SlotKey, (Uuid, u32)> = BTreeMap::new();
        let mut my_leases: BTreeMap<SlotKey, Uuid> = BTreeMap::new();
        for (name, doc) in &inner.docs {
            if !matches!(name, DocName::Agenda { service: s, .. } if s == service) {
                continue;
            }
            for (key, counts) in records::<SlotCounts>(doc, collections::SLOTS) {
                if let Some(slot) = parse_slot_key(&key) {
                    *occupied.entry(slot).or_default() += counts.taken + counts.held;
                }
            }
            for (key, lease) in records::<LeaseEntry>(doc, collections::LEASES) {
                let Some((kiosk, slot)) = key.split_once(' ') else {
                    continue;
                };
                let Some(slot) = parse_slot_key(slot).filter(|_| kiosk == me) else {
                    continue;
                };
                my_leases.insert(slot, lease.id);
                if lease_valid(&lease) {
                    let used = own_use.get(&lease.id).copied().unwrap_or(0);
                    usable_lease.insert(slot, (lease.id, lease.granted.saturating_sub(used)));
                }
            }
        }
        let verdicts = verdicts(inner);
        for request in own
            .iter()
            .filter(|r| !verdicts.contains_key(&r.id.to_string()))
        {
            if request.kind != RequestKind::Book || &request.service != service {
                continue;
            }
            // A pending booking inside a lease the server still holds is already counted in
            // `held`; any other pending booking takes a place from the pool.
            let slot = request.slot();
            if request.lease.is_none() || my_leases.get(&slot) != request.lease.as_ref() {
                *occupied.entry(slot).or_default() += 1;
            }
        }
        // Places leased to this kiosk are out of the pool for others but free for it.
        for (slot, (_, places)) in &usable_lease {
            let entry = occupied.entry(*slot).or_default();
            *entry = entry.saturating_sub(*places);
        }
        Ok(Self {
            rules,
            holidays: questura.holidays,
            tz,
            occupied,
            usable_lease,
        })
    }

    pub fn agenda(&self) -> Agenda<'_> {
        Agenda::new(&self.rules, &self.holidays, &self.tz)
    }

    pub fn proposal(&self, free: FreeSlot) -> Proposal {
        Proposal {
            slot: free.slot,
            free: free.free,
            lease: self
                .usable_lease
                .get(&free.slot.key())
                .filter(|(_, left)| *left > 0)
                .map(|(id, _)| *id),
        }
    }

    pub fn lease_places_on(&self, date: Date) -> u32 {
        self.usable_lease
            .iter()
            .filter(|(k, _)| k.date == date)
            .map(|(_, (_, n))| n)
            .sum()
    }
}

impl Occupancy for View {
    fn taken(&self, key: SlotKey) -> u32 {
        self.occupied.get(&key).copied().unwrap_or(0)
    }

    fn taken_each(&self, slots: &[coper_shared::agenda::Slot]) -> Vec<u32> {
        let Some(first) = slots.first() else {
            return Vec::new();
        };
        let entries = self.occupied.range(first.key()..).map(|(k, n)| (*k, *n));
        coper_shared::agenda::taken_in_order(slots, entries)
    }
}

fn verdicts(inner: &Inner) -> HashMap<String, Verdict> {
    inner
        .docs
        .get(&DocName::Inbox(inner.kiosk))
        .map(|doc| {
            records::<Verdict>(doc, collections::VERDICTS)
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
}

fn requests(inner: &Inner) -> Vec<Request> {
    inner
        .docs
        .get(&DocName::Outbox(inner.kiosk))
        .map(|doc| {
            records::<Request>(doc, collections::REQUESTS)
                .into_iter()
                .map(|(_, r)| r)
                .collect()
        })
        .unwrap_or_default()
}

/// Delete the clear names this kiosk keeps of settled bookings: printed and then confirmed,
/// rejected or cancelled as printed, or whose day has passed. A booking relocated after its
/// reminder was printed keeps them until the new reminder is printed (`forget_printed`).
pub fn forget_settled(inner: &Inner, now: Timestamp) -> Result<usize, CoreError> {
    let verdicts = verdicts(inner);
    let settled: Vec<String> = inner
        .store
        .kept_people()?
        .into_iter()
        .filter(|(request, kept)| {
            kept.printed
                && verdicts
                    .get(request)
                    .is_some_and(|v| v.outcome != coper_shared::documents::Outcome::Relocated)
        })
        .map(|(request, _)| request)
        .collect();
    inner.store.forget_people(&settled, &today(now).to_string())
}

/// A reminder of `request` was printed: if its verdict is in, the reminder shows the booking as
/// decided and the clear names are deleted now; otherwise when the verdict confirms it.
pub fn forget_printed(inner: &Inner, request: Uuid, now: Timestamp) -> Result<(), CoreError> {
    let id = request.to_string();
    if verdicts(inner).contains_key(&id) {
        inner.store.forget_people(&[id], &today(now).to_string())?;
    } else {
        inner.store.mark_printed(&id)?;
    }
    Ok(())
}

/// The kiosk's local date (kiosks stand in the Questura's city).
fn today(now: Timestamp) -> Date {
    now.to_zoned(TimeZone::system()).date()
}

/// Whether any request still waits for the server's verdict.
pub fn has_pending(inner: &Inner) -> bool {
    !pending_requests(inner).is_empty()
}

/// Requests the server has not decided yet.
fn pending_requests(inner: &Inner) -> Vec<Request> {
    let verdicts = verdicts(inner);
    requests(inner)
        .into_iter()
        .filter(|r| !verdicts.contains_key(&r.id.to_string()))
        .collect()
}

pub fn bookings(inner: &Inner) -> Vec<LocalBooking> {
    let verdicts = verdicts(inner);
    let all = requests(inner);
    // Sealed requests show the names this kiosk still keeps in clear; once settled, none.
    let people = inner.store.kept_people().unwrap_or_default();
    let mut out: Vec<LocalBooking> = all
        .iter()
        .filter(|r| r.kind == RequestKind::Book)
        .map(|r| {
            let mut status = match verdicts.get(&r.id.to_string()) {
                Some(v) => status_of(v),
                None => BookingStatus::Pending {
                    lease: r.lease.is_some(),
                },
            };
            let mut cancel_refused = None;
            for cancel in all.iter().filter(|c| c.cancels == Some(r.id)) {
                status = match verdicts.get(&cancel.id.to_string()) {
                    Some(v) if v.outcome == coper_shared::documents::Outcome::Cancelled => {
                        BookingStatus::Cancelled
                    }
                    Some(v) => {
                        cancel_refused = Some(v.reason.clone().unwrap_or_default());
                        status
                    }
                    None => BookingStatus::CancelPending,
                };
            }
            LocalBooking {
                request: r.id,
                booking_code: verdicts
                    .get(&r.id.to_string())
                    .and_then(|v| v.booking_code.clone())
                    .unwrap_or_else(|| r.booking_code.clone()),
                service: r.service.clone(),
                date: r.date,
                time: r.time,
                surname: people
                    .get(&r.id.to_string())
                    .map_or_else(|| r.surname.clone(), |p| p.personal.surname.clone()),
                given_names: people
                    .get(&r.id.to_string())
                    .map_or_else(|| r.given_names.clone(), |p| p.personal.given_names.clone()),
                status,
                cancel_refused,
                permit: r.permit,
                lang: people
                    .get(&r.id.to_string())
                    .and_then(|p| p.personal.lang.clone()),
            }
        })
        .collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.request));
    out
}
