//! "Listen": the kiosk reads aloud what a person must understand — the self-check's answer, the
//! booking proposal, the confirmation — in the person's language (the operator's screens may be
//! in Italian), with `crate::speech` on a worker thread.

use super::{Controller, day_text_in};
use crate::{core::BookingStatus, i18n::tr};

/// `what`: `check`, `proposal` or `done`.
pub(super) fn listen(c: &Controller, what: &str) {
    let (screen_lang, lang, proposal, last) = {
        let state = c.state();
        (
            state.lang.clone(),
            state.person_lang.clone(),
            state.proposal,
            state.last,
        )
    };
    let slot = |date, time: coper_shared::jiff::civil::Time| {
        format!("{} {}", day_text_in(&lang, date), time.strftime("%H:%M"))
    };
    let (lang, text) = match what {
        // The public's own screen: its language is the person's.
        "check" => {
            let Some(result) = c.with_api(|api| api.get_check_result().to_string()) else {
                return;
            };
            (screen_lang, result)
        }
        "proposal" => {
            let Some(p) = proposal else { return };
            let text = format!(
                "{}: {}.",
                tr(&lang, "Date and time"),
                slot(p.slot.date, p.slot.start)
            );
            (lang, text)
        }
        "done" => {
            let Some(b) =
                last.and_then(|r| c.core().bookings().into_iter().find(|b| b.request == r))
            else {
                return;
            };
            let (date, time) = match b.status {
                BookingStatus::Relocated { date, time } => (date, time),
                _ => (b.date, b.time),
            };
            // The code letter by letter, as the person will read it out at the counter.
            let spelled: Vec<String> = b
                .booking_code
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(String::from)
                .collect();
            let text = format!(
                "{}. {}: {}. {}: {}.",
                tr(&lang, "Booking recorded"),
                tr(&lang, "Date and time"),
                slot(date, time),
                tr(&lang, "Booking code"),
                spelled.join(" ")
            );
            (lang, text)
        }
        _ => return,
    };
    if text.trim().is_empty() {
        return;
    }
    let voice = c.0.voice.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let back = c.clone();
    std::thread::spawn(move || {
        if let Err(e) = voice.say(&lang, &text) {
            tracing::error!(error = %e, "could not speak");
            back.post(|c| c.say("Speech is not available on this kiosk", true));
        }
    });
}
