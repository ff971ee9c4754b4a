//! The operator's booking: the person found in the ready list, the service, the first free day
//! or another, the booking itself (committed locally before the screen moves on), its reminder
//! sent to the printer, and the list of bookings with what the server said of each.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use coper_shared::{
    documents::{AppointmentState, PartnerBooking},
    ids::ServiceId,
    jiff::{
        ToSpan,
        civil::{Date, DateTime, Time},
        tz::TimeZone,
    },
};
use slint::{ModelRc, SharedString, VecModel};
use uuid::Uuid;

use super::{Controller, choices, navigation, parse_typed_date, status_bar};
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
            let precheck = precheck_state(c, permit);
            c.with_api(|api| {
                api.set_services(services);
                api.set_permit_found(true);
                api.set_precheck_state(precheck.into());
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

/// What the operator reads of the person's document pre-check, in the kiosk's language: the
/// documents still to bring, or that they are verified; nothing when the Questura opened none.
fn precheck_state(c: &Controller, permit: i64) -> String {
    let Some(summary) = c.core().precheck_of(permit) else {
        return String::new();
    };
    if summary.to_bring.is_empty() {
        return c.tr("Document check: documents verified");
    }
    let lang = c.state().lang.clone();
    format!(
        "{}: {}",
        c.tr("Document check: still to bring"),
        summary.lines(&lang).join("; ")
    )
}

/// "Documents" on a booking (or after booking): the person's pre-check page as a QR code on
/// screen, for the assisted path (opened on the person's phone with the operator's help).
pub(super) fn show_documents(c: &Controller, appointment: &str) {
    let Some(booking) = c
        .core()
        .partner_bookings()
        .into_iter()
        .find(|b| b.appointment.to_string() == appointment)
    else {
        return;
    };
    let Some(image) = booking.precheck_link.as_deref().and_then(qr_image) else {
        return;
    };
    c.with_api(|api| {
        api.set_documents_qr(image);
        api.set_documents_for(
            format!("{} {}", booking.surname.to_uppercase(), booking.given_names).into(),
        );
        api.set_documents_shown(true);
    });
}

pub(super) fn hide_documents(c: &Controller) {
    c.with_api(|api| {
        api.set_documents_shown(false);
        api.set_documents_qr(slint::Image::default());
        api.set_documents_for(SharedString::new());
    });
}

/// `text` as a QR code image: a pixel per module, with the four-module quiet zone scanners need
/// (the screen scales it up without smoothing).
fn qr_image(text: &str) -> Option<slint::Image> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let modules = code.width();
    let side = modules + 8;
    let mut pixels = slint::SharedPixelBuffer::<slint::Rgb8Pixel>::new(side as u32, side as u32);
    let white = slint::Rgb8Pixel {
        r: 255,
        g: 255,
        b: 255,
    };
    let black = slint::Rgb8Pixel { r: 0, g: 0, b: 0 };
    let colors = code.to_colors();
    for (i, pixel) in pixels.make_mut_slice().iter_mut().enumerate() {
        let (x, y) = (i % side, i / side);
        let dark = x >= 4
            && y >= 4
            && x < modules + 4
            && y < modules + 4
            && colors[(y - 4) * modules + (x - 4)] == qrcode::Color::Dark;
        *pixel = if dark { black } else { white };
    }
    Some(slint::Image::from_rgb8(pixels))
}

/// Show `proposal` as the first available day (the options closed).
fn show_proposal(c: &Controller, proposal: Option<Proposal>) {
    let text = proposal
        .as_ref()
        .map(|p| c.slot_text(p.slot.date, p.slot.start))
        .unwrap_or_default();
    let heading = c.tr("First available day");
    {
        let mut state = c.state();
        state.proposal = proposal;
        state.options_are_times = false;
    }
    c.with_api(|api| {
        api.set_proposal(text.into());
        api.set_proposal_heading(heading.into());
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
                .replace("{when}", &c.slot_text(booked.date, booked.time))
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
            .map(|(i, p)| (i.to_string(), c.slot_text(p.slot.date, p.slot.start))),
    );
    {
        let mut state = c.state();
        state.options = options;
        state.options_are_times = false;
    }
    c.with_api(|api| {
        api.set_options(model);
        api.set_show_options(true);
    });
}

/// A day picked from "another day": its first free time is proposed and every free time of the
/// day offered, under a heading that names the day. A time picked: proposed.
pub(super) fn pick_option(c: &Controller, index: &str) {
    let (chosen, times, service) = {
        let state = c.state();
        (
            index
                .parse::<usize>()
                .ok()
                .and_then(|i| state.options.get(i).copied()),
            state.options_are_times,
            state.service.clone(),
        )
    };
    let (Some(chosen), Some(service)) = (chosen, service) else {
        return;
    };
    if times {
        c.state().proposal = Some(chosen);
        let text = c.slot_text(chosen.slot.date, chosen.slot.start);
        c.with_api(|api| api.set_proposal(text.into()));
        return;
    }
    let day = chosen.slot.date;
    let times = c.core().times_of(&service, day).unwrap_or_default();
    let model = choices(
        times
            .iter()
            .enumerate()
            .map(|(i, p)| (i.to_string(), p.slot.start.strftime("%H:%M").to_string())),
    );
    let heading = c.tr("Free times on {}").replace("{}", &c.day_text(day));
    let text = c.slot_text(chosen.slot.date, chosen.slot.start);
    {
        let mut state = c.state();
        state.proposal = Some(chosen);
        state.options = times;
        state.options_are_times = true;
    }
    c.with_api(|api| {
        api.set_proposal(text.into());
        api.set_proposal_heading(heading.into());
        api.set_options(model);
        api.set_show_options(true);
    });
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
    let Some((surname, given_names, birth, (phone, email, consent))) = c.with_api(|api| {
        (
            api.get_surname().to_string(),
            api.get_given_names().to_string(),
            api.get_birth_date(),
            (
                api.get_phone().to_string(),
                api.get_email().to_string(),
                api.get_consent(),
            ),
        )
    }) else {
        return;
    };
    let lang = c.state().person_lang.clone();
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
        email: Some(email).filter(|e| !e.is_empty()),
        lang: Some(lang),
        consent,
    });
    match booked {
        Ok(booking) => {
            {
                let mut state = c.state();
                state.last = Some(booking.request);
                state.person_chosen_for_booking = true;
            }
            let status = status_text(c, &booking);
            c.with_api(|api| {
                api.set_booking_code(booking.booking_code.clone().into());
                api.set_booking_status(status.into());
                api.set_screen(Screen::Done);
            });
            // One print, telling the truth: at once when the booking is already decided (a
            // leased place) or the office is offline (marked provisional); online, once the
            // verdict is in, or after a short wait — also for a leased place when the person has
            // a document pre-check, whose page's link comes with the verdict.
            let precheck = booking
                .permit
                .is_some_and(|p| c.core().precheck_of(p).is_some());
            if (booking.is_confirmed() && !precheck) || !c.core().status().online {
                print(c);
            } else {
                await_verdict(c, booking.request);
            }
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
        // Said in the person's language: what is wrong with the number or address typed.
        Err(CoreError::Contact(e)) => c.say(contact_error_text(e), true),
        Err(e) => c.show_message(e.to_string(), true),
    }
}

/// What the kiosk says of a phone number or an e-mail address it cannot take.
fn contact_error_text(e: coper_shared::contact::ContactError) -> &'static str {
    use coper_shared::contact::ContactError;
    match e {
        ContactError::PhoneNotDigits => {
            "Phone: digits only, with the country prefix (e.g. +39 333 1234567)"
        }
        ContactError::PhoneLength => "Phone: 8 to 15 digits with the country prefix",
        ContactError::Email => "E-mail address not valid (e.g. name@example.com)",
    }
}

