//! How a person can be reached about their booking: a phone number in international form and an
//! e-mail address, as typed at a kiosk or a counter, checked and written one way. Pure.

/// Why a phone number or an e-mail address was refused. The kiosk says it in the person's
/// language (the codes are its texts' keys); the pages say it in Italian ([`std::fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error(
        "numero di telefono non valido: solo cifre, con il prefisso del paese (es. +39 333 1234567)"
    )]
    PhoneNotDigits,
    #[error(
        "numero di telefono troppo corto o troppo lungo: con il prefisso del paese, da 8 a 15 cifre"
    )]
    PhoneLength,
    #[error("indirizzo e-mail non valido (es. nome@esempio.it)")]
    Email,
}

impl ContactError {
    /// A stable code, for the kiosk's texts.
    pub fn code(self) -> &'static str {
        match self {
            ContactError::PhoneNotDigits => "phone_not_digits",
            ContactError::PhoneLength => "phone_length",
            ContactError::Email => "email",
        }
    }
}

/// A phone number as typed ("+39 333 123 4567", "0039 333-1234567", "333 1234567"), in E.164
/// form ("+393331234567"). A number without a country prefix is taken for Italian.
pub fn phone(typed: &str) -> Result<String, ContactError> {
    let kept: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = kept.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = kept.strip_prefix("00") {
        rest.to_owned()
    } else {
        format!("39{kept}")
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ContactError::PhoneNotDigits);
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(ContactError::PhoneLength);
    }
    Ok(format!("+{digits}"))
}

/// A phone number a person may leave blank: `None` when blank, else as [`phone`].
pub fn optional_phone(typed: &str) -> Result<Option<String>, ContactError> {
    Some(typed.trim())
        .filter(|t| !t.is_empty())
        .map(phone)
        .transpose()
}

/// An e-mail address a person may leave blank: `None` when blank, else as [`email`].
pub fn optional_email(typed: &str) -> Result<Option<String>, ContactError> {
    Some(typed.trim())
        .filter(|t| !t.is_empty())
        .map(email)
        .transpose()
}

/// An e-mail address as typed, trimmed and with its domain in small letters, if it has the shape
/// of one: a name, one `@`, a domain with a dot, no spaces, at most 254 characters.
pub fn email(typed: &str) -> Result<String, ContactError> {
    let typed = typed.trim();
    let Some((name, domain)) = typed.split_once('@') else {
        return Err(ContactError::Email);
    };
    let ok = !name.is_empty()
        && typed.chars().count() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !typed.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(format!("{name}@{}", domain.to_lowercase()))
    } else {
        Err(ContactError::Email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_written_one_way_with_their_country() {
        for typed in [
            "+39 333 123 4567",
            "0039 333-1234567",
            "333 1234567",
            "+39 (333) 123.4567",
        ] {
            assert_eq!(phone(typed), Ok("+393331234567".into()), "{typed}");
        }
        assert_eq!(phone("+880 1712 345678"), Ok("+8801712345678".into()));
        assert_eq!(phone("333 12a4567"), Err(ContactError::PhoneNotDigits));
        assert_eq!(phone("+39 12"), Err(ContactError::PhoneLength));
        assert_eq!(phone("+1234567890123456"), Err(ContactError::PhoneLength));
        assert_eq!(phone(""), Err(ContactError::PhoneLength));
    }

    #[test]
    fn emails_need_the_shape_of_one() {
        assert_eq!(
            email(" Amira.H@Esempio.IT "),
            Ok("Amira.H@esempio.it".into())
        );
        for bad in [
            "amira",
            "amira@",
            "@esempio.it",
            "amira@esempio",
            "a b@esempio.it",
            "a@b@c.it",
            "a@.it",
        ] {
            assert_eq!(email(bad), Err(ContactError::Email), "{bad}");
        }
    }
}
