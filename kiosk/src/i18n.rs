//! The kiosk's eleven languages. The screens translate with Slint's `@tr` (the `.po` files in
//! `shared/lang/`, bundled at build time); the printed reminder reads the same files here, so a
//! text is translated once. Source texts are English, as Slint expects; Italian is the default.

/// A language the kiosk offers, with its own name (flags are not languages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language {
    pub code: &'static str,
    pub own_name: &'static str,
    pub right_to_left: bool,
}

/// In the order the start screen shows them: Italian first, then by the size of the
/// communities PRODUCT.md lists.
pub const LANGUAGES: [Language; 11] = [
    lang("it", "Italiano", false),
    lang("en", "English", false),
    lang("fr", "Français", false),
    lang("ar", "العربية", true),
    lang("sq", "Shqip", false),
    lang("uk", "Українська", false),
    lang("ru", "Русский", false),
    lang("zh", "中文", false),
    lang("es", "Español", false),
    lang("bn", "বাংলা", false),
    lang("ur", "اردو", true),
];

const fn lang(code: &'static str, own_name: &'static str, right_to_left: bool) -> Language {
    Language {
        code,
        own_name,
        right_to_left,
    }
}

pub fn language(code: &str) -> Option<Language> {
    LANGUAGES.iter().copied().find(|l| l.code == code)
}

/// Each language's catalogue (`coper_shared::catalogue`): English text → translation.
#[cfg(test)]
fn catalogues()
-> std::collections::HashMap<&'static str, &'static std::collections::HashMap<String, String>> {
    coper_shared::catalogue::KIOSK_FILES
        .iter()
        .filter_map(|(code, _)| Some((*code, coper_shared::catalogue::kiosk(code)?)))
        .collect()
}

/// `english` in language `code` (English itself for `en`, and when a text is missing).
pub fn tr(code: &str, english: &str) -> String {
    coper_shared::catalogue::kiosk_text(code, english)
}

/// The weekday of `date` in language `code` ("martedì", "Tuesday", "الثلاثاء"…): every date a
/// person reads on the kiosk or the reminder carries it.
pub fn weekday(code: &str, date: jiff::civil::Date) -> String {
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    tr(
        code,
        WEEKDAYS[date.weekday().to_monday_zero_offset() as usize],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_translates_every_text_of_every_other() {
        let all = catalogues();
        let italian = all["it"];
        assert!(italian.len() > 50);
        for (code, catalogue) in &all {
            for key in italian.keys() {
                let text = catalogue.get(key).map(String::as_str).unwrap_or("");
                assert!(!text.trim().is_empty(), "{code}: «{key}» is not translated");
            }
            assert_eq!(
                catalogue.len(),
                italian.len(),
                "{code} has texts Italian lacks"
            );
        }
        assert_eq!(LANGUAGES.len(), all.len() + 1, "English is the source");
    }

    /// The string literals of a source file (good enough for ours: no raw strings with quotes).
    fn literals(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len() && (bytes[end] != b'"' || (end > 0 && bytes[end - 1] == b'\\'))
            {
                end += 1;
            }
            out.push(after[..end].replace("\\\"", "\""));
            rest = &after[(end + 1).min(after.len())..];
        }
        out
    }

    /// Every file under `folder` (of the crate) whose name ends in `.extension`, with its text.
    fn sources(folder: &str, extension: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder)];
        while let Some(dir) = folders.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == extension) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path.display().to_string(), text));
                }
            }
        }
        assert!(!out.is_empty(), "no .{extension} file in {folder}");
        out
    }

    #[test]
    fn every_text_the_screens_show_is_in_the_catalogue() {
        let italian = catalogues()["it"];
        let mut checked = 0;
        for (path, source) in sources("ui", "slint") {
            for piece in source.split("@tr(").skip(1) {
                let text = literals(piece).into_iter().next().unwrap_or_default();
                assert!(
                    italian.contains_key(&text),
                    "{path}: @tr(\"{text}\") has no translation"
                );
                checked += 1;
            }
        }
        assert!(checked > 30, "{checked}");
        // Texts the screens' Rust side shows: every literal of src/ui/ starting with a capital.
        for (path, source) in sources("src/ui", "rs") {
            for text in literals(&source) {
                let is_text = text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && text.chars().any(|c| c.is_ascii_lowercase());
                if is_text {
                    assert!(
                        italian.contains_key(&text),
                        "{path}: «{text}» has no translation"
                    );
                }
            }
        }
        // Texts the reminder prints: the literal given to each `label(` or `tr(` call.
        let reminder = [
            include_str!("reminder/mod.rs"),
            include_str!("reminder/pdf.rs"),
            include_str!("reminder/receipt.rs"),
        ]
        .concat();
        for call in ["label(", "tr("] {
            for piece in reminder.split(call).skip(1) {
                let args = piece.split(')').next().unwrap_or_default();
                // (Two-letter literals are language codes, as in `tr("it", …)`.)
                if let Some(text) = literals(args).into_iter().find(|t| t.len() > 2) {
                    assert!(
                        italian.contains_key(&text),
                        "reminder/: «{text}» has no translation"
                    );
                }
            }
        }
    }

    #[test]
    fn placeholders_survive_translation() {
        for (code, catalogue) in catalogues() {
            for (english, text) in catalogue {
                assert_eq!(
                    english.matches("{}").count(),
                    text.matches("{}").count(),
                    "{code}: «{english}»"
                );
            }
        }
    }
}
