//! Partner bodies (enti convenzionati): public data shown on the home page and to kiosks.

use rusqlite::Connection;

use super::StoreError;

#[derive(Debug, Clone)]
pub struct PartnerBody {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub phone: String,
    pub email: String,
    pub opening_hours: String,
}

/// Active partner bodies, by city then name.
pub fn active(conn: &Connection) -> Result<Vec<PartnerBody>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, address, city, phone, email, opening_hours
         FROM partner_bodies WHERE active = 1 ORDER BY city, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PartnerBody {
            id: r.get(0)?,
            name: r.get(1)?,
            address: r.get(2)?,
            city: r.get(3)?,
            phone: r.get(4)?,
            email: r.get(5)?,
            opening_hours: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
