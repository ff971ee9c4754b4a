//! What the counter says about a scanned ticket or a booking looked up by hand: the rules, as a
//! pure function of the booking, the ticket's slot and the time.
//!
//! A scan checks the person in only when everything is in order. Otherwise the clerk reads why,
//! in plain words — wrong day, too early, too late, already checked in at HH:MM, cancelled,
//! relocated — and decides; the page offers "check in anyway" where that makes sense.

use coper_shared::jiff::{
    SignedDuration,
    civil::{Date, DateTime, Time},
};

use crate::store::counter::CounterAppointment;

/// The verdict on a booking presented at the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Today, within the window: check in.
    OnTime,
    /// Today, but more than the window before the slot.
    TooEarly {
        minutes: i64,
    },
    /// Today, but more than the window after the slot's start.
    TooLate {
        minutes: i64,
    },
    /// Booked for another day.
    WrongDay {
        booked: Date,
    },
    /// The ticket shows a slot the server moved the booking away from.
    Relocated {
        to_date: Date,
        to_time: String,
    },
    AlreadyCheckedIn {
        at: String,
    },
    AlreadyDelivered,
    Cancelled {
        reason: Option<String>,
    },
}

impl Assessment {
    /// Whether a scan may check the person in without asking the clerk.
    pub fn checks_in(&self) -> bool {
        matches!(self, Self::OnTime)
    }

    /// Whether the clerk may check in anyway, overriding the warning.
    pub fn may_override(&self) -> bool {
        matches!(
            self,
            Self::TooEarly { .. }
                | Self::TooLate { .. }
                | Self::WrongDay { .. }
                | Self::Relocated { .. }
        )
    }
}

/// Assess `booking` presented at `now` (the Questura's wall clock). `ticket_slot` is the slot
/// printed on the ticket, when it was scanned; `window` is (minutes early, minutes late) allowed.
pub fn assess(
    booking: &CounterAppointment,
    booked_time: Time,
    ticket_slot: Option<(Date, Time)>,
    now: DateTime,
    window: (i64, i64),
    checked_in_local: impl Fn() -> String,
) -> Assessment {
    match booking.status.as_str() {
        "cancelled" => {
            return Assessment::Cancelled {
                reason: booking.cancel_reason.clone(),
            };
        }
        "checked_in" => {
            return Assessment::AlreadyCheckedIn {
                at: checked_in_local(),
            };
        }
        "delivered" => return Assessment::AlreadyDelivered,
        _ => {}
    }
    if let Some((date, time)) = ticket_slot
        && (date, time) != (booking.date, booked_time)
    {
        return Assessment::Relocated {
            to_date: booking.date,
            to_time: booking.time.clone(),
        };
    }
    if booking.date != now.date() {
        return Assessment::WrongDay {
            booked: booking.date,
        };
    }
    let slot = booking.date.to_datetime(booked_time);
    let early = slot.duration_since(now);
    let (allowed_early, allowed_late) = window;
    if early > SignedDuration::from_mins(allowed_early) {
        Assessment::TooEarly {
            minutes: early.as_mins(),
        }
    } else if -early > SignedDuration::from_mins(allowed_late) {
        Assessment::TooLate {
            minutes: (-early).as_mins(),
        }
    } else {
        Assessment::OnTime
    }
}

/// The clerk's sentence for an assessment, in Italian.
pub fn describe(assessment: &Assessment) -> String {
    match assessment {
        Assessment::OnTime => "In orario: presenza registrata.".into(),
        Assessment::TooEarly { minutes } => {
            format!(
                "In anticipo di {}: l'appuntamento non è ancora iniziato.",
                span(*minutes)
            )
        }
        Assessment::TooLate { minutes } => format!("In ritardo di {}.", span(*minutes)),
        Assessment::WrongDay { booked } => format!(
            "Giorno sbagliato: l'appuntamento è per {}.",
            crate::web::italian_date(*booked)
        ),
        Assessment::Relocated { to_date, to_time } => format!(
            "Appuntamento spostato: ora è {} alle {to_time}.",
            crate::web::italian_date(*to_date)
        ),
        Assessment::AlreadyCheckedIn { at } => format!("Presenza già registrata alle {at}."),
        Assessment::AlreadyDelivered => "Permesso già consegnato.".into(),
        Assessment::Cancelled { reason } => match reason {
            Some(reason) if !reason.is_empty() => {
                format!("Prenotazione annullata ({reason}).")
            }
            _ => "Prenotazione annullata.".into(),
        },
    }
}

fn span(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use coper_shared::jiff::civil::{date, time};

    use super::*;

    fn booking(status: &str) -> CounterAppointment {
        CounterAppointment {
            id: "a".into(),
            booking_code: "K7QM-4XTA".into(),
            service_id: "consegna-pse".into(),
            service_name: "Consegna".into(),
            date: date(2026, 11, 24),
            time: "10:00".into(),
            surname: "Rossi".into(),
            given_names: "Ana".into(),
            status: status.into(),
            partner_name: None,
            checked_in_at: None,
            delivered_at: None,
            cancel_reason: None,
            ready_permit_id: None,
            drawer: None,
        }
    }

    fn at(hour: i8, minute: i8) -> DateTime {
        date(2026, 11, 24).at(hour, minute, 0, 0)
    }

    fn run(status: &str, ticket: Option<(Date, Time)>, now: DateTime) -> Assessment {
        assess(
            &booking(status),
            time(10, 0, 0, 0),
            ticket,
            now,
            (60, 90),
            || "09:55".into(),
        )
    }

    #[test]
    fn the_window_is_inclusive_at_both_ends() {
        assert_eq!(run("booked", None, at(9, 0)), Assessment::OnTime);
        assert_eq!(
            run("booked", None, at(8, 59)),
            Assessment::TooEarly { minutes: 61 }
        );
        assert_eq!(run("booked", None, at(11, 30)), Assessment::OnTime);
        assert_eq!(
            run("booked", None, at(11, 31)),
            Assessment::TooLate { minutes: 91 }
        );
        assert_eq!(run("no_show", None, at(10, 5)), Assessment::OnTime);
    }

    #[test]
    fn status_beats_time_and_a_moved_slot_is_named() {
        assert_eq!(
            run("checked_in", None, at(10, 0)),
            Assessment::AlreadyCheckedIn { at: "09:55".into() }
        );
        assert!(matches!(
            run("cancelled", None, at(10, 0)),
            Assessment::Cancelled { .. }
        ));
        assert_eq!(
            run("booked", None, date(2026, 11, 25).at(10, 0, 0, 0)),
            Assessment::WrongDay {
                booked: date(2026, 11, 24)
            }
        );
        let printed = (date(2026, 11, 23), time(9, 0, 0, 0));
        assert_eq!(
            run("booked", Some(printed), at(10, 0)),
            Assessment::Relocated {
                to_date: date(2026, 11, 24),
                to_time: "10:00".into()
            }
        );
        assert!(run("booked", Some(printed), at(10, 0)).may_override());
        assert!(!run("cancelled", None, at(10, 0)).may_override());
    }
}
