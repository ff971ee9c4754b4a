//! "Is my permit ready?": the public status check behind both the web page and
//! `POST /api/v1/status-check`.
//!
//! A person identifies themselves by surname, given names, birth date and fingerprinting date, or
//! by the receipt (12 characters) or pratica (10 characters) number with the birth date. The
//! answer is only "ready" or "not ready": an unknown person, a permit not ready, and a permit
//! already delivered all read "not ready", and every answer takes the same time
//! ([`ANSWER_TIME`]), so the check reveals nothing else. Attempts are limited per network (the
//! real client's /24 or /64, behind trusted proxies: `crate::limits`), in total (a budget no
//! crowd of addresses can pass), and per identity (who is asked about, without the fields a
//! guesser would vary) by a delay that grows with each question rather than a lock, so the dates
//! cannot be guessed by trying and a stranger cannot shut a person out.

use std::{net::IpAddr, num::NonZeroU32, sync::Mutex, time::Duration};

use coper_shared::{
    jiff::civil::Date,
    names::{birth_date_matches, names_match},
};
use governor::{Quota, RateLimiter, clock::DefaultClock, state::keyed::HashMapStateStore};
use sha2::{Digest, Sha256};

use crate::store::{Connection, StoreError, ready};

/// Every answer, found or not, is sent this long after the request arrived.
pub const ANSWER_TIME: Duration = Duration::from_millis(300);

/// What a person asked, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    ByName {
        surname: String,
        given_names: String,
        birth_date: Date,
        fingerprint_date: Date,
    },
    ByReceipt {
        number: String,
        birth_date: Date,
    },
    ByPratica {
        number: String,
        birth_date: Date,
    },
}

/// Why a question cannot be asked. `code()` is stable (API and translations); the Italian text is
/// for the API's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "indicare cognome, nome, data di nascita e data dei rilievi, oppure il numero di ricevuta o di pratica con la data di nascita"
    )]
    Incomplete,
    #[error("la data di nascita non è valida (AAAA-MM-GG)")]
    BadBirthDate,
    #[error("la data dei rilievi non è valida (AAAA-MM-GG)")]
    BadFingerprintDate,
    #[error("il numero di ricevuta (assicurata) ha 12 caratteri")]
    BadReceipt,
    #[error("il numero di pratica ha 10 caratteri")]
    BadPratica,
}

impl QueryError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::BadBirthDate => "invalid_birth_date",
            Self::BadFingerprintDate => "invalid_fingerprint_date",
            Self::BadReceipt => "invalid_receipt_number",
            Self::BadPratica => "invalid_pratica_number",
        }
    }
}

/// The fields as they arrive from a form or JSON; all optional, all text.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Asked {
    pub surname: Option<String>,
    pub name: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// `YYYY-MM-DD`: the day the fingerprints were taken for the permit.
    pub fingerprint_date: Option<String>,
    /// The 12-character number of the postal receipt (assicurata).
    pub receipt_number: Option<String>,
    /// The 10-character pratica number.
    pub pratica_number: Option<String>,
}

fn present(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn date(field: &Option<String>, error: QueryError) -> Result<Date, QueryError> {
    present(field)
        .ok_or(QueryError::Incomplete)?
        .parse::<Date>()
        .map_err(|_| error)
}

/// A receipt or pratica number as printed: capitals, no spaces.
fn number(field: &str, len: usize, error: QueryError) -> Result<String, QueryError> {
    let cleaned: String = field
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if cleaned.chars().count() == len && cleaned.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(cleaned)
    } else {
        Err(error)
    }
}

impl Asked {
    /// The question, or what is missing or wrong in it.
    pub fn query(&self) -> Result<Query, QueryError> {
        if let Some(receipt) = present(&self.receipt_number) {
            return Ok(Query::ByReceipt {
                number: number(receipt, 12, QueryError::BadReceipt)?,
                birth_date: date(&self.birth_date, QueryError::BadBirthDate)?,
            });
        }
        if let Some(pratica) = present(&self.pratica_number) {
            return Ok(Query::ByPratica {
                number: number(pratica, 10, QueryError::BadPratica)?,
                birth_date: date(&self.birth_date, QueryError::BadBirthDate)?,
            });
        }
        let (Some(surname), Some(given)) = (present(&self.surname), present(&self.name)) else {
            return Err(QueryError::Incomplete);
        };
        Ok(Query::ByName {
            surname: surname.to_owned(),
            given_names: given.to_owned(),
            birth_date: date(&self.birth_date, QueryError::BadBirthDate)?,
            fingerprint_date: date(&self.fingerprint_date, QueryError::BadFingerprintDate)?,
        })
    }
}

