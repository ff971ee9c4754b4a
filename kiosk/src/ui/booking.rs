//! The operator's booking: the person found in the ready list, the service, the first free day
//! or another, the booking itself (committed locally before the screen moves on), its reminder
//! sent to the printer, and the list of bookings with what the server said of each.

use coper_shared::{
    ids::ServiceId,
    jiff::{ToSpan, civil::DateTime, tz::TimeZone},
};
use slint::{ModelRc, SharedString, VecModel};
use uuid::Uuid;

use super::{Controller, choices, parse_typed_date, slot_text, status_bar};
use crate::{
    BookingRow, Screen,
    core::{BookingRequest, BookingStatus, CoreError, LocalBooking, Proposal},
    reminder::Reminder,
};

/// "Search": the person in the ready list, then the services to choose from.
pub(super) fn find(c: &Controller) {
    let Some((surname, given_names, birth)) = c.with_api(|api| {
        (
            api.get_surname(),
            api.get_given_names(),
            api.get_birth_date(),
        )
    }) else {
        return;
    };
    let Some(birth) = parse_typed_date(&birth) else {
        c.say("Invalid date: write dd/mm/yyyy", true);
        return;
    };
    match c.core().find_ready(&surname, &given_names, birth) {
        Some(permit) => {
            c.state().permit = Some(permit);
            let services = choices(
                c.core()
                    .services()
                    .into_iter()
                    .map(|(id, name)| (id.as_str().to_owned(), name)),
            );
            c.with_api(|api| {
                api.set_services(services);
                api.set_permit_found(true);
                api.set_active_field(SharedString::new());
            });
            c.say("Permit ready: it can be booked", false);
        }
        None => {
            c.with_api(|api| api.set_permit_found(false));
            c.say("Not in the list of ready permits", true);
        }
    }
}

fn show_proposal(c: &Controller, proposal: Option<Proposal>) {
    let text = proposal
        .as_ref()
        .map(|p| slot_text(p.slot.date, p.slot.start))
        .unwrap_or_default();
    c.state().proposal = proposal;
    c.with_api(|api| {
        api.set_proposal(text.into());
        api.set_show_options(false);
    });
}

pub(super) fn choose_service(c: &Controller, id: &str) {
    let Ok(service) = ServiceId::parse(id) else {
        return;
    };
    // One active booking per person and service: said before anything is booked.
    let permit = c.state().permit;
    let already = permit.and_then(|p| c.core().booked_already(p, &service));
    if already.as_ref().is_some_and(|b| !b.movable) {
        c.say(
            "Already at the Questura for this service: it cannot be booked again",
            true,
        );
        return;
    }
    let first = c.core().first_free(&service).ok().flatten();
    {
        let mut state = c.state();
        state.service = Some(service);
        state.moving = already.clone();
    }
    show_proposal(c, first);
    c.with_api(|api| {
        api.set_moving(already.is_some());
        api.set_screen(Screen::Proposal);
    });
    match (already, first) {
        (Some(booked), _) => {
            let text = c
                .tr("Already booked for {when} by {by}: confirming moves the booking")
                .replace("{when}", &slot_text(booked.date, booked.time))
                .replace("{by}", &booked.partner);
            c.show_message(text, true);
        }
        (None, None) => c.say("No free place", true),
        (None, Some(_)) => {}
    }
}

/// "Another day": the first free slot of each of the next ten days.
pub(super) fn another_day(c: &Controller) {
    let (service, proposal) = {
        let state = c.state();
        (state.service.clone(), state.proposal)
    };
    let Some(service) = service else {
        return;
    };
    let from: DateTime = match proposal {
        Some(p) => p
            .slot
            .date
            .saturating_add(1.day())
            .to_datetime(Default::default()),
        None => c.core().now().to_zoned(TimeZone::UTC).datetime(),
    };
    let options = c.core().options(&service, from, 10).unwrap_or_default();
    let model = choices(
        options
            .iter()
            .enumerate()
            .map(|(i, p)| (i.to_string(), slot_text(p.slot.date, p.slot.start))),
    );
    c.state().options = options;
    c.with_api(|api| {
        api.set_options(model);
        api.set_show_options(true);
    });
}

