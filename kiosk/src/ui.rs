//! The screens' behaviour: the callbacks of `ui/app.slint`, answered with the kiosk core. Every
//! answer comes from the local replica, so a touch is answered at once, online or not.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::PathBuf,
    rc::Rc,
    time::{Duration, Instant},
};

use coper_shared::{
    ids::ServiceId,
    jiff::{
        Timestamp, ToSpan,
        civil::{Date, DateTime},
    },
};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use uuid::Uuid;

use crate::{
    AppWindow, BookingRow, Choice,
    core::{
        BookingStatus, CoreError, KioskCore, LocalBooking, LoginRefusal, Proposal, SelfCheck,
        SelfCheckRefusal,
    },
    i18n::{LANGUAGES, language, tr},
    reminder::{self, Paper, Reminder},
};

/// An operator is logged out after this long without a touch.
pub const OPERATOR_IDLE: Duration = Duration::from_secs(180);
/// The public self-check clears itself after this long without a touch.
pub const PUBLIC_IDLE: Duration = Duration::from_secs(60);

/// Where reminders go, from the kiosk's configuration (`--printer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printer {
    /// A PDF to the system printer through CUPS (`lp`), optionally a named one.
    Cups {
        printer: Option<String>,
        paper: Paper,
    },
    /// An 80 mm ESC/POS receipt printer's device, e.g. `/dev/usb/lp0`.
    EscPos(PathBuf),
    /// Files in a folder (PDF and ESC/POS both): for tests and for setting printers up.
    Folder(PathBuf),
}

impl Printer {
    /// `pdf`, `pdf-a4`, `pdf:PRINTER`, `escpos:DEVICE` or `dir:FOLDER`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            None if spec == "pdf" => Ok(Self::Cups {
                printer: None,
                paper: Paper::A5,
            }),
            None if spec == "pdf-a4" => Ok(Self::Cups {
                printer: None,
                paper: Paper::A4,
            }),
            Some(("pdf", name)) => Ok(Self::Cups {
                printer: Some(name.to_owned()),
                paper: Paper::A5,
            }),
            Some(("escpos", device)) => Ok(Self::EscPos(device.into())),
            Some(("dir", folder)) => Ok(Self::Folder(folder.into())),
            _ => Err(format!(
                "unknown printer «{spec}»: pdf, pdf-a4, pdf:NAME, escpos:DEVICE or dir:FOLDER"
            )),
        }
    }

    fn print(&self, r: &Reminder) -> Result<(), String> {
        match self {
            Self::Cups { printer, paper } => {
                let pdf = reminder::pdf(r, *paper).map_err(|e| e.to_string())?;
                reminder::print_pdf(&pdf, printer.as_deref()).map_err(|e| e.to_string())
            }
            Self::EscPos(device) => {
                let raster = reminder::receipt_raster(r).map_err(|e| e.to_string())?;
                reminder::print_escpos(&reminder::escpos(&raster), device)
                    .map_err(|e| e.to_string())
            }
            Self::Folder(folder) => {
                std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
                let pdf = reminder::pdf(r, Paper::A5).map_err(|e| e.to_string())?;
                std::fs::write(folder.join(format!("{}.pdf", r.booking_code)), pdf)
                    .map_err(|e| e.to_string())?;
                let raster = reminder::receipt_raster(r).map_err(|e| e.to_string())?;
                std::fs::write(
                    folder.join(format!("{}.escpos", r.booking_code)),
                    reminder::escpos(&raster),
                )
                .map_err(|e| e.to_string())
            }
        }
    }
}

type Getter = fn(&AppWindow) -> SharedString;
type Setter = fn(&AppWindow, SharedString);

/// The fields the on-screen keyboard fills, by the key `active-field` names them with.
const FIELDS: [(&str, Getter, Setter); 8] = [
    ("username", AppWindow::get_username, AppWindow::set_username),
    ("password", AppWindow::get_password, AppWindow::set_password),
    ("surname", AppWindow::get_surname, AppWindow::set_surname),
    (
        "given-names",
        AppWindow::get_given_names,
        AppWindow::set_given_names,
    ),
    (
        "birth-date",
        AppWindow::get_birth_date,
        AppWindow::set_birth_date,
    ),
    (
        "fingerprint-date",
        AppWindow::get_fingerprint_date,
        AppWindow::set_fingerprint_date,
    ),
    ("number", AppWindow::get_number, AppWindow::set_number),
    ("phone", AppWindow::get_phone, AppWindow::set_phone),
];

