//! Operators logging in and out. The password's Argon2 check runs on a worker thread (it takes a
//! noticeable fraction of a second); meanwhile the login button waits and the screen answers.

use slint::SharedString;

use super::{Controller, navigation};
use crate::{Screen, core::LoginRefusal};

pub(super) fn log_in(c: &Controller) {
    let Some((username, password, busy)) = c.with_api(|api| {
        (
            api.get_username(),
            api.get_password().to_string(),
            api.get_logging_in(),
        )
    }) else {
        return;
    };
    if busy {
        return;
    }
    match c.core().login_attempt(&username) {
        Err(refusal) => refused(c, refusal),
        Ok(attempt) => {
            c.with_api(|api| api.set_logging_in(true));
            let back = c.clone();
            std::thread::spawn(move || {
                let result = attempt.verify(&password);
                back.post(move |c| checked(c, result));
            });
        }
    }
}

/// The password check's answer, on the UI thread.
fn checked(c: &Controller, result: Result<String, LoginRefusal>) {
    let screen = c.with_api(|api| {
        api.set_logging_in(false);
        api.get_screen()
    });
    // An operator who left the login screen meanwhile no longer waits for this login.
    if screen != Some(Screen::Login) {
        c.with_api(|api| api.set_password(SharedString::new()));
        return;
    }
    match result {
        Ok(name) => {
            c.state().operator = Some(name.clone());
            c.with_api(|api| {
                api.set_operator_name(name.into());
                api.set_password(SharedString::new());
            });
            navigation::go(c, Screen::Menu);
        }
        Err(refusal) => refused(c, refusal),
    }
}

fn refused(c: &Controller, refusal: LoginRefusal) {
    c.with_api(|api| api.set_password(SharedString::new()));
    c.say(
        match refusal {
            LoginRefusal::WrongCredentials => "Wrong username or password",
            LoginRefusal::Inactive => "Account deactivated",
            LoginRefusal::NeverSynchronised => {
                "This kiosk has never reached the server: login is not possible yet"
            }
            LoginRefusal::TooManyAttempts => "Too many attempts: please wait a few minutes",
        },
        true,
    );
}

pub(super) fn log_out(c: &Controller) {
    {
        let mut state = c.state();
        state.operator = None;
        state.permit = None;
        state.service = None;
        state.moving = None;
    }
    c.with_api(|api| api.set_operator_name(SharedString::new()));
    navigation::go(c, Screen::Start);
    navigation::reset_language(c);
}
