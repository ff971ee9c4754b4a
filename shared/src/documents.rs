//! The synchronised documents: their names, who writes each, and what they hold.
//!
//! Every document has exactly one writer (see ARCHITECTURE.md): the server writes the directory,
//! the agendas and each kiosk's inbox; kiosk K writes only its own outbox. That makes
//! authorisation a property of the document name, checked on every incoming sync message.
//!
//! Each record is one entry of a top-level Automerge map, keyed by a stable id, whose value is the
//! record as a JSON string: a single writer never produces conflicting entries, and readers on
//! both sides share these serde types.

use std::fmt;

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, transaction::Transactable};
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{agenda::SlotKey, ids::ServiceId, rules::ServiceRulesDraft};

/// A kiosk's identity, assigned by the server at enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KioskId(pub Uuid);

impl fmt::Display for KioskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a synchronised document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocName {
    /// Services with their rules, the Questura, the partner bodies: public data.
    Directory,
    /// One service's counts for one month: places, taken, held by leases, and the leases.
    Agenda {
        service: ServiceId,
        year: i16,
        month: i8,
    },
    /// Kiosk K's booking and cancellation requests (with the people's names).
    Outbox(KioskId),
    /// The server's verdicts on kiosk K's requests.
    Inbox(KioskId),
    /// The list of ready permits as salted hashes ([`crate::ready_index`]): no names.
    Ready,
    /// Kiosk K's partner body and its operators' accounts (password hashes), for logging in
    /// offline: only that body's kiosks receive it.
    Operators(KioskId),
    /// The bookings of kiosk K's partner body, from today on, made at any of its kiosks, with
    /// what the Questura did to each ([`PartnerBooking`]): only that kiosk receives it. Named by
    /// kiosk, like `operators`, so that who may read it is a property of its name; every kiosk
    /// of the body gets the same records.
    Bookings(KioskId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Server,
    Kiosk(KioskId),
}

impl DocName {
    pub fn agenda_for(service: &ServiceId, date: Date) -> Self {
        DocName::Agenda {
            service: service.clone(),
            year: date.year(),
            month: date.month(),
        }
    }

    /// The one kiosk that receives this document, if it is a kiosk's own.
    pub fn kiosk(&self) -> Option<KioskId> {
        match self {
            DocName::Outbox(k)
            | DocName::Inbox(k)
            | DocName::Operators(k)
            | DocName::Bookings(k) => Some(*k),
            _ => None,
        }
    }

    pub fn writer(&self) -> Writer {
        match self {
            DocName::Outbox(kiosk) => Writer::Kiosk(*kiosk),
            _ => Writer::Server,
        }
    }

    /// Whether every kiosk receives this document (the directory, the agendas, the ready list),
    /// rather than one kiosk alone.
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            DocName::Directory | DocName::Agenda { .. } | DocName::Ready
        )
    }

    /// Whether kiosk `kiosk` may receive this document. Outboxes and inboxes carry names of
    /// people and go only to their own kiosk.
    pub fn readable_by(&self, kiosk: KioskId) -> bool {
        match self.kiosk() {
            Some(k) => k == kiosk,
            None => self.is_shared(),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('/');
        let name = match (parts.next()?, parts.next(), parts.next()) {
            ("directory", None, None) => DocName::Directory,
            ("ready", None, None) => DocName::Ready,
            ("operators", Some(id), None) => DocName::Operators(KioskId(id.parse().ok()?)),
            ("bookings", Some(id), None) => DocName::Bookings(KioskId(id.parse().ok()?)),
            ("outbox", Some(id), None) => DocName::Outbox(KioskId(id.parse().ok()?)),
            ("inbox", Some(id), None) => DocName::Inbox(KioskId(id.parse().ok()?)),
            ("agenda", Some(service), Some(month)) => {
                let (y, m) = month.split_once('-')?;
                let (year, month) = (y.parse().ok()?, m.parse().ok()?);
                if !(1..=12).contains(&month) || y.len() != 4 || m.len() != 2 {
                    return None;
                }
                DocName::Agenda {
                    service: ServiceId::parse(service).ok()?,
                    year,
                    month,
                }
            }
            _ => return None,
        };
        (name.to_string() == text).then_some(name)
    }
}

