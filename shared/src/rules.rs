//! A service's opening rules: when its counters are open, how long a slot lasts, how many people
//! each slot takes, and how far ahead and how soon one may book.
//!
//! [`ServiceRules::new`] checks every rule once (ranges that overlap, slots longer than their range,
//! zero places, two exceptions for one date, …), so the [`crate::agenda`] engine, which only ever
//! receives a `ServiceRules`, never fails: it answers with slots and reasons.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::ids::ServiceId;

/// A span of opening hours on one day, cut into slots of `slot_minutes`, each taking `places`
/// people (the number of counters open).
///
/// Slots start at `start` and every `slot_minutes` after it; a last piece shorter than a slot is
/// not offered (09:00–12:30 with 20-minute slots ends with the 12:00 slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningRange {
    pub start: Time,
    pub end: Time,
    pub slot_minutes: u16,
    pub places: u16,
}

impl OpeningRange {
    /// From `start` to `end`, a slot every `slot_minutes`, each with `places` places.
    pub const fn new(start: Time, end: Time, slot_minutes: u16, places: u16) -> Self {
        Self {
            start,
            end,
            slot_minutes,
            places,
        }
    }

    /// Start times of this range's slots, in order, as minutes since midnight.
    pub(crate) fn slot_starts(&self) -> impl Iterator<Item = u16> + '_ {
        let (start, end, step) = (
            minutes_of(self.start),
            minutes_of(self.end),
            self.slot_minutes,
        );
        (0..)
            .map(move |i: u16| start + i * step)
            .take_while(move |m| m + step <= end)
    }

    /// This range's slots as wall-clock times, in order.
    pub fn slot_times(&self) -> impl Iterator<Item = SlotTime> + '_ {
        self.slot_starts().map(|start| SlotTime {
            start: time_of(start),
            end: time_of(start + self.slot_minutes),
            places: self.places,
        })
    }

    fn check(&self) -> Result<(), RuleError> {
        if self.start >= self.end {
            return Err(RuleError::EmptyRange {
                start: self.start,
                end: self.end,
            });
        }
        if self.slot_minutes == 0 {
            return Err(RuleError::ZeroSlotLength);
        }
        if self.start.subsec_nanosecond() != 0
            || self.start.second() != 0
            || self.end.second() != 0
            || self.end.subsec_nanosecond() != 0
        {
            return Err(RuleError::SecondsInRange);
        }
        let length = minutes_of(self.end) - minutes_of(self.start);
        if self.slot_minutes > length {
            return Err(RuleError::SlotLongerThanRange {
                slot_minutes: self.slot_minutes,
                start: self.start,
                end: self.end,
            });
        }
        if self.places == 0 {
            return Err(RuleError::ZeroPlaces {
                start: self.start,
                end: self.end,
            });
        }
        Ok(())
    }
}

/// One slot of a day's opening, without its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTime {
    pub start: Time,
    pub end: Time,
    pub places: u16,
}

/// The wall-clock time `minutes` after midnight, within a day a checked range keeps them to.
fn time_of(minutes: u16) -> Time {
    Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0)
        .expect("slot times stay within the day they were checked against")
}

/// Minutes since midnight of a wall-clock time.
pub(crate) fn minutes_of(t: Time) -> u16 {
    (t.hour() as u16) * 60 + t.minute() as u16
}

/// Opening hours that repeat every week on `weekday`. A weekday may have several ranges
/// (morning and afternoon), which must not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyRule {
    #[serde(with = "iso_weekday")]
    pub weekday: Weekday,
    #[serde(flatten)]
    pub range: OpeningRange,
}

/// What happens on one particular date, overriding the weekly rules and the holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExceptionKind {
    /// The service is closed all day (a strike, a move, a system outage announced in advance).
    Closed { note: String },
    /// The service opens with these hours instead of the weekly ones: an extra counter day (as the
    /// Pavia Questura added for deliveries only), or different hours on an ordinary day.
    Open { ranges: Vec<OpeningRange> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateException {
    pub date: Date,
    #[serde(flatten)]
    pub kind: ExceptionKind,
}

/// Raw rules as an administrator or a configuration file states them, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRulesDraft {
    pub service: ServiceId,
    pub weekly: Vec<WeeklyRule>,
    pub exceptions: Vec<DateException>,
    /// How many days ahead one may book: the last bookable date is today plus this.
    pub horizon_days: u16,
    /// How soon one may book: a slot must start at least this many minutes from now.
    pub lead_minutes: u32,
}

