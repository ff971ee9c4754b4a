//! The on-screen keyboard: a key types into the field `active-field` names, and the fields are
//! one table, for typing, erasing and clearing alike.

use slint::SharedString;

use super::{Controller, navigation};
use crate::Api;

type Getter = fn(&Api<'_>) -> SharedString;
type Setter = fn(&Api<'_>, SharedString);

/// The fields the on-screen keyboard fills, by the key `active-field` names them with.
pub(super) const FIELDS: [(&str, Getter, Setter); 9] = [
    ("username", |a| a.get_username(), |a, v| a.set_username(v)),
    ("password", |a| a.get_password(), |a, v| a.set_password(v)),
    ("surname", |a| a.get_surname(), |a, v| a.set_surname(v)),
    (
        "given-names",
        |a| a.get_given_names(),
        |a, v| a.set_given_names(v),
    ),
    (
        "birth-date",
        |a| a.get_birth_date(),
        |a, v| a.set_birth_date(v),
    ),
    (
        "fingerprint-date",
        |a| a.get_fingerprint_date(),
        |a, v| a.set_fingerprint_date(v),
    ),
    ("number", |a| a.get_number(), |a, v| a.set_number(v)),
    ("phone", |a| a.get_phone(), |a, v| a.set_phone(v)),
    ("email", |a| a.get_email(), |a, v| a.set_email(v)),
];

pub(super) fn key(c: &Controller, k: &str) {
    edit_active(c, |field, value| typed(field, value, k));
}

pub(super) fn erase(c: &Controller) {
    edit_active(c, |_, value| {
        let mut value = value.to_owned();
        value.pop();
        value
    });
}

/// The most characters `field` takes: for names and the phone, what the server accepts in a
/// request (it refuses longer ones), so nothing typed here is refused there.
fn max_chars(field: &str) -> usize {
    let limits = coper_shared::decide::RequestLimits::default();
    match field {
        "surname" | "given-names" => limits.name_chars,
        "phone" => limits.phone_chars,
        _ => 64,
    }
}

/// `value` of `field` after the key `k`: unchanged once the field is full.
fn typed(field: &str, value: &str, k: &str) -> String {
    if value.chars().count() + k.chars().count() > max_chars(field) {
        value.to_owned()
    } else {
        format!("{value}{k}")
    }
}

/// Change the field the keyboard types into.
fn edit_active(c: &Controller, edit: impl FnOnce(&str, &str) -> String) {
    navigation::touch(c);
    c.with_api(|api| {
        let active = api.get_active_field();
        if let Some((key, get, set)) = FIELDS.iter().find(|(key, _, _)| *key == active.as_str()) {
            set(api, edit(key, &get(api)).into());
        }
    });
}

/// Empty every field, and the consent that goes with them.
pub(super) fn clear(api: &Api<'_>) {
    for (_, _, set) in FIELDS {
        set(api, SharedString::new());
    }
    api.set_consent(false);
}

#[cfg(test)]
mod tests {
    use super::typed;

    #[test]
    fn a_full_field_takes_no_more_keys() {
        let mut surname = String::new();
        for _ in 0..150 {
            surname = typed("surname", &surname, "À");
        }
        assert_eq!(surname.chars().count(), 100, "what the server accepts");
        let mut phone = String::new();
        for _ in 0..50 {
            phone = typed("phone", &phone, "3");
        }
        assert_eq!(phone.len(), 32);
        assert_eq!(typed("surname", "ross", "i"), "rossi");
    }
}