fn status_text(c: &Controller, b: &LocalBooking) -> String {
    match &b.status {
        BookingStatus::Pending { lease: true } | BookingStatus::Confirmed => c.tr("Confirmed"),
        BookingStatus::Pending { lease: false } => {
            c.tr("Provisional: awaiting confirmation from the Questura")
        }
        BookingStatus::Relocated { date, time } => c
            .tr("Moved to {}")
            .replace("{}", &c.slot_text(*date, *time)),
        // The two refusals an operator can act on say why; the others are faults of the kiosk.
        BookingStatus::Rejected { reason } => match reason.as_str() {
            "quota_reached" => {
                c.tr("Rejected: this office has used all its places for that day or week")
            }
            "no_free_slot" => c.tr("Rejected: no free place left"),
            "already_booked" => c.tr("Rejected: this person already has a booking"),
            _ => c.tr("Rejected"),
        },
        BookingStatus::CancelPending => c.tr("Cancellation sent"),
        BookingStatus::Cancelled => c.tr("Cancelled"),
    }
}

fn booking(c: &Controller, request: Uuid) -> Option<LocalBooking> {
    c.core()
        .bookings()
        .into_iter()
        .find(|b| b.request == request)
}

/// How long a booking made online waits for the server's verdict before its reminder is printed
/// as provisional (the verdict usually arrives in well under a second).
pub const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// Hold the print of `request`'s reminder until its verdict arrives (see [`show_bookings`]) or
/// [`VERDICT_WAIT`] has passed; the print button says to wait meanwhile.
fn await_verdict(c: &Controller, request: Uuid) {
    c.state().awaiting.insert(request);
    c.with_api(|api| api.set_printing(true));
    let back = c.clone();
    std::thread::spawn(move || {
        std::thread::sleep(VERDICT_WAIT);
        back.post(move |c| print_awaited(c, request));
    });
}

