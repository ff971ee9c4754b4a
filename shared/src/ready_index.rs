//! The list of ready permits as kiosks hold it: no names, no dates, only salted hashes that let a
//! kiosk *check* what a person states — offline — without being able to *list* anyone.
//!
//! For each permit the server publishes a random-looking salt and the hashes of: each word of the
//! surname and of the given names with the birth date, the glued surname and given names with the
//! birth date, the birth date with the fingerprinting date, and the receipt and pratica numbers with
//! the birth date. A kiosk hashes what the operator or the person typed the same way and compares:
//! the same tolerance as [`crate::names::names_match`] (accents, particles, several surnames,
//! swapped order), and never a wrong date. A stolen kiosk disk holds no name or date in clear.
//!
//! The birth date is in every hash, and it enters them *stretched*: as its Argon2id key under a
//! list-wide salt and cost ([`Stretch`], published with the list). A kiosk computes the keys of
//! the date typed once per question (three: the full date, its year and month, its year); a
//! guesser must compute one per birth date tried, and only then can test names and dates with the
//! fast hashes. docs/SECURITY.md states the cost of a guess before and after.
//!
//! Partial birth dates (`YYYY`, `YYYY-MM`) are stretched as written; a kiosk tries the full date,
//! the year and month, and the year.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::words;

/// How birth dates are stretched before they enter the list's hashes: Argon2id with a salt for
/// the whole list and a memory and time cost, all published with the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stretch {
    pub salt: String,
    pub memory_kib: u32,
    pub passes: u32,
}

impl Stretch {
    /// Argon2's recommended cost (19 MiB, two passes): a kiosk's three keys stay well under the
    /// 300 ms a check may take, and every guess of a birth date costs the same.
    pub const MEMORY_KIB: u32 = 19 * 1024;
    pub const PASSES: u32 = 2;

    /// The stretched key of a birth date as the list writes it (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`).
    pub fn key(&self, born: &str) -> String {
        let params = argon2::Params::new(self.memory_kib.max(8), self.passes.max(1), 1, Some(16))
            .unwrap_or_default();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 16];
        // The salt is ours (hex, long enough) and the output 16 bytes: this cannot fail.
        argon
            .hash_password_into(born.as_bytes(), self.salt.as_bytes(), &mut out)
            .expect("a valid salt and output length");
        hex_lower(&out)
    }

    /// What identifies the keys this stretch makes (for caching them).
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.salt, self.memory_kib, self.passes)
    }
}

/// The stretched keys of a typed full birth date, in the forms the list may hold it: the full
/// date, the year and month, the year. Computed once per question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedBirth([String; 3]);

impl TypedBirth {
    pub fn new(stretch: &Stretch, birth: Date) -> Self {
        let full = birth.to_string();
        Self([
            stretch.key(&full),
            stretch.key(&full[..7]),
            stretch.key(&full[..4]),
        ])
    }
}

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

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
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
    /// The entry of `permit`, hashed with `salt` (the server derives a stable salt per permit)
    /// and `born`, the stretched key of its birth date ([`Stretch::key`]).
    pub fn new(permit: &Permit<'_>, salt: &str, born: &str) -> Self {
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

    /// Whether a typed surname, given names and birth date name this permit's holder.
    pub fn matches_name(&self, surname: &str, given: &str, birth: &TypedBirth) -> bool {
        let (ts, tg) = (words(surname), words(given));
        if ts.is_empty() && tg.is_empty() {
            return false;
        }
        birth.0.iter().any(|born| {
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
        birth: &TypedBirth,
        fingerprint: Date,
    ) -> bool {
        self.matches_name(surname, given, birth)
            && birth.0.iter().any(|born| {
                hash(&self.salt, "f", &[born, &fingerprint.to_string()]) == self.fingerprint
            })
    }

    /// The self-check by receipt (12 characters) or pratica (10) number with the birth date.
    pub fn matches_number(&self, number: &str, birth: &TypedBirth) -> bool {
        let number: String = number
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        birth.0.iter().any(|born| {
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

    /// A cheap stretch: the tests check the matching, not the cost.
    fn stretch() -> Stretch {
        Stretch {
            salt: "0123456789abcdef".into(),
            memory_kib: 8,
            passes: 1,
        }
    }

    fn born(y: i16, m: i8, d: i8) -> TypedBirth {
        TypedBirth::new(&stretch(), date(y, m, d))
    }

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
            &stretch().key(born),
        )
    }

    #[test]
    fn the_stretched_key_depends_on_the_date_the_salt_and_the_cost() {
        let s = stretch();
        assert_eq!(s.key("1990-05-17"), s.key("1990-05-17"));
        assert_ne!(s.key("1990-05-17"), s.key("1990-05-18"));
        let other_salt = Stretch {
            salt: "fedcba9876543210".into(),
            ..s.clone()
        };
        assert_ne!(s.key("1990-05-17"), other_salt.key("1990-05-17"));
        let costlier = Stretch {
            passes: 2,
            ..s.clone()
        };
        assert_ne!(s.key("1990-05-17"), costlier.key("1990-05-17"));
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
                    e.matches_name(ts, tg, &born(1990, 5, 17)),
                    names_match(ts, tg, ls, lg),
                    "{ts} {tg} vs {ls} {lg}"
                );
            }
        }
    }

    #[test]
    fn dates_and_numbers_must_be_right_and_partial_birth_dates_work() {
        let e = entry("HADDAD", "AMIRA", "1990-05");
        assert!(e.matches_name("Haddad", "Amira", &born(1990, 5, 17)));
        assert!(!e.matches_name("Haddad", "Amira", &born(1990, 6, 17)));
        assert!(e.matches_person("Haddad", "Amira", &born(1990, 5, 1), date(2026, 10, 2)));
        assert!(!e.matches_person("Haddad", "Amira", &born(1990, 5, 1), date(2026, 10, 3)));
        assert!(e.matches_number("0500 0000 0001", &born(1990, 5, 30)));
        assert!(e.matches_number("pv00000001", &born(1990, 5, 30)));
        assert!(!e.matches_number("050000000001", &born(1991, 5, 30)));
    }
}
