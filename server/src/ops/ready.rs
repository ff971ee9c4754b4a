//! The ready list: importing it, and the administration's search, correction and removal of an
//! entry (audited). Kiosks check the list offline, so every change rewrites its index.

use coper_shared::jiff::{Timestamp, civil::Date};

use super::{Actor, Changes};
use crate::{
    import::{self, ImportReport, ReadyRow, Stretched},
    store::{Connection, StoreError, ready},
};

/// Import `rows` (already checked whole by `import::parse`) in one transaction, keeping the
/// birth dates `stretched` beforehand (`import::stretch_births`, off this connection) so the
/// index is rewritten without stretching on the writing connection.
pub fn import(
    conn: &mut Connection,
    by: &Actor,
    rows: &[ReadyRow],
    stretched: &Stretched,
) -> Result<(ImportReport, Changes), StoreError> {
    ready::save_birth_keys(conn, &stretched.stretch, &stretched.keys)?;
    let report = import::apply(conn, rows, by.now, &by.name)?;
    Ok((report, Changes::shared()))
}

/// Why an entry of the ready list was not changed. Italian: the administrator reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadyEditError {
    #[error("voce non trovata nell'elenco dei permessi pronti")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("un'altra voce ha già questo numero di assicurata o di pratica")]
    Duplicate,
    #[error(
        "la persona ha una prenotazione attiva ({0}): annullarla prima di togliere la voce, o correggere la voce"
    )]
    ActiveBooking(String),
    #[error("indicare il motivo")]
    MissingReason,
}

/// Entries of the ready list whose names contain every word of `query` (without accents or
/// case), or whose receipt or pratica number is `query`; `limit` from `offset`, and how many in
/// all.
pub fn search(
    conn: &Connection,
    now: Timestamp,
    query: &str,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<ready::Listed>), StoreError> {
    let words: Vec<String> = coper_shared::names::words(query);
    let number = query.trim().to_uppercase();
    let found: Vec<ready::Listed> = ready::all_listed(conn, today(conn, now)?)?
        .into_iter()
        .filter(|l| {
            let p = &l.permit;
            (!words.is_empty()
                && crate::store::name_contains_all(
                    &format!("{} {}", p.surname, p.given_names),
                    &words,
                ))
                || p.receipt_number.as_deref() == Some(number.as_str())
                || p.pratica_number.as_deref() == Some(number.as_str())
        })
        .collect();
    Ok((
        found.len(),
        found.into_iter().skip(offset).take(limit).collect(),
    ))
}

/// The Questura's date at `now`: bookings of earlier days never marked absent are not active.
fn today(conn: &Connection, now: Timestamp) -> Result<Date, StoreError> {
    Ok(crate::checkin::local_now(conn, now)?.1.date())
}

/// Entry `id` of the list, unless removed, with its active booking.
pub fn entry(
    conn: &Connection,
    now: Timestamp,
    id: i64,
) -> Result<Option<ready::Listed>, StoreError> {
    ready::listed(conn, id, today(conn, now)?)
}

/// Correct entry `id` with the fields `typed` (checked as an imported row is), audited; a
/// booking still to come for it takes the corrected spelling of the name.
pub fn correct(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    typed: import::Typed,
) -> Result<(Result<(), ReadyEditError>, Changes), StoreError> {
    let row = match import::check_row(0, typed) {
        Ok(row) => row,
        Err(why) => return Ok((Err(ReadyEditError::Invalid(why)), Changes::none())),
    };
    let tx = conn.transaction()?;
    let Some(before) = entry(&tx, by.now, id)? else {
        return Ok((Err(ReadyEditError::NotFound), Changes::none()));
    };
    let permit = import::permit_of(&row);
    if !ready::correct(&tx, id, &permit, by.now)? {
        return Ok((Err(ReadyEditError::Duplicate), Changes::none()));
    }
    crate::store::appointments::rename_for_permit(&tx, id, &permit.surname, &permit.given_names)?;
    // A corrected spelling may be what a "tell me when ready" request was waiting for.
    crate::status::fire_watches(&tx, by.now)?;
    let changed: Vec<&str> = [
        ("surname", before.permit.surname != permit.surname),
        (
            "given_names",
            before.permit.given_names != permit.given_names,
        ),
        ("birth_date", before.permit.birth_date != permit.birth_date),
        (
            "fingerprint_date",
            before.permit.fingerprint_date != permit.fingerprint_date,
        ),
        (
            "receipt_number",
            before.permit.receipt_number != permit.receipt_number,
        ),
        (
            "pratica_number",
            before.permit.pratica_number != permit.pratica_number,
        ),
        ("drawer", before.permit.drawer != permit.drawer),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    crate::store::audit_from(
        &tx,
        by.now,
        &by.name,
        "ready.corrected",
        &id.to_string(),
        &serde_json::json!({ "fields": changed }),
        &by.source,
    )?;
    tx.commit()?;
    Ok((
        Ok(()),
        Changes {
            shared: true,
            ..Changes::appointments()
        },
    ))
}

/// Remove entry `id` from the list for `reason`, audited; refused while the person has a
/// booking still active (its counter would lose the drawer and the delivery the list).
pub fn remove(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    reason: &str,
) -> Result<(Result<(), ReadyEditError>, Changes), StoreError> {
    let reason = super::clean_reason(reason);
    if reason.is_empty() {
        return Ok((Err(ReadyEditError::MissingReason), Changes::none()));
    }
    let tx = conn.transaction()?;
    let Some(listed) = entry(&tx, by.now, id)? else {
        return Ok((Err(ReadyEditError::NotFound), Changes::none()));
    };
    if let Some(code) = listed.booked {
        return Ok((Err(ReadyEditError::ActiveBooking(code)), Changes::none()));
    }
    ready::remove(&tx, id, by.now)?;
    crate::store::audit_from(
        &tx,
        by.now,
        &by.name,
        "ready.removed",
        &id.to_string(),
        &serde_json::json!({ "reason": reason }),
        &by.source,
    )?;
    tx.commit()?;
    Ok((Ok(()), Changes::shared()))
}

/// An entry's state as the pages and the command line say it: "prenotato (CODE)", "consegnato"
/// or "in attesa".
pub fn state_words(listed: &ready::Listed) -> String {
    match (&listed.booked, listed.delivered) {
        (Some(code), _) => format!("prenotato ({code})"),
        (None, true) => "consegnato".into(),
        (None, false) => "in attesa".into(),
    }
}
