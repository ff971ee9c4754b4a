//! The pre-check staff's pages (role `precheck`, and administrators): the inbox of
//! conversations, updated live (filter: waiting for us, waiting for the person, complete,
//! closed), the form that opens one for an application, and a conversation — the checklist with
//! each document's state and the marks (valid; not valid, with a reason; bring the original),
//! the pictures and PDFs the person sent, the messages (one-touch phrases the person reads in
//! their language, or free text), the person's link and its QR code for the assisted path, and
//! "complete". Every view of a person's file is in the audit log.

use std::{convert::Infallible, time::Duration};

use axum::{
    body::Body,
    extract::{Form, Path, Query, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use coper_shared::precheck::{DOCUMENTS, ItemState, PHRASES, REASONS, text};
use futures_util::Stream;
use serde::Deserialize;

use crate::{
    AppState, ops,
    ops::precheck::PrecheckError,
    store::{
        self,
        checklists::{self, Texts},
        precheck as files,
    },
    web::{
        counter::day::async_stream,
        form_value, form_values,
        page::{Frame, PageError, PageResult, StaffContext},
        public::MESSAGE_LANGUAGES,
    },
};

/// Conversations listed at most.
const LISTED: usize = 200;

/// A choice of the lists: value, Italian label.
pub struct Choice {
    pub key: String,
    pub label: String,
}

/// The documents staff may ask for now: the shipped ones, then those the administration added
/// and has not retired.
fn documents(texts: &Texts) -> Vec<Choice> {
    DOCUMENTS
        .iter()
        .map(|k| k.to_string())
        .chain(
            texts
                .added
                .keys()
                .filter(|k| !texts.retired.contains(k))
                .cloned(),
        )
        .map(|key| Choice {
            label: texts.document(&key, "it"),
            key,
        })
        .collect()
}

/// A checklist as the form offers it: "Consegna permessi · Lavoro subordinato (4 documenti)".
pub struct KindChoice {
    pub id: i64,
    pub label: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "precheck/inbox.html")]
pub struct InboxPage {
    pub frame: Frame,
    pub show: String,
    pub files: Vec<files::File>,
    pub documents: Vec<Choice>,
    pub kinds: Vec<KindChoice>,
    /// The booking day the list is narrowed to (`YYYY-MM-DD`), or empty.
    pub date: String,
    pub languages: &'static [(&'static str, &'static str)],
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    show: Option<String>,
    /// Only the conversations of people booked on this day.
    #[serde(default)]
    date: Option<String>,
}

fn listing(show: &str) -> (&'static str, Option<&'static str>) {
    match show {
        "person" => ("open", Some("person")),
        "complete" => ("complete", None),
        "closed" => ("closed", None),
        _ => ("open", Some("us")),
    }
}

/// `GET /precheck?show=us|person|complete|closed&date=YYYY-MM-DD`.
pub async fn inbox(cx: StaffContext, Query(q): Query<InboxQuery>) -> PageResult {
    let show = q.show.unwrap_or_else(|| "us".into());
    // A day as the date field sends it; anything else lists every day.
    let date = q
        .date
        .filter(|d| d.parse::<coper_shared::jiff::civil::Date>().is_ok())
        .unwrap_or_default();
    inbox_page(&cx, show, date, None, StatusCode::OK).await
}

async fn inbox_page(
    cx: &StaffContext,
    show: String,
    date: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (state, waiting) = listing(&show);
    let day = (!date.is_empty()).then(|| date.clone());
    let (files, texts, kinds, services) = cx
        .state
        .db
        .read(move |conn| {
            Ok::<_, store::StoreError>((
                files::inbox(conn, state, waiting, day.as_deref(), LISTED)?,
                Texts::load(conn)?,
                checklists::kinds(conn)?,
                store::services::services(conn)?,
            ))
        })
        .await?;
    let kinds = kinds
        .into_iter()
        .map(|k| KindChoice {
            id: k.id,
            label: format!(
                "{} · {} ({} documenti)",
                services
                    .iter()
                    .find(|s| s.id.as_str() == k.service)
                    .map_or(k.service.as_str(), |s| s.name.as_str()),
                k.name,
                k.documents.len()
            ),
        })
        .collect();
    Ok((
        status,
        InboxPage {
            frame: cx.frame(),
            show,
            date,
            files,
            documents: documents(&texts),
            kinds,
            languages: &MESSAGE_LANGUAGES,
            error,
        },
    )
        .into_response())
}

/// `GET /precheck/events`: `changed` whenever a conversation moves.
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut changes = state.precheck_changes.subscribe();
    let stream = async_stream(move |tx| async move {
        while changes.changed().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(150)).await;
            changes.borrow_and_update();
            if tx
                .send(Ok(Event::default().event("changed").data("1")))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Tell the inbox (and the person's page) that a conversation moved.
pub fn moved(state: &AppState) {
    state
        .precheck_changes
        .send_modify(|n| *n = n.wrapping_add(1));
}

/// `POST /precheck/files`: open a conversation.
pub async fn open(cx: StaffContext, Form(form): Form<Vec<(String, String)>>) -> PageResult {
    let lang = form_value(&form, "lang");
    let new = files::NewFile {
        pratica: form_value(&form, "pratica"),
        surname: form_value(&form, "surname"),
        given_names: form_value(&form, "given_names").trim().to_owned(),
        birth_date: form_value(&form, "birth_date").trim().to_owned(),
        lang: coper_shared::precheck::LANGUAGES
            .into_iter()
            .find(|l| *l == lang)
            .unwrap_or("it")
            .to_owned(),
        kind_id: form_value(&form, "kind").parse().ok(),
        ..files::NewFile::default()
    };
    let asked = form_values(&form, "documents");
    let by = cx.by.clone();
    let token = crate::precheck::link_token();
    let public_url = cx.state.sender.public_url().map(str::to_owned);
    let opened = cx
        .state
        .perform(move |conn| {
            ops::precheck::open(conn, &by, new, &asked, &token, public_url.as_deref())
        })
        .await?;
    match opened {
        Ok(id) => {
            moved(&cx.state);
            Ok(Redirect::to(&format!("/precheck/files/{id}")).into_response())
        }
        Err(e) => Ok(inbox_page(
            &cx,
            "us".into(),
            String::new(),
            Some(e.to_string()),
            StatusCode::BAD_REQUEST,
        )
        .await?),
    }
}

/// A document of the checklist as staff (in Italian) and the person (in their language) see it.
pub struct ItemShown {
    pub key: String,
    pub label: String,
    pub state: &'static str,
    pub state_label: String,
    pub reason: String,
    /// The person may send a file for it: asked or refused, in a conversation still open.
    pub can_send: bool,
}

impl ItemShown {
    pub fn of(item: files::Item, texts: &Texts, lang: &str, file: &files::File) -> Self {
        Self {
            label: texts.document(&item.document, lang),
            state: item.state.key(),
            state_label: text(lang, &format!("page.state.{}", item.state.key())).to_owned(),
            reason: item
                .reason
                .map(|r| text(lang, &format!("reasons.{r}")).to_owned())
                .unwrap_or_default(),
            can_send: matches!(item.state, ItemState::Requested | ItemState::Invalid)
                && file.state == "open",
            key: item.document,
        }
    }
}

/// A message as staff see it: a phrase in Italian.
pub struct MessageShown {
    pub from_person: bool,
    pub text: String,
    pub at: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "precheck/file.html")]
pub struct FilePage {
    pub frame: Frame,
    pub file: files::File,
    pub items: Vec<ItemShown>,
    pub messages: Vec<MessageShown>,
    pub uploads: Vec<files::Upload>,
    pub documents: Vec<Choice>,
    /// The documents of this conversation, for "about".
    pub asked: Vec<Choice>,
    /// The one-touch phrases, then the administration's answers.
    pub phrases: Vec<Choice>,
    pub reasons: Vec<Choice>,
    /// The person's booking, when the conversation is linked to one: "giovedì 3 dicembre 2026
    /// alle 09:20 · Comune di Pavia · prenotato".
    pub booking: Option<String>,
    /// Each received file's document, as the checklist names it.
    pub upload_labels: Vec<String>,
    /// The person's page, and its QR code (SVG) for the assisted path.
    pub link: String,
    pub qr_svg: String,
    pub error: Option<String>,
}

fn choices(keys: &[&'static str], group: &str) -> Vec<Choice> {
    keys.iter()
        .map(|k| Choice {
            key: k.to_string(),
            label: text("it", &format!("{group}.{k}")).to_owned(),
        })
        .collect()
}

fn qr_svg(link: &str) -> String {
    qrcode::QrCode::new(link.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(180, 180)
                .build()
        })
        .unwrap_or_default()
}

async fn file_page(
    cx: &StaffContext,
    id: i64,
    base: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let found = cx
        .state
        .db
        .read(move |conn| {
            let Some(file) = files::file(conn, id)? else {
                return Ok(None);
            };
            let booking = match files::booking_of(conn, id)? {
                Some(a) => store::appointments::by_id(conn, &a)?,
                None => None,
            };
            Ok::<_, store::StoreError>(Some((
                file,
                files::items(conn, id)?,
                files::messages(conn, id)?,
                files::uploads(conn, id)?,
                booking,
                Texts::load(conn)?,
            )))
        })
        .await?;
    let Some((file, items, messages, uploads, booking, texts)) = found else {
        return Err(PageError::message(
            StatusCode::NOT_FOUND,
            "Conversazione inesistente",
            "Nessuna conversazione con questo numero.",
        ));
    };
    let asked = items
        .iter()
        .map(|i| Choice {
            key: i.document.clone(),
            label: texts.document(&i.document, "it"),
        })
        .collect();
    let items = items
        .into_iter()
        .map(|i| ItemShown::of(i, &texts, "it", &file))
        .collect();
    let messages = messages
        .into_iter()
        .map(|m| MessageShown {
            from_person: m.author == "person",
            text: texts.message(&m, "it"),
            at: m.at,
        })
        .collect();
    let link = crate::precheck::person_link(base, &file.token);
    let booking = booking.map(|a| {
        format!(
            "{} alle {} · {} · {}",
            crate::web::italian_date(a.date),
            a.time,
            a.partner_name.unwrap_or_else(|| "Questura".into()),
            a.status.label()
        )
    });
    let upload_labels = uploads
        .iter()
        .map(|u| {
            u.document
                .as_ref()
                .map(|d| texts.document(d, "it"))
                .unwrap_or_default()
        })
        .collect();
    Ok((
        status,
        FilePage {
            frame: cx.frame(),
            qr_svg: qr_svg(&link),
            link,
            booking,
            upload_labels,
            file,
            items,
            messages,
            uploads,
            documents: documents(&texts),
            asked,
            phrases: choices(&PHRASES, "phrases")
                .into_iter()
                .chain(
                    texts
                        .answers
                        .values()
                        .filter(|a| !a.retired)
                        .map(|a| Choice {
                            key: checklists::answer_phrase(a.id),
                            label: format!(
                                "Risposta: {}",
                                coper_shared::precheck::translated(&a.question, "it").0
                            ),
                        }),
                )
                .collect(),
            reasons: choices(&REASONS, "reasons"),
            error,
        },
    )
        .into_response())
}

/// The address people reach this server at: `public_origin` (or `[notices] public_url`), else
/// the one the staff's browser used (for the link and QR code shown to staff).
fn base_of(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = state.sender.public_url() {
        return url.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /precheck/files/{id}`.
pub async fn file(
    cx: StaffContext,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    file_page(&cx, id, &base_of(&cx.state, &headers), None, StatusCode::OK).await
}

/// `POST /precheck/files/{id}/{action}`: `ask` (documents), `mark` (document, state, reason),
/// `say` (phrase, document, text), `state` (complete, closed, open), `link` (a new link).
pub async fn act(
    cx: StaffContext,
    Path((id, action)): Path<(i64, String)>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let by = cx.by.clone();
    let max_chars = cx.state.limits.precheck_message_chars;
    let url = cx.state.sender.public_url().map(str::to_owned);
    let done: Result<(), PrecheckError> = match action.as_str() {
        "ask" => {
            let asked = form_values(&form, "documents");
            cx.state
                .perform(move |conn| ops::precheck::ask(conn, &by, id, &asked, url.as_deref()))
                .await?
        }
        "mark" => {
            let (document, state, reason) = (
                form_value(&form, "document"),
                form_value(&form, "state"),
                form_value(&form, "reason"),
            );
            match ItemState::from_key(&state) {
                Some(state) => {
                    cx.state
                        .perform(move |conn| {
                            ops::precheck::mark(
                                conn,
                                &by,
                                id,
                                &document,
                                state,
                                Some(&reason),
                                url.as_deref(),
                            )
                        })
                        .await?
                }
                None => Err(PrecheckError::NotRequested),
            }
        }
        "say" => {
            let (phrase, document, text) = (
                form_value(&form, "phrase"),
                form_value(&form, "document"),
                form_value(&form, "text"),
            );
            cx.state
                .perform(move |conn| {
                    ops::precheck::staff_says(
                        conn,
                        &by,
                        id,
                        Some(&phrase),
                        Some(&document),
                        &text,
                        max_chars,
                        url.as_deref(),
                    )
                })
                .await?
        }
        "state" => {
            let state = match form_value(&form, "state").as_str() {
                "complete" => "complete",
                "closed" => "closed",
                _ => "open",
            };
            cx.state
                .perform(move |conn| ops::precheck::set_state(conn, &by, id, state, url.as_deref()))
                .await?
        }
        "link" => {
            let token = crate::precheck::link_token();
            cx.state
                .perform(move |conn| ops::precheck::new_link(conn, &by, id, &token))
                .await?
        }
        _ => {
            return Err(PageError::message(
                StatusCode::NOT_FOUND,
                "Pagina non trovata",
                "Operazione sconosciuta.",
            ));
        }
    };
    match done {
        Ok(()) => {
            moved(&cx.state);
            Ok(Redirect::to(&format!("/precheck/files/{id}")).into_response())
        }
        Err(e) => Ok(file_page(
            &cx,
            id,
            &base_of(&cx.state, &headers),
            Some(e.to_string()),
            StatusCode::BAD_REQUEST,
        )
        .await?),
    }
}

/// `GET /precheck/uploads/{id}`: a file the person sent, to staff only; pictures shown, PDFs
/// downloaded; every view audited.
pub async fn upload(cx: StaffContext, Path(id): Path<i64>) -> PageResult {
    let by = cx.by.clone();
    let found = cx
        .state
        .db
        .call(move |conn| {
            let Some(upload) = files::upload(conn, id)? else {
                return Ok(None);
            };
            files::viewed(conn, &upload, by.now, (&by.name, &by.source))?;
            Ok::<_, store::StoreError>(Some(upload))
        })
        .await?;
    let not_found = || {
        PageError::message(
            StatusCode::NOT_FOUND,
            "File inesistente",
            "Il file non c'è più (conservazione scaduta) o non è mai esistito.",
        )
    };
    let upload = found.ok_or_else(not_found)?;
    let path = crate::precheck::path_of(&cx.state.precheck_dir, &upload.stored_as)
        .ok_or_else(not_found)?;
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(not_found)?;
    let (kind, disposition) = if upload.kind == "pdf" {
        (
            "application/pdf",
            format!("attachment; filename=\"documento-{id}.pdf\""),
        )
    } else {
        ("image/jpeg", "inline".to_owned())
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
            (
                header::HeaderName::from_static("x-content-type-options"),
                "nosniff".to_owned(),
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}
