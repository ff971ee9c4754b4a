//! Moving between screens: the language, the two paths from the start screen (operator or
//! public), the guard that keeps operator screens for a logged-in operator, and inactivity (an
//! operator is logged out, the public self-check clears itself).

use std::time::{Duration, Instant};

use slint::SharedString;

use super::{Controller, keyboard, login};
use crate::{Screen, i18n::language};

/// An operator is logged out after this long without a touch.
pub const OPERATOR_IDLE: Duration = Duration::from_secs(180);
/// The public self-check clears itself after this long without a touch.
pub const PUBLIC_IDLE: Duration = Duration::from_secs(60);
/// How long before either limit the kiosk asks "Need more time?".
pub const IDLE_WARNING: Duration = Duration::from_secs(20);

/// Show `screen`; operator screens need a logged-in operator, or it is the start screen.
pub(super) fn go(c: &Controller, screen: Screen) {
    let operator = c.state().operator.is_some();
    let operator_screen = matches!(
        screen,
        Screen::Menu
            | Screen::Find
            | Screen::Proposal
            | Screen::Confirm
            | Screen::Done
            | Screen::Bookings
    );
    let screen = if operator_screen && !operator {
        Screen::Start
    } else {
        screen
    };
    if matches!(screen, Screen::Find | Screen::Start | Screen::Check) {
        clear_fields(c);
        let mut state = c.state();
        state.permit = None;
        state.moving = None;
    }
    // After a booking, the next is for a new person: their language is asked again (the start
    // screen's choice stands for the first).
    if screen == Screen::Find && std::mem::take(&mut c.state().person_chosen_for_booking) {
        c.state().person_lang = super::DEFAULT_LANGUAGE.into();
        show_person_language(c);
    }
    // Leaving the list of the body's bookings: what it showed as news has been seen.
    let leaving = c.with_api(|api| api.get_screen()) == Some(Screen::Bookings);
    if leaving && screen != Screen::Bookings {
        let mut state = c.state();
        state.news_seen_ms = state.news_seen_ms.max(state.news_drawn_ms);
        state.confirming = None;
        state.frozen = None;
    }
    c.with_api(|api| {
        api.set_screen(screen);
        api.set_active_field(SharedString::new());
        api.set_message(SharedString::new());
        // A person's pre-check QR, the language list: never outlive the page they were asked from.
        api.set_documents_shown(false);
        api.set_choosing_language(false);
    });
    // The list is drawn once the screen is up: what it shows then stays put while it is read.
    if screen == Screen::Bookings || leaving {
        c.show_core();
    }
}

/// Empty the fields and what was answered from them.
pub(super) fn clear_fields(c: &Controller) {
    c.with_api(|api| {
        keyboard::clear(api);
        api.set_active_field(SharedString::new());
        api.set_message(SharedString::new());
        api.set_check_result(SharedString::new());
        api.set_check_outcome(0);
        api.set_permit_found(false);
        api.set_precheck_state(SharedString::new());
        api.set_show_options(false);
    });
}

/// The start screen's choice: the person's language, for the screens too.
pub(super) fn choose_language(c: &Controller, code: &str) {
    let Some(lang) = language(code) else { return };
    {
        let mut state = c.state();
        state.person_lang = lang.code.to_owned();
        state.person_chosen_for_booking = false;
    }
    show_person_language(c);
    screen_language(c, code);
}

/// The language of the screens only (the operator's, while the person's stays).
pub(super) fn screen_language(c: &Controller, code: &str) {
    let Some(lang) = language(code) else { return };
    c.state().lang = lang.code.to_owned();
    // English is the catalogue's source language: selecting it means no translation.
    if let Err(e) =
        slint::select_bundled_translation(if lang.code == "en" { "" } else { lang.code })
    {
        tracing::error!(language = lang.code, error = %e, "no translation bundled");
    }
    c.with_api(|api| {
        api.set_rtl(lang.right_to_left);
        // An answer given in another language is not left on screen in this one.
        api.set_check_result(SharedString::new());
        api.set_check_outcome(0);
    });
}

