//! Identifiers that are checked once, when they are parsed, so no caller has to check them again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A service's stable identifier: a short slug such as `consegna-pse`.
///
/// Services are data that an administrator creates, but their identifier appears in URLs, in the
/// names of the synchronised agenda documents and in other tools' scripts, so it is restricted to
/// lowercase ASCII letters, digits and single hyphens, 1 to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId(String);

/// Why a string is not a valid [`ServiceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "identificativo di servizio non valido «{0}»: usare da 1 a 40 lettere minuscole, cifre e trattini"
)]
pub struct InvalidServiceId(pub String);

impl ServiceId {
    pub const MAX_LEN: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, InvalidServiceId> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let valid_shape = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if valid_chars && valid_shape {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidServiceId(raw.chars().take(60).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceId {
    type Error = InvalidServiceId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ServiceId> for String {
    fn from(id: ServiceId) -> Self {
        id.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_parse_and_everything_else_is_refused() {
        for ok in ["consegna-pse", "rilievi", "a", "x1-2"] {
            assert_eq!(ServiceId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Consegna",
            "-a",
            "a-",
            "a--b",
            "a b",
            "è",
            &"a".repeat(41),
        ] {
            assert!(ServiceId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
