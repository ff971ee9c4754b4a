//! Property tests of the conflict rules: whatever arrives, in whatever order, no slot is
//! overbooked, lease bookings are confirmed in place, and the same inputs give the same verdicts.

use std::collections::BTreeMap;

use coper_shared::{
    agenda::{Agenda, SlotKey},
    decide::{ActiveBooking, Capacity, Incoming, RequestLimits, decide},
    documents::{KioskId, LeaseEntry, Outcome, Request, RequestKind, SlotCounts},
    holidays::HolidayCalendar,
    ids::ServiceId,
    quota::{Allowance, Quota, Quotas, week_start},
    rules::{OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule},
};
use jiff::{
    Timestamp,
    civil::{Weekday, date, time},
    tz::TimeZone,
};
use proptest::prelude::*;
use uuid::Uuid;

fn service() -> ServiceId {
    ServiceId::parse("consegna-pse").unwrap()
}

fn rules() -> ServiceRules {
    let range = OpeningRange {
        start: time(9, 0, 0, 0),
        end: time(10, 0, 0, 0),
        slot_minutes: 15,
        places: 2,
    };
    ServiceRules::new(ServiceRulesDraft {
        service: service(),
        weekly: [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday]
            .into_iter()
            .map(|weekday| WeeklyRule { weekday, range })
            .collect(),
        exceptions: vec![],
        horizon_days: 14,
        lead_minutes: 0,
    })
    .unwrap()
}

/// Monday 7 December 2026, 07:00 in Rome; slots Mon–Wed 09:00–10:00, four a day, two places each.
fn now() -> Timestamp {
    "2026-12-07T06:00:00Z".parse().unwrap()
}

fn slot_of(day: u8, index: u8) -> SlotKey {
    // Mon 7, Tue 8 (a holiday: the decision must relocate), Wed 9, Mon 14.
    let d = [
        date(2026, 12, 7),
        date(2026, 12, 8),
        date(2026, 12, 9),
        date(2026, 12, 14),
    ][day as usize % 4];
    SlotKey {
        date: d,
        start: time(9, (index % 4) as i8 * 15, 0, 0),
    }
}

#[derive(Debug, Clone)]
struct Case {
    requests: Vec<(u8, u8, u8, bool, i64)>, // kiosk, day, slot index, claims its lease, created offset
    leases: Vec<(u8, u8, u8)>,              // kiosk, day, slot index: one leased place each
    prefilled: Vec<(u8, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..3, 0u8..4, 0u8..4, any::<bool>(), 0i64..1000), 0..40),
        prop::collection::vec((0u8..3, 0u8..4, 0u8..4), 0..8),
        prop::collection::vec((0u8..4, 0u8..4), 0..6),
    )
        .prop_map(|(requests, leases, prefilled)| Case {
            requests,
            leases,
            prefilled,
        })
}

fn lease_id(k: u8, slot: SlotKey) -> Uuid {
    Uuid::from_u128(
        u128::from(k) << 64
            | u128::from(slot.date.day() as u8) << 8
            | u128::from(slot.start.minute() as u8),
    )
}

fn kiosk(n: u8) -> KioskId {
    KioskId(Uuid::from_u128(u128::from(n) + 1))
}

impl Case {
    /// The starting capacity: prefilled places, then leases wherever the pool still has room.
    fn capacity(&self) -> Capacity {
        let mut capacity = Capacity::default();
        for (day, index) in &self.prefilled {
            let counts = capacity
                .slots
                .entry((service(), slot_of(*day, *index)))
                .or_insert(SlotCounts {
                    places: 2,
                    taken: 0,
                    held: 0,
                });
            if counts.taken + counts.held < counts.places {
                counts.taken += 1;
            }
        }
        for (k, day, index) in &self.leases {
            let slot = slot_of(*day, *index);
            let counts = capacity
                .slots
                .entry((service(), slot))
                .or_insert(SlotCounts {
                    places: 2,
                    taken: 0,
                    held: 0,
                });
            if counts.taken + counts.held < counts.places {
                counts.held += 1;
                capacity
                    .leases
                    .entry((kiosk(*k), service(), slot))
                    .or_insert(LeaseEntry {
                        id: lease_id(*k, slot),
                        granted: 0,
                        used: 0,
                        expires_at_ms: now().as_millisecond() + 1_000_000,
                    })
                    .granted += 1;
            }
        }
        capacity
    }

