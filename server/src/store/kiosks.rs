//! Kiosks (`kiosks`, `enrolment_codes`): one-time codes that bind a kiosk's public key to a
//! partner body, the keys that authenticate sessions and verify tickets, liveness, and
//! revocation. The administration pages and the command line (`coper-server kiosk-code`,
//! `coper-server kiosk-revoke`) call the same functions.
//!
//! Only a SHA-256 hash of a code is stored: the database alone does not let anyone enrol a kiosk.

use coper_shared::{booking_code::booking_code, documents::KioskId, ids::ServiceId};
use jiff::{Timestamp, ToSpan, civil::Date};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    StoreError,
    audit::audit_from,
    instant_text, partners,
    slots::{self, LeaseScope},
};

/// Why an enrolment or a code request was refused. Messages are Italian: an operator reads them.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("codice di registrazione sconosciuto")]
    UnknownCode,
    #[error("codice di registrazione già usato")]
    UsedCode,
    #[error("codice di registrazione scaduto")]
    ExpiredCode,
    #[error("questa chiave è già registrata")]
    KeyInUse,
    #[error("ente convenzionato {0} inesistente o non attivo")]
    UnknownPartner(i64),
    #[error("chiosco {0} inesistente")]
    UnknownKiosk(String),
}

impl EnrolError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCode => "unknown_code",
            Self::UsedCode => "used_code",
            Self::ExpiredCode => "expired_code",
            Self::KeyInUse => "key_in_use",
            Self::UnknownPartner(_) => "unknown_partner",
            Self::UnknownKiosk(_) => "unknown_kiosk",
        }
    }
}

fn hash(code: &str) -> String {
    let canonical: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Issue a one-time code for a kiosk of `partner_body_id`, valid for `valid_days`.
pub fn issue_code(
    conn: &Connection,
    partner_body_id: i64,
    label: &str,
    valid_days: i64,
    now: Timestamp,
    actor: &str,
) -> Result<Result<String, EnrolError>, StoreError> {
    if !partners::is_active(conn, partner_body_id)? {
        return Ok(Err(EnrolError::UnknownPartner(partner_body_id)));
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("the OS has randomness");
    let bits = u128::from_le_bytes(random);
    // Two booking-code groups: 80 random bits, typed once by the person installing the kiosk.
    let code = format!("{}-{}", booking_code(bits), booking_code(bits >> 40));
    let expires = now
        .checked_add((valid_days * 24).hours())
        .unwrap_or(Timestamp::MAX);
    conn.prepare_cached(
        "INSERT INTO enrolment_codes (code_hash, partner_body_id, label, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        hash(&code),
        partner_body_id,
        label,
        instant_text(now),
        instant_text(expires)
    ])?;
    audit_from(
        conn,
        now,
        actor,
        "kiosk.code_issued",
        &partner_body_id.to_string(),
        &serde_json::json!({ "label": label, "expires_at": instant_text(expires) }),
        "",
    )?;
    Ok(Ok(code))
}

/// Redeem `code` for a kiosk with `public_key`: the kiosk's id and partner body.
pub fn redeem(
    conn: &mut Connection,
    code: &str,
    public_key: &[u8; 32],
    now: Timestamp,
) -> Result<Result<(KioskId, i64), EnrolError>, StoreError> {
    let tx = conn.transaction()?;
    let row: Option<(i64, String, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT partner_body_id, label, expires_at, used_at FROM enrolment_codes
             WHERE code_hash = ?1",
        )?
        .query_row([hash(code)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((partner, label, expires_at, used_at)) = row else {
        return Ok(Err(EnrolError::UnknownCode));
    };
    if used_at.is_some() {
        // The same kiosk asking again (its answer was lost on the way): tell it again.
        let same: Option<String> = tx
            .prepare_cached(
                "SELECT k.id FROM enrolment_codes c JOIN kiosks k ON k.id = c.kiosk_id
                 WHERE c.code_hash = ?1 AND k.public_key = ?2 AND k.revoked_at IS NULL",
            )?
            .query_row(params![hash(code), public_key.as_slice()], |r| r.get(0))
            .optional()?;
        return Ok(match same.and_then(|id| id.parse().ok()) {
            Some(id) => Ok((KioskId(id), partner)),
            None => Err(EnrolError::UsedCode),
        });
    }
    if expires_at.as_str() < instant_text(now).as_str() {
        return Ok(Err(EnrolError::ExpiredCode));
    }
    let taken: Option<String> = tx
        .prepare_cached("SELECT id FROM kiosks WHERE public_key = ?1")?
        .query_row([public_key.as_slice()], |r| r.get(0))
        .optional()?;
    if taken.is_some() {
        return Ok(Err(EnrolError::KeyInUse));
    }
    let kiosk = KioskId(Uuid::now_v7());
    let at = instant_text(now);
    tx.prepare_cached(
        "INSERT INTO kiosks (id, partner_body_id, label, public_key, created_at, enrolled_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        kiosk.to_string(),
        partner,
        label,
        public_key.as_slice(),
        at
    ])?;
    tx.prepare_cached(
        "UPDATE enrolment_codes SET used_at = ?2, kiosk_id = ?3 WHERE code_hash = ?1",
    )?
    .execute(params![hash(code), at, kiosk.to_string()])?;
    audit_from(
        &tx,
        now,
        &format!("kiosk:{kiosk}"),
        "kiosk.enrolled",
        &kiosk.to_string(),
        &serde_json::json!({ "partner_body_id": partner }),
        "",
    )?;
    tx.commit()?;
    Ok(Ok((kiosk, partner)))
}

/// Withdraw an enrolment code that has not been used yet (given to the wrong person, say).
pub fn revoke_code(
    conn: &Connection,
    code: &str,
    now: Timestamp,
    actor: &str,
) -> Result<Result<(), EnrolError>, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE enrolment_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![hash(code), instant_text(now)])?;
    if updated == 0 {
        return Ok(Err(EnrolError::UnknownCode));
    }
    audit_from(
        conn,
        now,
        actor,
        "kiosk.code_revoked",
        "",
        &serde_json::json!({}),
        "",
    )?;
    Ok(Ok(()))
}

