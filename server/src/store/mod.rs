//! The server's SQLite store: the source of truth for the agenda and everything booked in it.
//!
//! One file (`coper.sqlite3` in the data folder), WAL mode, `synchronous = FULL` (a verdict reported
//! to a kiosk must survive a power cut), foreign keys on. The schema lives in `migrations/` at the
//! root of the repository; [`Db::open`] applies what is missing, in order, and records it.
//!
//! rusqlite is synchronous, so async code reaches the database through [`Db::call`] (the one
//! writing connection) or [`Db::read`] (one of a few query-only connections), which run the
//! closure on tokio's blocking pool. One connection serialises writes, which SQLite does anyway;
//! in WAL mode readers see the last committed state and never wait behind a writer, so
//! `/healthz`, the status check and the pages that only look stay fast while an import or a
//! sync batch is being written.
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
pub mod backup;
pub mod checklists;
pub mod documents;
pub mod kiosks;
pub mod metrics;
pub mod notices;
pub mod partners;
pub mod precheck;
pub mod ready;
pub mod services;
pub mod settings;
pub mod slots;
pub mod users;
pub mod verdicts;
pub mod watches;

pub use audit::audit_from;
pub use rusqlite::{Connection, Transaction};

use std::{
    path::Path,
    sync::{Arc, Condvar, Mutex},
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
    /// Applying a change to a synchronised document panicked inside Automerge (a malformed sync
    /// message from a kiosk: the client's fault). The document was reloaded from the store.
    #[error("a change to document {0} could not be applied")]
    DocumentRefused(String),
    /// A step the store refused for a reason the caller reports (a stable code): returned from
    /// inside [`in_savepoint`] so what the step had already written is rolled back.
    #[error("refused: {0}")]
    Refused(&'static str),
}

/// The migrations' SQL, in order: each file is applied once and recorded in SQLite's
/// `user_version`. Never edit or remove one that shipped; add the next.
const MIGRATION_SQL: [&str; 18] = [
    include_str!("../../../migrations/0001_initial.sql"),
    include_str!("../../../migrations/0002_sync.sql"),
    include_str!("../../../migrations/0003_staff.sql"),
    include_str!("../../../migrations/0004_verdicts_per_kiosk.sql"),
    include_str!("../../../migrations/0005_audit_by_actor.sql"),
    include_str!("../../../migrations/0006_ready_by_person.sql"),
    include_str!("../../../migrations/0007_quotas.sql"),
    include_str!("../../../migrations/0008_server_secrets.sql"),
    include_str!("../../../migrations/0009_ready_stretch.sql"),
    include_str!("../../../migrations/0010_kiosk_silence.sql"),
    include_str!("../../../migrations/0011_booking_trust.sql"),
    include_str!("../../../migrations/0012_contact.sql"),
    include_str!("../../../migrations/0013_notices.sql"),
    include_str!("../../../migrations/0014_notice_delivery.sql"),
    include_str!("../../../migrations/0015_precheck.sql"),
    include_str!("../../../migrations/0016_precheck_lists.sql"),
    include_str!("../../../migrations/0017_what_to_bring_languages.sql"),
    include_str!("../../../migrations/0018_ready_by_birth.sql"),
];

/// The migrations, in order.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATION_SQL.iter().map(|sql| M::up(sql)).collect())
}

/// How many migrations this server knows: the newest schema it can open.
pub fn migrations_count() -> i64 {
    MIGRATION_SQL.len() as i64
}

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// Work for the writing connection, done in order on a thread of its own (see [`Db::call`]).
    writer: std::sync::mpsc::Sender<WriterJob>,
    readers: Arc<Readers>,
    /// Dropped with the last handle, which stops the checkpointer.
    _checkpointer: Arc<std::sync::mpsc::Sender<()>>,
}

type WriterJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The thread that runs the writing connection's work, one job at a time in the order given,
/// until every handle on the database is gone.
///
/// Its own thread rather than the blocking pool's: when hundreds of kiosks queue work for the
/// writer at once (a reconnect storm), each queued job held one of the pool's threads waiting
/// for the connection's lock, and the sessions' reads of documents waited behind them.
fn start_writer(conn: Arc<Mutex<Connection>>) -> std::sync::mpsc::Sender<WriterJob> {
    let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
    std::thread::Builder::new()
        .name("coper-writer".into())
        .spawn(move || {
            for job in queue {
                // Only `call_blocking` can poison the mutex (a job's panic is caught below), and
                // the connection itself is still consistent (SQLite rolled back the open
                // transaction), so keep serving.
                let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                // A job that panics loses its own answer only: its caller is told the worker
                // is gone, and the next job is served.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut guard)));
            }
        })
        .expect("start the database's writing thread");
    jobs
}

