//! The screens' behaviour: the callbacks of the `Api` global (`ui/api.slint`), answered with the
//! kiosk core, one module per flow — [`navigation`] (screens, language, inactivity), [`login`],
//! [`booking`], [`self_check`], [`status_bar`], the on-screen [`keyboard`], and the [`printer`].
//!
//! Every touch is answered at once from the local replica. What takes time runs elsewhere and
//! comes back as a *report*: the printer on its own thread, an operator's password check on a
//! worker thread, and the core's changes (documents received, the connection lost or found),
//! which the core pushes rather than the screens polling. Reports are queued and applied on the
//! UI thread, woken with `slint::invoke_from_event_loop`; without an event loop (Slint's testing
//! backend) [`Controller::refresh`] applies them.

mod booking;
#[cfg(test)]
mod contrast;
mod keyboard;
mod login;
mod navigation;
mod printer;
mod self_check;
mod speak;
mod status_bar;

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use coper_shared::{
    ids::ServiceId,
    jiff::civil::{Date, Time},
};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use uuid::Uuid;

pub use navigation::{IDLE_WARNING, OPERATOR_IDLE, PUBLIC_IDLE};
pub use printer::Printer;

use crate::{
    Api, AppWindow, Choice,
    core::{KioskCore, Proposal},
    i18n::{LANGUAGES, tr},
};

/// The kiosk's language when nobody has chosen one, and the operator's screens' language: the
/// kiosk returns to it after an operator leaves and after the public screen clears.
pub const DEFAULT_LANGUAGE: &str = "it";

/// What the screens remember between touches.
#[derive(Default)]
struct State {
    /// The language of the screens.
    lang: String,
    /// The person's language: the reminder, the messages, the self-check. Chosen at the start
    /// screen; the operator may change it when booking, while the screens stay in the
    /// operator's language.
    person_lang: String,
    /// A booking was made in the person's language as it stands: the next one asks again.
    person_chosen_for_booking: bool,
    operator: Option<String>,
    permit: Option<i64>,
    service: Option<ServiceId>,
    /// The options shown are the free times of a chosen day (else the next days).
    options_are_times: bool,
    /// The person's active booking for the chosen service, which confirming moves.
    moving: Option<coper_shared::documents::BookedPermit>,
    proposal: Option<Proposal>,
    options: Vec<Proposal>,
    last: Option<Uuid>,
    /// The bookings whose reminders wait for the server's verdict before printing.
    awaiting: std::collections::HashSet<Uuid>,
    /// The latest change (server time, ms since the epoch) of the body's bookings the operator
    /// has seen: what the Questura changed after that is news.
    news_seen_ms: i64,
    /// The latest change drawn on the list now on screen: seen once the list is left.
    news_drawn_ms: i64,
    /// While the list of bookings is on screen: its rows (by key, in order) and news as first
    /// drawn, so nothing moves under a finger.
    frozen: Option<(Vec<String>, Vec<SharedString>)>,
    /// The booking whose cancellation the operator is asked to confirm.
    confirming: Option<String>,
    /// Reminders sent to the printer and not yet printed.
    printing: usize,
    last_touch: Option<Instant>,
}

/// Work done off the UI thread, to apply on it.
type Report = Box<dyn FnOnce(&Controller) + Send>;

/// The bound window. Cheap to clone, and sendable, so a worker can hand a report back to it; the
/// window itself is only ever touched on the UI thread (`slint::Weak` sees to that).
#[derive(Clone)]
pub struct Controller(Arc<Shared>);

struct Shared {
    window: slint::Weak<AppWindow>,
    core: Arc<KioskCore>,
    state: Mutex<State>,
    printer: printer::Worker,
    reports: Mutex<Vec<Report>>,
    /// A refresh for the core's changes is already queued.
    refresh_queued: AtomicBool,
    /// Answers read aloud.
    voice: Mutex<Arc<crate::speech::Voice>>,
}