/// Revoke a kiosk: it is refused from its next connection on. Its leases go back to the pool;
/// the (service, date) of each is returned, for the agenda documents to be rewritten.
pub fn revoke(
    conn: &mut Connection,
    kiosk: &str,
    now: Timestamp,
    actor: &str,
) -> Result<Result<Vec<(ServiceId, Date)>, EnrolError>, StoreError> {
    let tx = conn.transaction()?;
    let updated = tx
        .prepare_cached("UPDATE kiosks SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1")?
        .execute(params![kiosk, instant_text(now)])?;
    if updated == 0 {
        return Ok(Err(EnrolError::UnknownKiosk(
            kiosk.chars().take(40).collect(),
        )));
    }
    // An id that matched a row is a kiosk's UUID.
    let returned = match kiosk.parse() {
        Ok(id) => slots::return_unused(&tx, LeaseScope::AllOf(KioskId(id)))?,
        Err(_) => Vec::new(),
    };
    audit_from(
        &tx,
        now,
        actor,
        "kiosk.revoked",
        kiosk,
        &serde_json::json!({}),
        "",
    )?;
    tx.commit()?;
    Ok(Ok(returned))
}

/// The public key of an enrolled kiosk, and whether it has been revoked.
pub fn key_of(conn: &Connection, kiosk: &str) -> Result<Option<([u8; 32], bool)>, StoreError> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = conn
        .prepare_cached("SELECT public_key, revoked_at FROM kiosks WHERE id = ?1")?
        .query_row([kiosk], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(key, revoked)| {
        let key: [u8; 32] = key?.try_into().ok()?;
        Some((key, revoked.is_some()))
    }))
}

/// A kiosk as the administration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kiosk {
    pub id: String,
    pub label: String,
    pub enrolled_at: Option<String>,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub fn kiosks_of(conn: &Connection, partner: i64) -> Result<Vec<Kiosk>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, label, enrolled_at, last_seen_at, revoked_at FROM kiosks
         WHERE partner_body_id = ?1 AND public_key IS NOT NULL ORDER BY revoked_at IS NOT NULL, label")?;
    Ok(stmt
        .query_map([partner], |r| {
            Ok(Kiosk {
                id: r.get(0)?,
                label: r.get(1)?,
                enrolled_at: r.get(2)?,
                last_seen_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Whether `kiosk` is unknown or revoked.
pub fn is_revoked(conn: &Connection, kiosk: KioskId) -> Result<bool, StoreError> {
    let revoked: Option<Option<String>> = conn
        .prepare_cached("SELECT revoked_at FROM kiosks WHERE id = ?1")?
        .query_row([kiosk.to_string()], |r| r.get(0))
        .optional()?;
    Ok(!matches!(revoked, Some(None)))
}

/// `kiosks` were heard from (proved who they are, or are connected): they count as seen now.
pub fn seen(conn: &Connection, kiosks: &[KioskId], now: Timestamp) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached("UPDATE kiosks SET last_seen_at = ?2 WHERE id = ?1")?;
    let now = instant_text(now);
    for kiosk in kiosks {
        update.execute(params![kiosk.to_string(), now])?;
    }
    Ok(())
}

/// Every enrolled kiosk not revoked.
pub fn enrolled(conn: &Connection) -> Result<Vec<KioskId>, StoreError> {
    Ok(enrolled_by_partner(conn)?
        .into_iter()
        .map(|(kiosk, _)| kiosk)
        .collect())
}

/// Every enrolled kiosk not revoked, with its partner body.
pub fn enrolled_by_partner(conn: &Connection) -> Result<Vec<(KioskId, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, partner_body_id FROM kiosks WHERE public_key IS NOT NULL AND revoked_at IS NULL",
    )?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, partner)| Some((KioskId(id.parse().ok()?), partner)))
        .collect())
}

/// The partner body `kiosk` belongs to.
pub fn partner_of(conn: &Connection, kiosk: KioskId) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT partner_body_id FROM kiosks WHERE id = ?1")?
        .query_row([kiosk.to_string()], |r| r.get(0))
        .optional()?)
}
