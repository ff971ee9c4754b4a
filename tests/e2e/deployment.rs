//! Running it for real: the server behind nginx with TLS, configured from the example the
//! repository ships (`packaging/nginx/coper.conf`), kiosks on `wss://` that verify the server,
//! the forwarded client address and origin, and the protocol version both sides state.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::helpers::{Options, TestApp, TestKiosk, eventually, spawn, spawn_demo};

/// A private CA and a certificate it issued for `localhost` and 127.0.0.1, made with openssl.
struct Certificates {
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
}

/// Run `command`, insisting that it succeeds: its standard output.
fn run_ok(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} (scripts/install-deps installs it): {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn openssl(dir: &Path, args: &[&str]) {
    run_ok(Command::new("openssl").args(args).current_dir(dir));
}

fn certificates(dir: &Path) -> Certificates {
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Questura test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            days[0],
            days[1],
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
            days[0],
            days[1],
        ],
    );
    Certificates {
        ca: dir.join("ca.pem"),
        chain: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx running `packaging/nginx/coper.conf` in front of `app`, on a free loopback port, with
/// the test's certificate. Stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(app: &TestApp, certificates: &Certificates, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/nginx/coper.conf"),
        )
        .unwrap();
        // The example as a technician installs it, with this machine's ports and files: the
        // HTTPS server only (the redirect from port 80 needs root), IPv4 only.
        let https = &example[..example
            .find("# Plain HTTP only")
            .expect("the example's redirect block")];
        let site = https
            .lines()
            .filter(|line| !line.contains("[::]"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
            .replace(
                "/etc/coper/tls/fullchain.pem",
                certificates.chain.to_str().unwrap(),
            )
            .replace(
                "/etc/coper/tls/privkey.pem",
                certificates.key.to_str().unwrap(),
            )
            .replace("http://127.0.0.1:8080", &app.base);
        assert!(
            site.contains(&app.base),
            "the example proxies to 127.0.0.1:8080"
        );
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\nfastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|n| Command::new(n).arg("-v").output().is_ok())
            .expect("nginx (scripts/install-deps installs it)");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let up = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        eventually(10, "nginx to listen", up).await;
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn origin(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn wss(&self) -> String {
        format!("wss://localhost:{}/api/v1/sync", self.port)
    }

    /// `curl` through nginx from the loopback address `from`, trusting only the test's CA: the
    /// status and the body.
    fn curl(&self, ca: &Path, from: &str, path: &str, extra: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(ca)
            .args(["--interface", from])
            .args(extra)
            .arg(format!("{}{path}", self.origin()))
            .output()
            .expect("curl (scripts/install-deps installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh kiosk configuration in `dir`.
fn kiosk_config(dir: &Path) -> coper_kiosk::core::KioskConfig {
    coper_kiosk::core::KioskConfig::new(dir.join("kiosk"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_with_tls_kiosks_verify_the_server_and_limits_key_on_the_real_client() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certificates = certificates(certs_dir.path());
    let port = free_port();
    // Metrics for the machine itself (nginx's address), or with the token from anywhere.
    let config = certs_dir.path().join("server.toml");
    std::fs::write(&config, "[metrics]\nallow = [\"127.0.0.1/32\"]\n").unwrap();
    let app = spawn(Options {
        demo: true,
        args: vec![
            "--public-origin".into(),
            format!("https://localhost:{port}"),
            "--trusted-proxy".into(),
            "127.0.0.1/32".into(),
            "--config".into(),
            config.to_str().unwrap().into(),
        ],
        env: vec![(
            "COPER_METRICS_TOKEN".into(),
            "metrics-token-for-tests".into(),
        )],
        ..Options::default()
    })
    .await;
    let nginx = Nginx::start(&app, &certificates, port).await;

    // A kiosk that trusts only the system's CAs does not accept the Questura's own CA.
    let stranger = tempfile::tempdir().unwrap();
    let refused = coper_kiosk::core::enrol(
        &kiosk_config(stranger.path()),
        &nginx.wss(),
        &app.kiosk_code(1),
    )
    .await
    .expect_err("an unknown issuer is refused");
    assert!(
        format!("{refused}").to_lowercase().contains("certificate")
            || format!("{refused}").contains("UnknownIssuer"),
        "{refused}"
    );
    // One given the CA's certificate at enrolment enrols over wss://, syncs and books.
    let office = tempfile::tempdir().unwrap();
    let config = kiosk_config(office.path());
    coper_kiosk::core::pin_server_certificate(&config, &certificates.ca).unwrap();
    coper_kiosk::core::enrol(&config, &nginx.wss(), &app.kiosk_code(1))
        .await
        .expect("enrolment over wss:// with the pinned CA");
    let kiosk = TestKiosk::started(config, office).await;
    let slot = kiosk.first_free_slot();
    let booking = kiosk
        .core
        .book(&crate::helpers::delivery(), slot, "Tessa", "Test", None)
        .unwrap();
    let verdict = kiosk
        .core
        .wait_for_verdict(booking.request, std::time::Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(
        verdict.outcome,
        coper_shared::documents::Outcome::Confirmed,
        "{verdict:?}"
    );
    // The technician sees the kiosk and its booking in /metrics: through nginx only with the
    // token, since the client is not the machine itself.
    let (status, _) = nginx.curl(&certificates.ca, "127.0.1.2", "/metrics", &[]);
    assert_eq!(status, 403, "metrics are not for anyone on the internet");
    let (status, metrics) = nginx.curl(
        &certificates.ca,
        "127.0.1.2",
        "/metrics",
        &["-H", "Authorization: Bearer metrics-token-for-tests"],
    );
    assert_eq!(status, 200, "{metrics}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert_eq!(value("coper_kiosks_connected"), 1.0);
    assert_eq!(value("coper_kiosks_enrolled"), 1.0);
    assert_eq!(value("coper_kiosks_silent"), 0.0);
    assert!(value("coper_bookings_decided_total{outcome=\"confirmed\"}") >= 1.0);
    assert!(value("coper_decision_seconds_count") >= 1.0);
    assert!(value("coper_database_bytes") > 0.0);
    assert!(metrics.contains("coper_notices_queued"), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    // A file that is not a certificate is refused before it replaces the pinned one.
    let junk = certs_dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    assert!(coper_kiosk::core::pin_server_certificate(&kiosk.config, &junk).is_err());
    assert!(
        kiosk
            .config
            .data_dir
            .join(coper_kiosk::core::PINNED_CERTIFICATE)
            .exists()
    );

    // The browser's Origin is compared with the public origin, not with the Host nginx passes.
    let login = |origin: &str, from: &str| {
        nginx.curl(
            &certificates.ca,
            from,
            "/staff/login",
            &[
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Cookie: coper_login_csrf=t",
                "--data",
                "username=nobody&password=wrong&csrf=t",
            ],
        )
    };
    let (status, _) = login("https://evil.example", "127.0.1.2");
    assert_eq!(status, 403, "a foreign origin is refused");
    let (status, page) = login(&nginx.origin(), "127.0.1.2");
    assert_ne!(status, 403, "the public origin is accepted: {page}");

    // Limits key on the client nginx saw, not on nginx: one network is locked out of the
    // login, another is not; a forged X-Forwarded-For does not change who the client is.
    let mut locked = false;
    for _ in 0..25 {
        let (status, _) = nginx.curl(
            &certificates.ca,
            "127.0.1.2",
            "/staff/login",
            &[
                "-H",
                &format!("Origin: {}", nginx.origin()),
                "-H",
                "X-Forwarded-For: 203.0.113.7",
                "-H",
                "Cookie: coper_login_csrf=t",
                "--data",
                "username=nobody&password=wrong&csrf=t",
            ],
        );
        if status == 429 {
            locked = true;
            break;
        }
    }
    assert!(locked, "20 logins a minute from one network");
    let (status, _) = login(&nginx.origin(), "127.0.2.2");
    assert_ne!(
        status, 429,
        "another network is not locked out by the first"
    );
    let (status, _) = nginx.curl(&certificates.ca, "127.0.1.2", "/healthz", &[]);
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_kiosk_of_another_protocol_version_is_refused_with_the_servers_version() {
    let app = spawn(Options::default()).await;
    let ws = app.ws_url();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str())
            .unwrap();
    let ours = coper_shared::protocol::VERSION;
    request
        .headers_mut()
        .insert("coper-protocol", (ours + 1).to_string().parse().unwrap());
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) =
        tokio_tungstenite::connect_async(request).await
    else {
        panic!("a kiosk speaking a newer version was let in");
    };
    assert_eq!(response.status().as_u16(), 426);
    assert_eq!(response.headers()["coper-protocol"], ours.to_string());
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("aggiornare il chiosco"), "{body}");
    // A kiosk older than the header speaks version 1, which this server does not.
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) =
        tokio_tungstenite::connect_async(ws.as_str()).await
    else {
        panic!("a kiosk stating no version was let in");
    };
    assert_eq!(response.status().as_u16(), 426);
    // Its own version, stated, is let in and told the version.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str())
            .unwrap();
    request
        .headers_mut()
        .insert("coper-protocol", ours.to_string().parse().unwrap());
    let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["coper-protocol"], ours.to_string());
}

/// A stand-in for a server of another version: it upgrades and states a newer one.
// tungstenite's callback returns its error response by value.
#[allow(clippy::result_large_err)]
async fn server_of_another_version() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let answer = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    let newer = coper_shared::protocol::VERSION + 1;
                    response
                        .headers_mut()
                        .insert("coper-protocol", newer.to_string().parse().unwrap());
                    Ok(response)
                };
                let _ = tokio_tungstenite::accept_hdr_async(stream, answer).await;
            });
        }
    });
    format!("ws://{addr}/api/v1/sync")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_meeting_a_server_of_another_protocol_version_asks_to_be_updated() {
    let app = spawn_demo().await;
    let newer = server_of_another_version().await;
    let dir = tempfile::tempdir().unwrap();
    let error = coper_kiosk::core::enrol(&kiosk_config(dir.path()), &newer, "ABCD")
        .await
        .expect_err("no enrolment with a server of another version");
    assert!(
        matches!(
            error,
            coper_kiosk::core::CoreError::ProtocolVersion {
                kiosk: coper_shared::protocol::VERSION,
                server: Some(newer_version)
            } if newer_version == coper_shared::protocol::VERSION + 1
        ),
        "{error:?}"
    );
    // An enrolled kiosk whose server was replaced by one of another version tells its operator.
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let kiosk = kiosk.reconnect_via(&newer).await;
    eventually(15, "the kiosk to say it must be updated", || {
        kiosk.core.status().refused.as_deref() == Some(coper_kiosk::core::PROTOCOL_VERSION_REFUSAL)
    })
    .await;
    assert!(!kiosk.core.status().online);
}

