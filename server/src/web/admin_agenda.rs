//! The administration of the agenda: each service's weekly hours, places, date exceptions,
//! horizon and lead time, edited in a form with a calendar preview before saving; and closing a
//! day that already has bookings, which moves them (see `crate::agenda_change`).

use std::net::SocketAddr;

use axum::{
    Extension,
    extract::{ConnectInfo, Form, Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use coper_shared::{
    agenda::{ClosedReason, DayAvailability, DaySummary, Unbookable},
    ids::ServiceId,
    jiff::civil::{Date, Time, Weekday},
    rules::{
        DateException, ExceptionKind, OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule,
        hh_mm,
    },
};

use super::{internal_error, italian_date, message};
use crate::{
    AppState,
    accounts::Staff,
    agenda_change::{self, Displaced},
    store::{self, StoreError},
};

const WEEKDAYS: [(&str, &str); 7] = [
    ("1", "lunedì"),
    ("2", "martedì"),
    ("3", "mercoledì"),
    ("4", "giovedì"),
    ("5", "venerdì"),
    ("6", "sabato"),
    ("7", "domenica"),
];

/// A weekly row as typed.
#[derive(Debug, Clone, Default)]
pub struct WeeklyRow {
    pub day: String,
    pub start: String,
    pub end: String,
    pub slot: String,
    pub places: String,
}

/// An exception row as typed: a closure, or one range of an open day.
#[derive(Debug, Clone, Default)]
pub struct ExceptionRow {
    pub date: String,
    pub kind: String,
    pub start: String,
    pub end: String,
    pub slot: String,
    pub places: String,
    pub note: String,
}

/// The editor's whole form, as typed.
#[derive(Debug, Clone, Default)]
pub struct Editor {
    pub id: String,
    pub name: String,
    pub description: String,
    pub what_to_bring: String,
    pub horizon_days: String,
    pub lead_minutes: String,
    pub weekly: Vec<WeeklyRow>,
    pub exceptions: Vec<ExceptionRow>,
}

/// Blank rows offered for adding hours or exceptions.
const BLANK_ROWS: usize = 3;

impl Editor {
    fn from_rules(service: &store::agenda::Service) -> Self {
        let draft = service.rules.to_draft();
        let mut weekly: Vec<WeeklyRow> = draft
            .weekly
            .iter()
            .map(|w| WeeklyRow {
                day: w.weekday.to_monday_one_offset().to_string(),
                start: hh_mm(w.range.start),
                end: hh_mm(w.range.end),
                slot: w.range.slot_minutes.to_string(),
                places: w.range.places.to_string(),
            })
            .collect();
        let mut exceptions = Vec::new();
        for e in &draft.exceptions {
            match &e.kind {
                ExceptionKind::Closed { note } => exceptions.push(ExceptionRow {
                    date: e.date.to_string(),
                    kind: "closed".into(),
                    note: note.clone(),
                    ..ExceptionRow::default()
                }),
                ExceptionKind::Open { ranges } => {
                    for r in ranges {
                        exceptions.push(ExceptionRow {
                            date: e.date.to_string(),
                            kind: "open".into(),
                            start: hh_mm(r.start),
                            end: hh_mm(r.end),
                            slot: r.slot_minutes.to_string(),
                            places: r.places.to_string(),
                            note: String::new(),
                        })
                    }
                }
            }
        }
        weekly.extend((0..BLANK_ROWS).map(|_| WeeklyRow::default()));
        exceptions.extend((0..BLANK_ROWS).map(|_| ExceptionRow::default()));
        Self {
            id: service.id.as_str().to_owned(),
            name: service.name.clone(),
            description: service.description.clone(),
            what_to_bring: service.what_to_bring.clone(),
            horizon_days: service.rules.horizon_days().to_string(),
            lead_minutes: service.rules.lead_minutes().to_string(),
            weekly,
            exceptions,
        }
    }

    /// Read the posted form: repeated fields, one value per row, in order.
    fn from_form(id: &str, pairs: &[(String, String)]) -> Self {
        let one = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let all = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let (days, starts, ends, slots, places) = (
            all("w_day"),
            all("w_start"),
            all("w_end"),
            all("w_slot"),
            all("w_places"),
        );
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let mut weekly: Vec<WeeklyRow> = (0..days.len())
            .map(|i| WeeklyRow {
                day: at(&days, i),
                start: at(&starts, i),
                end: at(&ends, i),
                slot: at(&slots, i),
                places: at(&places, i),
            })
            .collect();
        let (dates, kinds, xs, xe, xslot, xplaces, notes) = (
            all("x_date"),
            all("x_kind"),
            all("x_start"),
            all("x_end"),
            all("x_slot"),
            all("x_places"),
            all("x_note"),
        );
        let mut exceptions: Vec<ExceptionRow> = (0..dates.len())
            .map(|i| ExceptionRow {
                date: at(&dates, i),
                kind: at(&kinds, i),
                start: at(&xs, i),
                end: at(&xe, i),
                slot: at(&xslot, i),
                places: at(&xplaces, i),
                note: at(&notes, i),
            })
            .collect();
        // Keep what was typed, drop what was left blank, and offer fresh blank rows again.
        weekly.retain(|w| !(w.start.trim().is_empty() && w.end.trim().is_empty()));
        exceptions.retain(|x| !x.date.trim().is_empty());
        weekly.extend((0..BLANK_ROWS).map(|_| WeeklyRow::default()));
        exceptions.extend((0..BLANK_ROWS).map(|_| ExceptionRow::default()));
        Self {
            id: id.to_owned(),
            name: one("name"),
            description: one("description"),
            what_to_bring: one("what_to_bring"),
            horizon_days: one("horizon_days"),
            lead_minutes: one("lead_minutes"),
            weekly,
            exceptions,
        }
    }

    /// The checked rules, or every mistake found, in Italian, with the row it is on.
    fn rules(&self) -> Result<ServiceRules, Vec<String>> {
        let mut errors = Vec::new();
        let service = ServiceId::parse(&self.id).map_err(|e| vec![e.to_string()])?;
        let time = |text: &str, what: &str, row: usize, errors: &mut Vec<String>| {
            Time::strptime("%H:%M", text.trim())
                .map_err(|_| {
                    errors.push(format!(
                        "riga {row}: {what} «{text}» non è un orario (HH:MM)"
                    ))
                })
                .ok()
        };
        let number = |text: &str, what: &str, row: usize, errors: &mut Vec<String>| {
            text.trim()
                .parse::<u16>()
                .map_err(|_| errors.push(format!("riga {row}: {what} «{text}» non è un numero")))
                .ok()
        };
        let range = |start: &str,
                     end: &str,
                     slot: &str,
                     places: &str,
                     row: usize,
                     errors: &mut Vec<String>| {
            let start = time(start, "l'inizio", row, errors);
            let end = time(end, "la fine", row, errors);
            let slot = number(slot, "la durata dello slot", row, errors);
            let places = number(places, "il numero di posti", row, errors);
            Some(OpeningRange {
                start: start?,
                end: end?,
                slot_minutes: slot?,
                places: places?,
            })
        };
        let mut weekly = Vec::new();
        for (i, w) in self.weekly.iter().enumerate() {
            if w.start.trim().is_empty() && w.end.trim().is_empty() {
                continue;
            }
            let day = w
                .day
                .parse::<i8>()
                .ok()
                .and_then(|d| Weekday::from_monday_one_offset(d).ok());
            let r = range(&w.start, &w.end, &w.slot, &w.places, i + 1, &mut errors);
            match (day, r) {
                (Some(weekday), Some(range)) => weekly.push(WeeklyRule { weekday, range }),
                (None, _) => errors.push(format!("orari, riga {}: scegliere il giorno", i + 1)),
                _ => {}
            }
        }
        let mut exceptions: Vec<DateException> = Vec::new();
        for (i, x) in self.exceptions.iter().enumerate() {
            if x.date.trim().is_empty() {
                continue;
            }
            let Ok(date) = x.date.trim().parse::<Date>() else {
                errors.push(format!(
                    "eccezioni, riga {}: la data «{}» non è valida",
                    i + 1,
                    x.date
                ));
                continue;
            };
            if x.kind == "open" {
                let Some(r) = range(&x.start, &x.end, &x.slot, &x.places, i + 1, &mut errors)
                else {
                    continue;
                };
                match exceptions.iter_mut().find(|e| e.date == date) {
                    Some(DateException {
                        kind: ExceptionKind::Open { ranges },
                        ..
                    }) => ranges.push(r),
                    Some(_) => errors.push(format!("la data {date} è sia chiusa sia aperta")),
                    None => exceptions.push(DateException {
                        date,
                        kind: ExceptionKind::Open { ranges: vec![r] },
                    }),
                }
            } else {
                exceptions.push(DateException {
                    date,
                    kind: ExceptionKind::Closed {
                        note: x.note.trim().to_owned(),
                    },
                });
            }
        }
        let horizon = self.horizon_days.trim().parse::<u16>();
        let lead = self.lead_minutes.trim().parse::<u32>();
        if horizon.is_err() {
            errors.push("l'orizzonte di prenotazione deve essere un numero di giorni".into());
        }
        if lead.is_err() {
            errors.push("il preavviso minimo deve essere un numero di minuti".into());
        }
        if self.name.trim().is_empty() {
            errors.push("il nome del servizio è obbligatorio".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        ServiceRules::new(ServiceRulesDraft {
            service,
            weekly,
            exceptions,
            horizon_days: horizon.unwrap_or_default(),
            lead_minutes: lead.unwrap_or_default(),
        })
        .map_err(|e| vec![e.to_string()])
    }
}

/// A day of the preview calendar.
pub struct PreviewDay {
    pub date: String,
    pub label: String,
    pub places: u32,
    pub free: u32,
    pub state: &'static str,
    pub note: String,
}

fn preview_day(d: &DaySummary) -> PreviewDay {
    let (state, note) = match &d.availability {
        DayAvailability::Bookable => ("open", String::new()),
        DayAvailability::Closed { reason } => (
            "closed",
            match reason {
                ClosedReason::Holiday { holiday } => holiday.italian_name().to_owned(),
                ClosedReason::Closure { note } if !note.is_empty() => format!("chiuso: {note}"),
                ClosedReason::Closure { .. } => "chiuso".to_owned(),
                ClosedReason::NotOpeningDay => String::new(),
            },
        ),
        DayAvailability::Unbookable { reason } => (
            "full",
            match reason {
                Unbookable::Past => "passato",
                Unbookable::TooSoon => "entro il preavviso",
                Unbookable::BeyondHorizon => "oltre l'orizzonte",
                Unbookable::Full => "completo",
            }
            .to_owned(),
        ),
    };
    PreviewDay {
        date: d.date.to_string(),
        label: format!(
            "{} {}",
            &italian_date(d.date)[..3],
            d.date.strftime("%d/%m")
        ),
        places: d.places,
        free: d.free,
        state,
        note,
    }
}

/// A displaced booking, as shown.
pub struct MoveShown {
    pub code: String,
    pub name: String,
    pub partner: String,
    pub from: String,
    pub to: Option<String>,
}

fn move_shown(d: &Displaced) -> MoveShown {
    let slot = |k: coper_shared::agenda::SlotKey| {
        format!("{} alle {}", italian_date(k.date), hh_mm(k.start))
    };
    MoveShown {
        code: d.booking_code.clone(),
        name: d.name.clone(),
        partner: d.partner.clone(),
        from: slot(d.from),
        to: d.to.map(slot),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/service.html")]
pub struct ServicePage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub editor: Editor,
    pub weekdays: Vec<(&'static str, &'static str)>,
    pub errors: Vec<String>,
    pub preview: Option<(Vec<PreviewDay>, Vec<MoveShown>)>,
}

fn service_page(
    staff: Staff,
    editor: Editor,
    errors: Vec<String>,
    preview: Option<(Vec<PreviewDay>, Vec<MoveShown>)>,
) -> ServicePage {
    ServicePage {
        csrf: staff.csrf_token.clone(),
        staff: Some(staff),
        editor,
        weekdays: WEEKDAYS.to_vec(),
        errors,
        preview,
    }
}

/// The editor again, with what is wrong in it.
fn rejected(staff: Staff, editor: Editor, errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        service_page(staff, editor, errors, None),
    )
        .into_response()
}

pub async fn service_editor(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
) -> Response {
    let found = state
        .db
        .call(move |conn| store::agenda::service(conn, &id))
        .await;
    match found {
        Ok(Some(service)) => {
            service_page(staff, Editor::from_rules(&service), Vec::new(), None).into_response()
        }
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            "Servizio sconosciuto",
            "Questo servizio non esiste o non è attivo.",
        ),
        Err(e) => internal_error(e),
    }
}

/// Check the form and show what it would do: the calendar and the bookings that would move.
pub async fn service_preview(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let editor = Editor::from_form(&id, &pairs);
    let rules = match editor.rules() {
        Ok(rules) => rules,
        Err(errors) => return rejected(staff, editor, errors),
    };
    let now = state.clock.now();
    match state
        .db
        .call(move |conn| agenda_change::preview(conn, &rules, now))
        .await
    {
        Ok(plan) => {
            let days = plan.days.iter().map(preview_day).collect();
            let moves = plan.displaced.iter().map(move_shown).collect();
            service_page(staff, editor, Vec::new(), Some((days, moves))).into_response()
        }
        Err(e) => internal_error(e),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/saved.html")]
pub struct SavedPage {
    pub staff: Option<Staff>,
    pub title: String,
    pub moved: Vec<MoveShown>,
    pub back: String,
}

/// After a change of rules: tell the kiosks (directory, agendas, the verdicts of moved bookings)
/// and the live day views, and show what moved.
async fn saved(
    state: &AppState,
    staff: Staff,
    applied: agenda_change::Applied,
    title: String,
    back: String,
) -> Response {
    let moved = applied.displaced.iter().map(move_shown).collect();
    if let Err(e) = state
        .sync
        .republish(
            applied.agendas.into_iter().collect(),
            applied.kiosks.into_iter().collect(),
        )
        .await
    {
        return internal_error(e);
    }
    state.counter_changed();
    SavedPage {
        staff: Some(staff),
        title,
        moved,
        back,
    }
    .into_response()
}

/// Save the service's description and rules, moving the bookings they displace, and tell the
/// kiosks.
pub async fn service_save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let editor = Editor::from_form(&id, &pairs);
    let rules = match editor.rules() {
        Ok(rules) => rules,
        Err(errors) => return rejected(staff, editor, errors),
    };
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let (name, description, bring) = (
        editor.name.trim().to_owned(),
        editor.description.trim().to_owned(),
        editor.what_to_bring.trim().to_owned(),
    );
    let result = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE services SET name = ?2, description = ?3, what_to_bring = ?4 WHERE id = ?1",
                rusqlite::params![rules.service().as_str(), name, description, bring],
            )?;
            let applied = agenda_change::apply(&tx, &rules, now, &actor, &source)?;
            tx.commit()?;
            Ok::<_, StoreError>(applied)
        })
        .await;
    match result {
        Ok(applied) => {
            saved(
                &state,
                staff,
                applied,
                "Orari salvati".into(),
                format!("/admin/services/{id}"),
            )
            .await
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct NewService {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// Create a service with no hours yet; the editor then sets them.
pub async fn service_create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<NewService>,
) -> Response {
    let Ok(id) = ServiceId::parse(form.id.trim()) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Identificativo non valido",
            "L'identificativo del servizio usa lettere minuscole, cifre e trattini (es. consegna-pse).",
        );
    };
    if form.name.trim().is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "Nome mancante",
            "Indicare il nome del servizio.",
        );
    }
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let path = format!("/admin/services/{}", id.as_str());
    let result = state
        .db
        .call(move |conn| {
            let exists: bool = conn.query_row(
                "SELECT count(*) > 0 FROM services WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )?;
            if exists {
                return Ok(false);
            }
            conn.execute(
                "INSERT INTO services (id, name, horizon_days, lead_minutes, sort_order)
                 VALUES (?1, ?2, 60, 60, (SELECT coalesce(max(sort_order), 0) + 1 FROM services))",
                rusqlite::params![id.as_str(), form.name.trim()],
            )?;
            store::audit_from(
                conn,
                now,
                &actor,
                "service.created",
                id.as_str(),
                &serde_json::json!({}),
                &source,
            )?;
            Ok::<_, StoreError>(true)
        })
        .await;
    match result {
        Ok(true) => {
            if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            Redirect::to(&path).into_response()
        }
        Ok(false) => message(
            StatusCode::CONFLICT,
            "Servizio già esistente",
            "Esiste già un servizio con questo identificativo.",
        ),
        Err(e) => internal_error(e),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/close_day.html")]
pub struct CloseDayPage {
    pub staff: Option<Staff>,
    pub csrf: String,
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
    state: &AppState,
    staff: Staff,
    form: CloseDayForm,
    error: Option<String>,
    moves: Option<Vec<MoveShown>>,
) -> Response {
    let services = match state.db.call(|conn| store::agenda::services(conn)).await {
        Ok(services) => services
            .into_iter()
            .map(|s| (s.id.as_str().to_owned(), s.name))
            .collect(),
        Err(e) => return internal_error(e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        CloseDayPage {
            csrf: staff.csrf_token.clone(),
            staff: Some(staff),
            services,
            date: form.date,
            service: form.service,
            note: form.note,
            error,
            moves,
        },
    )
        .into_response()
}

pub async fn close_day_form(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Response {
    close_day_page(&state, staff, CloseDayForm::default(), None, None).await
}

/// The services' rules with `date` closed, or why the date cannot be closed.
fn with_closure(
    conn: &rusqlite::Connection,
    form: &CloseDayForm,
) -> Result<Result<Vec<ServiceRules>, String>, StoreError> {
    let Ok(date) = form.date.trim().parse::<Date>() else {
        return Ok(Err("indicare una data valida".into()));
    };
    let services = store::agenda::services(conn)?;
    let mut out = Vec::new();
    for service in services {
        if !form.service.is_empty() && service.id.as_str() != form.service {
            continue;
        }
        let mut draft = service.rules.to_draft();
        draft.exceptions.retain(|e| e.date != date);
        draft.exceptions.push(DateException {
            date,
            kind: ExceptionKind::Closed {
                note: form.note.trim().to_owned(),
            },
        });
        match ServiceRules::new(draft) {
            Ok(rules) => out.push(rules),
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
    if out.is_empty() {
        return Ok(Err("servizio sconosciuto".into()));
    }
    Ok(Ok(out))
}

/// Show which bookings closing the day would move, and where.
pub async fn close_day_preview(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<CloseDayForm>,
) -> Response {
    let now = state.clock.now();
    let probe = form.clone();
    let result = state
        .db
        .call(move |conn| {
            let rules = match with_closure(conn, &probe)? {
                Ok(rules) => rules,
                Err(e) => return Ok(Err(e)),
            };
            let mut moves = Vec::new();
            for r in &rules {
                moves.extend(agenda_change::preview(conn, r, now)?.displaced);
            }
            Ok::<_, StoreError>(Ok(moves))
        })
        .await;
    match result {
        Ok(Ok(moves)) => {
            let moves = moves.iter().map(move_shown).collect();
            close_day_page(&state, staff, form, None, Some(moves)).await
        }
        Ok(Err(error)) => close_day_page(&state, staff, form, Some(error), None).await,
        Err(e) => internal_error(e),
    }
}

/// Close the day: add the closure to each service, move its bookings, tell the kiosks.
pub async fn close_day(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<CloseDayForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, source) = super::auth::who(&staff, &peer);
    let probe = form.clone();
    let result = state
        .db
        .call(move |conn| {
            let rules = match with_closure(conn, &probe)? {
                Ok(rules) => rules,
                Err(e) => return Ok(Err(e)),
            };
            let tx = conn.transaction()?;
            let mut all = agenda_change::Applied::default();
            for r in &rules {
                let applied = agenda_change::apply(&tx, r, now, &actor, &source)?;
                all.displaced.extend(applied.displaced);
                all.agendas.extend(applied.agendas);
                all.kiosks.extend(applied.kiosks);
            }
            tx.commit()?;
            Ok::<_, StoreError>(Ok(all))
        })
        .await;
    match result {
        Ok(Ok(applied)) => {
            let title = format!("Giorno chiuso: {}", form.date);
            saved(&state, staff, applied, title, "/admin/close-day".into()).await
        }
        Ok(Err(error)) => close_day_page(&state, staff, form, Some(error), None).await,
        Err(e) => internal_error(e),
    }
}