pub(super) fn pick_option(c: &Controller, index: &str) {
    let chosen = index
        .parse::<usize>()
        .ok()
        .and_then(|i| c.state().options.get(i).cloned());
    if chosen.is_some() {
        show_proposal(c, chosen);
    }
}

pub(super) fn confirm_proposal(c: &Controller) {
    c.with_api(|api| {
        api.set_screen(Screen::Confirm);
        api.set_message(SharedString::new());
    });
}

pub(super) fn confirm_booking(c: &Controller) {
    let (service, proposal, permit, moving) = {
        let state = c.state();
        (
            state.service.clone(),
            state.proposal,
            state.permit,
            state.moving.as_ref().map(|b| b.appointment),
        )
    };
    let (Some(service), Some(proposal)) = (service, proposal) else {
        return;
    };
    let Some((surname, given_names, birth, phone)) = c.with_api(|api| {
        (
            api.get_surname().to_string(),
            api.get_given_names().to_string(),
            api.get_birth_date(),
            api.get_phone().to_string(),
        )
    }) else {
        return;
    };
    // The names may have been edited since the search: the permit goes with the booking only
    // if it is still this person's.
    let permit = permit.filter(|p| {
        parse_typed_date(&birth)
            .and_then(|birth| c.core().find_ready(&surname, &given_names, birth))
            == Some(*p)
    });
    let booked = c.core().book_request(&BookingRequest {
        service: service.clone(),
        slot: proposal.slot.key(),
        surname,
        given_names,
        phone: Some(phone).filter(|p| !p.is_empty()),
        // A move only for the person whose booking was found.
        moves: moving.filter(|_| permit.is_some()),
        permit,
    });
    match booked {
        Ok(booking) => {
            c.state().last = Some(booking.request);
            let status = status_text(c, &booking);
            c.with_api(|api| {
                api.set_booking_code(booking.booking_code.clone().into());
                api.set_booking_status(status.into());
                api.set_screen(Screen::Done);
            });
            print(c);
            // The status bar counts the new request at once.
            c.show_core();
        }
        Err(CoreError::SlotNotFree) => {
            // Taken meanwhile (the replica moved on): propose the next one.
            c.say("No free place", true);
            let next = c.core().first_free(&service).ok().flatten();
            show_proposal(c, next);
            c.with_api(|api| api.set_screen(Screen::Proposal));
        }
        Err(e) => c.show_message(e.to_string(), true),
    }
}

fn status_text(c: &Controller, b: &LocalBooking) -> String {
    match &b.status {
        BookingStatus::Pending { lease: true } | BookingStatus::Confirmed => c.tr("Confirmed"),
        BookingStatus::Pending { lease: false } => {
            c.tr("Provisional: awaiting confirmation from the Questura")
        }
        BookingStatus::Relocated { date, time } => {
            c.tr("Moved to {}").replace("{}", &slot_text(*date, *time))
        }
        // The two refusals an operator can act on say why; the others are faults of the kiosk.
        BookingStatus::Rejected { reason } => match reason.as_str() {
            "quota_reached" => {
                c.tr("Rejected: this office has used all its places for that day or week")
            }
            "no_free_slot" => c.tr("Rejected: no free place left"),
            "already_booked" => c.tr("Rejected: this person already has a booking"),
            _ => c.tr("Rejected"),
        },
        BookingStatus::CancelPending | BookingStatus::Cancelled => c.tr("Cancelled"),
    }
}

fn booking(c: &Controller, request: Uuid) -> Option<LocalBooking> {
    c.core()
        .bookings()
        .into_iter()
        .find(|b| b.request == request)
}

