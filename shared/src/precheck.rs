//! The document pre-check (issue #14, the Ancona seed): before the appointment, Questura staff
//! and the person settle which documents are complete and valid. This module is the pure part:
//! the documents the Questura may ask for, the phrases staff send, the reasons a document is
//! refused, the texts of the person's page — in the eleven languages, from
//! `shared/precheck/<language>.toml` (a test fails on a text missing in any) — and the states a
//! requested document goes through.

use std::{collections::BTreeMap, sync::OnceLock};

/// The documents staff can ask for (keys of `documents.*`), in the order they are offered.
pub const DOCUMENTS: [&str; 8] = [
    "passport",
    "photos",
    "revenue_stamp",
    "housing",
    "work",
    "health_insurance",
    "tax_code",
    "receipt",
];

/// The phrases staff send with one touch (keys of `phrases.*`), shown in the person's language.
pub const PHRASES: [&str; 6] = [
    "send_photo",
    "expired",
    "unreadable",
    "bring_original",
    "all_good",
    "questions",
];

/// Why a document is not valid (keys of `reasons.*`).
pub const REASONS: [&str; 4] = ["expired", "unreadable", "incomplete", "wrong_document"];

/// Where a requested document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Asked for, nothing sent yet.
    Requested,
    /// The person sent something: staff to look.
    Received,
    /// Seen and in order.
    Valid,
    /// Seen and refused (with a reason): to send again.
    Invalid,
    /// To be brought as an original to the appointment.
    Original,
}

impl ItemState {
    pub const ALL: [Self; 5] = [
        Self::Requested,
        Self::Received,
        Self::Valid,
        Self::Invalid,
        Self::Original,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Received => "received",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Original => "original",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Whether the document still needs something at the counter: everything but valid.
    pub fn outstanding(self) -> bool {
        self != Self::Valid
    }
}

/// The languages of the person's page, as the kiosk names them.
pub const LANGUAGES: [&str; 11] = crate::notices::LANGUAGES;

fn catalogue() -> &'static BTreeMap<&'static str, BTreeMap<String, String>> {
    static FILES: OnceLock<BTreeMap<&'static str, BTreeMap<String, String>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let files: [(&str, &str); 11] = [
            ("it", include_str!("../precheck/it.toml")),
            ("en", include_str!("../precheck/en.toml")),
            ("ar", include_str!("../precheck/ar.toml")),
            ("bn", include_str!("../precheck/bn.toml")),
            ("es", include_str!("../precheck/es.toml")),
            ("fr", include_str!("../precheck/fr.toml")),
            ("ru", include_str!("../precheck/ru.toml")),
            ("sq", include_str!("../precheck/sq.toml")),
            ("uk", include_str!("../precheck/uk.toml")),
            ("ur", include_str!("../precheck/ur.toml")),
            ("zh", include_str!("../precheck/zh.toml")),
        ];
        files
            .into_iter()
            .map(|(lang, text)| (lang, toml::from_str(text).unwrap_or_default()))
            .collect()
    })
}

/// The text `key` (`documents.passport`, `page.title`…) in `lang`, Italian when the language is
/// not one of [`LANGUAGES`]; the key itself if even Italian lacks it (a test forbids that).
pub fn text<'a>(lang: &str, key: &'a str) -> &'a str {
    let of = |lang: &str| catalogue().get(lang)?.get(key).map(String::as_str);
    of(lang).or_else(|| of("it")).unwrap_or(key)
}

/// Texts the administration wrote, per language (`it` always there): a document it added, an
/// answer on times and procedures.
pub type Translations = BTreeMap<String, String>;

/// `texts` in `lang`, else in Italian; and whether it is in `lang` (else the reader is told it
/// is Italian).
pub fn translated<'a>(texts: &'a Translations, lang: &str) -> (&'a str, bool) {
    match texts.get(lang).filter(|t| !t.trim().is_empty()) {
        Some(t) => (t, true),
        None => (texts.get("it").map_or("", String::as_str), lang == "it"),
    }
}

/// The code of a document the administration added: `x` and its number.
pub fn added_code(id: i64) -> String {
    format!("x{id}")
}

