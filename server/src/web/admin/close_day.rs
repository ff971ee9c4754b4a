//! Closing a day that may already have bookings: a preview of the bookings it moves and where,
//! then the closure, which adds it to each service's rules and moves those bookings (see
//! `crate::agenda_change`).

use axum::{extract::Form, http::StatusCode, response::IntoResponse};

use super::{
    editor::{MoveShown, move_shown},
    services::saved,
};
use crate::{
    agenda_change, ops,
    store::{StoreError, services},
    web::page::{Frame, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/close_day.html")]
pub struct CloseDayPage {
    pub frame: Frame,
    pub services: Vec<(String, String)>,
    pub date: String,
    pub service: String,
    pub note: String,
    pub error: Option<String>,
    pub moves: Option<Vec<MoveShown>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CloseDayForm {
    #[serde(default)]
    date: String,
    /// A service id, or empty for all services.
    #[serde(default)]
    service: String,
    #[serde(default)]
    note: String,
}

async fn close_day_page(
    cx: &StaffContext,
    form: CloseDayForm,
    error: Option<String>,
    moves: Option<Vec<MoveShown>>,
) -> PageResult {
    let services = cx
        .state
        .db
        .read(services::services)
        .await?
        .into_iter()
        .map(|s| (s.id.as_str().to_owned(), s.name))
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        CloseDayPage {
            frame: cx.frame(),
            services,
            date: form.date,
            service: form.service,
            note: form.note,
            error,
            moves,
        },
    )
        .into_response())
}

pub async fn close_day_form(cx: StaffContext) -> PageResult {
    close_day_page(&cx, CloseDayForm::default(), None, None).await
}

impl CloseDayForm {
    fn closure(&self) -> ops::agenda::Closure {
        ops::agenda::Closure {
            date: self.date.clone(),
            service: self.service.clone(),
            note: self.note.clone(),
        }
    }
}

/// Show which bookings closing the day would move, and where.
pub async fn close_day_preview(cx: StaffContext, Form(form): Form<CloseDayForm>) -> PageResult {
    let now = cx.by.now;
    let probe = form.clone();
    let planned = cx
        .state
        .db
        .read(move |conn| {
            let closure = probe.closure();
            let rules = match ops::agenda::rules_with_closure(conn, &closure)? {
                Ok(rules) => rules,
                Err(e) => return Ok(Err(e)),
            };
            let mut moves = Vec::new();
            for r in &rules {
                moves.extend(agenda_change::preview(conn, r, now)?.displaced);
            }
            Ok::<_, StoreError>(Ok(moves))
        })
        .await?;
    match planned {
        Ok(moves) => {
            let moves = moves.iter().map(move_shown).collect();
            close_day_page(&cx, form, None, Some(moves)).await
        }
        Err(error) => close_day_page(&cx, form, Some(error), None).await,
    }
}

/// Close the day: add the closure to each service, move its bookings, tell the kiosks.
pub async fn close_day(cx: StaffContext, Form(form): Form<CloseDayForm>) -> PageResult {
    let by = cx.by.clone();
    let probe = form.clone();
    let closed = cx
        .state
        .perform(move |conn| ops::agenda::close_day(conn, &by, &probe.closure()))
        .await?;
    match closed {
        Ok(applied) => {
            let title = format!("Giorno chiuso: {}", form.date);
            Ok(saved(&cx, &applied, title, "/admin/close-day".into()))
        }
        Err(error) => close_day_page(&cx, form, Some(error), None).await,
    }
}
