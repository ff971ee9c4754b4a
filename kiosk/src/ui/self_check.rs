//! The public self-check: "is my permit ready?", answered from the ready list on the kiosk, by
//! name and dates or by receipt or file number, within the kiosk's limit on attempts.

use slint::SharedString;

use super::{Controller, parse_typed_date};
use crate::core::{SelfCheck, SelfCheckRefusal};

pub(super) fn check(c: &Controller) {
    let Some((birth, number, fingerprint, surname, given_names)) = c.with_api(|api| {
        (
            api.get_birth_date(),
            api.get_number().to_string(),
            api.get_fingerprint_date(),
            api.get_surname().to_string(),
            api.get_given_names().to_string(),
        )
    }) else {
        return;
    };
    let Some(birth) = parse_typed_date(&birth) else {
        c.say("Invalid date: write dd/mm/yyyy", true);
        return;
    };
    let question = if !number.trim().is_empty() {
        SelfCheck::ByNumber { number, birth }
    } else {
        let Some(fingerprint) = parse_typed_date(&fingerprint) else {
            c.say("Invalid date: write dd/mm/yyyy", true);
            return;
        };
        SelfCheck::ByName {
            surname,
            given_names,
            birth,
            fingerprint,
        }
    };
    let (english, outcome) = match c.core().self_check(&question) {
        Ok(true) => (
            "Your permit is ready. Book the collection here, with this office's operator.",
            1,
        ),
        Ok(false) => ("Your permit is not ready yet. Try again in a few days.", 2),
        Err(SelfCheckRefusal::TooManyAttempts) => {
            ("Too many attempts: please wait a few minutes", 3)
        }
        Err(SelfCheckRefusal::NoList) => ("The kiosk has not received the list yet", 3),
    };
    let text = c.tr(english);
    c.with_api(|api| {
        api.set_check_result(text.into());
        api.set_check_outcome(outcome);
        api.set_active_field(SharedString::new());
        api.set_message(SharedString::new());
    });
}