/// Print the reminder held for `request`, once: the first of its verdict and the wait's end.
fn print_awaited(c: &Controller, request: Uuid) {
    let held = c.state().awaiting.remove(&request);
    if held {
        print_request(c, request);
    }
}

/// Print the last booking's reminder, as it stands now (relocated: at the new time; undecided:
/// provisional), on the printer's thread; the print button waits until it is done.
pub(super) fn print(c: &Controller) {
    let last = c.state().last;
    if let Some(request) = last {
        print_request(c, request);
    }
}

/// "Reprint" on a row: the reminder of a booking made here, as it stands now.
pub(super) fn reprint(c: &Controller, id: &str) {
    if let Ok(request) = id.parse() {
        print_request(c, request);
    }
}

/// "Seen" on a refused booking's provisional slip: the operator has told the person.
pub(super) fn slip_dealt_with(c: &Controller, id: &str) {
    if let Ok(request) = id.parse()
        && let Err(e) = c.core().slip_dealt_with(request)
    {
        tracing::warn!(error = %e, "could not record a slip dealt with");
    }
    show_bookings(c);
}

fn print_request(c: &Controller, request: Uuid) {
    let Some(booking) = booking(c, request) else {
        return;
    };
    let Some(reminder) = c.reminder_of(&booking) else {
        return;
    };
    let provisional = reminder.provisional;
    c.state().printing += 1;
    c.with_api(|api| api.set_printing(true));
    let back = c.clone();
    c.0.printer.print(reminder, move |result| {
        back.post(move |c| printed(c, &booking, provisional, result))
    });
}

/// The printer's answer, on the UI thread.
fn printed(c: &Controller, booking: &LocalBooking, provisional: bool, result: Result<(), String>) {
    let printing = {
        let mut state = c.state();
        state.printing = state.printing.saturating_sub(1);
        state.printing > 0 || !state.awaiting.is_empty()
    };
    c.with_api(|api| api.set_printing(printing));
    match result {
        // Printed as decided, the kiosk no longer needs the person's name in clear; printed as
        // provisional, the slip is remembered until it is printed again.
        Ok(()) => {
            if let Err(e) = c.core().reminder_printed(booking, provisional) {
                tracing::warn!(error = %e, "could not record a printed reminder");
            }
            show_bookings(c);
        }
        Err(e) => {
            tracing::error!(error = %e, "the reminder was not printed");
            c.show_message(e, true);
        }
    }
}

impl Controller {
    /// The reminder of `b`, in Italian and the person's language.
    pub fn reminder_of(&self, b: &LocalBooking) -> Option<Reminder> {
        let core = self.core();
        let questura = core.questura()?;
        let partner = core.partner().map(|p| p.name).unwrap_or_default();
        // The booking as the body's list has it: names once the kiosk forgot them, the
        // language, the pre-check link.
        let listed = core
            .partner_bookings()
            .into_iter()
            .find(|p| p.request == Some(b.request));
        // The language the booking was made in (a reprint later is in it too).
        let lang = b
            .lang
            .clone()
            .or_else(|| listed.as_ref().and_then(|p| p.lang.clone()))
            .unwrap_or_else(|| self.state().person_lang.clone());
        let what_to_bring = core.what_to_bring(&b.service, &lang).unwrap_or_default();
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
        // Once settled the kiosk forgets the names it kept; a reprint takes them from the body's
        // list, which has them while the booking is to come.
        let (surname, given_names) = if b.surname.is_empty() {
            listed
                .as_ref()
                .map(|p| (p.surname.clone(), p.given_names.clone()))
                .unwrap_or_default()
        } else {
            (b.surname.clone(), b.given_names.clone())
        };
        Some(Reminder {
            questura: questura.name,
            questura_address: questura.address,
            service,
            what_to_bring: what_to_bring.0,
            what_to_bring_theirs: what_to_bring.1,
            date,
            time,
            surname,
            given_names,
            booking_code: b.booking_code.clone(),
            ticket: core.ticket(b),
            partner,
            provisional: !b.is_confirmed(),
            still_to_bring: b
                .permit
                .and_then(|p| core.precheck_of(p))
                .map(|summary| Reminder::lines_of(&summary, &lang))
                .unwrap_or_default(),
            precheck_link: listed.and_then(|p| p.precheck_link),
            lang,
        })
    }
}

