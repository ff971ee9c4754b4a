//! Matching a name typed by a person against the name on the national system's list, as the
//! status check and the kiosk's search need: tolerant of how people write names, never of dates.
//!
//! Tolerated: case, accents and other diacritics (`Nguyễn` = `Nguyen`), apostrophes and hyphens
//! (`D'Souza` = `D Souza` = `Dsouza`), extra spaces, particles (`de`, `van`, `el`, `al`…) written
//! or left out, only some of several surnames or given names, and surname and given names typed
//! the other way round. Not tolerated: a wrong letter. What a match also needs — the exact
//! fingerprinting date and a birth date consistent with the (possibly partial) one on the list —
//! is what keeps a tolerant name from finding somebody else.

use unicode_normalization::UnicodeNormalization;

/// A name as searches compare it: its [`words`] joined by single spaces ("Ben Saïd" and
/// "ben  said" both give "ben said").
pub fn folded(name: &str) -> String {
    words(name).join(" ")
}

/// Words that connect parts of a name and are often dropped or glued on.
const PARTICLES: &[&str] = &[
    "de", "del", "della", "dello", "dei", "degli", "di", "da", "dal", "dalla", "dos", "das", "do",
    "du", "van", "von", "der", "den", "ter", "el", "al", "la", "le", "lo", "bin", "ben", "ibn",
    "abu", "y", "e",
];

/// A name as comparable words: lower case, no diacritics, apostrophes and hyphens as spaces.
pub fn words(name: &str) -> Vec<String> {
    let mut plain = String::with_capacity(name.len());
    for c in name.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' => plain.push_str("ss"),
            'æ' | 'Æ' => plain.push_str("ae"),
            'œ' | 'Œ' => plain.push_str("oe"),
            'ø' | 'Ø' => plain.push('o'),
            'ł' | 'Ł' => plain.push('l'),
            'đ' | 'Đ' | 'ð' => plain.push('d'),
            'ı' => plain.push('i'),
            c if c.is_alphanumeric() => plain.extend(c.to_lowercase()),
            _ => plain.push(' '),
        }
    }
    plain.split_whitespace().map(str::to_owned).collect()
}

/// Whether `word` (as [`words`] gives it) is a particle such as `de`, `van` or `el`.
pub fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word)
}

fn glued(words: &[String]) -> String {
    words.concat()
}

/// Whether a typed surname and given names name the person listed with `listed_surname` and
/// `listed_given`.
pub fn names_match(
    typed_surname: &str,
    typed_given: &str,
    listed_surname: &str,
    listed_given: &str,
) -> bool {
    let (ts, tg) = (words(typed_surname), words(typed_given));
    let (ls, lg) = (words(listed_surname), words(listed_given));
    if ts.is_empty() && tg.is_empty() {
        return false;
    }
    // The same letters, however the words were split or glued ("Elamrani", "El Amrani"),
    // possibly with surname and given names swapped.
    let same = |a: &[String], b: &[String]| !a.is_empty() && glued(a) == glued(b);
    let glued_given_ok = |t: &[String], l: &[String]| (t.is_empty() && l.is_empty()) || same(t, l);
    if (same(&ts, &ls) && glued_given_ok(&tg, &lg)) || (same(&tg, &ls) && glued_given_ok(&ts, &lg))
    {
        return true;
    }
    // Word by word: every word typed is on the list (particles aside), and the words typed
    // include part of the surname and, when there are given names, part of them.
    let listed: Vec<&String> = ls.iter().chain(&lg).collect();
    let typed: Vec<&String> = ts.iter().chain(&tg).filter(|w| !is_particle(w)).collect();
    if typed.is_empty() || !typed.iter().all(|w| listed.contains(w)) {
        return false;
    }
    let covers = |part: &[String]| {
        let significant: Vec<&String> = part.iter().filter(|w| !is_particle(w)).collect();
        significant.is_empty() || significant.iter().any(|w| typed.contains(w))
    };
    covers(&ls) && covers(&lg)
}