/// How often the checkpointer copies what the write-ahead log gained into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// A log this long (pages) is checkpointed even if that makes the writer wait: readers or a busy
/// writer kept the passive checkpoints from ever finishing, and the log would only grow.
const CHECKPOINT_FORCED_PAGES: i64 = 16_384;

/// The thread that checkpoints the write-ahead log, with a connection of its own, until every
/// handle on the database is gone (the sender returned is kept by them).
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 pages of log: that
/// commit copied the pages into the database file and flushed it, tens of milliseconds (66 ms
/// measured) on a booking's path, one commit in a few hundred. A passive checkpoint here waits
/// for no reader and no writer, and commits go on meanwhile.
fn start_checkpointer(path: &Path) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("coper-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(1)
                });
                let outcome = match passive {
                    Ok(pages) if pages >= CHECKPOINT_FORCED_PAGES => conn
                        .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                        .map(drop),
                    other => other.map(drop),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "write-ahead log not checkpointed");
                }
            }
        })
        .map_err(|e| StoreError::InvalidData(format!("cannot start the checkpointer: {e}")))?;
    Ok(stop)
}

/// Query-only connections, lent one closure at a time.
struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    /// How many: enough for the blocking pool's readers on two cores, few enough to stay cheap.
    const COUNT: usize = 4;

    fn open(path: &Path) -> Result<Self, StoreError> {
        let mut idle = Vec::with_capacity(Self::COUNT);
        for _ in 0..Self::COUNT {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "query_only", "ON")?;
            add_functions(&conn)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            idle.push(conn);
        }
        Ok(Self {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let conn = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(conn) = idle.pop() {
                    break conn;
                }
                idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Given back even if `f` panics: a query-only connection holds no half-done work.
        struct Lent<'a>(&'a Readers, Option<Connection>);
        impl Drop for Lent<'_> {
            fn drop(&mut self) {
                if let Some(conn) = self.1.take() {
                    self.0
                        .idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                    self.0.returned.notify_one();
                }
            }
        }
        let lent = Lent(self, Some(conn));
        f(lent.1.as_ref().expect("lent until dropped"))
    }
}

impl Db {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        // Every transaction of the writer takes the write lock at once. A deferred one that
        // reads first cannot become a writer once another process (a command-line tool) has
        // written meanwhile: SQLite answers `SQLITE_BUSY_SNAPSHOT` at once, which no busy
        // timeout waits out (the hourly contacts task failed so whenever a CLI command ran).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations().to_latest(&mut conn)?;
        // Marks the file as coper's, for `restore` (written once; older files get it here).
        if conn.pragma_query_value(None, "application_id", |r| r.get::<_, i32>(0))?
            != backup::APPLICATION_ID
        {
            conn.pragma_update(None, "application_id", backup::APPLICATION_ID)?;
        }
        // Made now, on its own: made inside a later transaction that rolls back, it would be
        // lost after the documents derived from it (the ready index's salts, the sealing key
        // kiosks use) had already gone out.
        settings::server_key(&conn, jiff::Timestamp::now())?;
        settings::seal_secret(&conn, jiff::Timestamp::now())?;
        settings::opt_out_key(&conn, jiff::Timestamp::now())?;
        settings::ready_stretch(&conn, jiff::Timestamp::now())?;
        // The writer's commits never copy the log back into the database file: that copy (and
        // its flush of the file) is the checkpointer's, on a thread of its own.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Self {
            writer: start_writer(conn.clone()),
            conn,
            readers: Arc::new(Readers::open(path)?),
            _checkpointer: Arc::new(start_checkpointer(path)?),
        })
    }

    /// Run `f` with a query-only connection on the blocking thread pool: it sees the last
    /// committed state and does not wait for the writer. A write in `f` fails.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|_| E::from(StoreError::WorkerGone))?
    }

    /// Run `f` with the writing connection, after the work queued before it, on the writer's
    /// own thread.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: WriterJob = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        self.writer
            .send(job)
            .map_err(|_| E::from(StoreError::WorkerGone))?;
        answer.await.map_err(|_| E::from(StoreError::WorkerGone))?
    }

    /// Whether the database takes a write transaction (for `/healthz/ready`): the file and its
    /// folder are writable, and the writer comes free within the busy timeout.
    pub async fn writable(&self) -> Result<(), StoreError> {
        self.call(|conn| Ok(conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK")?))
            .await
    }

    /// Run `f` on the calling thread: for start-up work and the command line, outside tokio.
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Room for every statement of the store (about 200 distinct): each is parsed once per
    // connection, not at each use (parsing was 8 % of the writer's time under load).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    add_functions(conn)
}

/// SQL functions of ours, on every connection: `coper_fold(name)`, a name as searches compare it
/// (lower case, no accents, apostrophes and hyphens as spaces: `coper_shared::names::folded`),
/// which SQLite cannot do by itself.
fn add_functions(conn: &Connection) -> Result<(), rusqlite::Error> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "coper_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|t| coper_shared::names::folded(&t)))
        },
    )
}