/// "Cancel" on a row: asks for a confirmation in place.
pub(super) fn cancel_booking(c: &Controller, id: &str) {
    c.state().confirming = Some(id.to_owned());
    show_bookings(c);
}

/// "Yes, cancel": the cancellation goes to the server; the row says so until it answers.
pub(super) fn confirm_cancel(c: &Controller, id: &str) {
    c.state().confirming = None;
    if let Ok(id) = id.parse::<Uuid>()
        && let Err(e) = c.core().cancel(id)
    {
        c.show_message(e.to_string(), true);
    }
    c.show_core();
}

/// The body's missed appointments not booked again (the server lists those of the last 30
/// days), with how to reach each person: the office calls them back and books them again.
fn missed_rows(c: &Controller, body: &[PartnerBooking]) -> Vec<BookingRow> {
    body.iter()
        .filter(|b| b.state == AppointmentState::NoShow)
        .map(|b| {
            let language = b
                .lang
                .as_deref()
                .and_then(crate::i18n::language)
                .map(|l| l.own_name);
            let detail: Vec<String> = [
                b.phone.as_ref().map(|p| format!("{}: {p}", c.tr("Phone"))),
                b.email.as_ref().map(|e| format!("{}: {e}", c.tr("E-mail"))),
                language.map(str::to_owned),
            ]
            .into_iter()
            .flatten()
            .collect();
            BookingRow {
                id: b.appointment.to_string().into(),
                name: format!("{} {}", b.surname.to_uppercase(), b.given_names).into(),
                when: c.slot_text(b.date, b.time).into(),
                status: c.tr("Did not come").into(),
                detail: detail.join(" · ").into(),
                ..BookingRow::default()
            }
        })
        .collect()
}

/// "Book again" on a missed appointment: the booking starts with the person's names (and
/// contacts) filled in; the operator asks the birth date to find the permit, and the consent
/// again.
pub(super) fn book_again(c: &Controller, appointment: &str) {
    let Some(missed) =
        c.core().partner_bookings().into_iter().find(|b| {
            b.appointment.to_string() == appointment && b.state == AppointmentState::NoShow
        })
    else {
        return;
    };
    navigation::go(c, Screen::Find);
    c.with_api(|api| {
        api.set_surname(missed.surname.into());
        api.set_given_names(missed.given_names.into());
        api.set_phone(missed.phone.unwrap_or_default().into());
        api.set_email(missed.email.unwrap_or_default().into());
        api.set_active_field("birth-date".into());
    });
}

/// "Refresh": the list drawn again as it is now.
pub(super) fn refresh_list(c: &Controller) {
    c.state().frozen = None;
    show_bookings(c);
}

/// "Keep": no cancellation.
pub(super) fn keep_booking(c: &Controller) {
    c.state().confirming = None;
    show_bookings(c);
}