/// Bind `window`'s callbacks to `core`. The caller keeps the window and runs its loop.
pub fn bind(window: &AppWindow, core: Arc<KioskCore>, printer: Printer) -> Controller {
    let controller = Controller(Arc::new(Shared {
        window: window.as_weak(),
        core,
        printer: printer::Worker::start(printer),
        state: Mutex::new(State {
            lang: DEFAULT_LANGUAGE.into(),
            person_lang: DEFAULT_LANGUAGE.into(),
            ..State::default()
        }),
        reports: Mutex::new(Vec::new()),
        refresh_queued: AtomicBool::new(false),
        voice: Mutex::new(Arc::new(crate::speech::Voice::new(
            crate::speech::Speaker::System,
        ))),
    }));
    let api = window.global::<Api>();
    api.set_languages(choices(
        LANGUAGES
            .iter()
            .map(|l| (l.code.to_owned(), l.own_name.to_owned())),
    ));
    api.set_version(env!("CARGO_PKG_VERSION").into());

    // Every touch that reaches Rust counts as activity for the inactivity rules.
    let on = |f: fn(&Controller)| {
        let c = controller.clone();
        move || {
            navigation::touch(&c);
            f(&c)
        }
    };
    let on_text = |f: fn(&Controller, &str)| {
        let c = controller.clone();
        move |text: SharedString| {
            navigation::touch(&c);
            f(&c, &text)
        }
    };
    api.on_choose_language(on_text(navigation::choose_language));
    api.on_operator_path(on(navigation::operator_path));
    api.on_public_path(on(navigation::public_path));
    let c = controller.clone();
    api.on_go(move |screen| {
        navigation::touch(&c);
        navigation::go(&c, screen);
    });
    api.on_touched(on(navigation::touch));
    api.on_log_in(on(login::log_in));
    api.on_log_out(on(login::log_out));
    api.on_find(on(booking::find));
    api.on_choose_service(on_text(booking::choose_service));
    api.on_confirm_proposal(on(booking::confirm_proposal));
    api.on_another_day(on(booking::another_day));
    api.on_pick_option(on_text(booking::pick_option));
    api.on_confirm_booking(on(booking::confirm_booking));
    api.on_print(on(booking::print));
    api.on_cancel_booking(on_text(booking::cancel_booking));
    api.on_confirm_cancel(on_text(booking::confirm_cancel));
    api.on_reprint(on_text(booking::reprint));
    api.on_show_documents(on_text(booking::show_documents));
    api.on_choose_person_language(on_text(navigation::choose_person_language));
    api.on_listen(on_text(speak::listen));
    api.on_more_time(on(navigation::more_time));
    api.on_hide_documents(on(booking::hide_documents));
    api.on_slip_dealt_with(on_text(booking::slip_dealt_with));
    api.on_keep_booking(on(booking::keep_booking));
    api.on_refresh_list(on(booking::refresh_list));
    api.on_book_again(on_text(booking::book_again));
    api.on_check(on(self_check::check));
    api.on_key(on_text(keyboard::key));
    api.on_erase(on(keyboard::erase));

    // The core's changes are pushed: each queues one refresh of what the screens show from it.
    let weak = Arc::downgrade(&controller.0);
    controller.0.core.on_change(move || {
        let Some(c) = weak.upgrade().map(Controller) else {
            return;
        };
        if !c.0.refresh_queued.swap(true, Ordering::SeqCst) {
            c.post(|c| {
                c.0.refresh_queued.store(false, Ordering::SeqCst);
                c.show_core();
            });
        }
    });
    navigation::choose_language(&controller, DEFAULT_LANGUAGE);
    controller.refresh();
    controller
}

impl Controller {
    /// Apply what the workers reported, bring the status bar and the bookings up to date with the
    /// core, and apply the inactivity rules. The event loop does all this by itself as things
    /// happen; tests without one call it.
    pub fn refresh(&self) {
        self.apply_reports();
        self.show_core();
        navigation::apply_idle_rules(self);
    }

    /// Hand `report` to the UI thread: queued, and the event loop woken to apply it.
    fn post(&self, report: impl FnOnce(&Controller) + Send + 'static) {
        self.lock_reports().push(Box::new(report));
        let c = self.clone();
        // Without an event loop (the testing backend), the next `refresh` applies it.
        let _ = slint::invoke_from_event_loop(move || c.apply_reports());
    }

    fn apply_reports(&self) {
        // Only on the UI thread, while the window lives.
        if self.0.window.upgrade().is_none() {
            return;
        }
        let reports = std::mem::take(&mut *self.lock_reports());
        for report in reports {
            report(self);
        }
    }

    fn lock_reports(&self) -> MutexGuard<'_, Vec<Report>> {
        self.0.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the screens show from the core.
    fn show_core(&self) {
        status_bar::show(self);
        booking::show_bookings(self);
    }

    fn core(&self) -> &KioskCore {
        &self.0.core
    }

    /// The screens' memory. Never held across a call that takes it again.
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the window's `Api`, if the window is still there.
    fn with_api<R>(&self, f: impl FnOnce(&Api<'_>) -> R) -> Option<R> {
        let window = self.0.window.upgrade()?;
        Some(f(&window.global::<Api>()))
    }

    /// `english` in the language on screen.
    fn tr(&self, english: &str) -> String {
        let lang = self.state().lang.clone();
        tr(&lang, english)
    }

    /// Show `english`, translated, in the message line.
    fn say(&self, english: &str, error: bool) {
        let text = self.tr(english);
        self.show_message(text, error);
    }

    fn show_message(&self, text: String, error: bool) {
        self.with_api(|api| {
            api.set_message(text.into());
            api.set_message_is_error(error);
        });
    }
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

impl Controller {
    /// A slot as the kiosk shows it: [`Self::day_text`], then `HH:MM` ("martedì 24/11/2026
    /// 09:20").
    fn slot_text(&self, date: Date, time: Time) -> String {
        format!("{} {}", self.day_text(date), time.strftime("%H:%M"))
    }

    /// A day as the kiosk shows it: the weekday in the screen's language, then `dd/mm/yyyy`.
    fn day_text(&self, date: Date) -> String {
        let lang = self.state().lang.clone();
        day_text_in(&lang, date)
    }

    /// Read answers aloud to `speaker` from now on (a folder of WAV files, for tests).
    pub fn set_speaker(&self, speaker: crate::speech::Speaker) {
        *self.0.voice.lock().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(crate::speech::Voice::new(speaker));
    }
}

/// A day in language `lang`: the weekday, then `dd/mm/yyyy`.
fn day_text_in(lang: &str, date: Date) -> String {
    format!(
        "{} {}",
        crate::i18n::weekday(lang, date),
        date.strftime("%d/%m/%Y")
    )
}
