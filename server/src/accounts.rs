//! Staff and operator accounts: password hashing (Argon2id), creating accounts, logging in with a
//! lock-out after repeated failures, and the staff pages' sessions.
//!
//! `coper-server create-admin` lets a fresh install get its first administrator without a browser.
//! A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, with the
//! session's CSRF token, so a copy of the database logs nobody in.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::store::{self, StoreError, instant_text};

/// Consecutive wrong passwords after which an account is locked for [`LOCK_OUT`].
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const LOCK_OUT: SignedDuration = SignedDuration::from_mins(15);
/// A session ends this long after login, or after this long without a request.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
pub const SESSION_IDLE: SignedDuration = SignedDuration::from_hours(2);

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sets up the Questura: agenda, partner bodies, kiosks, imports; also works the counter.
    Admin,
    /// Works the counter: check-in, delivery, the day's list.
    Counter,
    /// A partner body's operator: logs in at the kiosk only.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Counter => "counter",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "counter" => Some(Self::Counter),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// A logged-in staff member, as the pages see them.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub csrf_token: String,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// How the audit log names this person.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// Why a login was refused. Messages are Italian: the clerk reads them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user and wrong password look the same, so the form reveals no usernames.
    #[error("nome utente o password non corretti")]
    WrongCredentials,
    #[error("troppi tentativi falliti: l'accesso è bloccato fino alle {0}")]
    LockedUntil(String),
    #[error("questo account è disattivato: rivolgersi all'amministratore")]
    Inactive,
    #[error("gli operatori degli enti convenzionati accedono dal chiosco, non da qui")]
    NotStaff,
}

/// A new session: the token goes in the cookie, and is never stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub staff: Staff,
}

/// A hash to verify against when the username is unknown, so both cases take as long.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("coper decoy password, never used"))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The stored hash to check `username`'s password against, or a decoy for an unknown name, so
/// both take as long. The check itself ([`verify_password`]) runs outside the database lock.
pub fn password_hash_of(conn: &Connection, username: &str) -> Result<String, StoreError> {
    let hash: Option<String> = conn
        .query_row(
            "SELECT password_hash FROM users WHERE username = ?1",
            [username.trim()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(hash.unwrap_or_else(|| decoy_hash().to_owned()))
}

/// Log `username` in for the staff pages, given whether the password matched the hash of
/// [`password_hash_of`]; on success open a session. Failures count towards the lock-out; a
/// success resets the count. The outer error is the store's.
pub fn login(
    conn: &Connection,
    username: &str,
    password_matches: bool,
    now: Timestamp,
    source: &str,
) -> Result<Result<NewSession, LoginError>, StoreError> {
    type Row = (i64, String, String, String, bool, i64, Option<String>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT id, username, display_name, role, active, failed_logins, locked_until
             FROM users WHERE username = ?1",
            [username.trim()],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, username, display_name, role_text, active, failed, locked_until)) = row else {
        return Ok(Err(LoginError::WrongCredentials));
    };
    if let Some(until) = locked_until.and_then(|t| t.parse::<Timestamp>().ok())
        && until > now
    {
        return Ok(Err(LoginError::LockedUntil(local_hh_mm(conn, until)?)));
    }
    if !password_matches {
        let failed = failed + 1;
        let lock = (failed >= MAX_FAILED_LOGINS).then(|| instant_text(now + LOCK_OUT));
        conn.execute(
            "UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
            params![id, if lock.is_some() { 0 } else { failed }, lock],
        )?;
        store::audit_from(
            conn,
            now,
            &format!("user:{id}"),
            if lock.is_some() {
                "login.locked"
            } else {
                "login.failed"
            },
            &id.to_string(),
            &serde_json::json!({ "failed": failed }),
            source,
        )?;
        return Ok(Err(match lock {
            Some(_) => LoginError::LockedUntil(local_hh_mm(conn, now + LOCK_OUT)?),
            None => LoginError::WrongCredentials,
        }));
    }
    if !active {
        return Ok(Err(LoginError::Inactive));
    }
    let role = Role::parse(&role_text)
        .ok_or_else(|| StoreError::InvalidData(format!("role {role_text}")))?;
    if role == Role::Operator {
        return Ok(Err(LoginError::NotStaff));
    }
    conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
        [id],
    )?;
    let token = random_token();
    let csrf_token = random_token();
    conn.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, last_seen_at,
             expires_at, source) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        params![
            token_hash(&token),
            id,
            csrf_token,
            instant_text(now),
            instant_text(now + SESSION_LIFETIME),
            source
        ],
    )?;
    store::audit_from(
        conn,
        now,
        &format!("user:{id}"),
        "login",
        &id.to_string(),
        &serde_json::json!({}),
        source,
    )?;
    Ok(Ok(NewSession {
        token,
        staff: Staff {
            user_id: id,
            username,
            display_name,
            role,
            csrf_token,
        },
    }))
}

