//! The agenda's public queries: services, the first free slot, "another day" options, and free
//! places per day. Read-only, no login: a partner office, the public site and other tools call them.

use axum::{Json, extract::State};
use coper_shared::{
    agenda::{Agenda, ClosedReason, DayAvailability, DaySummary, FreeSlot, Unbookable},
    holidays::HolidayCalendar,
    rules::hh_mm,
};
use jiff::{
    Timestamp, ToSpan,
    civil::{Date, DateTime},
    tz::TimeZone,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiPath, ApiQuery, AppState, error::ApiError, error::ErrorBody};
use crate::store::{self, Connection, services::Service, settings::Questura};

/// The most options one "another day" request returns.
pub const MAX_OPTIONS: usize = 31;
/// The longest range of days one calendar request covers.
pub const MAX_DAYS: i32 = 366;

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDto {
    /// Stable identifier, used in every other agenda URL.
    #[schema(example = "consegna-pse")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// What to bring to the appointment, in Italian.
    pub what_to_bring: String,
    /// How many days ahead one may book.
    pub horizon_days: u16,
    /// How many minutes ahead of its start a slot may still be booked.
    pub lead_minutes: u32,
}

/// A bookable slot with its free places.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotDto {
    #[schema(example = "2026-11-24", format = Date)]
    pub date: String,
    /// Wall-clock start in the Questura's time zone.
    #[schema(example = "09:00")]
    pub start: String,
    #[schema(example = "09:10")]
    pub end: String,
    /// The same start as an instant with its UTC offset.
    #[schema(example = "2026-11-24T09:00:00+01:00", format = DateTime)]
    pub starts_at: String,
    pub places: u16,
    pub free: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FirstFreeResponse {
    pub service: String,
    /// The first free slot, or null when none is left before the booking horizon.
    pub slot: Option<SlotDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionsResponse {
    pub service: String,
    /// The first free slot of each of the next days that have one, in date order.
    pub options: Vec<SlotDto>,
}

/// Why a day has no bookable place, when it has none.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayReasonDto {
    /// `holiday`, `closure` or `not_opening_day` for closed days; `full`, `past`, `too_soon` or
    /// `beyond_horizon` for open days that cannot be booked.
    #[schema(example = "holiday")]
    pub code: String,
    /// The holiday's code when `code` is `holiday`, e.g. `republic_day`, `patron_saint`.
    pub holiday: Option<String>,
    /// In Italian, for people: the holiday's name, the closure's note, …
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayDto {
    #[schema(example = "2026-12-08", format = Date)]
    pub date: String,
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub weekday: i8,
    /// `bookable`, `closed`, or `unbookable` (open, but with no place that can be booked now).
    #[schema(example = "bookable")]
    pub status: String,
    /// Places of all the day's slots; 0 when closed.
    pub places: u32,
    pub taken: u32,
    /// Free places in the slots that can still be booked now.
    pub free: u32,
    pub reason: Option<DayReasonDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DaysResponse {
    pub service: String,
    pub days: Vec<DayDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FromQuery {
    /// Where to start looking: a date (`2026-11-24`), a wall-clock time in the Questura's zone
    /// (`2026-11-24T10:30`) or an instant (`2026-11-24T09:30:00Z`). Defaults to now.
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OptionsQuery {
    /// As for `first-free`; "another day" usually starts the day after the first offer.
    pub from: Option<String>,
    /// How many days to offer, 1 to 31 (default 10, as PrenotaFacile shows).
    pub count: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// First day, `YYYY-MM-DD` (default: today).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive (default: 30 days after `from`); at most 366 days.
    pub to: Option<String>,
}

/// List the services that can be booked.
#[utoipa::path(get, path = "/api/v1/services", tag = "agenda",
    responses((status = 200, body = [ServiceDto])))]
pub async fn list_services(
    State(state): State<AppState>,
) -> Result<Json<Vec<ServiceDto>>, ApiError> {
    let services = state
        .db
        .read(|conn| store::services::services(conn).map_err(ApiError::from))
        .await?;
    Ok(Json(services.iter().map(service_dto).collect()))
}

/// The first free slot of a service at or after `from`.
#[utoipa::path(get, path = "/api/v1/services/{id}/first-free", tag = "agenda",
    params(("id" = String, Path, description = "Service id"), FromQuery),
    responses((status = 200, body = FirstFreeResponse),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn first_free(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FromQuery>,
) -> Result<Json<FirstFreeResponse>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .read(move |conn| {
            let (questura, service) = load(conn, &id)?;
            let from = parse_from(query.from.as_deref(), &questura.time_zone, now)?;
            let agenda = Agenda::new(&service.rules, &questura.holidays, &questura.time_zone);
            let taken = taken_for_window(conn, &service, &agenda, now, from.date())?;
            let slot = agenda
                .first_free(&taken, now, from)
                .map(|f| slot_dto(&agenda, &f));
            Ok(Json(FirstFreeResponse { service: id, slot }))
        })
        .await
}

/// "Another day": the first free slot on each of the next `count` days that have one.
#[utoipa::path(get, path = "/api/v1/services/{id}/options", tag = "agenda",
    params(("id" = String, Path, description = "Service id"), OptionsQuery),
    responses((status = 200, body = OptionsResponse),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn options(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<OptionsQuery>,
) -> Result<Json<OptionsResponse>, ApiError> {
    let count = query.count.unwrap_or(10);
    if count == 0 || count > MAX_OPTIONS {
        return Err(ApiError::bad_request(
            "invalid_count",
            format!("«count» deve essere tra 1 e {MAX_OPTIONS}"),
        ));
    }
    let now = state.clock.now();
    state
        .db
        .read(move |conn| {
            let (questura, service) = load(conn, &id)?;
            let from = parse_from(query.from.as_deref(), &questura.time_zone, now)?;
            let agenda = Agenda::new(&service.rules, &questura.holidays, &questura.time_zone);
            let taken = taken_for_window(conn, &service, &agenda, now, from.date())?;
            let options = agenda
                .options(&taken, now, from, count)
                .iter()
                .map(|f| slot_dto(&agenda, f))
                .collect();
            Ok(Json(OptionsResponse {
                service: id,
                options,
            }))
        })
        .await
}

/// Each day from `from` to `to` with its places, free places and, when it cannot be booked, why.
#[utoipa::path(get, path = "/api/v1/services/{id}/days", tag = "agenda",
    params(("id" = String, Path, description = "Service id"), DaysQuery),
    responses((status = 200, body = DaysResponse),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn days(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DaysQuery>,
) -> Result<Json<DaysResponse>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .read(move |conn| {
            let (questura, service) = load(conn, &id)?;
            let today = now.to_zoned(questura.time_zone.clone()).date();
            let from = match query.from.as_deref() {
                Some(text) => parse_date("from", text)?,
                None => today,
            };
            let to = match query.to.as_deref() {
                Some(text) => parse_date("to", text)?,
                None => from.saturating_add(30.days()),
            };
            if to < from {
                return Err(ApiError::bad_request(
                    "invalid_range",
                    "«to» non può precedere «from»",
                ));
            }
            if from
                .until(to)
                .map(|span| span.get_days())
                .unwrap_or(i32::MAX)
                >= MAX_DAYS
            {
                return Err(ApiError::bad_request(
                    "range_too_large",
                    format!("si possono chiedere al massimo {MAX_DAYS} giorni per volta"),
                ));
            }
            let agenda = Agenda::new(&service.rules, &questura.holidays, &questura.time_zone);
            let taken = store::slots::taken_between(conn, &service.id, from, to)?;
            let days = agenda
                .days(&taken, now, from, to)
                .iter()
                .map(|d| day_dto(d, &questura.holidays))
                .collect();
            Ok(Json(DaysResponse { service: id, days }))
        })
        .await
}

fn load(conn: &Connection, id: &str) -> Result<(Questura, Service), ApiError> {
    let questura = store::settings::questura(conn)?.ok_or(ApiError::NotConfigured)?;
    let service = store::services::service(conn, id)?
        .ok_or_else(|| ApiError::UnknownService(id.chars().take(60).collect()))?;
    Ok((questura, service))
}

/// Places taken from `from` to the end of the booking window: all the engine may look at.
fn taken_for_window(
    conn: &Connection,
    service: &Service,
    agenda: &Agenda<'_>,
    now: Timestamp,
    from: Date,
) -> Result<coper_shared::agenda::TakenPlaces, ApiError> {
    let window = agenda.window(now);
    Ok(store::slots::taken_between(
        conn,
        &service.id,
        from,
        window.last_date,
    )?)
}

/// Read a `from` parameter: a date, a wall-clock time in `tz`, or an instant with an offset.
pub fn parse_from(text: Option<&str>, tz: &TimeZone, now: Timestamp) -> Result<DateTime, ApiError> {
    let Some(text) = text.map(str::trim) else {
        return Ok(now.to_zoned(tz.clone()).datetime());
    };
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant.to_zoned(tz.clone()).datetime());
    }
    if text.contains('T') {
        if let Ok(local) = text.parse::<DateTime>() {
            return Ok(local);
        }
    } else if let Ok(date) = text.parse::<Date>() {
        return Ok(date.to_datetime(jiff::civil::Time::midnight()));
    }
    Err(ApiError::bad_request(
        "invalid_from",
        format!(
            "«from» non valido ({}): usare una data AAAA-MM-GG, un orario locale AAAA-MM-GGTHH:MM \
             o un istante RFC 3339",
            text.chars().take(40).collect::<String>()
        ),
    ))
}

fn parse_date(name: &str, text: &str) -> Result<Date, ApiError> {
    text.trim().parse::<Date>().map_err(|_| {
        ApiError::bad_request(
            "invalid_date",
            format!(
                "«{name}» non è una data valida ({}): usare AAAA-MM-GG",
                text.chars().take(40).collect::<String>()
            ),
        )
    })
}

fn service_dto(service: &Service) -> ServiceDto {
    ServiceDto {
        id: service.id.to_string(),
        name: service.name.clone(),
        description: service.description.clone(),
        what_to_bring: service.what_to_bring.clone(),
        horizon_days: service.rules.horizon_days(),
        lead_minutes: service.rules.lead_minutes(),
    }
}

fn slot_dto(agenda: &Agenda<'_>, free: &FreeSlot) -> SlotDto {
    let starts_at = agenda
        .start_instant(&free.slot)
        .map(|t| {
            t.to_zoned(agenda.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default();
    SlotDto {
        date: free.slot.date.to_string(),
        start: hh_mm(free.slot.start),
        end: hh_mm(free.slot.end),
        starts_at,
        places: free.slot.places,
        free: free.free,
    }
}

fn day_dto(day: &DaySummary, holidays: &HolidayCalendar) -> DayDto {
    let (status, reason) = match &day.availability {
        DayAvailability::Bookable => ("bookable", None),
        DayAvailability::Closed { reason } => ("closed", Some(closed_reason(reason, holidays))),
        DayAvailability::Unbookable { reason } => {
            let (code, label) = match reason {
                Unbookable::Full => ("full", "completo"),
                Unbookable::Past => ("past", "giorno passato"),
                Unbookable::TooSoon => ("too_soon", "troppo vicino: serve più preavviso"),
                Unbookable::BeyondHorizon => ("beyond_horizon", "oltre il periodo prenotabile"),
            };
            (
                "unbookable",
                Some(DayReasonDto {
                    code: code.into(),
                    holiday: None,
                    label: label.into(),
                }),
            )
        }
    };
    DayDto {
        date: day.date.to_string(),
        weekday: day.date.weekday().to_monday_one_offset(),
        status: status.into(),
        places: day.places,
        taken: day.taken,
        free: day.free,
        reason,
    }
}

fn closed_reason(reason: &ClosedReason, holidays: &HolidayCalendar) -> DayReasonDto {
    match reason {
        ClosedReason::Holiday { holiday } => DayReasonDto {
            code: "holiday".into(),
            holiday: Some(holiday.code().into()),
            label: holidays.holiday_name(*holiday),
        },
        ClosedReason::Closure { note } => DayReasonDto {
            code: "closure".into(),
            holiday: None,
            label: if note.is_empty() {
                "chiuso".into()
            } else {
                note.clone()
            },
        },
        ClosedReason::NotOpeningDay => DayReasonDto {
            code: "not_opening_day".into(),
            holiday: None,
            label: "servizio non aperto in questo giorno".into(),
        },
    }
}
