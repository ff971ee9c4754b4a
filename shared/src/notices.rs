//! The messages coper sends a person about their booking (issue #13): what each says, in the
//! person's language with an Italian line, and what it costs as an SMS. Pure: the server decides
//! when to send and through which channel.
//!
//! The texts live in `shared/notices/<language>.toml`, one per language the kiosk speaks (Italian
//! first, English, and the nine others), each with every kind of message; placeholders in braces
//! (`{code}`, `{date}`, `{time}`, `{place}`, `{reason}`, `{office}`). A test fails on a language
//! or a message missing, and on a placeholder a message needs and lacks; [`check_template`] is
//! what an administrator's edited text will be checked with when it is saved.
//!
//! SMS are counted as the networks bill them: GSM-7 (160 characters, 153 a part when split; the
//! characters of the extension table, like `€` or `[`, count twice) when every character is in
//! the GSM alphabet, otherwise UCS-2 (70 UTF-16 units, 67 a part): Arabic, Bengali, Urdu,
//! Chinese, Russian and Ukrainian always cost the latter.

use std::{collections::BTreeMap, sync::OnceLock};

use jiff::civil::{Date, DateTime, Time};

/// The languages of the messages, as the kiosk names them.
pub const LANGUAGES: [&str; 11] = [
    "it", "en", "ar", "bn", "es", "fr", "ru", "sq", "uk", "ur", "zh",
];

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoticeKind {
    /// The server confirmed the booking in the slot asked.
    Confirmed,
    /// The server booked another slot than the one asked.
    Relocated,
    /// The day is near.
    Reminder,
    /// The Questura moved the booking (a day closed, a change of hours).
    Moved,
    /// The Questura cancelled the booking.
    Cancelled,
    /// The person did not come: how to book again.
    Missed,
    /// The permit the person asked about is now ready.
    Ready,
    /// The Questura asks for the person's documents before the appointment: the link.
    Precheck,
    /// The Questura wrote or marked a document in the pre-check: the link, to read it.
    PrecheckUpdate,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 9] = [
        NoticeKind::Confirmed,
        NoticeKind::Relocated,
        NoticeKind::Reminder,
        NoticeKind::Moved,
        NoticeKind::Cancelled,
        NoticeKind::Missed,
        NoticeKind::Ready,
        NoticeKind::Precheck,
        NoticeKind::PrecheckUpdate,
    ];

    /// The kind whose [`key`](Self::key) is `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Its key in the language files.
    pub fn key(self) -> &'static str {
        match self {
            NoticeKind::Confirmed => "confirmed",
            NoticeKind::Relocated => "relocated",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Moved => "moved",
            NoticeKind::Cancelled => "cancelled",
            NoticeKind::Missed => "missed",
            NoticeKind::Ready => "ready",
            NoticeKind::Precheck => "precheck",
            NoticeKind::PrecheckUpdate => "precheck_update",
        }
    }

    /// The placeholders its text must carry: what the person needs to act on it.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            NoticeKind::Confirmed | NoticeKind::Relocated | NoticeKind::Reminder => {
                &["code", "date", "time", "place"]
            }
            NoticeKind::Moved => &["code", "date", "time", "place", "reason"],
            NoticeKind::Cancelled => &["code", "place", "reason", "office"],
            NoticeKind::Missed => &["code", "date", "office"],
            NoticeKind::Ready => &["place"],
            NoticeKind::Precheck | NoticeKind::PrecheckUpdate => &["place", "link"],
        }
    }
}

/// Every placeholder a text may use.
pub const PLACEHOLDERS: [&str; 7] = ["code", "date", "time", "place", "reason", "office", "link"];

/// Why a text cannot be used. The administrator reads it, in Italian.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "segnaposto sconosciuto «{{{0}}}» (ammessi: code, date, time, place, reason, office, link)"
    )]
    Unknown(String),
    #[error("manca il segnaposto «{{{0}}}»")]
    Missing(&'static str),
    #[error("parentesi graffa non chiusa")]
    Unclosed,
}

/// The placeholders of `text`, in order, or why it is malformed.
fn placeholders(text: &str) -> Result<Vec<&str>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(TemplateError::Unclosed)?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(TemplateError::Unknown(name.to_owned()));
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    Ok(out)
}

