//! Appointments: booking a place in a slot under the schema's capacity guard, finding bookings
//! (a day's list, by ticket, code, name or filter), and moving them along their lifecycle
//! (check-in, delivery, no-show, cancellation, relocation), each step audited.
//!
//! The engine decides which slot to offer; this module writes the appointment and lets the schema
//! (`slot_capacity` and its triggers) refuse a slot that is full or was never opened. Both happen
//! in the caller's transaction, so a booking and the count it changes commit together or not at
//! all. The lifecycle itself is enforced by the schema's trigger; this module only asks for the
//! steps.

use coper_shared::{
    agenda::Slot, booking_code::booking_code, ids::ServiceId, jiff::Timestamp, rules::hh_mm,
};
use rusqlite::{Transaction, params};
use uuid::Uuid;

use super::{StoreError, instant_text};

/// Where an appointment is in its lifecycle: booked → checked in → delivered; booked → cancelled
/// or no-show (a check-in can be undone; a no-show can still be checked in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Delivered,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    /// Every status, in the order the pages list them.
    pub const ALL: [Self; 5] = [
        Self::Booked,
        Self::CheckedIn,
        Self::Delivered,
        Self::NoShow,
        Self::Cancelled,
    ];

    /// The word stored in `appointments.status` (and used in URLs and CSS classes).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked_in",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The Italian word the staff read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Booked => "prenotato",
            Self::CheckedIn => "presente",
            Self::Delivered => "consegnato",
            Self::Cancelled => "annullato",
            Self::NoShow => "assente",
        }
    }
}

impl rusqlite::types::FromSql for AppointmentStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("unknown appointment status {text:?}").into(),
            )
        })
    }
}

impl rusqlite::ToSql for AppointmentStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// A booking to write: who, where, and on whose behalf.
#[derive(Debug, Clone)]
pub struct NewAppointment<'a> {
    pub service: &'a ServiceId,
    pub slot: Slot,
    pub surname: &'a str,
    pub given_names: &'a str,
    pub phone: Option<&'a str>,
    pub ready_permit_id: Option<i64>,
    pub partner_body_id: Option<i64>,
    /// The kiosk and the request that asked for it, for bookings that came through sync.
    pub kiosk: Option<(&'a str, &'a str)>,
    pub created_by: &'a str,
    /// An e-mail address, the language of the messages, and whether the person agreed to receive
    /// them (their time is the booking's).
    pub contact: Contact<'a>,
}

/// How the person may be reached about the booking, beyond the phone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Contact<'a> {
    pub email: Option<&'a str>,
    pub lang: Option<&'a str>,
    pub consent: bool,
}

/// What the store made of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub id: Uuid,
    pub booking_code: String,
}

/// Why a booking was not written.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("the slot is full")]
    SlotFull,
    #[error("the slot is not open")]
    SlotNotOpen,
    #[error("the booking code is already taken")]
    CodeTaken,
    /// The ready permit already has an active booking for this service.
    #[error("the person already has a booking for this service")]
    AlreadyBooked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Book one place in `new.slot`, inside `tx`. The slot's places are (re)stated from the engine's
/// slot, so a capacity row exists for every slot ever booked.
pub fn book(
    tx: &Transaction<'_>,
    new: &NewAppointment<'_>,
    now: Timestamp,
) -> Result<Booked, BookingError> {
    book_with_code(tx, new, &booking_code(fastrand::u128(..)), now)
}

