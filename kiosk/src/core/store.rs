//! The kiosk's local store: its key, its replicas of the synchronised documents and their sync
//! states, in one SQLite file that survives restarts and power cuts (WAL, `synchronous = FULL`).
//!
//! A document is saved whole (Automerge's compressed snapshot) in the same transaction each time
//! it changes. Kiosk documents are small (one partner office's requests, a few months of counts),
//! and a whole-snapshot write is atomic, so there is no increment log to compact or to replay.

use std::path::Path;

use automerge::{AutoCommit, sync};
use coper_shared::documents::{DocName, KioskId};
use rusqlite::{Connection, OptionalExtension, params};

use super::CoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS identity (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    secret_key       BLOB NOT NULL CHECK (length(secret_key) = 32),
    server_url       TEXT NOT NULL,
    kiosk_id         TEXT,
    partner_body_id  INTEGER
);
CREATE TABLE IF NOT EXISTS documents (
    name      TEXT PRIMARY KEY,
    snapshot  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS peer_states (
    name   TEXT PRIMARY KEY,
    state  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    last_sync_ms     INTEGER,
    clock_trusted    INTEGER NOT NULL DEFAULT 0,
    documents        TEXT NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO meta (id) VALUES (1);
";

pub struct Store {
    conn: Connection,
}

/// Who this kiosk is, once enrolled.
#[derive(Debug, Clone)]
pub struct Identity {
    pub secret_key: [u8; 32],
    pub server_url: String,
    pub kiosk: Option<(KioskId, i64)>,
}

impl Store {
    /// Open the store. `power_loss_safe` flushes every commit to disk (a kiosk in an office);
    /// without it a commit survives a crash of the program but maybe not of the machine (only
    /// for simulating many kiosks on one disk, as `coper-loadgen` does).
    pub fn open(path: &Path, power_loss_safe: bool) -> Result<Self, CoreError> {
        private_to_this_user(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if power_loss_safe { "FULL" } else { "NORMAL" },
        )?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    pub fn identity(&self) -> Result<Option<Identity>, CoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT secret_key, server_url, kiosk_id, partner_body_id FROM identity",
                [],
                |r| {
                    let key: Vec<u8> = r.get(0)?;
                    let kiosk: Option<String> = r.get(2)?;
                    let partner: Option<i64> = r.get(3)?;
                    Ok((key, r.get::<_, String>(1)?, kiosk, partner))
                },
            )
            .optional()?
            .map(|(key, server_url, kiosk, partner)| Identity {
                secret_key: key.try_into().unwrap_or([0; 32]),
                server_url,
                kiosk: kiosk
                    .and_then(|k| k.parse().ok())
                    .zip(partner)
                    .map(|(k, p)| (KioskId(k), p)),
            }))
    }

    /// Keep a freshly made key (before enrolment is attempted, so a retry uses the same key).
    pub fn save_key(&self, secret_key: &[u8; 32], server_url: &str) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT INTO identity (id, secret_key, server_url) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url",
            params![secret_key.as_slice(), server_url],
        )?;
        Ok(())
    }

    pub fn save_enrolment(&self, kiosk: KioskId, partner: i64) -> Result<(), CoreError> {
        self.conn.execute(
            "UPDATE identity SET kiosk_id = ?1, partner_body_id = ?2",
            params![kiosk.to_string(), partner],
        )?;
        Ok(())
    }

    pub fn load_documents(&self) -> Result<Vec<(DocName, AutoCommit)>, CoreError> {
        let mut stmt = self.conn.prepare("SELECT name, snapshot FROM documents")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, bytes) = row?;
            let Some(name) = DocName::parse(&name) else {
                continue;
            };
            let doc = AutoCommit::load(&bytes).map_err(|e| CoreError::Corrupt(e.to_string()))?;
            out.push((name, doc));
        }
        Ok(out)
    }

    /// Save documents received from the server with their sync states, and the time of the last
    /// sync, in one transaction: one disk flush for all of them.
    pub fn save_received(
        &mut self,
        items: &[(DocName, Vec<u8>, Vec<u8>)],
        at_ms: i64,
    ) -> Result<(), CoreError> {
        let tx = self.conn.transaction()?;
        for (name, snapshot, state) in items {
            tx.execute(
                "INSERT INTO documents (name, snapshot) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot",
                params![name.to_string(), snapshot],
            )?;
            tx.execute(
                "INSERT INTO peer_states (name, state) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET state = excluded.state",
                params![name.to_string(), state],
            )?;
        }
        tx.execute("UPDATE meta SET last_sync_ms = ?1", [at_ms])?;
        tx.commit()?;
        Ok(())
    }

    /// One document as last saved, if it was ever saved.
    pub fn load_document(&self, name: &DocName) -> Result<Option<AutoCommit>, CoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT snapshot FROM documents WHERE name = ?1",
                [name.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        bytes
            .map(|b| AutoCommit::load(&b).map_err(|e| CoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Save a document whole. Returns once SQLite has committed it.
    pub fn save_document(&self, name: &DocName, doc: &mut AutoCommit) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT INTO documents (name, snapshot) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot",
            params![name.to_string(), doc.save()],
        )?;
        Ok(())
    }

    pub fn load_state(&self, name: &DocName) -> Result<sync::State, CoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT state FROM peer_states WHERE name = ?1",
                [name.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(bytes
            .and_then(|b| sync::State::decode(&b).ok())
            .unwrap_or_default())
    }

    pub fn save_session(
        &self,
        at_ms: i64,
        clock_trusted: bool,
        documents: &[String],
    ) -> Result<(), CoreError> {
        self.conn.execute(
            "UPDATE meta SET last_sync_ms = ?1, clock_trusted = ?2, documents = ?3",
            params![at_ms, clock_trusted, documents.join("\n")],
        )?;
        Ok(())
    }

    /// Last sync time, clock trust and the documents the server listed last time.
    pub fn session(&self) -> Result<(Option<i64>, bool, Vec<DocName>), CoreError> {
        Ok(self.conn.query_row(
            "SELECT last_sync_ms, clock_trusted, documents FROM meta",
            [],
            |r| {
                let docs: String = r.get(2)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    docs.lines().filter_map(DocName::parse).collect(),
                ))
            },
        )?)
    }
}

/// The kiosk's folder and file hold its secret key and the people it booked: readable by the
/// kiosk's user only (0700 and 0600; SQLite gives its WAL and shared-memory files the database
/// file's permissions).
fn private_to_this_user(path: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| CoreError::Corrupt(format!("{}: {e}", path.display()));
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stolen disk's other users (or a careless backup) cannot read the kiosk's key or outbox.
    #[test]
    fn the_kiosk_store_is_readable_by_its_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("kiosk");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = folder.join("kiosk.sqlite3");
        let store = Store::open(&path, true).unwrap();
        store
            .save_key(&[7; 32], "ws://127.0.0.1:1/api/v1/sync")
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&path), 0o600);
        let wal = folder.join("kiosk.sqlite3-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
    }
}