impl fmt::Display for DocName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocName::Directory => f.write_str("directory"),
            DocName::Agenda {
                service,
                year,
                month,
            } => write!(f, "agenda/{service}/{year:04}-{month:02}"),
            DocName::Outbox(k) => write!(f, "outbox/{k}"),
            DocName::Inbox(k) => write!(f, "inbox/{k}"),
            DocName::Ready => f.write_str("ready"),
            DocName::Operators(k) => write!(f, "operators/{k}"),
            DocName::Bookings(k) => write!(f, "bookings/{k}"),
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Records.

/// The Questura and its calendar, as the kiosk needs them to run the agenda engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuesturaInfo {
    pub name: String,
    pub address: String,
    pub time_zone: String,
    pub holidays: crate::holidays::HolidayCalendar,
}

/// A service with its rules, for the kiosk's engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    /// In Italian.
    pub what_to_bring: String,
    /// In the other languages the administration gave (language → text).
    #[serde(default)]
    pub what_to_bring_in: std::collections::BTreeMap<String, String>,
    pub rules: ServiceRulesDraft,
}

/// Settings a kiosk must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    /// A kiosk whose clock is further than this from the server's does not use leases, and a
    /// kiosk stops using a lease this long before it expires.
    pub clock_skew_bound_ms: i64,
}

/// Counts of one slot in an agenda document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCounts {
    pub places: u32,
    pub taken: u32,
    /// Places set aside for kiosks' leases, out of the common pool.
    pub held: u32,
}

/// Places of one slot leased to one kiosk. The server only ever adds to `granted` while the
/// lease lives, and removes a lease only after it has expired and the kiosk has synced since, so a
/// kiosk that counts its own bookings against `id` never believes it has more than it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseEntry {
    pub id: Uuid,
    /// Places granted under this lease so far.
    pub granted: u32,
    /// Places the server has seen used.
    pub used: u32,
    pub expires_at_ms: i64,
}

impl LeaseEntry {
    pub fn remaining(&self) -> u32 {
        self.granted.saturating_sub(self.used)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Book,
    Cancel,
}

/// A request a kiosk writes into its outbox. It holds the person's name: outboxes never leave
/// their kiosk and the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: Uuid,
    pub kind: RequestKind,
    pub service: ServiceId,
    pub date: Date,
    pub time: Time,
    pub surname: String,
    pub given_names: String,
    pub phone: Option<String>,
    pub booking_code: String,
    /// When the kiosk made it, by the kiosk's clock.
    pub created_at_ms: i64,
    /// The lease whose place the kiosk booked into (and printed a confirmed reminder for).
    pub lease: Option<Uuid>,
    /// For a cancellation: the booking request it cancels.
    pub cancels: Option<Uuid>,
    /// The ready permit the operator found for this person (its id in the ready list), so the
    /// delivery at the counter takes it off the list.
    #[serde(default)]
    pub permit: Option<i64>,
    /// The surname, given names and phone sealed for the server ([`crate::sealed`]); the clear
    /// fields are then empty. The server opens it before deciding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The appointment this booking replaces: the person already had one for this service and
    /// the operator chose to move it ([`crate::decide`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<Uuid>,
}

