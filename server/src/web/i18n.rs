//! The public site's languages: Italian first, then English, French and Arabic (right to left).
//!
//! Texts live in `server/i18n/LANG.toml`, one key per text, compiled into the binary. Italian is the
//! reference: a test fails when another language lacks a key (or has one Italian lacks), and when a
//! template uses a key Italian does not have. The language comes from `?lang=`, then the
//! `coper_lang` cookie (set when `?lang=` is used), then the browser's `Accept-Language`, then
//! Italian.

use std::{collections::HashMap, sync::OnceLock};

use axum::http::{HeaderMap, header};

/// A language of the public site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    It,
    En,
    Fr,
    Ar,
}

pub const LANG_COOKIE: &str = "coper_lang";

const SOURCES: [(Lang, &str); 4] = [
    (Lang::It, include_str!("../../i18n/it.toml")),
    (Lang::En, include_str!("../../i18n/en.toml")),
    (Lang::Fr, include_str!("../../i18n/fr.toml")),
    (Lang::Ar, include_str!("../../i18n/ar.toml")),
];

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::It, Lang::En, Lang::Fr, Lang::Ar];

    pub fn code(self) -> &'static str {
        match self {
            Self::It => "it",
            Self::En => "en",
            Self::Fr => "fr",
            Self::Ar => "ar",
        }
    }

    /// `rtl` for scripts written right to left.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Ar => "rtl",
            _ => "ltr",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The language of a request: `?lang=`, then the cookie, then `Accept-Language`, then Italian.
    pub fn of_request(query_lang: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(lang) = query_lang.and_then(Self::from_code) {
            return lang;
        }
        if let Some(lang) =
            super::auth::cookie(headers, LANG_COOKIE).and_then(|c| Self::from_code(&c))
        {
            return lang;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|accept| {
                accept
                    .split(',')
                    .filter_map(|part| Self::from_code(part.split(';').next().unwrap_or("")))
                    .next()
            })
            .unwrap_or(Self::It)
    }
}

fn tables() -> &'static HashMap<Lang, HashMap<String, String>> {
    static TABLES: OnceLock<HashMap<Lang, HashMap<String, String>>> = OnceLock::new();
    TABLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, text)| {
                let table: HashMap<String, String> = toml::from_str(text)
                    .unwrap_or_else(|e| panic!("server/i18n/{}.toml: {e}", lang.code()));
                (*lang, table)
            })
            .collect()
    })
}

/// The texts of one language, for a template.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    /// The text of `key`; Italian if this language lacks it (the tests make sure none does), an
    /// ellipsis if Italian lacks it too.
    pub fn get(&self, key: &str) -> &'static str {
        let tables = tables();
        tables[&self.lang]
            .get(key)
            .or_else(|| tables[&Lang::It].get(key))
            .map(String::as_str)
            .unwrap_or("…")
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn dir(&self) -> &'static str {
        self.lang.dir()
    }

    /// Every language with its own name, for the language switcher.
    pub fn choices(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .iter()
            .map(|l| (l.code(), Tr::new(*l).get("lang.name"), *l == self.lang))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_exactly_the_italian_keys() {
        let tables = tables();
        let italian = &tables[&Lang::It];
        for lang in Lang::ALL {
            let table = &tables[&lang];
            for key in italian.keys() {
                assert!(table.contains_key(key), "{}: missing {key}", lang.code());
                assert!(
                    !table[key].trim().is_empty(),
                    "{}: empty {key}",
                    lang.code()
                );
            }
            for key in table.keys() {
                assert!(
                    italian.contains_key(key),
                    "{}: {key} is not in Italian",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn every_key_the_templates_use_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut used = 0;
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("t.get(\"").skip(1) {
                    let key = piece.split('"').next().unwrap();
                    assert!(
                        tables()[&Lang::It].contains_key(key),
                        "{}: unknown key {key}",
                        path.display()
                    );
                    used += 1;
                }
            }
        }
        assert!(used > 20, "the public templates use the catalogue");
    }

    #[test]
    fn the_language_is_chosen_by_query_then_cookie_then_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::of_request(None, &headers), Lang::It);
        headers.insert(header::ACCEPT_LANGUAGE, "ar-MA,fr;q=0.8".parse().unwrap());
        assert_eq!(Lang::of_request(None, &headers), Lang::Ar);
        headers.insert(header::COOKIE, "coper_lang=fr".parse().unwrap());
        assert_eq!(Lang::of_request(None, &headers), Lang::Fr);
        assert_eq!(Lang::of_request(Some("en"), &headers), Lang::En);
        assert_eq!(Lang::of_request(Some("xx"), &headers), Lang::Fr);
        assert_eq!(Tr::new(Lang::Ar).dir(), "rtl");
    }
}
