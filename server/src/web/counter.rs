//! The counter's pages: check-in by scan or by hand, the live day view, and the day list to
//! print (HTML and PDF).
//!
//! A scan is a form post of whatever the scanner typed. It is read as a signed ticket (verified
//! against the issuing kiosk's enrolled key, or the server's own), or else as a booking code typed
//! by hand; the person is checked in only when [`crate::counter::assess`] finds it in order.

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use axum::{
    Extension,
    extract::{ConnectInfo, Form, Path, Query, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use coper_shared::{
    booking_code,
    documents::DocName,
    jiff::{
        Timestamp,
        civil::{Date, DateTime, Time},
        tz::TimeZone,
    },
    ticket::{Issuer, Scanned, TicketError},
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use futures_util::Stream;
use rusqlite::Connection;
use serde::Deserialize;

use super::{internal_error, italian_date, message};
use crate::{
    AppState,
    accounts::Staff,
    counter::{Assessment, assess, describe},
    store::{
        StoreError,
        counter::{self as store, CounterAppointment, Step, status_label},
    },
};

/// The Questura's time zone and now, as the counter's wall clock.
fn local_now(conn: &Connection, now: Timestamp) -> Result<(TimeZone, DateTime), StoreError> {
    let zone = crate::store::agenda::questura(conn)?
        .map(|q| q.time_zone)
        .unwrap_or_else(|| TimeZone::get("Europe/Rome").unwrap_or(TimeZone::UTC));
    let local = now.to_zoned(zone.clone()).datetime();
    Ok((zone, local))
}

/// What the check-in page shows after a scan or a lookup.
pub struct Outcome {
    /// `success`, `warning` or `danger`: the colour of the box.
    pub tone: &'static str,
    pub headline: String,
    pub detail: String,
    pub appointment: Option<Shown>,
    pub may_override: bool,
}

/// An appointment with its fields ready to show.
pub struct Shown {
    pub id: String,
    pub name: String,
    pub service: String,
    pub slot: String,
    pub status: String,
    pub code: String,
    pub partner: String,
    pub drawer: String,
    pub may_deliver: bool,
    pub may_no_show: bool,
}

fn shown(a: &CounterAppointment) -> Shown {
    Shown {
        id: a.id.clone(),
        name: format!("{} {}", a.surname.to_uppercase(), a.given_names),
        service: a.service_name.clone(),
        slot: format!("{} alle {}", italian_date(a.date), a.time),
        status: status_label(&a.status).into(),
        code: a.booking_code.clone(),
        partner: a.partner_name.clone().unwrap_or_else(|| "Questura".into()),
        drawer: a.drawer.clone().unwrap_or_default(),
        may_deliver: a.status == "checked_in",
        may_no_show: a.status == "booked",
    }
}

fn refusal(headline: &str, detail: &str) -> Outcome {
    Outcome {
        tone: "danger",
        headline: headline.into(),
        detail: detail.into(),
        appointment: None,
        may_override: false,
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/checkin.html")]
pub struct CheckinPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub today: String,
    pub outcome: Option<Outcome>,
    pub query: String,
    pub matches: Vec<Shown>,
}

fn checkin(staff: Staff, today: String, outcome: Option<Outcome>) -> CheckinPage {
    CheckinPage {
        csrf: staff.csrf_token.clone(),
        staff: Some(staff),
        today,
        outcome,
        query: String::new(),
        matches: Vec::new(),
    }
}

pub async fn checkin_page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Response {
    let now = state.clock.now();
    match state.db.call(move |conn| local_now(conn, now)).await {
        Ok((_, local)) => checkin(staff, italian_date(local.date()), None).into_response(),
        Err(e) => internal_error(e),
    }
}

/// A booking found from a scan, with the slot printed on its ticket (none for a typed code).
type Found = (CounterAppointment, Option<(Date, Time)>);

/// Read what was scanned or typed: the appointment it names and, for a ticket, the slot printed
/// on it; or why it cannot be trusted.
fn read_scan(
    conn: &Connection,
    text: &str,
    now: Timestamp,
) -> Result<Result<Found, Outcome>, StoreError> {
    // A booking code typed by hand first: eight characters can never be a ticket, and a code may
    // start like one (`CP1A-…`).
    let scanned = match (booking_code::normalise(text), Scanned::parse(text)) {
        (None, Ok(scanned)) => scanned,
        (Some(code), _) => {
            return Ok(match store::by_code(conn, &code)? {
                Some(a) => Ok((a, None)),
                None => Err(refusal(
                    "Prenotazione sconosciuta",
                    &format!("Nessuna prenotazione con il codice {code}."),
                )),
            });
        }
        (None, Err(TicketError::NotATicket)) => {
            return Ok(Err(refusal(
                "Codice non riconosciuto",
                "Non è un codice coper né un codice di prenotazione (8 caratteri, es. K7QM-4XTA).",
            )));
        }
        (None, Err(_)) => {
            return Ok(Err(refusal(
                "Codice illeggibile",
                "Il codice QR è danneggiato o incompleto: ripetere la lettura, o digitare il codice di prenotazione stampato sotto il QR.",
            )));
        }
    };
    let key = match scanned.issuer() {
        Issuer::Server => SigningKey::from_bytes(&store::server_key(conn, now)?).verifying_key(),
        Issuer::Kiosk(kiosk) => match store::kiosk_key(conn, &kiosk.to_string())? {
            None => {
                return Ok(Err(refusal(
                    "Codice non valido",
                    "Il codice è stato emesso da un chiosco sconosciuto.",
                )));
            }
            Some((_, true)) => {
                return Ok(Err(refusal(
                    "Codice non valido: chiosco revocato",
                    "Il chiosco che ha emesso questo codice è stato revocato. Verificare l'identità e cercare la prenotazione per nome.",
                )));
            }
            Some((key, false)) => match VerifyingKey::from_bytes(&key) {
                Ok(key) => key,
                Err(_) => return Err(StoreError::InvalidData("kiosk key".into())),
            },
        },
    };
    let ticket = match scanned.verify(&key) {
        Ok(ticket) => ticket,
        Err(_) => {
            return Ok(Err(refusal(
                "Codice contraffatto",
                "La firma del codice non corrisponde: il promemoria è stato alterato o falsificato.",
            )));
        }
    };
    Ok(match store::by_ticket(conn, &ticket)? {
        Some(a) => Ok((a, Some((ticket.date, ticket.time)))),
        None => Err(Outcome {
            tone: "warning",
            headline: "Prenotazione non ancora arrivata".into(),
            detail: format!(
                "Il codice è autentico (appuntamento {} alle {}), ma il chiosco non ha ancora trasmesso la prenotazione: l'ente potrebbe essere senza rete. Cercare per nome o riprovare più tardi.",
                italian_date(ticket.date),
                coper_shared::rules::hh_mm(ticket.time)
            ),
            appointment: None,
            may_override: false,
        }),
    })
}

/// Assess an appointment, checking it in when `auto_check_in` and all is in order.
fn assess_and_act(
    conn: &mut Connection,
    appointment: CounterAppointment,
    ticket_slot: Option<(Date, Time)>,
    auto_check_in: bool,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Outcome, StoreError> {
    let (zone, local) = local_now(conn, now)?;
    let window = store::checkin_window(conn)?;
    let (_, booked_time) = store::slot_of(&appointment)?;
    let checked_in = appointment
        .checked_in_at
        .map(|t| t.to_zoned(zone.clone()).strftime("%H:%M").to_string())
        .unwrap_or_default();
    let assessment = assess(
        &appointment,
        booked_time,
        ticket_slot,
        local,
        window,
        || checked_in.clone(),
    );
    if auto_check_in && assessment.checks_in() {
        return Ok(
            match store::take_step(conn, &appointment.id, Step::CheckIn, now, actor, source)? {
                Ok(updated) => Outcome {
                    tone: "success",
                    headline: "Presenza registrata".into(),
                    detail: describe(&assessment),
                    appointment: Some(shown(&updated)),
                    may_override: false,
                },
                Err(e) => refusal("Operazione non riuscita", &e.to_string()),
            },
        );
    }
    let tone = match assessment {
        Assessment::OnTime | Assessment::AlreadyCheckedIn { .. } => "info",
        Assessment::Cancelled { .. } => "danger",
        _ => "warning",
    };
    let headline = match &assessment {
        Assessment::OnTime => "Prenotazione in orario",
        Assessment::AlreadyCheckedIn { .. } => "Già presente",
        Assessment::AlreadyDelivered => "Già consegnato",
        Assessment::Cancelled { .. } => "Prenotazione annullata",
        Assessment::Relocated { .. } => "Appuntamento spostato",
        Assessment::WrongDay { .. } => "Giorno sbagliato",
        Assessment::TooEarly { .. } => "In anticipo",
        Assessment::TooLate { .. } => "In ritardo",
    };
    Ok(Outcome {
        tone,
        headline: headline.into(),
        detail: describe(&assessment),
        may_override: assessment.may_override() || assessment == Assessment::OnTime,
        appointment: Some(shown(&appointment)),
    })
}

#[derive(Debug, Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    scan: String,
}

pub async fn scan(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<ScanForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let result = state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let outcome = match read_scan(conn, &form.scan, now)? {
                Ok((appointment, slot)) => {
                    assess_and_act(conn, appointment, slot, true, now, &actor, &source)?
                }
                Err(outcome) => outcome,
            };
            Ok::<_, StoreError>((local, outcome))
        })
        .await;
    match result {
        Ok((local, outcome)) => {
            if outcome.tone == "success" {
                state.counter_changed();
            }
            checkin(staff, italian_date(local.date()), Some(outcome)).into_response()
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    #[serde(default)]
    q: String,
}

/// Manual lookup: a booking code opens that booking; anything else searches names, today first.
pub async fn lookup(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<LookupQuery>,
) -> Response {
    let now = state.clock.now();
    let q = query.q.trim().to_owned();
    if let Some(code) = booking_code::normalise(&q) {
        let found = state.db.call(move |conn| store::by_code(conn, &code)).await;
        match found {
            Ok(Some(a)) => {
                return Redirect::to(&format!("/counter/appointments/{}", a.id)).into_response();
            }
            Ok(None) => {}
            Err(e) => return internal_error(e),
        }
    }
    let typed = q.clone();
    let found = state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let today = store::search_by_name(conn, Some(local.date()), &typed)?;
            let matches = if today.is_empty() {
                store::search_by_name(conn, None, &typed)?
            } else {
                today
            };
            Ok::<_, StoreError>((local, matches))
        })
        .await;
    match found {
        Ok((local, matches)) => {
            let outcome = matches.is_empty().then(|| {
                refusal(
                    "Nessun risultato",
                    "Nessuna prenotazione corrisponde alla ricerca.",
                )
            });
            let mut page = checkin(staff, italian_date(local.date()), outcome);
            page.query = q;
            page.matches = matches.iter().map(shown).collect();
            page.into_response()
        }
        Err(e) => internal_error(e),
    }
}

pub async fn appointment_page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
) -> Response {
    let now = state.clock.now();
    let actor = staff.actor();
    let result = state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let outcome = match store::by_id(conn, &id)? {
                Some(a) => assess_and_act(conn, a, None, false, now, &actor, "")?,
                None => refusal(
                    "Prenotazione sconosciuta",
                    "Nessuna prenotazione con questo identificativo.",
                ),
            };
            Ok::<_, StoreError>((local, outcome))
        })
        .await;
    match result {
        Ok((local, outcome)) => {
            checkin(staff, italian_date(local.date()), Some(outcome)).into_response()
        }
        Err(e) => internal_error(e),
    }
}