/// The operator chooses the person's language when booking: the reminder and the messages.
pub(super) fn choose_person_language(c: &Controller, code: &str) {
    touch(c);
    let Some(lang) = language(code) else { return };
    c.state().person_lang = lang.code.to_owned();
    show_person_language(c);
    c.with_api(|api| api.set_choosing_language(false));
}

fn show_person_language(c: &Controller) {
    let code = c.state().person_lang.clone();
    let name = language(&code).map_or("", |l| l.own_name);
    c.with_api(|api| {
        api.set_person_language(name.into());
        api.set_person_language_code(code.into());
    });
}

/// Back to the kiosk's default language and text size, for the next person.
pub(super) fn reset_language(c: &Controller) {
    choose_language(c, super::DEFAULT_LANGUAGE);
    c.with_api(|api| api.set_large_text(false));
    c.0.voice.lock().unwrap_or_else(|p| p.into_inner()).stop();
}

/// "Partner office": the menu for a logged-in operator, the login otherwise.
pub(super) fn operator_path(c: &Controller) {
    touch(c);
    // The operator's screens in the operator's language; the person's stays for the reminder.
    screen_language(c, super::DEFAULT_LANGUAGE);
    let logged_in = c.state().operator.is_some();
    clear_fields(c);
    c.with_api(|api| {
        if logged_in {
            api.set_screen(Screen::Menu);
        } else {
            api.set_screen(Screen::Login);
            api.set_active_field("username".into());
        }
    });
}

/// "Is my permit ready?": the self-check, with the surname ready for typing.
pub(super) fn public_path(c: &Controller) {
    touch(c);
    go(c, Screen::Check);
    c.with_api(|api| api.set_active_field("surname".into()));
}

pub(super) fn touch(c: &Controller) {
    c.state().last_touch = Some(Instant::now());
    c.with_api(|api| api.set_idle_warning(false));
}

/// Inactivity: an operator is logged out; the public check clears itself.
pub(super) fn apply_idle_rules(c: &Controller) {
    let (idle, operator) = {
        let state = c.state();
        (
            state.last_touch.map(|t| t.elapsed()).unwrap_or_default(),
            state.operator.is_some(),
        )
    };
    let screen = c.with_api(|api| api.get_screen());
    let limit = if operator {
        Some(OPERATOR_IDLE)
    } else if screen == Some(Screen::Check) {
        Some(PUBLIC_IDLE)
    } else {
        None
    };
    match limit {
        Some(limit) if idle > limit => {
            c.with_api(|api| api.set_idle_warning(false));
            if operator {
                login::log_out(c);
            } else {
                go(c, Screen::Start);
                reset_language(c);
            }
        }
        // The last seconds: "Need more time?", so an answer never vanishes unannounced.
        Some(limit) => {
            let warn = idle + IDLE_WARNING > limit;
            c.with_api(|api| api.set_idle_warning(warn));
        }
        None => {
            c.with_api(|api| api.set_idle_warning(false));
        }
    }
}

/// "Yes, more time" (any touch does the same).
pub(super) fn more_time(c: &Controller) {
    touch(c);
    c.with_api(|api| api.set_idle_warning(false));
}

impl Controller {
    /// Make the kiosk believe nobody has touched it for `idle` (for tests of the inactivity rules).
    pub fn pretend_idle(&self, idle: Duration) {
        self.state().last_touch = Instant::now().checked_sub(idle);
    }

    /// Apply the inactivity rules every second, as long as the returned timer is kept.
    pub fn watch_inactivity(&self) -> slint::Timer {
        let timer = slint::Timer::default();
        let c = self.clone();
        timer.start(
            slint::TimerMode::Repeated,
            Duration::from_secs(1),
            move || apply_idle_rules(&c),
        );
        timer
    }
}