    fn incoming(&self) -> Vec<Incoming> {
        self.requests
            .iter()
            .enumerate()
            .map(|(i, (k, day, index, lease, offset))| {
                let slot = slot_of(*day, *index);
                Incoming {
                    kiosk: kiosk(*k),
                    request: Request {
                        id: Uuid::from_u128(1000 + i as u128),
                        kind: RequestKind::Book,
                        service: service(),
                        date: slot.date,
                        time: slot.start,
                        surname: "X".into(),
                        given_names: String::new(),
                        phone: None,
                        booking_code: String::new(),
                        created_at_ms: now().as_millisecond() - 5000 + offset,
                        lease: lease.then(|| lease_id(*k, slot)),
                        cancels: None,
                        permit: None,
                        sealed: None,
                        moves: None,
                    },
                }
            })
            .collect()
    }
}

fn run(case: &Case, incoming: Vec<Incoming>) -> (Vec<coper_shared::decide::Decision>, Capacity) {
    run_with(case.capacity(), incoming)
}

fn run_with(
    mut capacity: Capacity,
    mut incoming: Vec<Incoming>,
) -> (Vec<coper_shared::decide::Decision>, Capacity) {
    let rules = rules();
    let holidays = HolidayCalendar::default();
    let tz = TimeZone::get("Europe/Rome").unwrap();
    let agendas = BTreeMap::from([(service(), Agenda::new(&rules, &holidays, &tz))]);
    incoming.reverse();
    let decisions = decide(
        incoming,
        &mut capacity,
        &agendas,
        now(),
        &RequestLimits::default(),
    );
    (decisions, capacity)
}

