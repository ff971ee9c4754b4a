//! The public site: the home page (what the service is, where to book, what to bring) and the
//! "is my permit ready?" page, in eleven languages.

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
    /// In the page's language, or in Italian (`bring_lang` says which).
    pub what_to_bring: String,
    pub bring_lang: &'static str,
    /// Its weekly hours at the Questura, per weekday open: ("lun", "9:00–12:30, 14:30–16:30").
    pub hours: Vec<(&'static str, String)>,
    /// The administration's answers on its times and procedures.
    pub answers: Vec<AnswerShown>,
}

/// An answer on times and procedures, in the page's language or else in Italian (`lang` says
/// which, so a reader and a screen reader know).
pub struct AnswerShown {
    pub question: String,
    pub answer: String,
    pub lang: &'static str,
}

impl AnswerShown {
    fn of(a: &store::checklists::Answer, lang: Lang) -> Self {
        use coper_shared::precheck::translated;
        let (question, theirs) = translated(&a.question, lang.code());
        let (answer, both) = translated(&a.answer, lang.code());
        Self {
            question: question.to_owned(),
            answer: answer.to_owned(),
            lang: if theirs && both { lang.code() } else { "it" },
        }
    }
}

/// What every public page shows around its content.
pub struct Frame {
    pub t: Tr,
    pub questura: String,
    /// This page's path, for the language links.
    pub path: String,
}

async fn frame(
    state: &AppState,
    lang: Lang,
    path: impl Into<String>,
) -> Result<Frame, store::StoreError> {
    let questura = state
        .db
        .read(|conn| Ok::<_, store::StoreError>(store::settings::questura(conn)?.map(|q| q.name)))
        .await?
        .unwrap_or_default();
    Ok(Frame {
        t: Tr::new(lang),
        questura,
        path: path.into(),
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
    /// Answers for every service.
    pub answers: Vec<AnswerShown>,
    /// Where the Questura is and how to call it.
    pub address: String,
    pub phone: String,
}

pub async fn home(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::of_request(query.lang.as_deref(), &headers);
    let t = Tr::new(lang);
    let (partners, services, answers, questura) = state
        .db
        .read(move |conn| {
            let partners = store::partners::active(conn)?;
            let answers = store::checklists::answers(conn, false)?;
            let of_service = |service: &str| -> Vec<AnswerShown> {
                answers
                    .iter()
                    .filter(|a| a.service == service)
                    .map(|a| AnswerShown::of(a, lang))
                    .collect()
            };
            let services = store::services::services(conn)?
                .into_iter()
                .map(|s| {
                    let theirs = s.what_to_bring_in.get(lang.code()).cloned();
                    ServiceShown {
                        answers: of_service(s.id.as_str()),
                        hours: weekly_hours(&s.rules, &t),
                        name: s.name,
                        bring_lang: if theirs.is_some() { lang.code() } else { "it" },
                        what_to_bring: theirs.unwrap_or(s.what_to_bring),
                    }
                })
                .collect::<Vec<_>>();
            let questura = store::settings::questura(conn)?;
            Ok::<_, store::StoreError>((partners, services, of_service(""), questura))
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
            answers,
            address: questura
                .as_ref()
                .map(|q| q.address.clone())
                .unwrap_or_default(),
            phone: questura.map(|q| q.phone).unwrap_or_default(),
        },
    ))
}

/// A service's weekly hours, per weekday it is open, in the page's language.
fn weekly_hours(rules: &coper_shared::rules::ServiceRules, t: &Tr) -> Vec<(&'static str, String)> {
    use coper_shared::jiff::civil::Weekday::*;
    [
        Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
    ]
    .into_iter()
    .filter_map(|day| {
        let ranges = rules.weekly_ranges(day);
        (!ranges.is_empty()).then(|| {
            let text = ranges
                .iter()
                .map(|r| format!("{}–{}", r.start.strftime("%H:%M"), r.end.strftime("%H:%M")))
                .collect::<Vec<_>>()
                .join(", ");
            (t.day(day), text)
        })
    })
    .collect()
}

/// The status page's result box.
pub enum Outcome {
    Ready,
    NotReady,
    /// Not ready, and the person will be told when it is.
    Watching,
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
    /// What is wrong with a "tell me when ready" request (a translation key).
    pub notify_error: Option<&'static str>,
    /// The languages a message can be written in: code, name in its own script.
    pub message_languages: &'static [(&'static str, &'static str)],
}

impl StatusPage {
    /// The key of what the page answered, for its title (a screen reader hears it first).
    pub fn headline(&self) -> Option<&'static str> {
        Some(match self.outcome.as_ref()? {
            Outcome::Ready => "status.ready",
            Outcome::NotReady | Outcome::Watching => "status.not_ready",
            Outcome::Problem(key) => key,
        })
    }

    /// Whether the error on the page is about `field`: it is marked invalid and points at the
    /// message.
    pub fn invalid(&self, field: &str) -> bool {
        let Some(Outcome::Problem(key)) = &self.outcome else {
            return false;
        };
        let f = &self.form;
        let by_number = !f.number.trim().is_empty();
        match *key {
            "status.error.invalid_birth_date" => {
                field
                    == if by_number {
                        "number_birth_date"
                    } else {
                        "birth_date"
                    }
            }
            "status.error.invalid_fingerprint_date" => field == "fingerprint_date",
            "status.error.invalid_receipt_number" | "status.error.invalid_pratica_number" => {
                field == "number"
            }
            "status.error.incomplete" => {
                let typed = match field {
                    "surname" => &f.surname,
                    "name" => &f.name,
                    "birth_date" => &f.birth_date,
                    "fingerprint_date" => &f.fingerprint_date,
                    "number" if by_number => return false,
                    "number_birth_date" if by_number => &f.number_birth_date,
                    _ => return false,
                };
                typed.trim().is_empty() && (by_number == (field == "number_birth_date"))
            }
            _ => false,
        }
    }
}