/// As [`book`], with the booking code the kiosk already printed.
pub fn book_with_code(
    tx: &Transaction<'_>,
    new: &NewAppointment<'_>,
    code: &str,
    now: Timestamp,
) -> Result<Booked, BookingError> {
    let date = new.slot.date.to_string();
    let time = hh_mm(new.slot.start);
    let restate = super::slots::Existing::Restate;
    super::slots::set_places(tx, new.service, new.slot.key(), new.slot.places, restate)
        .map(drop)
        .map_err(|e| match e {
            StoreError::Sqlite(e) => classify(e),
            other => BookingError::Store(other),
        })?;
    let id = Uuid::now_v7();
    tx.prepare_cached(
        "INSERT INTO appointments (id, booking_code, service_id, slot_date, slot_time, surname,
             given_names, phone, ready_permit_id, partner_body_id, created_at, created_by,
             kiosk_id, request_id, email, notice_lang, consent_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .map_err(classify)?
    .execute(params![
        id.to_string(),
        code,
        new.service.as_str(),
        date,
        time,
        new.surname,
        new.given_names,
        new.phone,
        new.ready_permit_id,
        new.partner_body_id,
        instant_text(now),
        new.created_by,
        new.kiosk.map(|k| k.0),
        new.kiosk.map(|k| k.1),
        new.contact.email,
        new.contact.lang,
        new.contact.consent.then(|| instant_text(now)),
    ])
    .map_err(classify)?;
    Ok(Booked {
        id,
        booking_code: code.to_owned(),
    })
}

/// Turn the schema's refusals into the domain's words.
fn classify(err: rusqlite::Error) -> BookingError {
    let text = err.to_string();
    if text.contains("slot_full") {
        BookingError::SlotFull
    } else if text.contains("slot_not_open") {
        BookingError::SlotNotOpen
    } else if text.contains("appointments.booking_code") {
        BookingError::CodeTaken
    } else if text.contains("already_booked") {
        BookingError::AlreadyBooked
    } else {
        BookingError::Store(err.into())
    }
}

mod lifecycle;
mod lookup;

pub use lifecycle::*;
pub use lookup::*;

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;
    use crate::store::Db;

    fn setup() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call_blocking(|conn| {
            conn.execute(
                "INSERT INTO services (id, name, horizon_days, lead_minutes)
                 VALUES ('consegna-pse', 'Consegna', 30, 0)",
                [],
            )
            .unwrap();
        });
        (dir, db)
    }

    fn slot(places: u16) -> Slot {
        Slot {
            date: date(2026, 12, 1),
            start: time(9, 0, 0, 0),
            end: time(9, 10, 0, 0),
            places,
        }
    }

    /// A ready permit, id 7, for the tests of one booking per person.
    fn ready_permit_7(conn: &rusqlite::Connection) {
        conn.execute(
            "INSERT INTO ready_permits (id, surname, birth_date, fingerprint_date, imported_at)
             VALUES (7, 'Rossi', '1990', '2026-01-01', '')",
            [],
        )
        .unwrap();
    }

    /// A booking made at the counter for a synthetic person.
    fn walk_in(service: &ServiceId, slot: Slot) -> NewAppointment<'_> {
        NewAppointment {
            service,
            slot,
            surname: "Rossi",
            given_names: "Ana",
            phone: None,
            ready_permit_id: None,
            partner_body_id: None,
            kiosk: None,
            created_by: "test",
            contact: Contact::default(),
        }
    }

    /// The schema refuses a second active booking of the same ready permit for one service; once
    /// the first is cancelled, the person may book again.
    #[test]
    fn the_schema_refuses_a_second_active_booking_of_a_permit() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        db.call_blocking(|conn| {
            ready_permit_7(conn);
            let tx = conn.transaction().unwrap();
            let new = NewAppointment {
                ready_permit_id: Some(7),
                ..walk_in(&service, slot(5))
            };
            let first = book(&tx, &new, now).unwrap();
            assert!(matches!(
                book(&tx, &new, now),
                Err(BookingError::AlreadyBooked)
            ));
            let cancelled = cancel_in(&tx, &first.id.to_string(), "test", now, "test", "");
            assert!(matches!(cancelled, Ok(Ok(_))));
            book(&tx, &new, now).expect("booked again once the first is cancelled");
        });
    }

    /// The phone, e-mail and consent of a booking are forgotten once it has ended longer ago than
    /// the cut-off; a booking still to come, or ended since, keeps them.
    #[test]
    fn contacts_are_forgotten_after_the_booking_ends() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        db.call_blocking(|conn| {
            let tx = conn.transaction().unwrap();
            let with_contact = NewAppointment {
                phone: Some("+393331234567"),
                contact: Contact {
                    email: Some("amira@esempio.it"),
                    lang: Some("ar"),
                    consent: true,
                },
                ..walk_in(&service, slot(5))
            };
            let ended = book(&tx, &with_contact, now).unwrap().id.to_string();
            let recent = book(&tx, &with_contact, now).unwrap().id.to_string();
            let to_come = book(&tx, &with_contact, now).unwrap().id.to_string();
            tx.commit().unwrap();
            for (id, at) in [
                (&ended, "2026-10-01T10:00:00Z"),
                (&recent, "2026-11-29T10:00:00Z"),
            ] {
                conn.execute(
                    "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2,
                         cancel_reason = 'test' WHERE id = ?1",
                    rusqlite::params![id, at],
                )
                .unwrap();
            }
            for id in [&ended, &recent] {
                conn.execute(
                    "INSERT INTO notices (appointment_id, kind, channel, recipient, lang, body,
                         created_at, due_at)
                     VALUES (?1, 'confirmed', 'sms', '+393331234567', 'ar', 'x', '', '')",
                    [id],
                )
                .unwrap();
            }
            let cut_off: Timestamp = "2026-10-31T10:00:00Z".parse().unwrap();
            assert_eq!(forget_contacts(conn, cut_off).unwrap(), 1);
            assert_eq!(
                crate::store::notices::forget_recipients(conn, cut_off).unwrap(),
                1,
                "the ended booking's notice forgets its recipient, the recent one keeps it"
            );
            let contact = |id: &str| -> (Option<String>, Option<String>, Option<String>) {
                conn.query_row(
                    "SELECT phone, email, consent_at FROM appointments WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap()
            };
            assert_eq!(contact(&ended), (None, None, None));
            for kept in [&recent, &to_come] {
                let (phone, email, consent) = contact(kept);
                assert_eq!(phone.as_deref(), Some("+393331234567"));
                assert_eq!(email.as_deref(), Some("amira@esempio.it"));
                assert!(consent.is_some());
            }
        });
    }

    /// A no-show undone, or checked in late, does not give the person a second active booking
    /// when they have booked again since: refused with the other booking's code.
    #[test]
    fn a_no_show_is_not_revived_beside_a_new_booking() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        db.call_blocking(|conn| {
            ready_permit_7(conn);
            let tx = conn.transaction().unwrap();
            let first = book(
                &tx,
                &NewAppointment {
                    ready_permit_id: Some(7),
                    ..walk_in(&service, slot(5))
                },
                now,
            )
            .unwrap();
            tx.commit().unwrap();
            let first = first.id.to_string();
            take_step(conn, &first, Step::NoShow, now, "test", "")
                .unwrap()
                .unwrap();
            let tx = conn.transaction().unwrap();
            let later = Slot {
                date: date(2026, 12, 3),
                ..slot(5)
            };
            let second = book(
                &tx,
                &NewAppointment {
                    ready_permit_id: Some(7),
                    ..walk_in(&service, later)
                },
                now,
            )
            .unwrap();
            tx.commit().unwrap();
            for step in [Step::Undo, Step::CheckIn] {
                assert_eq!(
                    take_step(conn, &first, step, now, "test", "").unwrap(),
                    Err(StepError::OtherBooking(second.booking_code.clone()))
                );
            }
            // Even SQL that bypasses the check cannot revive it.
            let raw = conn.execute(
                "UPDATE appointments SET status = 'booked', no_show_at = NULL WHERE id = ?1",
                [&first],
            );
            assert!(raw.unwrap_err().to_string().contains("already_booked"));
        });
    }

    /// The schema itself refuses a booking beyond a slot's places, whatever the code above it does.
    #[test]
    fn the_schema_refuses_more_bookings_than_places() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        db.call_blocking(|conn| {
            let tx = conn.transaction().unwrap();
            let new = walk_in(&service, slot(2));
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            assert!(matches!(
                book(&tx, &new, Timestamp::UNIX_EPOCH),
                Err(BookingError::SlotFull)
            ));
            // Even raw SQL that bypasses `book` cannot overfill the slot.
            let raw = tx.execute(
                "INSERT INTO appointments (id, booking_code, service_id, slot_date, slot_time,
                     surname, created_at, created_by)
                 VALUES ('x', 'XXXX-XXXX', 'consegna-pse', '2026-12-01', '09:00', 'Bianchi', '', '')",
                [],
            );
            assert!(raw.unwrap_err().to_string().contains("slot_full"));
            tx.commit().unwrap();
            let taken: i64 = conn
                .query_row("SELECT taken FROM slot_capacity", [], |r| r.get(0))
                .unwrap();
            assert_eq!(taken, 2);
        });
    }

    /// Cancelling gives the place back, and the lifecycle is enforced.
    #[test]
    fn cancelling_frees_the_place_and_the_lifecycle_is_enforced() {
        let (_dir, db) = setup();
        let service = ServiceId::parse("consegna-pse").unwrap();
        db.call_blocking(|conn| {
            let tx = conn.transaction().unwrap();
            let new = walk_in(&service, slot(1));
            let first = book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            tx.execute(
                "UPDATE appointments SET status = 'cancelled', cancelled_at = 'now' WHERE id = ?1",
                [first.id.to_string()],
            )
            .unwrap();
            book(&tx, &new, Timestamp::UNIX_EPOCH).unwrap();
            let back = tx.execute(
                "UPDATE appointments SET status = 'booked', cancelled_at = NULL WHERE id = ?1",
                [first.id.to_string()],
            );
            assert!(
                back.unwrap_err()
                    .to_string()
                    .contains("invalid_status_transition")
            );
            let delivered_directly = tx.execute(
                "UPDATE appointments SET status = 'delivered' WHERE status = 'booked'",
                [],
            );
            assert!(
                delivered_directly
                    .unwrap_err()
                    .to_string()
                    .contains("invalid_status_transition")
            );
        });
    }
}
