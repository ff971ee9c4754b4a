//! Partner bodies (enti convenzionati, `partner_bodies`): the public data shown on the home page
//! and to kiosks, and everything the administration edits, such as the places leased per day to
//! each of the body's kiosks.

use coper_shared::{
    documents::{KioskId, PartnerEntry},
    jiff::Timestamp,
    quota::Quota,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, audit::audit_from};

/// A partner body, with everything the administration edits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub phone: String,
    pub email: String,
    pub opening_hours: String,
    pub active: bool,
    pub lease_places_per_day: i64,
    /// Places all the body's kiosks together may hold per day and per week of slots.
    pub quota_day: i64,
    pub quota_week: i64,
    /// Places each of its kiosks may hold per day and per week.
    pub kiosk_quota_day: i64,
    pub kiosk_quota_week: i64,
}

impl Partner {
    /// A new body's fields before the administrator fills them: the schema's default quotas.
    pub fn draft() -> Self {
        Self {
            active: true,
            lease_places_per_day: 2,
            quota_day: 40,
            quota_week: 150,
            kiosk_quota_day: 20,
            kiosk_quota_week: 80,
            ..Self::default()
        }
    }
}

fn partner_row(r: &Row<'_>) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        city: r.get(3)?,
        phone: r.get(4)?,
        email: r.get(5)?,
        opening_hours: r.get(6)?,
        active: r.get(7)?,
        lease_places_per_day: r.get(8)?,
        quota_day: r.get(9)?,
        quota_week: r.get(10)?,
        kiosk_quota_day: r.get(11)?,
        kiosk_quota_week: r.get(12)?,
    })
}

const PARTNER_COLUMNS: &str = "id, name, address, city, phone, email, opening_hours, active,
     lease_places_per_day, quota_day, quota_week, kiosk_quota_day, kiosk_quota_week";

/// The most a quota may be set to: more than any Questura's agenda holds in a week.
pub const MAX_QUOTA: i64 = 100_000;

/// Active partner bodies, by city then name: those the public and the kiosks see.
pub fn active(conn: &Connection) -> Result<Vec<Partner>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PARTNER_COLUMNS} FROM partner_bodies WHERE active = 1 ORDER BY city, name"
    ))?;
    Ok(stmt.query_map([], partner_row)?.collect::<Result<_, _>>()?)
}

/// Every partner body, active first, by city then name.
pub fn partners(conn: &Connection) -> Result<Vec<Partner>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {PARTNER_COLUMNS} FROM partner_bodies ORDER BY active DESC, city, name"
    ))?;
    Ok(stmt.query_map([], partner_row)?.collect::<Result<_, _>>()?)
}

pub fn partner(conn: &Connection, id: i64) -> Result<Option<Partner>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {PARTNER_COLUMNS} FROM partner_bodies WHERE id = ?1"),
            [id],
            partner_row,
        )
        .optional()?)
}

/// Why a partner body cannot be saved. Italian: the administrator reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    #[error("il nome è obbligatorio")]
    MissingName,
    #[error("l'indirizzo e la città sono obbligatori")]
    MissingAddress,
    #[error("esiste già un ente con questo nome")]
    DuplicateName,
    #[error("i posti riservati al giorno vanno da 0 a 50")]
    BadLeasePlaces,
    #[error(
        "le quote sono numeri interi da 0 a 100000, e la quota di un giorno non supera quella della settimana"
    )]
    BadQuota,
}

