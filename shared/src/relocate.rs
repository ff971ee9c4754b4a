//! When the Questura changes its hours or closes a day, some bookings lose their place. This
//! finds them and plans where each goes: the first free slot at or after its own, under the new
//! rules; a booking that fits nowhere before the horizon stays where it is and is listed for the
//! staff to call. Bookings are never dropped.
//!
//! Pure: the server loads the bookings and the rules, calls [`displaced`] then [`plan`], shows the
//! plan as a preview, and applies the same plan when the administrator confirms.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::agenda::{Agenda, DayPlan, Occupancy, Slot, SlotKey, TakenPlaces};

/// A booking that holds a place, in the order it was made (`seq`: earlier bookings keep their
/// place when a slot shrinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held<K> {
    pub id: K,
    pub slot: SlotKey,
    pub seq: u64,
}

/// Where a displaced booking goes: a new slot, or nowhere (it stays, to be handled by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move<K> {
    pub id: K,
    pub from: SlotKey,
    pub to: Option<Slot>,
}

/// Split `held` into the bookings that keep their place under `agenda` and those that lose it, in
/// slot order. `fixed` counts the places taken by what cannot move (people already checked in,
/// places leased to kiosks); the occupancy returned is `fixed` plus the bookings kept.
pub fn displaced<K: Clone>(
    agenda: &Agenda<'_>,
    held: &[Held<K>],
    fixed: TakenPlaces,
) -> (TakenPlaces, Vec<Held<K>>) {
    let mut by_slot: BTreeMap<SlotKey, Vec<&Held<K>>> = BTreeMap::new();
    for booking in held {
        by_slot.entry(booking.slot).or_default().push(booking);
    }
    let mut plans: BTreeMap<jiff::civil::Date, Vec<Slot>> = BTreeMap::new();
    let mut kept = fixed;
    let mut lost = Vec::new();
    for (key, mut bookings) in by_slot {
        bookings.sort_by_key(|b| b.seq);
        let slots = plans
            .entry(key.date)
            .or_insert_with(|| match agenda.day(key.date) {
                DayPlan::Open(slots) => slots,
                DayPlan::Closed(_) => Vec::new(),
            });
        let places = slots
            .iter()
            .find(|s| s.key() == key)
            .map_or(0, |s| s.places as usize);
        let room = places.saturating_sub(kept.taken(key) as usize);
        let keep = bookings.len().min(room);
        kept.add(key, keep as u32);
        lost.extend(bookings[keep..].iter().map(|b| (*b).clone()));
    }
    lost.sort_by_key(|b| (b.slot, b.seq));
    (kept, lost)
}

