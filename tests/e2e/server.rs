//! The server as a process: health, configuration, seeding, shutdown, the OpenAPI contract and
//! errors.

use crate::helpers::{Options, spawn, spawn_demo_at, spawn_in};

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// A fresh install answers its health check and says plainly that nothing is set up yet.
#[tokio::test]
async fn a_fresh_database_is_healthy_but_not_configured() {
    let app = spawn(Options::default()).await;
    assert_eq!(app.get_ok("/healthz").await["status"], "ok");
    assert_eq!(app.get_ok("/api/v1/services").await, serde_json::json!([]));
    app.get_error(
        "/api/v1/services/consegna-pse/first-free",
        503,
        "not_configured",
    )
    .await;
    assert!(app.data_dir.join("coper.sqlite3").exists());
}

/// `--demo` seeds a Pavia-like Questura once; a restart with `--demo` leaves it as it was.
#[tokio::test]
async fn the_demo_is_seeded_once_and_survives_a_restart() {
    let mut first = spawn_demo_at(MONDAY_NINE_ROME).await;
    let count = |app: &crate::helpers::TestApp| -> (i64, i64, i64) {
        let db = app.database();
        let q = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        (
            q("SELECT count(*) FROM ready_permits"),
            q("SELECT count(*) FROM appointments"),
            q("SELECT count(*) FROM partner_bodies"),
        )
    };
    let before = count(&first);
    assert_eq!(before.0, 200);
    assert!(before.1 > 50, "a realistic week has bookings: {before:?}");
    assert_eq!(before.2, 5);
    let dir = first.keep_data();
    let data_dir = first.data_dir.clone();
    assert!(first.signal_and_wait("TERM").success());
    drop(first);
    let second = spawn_in(
        &data_dir,
        Options {
            demo: true,
            fixed_now: Some("2026-11-30T08:00:00Z"),
            ..Options::default()
        },
        dir,
    )
    .await;
    assert_eq!(count(&second), before);
}

/// The synthetic people have the shapes real names have, and some birth dates only partly known.
#[tokio::test]
async fn demo_people_have_realistic_name_shapes() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let db = app.database();
    let q = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert!(q("SELECT count(*) FROM ready_permits WHERE surname LIKE '%''%'") > 0);
    assert!(q("SELECT count(*) FROM ready_permits WHERE surname LIKE '% %'") > 0);
    assert!(q("SELECT count(*) FROM ready_permits WHERE surname LIKE '%-%'") > 0);
    assert!(q("SELECT count(*) FROM ready_permits WHERE given_names LIKE '% %'") > 0);
    assert!(q("SELECT count(*) FROM ready_permits WHERE length(birth_date) < 10") > 0);
    assert!(
        q(
            "SELECT count(*) FROM ready_permits WHERE surname <> CAST(surname AS BLOB) \
           OR surname GLOB '*[^ -~]*'"
        ) > 0,
        "some names carry accents"
    );
}

/// SIGTERM and SIGINT stop the server cleanly (exit status 0).
#[tokio::test]
async fn sigterm_and_sigint_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut app = spawn(Options::default()).await;
        app.get_ok("/healthz").await;
        let status = app.signal_and_wait(signal);
        assert!(status.success(), "{signal}: {status}");
    }
}

/// Settings come from a TOML file, an environment variable overrides the file, a flag overrides
/// both.
#[tokio::test]
async fn configuration_layers_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    let config = dir.path().join("coper.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:1\"\n",
            from_file.to_str().unwrap()
        ),
    )
    .unwrap();
    // Started by hand rather than through the helper, to control every layer: the flag
    // --listen must beat the file's unusable port 1; COPER_DATA_DIR, when set, the file's folder.
    let run = |env_dir: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(crate::helpers::server_binary());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("COPER_LOG", "warn")
            .stdout(std::process::Stdio::piped());
        if let Some(d) = env_dir {
            cmd.env("COPER_DATA_DIR", d);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(
            line.starts_with("coper-server listening on http://127.0.0.1:"),
            "{line}"
        );
        assert!(
            !line.contains("127.0.0.1:1\n"),
            "the flag must beat the file"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    };
    run(None);
    assert!(from_file.join("coper.sqlite3").exists());
    run(Some(&from_env));
    assert!(from_env.join("coper.sqlite3").exists());
}

/// Every error is JSON with a stable code and an Italian message, with the right status.
#[tokio::test]
async fn bad_requests_get_json_errors_with_codes() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let unknown = app
        .get_error(
            "/api/v1/services/passaporti/first-free",
            404,
            "unknown_service",
        )
        .await;
    assert!(unknown.contains("passaporti"), "{unknown}");
    app.get_error(
        "/api/v1/services/consegna-pse/days?from=23/11/2026",
        400,
        "invalid_date",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/days?from=2026-02-30",
        400,
        "invalid_date",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/days?from=2026-01-01&to=2027-06-01",
        400,
        "range_too_large",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/days?from=2026-12-10&to=2026-12-01",
        400,
        "invalid_range",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/first-free?from=domani",
        400,
        "invalid_from",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/options?count=0",
        400,
        "invalid_count",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/options?count=500",
        400,
        "invalid_count",
    )
    .await;
    app.get_error(
        "/api/v1/services/consegna-pse/options?count=dieci",
        400,
        "invalid_query",
    )
    .await;
    app.get_error("/api/v1/nothing-here", 404, "not_found")
        .await;
}

