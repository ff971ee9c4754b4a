//! Dates as Italian readers write them: "martedì 24 novembre 2026". Used by the staff's pages and
//! by the printed reminder, which is always in Italian as well as the person's language.

use jiff::civil::Date;

const WEEKDAYS: [&str; 7] = [
    "lunedì",
    "martedì",
    "mercoledì",
    "giovedì",
    "venerdì",
    "sabato",
    "domenica",
];

const MONTHS: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];

/// "martedì 24 novembre 2026".
pub fn long_date(date: Date) -> String {
    format!(
        "{} {} {} {}",
        WEEKDAYS[date.weekday().to_monday_zero_offset() as usize],
        date.day(),
        MONTHS[date.month() as usize - 1],
        date.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_dates_read_naturally() {
        assert_eq!(
            long_date(Date::constant(2026, 11, 24)),
            "martedì 24 novembre 2026"
        );
    }
}