/// What the list says of one of the body's bookings: its status and a line of detail (old → new
/// time and why, the phone). `mine`: the booking as this kiosk made it, if it did.
fn body_status(
    c: &Controller,
    b: &PartnerBooking,
    mine: Option<&LocalBooking>,
) -> (String, String) {
    let mut detail = Vec::new();
    let status = match b.state {
        _ if mine.is_some_and(|m| m.cancel_refused.is_some())
            && b.state != AppointmentState::Cancelled =>
        {
            c.tr("Cancellation refused by the Questura")
        }
        AppointmentState::Booked
            if mine.is_some_and(|m| m.status == BookingStatus::CancelPending) =>
        {
            c.tr("Cancellation sent")
        }
        AppointmentState::Booked
            if b.moved_from.is_none()
                && mine.is_some_and(|m| matches!(m.status, BookingStatus::Relocated { .. })) =>
        {
            status_text(c, mine.expect("just checked"))
        }
        AppointmentState::Booked => match b.moved_from {
            Some((date, time)) => {
                detail.push(format!(
                    "{} → {}",
                    c.slot_text(date, time),
                    c.slot_text(b.date, b.time)
                ));
                detail.extend(b.reason.clone());
                c.tr("Moved by the Questura")
            }
            None => c.tr("Confirmed"),
        },
        AppointmentState::CheckedIn => c.tr("At the counter"),
        AppointmentState::Delivered => c.tr("Delivered"),
        AppointmentState::Cancelled if b.replaced => c.tr("Replaced by a new booking"),
        AppointmentState::Cancelled if b.changed_by_questura => {
            detail.extend(b.reason.clone());
            c.tr("Cancelled by the Questura")
        }
        AppointmentState::Cancelled => c.tr("Cancelled"),
        AppointmentState::NoShow => c.tr("Did not come"),
    };
    if let Some(phone) = &b.phone {
        detail.push(format!("{}: {phone}", c.tr("Phone")));
    }
    (status, detail.join(" · "))
}