/// The languages of the messages, each named in itself.
pub const MESSAGE_LANGUAGES: [(&str, &str); 11] = [
    ("it", "Italiano"),
    ("en", "English"),
    ("fr", "Français"),
    ("es", "Español"),
    ("ar", "العربية"),
    ("sq", "Shqip"),
    ("uk", "Українська"),
    ("ru", "Русский"),
    ("zh", "中文"),
    ("bn", "বাংলা"),
    ("ur", "اردو"),
];

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
    /// "Tell me when it is ready": a phone with its country prefix, and/or an e-mail, the
    /// language of the message, and the consent.
    #[serde(default)]
    pub notify_phone: String,
    #[serde(default)]
    pub notify_email: String,
    #[serde(default)]
    pub notify_lang: String,
    #[serde(default)]
    pub notify_consent: Option<String>,
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
    notify_error: Option<&'static str>,
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
            notify_error,
            message_languages: &MESSAGE_LANGUAGES,
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
    let page = status_page(&state, lang, StatusForm::default(), None, None).await?;
    Ok(with_lang_cookie(&query, lang, page))
}

pub async fn status_check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<StatusForm>,
) -> PageResult {
    let lang = Lang::of_request(form.lang.as_deref(), &headers);
    let outcome = checked(&state, peer, &form).await?;
    status_page(&state, lang, form, Some(outcome), None).await
}

/// The status check's answer to `form`, within its limits.
async fn checked(
    state: &AppState,
    peer: SocketAddr,
    form: &StatusForm,
) -> Result<Outcome, super::page::PageError> {
    Ok(match status::check(state, peer.ip(), &form.asked()).await {
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
    })
}

