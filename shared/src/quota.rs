//! Quotas: how many places one kiosk, and one partner body with all its kiosks, may take per day
//! and per week, so that one kiosk (buggy, stolen or malicious) can never empty the agenda. Pure:
//! the server loads what each already holds around the dates asked and [`crate::decide`] counts
//! every booking, lease or not, against both.
//!
//! A week is the ISO week (Monday to Sunday) of the slot's date. Places are counted on the day of
//! the slot, not the day the booking was made: a quota limits what one office holds of each day.

use std::collections::BTreeMap;

use jiff::{ToSpan, civil::Date};

/// Places per day and per week. `u32::MAX` for "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_day: u32,
    pub per_week: u32,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota {
        per_day: u32::MAX,
        per_week: u32::MAX,
    };
}

/// What one holder (a kiosk, or a partner body) may take and already holds, by slot date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    pub quota: Quota,
    pub held: BTreeMap<Date, u32>,
}

impl Allowance {
    pub fn new(quota: Quota) -> Self {
        Self {
            quota,
            held: BTreeMap::new(),
        }
    }

    fn on(&self, date: Date) -> u32 {
        self.held.get(&date).copied().unwrap_or(0)
    }

    fn in_week_of(&self, date: Date) -> u32 {
        let monday = week_start(date);
        let sunday = monday.saturating_add(6.days());
        self.held.range(monday..=sunday).map(|(_, n)| n).sum()
    }

    /// Places still allowed on `date`: the smaller of what is left of its day and of its week.
    pub fn left_on(&self, date: Date) -> u32 {
        let day = self.quota.per_day.saturating_sub(self.on(date));
        let week = self.quota.per_week.saturating_sub(self.in_week_of(date));
        day.min(week)
    }

    fn take(&mut self, date: Date) {
        *self.held.entry(date).or_default() += 1;
    }

    fn give_back(&mut self, date: Date) {
        if let Some(n) = self.held.get_mut(&date) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Default for Allowance {
    fn default() -> Self {
        Self::new(Quota::UNLIMITED)
    }
}

/// The allowances a booking from one kiosk counts against: the kiosk's own and its partner body's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quotas {
    pub kiosk: Allowance,
    pub partner: Allowance,
}

impl Quotas {
    /// Places a booking on `date` may still take.
    pub fn left_on(&self, date: Date) -> u32 {
        self.kiosk.left_on(date).min(self.partner.left_on(date))
    }

    pub fn allows(&self, date: Date) -> bool {
        self.left_on(date) > 0
    }

    /// Count one booking on `date`.
    pub fn take(&mut self, date: Date) {
        self.kiosk.take(date);
        self.partner.take(date);
    }

    /// A booking on `date` was cancelled.
    pub fn give_back(&mut self, date: Date) {
        self.kiosk.give_back(date);
        self.partner.give_back(date);
    }

    /// A place another kiosk of the body held on `date` is given back (a move of its booking).
    pub fn partner_gives_back(&mut self, date: Date) {
        self.partner.give_back(date);
    }

    /// A place another kiosk of the body held on `date` is taken again (a move undone).
    pub fn partner_takes(&mut self, date: Date) {
        self.partner.take(date);
    }

    /// The dates whose holdings matter for a booking between `from` and `to`: whole weeks.
    pub fn window(from: Date, to: Date) -> (Date, Date) {
        (week_start(from), week_start(to).saturating_add(6.days()))
    }
}

/// The Monday of `date`'s ISO week.
pub fn week_start(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.saturating_sub(back.days())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn a_day_and_its_week_both_bound_the_places_left() {
        let mut q = Quotas {
            kiosk: Allowance::new(Quota {
                per_day: 2,
                per_week: 3,
            }),
            partner: Allowance::default(),
        };
        let monday = date(2026, 12, 7);
        let tuesday = date(2026, 12, 8);
        q.take(monday);
        q.take(monday);
        assert!(!q.allows(monday), "day full");
        assert_eq!(q.left_on(tuesday), 1, "one left in the week");
        q.take(tuesday);
        assert!(!q.allows(tuesday), "week full");
        assert!(q.allows(date(2026, 12, 14)), "next week is a new week");
        q.give_back(monday);
        assert!(q.allows(monday));
    }

    #[test]
    fn the_partner_body_bounds_all_its_kiosks() {
        let mut q = Quotas {
            kiosk: Allowance::default(),
            partner: Allowance::new(Quota {
                per_day: 1,
                per_week: 10,
            }),
        };
        let day = date(2026, 12, 9);
        q.partner.held.insert(day, 1); // booked by another kiosk of the same body
        assert!(!q.allows(day));
    }

    proptest! {
        #[test]
        fn weeks_start_on_monday_and_hold_their_date(days in 0i64..4000) {
            let d = date(2020, 1, 1).saturating_add(days.days());
            let monday = week_start(d);
            prop_assert_eq!(monday.weekday(), jiff::civil::Weekday::Monday);
            prop_assert!(monday <= d && d < monday.saturating_add(7.days()));
            let (from, to) = Quotas::window(d, d);
            prop_assert!(from <= d && d <= to);
        }
    }
}