impl Query {
    /// Who is being asked about, without the fields a guesser would vary: the key of the
    /// per-identity limit. For a name it is the birth year (a permit listed with only a year, or
    /// a month, matches every day of it, so the day typed must not make a new identity) and the
    /// longest word of the names, accents and case folded (so swapping, repeating or adding
    /// particles does not either). Hashed, so the limiter holds nothing readable.
    pub fn identity(&self) -> String {
        let text = match self {
            Self::ByName {
                surname,
                given_names,
                birth_date,
                ..
            } => {
                let words = coper_shared::names::words(&format!("{surname} {given_names}"));
                let longest = words
                    .iter()
                    .max_by(|a, b| a.chars().count().cmp(&b.chars().count()).then(b.cmp(a)))
                    .cloned()
                    .unwrap_or_default();
                format!("n:{}:{longest}", birth_date.year())
            }
            Self::ByReceipt { number, .. } => format!("r:{number}"),
            Self::ByPratica { number, .. } => format!("p:{number}"),
        };
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// Whether the permit asked about is ready for delivery (imported, not yet delivered).
pub fn is_ready(conn: &Connection, query: &Query) -> Result<bool, StoreError> {
    let candidates = match query {
        Query::ByName {
            fingerprint_date, ..
        } => ready::candidates(conn, Some(*fingerprint_date), None)?,
        Query::ByReceipt { number, .. } => {
            ready::candidates(conn, None, Some((ready::Number::Receipt, number)))?
        }
        Query::ByPratica { number, .. } => {
            ready::candidates(conn, None, Some((ready::Number::Pratica, number)))?
        }
    };
    Ok(candidates.iter().any(|(surname, given, born)| match query {
        Query::ByName {
            surname: typed_surname,
            given_names,
            birth_date,
            ..
        } => {
            birth_date_matches(born, *birth_date)
                && names_match(typed_surname, given_names, surname, given)
        }
        Query::ByReceipt { birth_date, .. } | Query::ByPratica { birth_date, .. } => {
            birth_date_matches(born, *birth_date)
        }
    }))
}

/// Send the "your permit is ready" message to every watch whose question now finds a ready
/// permit (after an import or a correction of the ready list), in the same transaction, and
/// forget those watches. How many fired.
pub fn fire_watches(conn: &Connection, now: jiff::Timestamp) -> Result<usize, StoreError> {
    use crate::store::{notices, watches};
    let mut fired = 0;
    for watch in watches::live(conn, now)? {
        let Ok(query) = serde_json::from_str::<Asked>(&watch.query)
            .map_err(drop)
            .and_then(|asked| asked.query().map_err(drop))
        else {
            watches::remove(conn, watch.id)?;
            continue;
        };
        if !is_ready(conn, &query)? {
            continue;
        }
        let facts = coper_shared::notices::Facts {
            place: notices::place(conn)?,
            ..Default::default()
        };
        notices::queue(
            conn,
            None,
            coper_shared::notices::NoticeKind::Ready,
            &facts,
            (&watch.channel, &watch.recipient),
            &watch.lang,
            now,
        )?;
        watches::remove(conn, watch.id)?;
        fired += 1;
    }
    Ok(fired)
}

type Limiter<K> = RateLimiter<K, HashMapStateStore<K>, DefaultClock>;

/// A limit per client address (in memory).
pub type AddressLimiter = Limiter<IpAddr>;

/// At most `n` attempts a minute per address.
pub fn per_address_per_minute(n: u32) -> AddressLimiter {
    RateLimiter::hashmap(Quota::per_minute(
        NonZeroU32::new(n.max(1)).expect("positive"),
    ))
}

/// The network an address belongs to, for rate limits: its /24 for IPv4, its /64 for IPv6 (one
/// customer's allocation), so that an attacker cannot multiply addresses to multiply attempts.
pub fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

/// The status check's rate limits, kept in memory (a restart forgets them, which is harmless).
pub struct Limits {
    per_address: Limiter<IpAddr>,
    per_identity: Backoff,
    overall: RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>,
    checks: Mutex<u32>,
}

/// How often one network may ask: a family at home asks a few times, a script asks thousands.
pub const PER_ADDRESS_PER_MINUTE: u32 = 10;
/// How many questions the whole service answers a minute: more than a city's people ask, far
/// fewer than a crowd of addresses guessing dates would need.
pub const OVERALL_PER_MINUTE: u32 = 600;
/// Questions about one identity answered at once within an hour; after them each waits twice
/// as long as the one before, from [`BACKOFF_START`] up to [`BACKOFF_MAX`].
pub const FREE_PER_IDENTITY: u32 = 3;
pub const BACKOFF_START: Duration = Duration::from_secs(5);
pub const BACKOFF_MAX: Duration = Duration::from_secs(120);
const BACKOFF_MEMORY: Duration = Duration::from_secs(3600);

impl Default for Limits {
    fn default() -> Self {
        let n = |n: u32| NonZeroU32::new(n).expect("limits are positive");
        Self {
            per_address: RateLimiter::hashmap(Quota::per_minute(n(PER_ADDRESS_PER_MINUTE))),
            per_identity: Backoff::default(),
            overall: RateLimiter::direct(Quota::per_minute(n(OVERALL_PER_MINUTE))),
            checks: Mutex::new(0),
        }
    }
}

impl Limits {
    /// Count an attempt from `address` (and, once the question is readable, about `identity`);
    /// `Err` with how long to wait when over a limit.
    pub fn allow(&self, address: IpAddr, identity: Option<&str>) -> Result<(), Duration> {
        self.allow_at(address, identity, std::time::Instant::now())
    }

    fn allow_at(
        &self,
        address: IpAddr,
        identity: Option<&str>,
        now: std::time::Instant,
    ) -> Result<(), Duration> {
        {
            // Forget idle keys now and then, so memory stays bounded.
            let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
            *checks = checks.wrapping_add(1);
            if checks.is_multiple_of(1024) {
                self.per_address.retain_recent();
                self.per_identity.forget_before(now);
            }
        }
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(governor::clock::Clock::now(&DefaultClock::default()))
                .max(Duration::from_secs(1))
        };
        self.per_address
            .check_key(&network_of(address))
            .map_err(wait)?;
        self.overall.check().map_err(wait)?;
        if let Some(identity) = identity {
            self.per_identity.ask(identity, now)?;
        }
        Ok(())
    }
}

/// The per-identity limit: a delay that grows with each question about one person, never a
/// lock. A stranger asking about someone else costs that person at most [`BACKOFF_MAX`] of
/// waiting; a guesser gets a few dozen tries an hour instead of thousands.
#[derive(Default)]
struct Backoff {
    asked: Mutex<std::collections::HashMap<String, Tally>>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    questions: u32,
    last: std::time::Instant,
}

impl Backoff {
    fn delay_after(questions: u32) -> Duration {
        match questions.checked_sub(FREE_PER_IDENTITY) {
            None => Duration::ZERO,
            Some(over) => BACKOFF_START
                .saturating_mul(1u32 << over.min(16))
                .min(BACKOFF_MAX),
        }
    }

