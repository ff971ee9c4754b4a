//! The JSON API under `/api/v1`, and the OpenAPI 3 document that describes it, generated from
//! the handlers' annotations so the two cannot drift apart.
//!
//! These paths are a contract that kiosks, the public site and other tools call: add to them, do
//! not rename them.

pub mod agenda;
pub mod error;

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
        .fallback(|| async { ApiError::NotFound })
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the server is up and its database answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness and readiness: answers `ok` once the database answers a query.
#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .db
        .call(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| ApiError::from(store::StoreError::from(e)))
        })
        .await?;
    Ok(Json(Health { status: "ok" }))
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
        .call(|conn| store::partners::active(conn).map_err(ApiError::from))
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
