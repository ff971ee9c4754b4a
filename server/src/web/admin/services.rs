//! A service's page: its description and rules in the editor, a preview of what saving would do
//! (the calendar of the coming weeks, the bookings that would move), and saving, which moves
//! the bookings the new rules displace and tells the kiosks.

use axum::{
    extract::{Form, Path},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use coper_shared::{ids::ServiceId, rules::ServiceRules};

use super::editor::{Editor, MoveShown, PreviewDay, WEEKDAYS, move_shown, preview_day};
use crate::{
    agenda_change::{self, Applied},
    ops, store,
    web::page::{Frame, PageError, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/service.html")]
pub struct ServicePage {
    pub frame: Frame,
    pub editor: Editor,
    pub weekdays: Vec<(&'static str, &'static str)>,
    pub errors: Vec<String>,
    pub preview: Option<(Vec<PreviewDay>, Vec<MoveShown>)>,
}

fn service_page(
    cx: &StaffContext,
    editor: Editor,
    errors: Vec<String>,
    preview: Option<(Vec<PreviewDay>, Vec<MoveShown>)>,
) -> ServicePage {
    ServicePage {
        frame: cx.frame(),
        editor,
        weekdays: WEEKDAYS.to_vec(),
        errors,
        preview,
    }
}

/// The form as typed and the rules it states, or the editor again with what is wrong in it.
fn checked(
    cx: &StaffContext,
    id: &str,
    pairs: &[(String, String)],
) -> Result<(Editor, ServiceRules), PageError> {
    let editor = Editor::from_form(id, pairs);
    match editor.rules() {
        Ok(rules) => Ok((editor, rules)),
        Err(errors) => Err(PageError::page((
            StatusCode::BAD_REQUEST,
            service_page(cx, editor, errors, None),
        ))),
    }
}

pub async fn service_editor(cx: StaffContext, Path(id): Path<String>) -> PageResult {
    let found = cx
        .state
        .db
        .read(move |conn| store::services::service(conn, &id))
        .await?;
    let Some(service) = found else {
        return Err(PageError::message(
            StatusCode::NOT_FOUND,
            "Servizio sconosciuto",
            "Questo servizio non esiste o non è attivo.",
        ));
    };
    Ok(service_page(&cx, Editor::from_rules(&service), Vec::new(), None).into_response())
}

/// Check the form and show what it would do: the calendar and the bookings that would move.
pub async fn service_preview(
    cx: StaffContext,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let (editor, rules) = checked(&cx, &id, &pairs)?;
    let now = cx.by.now;
    let plan = cx
        .state
        .db
        .read(move |conn| agenda_change::preview(conn, &rules, now))
        .await?;
    let days = plan.days.iter().map(preview_day).collect();
    let moves = plan.displaced.iter().map(move_shown).collect();
    Ok(service_page(&cx, editor, Vec::new(), Some((days, moves))).into_response())
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/saved.html")]
pub struct SavedPage {
    pub frame: Frame,
    pub title: String,
    pub moved: Vec<MoveShown>,
    pub back: String,
}

/// After a change of rules (the operation has told the kiosks and the live views): show what
/// moved.
pub(super) fn saved(cx: &StaffContext, applied: &Applied, title: String, back: String) -> Response {
    SavedPage {
        frame: cx.frame(),
        title,
        moved: applied.displaced.iter().map(move_shown).collect(),
        back,
    }
    .into_response()
}

/// Save the service's description and rules, moving the bookings they displace, and tell the
/// kiosks.
pub async fn service_save(
    cx: StaffContext,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let (editor, rules) = checked(&cx, &id, &pairs)?;
    let by = cx.by.clone();
    let (name, description, bring) = (
        editor.name.trim().to_owned(),
        editor.description.trim().to_owned(),
        (
            editor.what_to_bring.trim().to_owned(),
            editor.what_to_bring_translations(),
        ),
    );
    // Why, if bookings move: the partner bodies and the people read it.
    let reason = pairs
        .iter()
        .find(|(k, _)| k == "change_reason")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let applied = cx
        .state
        .perform(move |conn| {
            ops::agenda::save_service(conn, &by, &rules, &name, &description, &bring, &reason)
        })
        .await?;
    Ok(saved(
        &cx,
        &applied,
        "Orari salvati".into(),
        format!("/admin/services/{id}"),
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct NewService {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// Create a service with no hours yet; the editor then sets them.
pub async fn service_create(cx: StaffContext, Form(form): Form<NewService>) -> PageResult {
    let Ok(id) = ServiceId::parse(form.id.trim()) else {
        return Err(PageError::message(
            StatusCode::BAD_REQUEST,
            "Identificativo non valido",
            "L'identificativo del servizio usa lettere minuscole, cifre e trattini (es. consegna-pse).",
        ));
    };
    if form.name.trim().is_empty() {
        return Err(PageError::message(
            StatusCode::BAD_REQUEST,
            "Nome mancante",
            "Indicare il nome del servizio.",
        ));
    }
    let path = format!("/admin/services/{}", id.as_str());
    let by = cx.by.clone();
    let created = cx
        .state
        .perform(move |conn| ops::agenda::create_service(conn, &by, &id, form.name.trim()))
        .await?;
    if !created {
        return Err(PageError::message(
            StatusCode::CONFLICT,
            "Servizio già esistente",
            "Esiste già un servizio con questo identificativo.",
        ));
    }
    Ok(Redirect::to(&path).into_response())
}
