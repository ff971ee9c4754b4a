//! Partner bodies (enti convenzionati, `partner_bodies`): the public data shown on the home page
//! and to kiosks, and everything the administration edits, such as the places leased per day to
//! each of the body's kiosks.

use coper_shared::{
    documents::{KioskId, PartnerEntry},
    jiff::Timestamp,
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
    })
}

const PARTNER_COLUMNS: &str =
    "id, name, address, city, phone, email, opening_hours, active, lease_places_per_day";

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
    let duplicate: Option<i64> = conn
        .query_row(
            "SELECT id FROM partner_bodies WHERE name = ?1 AND id <> ?2",
            params![p.name.trim(), p.id],
            |r| r.get(0),
        )
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
    ];
    let id = if p.id == 0 {
        conn.execute(
            "INSERT INTO partner_bodies (name, address, city, phone, email, opening_hours, active,
                 lease_places_per_day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            fields,
        )?;
        conn.last_insert_rowid()
    } else {
        let mut with_id = fields.to_vec();
        with_id.push(&p.id);
        conn.execute(
            "UPDATE partner_bodies SET name = ?1, address = ?2, city = ?3, phone = ?4, email = ?5,
                 opening_hours = ?6, active = ?7, lease_places_per_day = ?8 WHERE id = ?9",
            with_id.as_slice(),
        )?;
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
        &serde_json::json!({ "active": p.active }),
        source,
    )?;
    Ok(Ok(id))
}

/// The partner body of `kiosk`, as its kiosks show it.
pub fn of_kiosk(conn: &Connection, kiosk: KioskId) -> Result<Option<PartnerEntry>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT p.id, p.name, p.address, p.city, p.phone FROM kiosks k
             JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
            [kiosk.to_string()],
            |r| {
                Ok(PartnerEntry {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    address: r.get(2)?,
                    city: r.get(3)?,
                    phone: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// The places leased per day to each kiosk of `kiosk`'s partner body.
pub fn lease_places_per_day(conn: &Connection, kiosk: KioskId) -> Result<u32, StoreError> {
    Ok(conn
        .query_row(
            "SELECT p.lease_places_per_day FROM kiosks k
             JOIN partner_bodies p ON p.id = k.partner_body_id WHERE k.id = ?1",
            [kiosk.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Whether `id` is an active partner body.
pub fn is_active(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM partner_bodies WHERE id = ?1 AND active = 1",
            [id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
