//! `coper-server`: the Questura's central server. It owns the truth (SQLite), answers the agenda's
//! queries over HTTP, syncs with kiosks, and serves the staff's pages.
//!
//! `main.rs` only parses the command line and calls [`run`]. Tests call [`app`] and [`serve`] with a
//! listener bound to port 0, so they run exactly the code production runs.

pub mod accounts;
pub mod agenda_change;
pub mod api;
pub mod clock;
pub mod config;
pub mod counter;
pub mod demo;
pub mod import;
pub mod status;
pub mod store;
pub mod sync;
pub mod web;

use std::future::Future;

use anyhow::Context;
use axum::{Router, routing::get};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::{
    clock::Clock,
    config::{Cli, Command, ServeConfig},
    store::Db,
};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub sync: sync::SyncHub,
    /// Bumped when the counter changes an appointment's status: the live day view listens.
    pub counter_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The public status check's rate limits.
    pub status_limits: std::sync::Arc<status::Limits>,
    /// Login attempts per address (the lock-out per account comes on top).
    pub login_limits: std::sync::Arc<status::AddressLimiter>,
}

impl AppState {
    pub fn new(db: Db, clock: Clock) -> Self {
        let sync = sync::SyncHub::new(db.clone(), clock, sync::SyncConfig::default());
        Self {
            db,
            clock,
            sync,
            counter_changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            status_limits: std::sync::Arc::default(),
            login_limits: std::sync::Arc::new(status::per_address_per_minute(20)),
        }
    }

    /// Tell the live views that the counter changed an appointment.
    pub fn counter_changed(&self) {
        self.counter_changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::health))
        .route("/api/v1/sync", get(sync::ws::upgrade))
        .nest("/api/v1", api::router())
        .merge(web::pages().into_router())
        .layer(axum::Extension(state.clone()))
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

/// Entry point of the `coper-server` binary.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = ServeConfig::from_args(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(run_serve(config))
        }
        Command::KioskCode(args) => {
            let db = open_db(&args.data_dir)?;
            for _ in 0..args.count.max(1) {
                let code = db.call_blocking(|conn| {
                    sync::enrol::issue_code(
                        conn,
                        args.partner,
                        &args.label,
                        args.valid_days,
                        jiff::Timestamp::now(),
                        "cli",
                    )
                })??;
                println!("{code}");
            }
            Ok(())
        }
        Command::CreateAdmin(args) => create_account(&args, accounts::Role::Admin),
        Command::CreateUser(args) => create_account(
            &args.account,
            accounts::Role::parse(&args.role).context("unknown role")?,
        ),
        Command::ImportReady(args) => {
            let bytes = std::fs::read(&args.file)
                .with_context(|| format!("cannot read {}", args.file.display()))?;
            let rows = match import::parse(&bytes) {
                Ok(rows) => rows,
                Err(errors) => {
                    for error in &errors {
                        eprintln!("{error}");
                    }
                    anyhow::bail!(
                        "{} righe non valide: nulla è stato importato ({} invalid rows: nothing imported)",
                        errors.len(),
                        errors.len()
                    );
                }
            };
            let db = open_db(&args.data_dir)?;
            let report =
                db.call_blocking(|conn| import::apply(conn, &rows, jiff::Timestamp::now(), "cli"))?;
            println!(
                "aggiunti {}, aggiornati {}, invariati {} (added, updated, unchanged)",
                report.added, report.updated, report.unchanged
            );
            Ok(())
        }
        Command::KioskRevoke(args) => {
            let db = open_db(&args.data_dir)?;
            let now = jiff::Timestamp::now();
            // A kiosk id is a UUID; anything else is taken for an unused enrolment code.
            if args.kiosk.parse::<uuid::Uuid>().is_ok() {
                db.call_blocking(|conn| sync::enrol::revoke(conn, &args.kiosk, now, "cli"))??;
                println!("kiosk {} revoked", args.kiosk);
            } else {
                db.call_blocking(|conn| sync::enrol::revoke_code(conn, &args.kiosk, now, "cli"))??;
                println!("enrolment code withdrawn");
            }
            Ok(())
        }
    }
}

/// `create-admin` and `create-user`: the password from `COPER_ADMIN_PASSWORD` or standard input.
fn create_account(args: &config::CreateAdminArgs, role: accounts::Role) -> anyhow::Result<()> {
    let password = match std::env::var("COPER_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let db = open_db(&args.data_dir)?;
    let id = db.call_blocking(|conn| {
        accounts::create_user(
            conn,
            &args.username,
            &args.display_name,
            &password,
            role,
            None,
            jiff::Timestamp::now(),
            "cli",
        )
    })??;
    let what = match role {
        accounts::Role::Admin => "amministratore",
        _ => "utente",
    };
    println!("{what} «{}» creato (id {id})", args.username.trim());
    Ok(())
}

fn open_db(data_dir: &std::path::Path) -> anyhow::Result<Db> {
    let path = data_dir.join(config::DATABASE_FILE);
    anyhow::ensure!(
        path.exists(),
        "no database at {}: start `coper-server serve --data-dir {}` once first",
        path.display(),
        data_dir.display()
    );
    Db::open(&path).with_context(|| format!("cannot open the database {}", path.display()))
}

async fn run_serve(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let db_path = config.database_path();
    let db = Db::open(&db_path)
        .with_context(|| format!("cannot open the database {}", db_path.display()))?;
    if config.demo {
        let now = config.clock.now();
        match db.call_blocking(|conn| demo::seed(conn, now))? {
            demo::Seeded::Now {
                ready_permits,
                appointments,
            } => tracing::info!(ready_permits, appointments, "demo data seeded"),
            demo::Seeded::AlreadySetUp => {
                tracing::info!("database already set up: demo data not seeded")
            }
        }
    }
    // Handlers first: a SIGTERM that arrives as soon as the address is printed must already
    // mean a graceful shutdown.
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    // Printed, not only logged: scripts and tests read the actual port from here.
    println!("coper-server listening on http://{local}");
    tracing::info!(%local, data_dir = %config.data_dir.display(), "serving");
    let state = AppState::new(db, config.clock);
    serve(listener, state, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM (systemd, container runtimes). The
/// handlers are installed when this is called, not when the future is first polled.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown requested: finishing requests in flight");
    })
}