/// `POST /status-check/notify`: "tell me when my permit is ready". The question is checked
/// again (same limits, same answer time); while the permit is not ready, the contact, the
/// language and the consent are kept with the question until an import brings it.
pub async fn status_notify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<StatusForm>,
) -> PageResult {
    use coper_shared::contact;
    let lang = Lang::of_request(form.lang.as_deref(), &headers);
    let outcome = checked(&state, peer, &form).await?;
    if !matches!(outcome, Outcome::NotReady) {
        return status_page(&state, lang, form, Some(outcome), None).await;
    }
    let phone = contact::optional_phone(&form.notify_phone);
    let email = contact::optional_email(&form.notify_email);
    let problem = match (&phone, &email) {
        (Err(_), _) => Some("notify.error.phone"),
        (_, Err(_)) => Some("notify.error.email"),
        (Ok(None), Ok(None)) => Some("notify.error.contact"),
        _ if form.notify_consent.is_none() => Some("notify.error.consent"),
        _ => None,
    };
    if let Some(problem) = problem {
        let page = status_page(&state, lang, form, Some(outcome), Some(problem)).await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let message_lang = coper_shared::notices::LANGUAGES
        .into_iter()
        .find(|l| *l == form.notify_lang)
        .unwrap_or(lang.code())
        .to_owned();
    let query = serde_json::to_string(&form.asked()).expect("a question serialises");
    let contacts: Vec<(&str, String)> = [("sms", phone), ("email", email)]
        .into_iter()
        .filter_map(|(channel, c)| c.ok().flatten().map(|c| (channel, c)))
        .collect();
    let (now, limits) = (state.clock.now(), state.limits.clone());
    let kept = state
        .db
        .call(move |conn| {
            if !store::watches::room(conn, limits.ready_watches)? {
                return Ok(false);
            }
            let tx = conn.transaction()?;
            for (channel, recipient) in &contacts {
                let to = (*channel, recipient.as_str());
                store::watches::add(&tx, &query, to, &message_lang, now, limits.ready_watch_days)?;
            }
            tx.commit()?;
            Ok::<_, store::StoreError>(true)
        })
        .await?;
    if !kept {
        let page =
            status_page(&state, lang, form, Some(outcome), Some("notify.error.full")).await?;
        return Ok((StatusCode::SERVICE_UNAVAILABLE, page).into_response());
    }
    status_page(&state, lang, form, Some(Outcome::Watching), None).await
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "public/stop.html")]
pub struct StopPage {
    pub frame: Frame,
    pub token: String,
    /// `ask`, `done` or `unknown`.
    pub state: &'static str,
}

async fn stop_page(
    state: &AppState,
    lang: Lang,
    token: String,
    outcome: &'static str,
) -> PageResult {
    let frame = frame(state, lang, format!("/notices/stop/{token}")).await?;
    let status = if outcome == "unknown" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        StopPage {
            frame,
            token,
            state: outcome,
        },
    )
        .into_response())
}

/// Whether `token` looks like an opt-out token (32 hex digits) before it is looked up.
fn stop_token(token: &str) -> Option<String> {
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| token.to_ascii_lowercase())
}

/// `GET /notices/stop/{token}`: the link at the foot of every e-mail asks first (a mail
/// program that opens links to check them must not stop anyone's messages).
pub async fn stop_form(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::of_request(query.lang.as_deref(), &headers);
    let known = match stop_token(&token) {
        Some(t) => state
            .db
            .read(move |conn| store::notices::by_stop_token(conn, &t))
            .await?
            .is_some(),
        None => false,
    };
    let page = stop_page(&state, lang, token, if known { "ask" } else { "unknown" }).await?;
    Ok(with_lang_cookie(&query, lang, page))
}

/// `POST /notices/stop/{token}`: no more messages to that contact (also the one-click
/// `List-Unsubscribe-Post` of RFC 8058, which mail programs send without a form).
pub async fn stop(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::of_request(query.lang.as_deref(), &headers);
    let Some(t) = stop_token(&token) else {
        return stop_page(&state, lang, token, "unknown").await;
    };
    let now = state.clock.now();
    let stopped = state
        .db
        .call(move |conn| {
            let Some((channel, recipient)) = store::notices::by_stop_token(conn, &t)? else {
                return Ok(false);
            };
            let tx = conn.transaction()?;
            store::notices::opt_out(&tx, &channel, &recipient, "email_link", now)?;
            tx.commit()?;
            Ok::<_, store::StoreError>(true)
        })
        .await?;
    stop_page(
        &state,
        lang,
        token,
        if stopped { "done" } else { "unknown" },
    )
    .await
}