/// Checked rules of one service. Build with [`ServiceRules::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRules {
    service: ServiceId,
    /// Ranges per weekday (index 0 = Monday), sorted by start.
    weekly: [Vec<OpeningRange>; 7],
    /// The slots of those ranges, in order, made once: the agenda engine walks hundreds of days.
    #[serde(skip)]
    weekly_slots: [Vec<SlotTime>; 7],
    exceptions: BTreeMap<Date, ExceptionKind>,
    horizon_days: u16,
    lead_minutes: u32,
}

/// The longest booking horizon accepted: two years is already far beyond any Questura's practice.
pub const MAX_HORIZON_DAYS: u16 = 730;
/// The longest lead time accepted: thirty days.
pub const MAX_LEAD_MINUTES: u32 = 30 * 24 * 60;

/// Why a set of rules cannot be used. Messages are in Italian: an administrator reads them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("la fascia oraria {}–{} è vuota: l'inizio deve precedere la fine", hh_mm(*start), hh_mm(*end))]
    EmptyRange { start: Time, end: Time },
    #[error("la durata di uno slot deve essere di almeno un minuto")]
    ZeroSlotLength,
    #[error("gli orari si indicano in ore e minuti, senza secondi")]
    SecondsInRange,
    #[error("uno slot di {slot_minutes} minuti non entra nella fascia {}–{}", hh_mm(*start), hh_mm(*end))]
    SlotLongerThanRange {
        slot_minutes: u16,
        start: Time,
        end: Time,
    },
    #[error("la fascia {}–{} ha 0 posti: indicare almeno uno sportello", hh_mm(*start), hh_mm(*end))]
    ZeroPlaces { start: Time, end: Time },
    #[error("le fasce {first} e {second} di {day} si sovrappongono")]
    OverlappingRanges {
        day: String,
        first: String,
        second: String,
    },
    #[error("la data {0} ha più di un'eccezione: indicarne una sola")]
    DuplicateException(Date),
    #[error("l'orizzonte di prenotazione deve essere tra 1 e {MAX_HORIZON_DAYS} giorni")]
    HorizonOutOfRange,
    #[error("il preavviso minimo non può superare {MAX_LEAD_MINUTES} minuti (30 giorni)")]
    LeadTimeOutOfRange,
}

impl RuleError {
    /// Stable machine-readable code, for the API and for translations.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyRange { .. } => "empty_range",
            Self::ZeroSlotLength => "zero_slot_length",
            Self::SecondsInRange => "seconds_in_range",
            Self::SlotLongerThanRange { .. } => "slot_longer_than_range",
            Self::ZeroPlaces { .. } => "zero_places",
            Self::OverlappingRanges { .. } => "overlapping_ranges",
            Self::DuplicateException(_) => "duplicate_exception",
            Self::HorizonOutOfRange => "horizon_out_of_range",
            Self::LeadTimeOutOfRange => "lead_time_out_of_range",
        }
    }
}