/// Check in (also overriding a warning), deliver, or mark absent.
pub async fn take_step(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, step)): Path<(String, String)>,
) -> Response {
    let step = match step.as_str() {
        "check-in" => Step::CheckIn,
        "deliver" => Step::Deliver,
        "no-show" => Step::NoShow,
        _ => {
            return message(
                StatusCode::NOT_FOUND,
                "Pagina non trovata",
                "Operazione sconosciuta.",
            );
        }
    };
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let result = state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let outcome = match store::take_step(conn, &id, step, now, &actor, &source)? {
                Ok(updated) => Outcome {
                    tone: "success",
                    headline: match step {
                        Step::CheckIn => "Presenza registrata",
                        Step::Deliver => "Permesso consegnato",
                        Step::NoShow => "Segnato come assente",
                    }
                    .into(),
                    detail: String::new(),
                    appointment: Some(shown(&updated)),
                    may_override: false,
                },
                Err(e) => refusal("Operazione non riuscita", &e.to_string()),
            };
            Ok::<_, StoreError>((local, outcome))
        })
        .await;
    match result {
        Ok((local, outcome)) => {
            state.counter_changed();
            // A delivered permit leaves the ready list the kiosks check.
            if step == Step::Deliver
                && let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await
            {
                return internal_error(e);
            }
            checkin(staff, italian_date(local.date()), Some(outcome)).into_response()
        }
        Err(e) => internal_error(e),
    }
}

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
    pub status: String,
    pub status_key: String,
}