/// Whether `text` can be the message of `kind`: known placeholders only, all it needs present.
pub fn check_template(kind: NoticeKind, text: &str) -> Result<(), TemplateError> {
    let found = placeholders(text)?;
    match kind.required().iter().find(|p| !found.contains(p)) {
        Some(missing) => Err(TemplateError::Missing(missing)),
        None => Ok(()),
    }
}

/// The language files, parsed once: language → key → text.
fn catalogue() -> &'static BTreeMap<&'static str, BTreeMap<String, String>> {
    static FILES: OnceLock<BTreeMap<&'static str, BTreeMap<String, String>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let files: [(&str, &str); 11] = [
            ("it", include_str!("../notices/it.toml")),
            ("en", include_str!("../notices/en.toml")),
            ("ar", include_str!("../notices/ar.toml")),
            ("bn", include_str!("../notices/bn.toml")),
            ("es", include_str!("../notices/es.toml")),
            ("fr", include_str!("../notices/fr.toml")),
            ("ru", include_str!("../notices/ru.toml")),
            ("sq", include_str!("../notices/sq.toml")),
            ("uk", include_str!("../notices/uk.toml")),
            ("ur", include_str!("../notices/ur.toml")),
            ("zh", include_str!("../notices/zh.toml")),
        ];
        files
            .into_iter()
            // A file that does not parse counts as missing: the tests name it.
            .map(|(lang, text)| (lang, toml::from_str(text).unwrap_or_default()))
            .collect()
    })
}

/// The text of `kind` in `lang`, as shipped.
pub fn template(lang: &str, kind: NoticeKind) -> Option<&'static str> {
    catalogue().get(lang)?.get(kind.key()).map(String::as_str)
}

/// What fills a message's placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub code: String,
    pub date: Option<Date>,
    pub time: Option<Time>,
    /// The Questura's city ("Pavia").
    pub place: String,
    /// Why the Questura moved or cancelled, as it wrote it (Italian).
    pub reason: String,
    /// Where to book again: the partner body, or "un ente convenzionato".
    pub office: String,
    /// The person's page of the document pre-check.
    pub link: String,
}

impl Facts {
    /// Facts as long as real ones (a booking code, a date, the longest link): what the
    /// administration's page and the tests measure texts with.
    pub fn sample() -> Self {
        Self {
            code: "K7QM-4XTA".into(),
            date: Date::new(2026, 12, 3).ok(),
            time: Time::new(9, 20, 0, 0).ok(),
            place: "Pavia".into(),
            reason: "sciopero".into(),
            office: "Comune di Pavia".into(),
            link: format!("https://prenota.example.it/documents/{}", "a".repeat(32)),
        }
    }
}