impl ServiceRules {
    pub fn new(draft: ServiceRulesDraft) -> Result<Self, RuleError> {
        if draft.horizon_days == 0 || draft.horizon_days > MAX_HORIZON_DAYS {
            return Err(RuleError::HorizonOutOfRange);
        }
        if draft.lead_minutes > MAX_LEAD_MINUTES {
            return Err(RuleError::LeadTimeOutOfRange);
        }
        let mut weekly: [Vec<OpeningRange>; 7] = Default::default();
        for rule in &draft.weekly {
            rule.range.check()?;
            weekly[weekday_index(rule.weekday)].push(rule.range);
        }
        for (index, ranges) in weekly.iter_mut().enumerate() {
            sort_and_check_overlap(ranges, || italian_weekday(weekday_from_index(index)).into())?;
        }
        let mut exceptions = BTreeMap::new();
        for exception in draft.exceptions {
            let mut kind = exception.kind;
            if let ExceptionKind::Open { ranges } = &mut kind {
                for range in ranges.iter() {
                    range.check()?;
                }
                sort_and_check_overlap(ranges, || exception.date.to_string())?;
                if ranges.is_empty() {
                    // An "open" day with no hours is a closure; say so instead of guessing.
                    kind = ExceptionKind::Closed {
                        note: String::new(),
                    };
                }
            }
            if exceptions.insert(exception.date, kind).is_some() {
                return Err(RuleError::DuplicateException(exception.date));
            }
        }
        let weekly_slots = weekly
            .each_ref()
            .map(|ranges| ranges.iter().flat_map(OpeningRange::slot_times).collect());
        Ok(Self {
            service: draft.service,
            weekly,
            weekly_slots,
            exceptions,
            horizon_days: draft.horizon_days,
            lead_minutes: draft.lead_minutes,
        })
    }

    pub fn service(&self) -> &ServiceId {
        &self.service
    }

    pub fn horizon_days(&self) -> u16 {
        self.horizon_days
    }

    pub fn lead_minutes(&self) -> u32 {
        self.lead_minutes
    }

    /// The weekly ranges of `weekday`, sorted by start.
    pub fn weekly_ranges(&self, weekday: Weekday) -> &[OpeningRange] {
        &self.weekly[weekday_index(weekday)]
    }

    /// The slots of `weekday`'s weekly ranges, in order.
    pub fn weekly_slots(&self, weekday: Weekday) -> &[SlotTime] {
        &self.weekly_slots[weekday_index(weekday)]
    }

    pub fn exception_on(&self, date: Date) -> Option<&ExceptionKind> {
        self.exceptions.get(&date)
    }

    /// The rules back in the form they were stated, e.g. to edit or store them.
    pub fn to_draft(&self) -> ServiceRulesDraft {
        let weekly = self
            .weekly
            .iter()
            .enumerate()
            .flat_map(|(index, ranges)| {
                ranges.iter().map(move |range| WeeklyRule {
                    weekday: weekday_from_index(index),
                    range: *range,
                })
            })
            .collect();
        let exceptions = self
            .exceptions
            .iter()
            .map(|(date, kind)| DateException {
                date: *date,
                kind: kind.clone(),
            })
            .collect();
        ServiceRulesDraft {
            service: self.service.clone(),
            weekly,
            exceptions,
            horizon_days: self.horizon_days,
            lead_minutes: self.lead_minutes,
        }
    }
}

fn sort_and_check_overlap(
    ranges: &mut [OpeningRange],
    day: impl Fn() -> String,
) -> Result<(), RuleError> {
    ranges.sort_by_key(|r| r.start);
    for pair in ranges.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(RuleError::OverlappingRanges {
                day: day(),
                first: format!("{}–{}", hh_mm(pair[0].start), hh_mm(pair[0].end)),
                second: format!("{}–{}", hh_mm(pair[1].start), hh_mm(pair[1].end)),
            });
        }
    }
    Ok(())
}

/// `HH:MM`, the way times are written on Italian forms and reminders.
pub fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn weekday_index(weekday: Weekday) -> usize {
    weekday.to_monday_zero_offset() as usize
}

fn weekday_from_index(index: usize) -> Weekday {
    Weekday::from_monday_zero_offset(index as i8).expect("index is below 7")
}

/// The Italian name of a weekday, lower case as written inside a sentence.
pub fn italian_weekday(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "lunedì",
        Weekday::Tuesday => "martedì",
        Weekday::Wednesday => "mercoledì",
        Weekday::Thursday => "giovedì",
        Weekday::Friday => "venerdì",
        Weekday::Saturday => "sabato",
        Weekday::Sunday => "domenica",
    }
}

