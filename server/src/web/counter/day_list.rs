//! The day list to print: in HTML (one section per service) and as a PDF (`pdf`).

use axum::{
    extract::{Query, State},
    http::header,
    response::IntoResponse,
};

use super::{
    day::{Day, DayQuery, DayRow, day_row, load_day},
    pdf,
};
use crate::{
    AppState,
    store::appointments::AppointmentStatus,
    web::page::{PageError, PageResult},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/day_list.html")]
pub struct DayListPage {
    pub day: Day,
    pub groups: Vec<(String, Vec<DayRow>)>,
}

/// The day's list grouped by service ("one day = one page" per service when printed).
fn by_service(day: &Day) -> Vec<(String, Vec<DayRow>)> {
    let mut groups: Vec<(String, Vec<DayRow>)> = Vec::new();
    for (id, name) in &day.services {
        let rows: Vec<DayRow> = day
            .appointments
            .iter()
            .filter(|a| &a.service_id == id && a.status != AppointmentStatus::Cancelled)
            .map(day_row)
            .collect();
        if !rows.is_empty() || day.service == *id {
            groups.push((name.clone(), rows));
        }
    }
    groups
}

/// What the list prints instead of the empty box for a person already dealt with.
pub fn done_word(status_key: &str) -> Option<&'static str> {
    match status_key {
        "checked_in" => Some("presente"),
        "delivered" => Some("consegnato"),
        "no_show" => Some("assente"),
        _ => None,
    }
}

pub async fn day_list(State(state): State<AppState>, Query(query): Query<DayQuery>) -> PageResult {
    let day = load_day(&state, query).await?;
    let groups = by_service(&day);
    Ok(DayListPage { day, groups }.into_response())
}

pub async fn day_list_pdf(
    State(state): State<AppState>,
    Query(query): Query<DayQuery>,
) -> PageResult {
    let day = load_day(&state, query).await?;
    let groups = by_service(&day);
    let pages: Vec<pdf::Section> = groups
        .iter()
        .map(|(service, rows)| pdf::Section {
            service: service.clone(),
            rows: rows
                .iter()
                .map(|r| pdf::Line {
                    time: r.time.clone(),
                    name: r.name.clone(),
                    code: r.code.clone(),
                    drawer: r.drawer.clone(),
                    partner: r.partner.clone(),
                    done: done_word(&r.status_key).map(str::to_owned),
                })
                .collect(),
        })
        .collect();
    let title = day.title.clone();
    let questura = day.questura.clone();
    let date = day.date;
    let rendered =
        tokio::task::spawn_blocking(move || pdf::render(&questura, &title, &pages)).await;
    let bytes = rendered
        .map_err(PageError::internal)?
        .map_err(PageError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"elenco-{date}.pdf\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
