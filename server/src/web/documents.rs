//! The person's side of the document pre-check: `/documents/{token}`, reached from the link
//! staff give (a QR code on the kiosk's reminder or the office's screen, a message). No account,
//! no app: the documents asked for with where each stands, the Questura's messages (phrases in
//! the person's language, free text as written and marked Italian), a picture or PDF to send
//! for each document, and a box to answer — in any of the eleven languages, on a 360 px phone,
//! without scripts. A wrong, renewed or closed link says so and nothing else; what the page
//! shows is that conversation's only.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Form, Multipart, Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use coper_shared::{
    catalogue::right_to_left,
    precheck::{LANGUAGES, text},
};
use serde::Deserialize;

use crate::{
    AppState,
    store::{self, precheck as files},
    web::{page::PageResult, precheck::ItemShown, public::MESSAGE_LANGUAGES},
};

pub struct MessageShown {
    pub mine: bool,
    pub text: String,
    /// Free text the staff wrote: in Italian.
    pub italian: bool,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "documents.html")]
pub struct DocumentsPage {
    pub lang: &'static str,
    pub dir: &'static str,
    pub token: String,
    /// `None`: the link does not work.
    pub found: Option<Found>,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub languages: &'static [(&'static str, &'static str)],
}

pub struct Found {
    pub title: String,
    pub intro: String,
    pub items: Vec<ItemShown>,
    pub messages: Vec<MessageShown>,
    pub complete: bool,
}

impl DocumentsPage {
    /// A text of the page in its language.
    pub fn t(&self, key: &str) -> String {
        text(self.lang, &format!("page.{key}")).to_owned()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    lang: Option<String>,
    /// What was just done: `upload` or `message`.
    #[serde(default)]
    done: Option<String>,
}

fn language(asked: Option<&str>, default: &str) -> &'static str {
    LANGUAGES
        .into_iter()
        .find(|l| Some(*l) == asked)
        .or_else(|| LANGUAGES.into_iter().find(|l| *l == default))
        .unwrap_or("it")
}

/// The token as typed in a link: 32 hexadecimal digits, or nothing.
fn well_formed(token: &str) -> Option<String> {
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| token.to_ascii_lowercase())
}

async fn page(
    state: &AppState,
    token: &str,
    lang: Option<&str>,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let key = well_formed(token);
    let found = match key {
        Some(key) => {
            state
                .db
                .read(move |conn| {
                    let Some(file) = files::by_token(conn, &key)? else {
                        return Ok(None);
                    };
                    let place = store::notices::place(conn)?;
                    Ok::<_, store::StoreError>(Some((
                        files::items(conn, file.id)?,
                        files::messages(conn, file.id)?,
                        place,
                        file,
                        store::checklists::Texts::load(conn)?,
                    )))
                })
                .await?
        }
        None => None,
    };
    let lang = language(lang, found.as_ref().map_or("it", |f| f.3.lang.as_str()));
    let status = match (&found, &error) {
        (None, _) => StatusCode::NOT_FOUND,
        (_, Some((status, _))) => *status,
        _ => StatusCode::OK,
    };
    let found = found.map(|(items, messages, place, file, texts)| Found {
        title: text(lang, "page.title").to_owned(),
        intro: text(lang, "page.intro").replace("{place}", &place),
        complete: file.state == "complete",
        items: items
            .into_iter()
            .map(|i| ItemShown::of(i, &texts, lang, &file))
            .collect(),
        messages: messages
            .iter()
            .map(|m| MessageShown {
                mine: m.author == "person",
                italian: m.author == "staff" && !m.body.is_empty(),
                text: texts.message(m, lang),
            })
            .collect(),
    });
    Ok((
        status,
        // A person's documents page: never kept by a browser or a proxy, never named to
        // another site. (`same-origin`, not `no-referrer`: with no referrer at all a browser
        // sends `Origin: null` with the page's own forms, which the CSRF check refuses.)
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        DocumentsPage {
            lang,
            dir: if right_to_left(lang) { "rtl" } else { "ltr" },
            token: token.to_owned(),
            found,
            notice,
            error: error.map(|(_, e)| e),
            languages: &MESSAGE_LANGUAGES,
        },
    )
        .into_response())
}

/// `GET /documents/{token}?lang=`.
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let lang = q.lang.as_deref();
    let notice = q.done.as_deref().and_then(|d| match d {
        "upload" => Some(text(language(lang, "it"), "page.uploaded").to_owned()),
        "message" => Some(text(language(lang, "it"), "page.sent").to_owned()),
        _ => None,
    });
    page(&state, &token, lang, notice, None).await
}

/// Why the page refuses what was sent, in the person's language (`mb`: the file size limit).
fn refused(lang: &str, key: &str, status: StatusCode, mb: usize) -> (StatusCode, String) {
    (status, text(lang, key).replace("{mb}", &mb.to_string()))
}

/// Within the page's rate limits (per link, per network)?
fn allowed(state: &AppState, token: &str, peer: SocketAddr) -> bool {
    let (by_network, by_token) = &*state.precheck_limits;
    by_network
        .check_key(&crate::status::network_of(peer.ip()))
        .is_ok()
        && by_token.check_key(&token.to_owned()).is_ok()
}

