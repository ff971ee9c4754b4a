//! Backups of the database, and the checks before one is restored.
//!
//! A backup is SQLite's online backup of the live file, copied in one step under one read
//! transaction: it is the database as it was at one commit, whatever the running server writes
//! meanwhile (in WAL mode readers never block the writer, so kiosks keep booking). It is written
//! beside its destination and renamed into place only once copied and checked, so a backup that
//! exists is whole. A file is restorable when it is a coper database (its `application_id`, or
//! for files made before that was set, coper's tables) whose schema this server knows.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::migrations_count;

/// Written in every coper database's header (`PRAGMA application_id`): "cope" in ASCII.
pub const APPLICATION_ID: i32 = 0x636f_7065;

/// What a database holds, to tell the technician what was copied or is about to be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The migrations applied (`user_version`).
    pub schema: i64,
    pub appointments: i64,
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "schema {}, {} prenotazioni, {} byte ({} bookings)",
            self.schema, self.appointments, self.bytes, self.appointments
        )
    }
}

/// Why a file cannot be restored (or backed up into), for the technician.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}: non è un database di coper (not a coper database)")]
    NotCoper(PathBuf),
    #[error(
        "{path}: viene da una versione più recente di coper (schema {found}, questa versione \
         conosce fino a {known}): aggiornare coper prima (from a newer coper: update first)"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: il database è danneggiato (damaged): {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("{0}: occupato per 10 secondi, riprovare (busy for 10 s: try again)")]
    Busy(PathBuf),
    #[error("{0} esiste già: scegliere un altro nome (already exists)")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// Copy the database at `database` into the new file `to`, consistently while a server writes to
/// it, and check the copy. Refuses to overwrite a file.
pub fn backup(database: &Path, to: &Path) -> Result<Summary, BackupError> {
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(database))?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite(database))?;
    identify(&source, database)?;
    let partial = with_suffix(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let copied = (|| {
        let mut target = Connection::open(&partial).map_err(sqlite(&partial))?;
        {
            let backup =
                rusqlite::backup::Backup::new(&source, &mut target).map_err(sqlite(&partial))?;
            // Every page in one step (-1): one read transaction, so the copy is one commit's
            // state. Busy only while another connection holds a lock it must wait for.
            use rusqlite::backup::StepResult;
            let mut tries = 0;
            while backup.step(-1).map_err(sqlite(&partial))? != StepResult::Done {
                tries += 1;
                if tries == 100 {
                    return Err(BackupError::Busy(database.to_owned()));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        // A backup is a single file, readable without its journal.
        target
            .pragma_update(None, "journal_mode", "DELETE")
            .map_err(sqlite(&partial))?;
        let summary = inspect(&target, &partial)?;
        drop(target);
        sync_file(&partial)?;
        std::fs::rename(&partial, to).map_err(|source| BackupError::Io {
            path: to.to_owned(),
            source,
        })?;
        Ok(summary)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// Whether the file `path` can be restored by this server: a whole coper database, of a schema
/// no newer than this server's. What it holds, if so.
pub fn check_restorable(path: &Path) -> Result<Summary, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|_| BackupError::NotCoper(path.to_owned()))?;
    identify(&conn, path)?;
    inspect(&conn, path)
}

/// Check that `conn` is a coper database this server can open.
fn identify(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let not_coper = || BackupError::NotCoper(path.to_owned());
    // A file that is not SQLite fails here ("file is not a database").
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|_| not_coper())?;
    let schema: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|_| not_coper())?;
    let has_table = |name: &str| {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 1)
    };
    // Databases made before the application id was written are known by coper's first tables.
    let coper = application_id == APPLICATION_ID
        || (application_id == 0
            && schema >= 1
            && has_table("appointments")
            && has_table("services"));
    if !coper {
        return Err(not_coper());
    }
    let known = migrations_count();
    if schema > known {
        return Err(BackupError::Newer {
            path: path.to_owned(),
            found: schema,
            known,
        });
    }
    Ok(())
}

fn inspect(conn: &Connection, path: &Path) -> Result<Summary, BackupError> {
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if check != "ok" {
        return Err(BackupError::Damaged {
            path: path.to_owned(),
            detail: check,
        });
    }
    let schema = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite(path))?;
    let appointments = conn
        .query_row("SELECT count(*) FROM appointments", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Summary {
        schema,
        appointments,
        bytes,
    })
}

/// `path` with `suffix` added to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| BackupError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_restorable_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("coper.sqlite3");
        super::super::Db::open(&live).unwrap();
        let copy = dir.path().join("copy.sqlite3");
        let summary = backup(&live, &copy).unwrap();
        assert_eq!(summary.schema, migrations_count());
        assert_eq!(check_restorable(&copy).unwrap().schema, summary.schema);
        assert!(matches!(backup(&live, &copy), Err(BackupError::Exists(_))));

        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "not a database at all, but long enough to look like one? no",
        )
        .unwrap();
        assert!(matches!(
            check_restorable(&text),
            Err(BackupError::NotCoper(_))
        ));
        let other = dir.path().join("other.sqlite3");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;")
            .unwrap();
        assert!(matches!(
            check_restorable(&other),
            Err(BackupError::NotCoper(_))
        ));

        let newer = dir.path().join("newer.sqlite3");
        std::fs::copy(&copy, &newer).unwrap();
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", migrations_count() + 1)
            .unwrap();
        let refused = check_restorable(&newer).unwrap_err();
        assert!(matches!(refused, BackupError::Newer { .. }), "{refused}");
        assert!(
            refused.to_string().contains("aggiornare coper"),
            "{refused}"
        );
    }
}