#[derive(Default)]
struct State {
    lang: String,
    operator: Option<String>,
    permit: Option<i64>,
    service: Option<ServiceId>,
    proposal: Option<Proposal>,
    options: Vec<Proposal>,
    last: Option<Uuid>,
    /// What each printed booking's status was when it was printed, to raise an alert when the
    /// server changes it.
    printed: HashMap<Uuid, BookingStatus>,
    last_touch: Option<Instant>,
}

/// The bound window: call [`Controller::refresh`] every second (the run loop's timer does).
#[derive(Clone)]
pub struct Controller {
    window: slint::Weak<AppWindow>,
    core: Rc<KioskCore>,
    state: Rc<RefCell<State>>,
    printer: Rc<Printer>,
}

fn choices(items: impl IntoIterator<Item = (String, String)>) -> ModelRc<Choice> {
    ModelRc::new(VecModel::from(
        items
            .into_iter()
            .map(|(code, name)| Choice {
                code: code.into(),
                name: name.into(),
            })
            .collect::<Vec<_>>(),
    ))
}

/// `dd/mm/yyyy`, or the digits alone (`ddmmyyyy`), as typed on the keyboard.
pub fn parse_typed_date(text: &str) -> Option<Date> {
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() != 8 {
        return None;
    }
    let (d, m, y) = (&digits[..2], &digits[2..4], &digits[4..]);
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

fn slot_text(date: Date, time: coper_shared::jiff::civil::Time) -> String {
    format!("{} {}", date.strftime("%d/%m/%Y"), time.strftime("%H:%M"))
}

impl Controller {
    fn tr(&self, english: &str) -> String {
        tr(&self.state.borrow().lang, english)
    }

    fn with_window(&self, f: impl FnOnce(&AppWindow)) {
        if let Some(window) = self.window.upgrade() {
            f(&window);
        }
    }

    fn say(&self, english: &str, error: bool) {
        let text = self.tr(english);
        self.with_window(|w| {
            w.set_message(text.into());
            w.set_message_is_error(error);
        });
    }

    fn clear_fields(&self) {
        self.with_window(|w| {
            for (_, _, set) in FIELDS {
                set(w, SharedString::new());
            }
            for set in [
                AppWindow::set_active_field,
                AppWindow::set_message,
                AppWindow::set_check_result,
            ] {
                set(w, SharedString::new());
            }
            w.set_permit_found(false);
            w.set_show_options(false);
        });
    }

    fn go(&self, screen: &str) {
        let operator = self.state.borrow().operator.is_some();
        // Operator screens need a logged-in operator.
        let screen = if matches!(
            screen,
            "menu" | "find" | "proposal" | "confirm" | "done" | "bookings"
        ) && !operator
        {
            "start"
        } else {
            screen
        };
        if screen == "find" || screen == "start" || screen == "check" {
            self.clear_fields();
            self.state.borrow_mut().permit = None;
        }
        if screen == "bookings" {
            self.refresh();
        }
        self.with_window(|w| {
            w.set_screen(screen.into());
            w.set_active_field(SharedString::new());
            w.set_message(SharedString::new());
        });
    }

    fn choose_language(&self, code: &str) {
        let Some(lang) = language(code) else { return };
        self.state.borrow_mut().lang = lang.code.to_owned();
        // English is the catalogue's source language: selecting it means no translation.
        if let Err(e) =
            slint::select_bundled_translation(if lang.code == "en" { "" } else { lang.code })
        {
            tracing::error!(language = lang.code, error = %e, "no translation bundled");
        }
        self.with_window(|w| w.set_rtl(lang.right_to_left));
    }

    fn log_in(&self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        match self.core.log_in(&w.get_username(), &w.get_password()) {
            Ok(name) => {
                self.state.borrow_mut().operator = Some(name.clone());
                w.set_operator_name(name.into());
                w.set_password(SharedString::new());
                self.go("menu");
            }
            Err(refusal) => {
                w.set_password(SharedString::new());
                self.say(
                    match refusal {
                        LoginRefusal::WrongCredentials => "Wrong username or password",
                        LoginRefusal::Inactive => "Account deactivated",
                        LoginRefusal::NeverSynchronised => {
                            "This kiosk has never reached the server: login is not possible yet"
                        }
                        LoginRefusal::TooManyAttempts => {
                            "Too many attempts: please wait a few minutes"
                        }
                    },
                    true,
                );
            }
        }
    }

    fn log_out(&self) {
        {
            let mut state = self.state.borrow_mut();
            state.operator = None;
            state.permit = None;
            state.service = None;
        }
        self.with_window(|w| w.set_operator_name(SharedString::new()));
        self.go("start");
    }

    fn find(&self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let Some(birth) = parse_typed_date(&w.get_birth_date()) else {
            self.say("Invalid date: write dd/mm/yyyy", true);
            return;
        };
        match self
            .core
            .find_ready(&w.get_surname(), &w.get_given_names(), birth)
        {
            Some(permit) => {
                self.state.borrow_mut().permit = Some(permit);
                w.set_services(choices(
                    self.core
                        .services()
                        .into_iter()
                        .map(|(id, name)| (id.as_str().to_owned(), name)),
                ));
                w.set_permit_found(true);
                w.set_active_field(SharedString::new());
                self.say("Permit ready: it can be booked", false);
            }
            None => {
                w.set_permit_found(false);
                self.say("Not in the list of ready permits", true);
            }
        }
    }

    fn show_proposal(&self, proposal: Option<Proposal>) {
        let text = proposal
            .as_ref()
            .map(|p| slot_text(p.slot.date, p.slot.start))
            .unwrap_or_default();
        self.state.borrow_mut().proposal = proposal;
        self.with_window(|w| {
            w.set_proposal(text.into());
            w.set_show_options(false);
        });
    }

    fn choose_service(&self, id: &str) {
        let Ok(service) = ServiceId::parse(id) else {
            return;
        };
        let first = self.core.first_free(&service).ok().flatten();
        self.state.borrow_mut().service = Some(service);
        if first.is_none() {
            self.say("No free place", true);
        }
        self.show_proposal(first);
        self.with_window(|w| w.set_screen("proposal".into()));
    }

    fn another_day(&self) {
        let (service, from) = {
            let state = self.state.borrow();
            let Some(service) = state.service.clone() else {
                return;
            };
            let from: DateTime = match &state.proposal {
                Some(p) => p
                    .slot
                    .date
                    .saturating_add(1.day())
                    .to_datetime(Default::default()),
                None => self
                    .core
                    .now()
                    .to_zoned(coper_shared::jiff::tz::TimeZone::UTC)
                    .datetime(),
            };
            (service, from)
        };
        let options = self.core.options(&service, from, 10).unwrap_or_default();
        let model = choices(
            options
                .iter()
                .enumerate()
                .map(|(i, p)| (i.to_string(), slot_text(p.slot.date, p.slot.start))),
        );
        self.state.borrow_mut().options = options;
        self.with_window(|w| {
            w.set_options(model);
            w.set_show_options(true);
        });
    }

    fn pick_option(&self, index: &str) {
        let chosen = index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.state.borrow().options.get(i).cloned());
        if chosen.is_some() {
            self.show_proposal(chosen);
        }
    }

    fn confirm_booking(&self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let (service, proposal, permit) = {
            let state = self.state.borrow();
            (state.service.clone(), state.proposal, state.permit)
        };
        let (Some(service), Some(proposal)) = (service, proposal) else {
            return;
        };
        // The names may have been edited since the search: the permit goes with the booking only
        // if it is still this person's.
        let permit = permit.filter(|p| {
            parse_typed_date(&w.get_birth_date()).and_then(|birth| {
                self.core
                    .find_ready(&w.get_surname(), &w.get_given_names(), birth)
            }) == Some(*p)
        });
        let phone = w.get_phone().to_string();
        let booked = self.core.book_for_permit(
            &service,
            proposal.slot.key(),
            &w.get_surname(),
            &w.get_given_names(),
            Some(phone.as_str()).filter(|p| !p.is_empty()),
            permit,
        );
        match booked {
            Ok(booking) => {
                self.state.borrow_mut().last = Some(booking.request);
                w.set_booking_code(booking.booking_code.clone().into());
                w.set_booking_status(self.status_text(&booking).into());
                w.set_screen("done".into());
                self.print();
                // The status bar counts the new request at once.
                self.refresh();
            }
            Err(CoreError::SlotNotFree) => {
                // Taken meanwhile (the replica moved on): propose the next one.
                self.say("No free place", true);
                let next = self.core.first_free(&service).ok().flatten();
                self.show_proposal(next);
                w.set_screen("proposal".into());
            }
            Err(e) => {
                let text = e.to_string();
                w.set_message(text.into());
                w.set_message_is_error(true);
            }
        }
    }

    fn status_text(&self, b: &LocalBooking) -> String {
        match &b.status {
            BookingStatus::Pending { lease: true } | BookingStatus::Confirmed => {
                self.tr("Confirmed")
            }
            BookingStatus::Pending { lease: false } => {
                self.tr("Provisional: awaiting confirmation from the Questura")
            }
            BookingStatus::Relocated { date, time } => self
                .tr("Moved to {}")
                .replace("{}", &slot_text(*date, *time)),
            BookingStatus::Rejected { .. } => self.tr("Rejected"),
            BookingStatus::CancelPending | BookingStatus::Cancelled => self.tr("Cancelled"),
        }
    }

    fn booking(&self, request: Uuid) -> Option<LocalBooking> {
        self.core
            .bookings()
            .into_iter()
            .find(|b| b.request == request)
    }

    /// Print the last booking's reminder, as it stands now (relocated: at the new time).
    fn print(&self) {
        let Some(request) = self.state.borrow().last else {
            return;
        };
        let Some(booking) = self.booking(request) else {
            return;
        };
        let Some(r) = self.reminder_of(&booking) else {
            return;
        };
        self.state
            .borrow_mut()
            .printed
            .insert(request, booking.status.clone());
        if let Err(e) = self.printer.print(&r) {
            tracing::error!(error = %e, "the reminder was not printed");
            self.with_window(|w| {
                w.set_message(e.into());
                w.set_message_is_error(true);
            });
        }
    }

    /// The reminder of `b`, in Italian and the kiosk's current language.
    pub fn reminder_of(&self, b: &LocalBooking) -> Option<Reminder> {
        let questura = self.core.questura()?;
        let partner = self.core.partner().map(|p| p.name).unwrap_or_default();
        let (date, time) = match b.status {
            BookingStatus::Relocated { date, time } => (date, time),
            _ => (b.date, b.time),
        };
        let service = self
            .core
            .services()
            .into_iter()
            .find(|(id, _)| *id == b.service)
            .map(|(_, name)| name)
            .unwrap_or_else(|| b.service.as_str().to_owned());
        Some(Reminder {
            questura: questura.name,
            questura_address: questura.address,
            service,
            what_to_bring: self.core.what_to_bring(&b.service).unwrap_or_default(),
            date,
            time,
            surname: b.surname.clone(),
            given_names: b.given_names.clone(),
            booking_code: b.booking_code.clone(),
            ticket: self.core.ticket(b),
            partner,
            provisional: !b.is_confirmed(),
            lang: self.state.borrow().lang.clone(),
        })
    }

    fn cancel_booking(&self, id: &str) {
        if let Ok(id) = id.parse::<Uuid>() {
            let _ = self.core.cancel(id);
        }
        self.refresh();
    }

    fn check(&self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let Some(birth) = parse_typed_date(&w.get_birth_date()) else {
            self.say("Invalid date: write dd/mm/yyyy", true);
            return;
        };
        let number = w.get_number().to_string();
        let question = if !number.trim().is_empty() {
            SelfCheck::ByNumber { number, birth }
        } else {
            let Some(fingerprint) = parse_typed_date(&w.get_fingerprint_date()) else {
                self.say("Invalid date: write dd/mm/yyyy", true);
                return;
            };
            SelfCheck::ByName {
                surname: w.get_surname().to_string(),
                given_names: w.get_given_names().to_string(),
                birth,
                fingerprint,
            }
        };
        let english = match self.core.self_check(&question) {
            Ok(true) => {
                "Your permit is ready. Book the collection here, with this office's operator."
            }
            Ok(false) => "Your permit is not ready yet. Try again in a few days.",
            Err(SelfCheckRefusal::TooManyAttempts) => {
                "Too many attempts: please wait a few minutes"
            }
            Err(SelfCheckRefusal::NoList) => "The kiosk has not received the list yet",
        };
        let text = self.tr(english);
        w.set_check_result(text.into());
        w.set_active_field(SharedString::new());
        w.set_message(SharedString::new());
    }

    fn key(&self, k: &str) {
        self.edit_active(|value| format!("{value}{k}"));
    }

    fn erase(&self) {
        self.edit_active(|value| {
            let mut value = value.to_owned();
            value.pop();
            value
        });
    }

    /// Change the field the keyboard types into.
    fn edit_active(&self, edit: impl FnOnce(&str) -> String) {
        self.touch();
        self.with_window(|w| {
            let active = w.get_active_field();
            if let Some((_, get, set)) = FIELDS.iter().find(|(key, _, _)| *key == active.as_str()) {
                set(w, edit(&get(w)).into());
            }
        });
    }

    fn touch(&self) {
        self.state.borrow_mut().last_touch = Some(Instant::now());
    }

    /// Make the kiosk believe nobody has touched it for `idle` (for tests of the inactivity rules).
    pub fn pretend_idle(&self, idle: Duration) {
        self.state.borrow_mut().last_touch = Instant::now().checked_sub(idle);
    }

    /// Bring the status bar and today's bookings up to date, raise the alert when the server
    /// changed a printed booking, and apply the inactivity rules.
    pub fn refresh(&self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let status = self.core.status();
        w.set_online(status.online);
        w.set_pending(status.pending as i32);
        w.set_lease_places(status.lease_places_today as i32);
        let zone = self
            .core
            .questura()
            .and_then(|q| coper_shared::jiff::tz::TimeZone::get(&q.time_zone).ok())
            .unwrap_or(coper_shared::jiff::tz::TimeZone::UTC);
        let last = status
            .last_sync_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_zoned(zone.clone()).strftime("%H:%M").to_string())
            .unwrap_or_else(|| self.tr("never"));
        w.set_last_sync(last.into());
        if let Some(q) = self.core.questura() {
            w.set_questura_name(q.name.into());
        }
        let today = self.core.now().to_zoned(zone).date();
        let printed = self.state.borrow().printed.clone();
        let mut alert = false;
        let rows: Vec<BookingRow> = self
            .core
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
                    name: format!("{} {}", b.surname.to_uppercase(), b.given_names).into(),
                    when: slot_text(b.date, b.time).into(),
                    status: self.status_text(&b).into(),
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
        w.set_bookings(ModelRc::new(VecModel::from(rows)));
        w.set_alert(alert);
        if let Some(request) = self.state.borrow().last
            && let Some(b) = self.booking(request)
        {
            w.set_booking_status(self.status_text(&b).into());
        }
        // Inactivity: an operator is logged out; the public check clears itself.
        let idle = self
            .state
            .borrow()
            .last_touch
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let screen = w.get_screen();
        if self.state.borrow().operator.is_some() && idle > OPERATOR_IDLE {
            self.log_out();
        } else if screen == "check" && idle > PUBLIC_IDLE {
            self.go("start");
        }
    }
}