impl Request {
    pub fn slot(&self) -> SlotKey {
        SlotKey {
            date: self.date,
            start: self.time,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Booked in the slot asked for.
    Confirmed,
    /// Booked, but in another slot (`date`, `time` of the verdict).
    Relocated,
    /// Not booked: no free place before the horizon, or the request was invalid.
    Rejected,
    /// The booking it cancels is cancelled.
    Cancelled,
}

/// The server's verdict on one request, written into the kiosk's inbox after the SQLite commit
/// that it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub request: Uuid,
    pub outcome: Outcome,
    pub service: ServiceId,
    pub date: Date,
    pub time: Time,
    pub appointment: Option<Uuid>,
    /// Why, when rejected: a stable code.
    pub reason: Option<String>,
    pub decided_at_ms: i64,
    /// The booking code as stored: the kiosk's own, unless it was already taken and the server
    /// drew another, which the kiosk then shows and reprints.
    #[serde(default)]
    pub booking_code: Option<String>,
}

// ----------------------------------------------------------------------------------------------
// Reading and writing records in a document.

/// Put `value` under `collection[key]` as JSON, unless it is already there unchanged (so a
/// rewrite of the same state adds nothing to the document's history). Returns whether it wrote.
pub fn put_record<T: Serialize>(
    doc: &mut AutoCommit,
    collection: &str,
    key: &str,
    value: &T,
) -> bool {
    let json = serde_json::to_string(value).expect("records serialise");
    let map = collection_map(doc, collection);
    let current = doc
        .get(&map, key)
        .ok()
        .flatten()
        .and_then(|(v, _)| v.into_string().ok());
    if current.as_deref() == Some(json.as_str()) {
        return false;
    }
    doc.put(&map, key, json).expect("put into a map");
    true
}

/// Remove `collection[key]`; returns whether it was there.
pub fn delete_record(doc: &mut AutoCommit, collection: &str, key: &str) -> bool {
    let map = collection_map(doc, collection);
    if doc.get(&map, key).ok().flatten().is_none() {
        return false;
    }
    doc.delete(&map, key).expect("delete from a map");
    true
}

/// Make `collection` hold exactly `entries` (key, record): each put as [`put_record`] does, and
/// every other key removed. Returns whether anything changed.
pub fn put_exactly<'a, T: Serialize + 'a>(
    doc: &mut AutoCommit,
    collection: &str,
    entries: impl IntoIterator<Item = (String, &'a T)>,
) -> bool {
    let existing = doc.get(ROOT, collection).ok().flatten().map(|(_, map)| map);
    if existing.is_none_or(|map| doc.length(&map) == 0) {
        // A fresh collection (a kiosk's copy of its body's bookings at each session): nothing to
        // compare with or remove, so each record is put without looking it up first.
        let mut entries = entries.into_iter().peekable();
        if entries.peek().is_none() {
            return false;
        }
        let map = collection_map(doc, collection);
        for (key, value) in entries {
            let json = serde_json::to_string(value).expect("records serialise");
            doc.put(&map, key, json).expect("put into a map");
        }
        return true;
    }
    let mut keep = std::collections::BTreeSet::new();
    let mut changed = false;
    for (key, value) in entries {
        changed |= put_record(doc, collection, &key, value);
        keep.insert(key);
    }
    for (key, _) in records::<serde_json::Value>(doc, collection) {
        if !keep.contains(&key) {
            changed |= delete_record(doc, collection, &key);
        }
    }
    changed
}

/// Every record of `collection` that parses as `T`, with its key. Entries that do not parse are
/// skipped: a reader never fails on a document written by a newer version.
pub fn records<T: DeserializeOwned>(doc: &AutoCommit, collection: &str) -> Vec<(String, T)> {
    let Some((_, map)) = doc.get(ROOT, collection).ok().flatten() else {
        return Vec::new();
    };
    doc.map_range(&map, ..)
        .filter_map(|item| {
            let text = automerge::Value::from(item.value).into_string().ok()?;
            Some((item.key.to_string(), serde_json::from_str(&text).ok()?))
        })
        .collect()
}

/// One record of `collection`.
pub fn record<T: DeserializeOwned>(doc: &AutoCommit, collection: &str, key: &str) -> Option<T> {
    let (_, map) = doc.get(ROOT, collection).ok().flatten()?;
    let (value, _) = doc.get(&map, key).ok().flatten()?;
    serde_json::from_str(&value.into_string().ok()?).ok()
}

fn collection_map(doc: &mut AutoCommit, collection: &str) -> automerge::ObjId {
    match doc.get(ROOT, collection).ok().flatten() {
        Some((_, id)) => id,
        None => doc
            .put_object(ROOT, collection, ObjType::Map)
            .expect("create a map"),
    }
}

/// The key of a slot in an agenda document: `YYYY-MM-DD HH:MM`.
pub fn slot_key_text(key: SlotKey) -> String {
    format!("{} {}", key.date, crate::rules::hh_mm(key.start))
}

pub fn parse_slot_key(text: &str) -> Option<SlotKey> {
    let (date, time) = text.split_once(' ')?;
    Some(SlotKey {
        date: date.parse().ok()?,
        start: time.parse().ok()?,
    })
}

/// An operator of a kiosk's partner body, for logging in at the kiosk offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorEntry {
    pub username: String,
    pub display_name: String,
    /// Argon2id, PHC string form.
    pub password_hash: String,
    pub active: bool,
}

/// The kiosk's own partner body, as its reminders name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerEntry {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub phone: String,
}