/// Plan a new slot for each of `lost`, in order, each at the first free slot at or after its own
/// that can be booked at `now`, counting `taken` and the moves planned before it.
pub fn plan<K: Clone>(
    agenda: &Agenda<'_>,
    mut taken: TakenPlaces,
    lost: &[Held<K>],
    now: Timestamp,
) -> Vec<Move<K>> {
    lost.iter()
        .map(|booking| {
            let from = booking.slot.date.to_datetime(booking.slot.start);
            let to = agenda.first_free(&taken, now, from).map(|free| free.slot);
            if let Some(slot) = to {
                taken.add(slot.key(), 1);
            }
            Move {
                id: booking.id.clone(),
                from: booking.slot,
                to,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use jiff::{
        civil::{Weekday, date, time},
        tz::TimeZone,
    };

    use super::*;
    use crate::{
        holidays::HolidayCalendar,
        ids::ServiceId,
        rules::{
            DateException, ExceptionKind, OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule,
        },
    };

    fn rules(closed: &[jiff::civil::Date], places: u16) -> ServiceRules {
        ServiceRules::new(ServiceRulesDraft {
            service: ServiceId::parse("consegna-pse").unwrap(),
            weekly: [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday]
                .into_iter()
                .map(|weekday| WeeklyRule {
                    weekday,
                    range: OpeningRange {
                        start: time(9, 0, 0, 0),
                        end: time(10, 0, 0, 0),
                        slot_minutes: 30,
                        places,
                    },
                })
                .collect(),
            exceptions: closed
                .iter()
                .map(|d| DateException {
                    date: *d,
                    kind: ExceptionKind::Closed {
                        note: "sciopero".into(),
                    },
                })
                .collect(),
            horizon_days: 30,
            lead_minutes: 0,
        })
        .unwrap()
    }

    fn at(day: i8, hour: i8, minute: i8) -> SlotKey {
        SlotKey {
            date: date(2026, 12, day),
            start: time(hour, minute, 0, 0),
        }
    }

    #[test]
    fn closing_a_day_moves_its_bookings_to_the_next_free_places_in_order() {
        let calendar = HolidayCalendar::new(None);
        let tz = TimeZone::get("Europe/Rome").unwrap();
        // Tuesday 1 December closed; Wednesday 2 has 2 places per slot, one taken at 9:00.
        let new = rules(&[date(2026, 12, 1)], 2);
        let agenda = Agenda::new(&new, &calendar, &tz);
        let held = vec![
            Held {
                id: "a",
                slot: at(1, 9, 0),
                seq: 1,
            },
            Held {
                id: "b",
                slot: at(1, 9, 0),
                seq: 2,
            },
            Held {
                id: "c",
                slot: at(1, 9, 30),
                seq: 3,
            },
            Held {
                id: "w",
                slot: at(2, 9, 0),
                seq: 0,
            },
        ];
        let (kept, lost) = displaced(&agenda, &held, TakenPlaces::default());
        assert_eq!(
            lost.iter().map(|h| h.id).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let now = "2026-11-30T08:00:00Z".parse().unwrap();
        let moves = plan(&agenda, kept, &lost, now);
        let to: Vec<_> = moves.iter().map(|m| m.to.map(|s| s.key())).collect();
        assert_eq!(
            to,
            [Some(at(2, 9, 0)), Some(at(2, 9, 30)), Some(at(2, 9, 30))]
        );
    }

    #[test]
    fn places_held_by_what_cannot_move_are_respected() {
        let calendar = HolidayCalendar::new(None);
        let tz = TimeZone::get("Europe/Rome").unwrap();
        let new = rules(&[date(2026, 12, 1)], 2);
        let agenda = Agenda::new(&new, &calendar, &tz);
        // Wednesday 9:00 has one place leased to a kiosk and one booking: full.
        let mut fixed = TakenPlaces::default();
        fixed.add(at(2, 9, 0), 1);
        let held = vec![
            Held {
                id: "w",
                slot: at(2, 9, 0),
                seq: 0,
            },
            Held {
                id: "a",
                slot: at(1, 9, 0),
                seq: 1,
            },
        ];
        let (kept, lost) = displaced(&agenda, &held, fixed);
        assert_eq!(lost.iter().map(|h| h.id).collect::<Vec<_>>(), ["a"]);
        let now = "2026-11-30T08:00:00Z".parse().unwrap();
        let moves = plan(&agenda, kept, &lost, now);
        assert_eq!(moves[0].to.map(|s| s.key()), Some(at(2, 9, 30)));
    }

    #[test]
    fn a_shrunk_slot_keeps_its_earliest_bookings() {
        let calendar = HolidayCalendar::new(None);
        let tz = TimeZone::get("Europe/Rome").unwrap();
        let new = rules(&[], 1);
        let agenda = Agenda::new(&new, &calendar, &tz);
        let held = vec![
            Held {
                id: "late",
                slot: at(1, 9, 0),
                seq: 9,
            },
            Held {
                id: "early",
                slot: at(1, 9, 0),
                seq: 1,
            },
        ];
        let (kept, lost) = displaced(&agenda, &held, TakenPlaces::default());
        assert_eq!(lost.iter().map(|h| h.id).collect::<Vec<_>>(), ["late"]);
        let now = "2026-11-30T08:00:00Z".parse().unwrap();
        let moves = plan(&agenda, kept, &lost, now);
        assert_eq!(moves[0].to.map(|s| s.key()), Some(at(1, 9, 30)));
    }

    #[test]
    fn with_no_room_before_the_horizon_a_booking_stays_and_is_listed() {
        let calendar = HolidayCalendar::new(None);
        let tz = TimeZone::get("Europe/Rome").unwrap();
        let closed: Vec<_> = (1..=31).map(|d| date(2026, 12, d)).collect();
        let new = rules(&closed, 1);
        let agenda = Agenda::new(&new, &calendar, &tz);
        let held = vec![Held {
            id: "x",
            slot: at(1, 9, 0),
            seq: 1,
        }];
        let (kept, lost) = displaced(&agenda, &held, TakenPlaces::default());
        let now = "2026-11-30T08:00:00Z".parse().unwrap();
        let moves = plan(&agenda, kept, &lost, now);
        assert_eq!(
            moves,
            vec![Move {
                id: "x",
                from: at(1, 9, 0),
                to: None
            }]
        );
    }
}
