//! The server's SQLite store: the source of truth for the agenda and everything booked in it.
//!
//! One file (`coper.sqlite3` in the data folder), WAL mode, `synchronous = FULL` (a verdict reported
//! to a kiosk must survive a power cut), foreign keys on. The schema lives in `migrations/` at the
//! root of the repository; [`Db::open`] applies what is missing, in order, and records it.
//!
//! rusqlite is synchronous, so async code reaches the database through [`Db::call`], which runs the
//! closure on tokio's blocking pool. One connection serialises writes, which SQLite does anyway;
//! the closures are short.
//!
//! One submodule per aggregate, each the only one that reads or writes its tables: `settings`
//! (the Questura, the server's key), `services` (rules), `slots` (places and leases),
//! `appointments`, `verdicts` (on kiosks' requests), `kiosks` (enrolment, keys, revocation),
//! `partners`, `users` (accounts and sessions), `ready` (the ready list), `audit`, and
//! `documents` (the synchronised documents' bytes). They map rows to domain values and back; none
//! of them knows about HTTP. No other module of the server uses rusqlite or writes SQL (a test in
//! `server/tests/layout.rs` keeps it so): the service layer composes these functions inside one
//! transaction, through the [`Connection`] and [`Transaction`] re-exported here.

pub mod appointments;
pub mod audit;
pub mod documents;
pub mod kiosks;
pub mod partners;
pub mod ready;
pub mod services;
pub mod settings;
pub mod slots;
pub mod users;
pub mod verdicts;

pub use audit::audit_from;
pub use rusqlite::{Connection, Transaction};

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite_migration::{M, Migrations};

/// Errors of the store. The HTTP layer maps them; none is the client's fault except where noted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot bring the database schema up to date")]
    Migration(#[from] rusqlite_migration::Error),
    /// A row holds something the domain types refuse: a bug or a hand-edited database.
    #[error("invalid data in the database: {0}")]
    InvalidData(String),
    #[error("the database worker stopped unexpectedly")]
    WorkerGone,
}

/// The migrations, in order. Each file is applied once and recorded in SQLite's `user_version`.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../../migrations/0001_initial.sql")),
        M::up(include_str!("../../../migrations/0002_sync.sql")),
        M::up(include_str!("../../../migrations/0003_staff.sql")),
        M::up(include_str!(
            "../../../migrations/0004_verdicts_per_kiosk.sql"
        )),
    ])
}

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrations().to_latest(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` with the connection on the blocking thread pool.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier closure poisons the mutex, but the connection itself is
            // still consistent (SQLite rolled back the open transaction), so keep serving.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| E::from(StoreError::WorkerGone))?
    }

    /// Whether the database answers a query (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    /// Run `f` on the calling thread: for start-up work and the command line, outside tokio.
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// The current instant as stored: RFC 3339 in UTC, to the second.
pub fn instant_text(at: jiff::Timestamp) -> String {
    at.round(jiff::Unit::Second)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Run `f` in a savepoint of `tx`: what it wrote is kept if it returns `Ok`, undone if it
/// returns an error. The outer error is the savepoint's own; the inner one is `f`'s.
pub fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    tx.execute_batch("SAVEPOINT step")?;
    match f(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE step")?;
            Ok(Ok(value))
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO step; RELEASE step")?;
            Ok(Err(e))
        }
    }
}

pub fn parse_date(text: &str) -> Result<jiff::civil::Date, StoreError> {
    text.parse()
        .map_err(|e| StoreError::InvalidData(format!("date {text:?}: {e}")))
}

pub fn parse_time(text: &str) -> Result<jiff::civil::Time, StoreError> {
    text.parse()
        .map_err(|e| StoreError::InvalidData(format!("time {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn the_audit_log_refuses_updates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call_blocking(|conn| {
            audit_from(
                conn,
                jiff::Timestamp::UNIX_EPOCH,
                "system",
                "test",
                "",
                &serde_json::json!({}),
                "",
            )
            .unwrap();
            let update = conn.execute("UPDATE audit_log SET action = 'x'", []);
            assert!(update.unwrap_err().to_string().contains("append_only"));
            let delete = conn.execute("DELETE FROM audit_log", []);
            assert!(delete.unwrap_err().to_string().contains("append_only"));
        });
    }

    #[test]
    fn the_database_is_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call_blocking(|conn| {
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 2, "FULL");
        });
    }
}