#[derive(Debug, Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /documents/{token}/message`: the person answers.
pub async fn message(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    Form(form): Form<MessageForm>,
) -> PageResult {
    let lang = form.lang.clone();
    let lang_code = language(lang.as_deref(), "it");
    let Some(key) = well_formed(&token) else {
        return page(&state, &token, lang.as_deref(), None, None).await;
    };
    if !allowed(&state, &key, peer) {
        let e = refused(
            lang_code,
            "page.error.count",
            StatusCode::TOO_MANY_REQUESTS,
            0,
        );
        return page(&state, &token, lang.as_deref(), None, Some(e)).await;
    }
    let body = form.body.trim().to_owned();
    if body.is_empty() || body.chars().count() > state.limits.precheck_message_chars {
        let e = refused(lang_code, "page.error.message", StatusCode::BAD_REQUEST, 0);
        return page(&state, &token, lang.as_deref(), None, Some(e)).await;
    }
    let now = state.clock.now();
    let said = state
        .db
        .call(move |conn| {
            let Some(file) = files::by_token(conn, &key)? else {
                return Ok(false);
            };
            let message = files::Message {
                author: "person".into(),
                phrase: None,
                document: None,
                body,
                at: String::new(),
            };
            files::say(conn, file.id, &message, now, "persona")?;
            Ok::<_, store::StoreError>(true)
        })
        .await?;
    if !said {
        return page(&state, &token, lang.as_deref(), None, None).await;
    }
    crate::web::precheck::moved(&state);
    Ok(done(&token, lang.as_deref(), "message"))
}

fn done(token: &str, lang: Option<&str>, what: &str) -> Response {
    let lang = lang
        .map(|l| format!("&lang={}", language(Some(l), "it")))
        .unwrap_or_default();
    Redirect::to(&format!("/documents/{token}?done={what}{lang}")).into_response()
}

/// A file past the limit is read (and dropped) up to this many times the limit before the
/// connection is cut.
const DRAIN_FACTOR: usize = 10;

/// `POST /documents/{token}/upload` (multipart: `document`, `lang`, `file`): a picture or PDF
/// for a document. Read in pieces and given up as soon as it passes the limit, checked and
/// cleaned (`crate::precheck::accept`) before anything is written.
pub async fn upload(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    mut multipart: Multipart,
) -> PageResult {
    let limit = state.limits.precheck_file_bytes;
    let (mut document, mut lang, mut bytes, mut too_large) = (None, None, Vec::new(), false);
    while let Ok(Some(mut field)) = multipart.next_field().await {
        match field.name() {
            Some("document") => document = field.text().await.ok(),
            Some("lang") => lang = field.text().await.ok(),
            Some("file") => {
                let mut read = 0usize;
                while let Ok(Some(chunk)) = field.chunk().await {
                    read += chunk.len();
                    if read > limit {
                        // Too large: kept no further, but read on (up to a bound) so that the
                        // person's browser gets the page saying why rather than a broken
                        // connection; the body's time limit bounds the wait.
                        too_large = true;
                        bytes = Vec::new();
                        if read > limit.saturating_mul(DRAIN_FACTOR) {
                            break;
                        }
                        continue;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if too_large {
                    break;
                }
            }
            _ => {}
        }
    }
    let lang_code = language(lang.as_deref(), "it");
    let refuse = |key: &str, status| refused(lang_code, key, status, limit >> 20);
    let Some(key) = well_formed(&token) else {
        return page(&state, &token, lang.as_deref(), None, None).await;
    };
    if !allowed(&state, &key, peer) {
        let e = refuse("page.error.count", StatusCode::TOO_MANY_REQUESTS);
        return page(&state, &token, lang.as_deref(), None, Some(e)).await;
    }
    if too_large {
        let e = refuse("page.error.size", StatusCode::PAYLOAD_TOO_LARGE);
        return page(&state, &token, lang.as_deref(), None, Some(e)).await;
    }
    let accepted =
        match tokio::task::spawn_blocking(move || crate::precheck::accept(&bytes, limit)).await {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(e)) => {
                let status = match e {
                    crate::precheck::UploadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    crate::precheck::UploadError::NotAccepted => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                };
                let e = refuse(e.text_key(), status);
                return page(&state, &token, lang.as_deref(), None, Some(e)).await;
            }
            Err(_) => {
                let e = refuse("page.error.file", StatusCode::UNSUPPORTED_MEDIA_TYPE);
                return page(&state, &token, lang.as_deref(), None, Some(e)).await;
            }
        };
    let (now, cap) = (
        state.clock.now(),
        state.limits.precheck_files_per_conversation,
    );
    let folder = state.precheck_dir.clone();
    let kept = state
        .db
        .call(move |conn| {
            let Some(file) = files::by_token(conn, &key)? else {
                return Ok(Err(None));
            };
            if files::upload_count(conn, file.id)? >= cap {
                return Ok(Err(Some("page.error.count")));
            }
            // Only a document this conversation asked for; anything else is kept unlabelled.
            let asked = files::items(conn, file.id)?;
            let document = document.filter(|d| asked.iter().any(|i| i.document == *d));
            // Written first, recorded after: a row never points at a missing file.
            let name = crate::precheck::store(&folder, &accepted)
                .map_err(|e| store::StoreError::InvalidData(format!("precheck file: {e}")))?;
            let recorded = files::add_upload(
                conn,
                file.id,
                document.as_deref(),
                accepted.kind,
                &name,
                accepted.bytes.len(),
                now,
            );
            if recorded.is_err()
                && let Some(path) = crate::precheck::path_of(&folder, &name)
            {
                let _ = std::fs::remove_file(path);
            }
            recorded?;
            Ok::<_, store::StoreError>(Ok(()))
        })
        .await?;
    match kept {
        Ok(()) => {
            crate::web::precheck::moved(&state);
            Ok(done(&token, lang.as_deref(), "upload"))
        }
        Err(Some(key)) => {
            let e = refuse(key, StatusCode::CONFLICT);
            page(&state, &token, lang.as_deref(), None, Some(e)).await
        }
        Err(None) => page(&state, &token, lang.as_deref(), None, None).await,
    }
}
