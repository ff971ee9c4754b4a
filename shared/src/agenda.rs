//! The agenda engine: from a service's rules, the holidays and the places already taken, which
//! slots exist, which can be booked now, and the first and next free ones.
//!
//! Slots are wall-clock times in the Questura's time zone (a date and a start time), never bare
//! instants: a Tuesday 09:00 slot stays at 09:00 across a daylight-saving change. The time zone is
//! used only to compare a slot with `now` (is it past, inside the lead time?) and to skip a slot
//! whose wall-clock time does not exist on the night clocks go forward.
//!
//! The engine never fails: a query returns slots, or days with the reason they cannot be booked.

use std::collections::BTreeMap;

use jiff::{
    Timestamp, ToSpan,
    civil::{Date, DateTime, Time},
    tz::{AmbiguousOffset, TimeZone},
};
use serde::Serialize;

use crate::{
    holidays::{HolidayCalendar, HolidayKind},
    rules::{ExceptionKind, OpeningRange, ServiceRules, SlotTime},
};

/// One slot of a service: a wall-clock start on a date, its length and its places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Slot {
    pub date: Date,
    pub start: Time,
    pub end: Time,
    pub places: u16,
}

impl Slot {
    pub fn key(&self) -> SlotKey {
        SlotKey {
            date: self.date,
            start: self.start,
        }
    }

    pub fn start_datetime(&self) -> DateTime {
        self.date.to_datetime(self.start)
    }
}

/// What identifies a slot within one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SlotKey {
    pub date: Date,
    pub start: Time,
}

/// A slot together with how many of its places are still free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FreeSlot {
    pub slot: Slot,
    pub free: u16,
}

/// Places already taken (or held) per slot. The server counts confirmed appointments plus the
/// places leased to kiosks; a kiosk counts what its replica says plus its own pending requests.
pub trait Occupancy {
    fn taken(&self, key: SlotKey) -> u32;

    /// Places taken in each of `slots`, which are one day's in time order, in the same order.
    /// Provided: one [`Occupancy::taken`] each. A map answers with one walk over the day's
    /// entries ([`taken_in_order`]): the search for a free place asks for whole days, most of
    /// them full in a busy agenda.
    fn taken_each(&self, slots: &[Slot]) -> Vec<u32> {
        slots.iter().map(|slot| self.taken(slot.key())).collect()
    }
}

/// Places taken in each of `slots`, which are in time order (as [`Agenda::day`] gives them:
/// the rules keep a day's ranges sorted and apart), read from `entries`: the places taken per
/// slot in key order, from the first of `slots` on; absent slots are empty. One pass over both.
pub fn taken_in_order(slots: &[Slot], entries: impl Iterator<Item = (SlotKey, u32)>) -> Vec<u32> {
    debug_assert!(slots.is_sorted_by_key(Slot::key));
    let mut entries = entries.peekable();
    slots
        .iter()
        .map(|slot| {
            let key = slot.key();
            // Equality first: a slot with places taken is the next entry.
            loop {
                match entries.peek() {
                    Some((k, n)) if *k == key => {
                        let n = *n;
                        entries.next();
                        return n;
                    }
                    Some((k, _)) if *k < key => {
                        entries.next();
                    }
                    _ => return 0,
                }
            }
        })
        .collect()
}

/// The simplest [`Occupancy`]: a map from slot to places taken; absent slots are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenPlaces(pub BTreeMap<SlotKey, u32>);

impl TakenPlaces {
    pub fn add(&mut self, key: SlotKey, places: u32) {
        *self.0.entry(key).or_default() += places;
    }
}

impl Occupancy for TakenPlaces {
    fn taken(&self, key: SlotKey) -> u32 {
        self.0.get(&key).copied().unwrap_or(0)
    }

    fn taken_each(&self, slots: &[Slot]) -> Vec<u32> {
        let Some(first) = slots.first() else {
            return Vec::new();
        };
        let entries = self.0.range(first.key()..).map(|(k, n)| (*k, *n));
        taken_in_order(slots, entries)
    }
}

/// Why a day has no slots at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ClosedReason {
    /// A national holiday or the patron saint.
    Holiday { holiday: HolidayKind },
    /// Closed by an exception the administrator entered.
    Closure { note: String },
    /// The service has no weekly hours on this weekday.
    NotOpeningDay,
}