fn day_row(a: &CounterAppointment) -> DayRow {
    DayRow {
        id: a.id.clone(),
        time: a.time.clone(),
        service: a.service_name.clone(),
        name: format!("{} {}", a.surname.to_uppercase(), a.given_names),
        code: a.booking_code.clone(),
        partner: a.partner_name.clone().unwrap_or_else(|| "Questura".into()),
        status: status_label(&a.status).into(),
        status_key: a.status.clone(),
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

async fn load_day(state: &AppState, query: DayQuery) -> Result<Day, StoreError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let date = query.date.parse::<Date>().unwrap_or(local.date());
            let services: Vec<(String, String)> = crate::store::agenda::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect();
            let service = services
                .iter()
                .find(|(id, _)| *id == query.service)
                .map(|(id, _)| id.clone());
            let all = store::day(conn, date, service.as_deref())?;
            let mut counts = Counts::default();
            for a in &all {
                match a.status.as_str() {
                    "booked" => counts.booked += 1,
                    "checked_in" => counts.checked_in += 1,
                    "delivered" => counts.delivered += 1,
                    "no_show" => counts.no_show += 1,
                    _ => counts.cancelled += 1,
                }
            }
            let appointments: Vec<CounterAppointment> = all
                .into_iter()
                .filter(|a| query.status.is_empty() || a.status == query.status)
                .collect();
            let rows = appointments.iter().map(day_row).collect();
            let questura = crate::store::agenda::questura(conn)?
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
    pub staff: Option<Staff>,
    pub csrf: String,
    pub day: Day,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/day_rows.html")]
pub struct DayRows {
    pub day: Day,
}

pub async fn day_page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<DayQuery>,
) -> Response {
    match load_day(&state, query).await {
        Ok(day) => DayPage {
            csrf: staff.csrf_token.clone(),
            staff: Some(staff),
            day,
        }
        .into_response(),
        Err(e) => internal_error(e),
    }
}

/// The live part of the day view, fetched again whenever an event says something changed.
pub async fn day_rows(State(state): State<AppState>, Query(query): Query<DayQuery>) -> Response {
    match load_day(&state, query).await {
        Ok(day) => DayRows { day }.into_response(),
        Err(e) => internal_error(e),
    }
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
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
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
pub async fn mark_no_shows(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<NoShowForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let result = state
        .db
        .call(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let date = form.date.parse::<Date>().unwrap_or(local.date());
            let (_, late) = store::checkin_window(conn)?;
            let cut_off = if date < local.date() {
                "24:00".to_owned()
            } else if date == local.date() {
                let cut = local - coper_shared::jiff::SignedDuration::from_mins(late);
                if cut.date() < date {
                    "00:00".to_owned()
                } else {
                    cut.strftime("%H:%M").to_string()
                }
            } else {
                "00:00".to_owned()
            };
            let marked = store::mark_no_shows(conn, date, &cut_off, now, &actor, &source)?;
            Ok::<_, StoreError>((date, marked))
        })
        .await;
    match result {
        Ok((date, _)) => {
            state.counter_changed();
            Redirect::to(&format!("/counter/day?date={date}")).into_response()
        }
        Err(e) => internal_error(e),
    }
}

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
            .filter(|a| &a.service_id == id && a.status != "cancelled")
            .map(day_row)
            .collect();
        if !rows.is_empty() || day.service == *id {
            groups.push((name.clone(), rows));
        }
    }
    groups
}

