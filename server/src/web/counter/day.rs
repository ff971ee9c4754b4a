//! The day view: the day's appointments with counts and filters, kept live over server-sent
//! events, and the end-of-day no-shows.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Form, Query, State},
    response::{
        IntoResponse, Redirect,
        sse::{Event, KeepAlive, Sse},
    },
};
use coper_shared::{documents::DocName, jiff::civil::Date};
use futures_util::Stream;
use serde::Deserialize;

use crate::{
    AppState,
    checkin::local_now,
    ops,
    store::{
        StoreError,
        appointments::{self as store, AppointmentStatus, CounterAppointment},
        services, settings,
    },
    web::{
        italian_date,
        page::{Frame, PageResult, StaffContext},
    },
};

#[derive(Debug, Default, Deserialize)]
pub struct DayQuery {
    /// `YYYY-MM-DD`; today when missing or unreadable.
    #[serde(default)]
    date: String,
    /// A service id; all services when empty.
    #[serde(default)]
    service: String,
    /// One status; all when empty.
    #[serde(default)]
    status: String,
}

/// Counts shown above the day's list.
#[derive(Debug, Default)]
pub struct Counts {
    pub booked: usize,
    pub checked_in: usize,
    pub delivered: usize,
    pub no_show: usize,
    pub cancelled: usize,
}

/// A row of the day view.
pub struct DayRow {
    pub id: String,
    pub time: String,
    pub service: String,
    pub name: String,
    pub code: String,
    pub partner: String,
    /// Where the permit waits in the office (from the ready list), if known.
    pub drawer: String,
    pub status: String,
    pub status_key: String,
}

pub(super) fn day_row(a: &CounterAppointment) -> DayRow {
    DayRow {
        id: a.id.clone(),
        time: a.time.clone(),
        service: a.service_name.clone(),
        name: format!("{} {}", a.surname.to_uppercase(), a.given_names),
        code: a.booking_code.clone(),
        partner: a.partner_name.clone().unwrap_or_else(|| "Questura".into()),
        drawer: a.drawer.clone().unwrap_or_default(),
        status: a.status.label().into(),
        status_key: a.status.as_str().into(),
    }
}

/// A day's appointments, loaded for one of the day's views.
pub struct Day {
    pub date: Date,
    pub title: String,
    pub service: String,
    pub status: String,
    pub services: Vec<(String, String)>,
    pub rows: Vec<DayRow>,
    pub counts: Counts,
    pub appointments: Vec<CounterAppointment>,
    pub questura: String,
}

pub(super) async fn load_day(state: &AppState, query: DayQuery) -> Result<Day, StoreError> {
    let now = state.clock.now();
    state
        .db
        .read(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let date = query.date.parse::<Date>().unwrap_or(local.date());
            let services: Vec<(String, String)> = services::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect();
            let service = services
                .iter()
                .find(|(id, _)| *id == query.service)
                .map(|(id, _)| id.clone());
            let all = store::day(conn, date, service.as_deref())?;
            // One status, or all when the filter is empty or unknown.
            let shown = AppointmentStatus::parse(&query.status);
            let mut counts = Counts::default();
            for a in &all {
                match a.status {
                    AppointmentStatus::Booked => counts.booked += 1,
                    AppointmentStatus::CheckedIn => counts.checked_in += 1,
                    AppointmentStatus::Delivered => counts.delivered += 1,
                    AppointmentStatus::NoShow => counts.no_show += 1,
                    AppointmentStatus::Cancelled => counts.cancelled += 1,
                }
            }
            let appointments: Vec<CounterAppointment> = all
                .into_iter()
                .filter(|a| shown.is_none_or(|s| a.status == s))
                .collect();
            let rows = appointments.iter().map(day_row).collect();
            let questura = settings::questura(conn)?
                .map(|q| q.name)
                .unwrap_or_else(|| "Questura".into());
            Ok(Day {
                date,
                title: italian_date(date),
                service: service.unwrap_or_default(),
                status: query.status,
                services,
                rows,
                counts,
                appointments,
                questura,
            })
        })
        .await
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/day.html")]
pub struct DayPage {
    pub frame: Frame,
    pub day: Day,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/day_rows.html")]
pub struct DayRows {
    pub day: Day,
}

pub async fn day_page(cx: StaffContext, Query(query): Query<DayQuery>) -> PageResult {
    let day = load_day(&cx.state, query).await?;
    Ok(DayPage {
        frame: cx.frame(),
        day,
    }
    .into_response())
}

/// The live part of the day view, fetched again whenever an event says something changed.
pub async fn day_rows(State(state): State<AppState>, Query(query): Query<DayQuery>) -> PageResult {
    let day = load_day(&state, query).await?;
    Ok(DayRows { day }.into_response())
}

/// Server-sent events: `changed` whenever a booking is made, moved or cancelled anywhere (a
/// kiosk's request decided, an agenda document touched) or the counter changes a status. Bursts
/// are coalesced; the page then fetches [`day_rows`].
pub async fn day_events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut agenda = state.sync.subscribe();
    let mut counter = state.counter_changes.subscribe();
    let stream = async_stream(move |tx| async move {
        loop {
            tokio::select! {
                changed = agenda.recv() => match changed {
                    Ok(DocName::Agenda { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(_) => continue,
                    Err(_) => break,
                },
                changed = counter.changed() => if changed.is_err() { break },
            }
            // Let a burst (a kiosk's batch of requests) settle into one refresh.
            tokio::time::sleep(Duration::from_millis(150)).await;
            while agenda.try_recv().is_ok() {}
            counter.borrow_and_update();
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

/// A stream fed by a task through a small channel.
pub(crate) fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

#[derive(Debug, Deserialize)]
pub struct NoShowForm {
    #[serde(default)]
    date: String,
}

/// End of the day: everyone still only booked whose slot is past the late window is absent.
pub async fn mark_no_shows(cx: StaffContext, Form(form): Form<NoShowForm>) -> PageResult {
    let by = cx.by.clone();
    let date = form.date.parse::<Date>().ok();
    let (date, _) = cx
        .state
        .perform(move |conn| ops::appointments::mark_no_shows(conn, &by, date))
        .await?;
    Ok(Redirect::to(&format!("/counter/day?date={date}")).into_response())
}
