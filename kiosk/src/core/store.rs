//! The kiosk's local store: its key, its replicas of the synchronised documents and their sync
//! states, in one SQLite file that survives restarts and power cuts (WAL, `synchronous = FULL`).
//!
//! A document is saved whole (Automerge's compressed snapshot) in the same transaction each time
//! it changes. Kiosk documents are small (one partner office's requests, a few months of counts),
//! and a whole-snapshot write is atomic, so there is no increment log to compact or to replay.
//!
//! At rest: the folder and the file are the kiosk user's only; deleted rows are overwritten
//! (`secure_delete`); and with a key file ([`KeySeal`]) the signing key is stored sealed
//! (ChaCha20-Poly1305), never in clear, so a copied disk cannot sign as this kiosk.

use std::path::Path;

use automerge::{AutoCommit, sync};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use coper_shared::documents::{DocName, KioskId};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::CoreError;

/// Seals the kiosk's signing key with a key the operating system keeps: a file of at least 32
/// random bytes (a systemd credential, `LoadCredentialEncrypted=`, which can be bound to the
/// machine's TPM so that a copied disk cannot open it).
pub struct KeySeal(ChaCha20Poly1305);

/// Bound into every sealed key: a ciphertext made for something else never opens as one.
const SEAL_CONTEXT: &[u8] = b"coper kiosk signing key v1";
const NONCE_BYTES: usize = 12;

impl KeySeal {
    pub fn from_file(path: &Path) -> Result<Self, CoreError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CoreError::KeyLocked(format!("{}: {e}", path.display())))?;
        if bytes.len() < 32 {
            return Err(CoreError::KeyLocked(format!(
                "{}: fewer than 32 bytes",
                path.display()
            )));
        }
        Ok(Self::from_secret(&bytes))
    }

    fn from_secret(secret: &[u8]) -> Self {
        let key: [u8; 32] = Sha256::digest(secret).into();
        Self(ChaCha20Poly1305::new(&key.into()))
    }

    fn seal(&self, secret_key: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the OS has randomness");
        let payload = Payload {
            msg: secret_key,
            aad: SEAL_CONTEXT,
        };
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("sealing 32 bytes cannot fail");
        [&nonce[..], &sealed].concat()
    }

    fn open(&self, sealed: &[u8]) -> Result<[u8; 32], CoreError> {
        let wrong = || CoreError::KeyLocked("wrong key file, or a damaged sealed key".into());
        let (nonce, sealed) = sealed.split_at_checked(NONCE_BYTES).ok_or_else(wrong)?;
        let payload = Payload {
            msg: sealed,
            aad: SEAL_CONTEXT,
        };
        self.0
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| wrong())?
            .try_into()
            .map_err(|_| wrong())
    }
}

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
-- The clear name and phone of a booking made here, whose outbox copy is sealed for the server:
-- kept for the kiosk's list and the reminder only until the booking is settled (decided and
-- printed as decided) or its day has passed, then deleted (and overwritten: secure_delete).
CREATE TABLE IF NOT EXISTS people (
    request      TEXT PRIMARY KEY,
    surname      TEXT NOT NULL,
    given_names  TEXT NOT NULL,
    phone        TEXT,
    slot_date    TEXT NOT NULL,
    printed      INTEGER NOT NULL DEFAULT 0
);
-- Reminders printed before the server's verdict (provisional, or confirmed by a leased place)
-- and not printed again since: once the verdict is in and differs from what the slip says, the
-- operator is asked to reprint it (or to tell the person it was refused). No names.
CREATE TABLE IF NOT EXISTS early_slips (
    request    TEXT PRIMARY KEY,
    slot_date  TEXT NOT NULL,
    confirmed  INTEGER NOT NULL
);
";

pub struct Store {
    conn: Connection,
}

/// A document's bytes as the kiosk stores them: whole, without DEFLATE. Compressing every
/// snapshot (the outbox at each booking, the documents received every half second) was most of
/// a kiosk's sync work (`coper-loadgen trace`, docs/BENCHMARKS.md); a few tens of KiB more on
/// the kiosk's disk cost nothing.
pub fn snapshot(doc: &mut AutoCommit) -> Vec<u8> {
    doc.save_nocompress()
}