/// Whether `code` names a shipped document or one the administration added.
pub fn is_document_code(code: &str) -> bool {
    DOCUMENTS.contains(&code)
        || code
            .strip_prefix('x')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The name of document `code` in `lang`: a shipped one from the catalogue, one the
/// administration added from `added` (Italian where it gave no translation); the code itself if
/// neither knows it.
pub fn document_name(code: &str, lang: &str, added: &BTreeMap<String, Translations>) -> String {
    if DOCUMENTS.contains(&code) {
        return text(lang, &format!("documents.{code}")).to_owned();
    }
    added
        .get(code)
        .map(|names| translated(names, lang).0.to_owned())
        .unwrap_or_else(|| code.to_owned())
}

/// A person's pre-check as every kiosk holds it in the `ready` document (collection
/// [`crate::documents::collections::PRECHECK`], key: the ready permit's id): no names, no link.
/// The operator sees whether the file is complete, and the reminder lists what is still to
/// bring, in the person's language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrecheckSummary {
    /// Every requested document is valid and staff marked the file complete.
    pub complete: bool,
    /// The documents not valid yet, in the order asked.
    pub to_bring: Vec<ToBring>,
    /// The names of the documents the administration added that `to_bring` names.
    #[serde(default)]
    pub added: BTreeMap<String, Translations>,
}

/// A document still to settle, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToBring {
    pub document: String,
    /// [`ItemState::key`].
    pub state: String,
}

impl PrecheckSummary {
    /// Each document to bring to the appointment in `lang`, with what it needs ("Passaporto —
    /// Portare l'originale").
    pub fn lines(&self, lang: &str) -> Vec<String> {
        self.to_bring
            .iter()
            .map(|t| {
                let state = text(lang, &format!("page.state.{}", t.state)).to_owned();
                format!(
                    "{} — {state}",
                    document_name(&t.document, lang, &self.added)
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn braces(text: &str) -> Vec<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n))
            .collect()
    }

    #[test]
    fn every_language_has_every_text_with_the_same_placeholders() {
        let italian = &catalogue()["it"];
        for key in DOCUMENTS
            .iter()
            .map(|k| format!("documents.{k}"))
            .chain(PHRASES.iter().map(|k| format!("phrases.{k}")))
            .chain(REASONS.iter().map(|k| format!("reasons.{k}")))
            .chain(
                ItemState::ALL
                    .iter()
                    .map(|s| format!("page.state.{}", s.key())),
            )
        {
            assert!(italian.contains_key(&key), "Italian lacks {key}");
        }
        for lang in LANGUAGES {
            let texts = catalogue()
                .get(lang)
                .unwrap_or_else(|| panic!("no file for {lang}"));
            for (key, it) in italian {
                let theirs = texts
                    .get(key)
                    .unwrap_or_else(|| panic!("{lang} lacks {key}"));
                assert!(!theirs.trim().is_empty(), "{lang} {key} is empty");
                assert_eq!(braces(theirs), braces(it), "{lang} {key}: placeholders");
            }
            assert_eq!(texts.len(), italian.len(), "{lang} has keys Italian lacks");
        }
    }

    #[test]
    fn a_document_is_outstanding_until_it_is_valid() {
        assert!(ItemState::Original.outstanding());
        assert!(ItemState::Invalid.outstanding());
        assert!(!ItemState::Valid.outstanding());
        for s in ItemState::ALL {
            assert_eq!(ItemState::from_key(s.key()), Some(s));
        }
        assert_eq!(text("ar", "documents.passport"), "جواز السفر");
        assert_eq!(text("xx", "documents.passport"), "Passaporto");
    }

    #[test]
    fn an_added_document_reads_in_the_language_given_else_in_italian() {
        let added = BTreeMap::from([(
            added_code(3),
            Translations::from([
                ("it".into(), "Nulla osta al lavoro".into()),
                ("en".into(), "Work permit clearance".into()),
            ]),
        )]);
        assert_eq!(document_name("x3", "en", &added), "Work permit clearance");
        assert_eq!(document_name("x3", "ar", &added), "Nulla osta al lavoro");
        assert_eq!(document_name("passport", "en", &added), "Passport");
        assert_eq!(document_name("x9", "en", &added), "x9");
        assert!(is_document_code("x3") && is_document_code("photos"));
        assert!(!is_document_code("x") && !is_document_code("x3;") && !is_document_code("pass"));
        let (t, theirs) = translated(&added["x3"], "ar");
        assert_eq!((t, theirs), ("Nulla osta al lavoro", false));
        let summary = PrecheckSummary {
            complete: false,
            to_bring: vec![ToBring {
                document: "x3".into(),
                state: "original".into(),
            }],
            added,
        };
        assert_eq!(
            summary.lines("it"),
            ["Nulla osta al lavoro — Portare l'originale"]
        );
    }
}
