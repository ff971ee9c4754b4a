//! Operations on kiosks: enrolment codes and revocation. Revoking returns the kiosk's leased
//! places to the pool, so the agendas holding them are rewritten for every other kiosk.

use coper_shared::documents::DocName;

use super::{Actor, Changes};
use crate::store::{
    Connection, StoreError,
    kiosks::{self, EnrolError},
};

/// Issue a one-time enrolment code for a kiosk of `partner`, valid for `valid_days`.
pub fn issue_code(
    conn: &mut Connection,
    by: &Actor,
    partner: i64,
    label: &str,
    valid_days: i64,
) -> Result<(Result<String, EnrolError>, Changes), StoreError> {
    let code = kiosks::issue_code(conn, partner, label, valid_days, by.now, &by.name)?;
    Ok((code, Changes::none()))
}

/// Revoke kiosk `kiosk` (its id): refused from its next connection on, its leases returned.
pub fn revoke(
    conn: &mut Connection,
    by: &Actor,
    kiosk: &str,
) -> Result<(Result<(), EnrolError>, Changes), StoreError> {
    Ok(match kiosks::revoke(conn, kiosk, by.now, &by.name)? {
        Ok(returned) => {
            // Its copy of its body's bookings (names, phones) has nobody left to go to.
            if let Ok(id) = kiosk.parse() {
                let name = DocName::Bookings(coper_shared::documents::KioskId(id));
                crate::store::documents::delete(conn, &name.to_string())?;
            }
            let changes = Changes {
                agendas: returned
                    .iter()
                    .map(|(service, date)| DocName::agenda_for(service, *date))
                    .collect(),
                ..Changes::none()
            };
            (Ok(()), changes)
        }
        Err(e) => (Err(e), Changes::none()),
    })
}

/// Withdraw an enrolment code not used yet.
pub fn revoke_code(
    conn: &mut Connection,
    by: &Actor,
    code: &str,
) -> Result<(Result<(), EnrolError>, Changes), StoreError> {
    let done = kiosks::revoke_code(conn, code, by.now, &by.name)?;
    Ok((done, Changes::none()))
}
