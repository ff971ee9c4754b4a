//! The administration's side of the document pre-check: add and retire documents beside the
//! shipped catalogue, keep the checklists per service and kind of permit, add and retire the
//! answers on times and procedures. Texts per language are checked here (Italian required, each
//! short enough for a phone's screen); everything is audited by the store.

use coper_shared::precheck::{DOCUMENTS, LANGUAGES, Translations};

use super::{Actor, Changes};
use crate::store::{Connection, StoreError, checklists, services};

/// The longest name of a document, in characters.
pub const NAME_CHARS: usize = 120;
/// The longest question and answer, in characters.
pub const ANSWER_CHARS: usize = 1000;

/// Why the administrator's change is refused (read in Italian).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecklistError {
    #[error("il testo in italiano è obbligatorio")]
    ItalianMissing,
    #[error("testo troppo lungo ({lang}): al massimo {max} caratteri")]
    TooLong { lang: String, max: usize },
    #[error("servizio sconosciuto")]
    UnknownService,
    #[error("dare un nome alla lista (per esempio «Lavoro subordinato»)")]
    NameMissing,
    #[error("una lista con questo nome esiste già per il servizio")]
    NameTaken,
    #[error("scegliere almeno un documento")]
    NoDocuments,
    #[error("documento sconosciuto o ritirato: {0}")]
    UnknownDocument(String),
    #[error("elemento inesistente")]
    NotFound,
}

pub type Outcome<T> = Result<(Result<T, ChecklistError>, Changes), StoreError>;

fn refused<T>(e: ChecklistError) -> Outcome<T> {
    Ok((Err(e), Changes::none()))
}

/// Whether staff may ask for document `code` now: a shipped one, or one the administration
/// added (`added`) and has not retired.
pub fn offered(added: &[checklists::AddedDocument], code: &str) -> bool {
    DOCUMENTS.contains(&code) || added.iter().any(|a| a.code == code && !a.retired)
}

/// The texts typed per language, trimmed, the empty ones dropped; Italian required.
pub fn checked_texts(
    typed: impl IntoIterator<Item = (String, String)>,
    max: usize,
) -> Result<Translations, ChecklistError> {
    let mut out = Translations::new();
    for (lang, text) in typed {
        let text = text.trim();
        if text.is_empty() || !LANGUAGES.contains(&lang.as_str()) {
            continue;
        }
        if text.chars().count() > max {
            return Err(ChecklistError::TooLong { lang, max });
        }
        out.insert(lang, text.to_owned());
    }
    if !out.contains_key("it") {
        return Err(ChecklistError::ItalianMissing);
    }
    Ok(out)
}

/// Add a document with its names. Its code.
pub fn add_document(conn: &mut Connection, by: &Actor, names: Translations) -> Outcome<String> {
    let code = checklists::add_document(conn, &names, by.now, (&by.name, &by.source))?;
    Ok((Ok(code), Changes::none()))
}

/// Retire a document: how many conversations not closed still ask for it (they keep it).
pub fn retire_document(conn: &mut Connection, by: &Actor, code: &str) -> Outcome<usize> {
    match checklists::retire_document(conn, code, by.now, (&by.name, &by.source))? {
        Some(n) => Ok((Ok(n), Changes::shared())),
        None => refused(ChecklistError::NotFound),
    }
}

/// Save a checklist (new when `id` is `None`). Its id.
pub fn save_kind(
    conn: &mut Connection,
    by: &Actor,
    id: Option<i64>,
    service: &str,
    name: &str,
    documents: &[String],
) -> Outcome<i64> {
    let name = name.trim();
    if name.is_empty() {
        return refused(ChecklistError::NameMissing);
    }
    if name.chars().count() > NAME_CHARS {
        return refused(ChecklistError::TooLong {
            lang: "it".into(),
            max: NAME_CHARS,
        });
    }
    if documents.is_empty() {
        return refused(ChecklistError::NoDocuments);
    }
    let tx = conn.transaction()?;
    if services::service(&tx, service)?.is_none() {
        return refused(ChecklistError::UnknownService);
    }
    // A retired document stays in a checklist that already had it (the form shows it ticked),
    // but none is added.
    let before = match id {
        Some(id) => match checklists::kind(&tx, id)? {
            Some(kind) => kind.documents,
            None => return refused(ChecklistError::NotFound),
        },
        None => Vec::new(),
    };
    let added = checklists::added_documents(&tx)?;
    for d in documents {
        let usable =
            offered(&added, d) || (before.contains(d) && added.iter().any(|a| a.code == *d));
        if !usable {
            return refused(ChecklistError::UnknownDocument(d.clone()));
        }
    }
    let Some(id) = checklists::save_kind(
        &tx,
        id,
        service,
        name,
        documents,
        by.now,
        (&by.name, &by.source),
    )?
    else {
        return refused(ChecklistError::NameTaken);
    };
    tx.commit()?;
    Ok((Ok(id), Changes::none()))
}

pub fn delete_kind(conn: &mut Connection, by: &Actor, id: i64) -> Outcome<()> {
    if checklists::delete_kind(conn, id, by.now, (&by.name, &by.source))? {
        Ok((Ok(()), Changes::none()))
    } else {
        refused(ChecklistError::NotFound)
    }
}

/// Add an answer for `service` (empty: every service). Its id.
pub fn add_answer(
    conn: &mut Connection,
    by: &Actor,
    service: &str,
    question: Translations,
    answer: Translations,
) -> Outcome<i64> {
    if !service.is_empty() && services::service(conn, service)?.is_none() {
        return refused(ChecklistError::UnknownService);
    }
    let id = checklists::add_answer(
        conn,
        service,
        &question,
        &answer,
        by.now,
        (&by.name, &by.source),
    )?;
    Ok((Ok(id), Changes::none()))
}

pub fn retire_answer(conn: &mut Connection, by: &Actor, id: i64) -> Outcome<()> {
    if checklists::retire_answer(conn, id, by.now, (&by.name, &by.source))? {
        Ok((Ok(()), Changes::none()))
    } else {
        refused(ChecklistError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_need_italian_and_drop_unknown_languages_and_blanks() {
        let typed = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(l, t)| (l.to_string(), t.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            checked_texts(typed(&[("en", "Work permit")]), 50),
            Err(ChecklistError::ItalianMissing)
        );
        let ok = checked_texts(
            typed(&[("it", " Nulla osta "), ("en", " "), ("xx", "junk")]),
            50,
        )
        .unwrap();
        assert_eq!(ok, Translations::from([("it".into(), "Nulla osta".into())]));
        assert!(matches!(
            checked_texts(typed(&[("it", &"a".repeat(51))]), 50),
            Err(ChecklistError::TooLong { .. })
        ));
    }
}
