//! `coper-shared`: the vocabulary every other crate of coper speaks, and the agenda engine.
//!
//! Everything here is pure: no I/O, no async, no clock. Time comes in as a parameter (`now`), data
//! comes in as values, and answers come out as values. The server and the kiosk are shells that load
//! rules and counts from their stores, call into this crate, and show or persist the result. That is
//! what lets the same engine answer on a kiosk with no network and on the server that owns the truth,
//! and what lets the property tests explore it exhaustively.
//!
//! Map:
//! - [`holidays`]: Italian national holidays for any year, plus the city's patron saint.
//! - [`rules`]: a service's opening rules, validated on construction ([`rules::ServiceRules`]).
//! - [`agenda`]: the engine: which slots a day has, the first free slot, the next options on other
//!   days, and free places per day for calendars.
//! - [`ids`]: identifiers that parse instead of validate.
//! - [`italian`]: dates as Italian readers write them.
//! - [`names`]: matching typed names against the ready list, tolerant of spelling habits.
//! - [`ready_index`]: the ready list as kiosks hold it: salted hashes, checkable offline, no names.
//! - [`booking_code`]: the short code printed on a reminder, for typing when a scan fails.
//! - [`documents`]: the synchronised Automerge documents, who writes each, and their records.
//! - [`protocol`]: the binary envelope of the kiosk ↔ server WebSocket protocol, and the one
//!   function both sides send a document's next sync message with.
//! - [`passwords`]: Argon2id hashing and verification, for the server and the kiosks.
//! - [`quota`]: places per day and per week one kiosk and one partner body may take.
//! - [`decide`]: the conflict rules by which the server decides kiosks' requests.
//! - [`relocate`]: which bookings a change of hours displaces, and where each goes.
//! - [`ticket`]: the signed code in a reminder's QR, read back at the counter.
//! - [`sealed`]: a request's name and phone sealed for the server alone.
//! - [`contact`]: phone numbers and e-mail addresses as typed, checked and written one way.
//! - [`notices`]: the messages sent to a person about their booking, in eleven languages, and
//!   what each costs as an SMS.

pub mod agenda;
pub mod booking_code;
pub mod catalogue;
pub mod contact;
pub mod decide;
pub mod documents;
pub mod holidays;
pub mod ids;
pub mod italian;
pub mod names;
pub mod notices;
pub mod passwords;
pub mod precheck;
pub mod protocol;
pub mod quota;
pub mod ready_index;
pub mod relocate;
pub mod rules;
pub mod sealed;
pub mod ticket;

pub use automerge;
pub use jiff;