/// The slots of one day, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayPlan {
    Open(Vec<Slot>),
    Closed(ClosedReason),
}

/// Why an open day offers no bookable place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unbookable {
    /// Every slot has started already.
    Past,
    /// The slots left start sooner than the lead time allows.
    TooSoon,
    /// The day lies beyond the booking horizon.
    BeyondHorizon,
    /// Every bookable slot is taken.
    Full,
}

/// A day as a calendar shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySummary {
    pub date: Date,
    /// Places of all the day's slots (0 when closed).
    pub places: u32,
    /// Places taken in the day's slots.
    pub taken: u32,
    /// Free places in the slots that can still be booked now.
    pub free: u32,
    pub availability: DayAvailability,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DayAvailability {
    Bookable,
    Closed { reason: ClosedReason },
    Unbookable { reason: Unbookable },
}

/// Why one particular slot cannot be booked now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SlotRefusal {
    DayClosed { reason: ClosedReason },
    NoSuchSlot,
    Past,
    TooSoon,
    BeyondHorizon,
    Full,
}

/// One service's agenda, ready to answer queries: its rules, the Questura's holidays, its time zone.
#[derive(Debug, Clone, Copy)]
pub struct Agenda<'a> {
    pub rules: &'a ServiceRules,
    pub holidays: &'a HolidayCalendar,
    pub tz: &'a TimeZone,
}

/// The bounds `now` puts on booking: nothing before `earliest`, nothing after `last_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingWindow {
    pub now: Timestamp,
    /// A slot must start at or after this instant (now plus the lead time).
    pub earliest: Timestamp,
    /// The last date that may be booked (today in the Questura's zone plus the horizon).
    pub last_date: Date,
}

impl<'a> Agenda<'a> {
    pub fn new(rules: &'a ServiceRules, holidays: &'a HolidayCalendar, tz: &'a TimeZone) -> Self {
        Self {
            rules,
            holidays,
            tz,
        }
    }

    /// What `now` allows for this service.
    pub fn window(&self, now: Timestamp) -> BookingWindow {
        let today = now.to_zoned(self.tz.clone()).date();
        let earliest = now
            .checked_add((self.rules.lead_minutes() as i64).minutes())
            .unwrap_or(Timestamp::MAX);
        let last_date = today
            .checked_add((self.rules.horizon_days() as i32).days())
            .unwrap_or(Date::MAX);
        BookingWindow {
            now,
            earliest,
            last_date,
        }
    }

    /// The slots of `date` (whether or not they can still be booked), or why it is closed.
    ///
    /// Precedence: an exception the administrator entered for the date, then the holidays, then
    /// the weekly rules. An explicit extra opening on a holiday is therefore honoured.
    pub fn day(&self, date: Date) -> DayPlan {
        self.day_where(date, &self.clock_changes(date, date))
    }

    /// [`Agenda::day`], told which dates the clocks change near ([`Agenda::clock_changes`]).
    fn day_where(&self, date: Date, clock_changes: &ClockChanges) -> DayPlan {
        let exceptional: Vec<SlotTime>;
        let times: &[SlotTime] = match self.rules.exception_on(date) {
            Some(ExceptionKind::Closed { note }) => {
                return DayPlan::Closed(ClosedReason::Closure { note: note.clone() });
            }
            Some(ExceptionKind::Open { ranges }) => {
                exceptional = ranges.iter().flat_map(OpeningRange::slot_times).collect();
                &exceptional
            }
            None => {
                if let Some(holiday) = self.holidays.holiday_on(date) {
                    return DayPlan::Closed(ClosedReason::Holiday { holiday });
                }
                self.rules.weekly_slots(date.weekday())
            }
        };
        if times.is_empty() {
            return DayPlan::Closed(ClosedReason::NotOpeningDay);
        }
        let mut slots: Vec<Slot> = times
            .iter()
            .map(|t| Slot {
                date,
                start: t.start,
                end: t.end,
                places: t.places,
            })
            .collect();
        // Only near a change of the clocks can a wall-clock time not exist: the other days skip
        // the time-zone arithmetic per slot (a search walks hundreds of days).
        if clock_changes.near(date) {
            slots.retain(|slot| self.start_instant(slot).is_some());
        }
        DayPlan::Open(slots)
    }