/// Create (`p.id == 0`) or update a partner body; its id.
pub fn save_partner(
    conn: &Connection,
    p: &Partner,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<i64, PartnerError>, StoreError> {
    if p.name.trim().is_empty() {
        return Ok(Err(PartnerError::MissingName));
    }
    if p.address.trim().is_empty() || p.city.trim().is_empty() {
        return Ok(Err(PartnerError::MissingAddress));
    }
    if !(0..=50).contains(&p.lease_places_per_day) {
        return Ok(Err(PartnerError::BadLeasePlaces));
    }
    let quota_ok = |day: i64, week: i64| {
        (0..=MAX_QUOTA).contains(&day) && (0..=MAX_QUOTA).contains(&week) && day <= week
    };
    if !quota_ok(p.quota_day, p.quota_week) || !quota_ok(p.kiosk_quota_day, p.kiosk_quota_week) {
        return Ok(Err(PartnerError::BadQuota));
    }
    let duplicate: Option<i64> = conn
        .prepare_cached("SELECT id FROM partner_bodies WHERE name = ?1 AND id <> ?2")?
        .query_row(params![p.name.trim(), p.id], |r| r.get(0))
        .optional()?;
    if duplicate.is_some() {
        return Ok(Err(PartnerError::DuplicateName));
    }
    let fields = params![
        p.name.trim(),
        p.address.trim(),
        p.city.trim(),
        p.phone.trim(),
        p.email.trim(),
        p.opening_hours.trim(),
        p.active,
        p.lease_places_per_day,
        p.quota_day,
        p.quota_week,
        p.kiosk_quota_day,
        p.kiosk_quota_week,
    ];
    let id = if p.id == 0 {
        conn.prepare_cached(
            "INSERT INTO partner_bodies (name, address, city, phone, email, opening_hours, active,
                 lease_places_per_day, quota_day, quota_week, kiosk_quota_day, kiosk_quota_week)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(fields)?;
        conn.last_insert_rowid()
    } else {
        let mut with_id = fields.to_vec();
        with_id.push(&p.id);
        conn.prepare_cached(
            "UPDATE partner_bodies SET name = ?1, address = ?2, city = ?3, phone = ?4, email = ?5,
                 opening_hours = ?6, active = ?7, lease_places_per_day = ?8, quota_day = ?9,
                 quota_week = ?10, kiosk_quota_day = ?11, kiosk_quota_week = ?12 WHERE id = ?13",
        )?
        .execute(with_id.as_slice())?;
        p.id
    };
    audit_from(
        conn,
        now,
        actor,
        if p.id == 0 {
            "partner.created"
        } else {
            "partner.updated"
        },
        &id.to_string(),
        &serde_json::json!({
            "active": p.active,
            "quota": [p.quota_day, p.quota_week],
            "kiosk_quota": [p.kiosk_quota_day, p.kiosk_quota_week],
        }),
        source,
    )?;
    Ok(Ok(id))
}

/// The partner body of `kiosk`, as its kiosks show it.
pub fn of_kiosk(conn: &Connection, kiosk: KioskId) -> Result<Option<PartnerEntry>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT p.id, p.name, p.address, p.city, p.phone FROM kiosks k
             JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
        )?
        .query_row([kiosk.to_string()], |r| {
            Ok(PartnerEntry {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                city: r.get(3)?,
                phone: r.get(4)?,
            })
        })
        .optional()?)
}

/// The places leased per day to each kiosk of `kiosk`'s partner body.
pub fn lease_places_per_day(conn: &Connection, kiosk: KioskId) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT p.lease_places_per_day FROM kiosks k
             JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
        )?
        .query_row([kiosk.to_string()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The quotas a booking from `kiosk` counts against: the kiosk's, then its partner body's (with
/// the body's id). `None` for an unknown kiosk.
pub fn quotas_of_kiosk(
    conn: &Connection,
    kiosk: KioskId,
) -> Result<Option<(i64, Quota, Quota)>, StoreError> {
    let quota = |day: i64, week: i64| Quota {
        per_day: u32::try_from(day).unwrap_or(0),
        per_week: u32::try_from(week).unwrap_or(0),
    };
    Ok(conn
        .prepare_cached(
            "SELECT p.id, p.kiosk_quota_day, p.kiosk_quota_week, p.quota_day, p.quota_week
             FROM kiosks k JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
        )?
        .query_row([kiosk.to_string()], |r| {
            Ok((
                r.get(0)?,
                quota(r.get(1)?, r.get(2)?),
                quota(r.get(3)?, r.get(4)?),
            ))
        })
        .optional()?)
}

/// Whether `id` is an active partner body.
pub fn is_active(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM partner_bodies WHERE id = ?1 AND active = 1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}
