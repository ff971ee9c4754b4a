//! The document pre-check's operations: open a conversation (linked to the person's ready permit
//! and booking when the list has them, its documents from a checklist of the administration and
//! those ticked), ask, mark, say, and close — each one transaction, each staff step audited. When
//! staff write or mark, the person is told by message (at most once per [`TELL_GAP`]). The files
//! themselves are checked and written by `crate::precheck`.

use coper_shared::{
    jiff::{SignedDuration, Timestamp},
    notices::NoticeKind,
    precheck::{ItemState, PHRASES, REASONS},
};

use super::{Actor, Changes, checklists::offered};
use crate::store::{
    Connection, StoreError,
    checklists::{self, AddedDocument},
    precheck::{self as store, Message, NewFile},
};

/// After telling the person that the Questura wrote or marked something, later news waits this
/// long for the next message: they read it all at once, and an SMS costs.
pub const TELL_GAP: SignedDuration = SignedDuration::from_mins(30);

/// Why a staff step is refused (the clerk reads it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    #[error("indicare il numero di pratica, oppure cognome e data di nascita")]
    WhoMissing,
    #[error("documento sconosciuto o ritirato dall'amministrazione: {0}")]
    UnknownDocument(String),
    #[error("frase o risposta sconosciuta o ritirata: {0}")]
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
    #[error("lista di controllo inesistente")]
    NoSuchChecklist,
    #[error("scegliere almeno un documento da chiedere, o una lista di controllo")]
    NothingAsked,
}

/// What a staff step answers: done, or why not; and what kiosks must learn.
pub type Outcome<T> = Result<(Result<T, PrecheckError>, Changes), StoreError>;

fn refused<T>(e: PrecheckError) -> Outcome<T> {
    Ok((Err(e), Changes::none()))
}

/// Kiosks hold each permit's pre-check and the bodies' links: every step rewrites them.
fn done<T>(value: T) -> Outcome<T> {
    Ok((Ok(value), Changes::shared()))
}

/// The documents `asked`, once each, if every one is offered now (else the first that is not).
fn checked(added: &[AddedDocument], asked: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for d in asked {
        if !offered(added, d) {
            return Err(d.clone());
        }
        if !out.contains(d) {
            out.push(d.clone());
        }
    }
    Ok(out)
}

/// Tell the person, by the contact of their active booking, that there is news on their page:
/// now, or — when they were told less than [`TELL_GAP`] ago — once the gap has passed (one
/// message waiting covers every news until it goes). Nothing without a public address for links.
fn tell(
    conn: &Connection,
    id: i64,
    now: Timestamp,
    public_url: Option<&str>,
) -> Result<(), StoreError> {
    let Some(base) = public_url else {
        return Ok(());
    };
    let (Some(file), Some(appointment)) = (store::file(conn, id)?, store::booking_of(conn, id)?)
    else {
        return Ok(());
    };
    let due = store::told_at(conn, id)?
        .map(|t| t + TELL_GAP)
        .filter(|next| *next > now)
        .unwrap_or(now);
    let link = crate::precheck::person_link(base, &file.token);
    // Queued only for an active booking whose person consented (`store::notices`).
    if crate::store::notices::precheck_news(conn, &appointment, &link, now, due)? > 0 {
        store::set_told(conn, id, due)?;
    }
    Ok(())
}

/// Open a conversation asking for the documents of checklist `kind` and `asked`; the person's
/// link gets `token`. When the person has a booking and consented to messages, and the server
/// knows its public address (`public_url`), they are sent the link by SMS or e-mail.
pub fn open(
    conn: &mut Connection,
    by: &Actor,
    mut new: NewFile,
    asked: &[String],
    token: &str,
    public_url: Option<&str>,
) -> Outcome<i64> {
    new.pratica = new.pratica.trim().to_uppercase();
    new.surname = new.surname.trim().to_owned();
    if new.pratica.is_empty() && (new.surname.is_empty() || new.birth_date.trim().is_empty()) {
        return refused(PrecheckError::WhoMissing);
    }
    let tx = conn.transaction()?;
    let added = checklists::added_documents(&tx)?;
    let mut asked = asked.to_vec();
    if let Some(kind) = new.kind_id {
        let Some(kind) = checklists::kind(&tx, kind)? else {
            return refused(PrecheckError::NoSuchChecklist);
        };
        // The checklist's documents first, in its order; a retired one is left out.
        let mut from_list: Vec<String> = kind
            .documents
            .into_iter()
            .filter(|d| offered(&added, d))
            .collect();
        from_list.append(&mut asked);
        asked = from_list;
    }
    let documents = match checked(&added, &asked) {
        Ok(d) if d.is_empty() => return refused(PrecheckError::NothingAsked),
        Ok(d) => d,
        Err(d) => return refused(PrecheckError::UnknownDocument(d)),
    };
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
    let documents: Vec<&str> = documents.iter().map(String::as_str).collect();
    let id = store::open(&tx, &new, token, &documents, by.now, (&by.name, &by.source))?;
    if let (Some(appointment), Some(base)) = (&new.appointment_id, public_url) {
        let link = crate::precheck::person_link(base, token);
        crate::store::notices::enqueue_with_link(
            &tx,
            appointment,
            NoticeKind::Precheck,
            "",
            &link,
            by.now,
        )?;
        // The link itself is the first news.
        store::set_told(&tx, id, by.now)?;
    }
    tx.commit()?;
    done(id)
}

