//! The translation catalogue every part reads: gettext `.po` files in
//! `shared/lang/<code>/LC_MESSAGES/`, compiled in. Two domains: `coper-kiosk.po`, the kiosk's
//! screens and printed reminder (`msgid` the English text, as Slint's `@tr` expects), and
//! `coper-web.po`, the web pages (`msgctxt` the key a template uses, `msgid` the English text,
//! whose source is `shared/lang/coper-web.pot`). A web text left empty takes the kiosk's
//! translation of the same English, so a text the two share is translated once. `.po` is what
//! translators' tools read.

use std::{collections::HashMap, sync::OnceLock};

/// The languages, in the order they are offered: Italian first, then by the size of the
/// communities PRODUCT.md lists. Arabic and Urdu read right to left.
pub const LANGUAGES: [&str; 11] = crate::notices::LANGUAGES;

/// Whether `code` reads right to left.
pub fn right_to_left(code: &str) -> bool {
    matches!(code, "ar" | "ur")
}

/// One entry of a `.po` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub context: Option<String>,
    pub id: String,
    pub text: String,
}

/// The entries of a `.po` file (single-line strings, as ours are), the header left out.
pub fn parse(po: &str) -> Vec<Entry> {
    let unquote = |s: &str| -> Option<String> {
        let inner = s.trim().strip_prefix('"')?.strip_suffix('"')?;
        Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
    };
    let mut out = Vec::new();
    let (mut context, mut id) = (None, None);
    for line in po.lines() {
        if let Some(rest) = line.strip_prefix("msgctxt ") {
            context = unquote(rest);
        } else if let Some(rest) = line.strip_prefix("msgid ") {
            id = unquote(rest);
        } else if let Some(rest) = line.strip_prefix("msgstr ") {
            if let (Some(id), Some(text)) = (id.take(), unquote(rest))
                && !id.is_empty()
            {
                out.push(Entry {
                    context: context.take(),
                    id,
                    text,
                });
            }
            context = None;
        }
    }
    out
}

macro_rules! files {
    ($domain:literal) => {
        [
            (
                "it",
                include_str!(concat!("../lang/it/LC_MESSAGES/", $domain)),
            ),
            (
                "fr",
                include_str!(concat!("../lang/fr/LC_MESSAGES/", $domain)),
            ),
            (
                "ar",
                include_str!(concat!("../lang/ar/LC_MESSAGES/", $domain)),
            ),
            (
                "sq",
                include_str!(concat!("../lang/sq/LC_MESSAGES/", $domain)),
            ),
            (
                "uk",
                include_str!(concat!("../lang/uk/LC_MESSAGES/", $domain)),
            ),
            (
                "ru",
                include_str!(concat!("../lang/ru/LC_MESSAGES/", $domain)),
            ),
            (
                "zh",
                include_str!(concat!("../lang/zh/LC_MESSAGES/", $domain)),
            ),
            (
                "es",
                include_str!(concat!("../lang/es/LC_MESSAGES/", $domain)),
            ),
            (
                "bn",
                include_str!(concat!("../lang/bn/LC_MESSAGES/", $domain)),
            ),
            (
                "ur",
                include_str!(concat!("../lang/ur/LC_MESSAGES/", $domain)),
            ),
        ]
    };
}

/// The kiosk's catalogues (every language but English, the source), as compiled in.
pub const KIOSK_FILES: [(&str, &str); 10] = files!("coper-kiosk.po");
const WEB_FILES: [(&str, &str); 10] = files!("coper-web.po");
/// The web pages' source texts.
const WEB_SOURCE: &str = include_str!("../lang/coper-web.pot");

type Table = HashMap<String, String>;

/// The kiosk's translations of language `code`: English text → translation.
pub fn kiosk(code: &str) -> Option<&'static Table> {
    static ALL: OnceLock<HashMap<&'static str, Table>> = OnceLock::new();
    ALL.get_or_init(|| {
        KIOSK_FILES
            .iter()
            .map(|(code, po)| {
                let table = parse(po).into_iter().map(|e| (e.id, e.text)).collect();
                (*code, table)
            })
            .collect()
    })
    .get(code)
}

/// `english` in language `code` on the kiosk (English itself for `en` and when a text is
/// missing, which a test of the kiosk forbids).
pub fn kiosk_text(code: &str, english: &str) -> String {
    kiosk(code)
        .and_then(|t| t.get(english))
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| english.to_owned())
}

/// Web key → (English, translation as written, possibly empty).
type WebTable = HashMap<String, (String, String)>;

/// The web pages' tables, per language.
fn web() -> &'static HashMap<&'static str, WebTable> {
    static ALL: OnceLock<HashMap<&'static str, WebTable>> = OnceLock::new();
    ALL.get_or_init(|| {
        WEB_FILES
            .iter()
            .chain([("en", WEB_SOURCE)].iter())
            .map(|(code, po)| {
                let table = parse(po)
                    .into_iter()
                    .filter_map(|e| Some((e.context?, (e.id, e.text))))
                    .collect();
                (*code, table)
            })
            .collect()
    })
}

/// The keys of the web pages' texts, in the source's order.
pub fn web_keys() -> Vec<String> {
    parse(WEB_SOURCE)
        .into_iter()
        .filter_map(|e| e.context)
        .collect()
}

/// The web text `key` in language `code`: its translation, else the kiosk's translation of the
/// same English, else the English itself for `en`; `None` when the language lacks it.
pub fn web_text(code: &str, key: &str) -> Option<&'static str> {
    let (english, text) = web().get(code)?.get(key)?;
    if !text.is_empty() {
        return Some(text);
    }
    if code == "en" {
        return Some(english);
    }
    kiosk(code)?
        .get(english)
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_text_is_in_every_language() {
        let keys = web_keys();
        assert!(keys.len() > 50, "{}", keys.len());
        for code in LANGUAGES {
            let table = &web()[code];
            for key in &keys {
                assert!(
                    web_text(code, key).is_some_and(|t| !t.trim().is_empty()),
                    "{code}: no text for {key}"
                );
                assert_eq!(
                    table[key].0,
                    web()["en"][key].0,
                    "{code}: {key} translates another English text"
                );
            }
            assert_eq!(table.len(), keys.len(), "{code} has keys the source lacks");
        }
    }

    #[test]
    fn a_shared_text_comes_from_the_kiosk() {
        assert_eq!(web_text("it", "status.surname"), Some("Cognome"));
        assert_eq!(web_text("en", "status.surname"), Some("Surname"));
        let parsed = parse(
            "msgctxt \"k\"\nmsgid \"A \\\"b\\\"\"\nmsgstr \"C\"\n\nmsgid \"D\"\nmsgstr \"E\"\n",
        );
        assert_eq!(parsed[0].context.as_deref(), Some("k"));
        assert_eq!(parsed[0].id, "A \"b\"");
        assert_eq!(parsed[1].context, None);
    }
}