/// Whether a full birth date typed by a person agrees with the one on the list, which may be only
/// partly known: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn birth_date_matches(listed: &str, typed: jiff::civil::Date) -> bool {
    let typed = typed.to_string();
    matches!(listed.len(), 4 | 7 | 10) && typed.starts_with(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_apostrophes_hyphens_and_spaces_are_forgiven() {
        assert!(names_match("nguyen", "thi lan", "NGUYỄN", "Thị Lan"));
        assert!(names_match("D'Souza", "Maria", "DSOUZA", "Maria"));
        assert!(names_match("dsouza", "maria", "D'SOUZA", "MARIA"));
        assert!(names_match(
            "  Ben-Ali ",
            "Mohamed  Amine",
            "BEN ALI",
            "Mohamed Amine"
        ));
        assert!(names_match("Müller", "Jürgen", "MULLER", "JURGEN"));
        assert!(names_match("Østergård", "Søren", "Ostergard", "Soren"));
        assert!(names_match("Dos Santos", "João", "DOS SANTOS", "JOAO"));
    }

    #[test]
    fn particles_may_be_glued_dropped_or_kept() {
        assert!(names_match("Elamrani", "Fatima", "EL AMRANI", "FATIMA"));
        assert!(names_match("Amrani", "Fatima", "EL AMRANI", "FATIMA"));
        assert!(names_match(
            "van der Berg",
            "Sanne",
            "VAN DER BERG",
            "SANNE"
        ));
        assert!(names_match("Berg", "Sanne", "VAN DER BERG", "SANNE"));
        assert!(names_match("Al-Hassan", "Omar", "AL HASSAN", "OMAR"));
    }

    #[test]
    fn several_surnames_or_given_names_may_be_partly_typed() {
        assert!(names_match("García", "María", "GARCIA LOPEZ", "MARIA JOSE"));
        assert!(names_match("Lopez", "Jose", "GARCIA LOPEZ", "MARIA JOSE"));
        assert!(names_match(
            "Garcia Lopez",
            "Maria Jose",
            "GARCIA LOPEZ",
            "MARIA JOSE"
        ));
    }

    #[test]
    fn surname_and_given_names_may_be_swapped() {
        assert!(names_match("Amira", "Haddad", "HADDAD", "AMIRA"));
        assert!(names_match("Wei", "Zhang", "ZHANG", "WEI"));
        assert!(names_match(
            "Maria Jose",
            "Garcia Lopez",
            "GARCIA LOPEZ",
            "MARIA JOSE"
        ));
    }

    #[test]
    fn a_different_person_does_not_match() {
        assert!(
            !names_match("Haddad", "Amina", "HADDAD", "AMIRA"),
            "one letter off"
        );
        assert!(
            !names_match("Haddad", "", "HADDAD", "AMIRA"),
            "given names missing"
        );
        assert!(
            !names_match("", "Amira", "HADDAD", "AMIRA"),
            "surname missing"
        );
        assert!(
            !names_match("Haddad", "Amira Sara", "HADDAD", "AMIRA"),
            "a word too many"
        );
        assert!(
            !names_match("de", "la", "DE LA CRUZ", "ANA"),
            "particles only"
        );
        assert!(!names_match("", "", "X", "Y"));
    }

    #[test]
    fn partial_birth_dates_match_only_what_they_know() {
        let d = jiff::civil::date(1990, 5, 17);
        assert!(birth_date_matches("1990-05-17", d));
        assert!(birth_date_matches("1990-05", d));
        assert!(birth_date_matches("1990", d));
        assert!(!birth_date_matches("1990-05-18", d));
        assert!(!birth_date_matches("1991", d));
        assert!(!birth_date_matches("", d));
        assert!(!birth_date_matches("199", d));
    }
}