/// Ask for more documents.
pub fn ask(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    asked: &[String],
    public_url: Option<&str>,
) -> Outcome<()> {
    let tx = conn.transaction()?;
    let documents = match checked(&checklists::added_documents(&tx)?, asked) {
        Ok(d) => d,
        Err(d) => return refused(PrecheckError::UnknownDocument(d)),
    };
    if store::file(&tx, id)?.is_none() {
        return refused(PrecheckError::NoSuchFile);
    }
    let documents: Vec<&str> = documents.iter().map(String::as_str).collect();
    store::request(&tx, id, &documents, by.now)?;
    tell(&tx, id, by.now, public_url)?;
    tx.commit()?;
    done(())
}

/// Mark a document (an invalid one needs a reason from the list).
pub fn mark(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    document: &str,
    state: ItemState,
    reason: Option<&str>,
    public_url: Option<&str>,
) -> Outcome<()> {
    let reason = match (state, reason.filter(|r| !r.is_empty())) {
        (ItemState::Invalid, None) => return refused(PrecheckError::ReasonMissing),
        (ItemState::Invalid, Some(r)) if !REASONS.contains(&r) => {
            return refused(PrecheckError::UnknownReason(r.to_owned()));
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
        return refused(PrecheckError::NotRequested);
    }
    tell(&tx, id, by.now, public_url)?;
    tx.commit()?;
    done(())
}

/// Staff write: a canned phrase or one of the administration's answers (about a document, or
/// none), or free text.
#[allow(clippy::too_many_arguments)]
pub fn staff_says(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    phrase: Option<&str>,
    document: Option<&str>,
    text: &str,
    max_chars: usize,
    public_url: Option<&str>,
) -> Outcome<()> {
    let phrase = phrase.filter(|p| !p.is_empty());
    let document = document.filter(|d| !d.is_empty());
    let text = text.trim();
    if (phrase.is_none() && text.is_empty()) || text.chars().count() > max_chars {
        return refused(PrecheckError::MessageLength(max_chars));
    }
    let tx = conn.transaction()?;
    if let Some(p) = phrase {
        let answer = p
            .strip_prefix("answer:")
            .and_then(|n| n.parse::<i64>().ok());
        let known = match answer {
            Some(n) => checklists::answers(&tx, false)?.iter().any(|a| a.id == n),
            None => PHRASES.contains(&p),
        };
        if !known {
            return refused(PrecheckError::UnknownPhrase(p.to_owned()));
        }
    }
    if store::file(&tx, id)?.is_none() {
        return refused(PrecheckError::NoSuchFile);
    }
    if let Some(d) = document
        && !store::items(&tx, id)?.iter().any(|i| i.document == d)
    {
        return refused(PrecheckError::NotRequested);
    }
    let message = Message {
        author: "staff".into(),
        phrase: phrase.map(str::to_owned),
        document: document.map(str::to_owned),
        body: text.to_owned(),
        at: String::new(),
    };
    store::say(&tx, id, &message, by.now, &by.name)?;
    tell(&tx, id, by.now, public_url)?;
    tx.commit()?;
    done(())
}

/// Complete, close, or open again. The person is told when the file is complete.
pub fn set_state(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    state: &str,
    public_url: Option<&str>,
) -> Outcome<()> {
    let tx = conn.transaction()?;
    if store::file(&tx, id)?.is_none() {
        return refused(PrecheckError::NoSuchFile);
    }
    store::set_state(&tx, id, state, by.now, (&by.name, &by.source))?;
    if state == "complete" {
        tell(&tx, id, by.now, public_url)?;
    }
    tx.commit()?;
    done(())
}

/// A new link for the person: the old one stops working at once.
pub fn new_link(conn: &mut Connection, by: &Actor, id: i64, token: &str) -> Outcome<()> {
    let tx = conn.transaction()?;
    if store::file(&tx, id)?.is_none() {
        return refused(PrecheckError::NoSuchFile);
    }
    store::new_token(&tx, id, token, by.now, (&by.name, &by.source))?;
    tx.commit()?;
    done(())
}