pub async fn day_list(State(state): State<AppState>, Query(query): Query<DayQuery>) -> Response {
    match load_day(&state, query).await {
        Ok(day) => {
            let groups = by_service(&day);
            DayListPage { day, groups }.into_response()
        }
        Err(e) => internal_error(e),
    }
}

pub async fn day_list_pdf(
    State(state): State<AppState>,
    Query(query): Query<DayQuery>,
) -> Response {
    let day = match load_day(&state, query).await {
        Ok(day) => day,
        Err(e) => return internal_error(e),
    };
    let groups = by_service(&day);
    let pages: Vec<super::daylist::Section> = groups
        .iter()
        .map(|(service, rows)| super::daylist::Section {
            service: service.clone(),
            rows: rows
                .iter()
                .map(|r| super::daylist::Line {
                    time: r.time.clone(),
                    name: r.name.clone(),
                    code: r.code.clone(),
                    partner: r.partner.clone(),
                })
                .collect(),
        })
        .collect();
    let title = day.title.clone();
    let questura = day.questura.clone();
    let date = day.date;
    let pdf =
        tokio::task::spawn_blocking(move || super::daylist::render(&questura, &title, &pages))
            .await;
    match pdf {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"elenco-{date}.pdf\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => internal_error(e),
        Err(e) => internal_error(e),
    }
}