/// Whether a document received from the server is saved on disk. The partner body's bookings
/// (names and phones of people booked by other kiosks too) live in memory only: a stolen kiosk's
/// disk does not have them, and the server sends them afresh at each session.
pub(crate) fn kept_on_disk(name: &DocName) -> bool {
    !matches!(name, DocName::Bookings(_))
}

/// A person kept in clear for a booking made here (see the `people` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPerson {
    pub personal: coper_shared::sealed::Personal,
    pub slot_date: String,
    /// A reminder was printed (before or after the verdict; see `KioskCore::reminder_printed`).
    pub printed: bool,
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
        // What is deleted (a key unsealed before, names once decided) is overwritten on disk.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if power_loss_safe { "FULL" } else { "NORMAL" },
        )?;
        conn.execute_batch(SCHEMA)?;
        let sealed_column: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('identity') WHERE name = 'sealed_key'",
            [],
            |r| r.get(0),
        )?;
        if !sealed_column {
            // When sealed, `secret_key` holds zeros and the key is in `sealed_key`.
            conn.execute_batch("ALTER TABLE identity ADD COLUMN sealed_key BLOB")?;
        }
        Ok(Self { conn })
    }

    /// Who this kiosk is. With `seal`, a key stored in clear (from before the key file was set)
    /// is sealed now and its clear copy overwritten; a sealed key needs `seal` to open.
    pub fn identity(&self, seal: Option<&KeySeal>) -> Result<Option<Identity>, CoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT secret_key, sealed_key, server_url, kiosk_id, partner_body_id FROM identity",
                [],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((clear, sealed, server_url, kiosk, partner)) = row else {
            return Ok(None);
        };
        let secret_key = match (sealed, seal) {
            (Some(sealed), Some(seal)) => seal.open(&sealed)?,
            (Some(_), None) => {
                return Err(CoreError::KeyLocked(
                    "the key is sealed and no key file is configured".into(),
                ));
            }
            (None, seal) => {
                let key: [u8; 32] = clear
                    .try_into()
                    .map_err(|_| CoreError::Corrupt("the stored key is damaged".into()))?;
                if let Some(seal) = seal {
                    self.store_key(&key, Some(seal))?;
                }
                key
            }
        };
        Ok(Some(Identity {
            secret_key,
            server_url,
            kiosk: kiosk
                .and_then(|k| k.parse().ok())
                .zip(partner)
                .map(|(k, p)| (KioskId(k), p)),
        }))
    }

    /// Keep a freshly made key (before enrolment is attempted, so a retry uses the same key),
    /// sealed when there is a `seal`.
    pub fn save_key(
        &self,
        secret_key: &[u8; 32],
        server_url: &str,
        seal: Option<&KeySeal>,
    ) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT INTO identity (id, secret_key, server_url) VALUES (1, zeroblob(32), ?1)
             ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url",
            params![server_url],
        )?;
        self.store_key(secret_key, seal)
    }

    fn store_key(&self, secret_key: &[u8; 32], seal: Option<&KeySeal>) -> Result<(), CoreError> {
        match seal {
            Some(seal) => self.conn.execute(
                "UPDATE identity SET secret_key = zeroblob(32), sealed_key = ?1",
                params![seal.seal(secret_key)],
            )?,
            None => self.conn.execute(
                "UPDATE identity SET secret_key = ?1, sealed_key = NULL",
                params![secret_key.as_slice()],
            )?,
        };
        // The clear copy must not linger in the write-ahead log either.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Keep `personal` in clear for request `request` (its outbox copy is sealed).
    pub fn keep_person(
        &self,
        request: &str,
        personal: &coper_shared::sealed::Personal,
        slot_date: &str,
    ) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO people (request, surname, given_names, phone, slot_date)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                request,
                personal.surname,
                personal.given_names,
                personal.phone,
                slot_date
            ],
        )?;
        Ok(())
    }

    /// The people kept in clear, by request id.
    pub fn kept_people(&self) -> Result<std::collections::HashMap<String, KeptPerson>, CoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT request, surname, given_names, phone, slot_date, printed FROM people",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                KeptPerson {
                    personal: coper_shared::sealed::Personal {
                        surname: r.get(1)?,
                        given_names: r.get(2)?,
                        phone: r.get(3)?,
                        ..Default::default()
                    },
                    slot_date: r.get(4)?,
                    printed: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mark_printed(&self, request: &str) -> Result<(), CoreError> {
        self.conn.execute(
            "UPDATE people SET printed = 1 WHERE request = ?1",
            [request],
        )?;
        Ok(())
    }

    /// A reminder of `request` was printed: before the verdict (remembered until printed again,
    /// with what it said: `confirmed` by a leased place, or provisional), or after it (`None`:
    /// forgotten).
    pub fn slip_printed(
        &self,
        request: &str,
        slot_date: &str,
        before_verdict: Option<bool>,
    ) -> Result<(), CoreError> {
        match before_verdict {
            Some(confirmed) => self.conn.execute(
                "INSERT OR REPLACE INTO early_slips (request, slot_date, confirmed)
                 VALUES (?1, ?2, ?3)",
                params![request, slot_date, confirmed],
            )?,
            None => self
                .conn
                .execute("DELETE FROM early_slips WHERE request = ?1", [request])?,
        };
        Ok(())
    }

    /// The requests whose last reminder was printed before the verdict, with whether it said
    /// confirmed.
    pub fn early_slips(&self) -> Result<Vec<(String, bool)>, CoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT request, confirmed FROM early_slips ORDER BY request")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Delete the clear names of `requests`, and of every booking whose day is before `today`
    /// (and the slips of those days: nobody reprints them).
    pub fn forget_people(&self, requests: &[String], today: &str) -> Result<usize, CoreError> {
        self.conn
            .execute("DELETE FROM early_slips WHERE slot_date < ?1", [today])?;
        let mut forgotten = self
            .conn
            .execute("DELETE FROM people WHERE slot_date < ?1", [today])?;
        for request in requests {
            forgotten += self
                .conn
                .execute("DELETE FROM people WHERE request = ?1", [request])?;
        }
        if forgotten > 0 {
            // Older copies of the rows' pages must not linger in the write-ahead log.
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(forgotten)
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
        for (name, snapshot, state) in items.iter().filter(|(name, ..)| kept_on_disk(name)) {
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

    /// Save a document whole (see [`snapshot`]). Returns once SQLite has committed it.
    pub fn save_document(&self, name: &DocName, doc: &mut AutoCommit) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT INTO documents (name, snapshot) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot",
            params![name.to_string(), snapshot(doc)],
        )?;
        Ok(())
    }

    /// Drop a document and its sync state: the next session takes the server's copy whole.
    pub fn forget_document(&self, name: &DocName) -> Result<(), CoreError> {
        let name = name.to_string();
        self.conn
            .execute("DELETE FROM documents WHERE name = ?1", [&name])?;
        self.conn
            .execute("DELETE FROM peer_states WHERE name = ?1", [&name])?;
        Ok(())
    }

    pub fn load_state(&self, name: &DocName) -> Result<sync::State, CoreError> {
        if !kept_on_disk(name) {
            return Ok(sync::State::new());
        }
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
    fn a_sealed_key_is_never_on_disk_in_clear_and_opens_only_with_its_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiosk.sqlite3");
        let key = [0x5Au8; 32];
        let seal = KeySeal::from_secret(&[1u8; 32]);
        {
            let store = Store::open(&path, true).unwrap();
            // A kiosk enrolled before its key file existed keeps its key in clear...
            store.save_key(&key, "ws://x", None).unwrap();
            assert_eq!(store.identity(None).unwrap().unwrap().secret_key, key);
            // ...until it starts with one: then the key is sealed and the clear copy overwritten.
            assert_eq!(
                store.identity(Some(&seal)).unwrap().unwrap().secret_key,
                key
            );
        }
        let mut disk = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(
            !disk.windows(32).any(|w| w == key),
            "the key is nowhere on disk in clear"
        );
        let store = Store::open(&path, true).unwrap();
        assert_eq!(
            store.identity(Some(&seal)).unwrap().unwrap().secret_key,
            key
        );
        assert!(matches!(store.identity(None), Err(CoreError::KeyLocked(_))));
        let wrong = KeySeal::from_secret(&[2u8; 32]);
        assert!(matches!(
            store.identity(Some(&wrong)),
            Err(CoreError::KeyLocked(_))
        ));
    }

    #[test]
    fn the_kiosk_store_is_readable_by_its_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("kiosk");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = folder.join("kiosk.sqlite3");
        let store = Store::open(&path, true).unwrap();
        store
            .save_key(&[7; 32], "ws://127.0.0.1:1/api/v1/sync", None)
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