proptest! {
    /// Invariant 1: taken plus held never exceeds places, whatever the batch.
    #[test]
    fn no_slot_is_ever_overbooked(case in case()) {
        let (decisions, capacity) = run(&case, case.incoming());
        for counts in capacity.slots.values() {
            prop_assert!(counts.taken + counts.held <= counts.places, "{counts:?}");
        }
        let booked = decisions.iter().filter(|d| matches!(d.outcome, Outcome::Confirmed | Outcome::Relocated)).count() as u32;
        let before: u32 = case.capacity().slots.values().map(|c| c.taken).sum();
        let after: u32 = capacity.slots.values().map(|c| c.taken).sum();
        prop_assert_eq!(after, before + booked);
    }

    /// Invariant 3: a request that claims a lease the kiosk holds is confirmed where it asked, as
    /// long as the kiosk has not used more places than it was leased.
    #[test]
    fn lease_bookings_are_confirmed_in_place(case in case()) {
        let start = case.capacity();
        let (decisions, _) = run(&case, case.incoming());
        let requests: BTreeMap<Uuid, Request> = case.incoming().into_iter().map(|i| (i.request.id, i.request)).collect();
        let mut used: BTreeMap<(KioskId, SlotKey), u32> = BTreeMap::new();
        for d in &decisions {
            let r = &requests[&d.request];
            let Some(lease) = start.leases.get(&(d.kiosk, service(), r.slot())) else { continue };
            if r.lease != Some(lease.id) { continue }
            let n = used.entry((d.kiosk, r.slot())).or_default();
            if *n < lease.granted {
                *n += 1;
                prop_assert_eq!(d.outcome, Outcome::Confirmed);
                prop_assert_eq!(d.slot, r.slot());
                prop_assert!(d.used_lease);
            }
        }
    }

    /// Ties are broken by creation time then id: any arrival order gives the same verdicts.
    #[test]
    fn the_same_requests_in_any_order_give_the_same_verdicts(case in case(), seed in any::<u64>()) {
        let (mut a, _) = run(&case, case.incoming());
        let mut shuffled = case.incoming();
        let mut rng = seed;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        // Invariant 5: a request delivered twice is decided once, even with another clock.
        if let Some(first) = shuffled.first().cloned() {
            let mut late = first.clone();
            late.request.created_at_ms += 1_000_000;
            shuffled.push(first);
            shuffled.push(late);
        }
        let (mut b, _) = run(&case, shuffled);
        a.sort_by_key(|d| d.request);
        b.sort_by_key(|d| d.request);
        prop_assert_eq!(a, b);
    }

    /// A malformed request (a name of a megabyte, control characters, no surname, a phone of a
    /// page) is rejected on its own, wherever it falls in the batch, and every other request is
    /// decided exactly as if it had not been there.
    #[test]
    fn bad_requests_are_rejected_alone(
        case in case(),
        bad in proptest::collection::vec((0u8..4, 0u8..4, -5000i64..5000, 0u8..4), 1..6),
    ) {
        let (mut clean, _) = run(&case, case.incoming());
        let mut mixed = case.incoming();
        for (n, (day, index, offset, flaw)) in bad.iter().enumerate() {
            let slot = slot_of(*day, *index);
            let (surname, phone) = match flaw {
                0 => ("X".repeat(1_000_000), None),
                1 => ("Rossi\u{0}".to_owned(), None),
                2 => (" ".to_owned(), None),
                _ => ("Rossi".to_owned(), Some("3".repeat(5_000))),
            };
            mixed.push(Incoming {
                kiosk: KioskId(Uuid::from_u128(1)),
                request: Request {
                    id: Uuid::from_u128(9_000_000 + n as u128),
                    kind: RequestKind::Book,
                    service: service(),
                    date: slot.date,
                    time: slot.start,
                    surname,
                    given_names: String::new(),
                    phone,
                    booking_code: String::new(),
                    created_at_ms: now().as_millisecond() + offset,
                    lease: None,
                    cancels: None,
                    permit: None,
                    sealed: None,
                    moves: None,
                },
            });
        }
        let (mixed, _) = run(&case, mixed);
        let (mut good, rejected): (Vec<_>, Vec<_>) =
            mixed.into_iter().partition(|d| d.request.as_u128() < 9_000_000);
        prop_assert_eq!(rejected.len(), bad.len());
        for d in &rejected {
            prop_assert_eq!(d.outcome, Outcome::Rejected);
            prop_assert_eq!(d.reason, Some("invalid_request"));
        }
        clean.sort_by_key(|d| d.request);
        good.sort_by_key(|d| d.request);
        prop_assert_eq!(clean, good);
    }

    /// However many requests one kiosk sends, the places it and its partner body hold on a day
    /// and in a week never pass their quotas; a request the quota refuses says so.
    #[test]
    fn quotas_are_never_exceeded(
        case in case(),
        kiosk_quota in (0u32..4, 0u32..6),
        partner_quota in (0u32..5, 0u32..8),
        held_by_others in prop::collection::vec(0u8..4, 0..4),
    ) {
        let mut capacity = case.capacity();
        capacity.leases.clear();
        let kiosk_quota = Quota { per_day: kiosk_quota.0, per_week: kiosk_quota.1 };
        let partner_quota = Quota { per_day: partner_quota.0, per_week: partner_quota.1 };
        capacity.quotas = Quotas {
            kiosk: Allowance::new(kiosk_quota),
            partner: Allowance::new(partner_quota),
        };
        // Other kiosks of the same body already hold places (perhaps past the quota, set later).
        for day in &held_by_others {
            *capacity.quotas.partner.held.entry(slot_of(*day, 0).date).or_default() += 1;
        }
        let partner_before = capacity.quotas.partner.held.clone();
        // Every request from the one kiosk being decided, none claiming a lease.
        let incoming: Vec<Incoming> = case.incoming().into_iter().map(|mut i| {
            i.kiosk = kiosk(0);
            i.request.lease = None;
            i
        }).collect();
        let (decisions, _) = run_with(capacity, incoming);
        let mut kiosk_days: BTreeMap<jiff::civil::Date, u32> = BTreeMap::new();
        let mut partner_days = partner_before.clone();
        for d in decisions.iter().filter(|d| matches!(d.outcome, Outcome::Confirmed | Outcome::Relocated)) {
            let date = d.slot.date;
            let before_day = partner_days.get(&date).copied().unwrap_or(0);
            let week: u32 = partner_days.iter().filter(|(day, _)| week_start(**day) == week_start(date)).map(|(_, n)| n).sum();
            prop_assert!(before_day < partner_quota.per_day && week < partner_quota.per_week, "partner over quota on {date}");
            *partner_days.entry(date).or_default() += 1;
            *kiosk_days.entry(date).or_default() += 1;
        }
        for (day, n) in &kiosk_days {
            prop_assert!(*n <= kiosk_quota.per_day);
            let week: u32 = kiosk_days.iter().filter(|(d, _)| week_start(**d) == week_start(*day)).map(|(_, n)| n).sum();
            prop_assert!(week <= kiosk_quota.per_week);
        }
        for d in decisions.iter().filter(|d| d.outcome == Outcome::Rejected) {
            prop_assert!(matches!(d.reason, Some("quota_reached" | "no_free_slot")), "{:?}", d.reason);
        }
    }
}