/// Whether appointment `id` is in `db` and not cancelled.
fn stands(db: &rusqlite::Connection, id: uuid::Uuid) -> bool {
    db.query_row(
        "SELECT count(*) FROM appointments WHERE id = ?1 AND status <> 'cancelled'",
        [id.to_string()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

/// `coper-server restore --from FROM --data-dir DATA`.
fn restore(from: &Path, data: &Path) -> std::process::Output {
    Command::new(crate::helpers::server_binary())
        .args(["restore", "--from"])
        .arg(from)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

/// Book through `kiosk` until `stop` is set; the appointments made, with the instant each
/// verdict arrived.
async fn book_until(
    kiosk: std::sync::Arc<TestKiosk>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    name: &'static str,
) -> Vec<(uuid::Uuid, std::time::Instant)> {
    let mut confirmed = Vec::new();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        n += 1;
        let slot = kiosk.first_free_slot();
        let booked = kiosk.core.book(
            &crate::helpers::delivery(),
            slot,
            &format!("{name} {n}"),
            "Test",
            None,
        );
        let Ok(booking) = booked else { continue };
        let verdict = kiosk
            .core
            .wait_for_verdict(booking.request, std::time::Duration::from_secs(20))
            .await
            .expect("a verdict");
        // Confirmed where asked, or relocated when the other kiosk took the slot first.
        if let Some(appointment) = verdict.appointment {
            confirmed.push((appointment, std::time::Instant::now()));
        }
    }
    confirmed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_kiosks_book_restores_every_booking_confirmed_before_it() {
    use std::sync::{Arc, atomic::AtomicBool};
    let app = spawn_demo().await;
    let first = Arc::new(TestKiosk::enrol(&app, 1, &app.ws_url()).await);
    let second = Arc::new(TestKiosk::enrol(&app, 2, &app.ws_url()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = [
        tokio::spawn(book_until(first.clone(), stop.clone(), "Prima")),
        tokio::spawn(book_until(second.clone(), stop.clone(), "Seconda")),
    ];
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("coper-backup.sqlite");
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking({
        let args = ["backup", "--to", file.to_str().unwrap()].map(str::to_owned);
        let mut app_cli = app.cli_command();
        move || app_cli.args(args).output().unwrap()
    })
    .await
    .unwrap();
    let backup_took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut confirmed = Vec::new();
    for task in load {
        confirmed.extend(task.await.unwrap());
    }
    let before: Vec<uuid::Uuid> = confirmed
        .iter()
        .filter(|(_, at)| *at < started)
        .map(|(appointment, _)| *appointment)
        .collect();
    let after = confirmed.len() - before.len();
    eprintln!(
        "confirmed before the backup {}, after {after}; the backup took {backup_took:?}",
        before.len()
    );
    assert!(
        before.len() >= 3,
        "bookings confirmed before the backup: {}",
        before.len()
    );
    assert!(after >= 1, "the kiosks kept booking during the backup");
    // The backup is a whole database of its own (no journal beside it) and tells what it holds.
    assert!(String::from_utf8_lossy(&out.stdout).contains("prenotazioni"));
    assert!(!backups.path().join("coper-backup.sqlite-wal").exists());
    assert!(app.data_dir.join("last-backup").exists());

    // A restore into a new data folder (a new machine), then a server on it.
    let machine = tempfile::tempdir().unwrap();
    let data = machine.path().join("data");
    let restore = |from: &Path| restore(from, &data);
    let out = restore(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = crate::helpers::spawn_in(&data, Options::default(), None).await;
    let db = restored.database();
    for appointment in &before {
        assert!(
            stands(&db, *appointment),
            "booking {appointment}, confirmed before the backup"
        );
    }
    assert_eq!(crate::helpers::overbooked_slots(&db), 0);
    let requests: i64 = db
        .query_row(
            "SELECT count(*) - count(DISTINCT request_id) FROM appointments WHERE request_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(requests, 0, "one appointment per request");

    // Refused: a restore while a server runs on the folder.
    let out = restore(&file);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fermarlo prima"));

    // The kiosks, pointed at the restored server, still hold what they asked after the backup.
    let first = Arc::try_unwrap(first)
        .ok()
        .expect("the load is over")
        .reconnect_via(&restored.ws_url())
        .await;
    eventually(30, "the kiosk to settle with the restored server", || {
        let status = first.core.status();
        status.up_to_date && status.pending == 0
    })
    .await;
    let db = restored.database();
    let mut kept = 0;
    for booking in first.core.bookings() {
        let Some(verdict) = first.core.verdict(booking.request) else {
            panic!("no verdict for {} after the restore", booking.request)
        };
        if let Some(appointment) = verdict.appointment {
            assert!(
                stands(&db, appointment),
                "the kiosk's booking {appointment} is on the restored server"
            );
            kept += 1;
        }
    }
    eprintln!("kiosk bookings on the restored server: {kept}");
    assert_eq!(crate::helpers::overbooked_slots(&db), 0);
    // Refused: a file that is not coper's.
    let junk = machine.path().join("junk.sqlite");
    std::fs::write(&junk, "SQLite format 3 — not really").unwrap();
    let out = restore(&junk);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("non è un database di coper"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Restoring over a database (the server stopped) keeps the one it replaces beside it.
    drop(first);
    drop(db);
    drop(restored);
    let out = restore(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("coper.sqlite3.before-restore-")
        });
    assert!(
        kept,
        "the replaced database is kept beside the restored one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_replaced_by_a_new_machine_finds_the_offices_bookings() {
    let app = spawn_demo().await;
    let old = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let mut made = Vec::new();
    for n in 0..3 {
        let slot = old.first_free_slot();
        let booking = old
            .core
            .book(
                &crate::helpers::delivery(),
                slot,
                &format!("Vecchio {n}"),
                "Test",
                None,
            )
            .unwrap();
        old.core
            .wait_for_verdict(booking.request, std::time::Duration::from_secs(15))
            .await
            .unwrap();
        made.push(booking.request);
    }
    // The old machine is gone: revoked, and a new one enrolled for the same office.
    let old_id = old.core.kiosk_id();
    drop(old);
    app.cli(&["kiosk-revoke", &old_id.to_string()]);
    let new = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    eventually(15, "the office's bookings on the new kiosk", || {
        let list = new.core.partner_bookings();
        made.iter()
            .all(|request| list.iter().any(|b| b.request == Some(*request)))
    })
    .await;
}

#[tokio::test]
async fn ready_means_the_database_takes_writes_and_the_disk_has_room() {
    let app = spawn(Options::default()).await;
    let (status, body) = app.get("/healthz/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert!(body["free_bytes"].as_u64().unwrap() > 0);
    // A writer that does not let go (a stuck import, a disk that hangs): up, but not ready.
    let mut db = app.database_rw();
    let held = db
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let (status, body) = app.get("/healthz/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "busy");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200, "still up");
    held.rollback().unwrap();
    let (status, body) = app.get("/healthz/ready").await;
    assert_eq!(status, 200, "ready again once the writer lets go: {body}");

    // A disk with less room than the threshold.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[limits]\nready_min_free_bytes = 1000000000000000\n",
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let full = spawn(Options {
        args: vec!["--config".into(), config.to_str().unwrap().into()],
        log_file: Some(log.clone()),
        ..Options::default()
    })
    .await;
    let (status, body) = full.get("/healthz/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["disk"], "low");
    assert_eq!(body["database"], "writable");
    // "Not now" said on purpose is not a failure of the server: no error in its log (in a
    // reconnect storm the sync gate's 503s are hundreds).
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("ERROR"),
        "a 503 said on purpose was logged as an error:\n{logged}"
    );
}

/// The repository's root.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

#[test]
fn the_debian_packages_build_install_serve_back_up_restore_upgrade_and_purge() {
    // The packages, from the binaries this very build made.
    let out = tempfile::tempdir().unwrap();
    let built = run_ok(
        Command::new(repository().join("scripts/package"))
            .arg("--out")
            .arg(out.path()),
    );
    let debs: Vec<PathBuf> = built.lines().map(PathBuf::from).collect();
    assert_eq!(debs.len(), 2, "{debs:?}");
    for (deb, name) in debs.iter().zip(["coper-server", "coper-kiosk"]) {
        let field = |f: &str| {
            let out = Command::new("dpkg-deb")
                .arg("-f")
                .arg(deb)
                .arg(f)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        assert_eq!(field("Package"), name);
        assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
        assert!(field("Depends").contains("libc6"), "{}", field("Depends"));
    }
    // Installing changes the machine: only where that is allowed (CI's fresh machine sets
    // COPER_PACKAGE_TEST=1 in .ci/run; a developer who is root may too).
    if std::env::var("COPER_PACKAGE_TEST").as_deref() != Ok("1") {
        eprintln!(
            "packages built and inspected; not installed (set COPER_PACKAGE_TEST=1, as root)"
        );
        return;
    }
    // A later version of the same binaries, to upgrade to.
    let later = tempfile::tempdir().unwrap();
    let later_debs = run_ok(
        Command::new(repository().join("scripts/package"))
            .arg("--out")
            .arg(later.path())
            .args(["--version", concat!(env!("CARGO_PKG_VERSION"), "+upgrade")]),
    );
    let later_server = later_debs.lines().next().expect("the server package");
    let check = Command::new("bash")
        .arg(repository().join("tests/packaging.sh"))
        .args(&debs)
        .arg(later_server)
        .output()
        .expect("tests/packaging.sh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{said}");
    assert!(said.contains("all checks passed"), "{said}");
    assert!(
        said.contains("settings and data kept"),
        "the upgrade ran: {said}"
    );
}

#[tokio::test]
async fn a_database_of_the_previous_release_migrates_forward_and_keeps_everything() {
    let fixture = repository().join("tests/fixtures/coper-49256fa.sqlite3");
    let old =
        rusqlite::Connection::open_with_flags(&fixture, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let old_schema: i64 = old
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let appointments = |db: &rusqlite::Connection| -> Vec<(String, String, String, String)> {
        let mut rows = db
            .prepare(
                "SELECT id, surname, slot_date || ' ' || slot_time, status FROM appointments
                 ORDER BY id",
            )
            .unwrap();
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = appointments(&old);
    assert_eq!(before.len(), 156);
    let latest = coper_server::store::migrations_count();
    assert!(old_schema < latest, "the fixture predates a migration");

    // Restored like any backup: an older schema is accepted, and brought forward.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = restore(&fixture, &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = crate::helpers::spawn_in(
        &data,
        Options {
            fixed_now: Some("2026-11-23T09:00:00Z"),
            ..Options::default()
        },
        None,
    )
    .await;
    let db = app.database();
    let schema: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(schema, latest);
    assert_eq!(appointments(&db), before, "every booking, unchanged");
    // The accounts too: the administrator made by the old release logs in.
    app.log_in("fixture.admin", "fixture-password-2026")
        .await
        .expect("the old release's administrator logs in");
    // And it serves the agenda it had.
    let (status, _) = app.get("/api/v1/services").await;
    assert_eq!(status, 200);
}
