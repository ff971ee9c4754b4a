//! Passwords: Argon2id with a fresh random salt, stored as a PHC string. The server hashes staff
//! and operators' passwords and checks staff logins; kiosks check operators' logins offline
//! against the same hashes. One implementation for both.
//!
//! Argon2 is deliberately slow (tens of milliseconds): callers run it off their event loop.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Hash `password` with Argon2id and a fresh random salt, in PHC string form.
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches `stored`, a hash made by [`hash`]. A malformed hash matches
/// nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let stored = hash("una frase lunga e segreta");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("una frase lunga e segreta", &stored));
        assert!(!verify("una frase lunga e segreta!", &stored));
        assert!(!verify("x", "not a hash"));
        assert_ne!(stored, hash("una frase lunga e segreta"), "salted");
    }
}
