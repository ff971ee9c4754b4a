//! The command line: `serve` and the administrator's commands (`kiosk-code`, `kiosk-revoke`,
//! `create-admin`, `create-user`, `import-ready`, `ready-list`). Each command is a thin shell: it opens the
//! database and runs the same operations (`crate::ops`) the pages run. Their changes are not
//! published (no hub runs here): a running server rewrites every projection from SQLite on each
//! kiosk's next connection.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    AppState, accounts,
    config::{self, Cli, Command, ServeConfig},
    demo, import,
    ops::{self, Actor},
    serve,
    store::Db,
};

/// Entry point of the `coper-server` binary.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckChanges => crate::sync::sandbox::check_changes_from_stdin(),
        Command::Serve(args) => {
            let config = ServeConfig::from_args(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .max_blocking_threads(crate::limits::BLOCKING_THREADS)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(run_serve(config))
        }
        Command::KioskCode(args) => {
            let db = open_db(&args.data_dir)?;
            for _ in 0..args.count.max(1) {
                let by = Actor::cli(jiff::Timestamp::now());
                let (code, _) = db.call_blocking(|conn| {
                    ops::kiosks::issue_code(conn, &by, args.partner, &args.label, args.valid_days)
                })?;
                let code = code?;
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
            let by = Actor::cli(jiff::Timestamp::now());
            let births = rows.iter().map(|r| r.birth_date.clone());
            let (stretch, missing) =
                db.call_blocking(|conn| import::births_to_stretch(conn, births, by.now))?;
            let stretched = import::stretch_births(&stretch, missing);
            let (report, _) =
                db.call_blocking(|conn| ops::ready::import(conn, &by, &rows, &stretched))?;
            println!(
                "aggiunti {}, aggiornati {}, invariati {} (added, updated, unchanged)",
                report.added, report.updated, report.unchanged
            );
            Ok(())
        }
        Command::ReadyList(args) => ready_list(args),
        Command::Backup(args) => {
            let database = args.data_dir.join(config::DATABASE_FILE);
            anyhow::ensure!(
                database.exists(),
                "nessun database in {} (no database there)",
                args.data_dir.display()
            );
            let summary = crate::store::backup::backup(&database, &args.to)?;
            let record = format!("{}\n{}\n", jiff::Timestamp::now(), args.to.display());
            // Only for `/metrics`: a backup made is not undone because this note failed.
            if let Err(e) = std::fs::write(args.data_dir.join(config::LAST_BACKUP_FILE), record) {
                eprintln!("warning: {}: {e}", config::LAST_BACKUP_FILE);
            }
            println!("{} ({summary})", args.to.display());
            Ok(())
        }
        Command::Restore(args) => restore(&args),
        Command::KioskRevoke(args) => {
            let db = open_db(&args.data_dir)?;
            let by = Actor::cli(jiff::Timestamp::now());
            // A kiosk id is a UUID; anything else is taken for an unused enrolment code.
            if args.kiosk.parse::<uuid::Uuid>().is_ok() {
                let (done, _) =
                    db.call_blocking(|conn| ops::kiosks::revoke(conn, &by, &args.kiosk))?;
                done?;
                println!("kiosk {} revoked", args.kiosk);
            } else {
                let (done, _) =
                    db.call_blocking(|conn| ops::kiosks::revoke_code(conn, &by, &args.kiosk))?;
                done?;
                println!("enrolment code withdrawn");
            }
            Ok(())
        }
    }
}