/// The appointment a permit was booked with before the batch (permits 0–2 have one).
fn earlier_booking(permit: i64) -> Uuid {
    Uuid::from_u128(77_000 + permit as u128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// One active booking per person and service: whatever a batch brings (second bookings,
    /// moves of the right booking, of a wrong one, of one being served), each permit ends with at
    /// most one active booking, a move is granted only for the booking it names, and a refused
    /// booking says `already_booked`.
    #[test]
    fn a_person_never_holds_two_active_bookings(
        requests in prop::collection::vec(
            (0u8..3, 0u8..4, 0u8..4, 0i64..6, 0u8..3, 0i64..1000), 0..30),
        served in 0i64..4,
    ) {
        let mut capacity = Capacity::default();
        for permit in 0..3 {
            let slot = slot_of(0, permit as u8);
            capacity.slots.insert((service(), slot), SlotCounts { places: 2, taken: 1, held: 0 });
            capacity.permits.insert((permit, service()), ActiveBooking {
                appointment: Some(earlier_booking(permit)),
                slot,
                // One of them is at the counter already.
                movable: permit != served,
                request: None,
                this_kiosk: false,
                this_body: false,
            });
        }
        let incoming: Vec<Incoming> = requests
            .iter()
            .enumerate()
            .map(|(i, (k, day, index, permit, moves, offset))| {
                let slot = slot_of(*day, *index);
                Incoming {
                    kiosk: kiosk(*k),
                    request: Request {
                        id: Uuid::from_u128(5000 + i as u128),
                        kind: RequestKind::Book,
                        service: service(),
                        date: slot.date,
                        time: slot.start,
                        surname: "X".into(),
                        given_names: String::new(),
                        phone: None,
                        booking_code: String::new(),
                        created_at_ms: now().as_millisecond() - 5000 + offset,
                        lease: None,
                        cancels: None,
                        permit: Some(*permit),
                        sealed: None,
                        moves: match moves {
                            0 => None,
                            1 => Some(earlier_booking(*permit)),
                            _ => Some(Uuid::from_u128(1)),
                        },
                    },
                }
            })
            .collect();
        let asked: BTreeMap<Uuid, Request> =
            incoming.iter().map(|i| (i.request.id, i.request.clone())).collect();
        let (decisions, _) = run_with(capacity, incoming);
        for permit in 0..6 {
            let booked = decisions
                .iter()
                .filter(|d| asked[&d.request].permit == Some(permit))
                .filter(|d| matches!(d.outcome, Outcome::Confirmed | Outcome::Relocated))
                .collect::<Vec<_>>();
            let moved = booked.iter().filter(|d| d.moves.is_some()).count();
            let earlier = usize::from(permit < 3);
            prop_assert!(booked.len() <= 1, "permit {permit}: {booked:?}");
            prop_assert!(earlier + booked.len() - moved <= 1, "permit {permit}: two active");
            for d in &booked {
                if let Some(replaced) = d.moves {
                    prop_assert_eq!(replaced, earlier_booking(permit));
                    prop_assert_eq!(asked[&d.request].moves, Some(replaced));
                    prop_assert!(permit != served, "a person being served is never moved");
                }
            }
        }
        for d in decisions.iter().filter(|d| d.outcome == Outcome::Rejected) {
            let r = &asked[&d.request];
            let permit = r.permit.unwrap();
            if permit < 3 && !(r.moves == Some(earlier_booking(permit)) && permit != served) {
                prop_assert_eq!(d.reason, Some("already_booked"));
            }
        }
    }
}