/// The body's bookings from today on (those of its other kiosks too, as the server last sent
/// them), with this kiosk's own still undecided or refused ones; what the Questura changed since
/// the operator last looked, one line per person; and the status of the last booking.
pub(super) fn show_bookings(c: &Controller) {
    let today = c.core().now().to_zoned(status_bar::zone(c)).date();
    let (seen, confirming, last, awaiting) = {
        let state = c.state();
        (
            state.news_seen_ms,
            state.confirming.clone(),
            state.last,
            state.awaiting.clone(),
        )
    };
    let local = c.core().bookings();
    // The verdicts held reminders waited for have arrived: print them now. A person with a
    // document pre-check waits (within the same VERDICT_WAIT) for their page's link too, which
    // the body's list brings with the decision: the reminder prints it as a second QR code.
    for b in local.iter().filter(|b| awaiting.contains(&b.request)) {
        let decided = !matches!(b.status, BookingStatus::Pending { .. });
        let link_coming = b.is_confirmed()
            && b.permit.is_some_and(|p| c.core().precheck_of(p).is_some())
            && c.core().precheck_link(b.request).is_none();
        if decided && !link_coming {
            print_awaited(c, b.request);
        }
    }
    let reprints: HashSet<Uuid> = c.core().slips_to_reprint().into_iter().collect();
    let mine: HashMap<Uuid, &LocalBooking> = local.iter().map(|b| (b.request, b)).collect();
    let mut on_server = HashSet::new();
    let mut news = Vec::new();
    // Each row with a key that stays the same when a booking made here reaches the server's list.
    let mut rows: Vec<(Date, Time, String, BookingRow)> = Vec::new();
    let body = c.core().partner_bookings();
    let kiosk = c.core().kiosk_id();
    let missed = missed_rows(c, &body);
    // The booking just made, once the server's list has its person's pre-check page.
    let last_documents = body
        .iter()
        .find(|b| last.is_some() && b.request == last && b.precheck_link.is_some())
        .map(|b| b.appointment.to_string())
        .unwrap_or_default();
    // The server's time of the latest change drawn: once the list is left, what is older has
    // been seen (the kiosk's own clock may differ from the server's).
    let latest = body.iter().map(|b| b.changed_at_ms).max().unwrap_or(0);
    // Today's and later: past midnight, yesterday's stay until the server rewrites the list.
    for b in body.into_iter().filter(|b| b.date >= today) {
        let made_here = b.request.and_then(|r| mine.get(&r).copied());
        on_server.extend(b.request);
        let (status, detail) = body_status(c, &b, made_here);
        let name = format!("{} {}", b.surname.to_uppercase(), b.given_names);
        let changed = b.changed_by_questura && b.changed_at_ms > seen;
        if changed {
            let when = c.slot_text(b.date, b.time);
            news.push(SharedString::from(if detail.is_empty() {
                format!("{name} — {when}: {status}")
            } else {
                format!("{name} — {when}: {status} ({detail})")
            }));
        }
        let id = made_here.map(|m| m.request.to_string()).unwrap_or_default();
        let can_cancel = b.made_at_kiosk(kiosk)
            && b.state == AppointmentState::Booked
            && made_here.is_some_and(|m| {
                m.cancel_refused.is_none()
                    && !matches!(
                        m.status,
                        BookingStatus::CancelPending | BookingStatus::Cancelled
                    )
            });
        rows.push((
            b.date,
            b.time,
            b.request.unwrap_or(b.appointment).to_string(),
            BookingRow {
                confirming: can_cancel && confirming.as_deref() == Some(id.as_str()),
                id: id.into(),
                name: name.into(),
                when: c.slot_text(b.date, b.time).into(),
                status: status.into(),
                detail: detail.into(),
                changed,
                can_cancel,
                reprint: made_here.is_some_and(|m| reprints.contains(&m.request)),
                refused: false,
                documents: if b.precheck_link.is_some() {
                    b.appointment.to_string().into()
                } else {
                    SharedString::new()
                },
            },
        ));
    }
    // This kiosk's own, not (yet) on the server's list: undecided, refused, or the list has not
    // arrived. Once settled the kiosk no longer keeps the name: its code.
    for b in local
        .iter()
        .filter(|b| b.date >= today && !on_server.contains(&b.request))
    {
        let id = b.request.to_string();
        let can_cancel = matches!(
            b.status,
            BookingStatus::Pending { .. }
                | BookingStatus::Confirmed
                | BookingStatus::Relocated { .. }
        );
        rows.push((
            b.date,
            b.time,
            id.clone(),
            BookingRow {
                confirming: can_cancel && confirming.as_deref() == Some(id.as_str()),
                id: id.into(),
                name: if b.surname.is_empty() {
                    b.booking_code.clone().into()
                } else {
                    format!("{} {}", b.surname.to_uppercase(), b.given_names).into()
                },
                when: c.slot_text(b.date, b.time).into(),
                status: status_text(c, b).into(),
                detail: SharedString::new(),
                changed: false,
                can_cancel,
                reprint: reprints.contains(&b.request),
                refused: matches!(b.status, BookingStatus::Rejected { .. }),
                documents: SharedString::new(),
            },
        ));
    }
    rows.sort_by_key(|(date, time, _, _)| (*date, *time));
    let keyed: Vec<(String, BookingRow)> = rows
        .into_iter()
        .map(|(_, _, key, row)| (key, row))
        .collect();
    // While the list is on screen its rows and news stay where they are (statuses still change
    // in place): a booking arriving or leaving would move a button under the operator's finger.
    // It says the list has changed instead, and "Refresh" redraws it.
    let on_screen = c.with_api(|api| api.get_screen()) == Some(Screen::Bookings);
    let (rows, news, list_changed) = {
        let mut state = c.state();
        match (&state.frozen, on_screen) {
            (Some((keys, frozen_news)), true) => {
                let changed = keyed.len() != keys.len()
                    || keyed.iter().any(|(k, _)| !keys.contains(k))
                    || news != *frozen_news;
                let mut by_key: HashMap<String, BookingRow> = keyed.into_iter().collect();
                let rows: Vec<BookingRow> = keys.iter().filter_map(|k| by_key.remove(k)).collect();
                (rows, frozen_news.clone(), changed)
            }
            (_, on_screen) => {
                if on_screen {
                    state.news_drawn_ms = latest;
                }
                state.frozen = on_screen
                    .then(|| (keyed.iter().map(|(k, _)| k.clone()).collect(), news.clone()));
                (keyed.into_iter().map(|(_, row)| row).collect(), news, false)
            }
        }
    };
    let last_status = last
        .and_then(|request| local.iter().find(|b| b.request == request))
        .map(|b| status_text(c, b));
    let count = news.len() as i32;
    let reprint_count = rows.iter().filter(|r| r.reprint).count() as i32;
    c.with_api(|api| {
        api.set_reprint_count(reprint_count);
        api.set_bookings(ModelRc::new(VecModel::from(rows)));
        api.set_missed(ModelRc::new(VecModel::from(missed)));
        api.set_news(ModelRc::new(VecModel::from(news)));
        api.set_news_count(count);
        api.set_list_changed(list_changed);
        if let Some(status) = last_status {
            api.set_booking_status(status.into());
        }
        api.set_done_documents(last_documents.into());
    });
}