/// Whether every word of `query` (folded) is in `name` (folded): how the counter and the
/// administration search by name, whatever the accents typed.
pub fn name_contains_all(name: &str, query: &[String]) -> bool {
    let name = coper_shared::names::folded(name);
    query.iter().all(|w| name.contains(w.as_str()))
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

    /// A file added to `migrations/` but not to [`migrations`] would silently never run (0005
    /// and 0006 did not, for a while): the schema's version must count every file.
    #[test]
    fn every_migration_file_is_applied() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let files = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        let version: i64 = db.call_blocking(|conn| {
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        });
        assert_eq!(version, files as i64);
    }

    /// A database a newer coper migrated is refused, not opened and misread.
    #[test]
    fn a_database_from_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        Db::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", migrations_count() + 1)
            .unwrap();
        assert!(Db::open(&path).is_err());
    }

    /// A new database stretches the ready list's birth dates at the full cost, with a salt of
    /// its own that stays across restarts.
    #[test]
    fn the_ready_stretch_is_costly_by_default_and_its_salt_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let now = jiff::Timestamp::UNIX_EPOCH;
        let first = Db::open(&path)
            .unwrap()
            .call_blocking(|conn| settings::ready_stretch(conn, now).unwrap());
        assert_eq!(
            first.memory_kib,
            coper_shared::ready_index::Stretch::MEMORY_KIB
        );
        assert_eq!(first.passes, coper_shared::ready_index::Stretch::PASSES);
        let again = Db::open(&path)
            .unwrap()
            .call_blocking(|conn| settings::ready_stretch(conn, now).unwrap());
        assert_eq!(first, again);
        let other = Db::open(&dir.path().join("u.sqlite3"))
            .unwrap()
            .call_blocking(|conn| settings::ready_stretch(conn, now).unwrap());
        assert_ne!(first.salt, other.salt);
    }

    fn write_an_audit_line(conn: &Connection) -> Result<(), StoreError> {
        audit_from(
            conn,
            jiff::Timestamp::UNIX_EPOCH,
            "system",
            "test",
            "",
            &serde_json::json!({}),
            "",
        )?;
        Ok(())
    }

    /// A reader sees what the writer committed, and refuses to write.
    #[tokio::test]
    async fn readers_see_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call(|conn| write_an_audit_line(conn)).await.unwrap();
        let seen: i64 = db
            .read(|conn| {
                Ok::<_, StoreError>(
                    conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?,
                )
            })
            .await
            .unwrap();
        assert_eq!(seen, 1);
        let write = db
            .read(|conn| Ok::<_, StoreError>(conn.execute("DELETE FROM settings", [])?))
            .await;
        assert!(write.is_err());
    }

    #[test]
    fn the_audit_log_refuses_updates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        db.call_blocking(|conn| {
            write_an_audit_line(conn).unwrap();
            let update = conn.execute("UPDATE audit_log SET action = 'x'", []);
            assert!(update.unwrap_err().to_string().contains("append_only"));
            let delete = conn.execute("DELETE FROM audit_log", []);
            assert!(delete.unwrap_err().to_string().contains("append_only"));
        });
    }

    /// The writer's commits leave the log to the checkpointer, which copies it into the
    /// database file by itself within a few seconds.
    #[test]
    fn the_checkpointer_copies_the_log_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let db = Db::open(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        db.call_blocking(|conn| {
            let automatic: i64 = conn
                .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                .unwrap();
            assert_eq!(automatic, 0, "the writer's commits do not checkpoint");
            conn.execute_batch("CREATE TABLE filler (b BLOB)").unwrap();
            for _ in 0..8 {
                conn.execute("INSERT INTO filler VALUES (zeroblob(1048576))", [])
                    .unwrap();
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&path).unwrap().len() < before + 8 * 1_048_576 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file never received the log's pages"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
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