/// Weekdays as ISO 8601 numbers (1 = Monday … 7 = Sunday) in serialised form.
pub mod iso_weekday {
    use jiff::civil::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(weekday: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i8(weekday.to_monday_one_offset())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let n = i8::deserialize(d)?;
        Weekday::from_monday_one_offset(n)
            .map_err(|_| D::Error::custom("weekday must be 1 (Monday) to 7 (Sunday)"))
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn range(start: Time, end: Time, slot_minutes: u16, places: u16) -> OpeningRange {
        OpeningRange::new(start, end, slot_minutes, places)
    }

    fn draft(weekly: Vec<WeeklyRule>) -> ServiceRulesDraft {
        ServiceRulesDraft {
            service: ServiceId::parse("consegna-pse").unwrap(),
            weekly,
            exceptions: vec![],
            horizon_days: 30,
            lead_minutes: 60,
        }
    }

    #[test]
    fn a_range_yields_whole_slots_only() {
        let r = range(time(9, 0, 0, 0), time(10, 10, 0, 0), 20, 2);
        let starts: Vec<u16> = r.slot_starts().collect();
        assert_eq!(starts, vec![540, 560, 580]);
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let monday = |r| WeeklyRule {
            weekday: Weekday::Monday,
            range: r,
        };
        let cases = [
            (
                vec![monday(range(time(12, 0, 0, 0), time(9, 0, 0, 0), 10, 1))],
                "empty_range",
            ),
            (
                vec![monday(range(time(9, 0, 0, 0), time(9, 20, 0, 0), 30, 1))],
                "slot_longer_than_range",
            ),
            (
                vec![monday(range(time(9, 0, 0, 0), time(12, 0, 0, 0), 10, 0))],
                "zero_places",
            ),
            (
                vec![monday(range(time(9, 0, 0, 0), time(12, 0, 0, 0), 0, 1))],
                "zero_slot_length",
            ),
            (
                vec![
                    monday(range(time(9, 0, 0, 0), time(12, 0, 0, 0), 10, 1)),
                    monday(range(time(11, 0, 0, 0), time(13, 0, 0, 0), 10, 1)),
                ],
                "overlapping_ranges",
            ),
        ];
        for (weekly, code) in cases {
            let err = ServiceRules::new(draft(weekly)).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
        let mut twice = draft(vec![]);
        let closed = DateException {
            date: date(2026, 12, 24),
            kind: ExceptionKind::Closed { note: "".into() },
        };
        twice.exceptions = vec![closed.clone(), closed];
        assert_eq!(
            ServiceRules::new(twice).unwrap_err().code(),
            "duplicate_exception"
        );
        let mut no_horizon = draft(vec![]);
        no_horizon.horizon_days = 0;
        assert_eq!(
            ServiceRules::new(no_horizon).unwrap_err().code(),
            "horizon_out_of_range"
        );
    }

    #[test]
    fn overlap_message_names_the_day_in_italian() {
        let monday = |r| WeeklyRule {
            weekday: Weekday::Monday,
            range: r,
        };
        let err = ServiceRules::new(draft(vec![
            monday(range(time(9, 0, 0, 0), time(12, 0, 0, 0), 10, 1)),
            monday(range(time(11, 30, 0, 0), time(13, 0, 0, 0), 10, 1)),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "le fasce 09:00–12:00 e 11:30–13:00 di lunedì si sovrappongono"
        );
    }

    #[test]
    fn rules_round_trip_through_their_draft_and_json() {
        let weekly = vec![WeeklyRule {
            weekday: Weekday::Thursday,
            range: range(time(14, 30, 0, 0), time(16, 30, 0, 0), 15, 2),
        }];
        let mut d = draft(weekly);
        d.exceptions = vec![DateException {
            date: date(2026, 12, 12),
            kind: ExceptionKind::Open {
                ranges: vec![range(time(9, 0, 0, 0), time(12, 0, 0, 0), 10, 3)],
            },
        }];
        let rules = ServiceRules::new(d.clone()).unwrap();
        assert_eq!(rules.to_draft(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"weekday\":4"), "{json}");
        let back: ServiceRulesDraft = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