/// A ready permit's active booking, kept in the `ready` document (collection
/// [`collections::BOOKED`], key `<permit id> <service>`), so a kiosk says "already booked on …
/// by …: move?" before booking the person again, also offline. No names: the permit id is only
/// reached through the person's hashed name and birth date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedPermit {
    pub appointment: Uuid,
    pub date: Date,
    pub time: Time,
    /// The partner body that booked it ("Questura" when the staff did).
    pub partner: String,
    /// Still only booked: it may be moved (a person checked in is being served).
    pub movable: bool,
}

impl BookedPermit {
    pub fn key(permit: i64, service: &ServiceId) -> String {
        format!("{permit} {service}")
    }
}

/// Where an appointment stands at the Questura.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentState {
    Booked,
    CheckedIn,
    Delivered,
    Cancelled,
    NoShow,
}

/// One booking of a partner body, as every kiosk of the body holds it (`bookings/K`, one
/// document for the whole body under each of its kiosks' names): the person, the slot, and what
/// the Questura did. The server writes it from SQLite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerBooking {
    pub appointment: Uuid,
    /// The kiosk request that made it (any kiosk of the body), if a kiosk did.
    pub request: Option<Uuid>,
    /// The kiosk that made it, if a kiosk did: only that kiosk may cancel it
    /// ([`PartnerBooking::made_at_kiosk`]). Every kiosk of the body holds the same record.
    pub made_at: Option<KioskId>,
    pub booking_code: String,
    pub service: ServiceId,
    pub date: Date,
    pub time: Time,
    pub surname: String,
    pub given_names: String,
    pub phone: Option<String>,
    pub state: AppointmentState,
    /// Where the Questura moved it from (closing a day, a change of hours): the slot on the
    /// person's reminder.
    pub moved_from: Option<(Date, Time)>,
    /// Why it was moved or cancelled, as the Questura wrote it.
    pub reason: Option<String>,
    /// When it last changed (booked, moved, cancelled, a counter step), ms since the epoch.
    pub changed_at_ms: i64,
    /// Its last change was the Questura's (a move, a cancellation by the staff, a no-show), not
    /// the body's own: the kiosks list it among the news.
    pub changed_by_questura: bool,
    /// Cancelled because the person was booked again with "move" (at any kiosk).
    #[serde(default)]
    pub replaced: bool,
    /// The e-mail and the language of the messages the person gave, for the office that calls
    /// them back after a missed appointment.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// The person's document pre-check page (`…/documents/<token>`), when the Questura opened
    /// one: shown as a QR code on this body's kiosks and printed on the reminder. Only in the
    /// body's own `bookings` document, which kiosks keep in memory.
    #[serde(default)]
    pub precheck_link: Option<String>,
}

impl PartnerBooking {
    /// Whether `kiosk` made this booking (and so may cancel it).
    pub fn made_at_kiosk(&self, kiosk: KioskId) -> bool {
        self.made_at == Some(kiosk)
    }
}

/// Days a missed appointment stays on the partner body's list of people to book again (unless
/// the person is booked again first).
pub const MISSED_LISTED_DAYS: i64 = 30;