/// Print the last booking's reminder, as it stands now (relocated: at the new time), on the
/// printer's thread; the print button waits until it is done.
pub(super) fn print(c: &Controller) {
    let Some(request) = c.state().last else {
        return;
    };
    let Some(booking) = booking(c, request) else {
        return;
    };
    let Some(reminder) = c.reminder_of(&booking) else {
        return;
    };
    {
        let mut state = c.state();
        state.printed.insert(request, booking.status.clone());
        state.printing += 1;
    }
    c.with_api(|api| api.set_printing(true));
    let back = c.clone();
    c.0.printer.print(reminder, move |result| {
        back.post(move |c| printed(c, request, result))
    });
}

/// The printer's answer, on the UI thread.
fn printed(c: &Controller, request: Uuid, result: Result<(), String>) {
    let printing = {
        let mut state = c.state();
        state.printing = state.printing.saturating_sub(1);
        state.printing > 0
    };
    c.with_api(|api| api.set_printing(printing));
    match result {
        // Printed as decided: the kiosk no longer needs the person's name in clear.
        Ok(()) => {
            if let Err(e) = c.core().reminder_printed(request) {
                tracing::warn!(error = %e, "could not forget a printed booking's names");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the reminder was not printed");
            c.show_message(e, true);
        }
    }
}

impl Controller {
    /// The reminder of `b`, in Italian and the kiosk's current language.
    pub fn reminder_of(&self, b: &LocalBooking) -> Option<Reminder> {
        let core = self.core();
        let questura = core.questura()?;
        let partner = core.partner().map(|p| p.name).unwrap_or_default();
        let (date, time) = match b.status {
            BookingStatus::Relocated { date, time } => (date, time),
            _ => (b.date, b.time),
        };
        let service = core
            .services()
            .into_iter()
            .find(|(id, _)| *id == b.service)
            .map(|(_, name)| name)
            .unwrap_or_else(|| b.service.as_str().to_owned());
        Some(Reminder {
            questura: questura.name,
            questura_address: questura.address,
            service,
            what_to_bring: core.what_to_bring(&b.service).unwrap_or_default(),
            date,
            time,
            surname: b.surname.clone(),
            given_names: b.given_names.clone(),
            booking_code: b.booking_code.clone(),
            ticket: core.ticket(b),
            partner,
            provisional: !b.is_confirmed(),
            lang: self.state().lang.clone(),
        })
    }
}

pub(super) fn cancel_booking(c: &Controller, id: &str) {
    if let Ok(id) = id.parse::<Uuid>() {
        let _ = c.core().cancel(id);
    }
    c.show_core();
}

/// Today's and later bookings, the alert when the server changed a printed one, and the status
/// of the last booking.
pub(super) fn show_bookings(c: &Controller) {
    let today = c.core().now().to_zoned(status_bar::zone(c)).date();
    let (printed, last) = {
        let state = c.state();
        (state.printed.clone(), state.last)
    };
    let mut alert = false;
    let rows: Vec<BookingRow> = c
        .core()
        .bookings()
        .into_iter()
        // Today's and later: those an operator may still reprint, watch or cancel.
        .filter(|b| b.date >= today)
        .map(|b| {
            let changed = printed.get(&b.request).is_some_and(|was| {
                *was != b.status
                    && !matches!(
                        (was, &b.status),
                        (BookingStatus::Pending { .. }, BookingStatus::Confirmed)
                    )
            });
            alert |= changed;
            BookingRow {
                id: b.request.to_string().into(),
                // Once the booking is settled the kiosk no longer keeps the name: its code.
                name: if b.surname.is_empty() {
                    b.booking_code.clone().into()
                } else {
                    format!("{} {}", b.surname.to_uppercase(), b.given_names).into()
                },
                when: slot_text(b.date, b.time).into(),
                status: status_text(c, &b).into(),
                changed,
                can_cancel: !matches!(
                    b.status,
                    BookingStatus::Cancelled
                        | BookingStatus::CancelPending
                        | BookingStatus::Rejected { .. }
                ),
            }
        })
        .collect();
    let last_status = last
        .and_then(|request| booking(c, request))
        .map(|b| status_text(c, &b));
    c.with_api(|api| {
        api.set_bookings(ModelRc::new(VecModel::from(rows)));
        api.set_alert(alert);
        if let Some(status) = last_status {
            api.set_booking_status(status.into());
        }
    });
}