    /// The dates from `first` to `last` on which, or a day either side of which, the time zone
    /// changes its offset (when in doubt, every date).
    fn clock_changes(&self, first: Date, last: Date) -> ClockChanges {
        let midnight = |date: Date| self.tz.to_timestamp(date.to_datetime(Time::midnight()));
        // A day's instants lie within a few hours of its midnight: a day's margin either side.
        let (Ok(from), Ok(until)) = (
            midnight(first).and_then(|t| t.checked_sub(24.hours())),
            midnight(last).and_then(|t| t.checked_add(48.hours())),
        ) else {
            return ClockChanges::Everywhere;
        };
        ClockChanges::Near(
            self.tz
                .following(from)
                .map(|transition| transition.timestamp())
                .take_while(|at| *at < until)
                .map(|at| at.to_zoned(self.tz.clone()).date())
                .collect(),
        )
    }

    /// The instant a slot starts, or `None` when its wall-clock time does not exist (it falls in
    /// the hour skipped when clocks go forward). In the repeated hour of the autumn change the
    /// first occurrence counts.
    pub fn start_instant(&self, slot: &Slot) -> Option<Timestamp> {
        let ambiguous = self.tz.to_ambiguous_timestamp(slot.start_datetime());
        let offset = match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { .. } => return None,
            AmbiguousOffset::Fold { before, .. } => before,
        };
        offset.to_timestamp(slot.start_datetime()).ok()
    }

    /// Whether `slot` can be booked at `window.now`, and if not, why.
    fn refusal(&self, slot: &Slot, window: &BookingWindow, free: u16) -> Option<SlotRefusal> {
        if slot.date > window.last_date {
            return Some(SlotRefusal::BeyondHorizon);
        }
        let start = self.start_instant(slot)?;
        if start < window.now {
            return Some(SlotRefusal::Past);
        }
        if start < window.earliest {
            return Some(SlotRefusal::TooSoon);
        }
        if free == 0 {
            return Some(SlotRefusal::Full);
        }
        None
    }

    /// Check one slot asked for by date and start time: the slot with its free places, or why
    /// it cannot be booked now.
    pub fn check_slot(
        &self,
        taken: &impl Occupancy,
        now: Timestamp,
        key: SlotKey,
    ) -> Result<FreeSlot, SlotRefusal> {
        let slots = match self.day(key.date) {
            DayPlan::Closed(reason) => return Err(SlotRefusal::DayClosed { reason }),
            DayPlan::Open(slots) => slots,
        };
        let slot = slots
            .into_iter()
            .find(|s| s.start == key.start)
            .ok_or(SlotRefusal::NoSuchSlot)?;
        let free = free_places(&slot, taken);
        match self.refusal(&slot, &self.window(now), free) {
            Some(refusal) => Err(refusal),
            None => Ok(FreeSlot { free, slot }),
        }
    }

    /// Bookable slots with a free place, in time order, starting at wall-clock `from` (or at the
    /// earliest moment `now` allows, whichever is later) and ending at the booking horizon.
    pub fn free_slots<'s>(
        &'s self,
        taken: &'s impl Occupancy,
        now: Timestamp,
        from: DateTime,
    ) -> impl Iterator<Item = FreeSlot> + 's {
        let window = self.window(now);
        let today = now.to_zoned(self.tz.clone()).date();
        let first_date = from.date().max(today);
        let clock_changes = self.clock_changes(first_date, window.last_date);
        first_date
            .series(1.day())
            .take_while(move |d| *d <= window.last_date)
            .flat_map(move |date| {
                let DayPlan::Open(mut slots) = self.day_where(date, &clock_changes) else {
                    return Vec::new();
                };
                if date == from.date() {
                    slots.retain(|slot| slot.start_datetime() >= from);
                }
                // The day's places in one walk, and its full slots dropped before the time-zone
                // arithmetic of `refusal`: in a busy agenda most days the search walks past are
                // full.
                let taken_each = taken.taken_each(&slots);
                slots
                    .into_iter()
                    .zip(taken_each)
                    .map(|(slot, taken)| FreeSlot {
                        free: places_left(&slot, taken),
                        slot,
                    })
                    .filter(|free| {
                        free.free > 0 && self.refusal(&free.slot, &window, free.free).is_none()
                    })
                    .collect()
            })
    }

    /// The first slot with a free place at or after `from` that can be booked at `now`.
    pub fn first_free(
        &self,
        taken: &impl Occupancy,
        now: Timestamp,
        from: DateTime,
    ) -> Option<FreeSlot> {
        self.free_slots(taken, now, from).next()
    }

    /// "Another day": the first free slot of each of the next `count` days that have one, starting
    /// at `from`. PrenotaFacile shows ten.
    pub fn options(
        &self,
        taken: &impl Occupancy,
        now: Timestamp,
        from: DateTime,
        count: usize,
    ) -> Vec<FreeSlot> {
        let mut options: Vec<FreeSlot> = Vec::with_capacity(count);
        for candidate in self.free_slots(taken, now, from) {
            if options.len() == count {
                break;
            }
            if options.last().map(|o| o.slot.date) != Some(candidate.slot.date) {
                options.push(candidate);
            }
        }
        options
    }

    /// Every day from `from` to `to` inclusive, with its places and why it cannot be booked.
    pub fn days(
        &self,
        taken: &impl Occupancy,
        now: Timestamp,
        from: Date,
        to: Date,
    ) -> Vec<DaySummary> {
        let window = self.window(now);
        from.series(1.day())
            .take_while(|d| *d <= to)
            .map(|date| self.summarise(date, taken, &window))
            .collect()
    }

    fn summarise(&self, date: Date, taken: &impl Occupancy, window: &BookingWindow) -> DaySummary {
        let slots = match self.day(date) {
            DayPlan::Closed(reason) => {
                return DaySummary {
                    date,
                    places: 0,
                    taken: 0,
                    free: 0,
                    availability: DayAvailability::Closed { reason },
                };
            }
            DayPlan::Open(slots) => slots,
        };
        let places = slots.iter().map(|s| u32::from(s.places)).sum();
        let taken_total = slots
            .iter()
            .map(|s| taken.taken(s.key()).min(u32::from(s.places)))
            .sum();
        let refusals: Vec<Option<SlotRefusal>> = slots
            .iter()
            .map(|s| self.refusal(s, window, free_places(s, taken)))
            .collect();
        let free = slots
            .iter()
            .zip(&refusals)
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(slot, _)| u32::from(free_places(slot, taken)))
            .sum();
        // The day's verdict is the "best" reason among its slots: if any slot is merely full, the
        // day is full rather than past.
        let availability = if free > 0 {
            DayAvailability::Bookable
        } else {
            let reason = [
                SlotRefusal::Full,
                SlotRefusal::TooSoon,
                SlotRefusal::Past,
                SlotRefusal::BeyondHorizon,
            ]
            .into_iter()
            .find(|wanted| refusals.iter().any(|r| r.as_ref() == Some(wanted)))
            .map(|r| match r {
                SlotRefusal::Full => Unbookable::Full,
                SlotRefusal::TooSoon => Unbookable::TooSoon,
                SlotRefusal::Past => Unbookable::Past,
                _ => Unbookable::BeyondHorizon,
            })
            .unwrap_or(Unbookable::Past);
            DayAvailability::Unbookable { reason }
        };
        DaySummary {
            date,
            places,
            taken: taken_total,
            free,
            availability,
        }
    }
}

/// Free places of a slot: never negative, even if more were taken than it has (which the store
/// forbids, but a kiosk's replica may briefly believe).
pub fn free_places(slot: &Slot, taken: &impl Occupancy) -> u16 {
    places_left(slot, taken.taken(slot.key()))
}

fn places_left(slot: &Slot, taken: u32) -> u16 {
    u32::from(slot.places).saturating_sub(taken) as u16
}

/// Where the clocks change within a stretch of dates (see [`Agenda::clock_changes`]).
enum ClockChanges {
    /// The dates of the changes: the day before and the day after are near too.
    Near(Vec<Date>),
    /// The changes could not be worked out: treat every day as near one.
    Everywhere,
}

impl ClockChanges {
    fn near(&self, date: Date) -> bool {
        match self {
            Self::Near(changes) => changes.iter().any(|change| {
                change.yesterday().ok() == Some(date)
                    || *change == date
                    || change.tomorrow().ok() == Some(date)
            }),
            Self::Everywhere => true,
        }
    }
}
