//! The list of ready permits as kiosks hold it: no names, no dates, only salted hashes that let a
//! kiosk *check* what a person states — offline — without being able to *list* anyone.
//!
//! For each permit the server publishes a random-looking salt and the hashes of: each word of the
//! surname and of the given names with the birth date, the glued surname and given names with the
//! birth date, the birth date with the fingerprinting date, and the receipt and pratica numbers with
//! the birth date. A kiosk hashes what the operator or the person typed the same way and compares:
//! the same tolerance as [`crate::names::names_match`] (accents, particles, several surnames,
//! swapped order), and never a wrong date. A stolen kiosk disk holds no name or date in clear. It
//! is not a vault: the hashes are fast and their inputs guessable (about 2.7·10⁷ tries per permit
//! recover its two dates, then a dictionary its name words), so the list is kept out of sight, not
//! out of reach of a determined brute force; a slower hash with a list-wide salt (one computation
//! per query) is the next step if a Questura asks for more.
//!
//! Partial birth dates (`YYYY`, `YYYY-MM`) are hashed as written; a kiosk tries the full date, the
//! year and month, and the year.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::words;

/// Words that connect parts of a name; the same list the tolerant matching uses.
fn significant(words: &[String]) -> Vec<&String> {
    words
        .iter()
        .filter(|w| !crate::names::is_particle(w))
        .collect()
}

/// One ready permit, as published to kiosks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyEntry {
    /// The permit's id on the server (a booking refers to it).
    pub permit: i64,
    pub salt: String,
    /// Hashes of each significant surname word with the birth date.
    pub surname: Vec<String>,
    /// Hashes of each significant given-name word with the birth date.
    pub given: Vec<String>,
    /// Hashes of the glued surname and the glued given names, with the birth date.
    pub glued_surname: String,
    pub glued_given: String,
    /// Hash of the birth date with the fingerprinting date (the public self-check).
    pub fingerprint: String,
    pub receipt: Option<String>,
    pub pratica: Option<String>,
}

fn hash(salt: &str, kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(kind.as_bytes());
    for part in parts {
        hasher.update([0]);
        hasher.update(part.as_bytes());
    }
    // 16 bytes are plenty to tell a few thousand permits apart, and halve the document.
    hex_lower(&hasher.finalize()[..16])
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the list says of one permit, for [`ReadyEntry::new`].
pub struct Permit<'a> {
    pub id: i64,
    pub surname: &'a str,
    pub given_names: &'a str,
    /// As stored: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: &'a str,
    pub fingerprint_date: Date,
    pub receipt: Option<&'a str>,
    pub pratica: Option<&'a str>,
}