/// `text` with its placeholders filled from `facts`.
pub fn fill(text: &str, facts: &Facts) -> String {
    let date = facts
        .date
        .map(|d| d.strftime("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let time = facts
        .time
        .map(|t| t.strftime("%H:%M").to_string())
        .unwrap_or_default();
    text.replace("{code}", &facts.code)
        .replace("{date}", &date)
        .replace("{time}", &time)
        .replace("{place}", &facts.place)
        .replace("{reason}", &facts.reason)
        .replace("{office}", &facts.office)
        .replace("{link}", &facts.link)
}

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub sms: SmsCost,
}

/// The message of `kind` for a person who reads `lang` (Italian when the language is not one of
/// [`LANGUAGES`]): their language first, then the Italian line, for whoever helps them read it.
pub fn compose(kind: NoticeKind, lang: &str, facts: &Facts) -> Message {
    compose_with(kind, lang, facts, &|_, _| None)
}

/// [`compose`] with the texts the administration edited (`edited(lang, kind)`) over the shipped
/// ones.
pub fn compose_with(
    kind: NoticeKind,
    lang: &str,
    facts: &Facts,
    edited: &dyn Fn(&str, NoticeKind) -> Option<String>,
) -> Message {
    let text_of = |lang: &str| edited(lang, kind).or_else(|| template(lang, kind).map(Into::into));
    let italian = fill(&text_of("it").unwrap_or_default(), facts);
    let text = match text_of(lang).filter(|_| lang != "it" && LANGUAGES.contains(&lang)) {
        Some(theirs) => {
            let theirs = fill(&theirs, facts);
            // A link is given once: the Italian line points up to it (an SMS pays per part).
            let italian = if !facts.link.is_empty() && theirs.contains(&facts.link) {
                italian.replace(&facts.link, "↑")
            } else {
                italian
            };
            format!("{theirs}\n{italian}")
        }
        None => italian,
    };
    Message {
        sms: sms_cost(&text),
        text,
    }
}

/// Whether a local time falls in the quiet hours `from`..`until` (which may wrap midnight:
/// 20:00–08:00). Equal ends: no quiet hours.
pub fn in_quiet_hours(local: Time, from: Time, until: Time) -> bool {
    if from <= until {
        from <= local && local < until
    } else {
        local >= from || local < until
    }
}

/// When the reminder for an appointment on `day` is due: `days_before` days earlier at `at`
/// (local time); `None` when reminders are off (0 days).
pub fn reminder_moment(day: Date, days_before: i64, at: Time) -> Option<DateTime> {
    if days_before <= 0 {
        return None;
    }
    let date = day.checked_sub(jiff::Span::new().days(days_before)).ok()?;
    Some(date.to_datetime(at))
}

/// Whether an SMS reply asks for no more messages: STOP (what Italian operators and gateways
/// use), or its Italian words, alone or first.
pub fn is_stop_reply(text: &str) -> bool {
    let first = text
        .trim()
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_uppercase();
    ["STOP", "BASTA", "ANNULLA", "CANCELLA", "UNSUBSCRIBE"].contains(&first.as_str())
}

/// How an SMS is encoded, and how many parts it is billed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsCost {
    pub ucs2: bool,
    /// GSM-7 septets, or UTF-16 units.
    pub units: usize,
    pub parts: usize,
}

