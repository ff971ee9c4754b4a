//! `coper-server`: the Questura's central server. It owns the truth (SQLite), answers the agenda's
//! queries over HTTP, syncs with kiosks, and serves the staff's pages.
//!
//! `main.rs` only parses the command line and calls [`run`] (`cli.rs`). Tests call [`app`] and
//! [`serve`] with a listener bound to port 0, so they run exactly the code production runs.
//! `ARCHITECTURE.md` at the root has the map of the modules below.

pub mod accounts;
pub mod agenda_change;
pub mod api;
pub mod checkin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod import;
pub mod limits;
pub mod ops;
pub mod status;
pub mod store;
pub mod sync;
pub mod web;

use std::future::Future;

use axum::{Router, routing::get};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use crate::cli::run;
use crate::{clock::Clock, store::Db};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub sync: sync::SyncHub,
    /// Bumped when an operation changes appointments: the live day view listens.
    pub counter_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The public status check's rate limits.
    pub status_limits: std::sync::Arc<status::Limits>,
    /// Login attempts per address (the lock-out per account comes on top).
    pub login_limits: std::sync::Arc<status::AddressLimiter>,
    /// What the network may send, and the admission of sync connections.
    pub limits: limits::Limits,
    pub sync_gate: std::sync::Arc<limits::SyncGate>,
}

impl AppState {
    pub fn new(db: Db, clock: Clock) -> Self {
        Self::with_limits(db, clock, limits::Limits::default())
    }

    pub fn with_limits(db: Db, clock: Clock, limits: limits::Limits) -> Self {
        let sync = sync::SyncHub::new(
            db.clone(),
            clock,
            sync::SyncConfig {
                requests: limits.requests,
                ..sync::SyncConfig::default()
            },
        );
        Self {
            db,
            clock,
            sync,
            counter_changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            status_limits: std::sync::Arc::default(),
            login_limits: std::sync::Arc::new(status::per_address_per_minute(20)),
            sync_gate: std::sync::Arc::new(limits::SyncGate::new(&limits)),
            limits,
        }
    }

    /// Run an operation of the service layer ([`ops`]) on the database, then publish what it
    /// changed: the one place where documents are republished and live views told.
    pub async fn perform<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut store::Connection) -> Result<(T, ops::Changes), store::StoreError>
        + Send
        + 'static,
    ) -> Result<T, store::StoreError> {
        let (out, changes) = self.db.call(operation).await?;
        self.publish(changes).await?;
        Ok(out)
    }

    /// Rewrite the documents `changes` names for the kiosks, and tell the live views.
    async fn publish(&self, changes: ops::Changes) -> Result<(), store::StoreError> {
        let live = changes.appointments || !changes.agendas.is_empty();
        if changes.touches_documents() {
            self.sync
                .republish(
                    changes.agendas.into_iter().collect(),
                    changes.inboxes.into_iter().collect(),
                )
                .await?;
        }
        if live {
            self.counter_changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::health))
        .route("/api/v1/sync", get(sync::ws::upgrade))
        .nest("/api/v1", api::router())
        .merge(web::pages().into_router(&state))
        .layer(
            // Log method and path only: query strings may one day carry what a person typed.
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Serve `app` on `listener` until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
