//! `/admin/precheck`: what the administration keeps for the document pre-check — the documents
//! it adds beside the shipped catalogue (a name in Italian, and in the other languages it can
//! give; the person reads Italian where it gave none), the checklists per service and kind of
//! permit (staff open a conversation from one), and the answers on times and procedures (on the
//! public site, and offered to staff as replies). A document or an answer in use is retired,
//! never deleted: the conversations that name it keep it.

use axum::{
    extract::{Form, Path, Query},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use coper_shared::precheck::{DOCUMENTS, Translations, translated};
use serde::Deserialize;

use crate::{
    ops::{self, checklists::ChecklistError},
    store::{self, checklists},
    web::{
        form_value, form_values,
        page::{Frame, PageError, PageResult, StaffContext},
        public::MESSAGE_LANGUAGES,
    },
};

/// A document as the page lists it.
pub struct DocumentRow {
    pub code: String,
    pub name: String,
    /// The languages it has a name in, besides Italian: "en, fr".
    pub languages: String,
    pub retired: bool,
    pub shipped: bool,
}

/// A checklist as the page edits it.
pub struct KindRow {
    pub id: i64,
    pub service: String,
    pub name: String,
    pub documents: Vec<String>,
}

pub struct AnswerRow {
    pub id: i64,
    pub service: String,
    pub question: String,
    pub answer: String,
    pub languages: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/precheck.html")]
pub struct ChecklistsPage {
    pub frame: Frame,
    pub documents: Vec<DocumentRow>,
    pub kinds: Vec<KindRow>,
    pub answers: Vec<AnswerRow>,
    /// (id, name) of each service.
    pub services: Vec<(String, String)>,
    pub languages: &'static [(&'static str, &'static str)],
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl ChecklistsPage {
    /// Whether checklist `kind` asks for document `code`.
    pub fn asks(&self, kind: &KindRow, code: &str) -> bool {
        kind.documents.iter().any(|d| d == code)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
    /// With `done=retired`: conversations not closed that still ask for the document.
    #[serde(default)]
    in_use: Option<usize>,
}

fn notice(done: &Done) -> Option<String> {
    Some(match done.done.as_deref()? {
        "document" => "Documento aggiunto: ora si può chiedere e mettere nelle liste.".into(),
        "retired" => match done.in_use.unwrap_or(0) {
            0 => "Documento ritirato: non sarà più proposto.".into(),
            n => format!(
                "Documento ritirato: non sarà più proposto, ma resta nelle {n} conversazioni \
                 aperte che lo chiedono, con il suo stato, finché il personale non le chiude."
            ),
        },
        "checklist" => "Lista salvata.".into(),
        "checklist_deleted" => {
            "Lista eliminata: le conversazioni aperte da essa tengono i loro documenti.".into()
        }
        "answer" => "Risposta pubblicata.".into(),
        "answer_retired" => "Risposta ritirata dal sito pubblico.".into(),
        _ => return None,
    })
}

fn other_languages(texts: &Translations) -> String {
    texts
        .keys()
        .filter(|l| *l != "it")
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /admin/precheck`.
pub async fn page(cx: StaffContext, Query(done): Query<Done>) -> PageResult {
    render(&cx, notice(&done), None, StatusCode::OK).await
}

async fn render(
    cx: &StaffContext,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (added, kinds, answers, services) = cx
        .state
        .db
        .read(|conn| {
            Ok::<_, store::StoreError>((
                checklists::added_documents(conn)?,
                checklists::kinds(conn)?,
                checklists::answers(conn, false)?,
                store::services::services(conn)?,
            ))
        })
        .await?;
    let documents = DOCUMENTS
        .iter()
        .map(|code| DocumentRow {
            code: code.to_string(),
            name: coper_shared::precheck::text("it", &format!("documents.{code}")).to_owned(),
            languages: "tutte".into(),
            retired: false,
            shipped: true,
        })
        .chain(added.into_iter().map(|d| DocumentRow {
            name: translated(&d.names, "it").0.to_owned(),
            languages: other_languages(&d.names),
            code: d.code,
            retired: d.retired,
            shipped: false,
        }))
        .collect();
    let services: Vec<(String, String)> = services
        .into_iter()
        .map(|s| (s.id.to_string(), s.name))
        .collect();
    let service_name = |id: &str| {
        services
            .iter()
            .find(|(s, _)| s == id)
            .map_or_else(|| "Tutti i servizi".to_owned(), |(_, n)| n.clone())
    };
    let answers = answers
        .into_iter()
        .map(|a| AnswerRow {
            id: a.id,
            service: service_name(&a.service),
            question: translated(&a.question, "it").0.to_owned(),
            answer: translated(&a.answer, "it").0.to_owned(),
            languages: other_languages(&a.question),
        })
        .collect();
    let kinds = kinds
        .into_iter()
        .map(|k| KindRow {
            id: k.id,
            service: k.service,
            name: k.name,
            documents: k.documents,
        })
        .collect();
    Ok((
        status,
        ChecklistsPage {
            frame: cx.frame(),
            documents,
            kinds,
            answers,
            services,
            languages: &MESSAGE_LANGUAGES,
            notice,
            error,
        },
    )
        .into_response())
}

/// The fields `<prefix>_<lang>` of the form, by language.
fn per_language(form: &[(String, String)], prefix: &str) -> Vec<(String, String)> {
    form.iter()
        .filter_map(|(k, v)| {
            let lang = k.strip_prefix(prefix)?.strip_prefix('_')?;
            Some((lang.to_owned(), v.clone()))
        })
        .collect()
}

/// The answer to a change: back to the page with what happened, or the page with the reason.
async fn after<T>(
    cx: &StaffContext,
    outcome: Result<T, ChecklistError>,
    done: impl FnOnce(T) -> String,
) -> PageResult {
    match outcome {
        Ok(value) => {
            Ok(Redirect::to(&format!("/admin/precheck?done={}", done(value))).into_response())
        }
        Err(e) => Ok(render(cx, None, Some(e.to_string()), StatusCode::BAD_REQUEST).await?),
    }
}

/// `POST /admin/precheck/documents`: `name_<lang>`.
pub async fn add_document(cx: StaffContext, Form(form): Form<Vec<(String, String)>>) -> PageResult {
    let names = match ops::checklists::checked_texts(
        per_language(&form, "name"),
        ops::checklists::NAME_CHARS,
    ) {
        Ok(n) => n,
        Err(e) => return after(&cx, Err::<(), _>(e), |_| String::new()).await,
    };
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::add_document(conn, &by, names))
        .await?;
    after(&cx, outcome, |_| "document".into()).await
}

/// `POST /admin/precheck/documents/{code}/retire`.
pub async fn retire_document(cx: StaffContext, Path(code): Path<String>) -> PageResult {
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::retire_document(conn, &by, &code))
        .await?;
    after(&cx, outcome, |n| format!("retired&in_use={n}")).await
}

/// `POST /admin/precheck/checklists`: `id` (empty for a new one), `service`, `name`,
/// `documents` (each ticked).
pub async fn save_checklist(
    cx: StaffContext,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let id = form_value(&form, "id").parse().ok();
    let (service, name) = (form_value(&form, "service"), form_value(&form, "name"));
    let documents = form_values(&form, "documents");
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::save_kind(conn, &by, id, &service, &name, &documents))
        .await?;
    after(&cx, outcome, |_| "checklist".into()).await
}

/// `POST /admin/precheck/checklists/{id}/delete`.
pub async fn delete_checklist(cx: StaffContext, Path(id): Path<i64>) -> PageResult {
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::delete_kind(conn, &by, id))
        .await?;
    after(&cx, outcome, |_| "checklist_deleted".into()).await
}

/// `POST /admin/precheck/answers`: `service` (empty: every service), `question_<lang>`,
/// `answer_<lang>`.
pub async fn add_answer(cx: StaffContext, Form(form): Form<Vec<(String, String)>>) -> PageResult {
    let max = ops::checklists::ANSWER_CHARS;
    let texts =
        ops::checklists::checked_texts(per_language(&form, "question"), max).and_then(|q| {
            Ok((
                q,
                ops::checklists::checked_texts(per_language(&form, "answer"), max)?,
            ))
        });
    let (question, answer) = match texts {
        Ok(t) => t,
        Err(e) => return after(&cx, Err::<(), _>(e), |_| String::new()).await,
    };
    let service = form_value(&form, "service");
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::add_answer(conn, &by, &service, question, answer))
        .await?;
    after(&cx, outcome, |_| "answer".into()).await
}

/// `POST /admin/precheck/answers/{id}/retire`.
pub async fn retire_answer(cx: StaffContext, Path(id): Path<i64>) -> PageResult {
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| ops::checklists::retire_answer(conn, &by, id))
        .await?;
    after(&cx, outcome, |_| "answer_retired".into()).await
}