    fn ask(&self, identity: &str, now: std::time::Instant) -> Result<(), Duration> {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        let tally = asked.entry(identity.to_owned()).or_insert(Tally {
            questions: 0,
            last: now,
        });
        if now.saturating_duration_since(tally.last) >= BACKOFF_MEMORY {
            tally.questions = 0;
        }
        let ready_at = tally.last + Self::delay_after(tally.questions);
        if now < ready_at {
            return Err(ready_at - now);
        }
        tally.questions += 1;
        tally.last = now;
        Ok(())
    }

    fn forget_before(&self, now: std::time::Instant) {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        asked.retain(|_, t| now.saturating_duration_since(t.last) < BACKOFF_MEMORY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(pairs: &[(&str, &str)]) -> Asked {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        Asked {
            surname: get("surname"),
            name: get("name"),
            birth_date: get("birth_date"),
            fingerprint_date: get("fingerprint_date"),
            receipt_number: get("receipt_number"),
            pratica_number: get("pratica_number"),
        }
    }

    #[test]
    fn addresses_count_by_network() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network_of(ip("203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(
            network_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(network_of(ip("::ffff:203.0.113.9")), ip("203.0.113.0"));
        // Ten questions from one /24 use up its minute, whichever addresses ask.
        let limits = Limits::default();
        for n in 0..PER_ADDRESS_PER_MINUTE {
            assert!(limits.allow(ip(&format!("198.51.100.{n}")), None).is_ok());
        }
        assert!(limits.allow(ip("198.51.100.200"), None).is_err());
        assert!(
            limits.allow(ip("198.51.101.1"), None).is_ok(),
            "another /24"
        );
    }

    #[test]
    fn questions_are_read_and_mistakes_named() {
        assert_eq!(asked(&[]).query(), Err(QueryError::Incomplete));
        assert_eq!(
            asked(&[
                ("surname", "Rossi"),
                ("name", "Ana"),
                ("birth_date", "1990-02-30"),
                ("fingerprint_date", "2026-01-10")
            ])
            .query(),
            Err(QueryError::BadBirthDate)
        );
        assert_eq!(
            asked(&[("receipt_number", "12345"), ("birth_date", "1990-02-03")]).query(),
            Err(QueryError::BadReceipt)
        );
        assert_eq!(
            asked(&[
                ("receipt_number", " 0512 3456 789a "),
                ("birth_date", "1990-02-03")
            ])
            .query(),
            Ok(Query::ByReceipt {
                number: "05123456789A".into(),
                birth_date: jiff::civil::date(1990, 2, 3)
            })
        );
    }

    #[test]
    fn the_identity_ignores_the_guessable_fields_and_spelling() {
        let a = asked(&[
            ("surname", "Nguyễn"),
            ("name", "Lan"),
            ("birth_date", "1990-02-03"),
            ("fingerprint_date", "2026-01-10"),
        ]);
        let b = asked(&[
            ("surname", "lan"),
            ("name", "NGUYEN"),
            ("birth_date", "1990-02-03"),
            ("fingerprint_date", "2026-03-11"),
        ]);
        assert_eq!(a.query().unwrap().identity(), b.query().unwrap().identity());
        let c = asked(&[
            ("surname", "Nguyen Nguyen de"),
            ("name", "Lan"),
            ("birth_date", "1990-02-03"),
            ("fingerprint_date", "2026-01-10"),
        ]);
        assert_eq!(a.query().unwrap().identity(), c.query().unwrap().identity());
    }

    #[test]
    fn an_address_over_its_limit_is_told_to_wait() {
        let limits = Limits::default();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..PER_ADDRESS_PER_MINUTE {
            assert!(limits.allow(address, None).is_ok());
        }
        let wait = limits.allow(address, None).unwrap_err();
        assert!(wait >= Duration::from_secs(1));
        // The same network is the same asker; another network is not.
        assert!(limits.allow("192.0.2.8".parse().unwrap(), None).is_err());
        assert!(limits.allow("192.0.3.8".parse().unwrap(), None).is_ok());
    }

    /// Questions about one person, from anywhere, are answered at once a few times, then each
    /// after a growing delay (never more than two minutes): a stranger cannot lock anyone out.
    #[test]
    fn questions_about_one_identity_wait_longer_and_longer_but_never_forever() {
        let limits = Limits::default();
        let start = std::time::Instant::now();
        let from = |n: u8| IpAddr::from([198, 51, n, 1]);
        for n in 0..FREE_PER_IDENTITY {
            assert!(limits.allow_at(from(n as u8), Some("x"), start).is_ok());
        }
        let first = limits.allow_at(from(50), Some("x"), start).unwrap_err();
        assert_eq!(first, BACKOFF_START);
        assert!(
            limits.allow_at(from(51), Some("y"), start).is_ok(),
            "another person"
        );
        let mut at = start;
        let mut waits = Vec::new();
        for n in 0..8u8 {
            at += Backoff::delay_after(FREE_PER_IDENTITY + u32::from(n));
            assert!(limits.allow_at(from(60 + n), Some("x"), at).is_ok());
            waits.push(limits.allow_at(from(100 + n), Some("x"), at).unwrap_err());
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), BACKOFF_MAX);
        // An hour later, the person starts afresh.
        at += BACKOFF_MAX + BACKOFF_MEMORY;
        assert!(limits.allow_at(from(200), Some("x"), at).is_ok());
    }

    #[test]
    fn a_partial_birth_date_is_one_identity_whatever_day_is_typed() {
        let on = |day: &str| {
            asked(&[
                ("surname", "Diallo"),
                ("name", "Moussa"),
                ("birth_date", day),
                ("fingerprint_date", "2026-01-10"),
            ])
            .query()
            .unwrap()
            .identity()
        };
        assert_eq!(on("1976-01-01"), on("1976-12-31"));
        assert_ne!(on("1976-01-01"), on("1977-01-01"));
    }
}

/// The answer: the same shape, found or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// `ready`: the permit can be collected, booking at a partner office; `not_ready`: not yet
    /// (or not known, or already delivered: the check does not say which).
    #[schema(example = "ready")]
    pub status: &'static str,
}

/// Why no answer was given.
#[derive(Debug)]
pub enum Refusal {
    Invalid(QueryError),
    /// Over a rate limit: wait this long.
    Wait(Duration),
    Store(StoreError),
}

/// Check, within the limits, and answer after exactly [`ANSWER_TIME`].
pub async fn check(
    state: &crate::AppState,
    address: IpAddr,
    asked: &Asked,
) -> Result<Answer, Refusal> {
    let started = tokio::time::Instant::now();
    let outcome = async {
        let query = match asked.query() {
            Ok(query) => query,
            Err(e) => {
                state
                    .status_limits
                    .allow(address, None)
                    .map_err(Refusal::Wait)?;
                return Err(Refusal::Invalid(e));
            }
        };
        state
            .status_limits
            .allow(address, Some(&query.identity()))
            .map_err(Refusal::Wait)?;
        let ready = state
            .db
            .read(move |conn| is_ready(conn, &query))
            .await
            .map_err(Refusal::Store)?;
        Ok(Answer {
            status: if ready { "ready" } else { "not_ready" },
        })
    }
    .await;
    tokio::time::sleep_until(started + ANSWER_TIME).await;
    outcome
}