/// `ready-list search|correct|remove`: the administration's page, at the command line.
fn ready_list(args: config::ReadyListArgs) -> anyhow::Result<()> {
    use config::ReadyListAction;
    let db = open_db(&args.data_dir)?;
    let by = Actor::cli(jiff::Timestamp::now());
    match args.action {
        ReadyListAction::Search { query } => {
            let query = query.join(" ");
            let (total, found) =
                db.call_blocking(|conn| ops::ready::search(conn, by.now, &query, 0, 200))?;
            for l in &found {
                let p = &l.permit;
                let state = ops::ready::state_words(l);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{state}",
                    l.id,
                    p.surname,
                    p.given_names,
                    p.birth_date,
                    p.fingerprint_date,
                    p.receipt_number.as_deref().unwrap_or("-"),
                    p.pratica_number.as_deref().unwrap_or("-"),
                    p.drawer,
                );
            }
            eprintln!("{total} voci trovate ({total} found)");
            Ok(())
        }
        ReadyListAction::Correct {
            id,
            surname,
            given_names,
            birth_date,
            fingerprint_date,
            receipt,
            pratica,
            drawer,
        } => {
            let Some(current) = db.call_blocking(|conn| ops::ready::entry(conn, by.now, id))?
            else {
                anyhow::bail!("voce {id} non trovata ({id} not found)");
            };
            let p = current.permit;
            let date = import::typed_date;
            let typed = import::Typed {
                surname: surname.unwrap_or(p.surname),
                given_names: given_names.unwrap_or(p.given_names),
                birth_date: birth_date.unwrap_or_else(|| date(&p.birth_date)),
                fingerprint_date: fingerprint_date.unwrap_or_else(|| date(&p.fingerprint_date)),
                receipt: receipt.or(p.receipt_number).unwrap_or_default(),
                pratica: pratica.or(p.pratica_number).unwrap_or_default(),
                drawer: drawer.unwrap_or(p.drawer),
            };
            let (done, _) = db.call_blocking(|conn| ops::ready::correct(conn, &by, id, typed))?;
            done?;
            println!("voce {id} corretta ({id} corrected)");
            Ok(())
        }
        ReadyListAction::Remove { id, reason } => {
            let (done, _) = db.call_blocking(|conn| ops::ready::remove(conn, &by, id, &reason))?;
            done?;
            println!("voce {id} tolta dall'elenco ({id} removed)");
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

/// Lock the data folder for this process (released when the file is dropped): only one
/// server, and no restore while it runs.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join(config::LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "un coper-server sta usando {}: fermarlo prima (systemctl stop coper-server) \
             (a server is running on this data folder: stop it first)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// `restore --from FILE`: check the file, keep the current database aside, put the copy in
/// place and bring its schema up to date.
fn restore(args: &config::RestoreArgs) -> anyhow::Result<()> {
    use crate::store::backup::{check_restorable, with_suffix};
    let found = check_restorable(&args.from)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let _lock = lock_data_dir(&args.data_dir)?;
    let database = args.data_dir.join(config::DATABASE_FILE);
    let incoming = with_suffix(&database, ".restoring");
    std::fs::copy(&args.from, &incoming)
        .with_context(|| format!("cannot copy into {}", incoming.display()))?;
    // The copy is checked again (the file may have changed under us); a bad one is not kept.
    if let Err(e) = check_restorable(&incoming) {
        let _ = std::fs::remove_file(&incoming);
        return Err(e.into());
    }
    if database.exists() {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let aside = with_suffix(&database, &format!(".before-restore-{stamp}"));
        // With its journal: what a server that stopped uncleanly left there is data too.
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&database, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix))
                    .with_context(|| format!("cannot move {} aside", from.display()))?;
            }
        }
        println!(
            "database precedente: {} (previous database)",
            aside.display()
        );
    }
    std::fs::rename(&incoming, &database)
        .with_context(|| format!("cannot put {} in place", database.display()))?;
    let restored = Db::open(&database)
        .with_context(|| format!("cannot open the restored {}", database.display()))?;
    let schema: i64 = restored
        .call_blocking(|conn| conn.pragma_query_value(None, "user_version", |r| r.get(0)))?;
    println!(
        "ripristinato {} ({found}; schema ora {schema}) (restored)",
        args.from.display()
    );
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
    let _lock = lock_data_dir(&config.data_dir)?;
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
    // A gateway described wrongly stops the start, with the reason, rather than the messages.
    let sender = std::sync::Arc::new(
        crate::notices::Sender::from_config(&config.notices)
            .context("the [notices] table of the configuration")?,
    );
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
    let limits = crate::limits::Limits {
        // Kiosks' changes are parsed first by this very binary, in a child with bounded memory.
        sync_sandbox: Some(
            std::env::current_exe().context("cannot find the server's own executable")?,
        ),
        ..config.limits.clone()
    };
    let mut state = AppState {
        sender,
        precheck_dir: std::sync::Arc::new(crate::precheck::folder(&config.data_dir)),
        public_origin: config.public_origin.as_deref().map(Into::into),
        metrics_access: std::sync::Arc::new(config.metrics.clone()),
        data_dir: Some(config.data_dir.as_path().into()),
        ..AppState::with_limits(db, config.clock, limits)
    };
    state.sync.public_url = state.sender.public_url().map(Into::into);
    tokio::spawn(forget_contacts_every_hour(state.clone()));
    tokio::spawn(crate::notices::run_sender(state.clone()));
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(crate::memory::give_back_freed_memory());
    serve(listener, state, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Phones and e-mails of ended bookings are kept only the days the settings say: checked at start
/// and every hour.
async fn forget_contacts_every_hour(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let by = Actor {
            name: "system".into(),
            source: String::new(),
            now: state.clock.now(),
        };
        match state
            .perform(move |conn| ops::appointments::forget_contacts(conn, &by))
            .await
        {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "contacts of ended bookings forgotten"),
            Err(e) => tracing::error!(error = ?e, "contacts of ended bookings not forgotten"),
        }
        match crate::precheck::expire(&state, state.limits.precheck_keep_days).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pre-check files past their time deleted"),
            Err(e) => tracing::error!(error = %e, "pre-check files not deleted"),
        }
    }
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
