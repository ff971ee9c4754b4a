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
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod memory;
pub mod metrics;
pub mod notices;
pub mod ops;
pub mod precheck;
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
    /// Where the notices to people go (the log unless `[notices]` configures gateways).
    pub sender: std::sync::Arc<notices::Sender>,
    /// Where the document pre-check keeps the files people send (`serve`: the data folder's
    /// `precheck/`).
    pub precheck_dir: std::sync::Arc<std::path::PathBuf>,
    /// Who may read `/metrics`.
    pub metrics_access: std::sync::Arc<metrics::MetricsAccess>,
    /// The data folder (`serve`), for the readiness check's free space and the backup's age.
    pub data_dir: Option<std::sync::Arc<std::path::Path>>,
    /// Where people, staff and kiosks reach the server (`public_origin`), when configured: a
    /// browser's `Origin` must match it, and links are built on it.
    pub public_origin: Option<std::sync::Arc<str>>,
    /// Bumped when a pre-check conversation moves: the staff's inbox listens.
    pub precheck_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Messages and files through the person's page, per link and per network.
    pub precheck_limits: std::sync::Arc<(status::AddressLimiter, precheck::TokenLimiter)>,
}

impl AppState {
    pub fn new(db: Db, clock: Clock) -> Self {
        Self::with_limits(db, clock, limits::Limits::default())
    }

    pub fn with_limits(db: Db, clock: Clock, limits: limits::Limits) -> Self {
        let per_minute = limits.precheck_per_minute;
        let mut sync = sync::SyncHub::new(
            db.clone(),
            clock,
            sync::SyncConfig {
                requests: limits.requests,
                outbox_bytes: limits.outbox_bytes,
                ..sync::SyncConfig::default()
            },
        );
        sync.sandbox = limits.sync_sandbox.clone().map(sync::sandbox::Sandbox::new);
        Self {
            db,
            clock,
            sync,
            counter_changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            status_limits: std::sync::Arc::default(),
            login_limits: std::sync::Arc::new(status::per_address_per_minute(20)),
            sync_gate: std::sync::Arc::new(limits::SyncGate::new(&limits)),
            limits,
            sender: std::sync::Arc::new(notices::Sender::log()),
            precheck_dir: std::sync::Arc::new(precheck::folder(&std::env::temp_dir())),
            public_origin: None,
            metrics_access: std::sync::Arc::default(),
            data_dir: None,
            precheck_changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            precheck_limits: std::sync::Arc::new((
                status::per_address_per_minute(per_minute),
                precheck::per_token_per_minute(per_minute),
            )),
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
        } else if changes.appointments {
            // A counter step: the partner bodies' kiosks show it in their lists.
            self.sync.republish_bookings().await?;
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
        .route("/healthz/ready", get(metrics::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/sync", get(sync::ws::upgrade))
        .nest("/api/v1", api::router())
        .merge(web::pages().into_router(&state))
        .layer(
            // Log method and path only: query strings may one day carry what a person typed.
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_failure(log_failure),
        )
        .with_state(state)
}

/// A response the server failed to give, logged as an error; but `503`, which is the server
/// saying on purpose "not now" (too many kiosks starting at once, not ready, not set up yet),
/// each with a warning of its own where it is decided: under a reconnect storm hundreds of them
/// are expected, and an administrator must not read them as failures.
fn log_failure(
    failure: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    let latency = latency.as_millis();
    match failure {
        ServerErrorsFailureClass::StatusCode(axum::http::StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms = latency, "service unavailable (503)")
        }
        other => tracing::error!(classification = %other, latency_ms = latency, "response failed"),
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then finish the requests in flight.
///
/// One HTTP/1.1 connection per accepted socket, with a timer so that a client that trickles its
/// headers, or an idle connection, is closed after [`limits::Limits::http_header_read`] (axum's
/// own `serve` sets no such timeout), and a body that takes longer than
/// [`limits::Limits::http_body`] fails to read.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let (header_read, body_time) = (state.limits.http_header_read, state.limits.http_body);
    let trusted: std::sync::Arc<[ipnet::IpNet]> = state.limits.trusted_proxies.clone().into();
    let router = app(state);
    // Connections learn of the shutdown through `stop`; the server waits for them through
    // `open` (every connection holds a receiver; `closed` resolves when all are gone).
    let (stop, _) = tokio::sync::watch::channel(());
    let (open, _) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let trusted = trusted.clone();
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                // Every handler and limit sees the real client, also behind our own proxies.
                let forwarded = req.headers().get_all("x-forwarded-for").iter();
                let client =
                    limits::client_address(remote.ip(), forwarded.map(|v| v.as_bytes()), &trusted);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                        client,
                        remote.port(),
                    )));
                // A body trickled past its deadline fails to read: the handler answers 400.
                req.map(|body| {
                    axum::body::Body::new(tower_http::timeout::DeadlineBody::new(body_time, body))
                })
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut stopping = stop.subscribe();
        let still_open = open.subscribe();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(TokioIo::new(socket), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            drop(still_open);
        });
    }
    drop(listener);
    let _ = stop.send(());
    open.closed().await;
    Ok(())
}
