//! The public site's eleven languages: Italian first, then those of the communities the
//! Questura serves (Arabic and Urdu right to left), in the kiosk's order.
//!
//! Texts live in the shared catalogue (`coper_shared::catalogue`: `shared/lang/<code>/
//! LC_MESSAGES/coper-web.po`, one `msgctxt` key per text, English the source in
//! `shared/lang/coper-web.pot`), compiled into the binary; a text the kiosk shows too is
//! translated once, in the kiosk's file. A test there fails when a language lacks a text, and one
//! here when a template uses a key the source does not have. The language comes from `?lang=`,
//! then the `coper_lang` cookie (set when `?lang=` is used), then the browser's
//! `Accept-Language`, then Italian.

use axum::http::{HeaderMap, header};
use coper_shared::catalogue;

/// A language of the public site (one of [`Lang::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lang(&'static str);

pub const LANG_COOKIE: &str = "coper_lang";

impl Lang {
    pub const IT: Lang = Lang("it");
    /// In the order the language switcher offers them.
    pub const ALL: [Lang; 11] = [
        Lang("it"),
        Lang("en"),
        Lang("fr"),
        Lang("ar"),
        Lang("sq"),
        Lang("uk"),
        Lang("ru"),
        Lang("zh"),
        Lang("es"),
        Lang("bn"),
        Lang("ur"),
    ];

    pub fn code(self) -> &'static str {
        self.0
    }

    /// `rtl` for scripts written right to left.
    pub fn dir(self) -> &'static str {
        if catalogue::right_to_left(self.0) {
            "rtl"
        } else {
            "ltr"
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
            .unwrap_or(Self::IT)
    }
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
        catalogue::web_text(self.lang.code(), key)
            .or_else(|| catalogue::web_text("it", key))
            .unwrap_or("…")
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn dir(&self) -> &'static str {
        self.lang.dir()
    }

    /// The short name of `weekday` ("lun", "Mon", "الإثنين").
    pub fn day(&self, weekday: jiff::civil::Weekday) -> &'static str {
        const KEYS: [&str; 7] = [
            "day.mon", "day.tue", "day.wed", "day.thu", "day.fri", "day.sat", "day.sun",
        ];
        self.get(KEYS[weekday.to_monday_zero_offset() as usize])
    }

    /// Opening hours as the administration typed them in Italian ("lun–ven 9:00–12:30; mar e gio
    /// 14:30–17:00") with the days in this language and "e" as a comma: the numbers read the
    /// same everywhere.
    pub fn hours(&self, italian: &str) -> String {
        use jiff::civil::Weekday::*;
        let days = [
            ("lun", Monday),
            ("mar", Tuesday),
            ("mer", Wednesday),
            ("gio", Thursday),
            ("ven", Friday),
            ("sab", Saturday),
            ("dom", Sunday),
        ];
        let mut out = String::new();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            let lower = word.to_lowercase();
            let lower = lower.trim_end_matches('.');
            match days.iter().find(|(it, _)| *it == lower) {
                Some((_, day)) => out.push_str(self.day(*day)),
                None if lower == "e" && self.lang.code() != "it" => {
                    // "mar e gio" → "mar, gio": the space before stays, a comma takes the "e".
                    if out.ends_with(' ') {
                        out.pop();
                    }
                    out.push(',');
                }
                None => out.push_str(word),
            }
            word.clear();
        };
        for c in italian.chars() {
            if c.is_alphabetic() || c == '.' && !word.is_empty() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
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
                        catalogue::web_keys().iter().any(|k| k == key),
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
    fn opening_hours_read_in_the_page_language() {
        let hours = "lun–ven 9:00–12:30; mar e gio 14:30–17:00";
        let t = |code| Tr::new(Lang::from_code(code).unwrap());
        assert_eq!(t("it").hours(hours), hours);
        assert_eq!(
            t("en").hours(hours),
            "Mon–Fri 9:00–12:30; Tue, Thu 14:30–17:00"
        );
        assert_eq!(
            t("en").hours("lun, mer, ven 8:30–12:30 e 15:00–18:00"),
            "Mon, Wed, Fri 8:30–12:30, 15:00–18:00"
        );
        assert_eq!(
            t("en").hours("Martedì mattina"),
            "Martedì mattina",
            "only abbreviations"
        );
    }

    #[test]
    fn the_language_is_chosen_by_query_then_cookie_then_browser() {
        let mut headers = HeaderMap::new();
        let lang = |code| Lang::from_code(code).unwrap();
        assert_eq!(Lang::of_request(None, &headers), Lang::IT);
        headers.insert(header::ACCEPT_LANGUAGE, "ur-PK,fr;q=0.8".parse().unwrap());
        assert_eq!(Lang::of_request(None, &headers), lang("ur"));
        headers.insert(header::COOKIE, "coper_lang=fr".parse().unwrap());
        assert_eq!(Lang::of_request(None, &headers), lang("fr"));
        assert_eq!(Lang::of_request(Some("en"), &headers), lang("en"));
        assert_eq!(Lang::of_request(Some("xx"), &headers), lang("fr"));
        assert_eq!(Tr::new(lang("ur")).dir(), "rtl");
        assert_eq!(Lang::ALL.len(), coper_shared::catalogue::LANGUAGES.len());
    }
}