/// The GSM 03.38 basic alphabet.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each costs an escape and itself.
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// What `text` costs as an SMS.
pub fn sms_cost(text: &str) -> SmsCost {
    let gsm: Option<usize> = text.chars().try_fold(0, |n, c| {
        if GSM_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    });
    let (ucs2, units, single, part) = match gsm {
        Some(septets) => (false, septets, 160, 153),
        None => (true, text.encode_utf16().count(), 70, 67),
    };
    let parts = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    SmsCost { ucs2, units, parts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};
    use proptest::prelude::*;

    fn facts() -> Facts {
        Facts::sample()
    }

    #[test]
    fn every_language_has_every_message_with_what_it_needs() {
        for lang in LANGUAGES {
            for kind in NoticeKind::ALL {
                let text = template(lang, kind)
                    .unwrap_or_else(|| panic!("{lang}: no «{}» message", kind.key()));
                check_template(kind, text)
                    .unwrap_or_else(|e| panic!("{lang} «{}»: {e}", kind.key()));
            }
        }
    }

    #[test]
    fn a_message_speaks_the_persons_language_then_italian_and_carries_the_code() {
        let arabic = compose(NoticeKind::Moved, "ar", &facts());
        let (theirs, italian) = arabic.text.split_once('\n').expect("two lines");
        assert!(
            theirs.contains("كويستورا") && theirs.contains("K7QM-4XTA"),
            "{theirs}"
        );
        assert!(
            italian.starts_with("La Questura di Pavia ha spostato"),
            "{italian}"
        );
        assert!(italian.contains("03/12/2026 alle 09:20") && italian.contains("sciopero"));
        assert!(arabic.sms.ucs2);
        let italian_only = compose(NoticeKind::Confirmed, "it", &facts());
        assert!(!italian_only.text.contains('\n'));
        assert!(!italian_only.sms.ucs2, "Italian fits the GSM alphabet");
        // A language the kiosk does not have: Italian.
        assert_eq!(compose(NoticeKind::Confirmed, "xx", &facts()), italian_only);
    }

    #[test]
    fn sms_parts_are_counted_as_networks_bill_them() {
        let gsm = |n: usize| sms_cost(&"a".repeat(n));
        assert_eq!(
            (
                gsm(160).parts,
                gsm(161).parts,
                gsm(306).parts,
                gsm(307).parts
            ),
            (1, 2, 2, 3)
        );
        assert_eq!(sms_cost("€").units, 2, "extension characters count twice");
        assert!(!sms_cost("è à ù ì ò É").ucs2);
        let ucs2 = |n: usize| sms_cost(&"م".repeat(n));
        assert!(ucs2(1).ucs2);
        assert_eq!(
            (
                ucs2(70).parts,
                ucs2(71).parts,
                ucs2(134).parts,
                ucs2(135).parts
            ),
            (1, 2, 2, 3)
        );
        // One character outside GSM-7 makes the whole message UCS-2.
        assert!(sms_cost("Réservez ç").ucs2);
    }

    #[test]
    fn every_message_stays_within_four_sms_parts() {
        for lang in LANGUAGES {
            for kind in NoticeKind::ALL {
                let message = compose(kind, lang, &facts());
                assert!(
                    message.sms.parts <= 4,
                    "{lang} «{}»: {:?}\n{}",
                    kind.key(),
                    message.sms,
                    message.text
                );
            }
        }
    }

    #[test]
    fn a_template_missing_a_placeholder_or_with_an_unknown_one_is_refused() {
        assert_eq!(
            check_template(
                NoticeKind::Moved,
                "spostato al {date} alle {time}, {place}, {reason}"
            ),
            Err(TemplateError::Missing("code"))
        );
        assert_eq!(
            check_template(NoticeKind::Ready, "pronto a {place} per {name}"),
            Err(TemplateError::Unknown("name".into()))
        );
        assert_eq!(
            check_template(NoticeKind::Ready, "pronto a {place"),
            Err(TemplateError::Unclosed)
        );
    }

    fn t(h: i8, m: i8) -> Time {
        time(h, m, 0, 0)
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let (from, until) = (t(20, 0), t(8, 0));
        assert!(in_quiet_hours(t(22, 30), from, until));
        assert!(in_quiet_hours(t(7, 59), from, until));
        assert!(!in_quiet_hours(t(8, 0), from, until));
        assert!(!in_quiet_hours(t(19, 59), from, until));
        assert!(in_quiet_hours(t(13, 0), t(12, 0), t(14, 0)));
        assert!(!in_quiet_hours(t(3, 0), t(9, 0), t(9, 0)));
    }

    proptest! {
        /// The quiet hours and the rest of the day split it: exactly one of the two holds.
        #[test]
        fn a_moment_is_quiet_or_open_never_both(
            now in 0i8..24, nm in 0i8..60, f in 0i8..24, u in 0i8..24,
        ) {
            let (now, from, until) = (t(now, nm), t(f, 0), t(u, 0));
            prop_assume!(from != until);
            prop_assert_ne!(in_quiet_hours(now, from, until), in_quiet_hours(now, until, from));
        }
    }

    #[test]
    fn the_reminder_is_due_days_before_at_the_hour() {
        let day = date(2026, 12, 3);
        assert_eq!(
            reminder_moment(day, 2, t(10, 0)),
            Some(date(2026, 12, 1).to_datetime(t(10, 0)))
        );
        assert_eq!(reminder_moment(day, 0, t(10, 0)), None);
    }

    #[test]
    fn stop_replies_are_recognised_in_any_case() {
        assert!(is_stop_reply("stop"));
        assert!(is_stop_reply(" Stop, grazie"));
        assert!(is_stop_reply("BASTA"));
        assert!(!is_stop_reply("non stop"));
        assert!(!is_stop_reply("ok"));
    }

    #[test]
    fn an_edited_text_replaces_the_shipped_one_in_its_language_only() {
        let facts = Facts {
            code: "K7Q2".into(),
            place: "Pavia".into(),
            ..Facts::default()
        };
        let edited = |lang: &str, kind: NoticeKind| {
            (lang == "en" && kind == NoticeKind::Ready).then(|| "Ready in {place}.".to_owned())
        };
        let text = compose_with(NoticeKind::Ready, "en", &facts, &edited).text;
        assert!(text.starts_with("Ready in Pavia.\n"), "{text}");
        assert!(text.ends_with(&compose(NoticeKind::Ready, "it", &facts).text));
    }
}
