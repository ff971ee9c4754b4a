//! The public site: the home page (what the service is, where to book, what to bring) and the
//! "is my permit ready?" page, in Italian, English, French and Arabic.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Form, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    i18n::{LANG_COOKIE, Lang, Tr},
    page::PageResult,
};
use crate::{
    AppState,
    status::{self, Asked, Refusal},
    store::{self, partners::Partner},
};

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// A service as the home page shows it.
pub struct ServiceShown {
    pub name: String,
    pub what_to_bring: String,
}

/// What every public page shows around its content.
pub struct Frame {
    pub t: Tr,
    pub questura: String,
    pub path: &'static str,
}

async fn frame(
    state: &AppState,
    lang: Lang,
    path: &'static str,
) -> Result<Frame, store::StoreError> {
    let questura = state
        .db
        .read(|conn| Ok::<_, store::StoreError>(store::settings::questura(conn)?.map(|q| q.name)))
        .await?
        .unwrap_or_default();
    Ok(Frame {
        t: Tr::new(lang),
        questura,
        path,
    })
}

/// Remember a language chosen with `?lang=`.
fn with_lang_cookie(query: &LangQuery, lang: Lang, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    if query.lang.is_some()
        && let Ok(value) = format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            lang.code()
        )
        .parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "public/home.html")]
pub struct HomePage {
    pub frame: Frame,
    pub partners: Vec<Partner>,
    pub services: Vec<ServiceShown>,
}

pub async fn home(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::of_request(query.lang.as_deref(), &headers);
    let (partners, services) = state
        .db
        .read(|conn| {
            let partners = store::partners::active(conn)?;
            let services = store::services::services(conn)?
                .into_iter()
                .map(|s| ServiceShown {
                    name: s.name,
                    what_to_bring: s.what_to_bring,
                })
                .collect::<Vec<_>>();
            Ok::<_, store::StoreError>((partners, services))
        })
        .await?;
    let frame = frame(&state, lang, "/").await?;
    Ok(with_lang_cookie(
        &query,
        lang,
        HomePage {
            frame,
            partners,
            services,
        },
    ))
}

/// The status page's result box.
pub enum Outcome {
    Ready,
    NotReady,
    /// A translation key saying what is wrong or that the visitor must wait.
    Problem(&'static str),
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "public/status.html")]
pub struct StatusPage {
    pub frame: Frame,
    pub form: StatusForm,
    pub outcome: Option<Outcome>,
    pub partners: Vec<Partner>,
}

/// The form as typed, kept so a visitor corrects rather than retypes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    pub surname: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub fingerprint_date: String,
    /// A receipt (12 characters) or pratica (10 characters) number.
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub number_birth_date: String,
    #[serde(default)]
    pub lang: Option<String>,
}

impl StatusForm {
    fn asked(&self) -> Asked {
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.trim().is_empty());
        let number: String = self
            .number
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        if !number.is_empty() {
            let (receipt, pratica) = if number.len() == 10 {
                (None, Some(number))
            } else {
                (Some(number), None)
            };
            return Asked {
                receipt_number: receipt,
                pratica_number: pratica,
                birth_date: text(&self.number_birth_date),
                ..Asked::default()
            };
        }
        Asked {
            surname: text(&self.surname),
            name: text(&self.name),
            birth_date: text(&self.birth_date),
            fingerprint_date: text(&self.fingerprint_date),
            ..Asked::default()
        }
    }
}

async fn status_page(
    state: &AppState,
    lang: Lang,
    form: StatusForm,
    outcome: Option<Outcome>,
) -> PageResult {
    let partners = state.db.read(store::partners::active).await?;
    let status = match outcome {
        Some(Outcome::Problem("status.wait")) => StatusCode::TOO_MANY_REQUESTS,
        Some(Outcome::Problem(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let frame = frame(state, lang, "/status-check").await?;
    Ok((
        status,
        StatusPage {
            frame,
            form,
            outcome,
            partners,
        },
    )
        .into_response())
}

pub async fn status_form(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::of_request(query.lang.as_deref(), &headers);
    let page = status_page(&state, lang, StatusForm::default(), None).await?;
    Ok(with_lang_cookie(&query, lang, page))
}

pub async fn status_check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<StatusForm>,
) -> PageResult {
    let lang = Lang::of_request(form.lang.as_deref(), &headers);
    let outcome = match status::check(&state, peer.ip(), &form.asked()).await {
        Ok(answer) if answer.status == "ready" => Outcome::Ready,
        Ok(_) => Outcome::NotReady,
        Err(Refusal::Wait(_)) => Outcome::Problem("status.wait"),
        Err(Refusal::Invalid(e)) => Outcome::Problem(match e.code() {
            "incomplete" => "status.error.incomplete",
            "invalid_birth_date" => "status.error.invalid_birth_date",
            "invalid_fingerprint_date" => "status.error.invalid_fingerprint_date",
            "invalid_receipt_number" => "status.error.invalid_receipt_number",
            _ => "status.error.invalid_pratica_number",
        }),
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    status_page(&state, lang, form, Some(outcome)).await
}
