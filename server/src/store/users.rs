//! Accounts and staff sessions (`users`, `web_sessions`): rows only. The policy (password
//! hashing, lock-out, session lifetimes) is `crate::accounts`'s.

use coper_shared::{documents::OperatorEntry, jiff::Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, audit::audit_from, instant_text};

/// The stored password hash of `username`, if there is such an account.
pub fn password_hash(conn: &Connection, username: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT password_hash FROM users WHERE username = ?1")?
        .query_row([username], |r| r.get(0))
        .optional()?)
}

/// What a login needs to know of an account.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub failed_logins: i64,
    pub locked_until: Option<String>,
}

pub fn login_row(conn: &Connection, username: &str) -> Result<Option<LoginRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, username, display_name, role, active, failed_logins, locked_until
             FROM users WHERE username = ?1",
        )?
        .query_row([username], |r| {
            Ok(LoginRow {
                id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
                role: r.get(3)?,
                active: r.get(4)?,
                failed_logins: r.get(5)?,
                locked_until: r.get(6)?,
            })
        })
        .optional()?)
}

/// Record the count of consecutive failed logins, and the lock if one starts.
pub fn set_failed_logins(
    conn: &Connection,
    user: i64,
    failed: i64,
    locked_until: Option<Timestamp>,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1")?
        .execute(params![user, failed, locked_until.map(instant_text)])?;
    Ok(())
}

/// A staff session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub csrf_token: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub active: bool,
}

/// Open a session for `user`: only the token's hash is stored.
pub fn open_session(
    conn: &Connection,
    token_hash: &str,
    user: i64,
    csrf_token: &str,
    now: Timestamp,
    expires: Timestamp,
    source: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, last_seen_at,
             expires_at, source) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
    )?
    .execute(params![
        token_hash,
        user,
        csrf_token,
        instant_text(now),
        instant_text(expires),
        source
    ])?;
    Ok(())
}

pub fn session(conn: &Connection, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.username, u.display_name, u.role, s.csrf_token, s.last_seen_at,
                    s.expires_at, u.active
             FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(SessionRow {
                user_id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
                role: r.get(3)?,
                csrf_token: r.get(4)?,
                last_seen_at: r.get(5)?,
                expires_at: r.get(6)?,
                active: r.get(7)?,
            })
        })
        .optional()?)
}

pub fn touch_session(
    conn: &Connection,
    token_hash: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE web_sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
        .execute(params![token_hash, instant_text(now)])?;
    Ok(())
}

pub fn end_session(conn: &Connection, token_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE token_hash = ?1")?
        .execute([token_hash])?;
    Ok(())
}

/// Whether `username` is taken.
pub fn username_taken(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    Ok(password_hash(conn, username)?.is_some())
}

/// An account to create; the password already hashed.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub partner_body: Option<i64>,
}

/// Create an account; its id.
pub fn insert(conn: &Connection, new: &NewUser<'_>, now: Timestamp) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO users (username, display_name, password_hash, role, partner_body_id,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.username,
        new.display_name,
        new.password_hash,
        new.role,
        new.partner_body,
        instant_text(now)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The operators of partner body `partner`, as its kiosks know them (with their hashes).
pub fn operators_of(conn: &Connection, partner: i64) -> Result<Vec<OperatorEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT username, display_name, password_hash, active FROM users
         WHERE role = 'operator' AND partner_body_id = ?1",
    )?;
    Ok(stmt
        .query_map([partner], |r| {
            Ok(OperatorEntry {
                username: r.get(0)?,
                display_name: r.get(1)?,
                password_hash: r.get(2)?,
                active: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// An account as the administration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub locked: bool,
}

/// The operators of `partner`, or the Questura's staff when `partner` is `None`.
pub fn accounts(
    conn: &Connection,
    partner: Option<i64>,
    now: Timestamp,
) -> Result<Vec<Account>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, username, display_name, role, active, locked_until FROM users
         WHERE (?1 IS NULL AND partner_body_id IS NULL) OR partner_body_id = ?1
         ORDER BY username",
    )?;
    let now = instant_text(now);
    Ok(stmt
        .query_map([partner], |r| {
            let locked: Option<String> = r.get(5)?;
            Ok(Account {
                id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
                role: r.get(3)?,
                active: r.get(4)?,
                locked: locked.is_some_and(|l| l > now),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Set a new password hash (and unlock the account, ending its sessions).
pub fn reset_password(
    conn: &Connection,
    user: i64,
    password_hash: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<bool, StoreError> {
    let changed = conn.prepare_cached("UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1")?.execute(params![user, password_hash],
    )?;
    if changed > 0 {
        conn.prepare_cached("DELETE FROM web_sessions WHERE user_id = ?1")?
            .execute([user])?;
        audit_from(
            conn,
            now,
            actor,
            "user.password_reset",
            &user.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(changed > 0)
}

/// Activate or deactivate an account; deactivating ends its sessions.
pub fn set_active(
    conn: &Connection,
    user: i64,
    active: bool,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("UPDATE users SET active = ?2 WHERE id = ?1")?
        .execute(params![user, active])?;
    if changed > 0 && !active {
        conn.prepare_cached("DELETE FROM web_sessions WHERE user_id = ?1")?
            .execute([user])?;
    }
    if changed > 0 {
        audit_from(
            conn,
            now,
            actor,
            if active {
                "user.activated"
            } else {
                "user.deactivated"
            },
            &user.to_string(),
            &serde_json::json!({}),
            source,
        )?;
    }
    Ok(changed > 0)
}