impl ReadyEntry {
    /// The entry of `permit`, hashed with `salt` (the server derives a stable salt per permit).
    pub fn new(permit: &Permit<'_>, salt: &str) -> Self {
        let born = permit.birth_date;
        let (s, g) = (words(permit.surname), words(permit.given_names));
        let each = |ws: &[String], kind: &str| {
            let mut out: Vec<String> = significant(ws)
                .into_iter()
                .map(|w| hash(salt, kind, &[w, born]))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        Self {
            permit: permit.id,
            salt: salt.to_owned(),
            surname: each(&s, "w"),
            given: each(&g, "w"),
            glued_surname: hash(salt, "j", &[&s.concat(), born]),
            glued_given: hash(salt, "j", &[&g.concat(), born]),
            fingerprint: hash(salt, "f", &[born, &permit.fingerprint_date.to_string()]),
            receipt: permit
                .receipt
                .map(|r| hash(salt, "r", &[&r.to_uppercase(), born])),
            pratica: permit
                .pratica
                .map(|p| hash(salt, "p", &[&p.to_uppercase(), born])),
        }
    }

    /// The forms a typed full birth date may take on the list.
    fn births(birth: Date) -> [String; 3] {
        let full = birth.to_string();
        [full.clone(), full[..7].to_owned(), full[..4].to_owned()]
    }

    /// Whether a typed surname, given names and birth date name this permit's holder.
    pub fn matches_name(&self, surname: &str, given: &str, birth: Date) -> bool {
        let (ts, tg) = (words(surname), words(given));
        if ts.is_empty() && tg.is_empty() {
            return false;
        }
        Self::births(birth).iter().any(|born| {
            let glued = |ws: &[String]| hash(&self.salt, "j", &[&ws.concat(), born]);
            let same = |t: &[String], listed: &str| !t.is_empty() && glued(t) == listed;
            let given_ok = |t: &[String]| {
                same(t, &self.glued_given) || (t.is_empty() && self.given.is_empty())
            };
            if (same(&ts, &self.glued_surname) && given_ok(&tg))
                || (same(&tg, &self.glued_surname) && given_ok(&ts))
            {
                return true;
            }
            let typed: Vec<String> = significant(&[ts.clone(), tg.clone()].concat())
                .into_iter()
                .map(|w| hash(&self.salt, "w", &[w, born]))
                .collect();
            if typed.is_empty() {
                return false;
            }
            let in_surname = |h: &String| self.surname.contains(h);
            let in_given = |h: &String| self.given.contains(h);
            typed.iter().all(|h| in_surname(h) || in_given(h))
                && (self.surname.is_empty() || typed.iter().any(in_surname))
                && (self.given.is_empty() || typed.iter().any(in_given))
        })
    }

    /// The public self-check: the name as above, and the fingerprinting date.
    pub fn matches_person(
        &self,
        surname: &str,
        given: &str,
        birth: Date,
        fingerprint: Date,
    ) -> bool {
        self.matches_name(surname, given, birth)
            && Self::births(birth).iter().any(|born| {
                hash(&self.salt, "f", &[born, &fingerprint.to_string()]) == self.fingerprint
            })
    }

    /// The self-check by receipt (12 characters) or pratica (10) number with the birth date.
    pub fn matches_number(&self, number: &str, birth: Date) -> bool {
        let number: String = number
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Self::births(birth).iter().any(|born| {
            let receipt = hash(&self.salt, "r", &[&number, born]);
            let pratica = hash(&self.salt, "p", &[&number, born]);
            self.receipt.as_deref() == Some(receipt.as_str())
                || self.pratica.as_deref() == Some(pratica.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::names::names_match;

    fn entry(surname: &str, given: &str, born: &str) -> ReadyEntry {
        ReadyEntry::new(
            &Permit {
                id: 7,
                surname,
                given_names: given,
                birth_date: born,
                fingerprint_date: date(2026, 10, 2),
                receipt: Some("050000000001"),
                pratica: Some("PV00000001"),
            },
            "salt",
        )
    }

    #[test]
    fn the_entry_holds_no_name_or_date_in_clear() {
        let e = entry("El Amrani", "Fatima", "1990-05-17");
        let json = serde_json::to_string(&e).unwrap().to_lowercase();
        for secret in [
            "amrani",
            "fatima",
            "1990",
            "2026",
            "050000000001",
            "pv00000001",
        ] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }

    #[test]
    fn hashed_matching_agrees_with_the_names_module() {
        let listed = [
            ("EL AMRANI", "FATIMA"),
            ("GARCIA LOPEZ", "MARIA JOSE"),
            ("NGUYỄN", "Thị Lan"),
            ("D'SOUZA", "ANA"),
            ("HADDAD", "AMIRA"),
            ("VAN DER BERG", "SANNE"),
        ];
        let typed = [
            ("Elamrani", "Fatima"),
            ("Amrani", "Fatima"),
            ("fatima", "el amrani"),
            ("Garcia", "Maria"),
            ("Lopez", "Jose"),
            ("Garcia Lopez", "Maria Jose Ana"),
            ("nguyen", "thi lan"),
            ("Dsouza", "Ana"),
            ("D Souza", "Ana"),
            ("Haddad", "Amina"),
            ("Haddad", ""),
            ("Berg", "Sanne"),
            ("de la", "cruz"),
        ];
        for (ls, lg) in listed {
            let e = entry(ls, lg, "1990-05-17");
            for (ts, tg) in typed {
                assert_eq!(
                    e.matches_name(ts, tg, date(1990, 5, 17)),
                    names_match(ts, tg, ls, lg),
                    "{ts} {tg} vs {ls} {lg}"
                );
            }
        }
    }

    #[test]
    fn dates_and_numbers_must_be_right_and_partial_birth_dates_work() {
        let e = entry("HADDAD", "AMIRA", "1990-05");
        assert!(e.matches_name("Haddad", "Amira", date(1990, 5, 17)));
        assert!(!e.matches_name("Haddad", "Amira", date(1990, 6, 17)));
        assert!(e.matches_person("Haddad", "Amira", date(1990, 5, 1), date(2026, 10, 2)));
        assert!(!e.matches_person("Haddad", "Amira", date(1990, 5, 1), date(2026, 10, 3)));
        assert!(e.matches_number("0500 0000 0001", date(1990, 5, 30)));
        assert!(e.matches_number("pv00000001", date(1990, 5, 30)));
        assert!(!e.matches_number("050000000001", date(1991, 5, 30)));
    }
}