/// Collections used in each document.
pub mod collections {
    pub const QUESTURA: &str = "questura";
    pub const SERVICES: &str = "services";
    pub const SETTINGS: &str = "settings";
    pub const PARTNERS: &str = "partners";
    pub const SLOTS: &str = "slots";
    /// In an agenda: key `<kiosk id> <slot key>` → [`super::LeaseEntry`].
    pub const LEASES: &str = "leases";
    pub const REQUESTS: &str = "requests";
    pub const VERDICTS: &str = "verdicts";
    /// In `ready`: permit id → [`crate::ready_index::ReadyEntry`].
    pub const PERMITS: &str = "permits";
    /// In `ready`: `<permit id> <service>` → [`super::BookedPermit`].
    pub const BOOKED: &str = "booked";
    /// In `ready`: permit id → [`crate::precheck::PrecheckSummary`].
    pub const PRECHECK: &str = "precheck";
    /// In `operators/K`: username → [`super::OperatorEntry`]; and `partner` → [`super::PartnerEntry`].
    pub const OPERATORS: &str = "operators";
    pub const PARTNER: &str = "partner";
    /// In `bookings/K`: appointment id → [`super::PartnerBooking`].
    pub const BOOKINGS: &str = "bookings";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `put_exactly` leaves exactly the entries given, whether the collection was fresh or not,
    /// and says whether anything changed.
    #[test]
    fn put_exactly_holds_exactly_the_entries_given() {
        let mut doc = AutoCommit::new();
        let mut put = |pairs: &[(&str, i64)]| {
            let changed = put_exactly(
                &mut doc,
                "c",
                pairs.iter().map(|(k, v)| ((*k).to_owned(), v)),
            );
            let held: Vec<(String, i64)> = records(&doc, "c");
            let wanted: Vec<(String, i64)> =
                pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            assert_eq!(held, wanted);
            changed
        };
        assert!(put(&[("a", 1), ("b", 2)]), "into a fresh collection");
        assert!(
            !put(&[("a", 1), ("b", 2)]),
            "the same again changes nothing"
        );
        assert!(
            put(&[("b", 3), ("d", 4)]),
            "one changed, one added, one removed"
        );
        assert!(put(&[]), "all removed");
        assert!(!put(&[]), "an empty collection left empty changes nothing");
    }

    #[test]
    fn names_round_trip_and_junk_is_refused() {
        let k = KioskId(Uuid::now_v7());
        for name in [
            DocName::Directory,
            DocName::Outbox(k),
            DocName::Inbox(k),
            DocName::Bookings(k),
            DocName::Agenda {
                service: ServiceId::parse("consegna-pse").unwrap(),
                year: 2026,
                month: 3,
            },
        ] {
            assert_eq!(DocName::parse(&name.to_string()), Some(name));
        }
        for junk in [
            "",
            "directory/x",
            "outbox/not-a-uuid",
            "agenda/consegna-pse/2026-13",
            "agenda/Bad/2026-01",
            "agenda/x/2026-1",
        ] {
            assert_eq!(DocName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn only_a_kiosk_writes_its_outbox_and_reads_its_inbox() {
        let (a, b) = (KioskId(Uuid::now_v7()), KioskId(Uuid::now_v7()));
        assert_eq!(DocName::Outbox(a).writer(), Writer::Kiosk(a));
        assert_eq!(DocName::Inbox(a).writer(), Writer::Server);
        assert!(DocName::Inbox(a).readable_by(a));
        assert!(!DocName::Inbox(a).readable_by(b));
        assert!(!DocName::Outbox(a).readable_by(b));
        assert!(!DocName::Bookings(a).readable_by(b));
        assert_eq!(DocName::Bookings(a).writer(), Writer::Server);
        assert!(DocName::Directory.readable_by(b));
    }

    #[test]
    fn records_are_written_once_and_read_back() {
        let mut doc = AutoCommit::new();
        let counts = SlotCounts {
            places: 3,
            taken: 1,
            held: 1,
        };
        assert!(put_record(
            &mut doc,
            collections::SLOTS,
            "2026-12-01 09:00",
            &counts
        ));
        assert!(!put_record(
            &mut doc,
            collections::SLOTS,
            "2026-12-01 09:00",
            &counts
        ));
        let back: Vec<(String, SlotCounts)> = records(&doc, collections::SLOTS);
        assert_eq!(back, vec![("2026-12-01 09:00".to_owned(), counts)]);
        assert!(delete_record(
            &mut doc,
            collections::SLOTS,
            "2026-12-01 09:00"
        ));
        assert!(records::<SlotCounts>(&doc, collections::SLOTS).is_empty());
    }
}
