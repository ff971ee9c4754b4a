//! Italian public holidays, computed for any year.
//!
//! Public offices are closed on the national holidays (Law 260/1949 and later amendments) and on the
//! feast of the city's patron saint, which is a local holiday and therefore configurable
//! ([`PatronSaint`]). Easter Monday moves every year, so it is computed (Gregorian computus) rather
//! than listed.

use jiff::civil::{Date, date};
use serde::{Deserialize, Serialize};

/// Which holiday a date is. The variant is the stable code; [`HolidayKind::italian_name`] is the
/// default label, and front ends translate from [`HolidayKind::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    NewYear,
    Epiphany,
    Easter,
    EasterMonday,
    LiberationDay,
    LabourDay,
    RepublicDay,
    Assumption,
    SaintFrancis,
    AllSaints,
    ImmaculateConception,
    Christmas,
    SaintStephen,
    PatronSaint,
}

impl HolidayKind {
    /// Stable machine-readable code, as used in the JSON API.
    pub fn code(self) -> &'static str {
        match self {
            Self::NewYear => "new_year",
            Self::Epiphany => "epiphany",
            Self::Easter => "easter",
            Self::EasterMonday => "easter_monday",
            Self::LiberationDay => "liberation_day",
            Self::LabourDay => "labour_day",
            Self::RepublicDay => "republic_day",
            Self::Assumption => "assumption",
            Self::SaintFrancis => "saint_francis",
            Self::AllSaints => "all_saints",
            Self::ImmaculateConception => "immaculate_conception",
            Self::Christmas => "christmas",
            Self::SaintStephen => "saint_stephen",
            Self::PatronSaint => "patron_saint",
        }
    }

    /// The holiday's Italian name (the patron saint's own name is in [`PatronSaint::name`]).
    pub fn italian_name(self) -> &'static str {
        match self {
            Self::NewYear => "Capodanno",
            Self::Epiphany => "Epifania",
            Self::Easter => "Pasqua",
            Self::EasterMonday => "Lunedì dell'Angelo",
            Self::LiberationDay => "Festa della Liberazione",
            Self::LabourDay => "Festa del Lavoro",
            Self::RepublicDay => "Festa della Repubblica",
            Self::Assumption => "Ferragosto",
            Self::SaintFrancis => "San Francesco d'Assisi",
            Self::AllSaints => "Ognissanti",
            Self::ImmaculateConception => "Immacolata Concezione",
            Self::Christmas => "Natale",
            Self::SaintStephen => "Santo Stefano",
            Self::PatronSaint => "Santo patrono",
        }
    }
}

/// The city's patron saint: a local public holiday on a fixed day of the year
/// (Pavia: San Siro, 9 December; Ancona: San Ciriaco, 4 May).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatronSaint {
    pub month: i8,
    pub day: i8,
    /// The feast's name as shown to people, e.g. "San Siro".
    pub name: String,
}

/// The holidays that close a Questura: the national ones plus, optionally, the patron saint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolidayCalendar {
    pub patron: Option<PatronSaint>,
}

/// The first year in which 4 October (Saint Francis of Assisi) is again a national holiday
/// (Law 151 of 2025, in force from 2026).
const SAINT_FRANCIS_FROM_YEAR: i16 = 2026;

impl HolidayCalendar {
    pub fn new(patron: Option<PatronSaint>) -> Self {
        Self { patron }
    }

    /// The holiday that falls on `day`, if any.
    pub fn holiday_on(&self, day: Date) -> Option<HolidayKind> {
        if let Some(patron) = &self.patron
            && day.month() == patron.month
            && day.day() == patron.day
        {
            return Some(HolidayKind::PatronSaint);
        }
        let easter = easter_sunday(day.year());
        if day == easter {
            return Some(HolidayKind::Easter);
        }
        if Some(day) == easter.tomorrow().ok() {
            return Some(HolidayKind::EasterMonday);
        }
        let kind = match (day.month(), day.day()) {
            (1, 1) => HolidayKind::NewYear,
            (1, 6) => HolidayKind::Epiphany,
            (4, 25) => HolidayKind::LiberationDay,
            (5, 1) => HolidayKind::LabourDay,
            (6, 2) => HolidayKind::RepublicDay,
            (8, 15) => HolidayKind::Assumption,
            (10, 4) if day.year() >= SAINT_FRANCIS_FROM_YEAR => HolidayKind::SaintFrancis,
            (11, 1) => HolidayKind::AllSaints,
            (12, 8) => HolidayKind::ImmaculateConception,
            (12, 25) => HolidayKind::Christmas,
            (12, 26) => HolidayKind::SaintStephen,
            _ => return None,
        };
        Some(kind)
    }

    /// A person-readable name for the holiday on `day`: the patron's own name where it applies.
    pub fn holiday_name(&self, kind: HolidayKind) -> String {
        match (kind, &self.patron) {
            (HolidayKind::PatronSaint, Some(patron)) => patron.name.clone(),
            _ => kind.italian_name().to_owned(),
        }
    }
}

/// Easter Sunday of the Gregorian calendar, by the anonymous ("Meeus/Jones/Butcher") algorithm.
///
/// Valid for every year jiff can represent after the Gregorian reform.
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month is 3 or 4 and day 1..=31 by construction.
    date(year, month as i8, day as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easter_matches_published_dates() {
        let known = [
            (1961, 4, 2),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ];
        for (y, m, d) in known {
            assert_eq!(easter_sunday(y), date(y, m, d), "Easter {y}");
        }
    }

    #[test]
    fn national_holidays_and_the_patron_close_the_office() {
        let pavia = HolidayCalendar::new(Some(PatronSaint {
            month: 12,
            day: 9,
            name: "San Siro".into(),
        }));
        assert_eq!(
            pavia.holiday_on(date(2026, 4, 6)),
            Some(HolidayKind::EasterMonday)
        );
        assert_eq!(
            pavia.holiday_on(date(2026, 6, 2)),
            Some(HolidayKind::RepublicDay)
        );
        assert_eq!(
            pavia.holiday_on(date(2026, 12, 9)),
            Some(HolidayKind::PatronSaint)
        );
        assert_eq!(
            pavia.holiday_name(HolidayKind::PatronSaint),
            "San Siro".to_owned()
        );
        assert_eq!(
            pavia.holiday_on(date(2026, 10, 4)),
            Some(HolidayKind::SaintFrancis)
        );
        assert_eq!(pavia.holiday_on(date(2025, 10, 4)), None);
        assert_eq!(pavia.holiday_on(date(2026, 12, 10)), None);
        assert_eq!(pavia.holiday_on(date(2026, 5, 4)), None);
        let ancona = HolidayCalendar::new(Some(PatronSaint {
            month: 5,
            day: 4,
            name: "San Ciriaco".into(),
        }));
        assert_eq!(
            ancona.holiday_on(date(2026, 5, 4)),
            Some(HolidayKind::PatronSaint)
        );
    }

    #[test]
    fn every_year_has_all_its_national_holidays_and_no_others() {
        let cal = HolidayCalendar::default();
        for year in [1990, 2024, 2026, 2100] {
            let mut day = date(year, 1, 1);
            let mut count = 0;
            while day.year() == year {
                if cal.holiday_on(day).is_some() {
                    count += 1;
                }
                day = day.tomorrow().unwrap();
            }
            // Ten fixed days, Easter and its Monday, and from 2026 Saint Francis.
            let expected = if year >= SAINT_FRANCIS_FROM_YEAR {
                13
            } else {
                12
            };
            assert_eq!(count, expected, "{year}");
        }
    }
}
