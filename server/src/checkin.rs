//! Checking a person in at the counter: what was scanned or typed ([`read_scan`]: a signed
//! ticket verified against its issuer's key, or a booking code), and what the counter says of
//! the booking it names ([`assess`]: a pure function of the booking, the ticket's slot and the
//! time).
//!
//! A scan checks the person in only when everything is in order. Otherwise the clerk reads why,
//! in plain words — wrong day, too early, too late, already checked in at HH:MM, cancelled,
//! relocated — and decides; the page offers "check in anyway" where that makes sense.

use coper_shared::{
    booking_code,
    italian::long_date,
    jiff::{
        SignedDuration, Timestamp,
        civil::{Date, DateTime, Time},
        tz::TimeZone,
    },
    ticket::{Issuer, Scanned, TicketError},
};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::store::{
    Connection, StoreError,
    appointments::{self, AppointmentStatus, CounterAppointment},
    kiosks, settings,
};

/// The Questura's time zone and now, as the counter's wall clock.
pub fn local_now(conn: &Connection, now: Timestamp) -> Result<(TimeZone, DateTime), StoreError> {
    let zone = settings::questura(conn)?
        .map(|q| q.time_zone)
        .unwrap_or_else(|| TimeZone::get("Europe/Rome").unwrap_or(TimeZone::UTC));
    let local = now.to_zoned(zone.clone()).datetime();
    Ok((zone, local))
}

/// Whether a booking still only booked, for `date` at `time`, may be marked absent at `now`
/// (the Questura's local time): only once its slot and the late check-in window have passed, so
/// nobody is marked absent for a day still to come.
pub fn may_mark_absent(date: Date, time: Time, now: DateTime, late_minutes: i64) -> bool {
    let absent_from = date
        .to_datetime(time)
        .checked_add(SignedDuration::from_mins(late_minutes))
        .unwrap_or(DateTime::MAX);
    now >= absent_from
}

/// What a scan or a typed code turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// A booking, with the slot printed on its ticket (none for a typed code).
    Found(Box<CounterAppointment>, Option<(Date, Time)>),
    /// A well-formed booking code nobody has.
    UnknownCode(String),
    /// Neither a ticket nor a booking code.
    NotACode,
    /// A ticket, damaged or incomplete.
    Unreadable,
    /// A ticket from a kiosk the server does not know.
    UnknownKiosk,
    /// A ticket from a revoked kiosk.
    RevokedKiosk,
    /// A ticket whose signature does not match, or that names another service than its booking.
    Forged,
    /// An authentic ticket whose booking has not reached the server yet (its office offline).
    NotYetArrived { date: Date, time: Time },
}

/// Read what was scanned or typed: the appointment it names and, for a ticket, the slot printed
/// on it; or why it cannot be trusted. A ticket is trusted only through its issuer's key.
pub fn read_scan(conn: &Connection, text: &str, now: Timestamp) -> Result<Scan, StoreError> {
    // A booking code typed by hand first: eight characters can never be a ticket, and a code may
    // start like one (`CP1A-…`).
    let scanned = match (booking_code::normalise(text), Scanned::parse(text)) {
        (None, Ok(scanned)) => scanned,
        (Some(code), _) => {
            return Ok(match appointments::by_code(conn, &code)? {
                Some(a) => Scan::Found(Box::new(a), None),
                None => Scan::UnknownCode(code),
            });
        }
        (None, Err(TicketError::NotATicket)) => return Ok(Scan::NotACode),
        (None, Err(_)) => return Ok(Scan::Unreadable),
    };
    let key = match scanned.issuer() {
        Issuer::Server => SigningKey::from_bytes(&settings::server_key(conn, now)?).verifying_key(),
        Issuer::Kiosk(kiosk) => match kiosks::key_of(conn, &kiosk.to_string())? {
            None => return Ok(Scan::UnknownKiosk),
            Some((_, true)) => return Ok(Scan::RevokedKiosk),
            Some((key, false)) => VerifyingKey::from_bytes(&key)
                .map_err(|_| StoreError::InvalidData("kiosk key".into()))?,
        },
    };
    let Ok(ticket) = scanned.verify(&key) else {
        return Ok(Scan::Forged);
    };
    Ok(match appointments::by_ticket(conn, &ticket)? {
        // A signed ticket that disagrees with its booking on the service is not trusted either.
        Some(a) if a.service_id != ticket.service.as_str() => Scan::Forged,
        Some(a) => Scan::Found(Box::new(a), Some((ticket.date, ticket.time))),
        None => Scan::NotYetArrived {
            date: ticket.date,
            time: ticket.time,
        },
    })
}

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
    match booking.status {
        AppointmentStatus::Cancelled => {
            return Assessment::Cancelled {
                reason: booking.cancel_reason.clone(),
            };
        }
        AppointmentStatus::CheckedIn => {
            return Assessment::AlreadyCheckedIn {
                at: checked_in_local(),
            };
        }
        AppointmentStatus::Delivered => return Assessment::AlreadyDelivered,
        AppointmentStatus::Booked | AppointmentStatus::NoShow => {}
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
            long_date(*booked)
        ),
        Assessment::Relocated { to_date, to_time } => format!(
            "Appuntamento spostato: ora è {} alle {to_time}.",
            long_date(*to_date)
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

    #[test]
    fn nobody_is_absent_before_the_slot_and_the_late_window_have_passed() {
        let (day, at) = (date(2026, 11, 24), time(10, 0, 0, 0));
        let absent = |now| may_mark_absent(day, at, now, 90);
        assert!(
            !absent(date(2026, 11, 23).at(16, 0, 0, 0)),
            "the day before"
        );
        assert!(!absent(day.at(11, 29, 0, 0)), "within the late window");
        assert!(absent(day.at(11, 30, 0, 0)));
        assert!(absent(date(2026, 11, 25).at(8, 0, 0, 0)), "a day after");
    }

    fn booking(status: &str) -> CounterAppointment {
        let status = AppointmentStatus::parse(status).expect("a status");
        CounterAppointment {
            id: "a".into(),
            booking_code: "K7QM-4XTA".into(),
            service_id: "consegna-pse".into(),
            service_name: "Consegna".into(),
            date: date(2026, 11, 24),
            time: "10:00".into(),
            surname: "Rossi".into(),
            given_names: "Ana".into(),
            status,
            partner_name: None,
            checked_in_at: None,
            delivered_at: None,
            no_show_at: None,
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
