//! Operators logging in at the kiosk, offline too, with the accounts the server last sent: the
//! Argon2 hash is checked on the kiosk, under a per-kiosk limit on wrong passwords.
//!
//! Checking a hash takes a noticeable fraction of a second, so it is split from the lookup:
//! [`KioskCore::login_attempt`] reads the account and the limit at once, and
//! [`LoginAttempt::verify`] does the slow part wherever the caller likes (the screens run it on a
//! worker thread).

use std::{sync::Arc, time::Duration};

use coper_shared::documents::{DocName, OperatorEntry, PartnerEntry, collections, record};

use super::{KioskCore, Shared, limits::SlidingWindow};

/// Wrong passwords at one kiosk before it waits [`LOGIN_LOCK`].
const MAX_LOGIN_FAILURES: usize = 5;
const LOGIN_LOCK: Duration = Duration::from_secs(60);

pub(super) fn login_limit() -> SlidingWindow {
    SlidingWindow::new(MAX_LOGIN_FAILURES, LOGIN_LOCK)
}

/// Why an operator could not log in at the kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("this account is deactivated")]
    Inactive,
    #[error("the kiosk has never synchronised: it knows no account yet")]
    NeverSynchronised,
    #[error("too many wrong passwords: wait a minute")]
    TooManyAttempts,
}

/// A login the kiosk may try: the account (if any) read, the limit not reached. Sendable to
/// another thread for the slow hash check.
pub struct LoginAttempt {
    entry: Option<OperatorEntry>,
    shared: Arc<Shared>,
}

impl LoginAttempt {
    /// Check `password` against the account's Argon2 hash: the operator's name to show, or why
    /// not. A wrong password counts against the kiosk's limit. Slow by design.
    pub fn verify(self, password: &str) -> Result<String, LoginRefusal> {
        let verified = self
            .entry
            .as_ref()
            .is_some_and(|e| coper_shared::passwords::verify(password, &e.password_hash));
        match self.entry {
            Some(e) if verified && e.active => Ok(if e.display_name.is_empty() {
                e.username
            } else {
                e.display_name
            }),
            Some(e) if verified && !e.active => Err(LoginRefusal::Inactive),
            _ => {
                self.shared.login_failures.record();
                Err(LoginRefusal::WrongCredentials)
            }
        }
    }
}

impl KioskCore {
    /// Check an operator's credentials against the accounts the server last sent (so it works
    /// offline). A kiosk that has never synchronised knows no account and lets nobody in.
    pub fn log_in(&self, username: &str, password: &str) -> Result<String, LoginRefusal> {
        self.login_attempt(username)?.verify(password)
    }

    /// The quick half of [`KioskCore::log_in`]: the account of `username`, unless the kiosk knows
    /// no account yet or has seen too many wrong passwords.
    pub fn login_attempt(&self, username: &str) -> Result<LoginAttempt, LoginRefusal> {
        let entry = {
            let inner = self.shared.lock();
            let Some(doc) = inner.docs.get(&DocName::Operators(inner.kiosk)) else {
                return Err(LoginRefusal::NeverSynchronised);
            };
            record(doc, collections::OPERATORS, &username.trim().to_lowercase())
        };
        if self.shared.login_failures.is_full() {
            return Err(LoginRefusal::TooManyAttempts);
        }
        Ok(LoginAttempt {
            entry,
            shared: self.shared.clone(),
        })
    }

    /// This kiosk's partner body, as the server last sent it.
    pub fn partner(&self) -> Option<PartnerEntry> {
        let inner = self.shared.lock();
        let doc = inner.docs.get(&DocName::Operators(inner.kiosk))?;
        record(doc, collections::PARTNER, "partner")
    }
}
