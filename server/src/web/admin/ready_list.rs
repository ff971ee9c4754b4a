//! The ready list as the administration browses it: search by name (without accents) or by
//! receipt or pratica number, then correct an entry or remove it, audited
//! (`ops::ready::{search, correct, remove}`). A wrong row of an import is mended here without
//! waiting for the next file.

use axum::{
    extract::{Form, Path, Query},
    http::StatusCode,
    response::IntoResponse,
};
use serde::Deserialize;

use crate::{
    import::{Typed, collapse, typed_date},
    ops::{self, ready::ReadyEditError},
    store::ready::Listed,
    web::{
        Paging,
        page::{Frame, PageError, PageResult, StaffContext},
    },
};

/// Entries shown on one page of the search.
const PAGE_SIZE: usize = 50;

/// One entry as the pages show it: dates as typed (gg/mm/aaaa, `00` for the unknown parts).
pub struct EntryShown {
    pub id: i64,
    pub surname: String,
    pub given_names: String,
    pub birth_date: String,
    pub fingerprint_date: String,
    pub receipt: String,
    pub pratica: String,
    pub drawer: String,
    /// "in attesa", "consegnato", or "prenotato (CODE)".
    pub state: String,
    pub booked: bool,
}

fn shown(l: &Listed) -> EntryShown {
    let p = &l.permit;
    EntryShown {
        id: l.id,
        surname: p.surname.clone(),
        given_names: p.given_names.clone(),
        birth_date: typed_date(&p.birth_date),
        fingerprint_date: typed_date(&p.fingerprint_date),
        receipt: p.receipt_number.clone().unwrap_or_default(),
        pratica: p.pratica_number.clone().unwrap_or_default(),
        drawer: p.drawer.clone(),
        state: ops::ready::state_words(l),
        booked: l.booked.is_some(),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/ready_list.html")]
pub struct ReadyListPage {
    pub frame: Frame,
    pub query: String,
    pub paging: Paging,
    pub entries: Vec<EntryShown>,
    pub searched: bool,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /admin/permits/list?q=&page=`: the search.
pub async fn ready_list(cx: StaffContext, Query(query): Query<SearchQuery>) -> PageResult {
    let q = query.q.trim().to_owned();
    let (page, offset) = Paging::asked(query.page, PAGE_SIZE);
    let (typed, now) = (q.clone(), cx.by.now);
    let (total, found) = if q.is_empty() {
        (0, Vec::new())
    } else {
        cx.state
            .db
            .read(move |conn| ops::ready::search(conn, now, &typed, offset, PAGE_SIZE))
            .await?
    };
    Ok(ReadyListPage {
        frame: cx.frame(),
        paging: Paging::new("/admin/permits/list", &q, total, page, PAGE_SIZE),
        searched: !q.is_empty(),
        query: q,
        entries: found.iter().map(shown).collect(),
    }
    .into_response())
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/ready_entry.html")]
pub struct ReadyEntryPage {
    pub frame: Frame,
    pub entry: EntryShown,
    pub error: String,
    pub saved: bool,
}

async fn entry_page(
    cx: &StaffContext,
    id: i64,
    typed: Option<Typed>,
    error: String,
    saved: bool,
) -> PageResult {
    let now = cx.by.now;
    let found = cx
        .state
        .db
        .read(move |conn| ops::ready::entry(conn, now, id))
        .await?;
    let Some(listed) = found else {
        return Err(PageError::message(
            StatusCode::NOT_FOUND,
            "Voce non trovata",
            "Questa voce non è nell'elenco dei permessi pronti (o è stata tolta).",
        ));
    };
    let mut entry = shown(&listed);
    // A form refused is shown again as typed, so nothing typed is lost.
    if let Some(t) = typed {
        entry.surname = t.surname;
        entry.given_names = t.given_names;
        entry.birth_date = t.birth_date;
        entry.fingerprint_date = t.fingerprint_date;
        entry.receipt = t.receipt;
        entry.pratica = t.pratica;
        entry.drawer = t.drawer;
    }
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((
        status,
        ReadyEntryPage {
            frame: cx.frame(),
            entry,
            error,
            saved,
        },
    )
        .into_response())
}

/// `GET /admin/permits/{id}`: one entry, to correct or remove.
pub async fn ready_entry(cx: StaffContext, Path(id): Path<i64>) -> PageResult {
    entry_page(&cx, id, None, String::new(), false).await
}

#[derive(Debug, Default, Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    surname: String,
    #[serde(default)]
    given_names: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    fingerprint_date: String,
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    pratica: String,
    #[serde(default)]
    drawer: String,
}

/// `POST /admin/permits/{id}`: save the corrected entry.
pub async fn ready_correct(
    cx: StaffContext,
    Path(id): Path<i64>,
    Form(form): Form<EntryForm>,
) -> PageResult {
    let typed = Typed {
        surname: collapse(&form.surname),
        given_names: collapse(&form.given_names),
        birth_date: collapse(&form.birth_date),
        fingerprint_date: collapse(&form.fingerprint_date),
        receipt: collapse(&form.receipt),
        pratica: collapse(&form.pratica),
        drawer: collapse(&form.drawer),
    };
    let by = cx.by.clone();
    let sent = typed.clone();
    let done = cx
        .state
        .perform(move |conn| ops::ready::correct(conn, &by, id, sent))
        .await?;
    match done {
        Ok(()) => entry_page(&cx, id, None, String::new(), true).await,
        Err(ReadyEditError::NotFound) => entry_page(&cx, id, None, String::new(), false).await,
        Err(e) => entry_page(&cx, id, Some(typed), e.to_string(), false).await,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/permits/{id}/remove`: take the entry off the list (confirmed, with a reason).
pub async fn ready_remove(
    cx: StaffContext,
    Path(id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> PageResult {
    if form.confirm != "1" {
        return entry_page(
            &cx,
            id,
            None,
            "confermare la rimozione con la casella di spunta".into(),
            false,
        )
        .await;
    }
    let by = cx.by.clone();
    let reason = form.reason.clone();
    let done = cx
        .state
        .perform(move |conn| ops::ready::remove(conn, &by, id, &reason))
        .await?;
    match done {
        Ok(()) => Ok(crate::web::message(
            StatusCode::OK,
            "Voce tolta dall'elenco",
            "La voce non compare più ai chioschi, alla verifica pubblica né allo sportello. Un caricamento successivo che la contenga la ripristina.",
        )
        .into_response()),
        Err(e) => entry_page(&cx, id, None, e.to_string(), false).await,
    }
}
