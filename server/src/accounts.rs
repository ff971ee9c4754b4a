//! Staff and operator accounts: password hashing (Argon2id), creating accounts, logging in with a
//! lock-out after repeated failures, and the staff pages' sessions.
//!
//! `coper-server create-admin` lets a fresh install get its first administrator without a browser.
//! A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, with the
//! session's CSRF token, so a copy of the database logs nobody in.

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::store::{self, Connection, StoreError, users};

/// Consecutive wrong passwords after which an account is locked for [`LOCK_OUT`] — except to
/// the right password from a computer it logged in from before, so nobody can lock a clerk out
/// of their own desk.
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
    /// Checks people's documents before their appointment (the pre-check conversations).
    Precheck,
    /// A partner body's operator: logs in at the kiosk only.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Counter => "counter",
            Self::Precheck => "precheck",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "counter" => Some(Self::Counter),
            "precheck" => Some(Self::Precheck),
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

    /// Whether the counter's pages are for this person (the menu shows them).
    pub fn works_at_counter(&self) -> bool {
        matches!(self.role, Role::Counter | Role::Admin)
    }

    /// Whether the document pre-check's pages are for this person.
    pub fn works_on_precheck(&self) -> bool {
        matches!(self.role, Role::Precheck | Role::Admin)
    }

    /// How the audit log names this person.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// What every refused login reads, whatever the reason: the form tells nobody whether an account
/// exists, is locked, is deactivated or belongs to an operator.
pub const LOGIN_REFUSED: &str = "Accesso non riuscito: nome utente o password non corretti. Dopo \
     troppi tentativi falliti l'accesso da un computer mai usato prima resta sospeso per 15 minuti.";

/// Why a login was refused (for the audit log and the tests); every one reads the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("{LOGIN_REFUSED}")]
    WrongCredentials,
    /// Locked after repeated failures, and tried from a computer the account never logged in
    /// from.
    #[error("{LOGIN_REFUSED}")]
    Locked,
    #[error("{LOGIN_REFUSED}")]
    Inactive,
    /// Operators log in at the kiosks.
    #[error("{LOGIN_REFUSED}")]
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
    Ok(users::password_hash(conn, username.trim())?.unwrap_or_else(|| decoy_hash().to_owned()))
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
    let Some(row) = users::login_row(conn, username.trim())? else {
        return Ok(Err(LoginError::WrongCredentials));
    };
    let id = row.id;
    let locked = row
        .locked_until
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|until| until > now);
    if locked
        && !(password_matches && store::audit::has(conn, &format!("user:{id}"), "login", source)?)
    {
        return Ok(Err(LoginError::Locked));
    }
    if !password_matches {
        let failed = row.failed_logins + 1;
        let lock = (failed >= MAX_FAILED_LOGINS).then(|| now + LOCK_OUT);
        users::set_failed_logins(conn, id, if lock.is_some() { 0 } else { failed }, lock)?;
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
        return Ok(Err(LoginError::WrongCredentials));
    }
    if !row.active {
        return Ok(Err(LoginError::Inactive));
    }
    let role = Role::parse(&row.role)
        .ok_or_else(|| StoreError::InvalidData(format!("role {}", row.role)))?;
    if role == Role::Operator {
        return Ok(Err(LoginError::NotStaff));
    }
    users::set_failed_logins(conn, id, 0, None)?;
    let token = random_token();
    let csrf_token = random_token();
    users::open_session(
        conn,
        &token_hash(&token),
        id,
        &csrf_token,
        now,
        now + SESSION_LIFETIME,
        source,
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
            username: row.username,
            display_name: row.display_name,
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
    let Some(row) = users::session(conn, &hash)? else {
        return Ok(None);
    };
    let parse = |t: &str| {
        t.parse::<Timestamp>()
            .map_err(|_| StoreError::InvalidData(format!("instant {t}")))
    };
    let last_seen = parse(&row.last_seen_at)?;
    if !row.active || parse(&row.expires_at)? <= now || last_seen + SESSION_IDLE <= now {
        users::end_session(conn, &hash)?;
        return Ok(None);
    }
    let Some(role) = Role::parse(&row.role).filter(|r| *r != Role::Operator) else {
        return Ok(None);
    };
    if now.duration_since(last_seen) > SignedDuration::from_mins(1) {
        users::touch_session(conn, &hash, now)?;
    }
    Ok(Some(Staff {
        user_id: row.user_id,
        username: row.username,
        display_name: row.display_name,
        role,
        csrf_token: row.csrf_token,
    }))
}

/// End the session of `token`.
pub fn logout(conn: &Connection, token: &str) -> Result<(), StoreError> {
    users::end_session(conn, &token_hash(token))
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
    #[error("ente convenzionato {0} inesistente")]
    UnknownPartner(i64),
    #[error("la password deve avere almeno {MIN_PASSWORD_CHARS} caratteri")]
    WeakPassword,
}

pub use coper_shared::passwords::{hash as hash_password, verify as verify_password};

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
    if let Some(partner) = partner_body
        && store::partners::partner(conn, partner)?.is_none()
    {
        return Ok(Err(AccountError::UnknownPartner(partner)));
    }
    if users::username_taken(conn, username)? {
        return Ok(Err(AccountError::UsernameTaken(username.to_owned())));
    }
    let id = users::insert(
        conn,
        &users::NewUser {
            username,
            display_name,
            password_hash: &hash_password(password),
            role: role.as_str(),
            partner_body,
        },
        now,
    )?;
    store::audit_from(
        conn,
        now,
        actor,
        "user.created",
        &id.to_string(),
        &serde_json::json!({ "role": role.as_str() }),
        "",
    )?;
    Ok(Ok(id))
}

/// Whether two secrets are equal, in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
