//! Staff and operator accounts: password hashing (Argon2id) and creating the first administrator.
//!
//! The login pages (administration and counter issues) will verify passwords with
//! [`verify_password`]; until they exist, `coper-server create-admin` lets a fresh install get its
//! first administrator without a browser.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{self, StoreError, instant_text};

/// The shortest password accepted: long passphrases beat complex short ones.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why an account cannot be created. Messages are Italian: an administrator reads them.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("nome utente non valido: da 3 a 64 lettere, cifre, punti, trattini o trattini bassi")]
    InvalidUsername,
    #[error("il nome utente «{0}» esiste già")]
    UsernameTaken(String),
    #[error("la password deve avere almeno {MIN_PASSWORD_CHARS} caratteri")]
    WeakPassword,
}

/// Hash a password with Argon2id and a fresh random salt, in PHC string form.
pub fn hash_password(password: &str) -> String {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .expect("Argon2 with default parameters hashes any password");
    hash.to_string()
}

/// Whether `password` matches a hash made by [`hash_password`].
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Create an administrator. The outer error is the store's; the inner one the user's.
pub fn create_admin(
    conn: &Connection,
    username: &str,
    display_name: &str,
    password: &str,
    now: jiff::Timestamp,
) -> Result<Result<i64, AccountError>, StoreError> {
    let username = username.trim();
    let valid = (3..=64).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        return Ok(Err(AccountError::InvalidUsername));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Ok(Err(AccountError::WeakPassword));
    }
    let taken: Option<i64> = conn
        .query_row(
            "SELECT id FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Ok(Err(AccountError::UsernameTaken(username.to_owned())));
    }
    conn.execute(
        "INSERT INTO users (username, display_name, password_hash, role, created_at)
         VALUES (?1, ?2, ?3, 'admin', ?4)",
        params![
            username,
            display_name,
            hash_password(password),
            instant_text(now)
        ],
    )?;
    let id = conn.last_insert_rowid();
    store::audit(
        conn,
        now,
        "cli",
        "user.admin_created",
        &id.to_string(),
        &serde_json::json!({}),
    )?;
    Ok(Ok(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_password("una frase lunga e segreta");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("una frase lunga e segreta", &hash));
        assert!(!verify_password("una frase lunga e segreta!", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(hash, hash_password("una frase lunga e segreta"), "salted");
    }
}
