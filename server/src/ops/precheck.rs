//! The document pre-check's operations: open a conversation (linked to the person's ready permit
//! and booking when the list has them), ask, mark, say, and close — each one transaction, each
//! staff step audited. The files themselves are checked and written by `crate::precheck`.

use coper_shared::precheck::{DOCUMENTS, ItemState, PHRASES, REASONS};

use super::Actor;
use crate::store::{
    Connection, StoreError,
    precheck::{self as store, Message, NewFile},
};

/// Why a staff step is refused (the clerk reads it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    #[error("indicare il numero di pratica, oppure cognome e data di nascita")]
    WhoMissing,
    #[error("documento sconosciuto: {0}")]
    UnknownDocument(String),
    #[error("frase sconosciuta: {0}")]
    UnknownPhrase(String),
    #[error("motivo sconosciuto: {0}")]
    UnknownReason(String),
    #[error("per «non valido» serve un motivo")]
    ReasonMissing,
    #[error("il documento non è tra quelli richiesti")]
    NotRequested,
    #[error("messaggio vuoto o troppo lungo (al massimo {0} caratteri)")]
    MessageLength(usize),
    #[error("conversazione inesistente")]
    NoSuchFile,
}

fn documents(asked: &[String]) -> Result<Vec<&'static str>, PrecheckError> {
    asked
        .iter()
        .map(|d| {
            DOCUMENTS
                .iter()
                .find(|k| **k == d.as_str())
                .copied()
                .ok_or_else(|| PrecheckError::UnknownDocument(d.clone()))
        })
        .collect()
}

/// Open a conversation asking for `asked` documents; the person's link gets `token`. When the
/// person has a booking and consented to messages, and the server knows its public address
/// (`public_url`), they are sent the link by SMS or e-mail.
pub fn open(
    conn: &mut Connection,
    by: &Actor,
    mut new: NewFile,
    asked: &[String],
    token: &str,
    public_url: Option<&str>,
) -> Result<Result<i64, PrecheckError>, StoreError> {
    new.pratica = new.pratica.trim().to_uppercase();
    new.surname = new.surname.trim().to_owned();
    if new.pratica.is_empty() && (new.surname.is_empty() || new.birth_date.trim().is_empty()) {
        return Ok(Err(PrecheckError::WhoMissing));
    }
    let documents = match documents(asked) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let tx = conn.transaction()?;
    let (permit, appointment) = store::person_of(&tx, &new.pratica, &new.surname, &new.birth_date)?;
    new.ready_permit_id = permit;
    new.appointment_id = appointment;
    if new.surname.is_empty()
        && let Some(permit) = permit
        && let Some((surname, given)) = crate::store::ready::names(&tx, permit)?
    {
        new.surname = surname;
        new.given_names = given;
    }
    if new.surname.is_empty() {
        new.surname = format!("pratica {}", new.pratica);
    }
    let id = store::open(&tx, &new, token, &documents, by.now, (&by.name, &by.source))?;
    if let (Some(appointment), Some(base)) = (&new.appointment_id, public_url) {
        let link = format!("{base}/documents/{token}");
        crate::store::notices::enqueue_with_link(
            &tx,
            appointment,
            coper_shared::notices::NoticeKind::Precheck,
            "",
            &link,
            by.now,
        )?;
    }
    tx.commit()?;
    Ok(Ok(id))
}

/// Ask for more documents.
pub fn ask(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    asked: &[String],
) -> Result<Result<(), PrecheckError>, StoreError> {
    let documents = match documents(asked) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let tx = conn.transaction()?;
    if store::file(&tx, id)?.is_none() {
        return Ok(Err(PrecheckError::NoSuchFile));
    }
    store::request(&tx, id, &documents, by.now)?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Mark a document (an invalid one needs a reason from the list).
pub fn mark(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    document: &str,
    state: ItemState,
    reason: Option<&str>,
) -> Result<Result<(), PrecheckError>, StoreError> {
    let reason = match (state, reason.filter(|r| !r.is_empty())) {
        (ItemState::Invalid, None) => return Ok(Err(PrecheckError::ReasonMissing)),
        (ItemState::Invalid, Some(r)) if !REASONS.contains(&r) => {
            return Ok(Err(PrecheckError::UnknownReason(r.to_owned())));
        }
        (ItemState::Invalid, Some(r)) => Some(r),
        _ => None,
    };
    let tx = conn.transaction()?;
    if !store::mark(
        &tx,
        id,
        document,
        state,
        reason,
        by.now,
        (&by.name, &by.source),
    )? {
        return Ok(Err(PrecheckError::NotRequested));
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// Staff write: a canned phrase (about a document, or none) or free text.
pub fn staff_says(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    phrase: Option<&str>,
    document: Option<&str>,
    text: &str,
    max_chars: usize,
) -> Result<Result<(), PrecheckError>, StoreError> {
    let phrase = phrase.filter(|p| !p.is_empty());
    if let Some(p) = phrase
        && !PHRASES.contains(&p)
    {
        return Ok(Err(PrecheckError::UnknownPhrase(p.to_owned())));
    }
    let document = document.filter(|d| !d.is_empty());
    if let Some(d) = document
        && !DOCUMENTS.contains(&d)
    {
        return Ok(Err(PrecheckError::UnknownDocument(d.to_owned())));
    }
    let text = text.trim();
    if (phrase.is_none() && text.is_empty()) || text.chars().count() > max_chars {
        return Ok(Err(PrecheckError::MessageLength(max_chars)));
    }
    let tx = conn.transaction()?;
    if store::file(&tx, id)?.is_none() {
        return Ok(Err(PrecheckError::NoSuchFile));
    }
    let message = Message {
        author: "staff".into(),
        phrase: phrase.map(str::to_owned),
        document: document.map(str::to_owned),
        body: text.to_owned(),
        at: String::new(),
    };
    store::say(&tx, id, &message, by.now, &by.name)?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Complete, close, or open again.
pub fn set_state(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    state: &str,
) -> Result<Result<(), PrecheckError>, StoreError> {
    let tx = conn.transaction()?;
    if store::file(&tx, id)?.is_none() {
        return Ok(Err(PrecheckError::NoSuchFile));
    }
    store::set_state(&tx, id, state, by.now, (&by.name, &by.source))?;
    tx.commit()?;
    Ok(Ok(()))
}