/// The staff member whose session `token` is, if it is still open. Keeps it alive.
pub fn session(
    conn: &Connection,
    token: &str,
    now: Timestamp,
) -> Result<Option<Staff>, StoreError> {
    let hash = token_hash(token);
    type Row = (i64, String, String, String, String, String, String, bool);
    let row: Option<Row> = conn
        .query_row(
            "SELECT u.id, u.username, u.display_name, u.role, s.csrf_token, s.last_seen_at,
                    s.expires_at, u.active
             FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
            [&hash],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .optional()?;
    let Some((user_id, username, display_name, role, csrf_token, last_seen, expires, active)) = row
    else {
        return Ok(None);
    };
    let parse = |t: &str| {
        t.parse::<Timestamp>()
            .map_err(|_| StoreError::InvalidData(format!("instant {t}")))
    };
    let last_seen = parse(&last_seen)?;
    if !active || parse(&expires)? <= now || last_seen + SESSION_IDLE <= now {
        conn.execute("DELETE FROM web_sessions WHERE token_hash = ?1", [&hash])?;
        return Ok(None);
    }
    let Some(role) = Role::parse(&role).filter(|r| *r != Role::Operator) else {
        return Ok(None);
    };
    if now.duration_since(last_seen) > SignedDuration::from_mins(1) {
        conn.execute(
            "UPDATE web_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
            params![hash, instant_text(now)],
        )?;
    }
    Ok(Some(Staff {
        user_id,
        username,
        display_name,
        role,
        csrf_token,
    }))
}

/// End the session of `token`.
pub fn logout(conn: &Connection, token: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM web_sessions WHERE token_hash = ?1",
        [token_hash(token)],
    )?;
    Ok(())
}

fn local_hh_mm(conn: &Connection, at: Timestamp) -> Result<String, StoreError> {
    let zone = store::agenda::questura(conn)?
        .map(|q| q.time_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    Ok(at.to_zoned(zone).strftime("%H:%M").to_string())
}

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
    create_user(
        conn,
        username,
        display_name,
        password,
        Role::Admin,
        None,
        now,
        "cli",
    )
}

/// Create an account with `role`; an operator belongs to `partner_body`.
#[allow(clippy::too_many_arguments)]
pub fn create_user(
    conn: &Connection,
    username: &str,
    display_name: &str,
    password: &str,
    role: Role,
    partner_body: Option<i64>,
    now: jiff::Timestamp,
    actor: &str,
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
        "INSERT INTO users (username, display_name, password_hash, role, partner_body_id,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            username,
            display_name,
            hash_password(password),
            role.as_str(),
            partner_body,
            instant_text(now)
        ],
    )?;
    let id = conn.last_insert_rowid();
    store::audit(
        conn,
        now,
        actor,
        "user.created",
        &id.to_string(),
        &serde_json::json!({ "role": role.as_str() }),
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