/// Bind `window`'s callbacks to `core`. The caller keeps the window and runs its loop.
pub fn bind(window: &AppWindow, core: Rc<KioskCore>, printer: Printer) -> Controller {
    let controller = Controller {
        window: window.as_weak(),
        core,
        printer: Rc::new(printer),
        state: Rc::new(RefCell::new(State {
            lang: "it".into(),
            ..State::default()
        })),
    };
    window.set_languages(choices(
        LANGUAGES
            .iter()
            .map(|l| (l.code.to_owned(), l.own_name.to_owned())),
    ));
    window.set_version(env!("CARGO_PKG_VERSION").into());
    let c = controller.clone();
    window.on_choose_language(move |code| c.choose_language(&code));
    let c = controller.clone();
    window.on_operator_path(move || {
        c.touch();
        let screen = if c.state.borrow().operator.is_some() {
            "menu"
        } else {
            "login"
        };
        c.clear_fields();
        c.with_window(|w| {
            w.set_screen(screen.into());
            w.set_active_field(if screen == "login" {
                "username".into()
            } else {
                SharedString::new()
            });
        });
    });
    let c = controller.clone();
    window.on_public_path(move || {
        c.touch();
        c.go("check");
        c.with_window(|w| w.set_active_field("surname".into()));
    });
    let c = controller.clone();
    window.on_log_in(move || c.log_in());
    let c = controller.clone();
    window.on_log_out(move || c.log_out());
    let c = controller.clone();
    window.on_go(move |screen| {
        c.touch();
        c.go(&screen)
    });
    let c = controller.clone();
    window.on_find(move || c.find());
    let c = controller.clone();
    window.on_choose_service(move |id| c.choose_service(&id));
    let c = controller.clone();
    window.on_confirm_proposal(move || {
        c.with_window(|w| {
            w.set_screen("confirm".into());
            w.set_message(SharedString::new());
        })
    });
    let c = controller.clone();
    window.on_another_day(move || c.another_day());
    let c = controller.clone();
    window.on_pick_option(move |i| c.pick_option(&i));
    let c = controller.clone();
    window.on_confirm_booking(move || c.confirm_booking());
    let c = controller.clone();
    window.on_print(move || c.print());
    let c = controller.clone();
    window.on_cancel_booking(move |id| c.cancel_booking(&id));
    let c = controller.clone();
    window.on_check(move || c.check());
    let c = controller.clone();
    window.on_key(move |k| c.key(&k));
    let c = controller.clone();
    window.on_erase(move || c.erase());
    let c = controller.clone();
    window.on_touched(move || c.touch());
    controller.choose_language("it");
    controller.refresh();
    controller
}
