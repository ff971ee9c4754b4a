//! The JSON API under `/api/v1`, and the OpenAPI 3 document that describes it, generated from
//! the handlers' annotations so the two cannot drift apart.
//!
//! These paths are a contract that kiosks, the public site and other tools call: add to them, do
//! not rename them.

pub mod agenda;
pub mod error;
pub mod notices;

use axum::{
    Json, Router,
    extract::{FromRequestParts, State},
    routing::get,
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub use crate::AppState;
use crate::store;
use error::{ApiError, ErrorBody, ErrorDetail};

/// Axum's `Query`, with its rejections turned into [`ApiError`]'s JSON.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Axum's `Json` body, with its rejections turned into [`ApiError`]'s JSON.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Axum's `Path`, with its rejections turned into [`ApiError`]'s JSON.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coper API",
        description = "Agenda of the Questura's delivery and fingerprinting appointments.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2")
    ),
    paths(
        health,
        agenda::list_services,
        agenda::first_free,
        agenda::options,
        agenda::days,
        list_partners,
        status_check,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags((name = "agenda", description = "Free slots and days"),
         (name = "public", description = "Public information"))
)]
pub struct ApiDoc;

/// The routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/services", get(agenda::list_services))
        .route("/services/{id}/first-free", get(agenda::first_free))
        .route("/services/{id}/options", get(agenda::options))
        .route("/services/{id}/days", get(agenda::days))
        .route("/partners", get(list_partners))
        .route("/status-check", axum::routing::post(status_check))
        .route(
            "/notices/sms-reply",
            axum::routing::post(notices::sms_reply),
        )
        .fallback(|| async { ApiError::NotFound })
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the server is up.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: `ok` while the process answers. Whether it can do its work (the database takes
/// writes, the disk has room) is `GET /healthz/ready`.
#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A partner body, as published on the home page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerDto {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub phone: String,
    pub email: String,
    /// Opening hours as the partner body states them, in Italian.
    pub opening_hours: String,
}

/// The partner bodies (enti convenzionati) where a delivery can be booked.
#[utoipa::path(get, path = "/api/v1/partners", tag = "public",
    responses((status = 200, body = [PartnerDto])))]
pub async fn list_partners(
    State(state): State<AppState>,
) -> Result<Json<Vec<PartnerDto>>, ApiError> {
    let bodies = state
        .db
        .read(|conn| store::partners::active(conn).map_err(ApiError::from))
        .await?;
    Ok(Json(
        bodies
            .into_iter()
            .map(|b| PartnerDto {
                id: b.id,
                name: b.name,
                address: b.address,
                city: b.city,
                phone: b.phone,
                email: b.email,
                opening_hours: b.opening_hours,
            })
            .collect(),
    ))
}

/// Is a permit ready for delivery? By surname, name, birth date and fingerprinting date, or by
/// receipt or pratica number with the birth date. The same answer shape and time whether or not
/// the person is known; rate-limited per address and per identity.
#[utoipa::path(post, path = "/api/v1/status-check", tag = "public",
    request_body = crate::status::Asked,
    responses((status = 200, body = crate::status::Answer),
              (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn status_check(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    ApiJson(asked): ApiJson<crate::status::Asked>,
) -> Result<Json<crate::status::Answer>, ApiError> {
    use crate::status::Refusal;
    match crate::status::check(&state, peer.ip(), &asked).await {
        Ok(answer) => Ok(Json(answer)),
        Err(Refusal::Invalid(e)) => Err(ApiError::bad_request(e.code(), e.to_string())),
        Err(Refusal::Wait(wait)) => Err(ApiError::TooManyRequests(
            wait.as_secs_f64().ceil().max(1.0) as u64,
        )),
        Err(Refusal::Store(e)) => Err(e.into()),
    }
}