/// The OpenAPI document describes every route, and every route it describes answers.
#[tokio::test]
async fn the_openapi_document_lists_the_contract_and_each_path_answers() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let doc = app.get_ok("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    for contract in [
        "/healthz",
        "/api/v1/services",
        "/api/v1/services/{id}/first-free",
        "/api/v1/services/{id}/options",
        "/api/v1/services/{id}/days",
        "/api/v1/partners",
        "/api/v1/status-check",
    ] {
        assert!(
            paths.iter().any(|p| p == contract),
            "{contract} not in {paths:?}"
        );
    }
    // Every GET answers (the status check is a POST, tested in `public.rs`).
    for path in paths
        .iter()
        .filter(|p| doc["paths"][p.as_str()]["get"].is_object())
    {
        let concrete = path.replace("{id}", "consegna-pse");
        let (status, body) = app.get(&concrete).await;
        assert_eq!(status, 200, "{concrete}: {body}");
    }
}

/// The public list of partner bodies carries what the home page publishes.
#[tokio::test]
async fn partners_are_listed_with_address_phone_and_hours() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let partners = app.get_ok("/api/v1/partners").await;
    let partners = partners.as_array().unwrap();
    assert_eq!(partners.len(), 5);
    for p in partners {
        for field in ["name", "address", "city", "phone", "opening_hours"] {
            assert!(
                !p[field].as_str().unwrap_or("").is_empty(),
                "{field} missing in {p}"
            );
        }
    }
}

/// `coper-server import-ready` adds the ready permits of a CSV export; importing it again changes
/// nothing; a file with a bad row is refused whole, with the row's line number, and exits non-zero.
#[tokio::test]
async fn the_ready_list_imports_once_and_a_bad_file_imports_nothing() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pronti.csv");
    std::fs::write(
        &good,
        "\u{feff}Cognome;Nome;Data di nascita;Data impronte;Assicurata\n\
         Da Silva Pereira;José Luis;12/04/1988;20/10/2026;990000000001\n\
         Ben Saïd;Aïcha;00/00/1979;21/10/2026;990000000002\n",
    )
    .unwrap();
    let count = || -> i64 {
        app.database()
            .query_row("SELECT count(*) FROM ready_permits", [], |r| r.get(0))
            .unwrap()
    };
    let before = count();
    let first = app.cli(&["import-ready", good.to_str().unwrap()]);
    assert!(
        first.starts_with("aggiunti 2, aggiornati 0, invariati 0"),
        "{first}"
    );
    assert_eq!(count(), before + 2);
    let again = app.cli(&["import-ready", good.to_str().unwrap()]);
    assert!(
        again.starts_with("aggiunti 0, aggiornati 0, invariati 2"),
        "{again}"
    );
    // The same receipt with the card now in another drawer is an update.
    let moved = dir.path().join("spostati.csv");
    std::fs::write(
        &moved,
        "cognome;nome;data di nascita;data impronte;assicurata;cassetto\n\
         Da Silva Pereira;José Luis;12/04/1988;20/10/2026;990000000001;C9\n",
    )
    .unwrap();
    let update = app.cli(&["import-ready", moved.to_str().unwrap()]);
    assert!(
        update.starts_with("aggiunti 0, aggiornati 1, invariati 0"),
        "{update}"
    );

    let bad = dir.path().join("errati.csv");
    std::fs::write(
        &bad,
        "cognome,nome,data di nascita,data impronte\nHoxha,Gjergj,01/01/1990,22/10/2026\nWang,Xiaoming,31/02/1990,22/10/2026\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::helpers::server_binary())
        .args(["import-ready", bad.to_str().unwrap(), "--data-dir"])
        .arg(&app.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("riga 3: data di nascita non valida"),
        "{stderr}"
    );
    assert_eq!(count(), before + 2, "nothing of the bad file was imported");
}

/// `coper-server create-admin` makes the first administrator with an Argon2id hash; a taken name
/// or a short password is refused with a clear message and a non-zero exit.
#[tokio::test]
async fn create_admin_makes_an_administrator_and_refuses_bad_input() {
    let app = spawn(Options::default()).await;
    let run = |username: &str, password: &str| {
        let mut child = std::process::Command::new(crate::helpers::server_binary())
            .args(["create-admin", "--username", username, "--data-dir"])
            .arg(&app.data_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run("questura.admin", "una frase lunga e segreta");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let (role, hash): (String, String) = app
        .database()
        .query_row(
            "SELECT role, password_hash FROM users WHERE username = 'questura.admin'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(role, "admin");
    assert!(coper_server::accounts::verify_password(
        "una frase lunga e segreta",
        &hash
    ));
    let taken = run("Questura.Admin", "un'altra frase lunga");
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("esiste già"));
    let short = run("altro", "breve");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("almeno 12 caratteri"));
}
