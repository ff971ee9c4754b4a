//! Starting a server for one test (or one load run) and talking to it.
//!
//! Each [`TestApp`] is a `coper-server serve` process with its own data folder and port (it binds
//! port 0 and prints the address it got). Dropping the handle kills the process.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The `coper-server` binary Cargo built next to this binary: beside it for `coper-loadgen`
/// (target/<profile>/), one folder up for a test binary (target/<profile>/deps/).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own binary path");
    let name = format!("coper-server{}", std::env::consts::EXE_SUFFIX);
    let beside = exe.parent().expect("binary folder");
    [
        beside.join(&name),
        beside.parent().unwrap_or(beside).join(&name),
    ]
    .into_iter()
    .find(|bin| bin.exists())
    .unwrap_or_else(|| {
        panic!(
            "coper-server is missing next to {}: build the workspace (`cargo test --workspace` \
                 or `cargo build --workspace --release`)",
            exe.display()
        )
    })
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seed the demonstration Questura.
    pub demo: bool,
    /// Freeze the server's clock (RFC 3339).
    pub fixed_now: Option<&'static str>,
    /// Extra command-line arguments after `serve`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Listen here instead of a free port (to restart a server where kiosks expect it).
    pub listen: Option<std::net::SocketAddr>,
    /// Write the server's log (its standard error) to this file instead of ours.
    pub log_file: Option<PathBuf>,
}

pub struct TestApp {
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    child: Child,
    // Keeps the temporary folder alive as long as the server runs, unless the test owns it.
    _dir: Option<tempfile::TempDir>,
}

/// A demo server whose clock is frozen at `now`.
pub async fn spawn_demo_at(now: &'static str) -> TestApp {
    spawn(Options {
        demo: true,
        fixed_now: Some(now),
        ..Options::default()
    })
    .await
}

/// A server seeded with the demo Questura, on the real clock.
pub async fn spawn_demo() -> TestApp {
    spawn(Options {
        demo: true,
        ..Options::default()
    })
    .await
}

pub async fn spawn(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary folder");
    let data_dir = dir.path().join("data");
    spawn_in(&data_dir, options, Some(dir)).await
}

/// Start a server on an existing data folder (to test restarts).
pub async fn spawn_in(
    data_dir: &Path,
    options: Options,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let mut cmd = Command::new(server_binary());
    cmd.arg("serve")
        .arg("--listen")
        .arg(
            options
                .listen
                .map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string()),
        )
        .arg("--data-dir")
        .arg(data_dir)
        .args(&options.args)
        .env("COPER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(match &options.log_file {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("server log file")),
            None => Stdio::inherit(),
        });
    if options.demo {
        cmd.arg("--demo");
    }
    if let Some(now) = options.fixed_now {
        cmd.arg("--fixed-now").arg(now);
    }
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start coper-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let base = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("read server output");
            if let Some(addr) = line.strip_prefix("coper-server listening on ") {
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Some(addr.to_owned());
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("coper-server exited before listening (see its stderr above)");
    TestApp {
        base,
        data_dir: data_dir.to_owned(),
        client: reqwest::Client::new(),
        child,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET `path`, returning the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .json::<Value>()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: body is not JSON: {e}"));
        (status, body)
    }

    /// GET `path` and insist on 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET `path` and insist on an error with this status and code.
    pub async fn get_error(&self, path: &str, status: u16, code: &str) -> String {
        let (got, body) = self.get(path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        assert_eq!(body["error"]["code"], code, "GET {path}: {body}");
        let message = body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned();
        assert!(!message.is_empty());
        message
    }

    pub fn database(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.join("coper.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the server's database")
    }

    /// The single number `sql` (a `count(*)`, a `sum`) reads from the server's database.
    pub fn scalar(&self, sql: &str) -> i64 {
        self.database()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one value `sql` reads from the server's database, given its one parameter.
    pub fn one<T: rusqlite::types::FromSql>(&self, sql: &str, param: impl rusqlite::ToSql) -> T {
        self.database()
            .query_row(sql, [param], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The body of `GET path`, as text.
    pub async fn text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (`TERM`, `INT`, `KILL`) and wait for the process to end.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Take ownership of the temporary folder, so the data outlives this server.
    pub fn keep_data(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw sync WebSocket to `url`, stating this build's protocol version as a kiosk does.
pub async fn connect_sync(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        coper_shared::protocol::VERSION_HEADER,
        tokio_tungstenite::tungstenite::http::HeaderValue::from(u16::from(
            coper_shared::protocol::VERSION,
        )),
    );
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

impl TestApp {
    /// The kiosks' WebSocket URL on this server.
    pub fn ws_url(&self) -> String {
        format!("{}/api/v1/sync", self.base.replacen("http://", "ws://", 1))
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("the server prints ip:port")
    }

    /// The database, writable: for arranging what the admin pages will set one day.
    pub fn database_rw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.data_dir.join("coper.sqlite3"))
            .expect("open the server's database");
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// Run a `coper-server` subcommand on this server's data folder, as it ends.
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        self.cli_command()
            .args(args)
            .output()
            .expect("run coper-server")
    }

    /// `coper-server` for a subcommand on this server's data folder (`COPER_DATA_DIR`).
    pub fn cli_command(&self) -> Command {
        let mut command = Command::new(server_binary());
        command.env("COPER_DATA_DIR", &self.data_dir);
        command
    }

    /// Run a `coper-server` subcommand on this server's data folder; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "coper-server {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Set every partner body's leased places per day (0: kiosks get no leases).
    /// Queue `count` notices straight into the outbox on `channel` (`sms` or `email`), as the
    /// server's own changes would, each with its own recipient and text (`Promemoria N`), due
    /// at `due` (RFC 3339).
    pub fn queue_notices(&self, count: usize, channel: &str, due: &str) {
        let mut db = self.database_rw();
        // Immediate: a deferred transaction that reads first cannot become a writer once the
        // server has written meanwhile.
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let appointment: String = tx
            .query_row("SELECT id FROM appointments LIMIT 1", [], |r| r.get(0))
            .unwrap();
        for n in 0..count {
            let recipient = match channel {
                "email" => format!("persona{n}@example.invalid"),
                _ => format!("+39300{n:07}"),
            };
            tx.execute(
                "INSERT INTO notices (appointment_id, kind, channel, recipient, lang, body,
                     created_at, due_at)
                 VALUES (?1, 'reminder', ?2, ?3, 'it', ?4, ?5, ?5)",
                rusqlite::params![
                    appointment,
                    channel,
                    recipient,
                    format!("Promemoria {n}"),
                    due
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    /// Let notices go out at any hour (a test on the real clock may run at night).
    pub fn without_quiet_hours(&self) {
        self.database_rw()
            .execute(
                "UPDATE settings SET quiet_from = '00:00', quiet_until = '00:00'",
                [],
            )
            .unwrap();
    }

    pub fn set_lease_places(&self, places: u32) {
        self.database_rw()
            .execute(
                "UPDATE partner_bodies SET lease_places_per_day = ?1",
                [places],
            )
            .expect("set lease places");
    }

    /// A one-time enrolment code for a kiosk of `partner`.
    pub fn kiosk_code(&self, partner: i64) -> String {
        self.cli(&[
            "kiosk-code",
            "--partner",
            &partner.to_string(),
            "--label",
            "Test",
        ])
    }
}

/// Slots holding more confirmed appointments than their places (the first invariant: must be 0).
pub fn overbooked_slots(db: &rusqlite::Connection) -> i64 {
    db.query_row(
        "SELECT count(*) FROM slot_capacity c WHERE c.taken + c.held > c.places
           OR c.places < (SELECT count(*) FROM appointments a WHERE a.service_id = c.service_id
                          AND a.slot_date = c.slot_date AND a.slot_time = c.slot_time
                          AND a.status <> 'cancelled')",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Poll `condition` until it holds, or fail after `seconds`.
pub async fn eventually(seconds: u64, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub use crate::proxy::{FaultCounts, Faults, Proxy};

/// The demo's delivery service, which most tests book.
pub fn delivery() -> coper_shared::ids::ServiceId {
    coper_shared::ids::ServiceId::parse("consegna-pse").unwrap()
}

/// A kiosk enrolled with `app` for `partner`, syncing through `url`, with its own data folder.
pub struct TestKiosk {
    pub core: coper_kiosk::core::KioskCore,
    pub config: coper_kiosk::core::KioskConfig,
    _dir: tempfile::TempDir,
}

impl TestKiosk {
    /// The first free delivery slot this kiosk's replica offers (there is one).
    pub fn first_free_slot(&self) -> coper_shared::agenda::SlotKey {
        self.core
            .first_free(&delivery())
            .unwrap()
            .expect("a free delivery slot")
            .slot
            .key()
    }

    pub async fn enrol(app: &TestApp, partner: i64, url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // As a real kiosk runs: its signing key sealed with a key file the OS protects.
        let key_file = dir.path().join("kiosk-key");
        let secret: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
        std::fs::write(&key_file, secret).unwrap();
        let config = coper_kiosk::core::KioskConfig {
            key_file: Some(key_file),
            ..coper_kiosk::core::KioskConfig::new(dir.path().join("kiosk"))
        };
        let code = app.kiosk_code(partner);
        coper_kiosk::core::enrol(&config, url, &code)
            .await
            .expect("enrolment");
        Self::started(config, dir).await
    }

    /// Start a kiosk enrolled by the test itself (its store in `dir`), once it is up to date.
    pub async fn started(config: coper_kiosk::core::KioskConfig, dir: tempfile::TempDir) -> Self {
        let core = coper_kiosk::core::KioskCore::start(config.clone()).expect("start kiosk");
        let kiosk = Self {
            core,
            config,
            _dir: dir,
        };
        kiosk.wait_up_to_date().await;
        kiosk
    }

    /// Enrol a kiosk whose clock agrees with a server frozen at `server_now` (RFC 3339).
    pub async fn enrol_at(app: &TestApp, partner: i64, url: &str, server_now: &str) -> Self {
        let kiosk = Self::enrol(app, partner, url).await;
        let offset = server_now
            .parse::<jiff::Timestamp>()
            .expect("an RFC 3339 instant")
            .duration_since(jiff::Timestamp::now())
            .as_millis() as i64;
        let kiosk = kiosk.restart_with_clock(offset).await;
        kiosk.wait_up_to_date().await;
        kiosk
    }

    /// Wait until the kiosk is online with every document in step with the server.
    pub async fn wait_up_to_date(&self) {
        eventually(15, "the kiosk to be up to date", || {
            self.core.status().up_to_date
        })
        .await;
    }

    /// Stop the kiosk (as a power cut would) and start it again from its local store.
    pub async fn restart(self) -> Self {
        let offset = self.config.clock_offset_ms;
        self.restart_with_clock(offset).await
    }

    /// Restart with the kiosk's clock off by `offset_ms` from the true time.
    pub async fn restart_with_clock(self, offset_ms: i64) -> Self {
        let Self {
            core,
            mut config,
            _dir,
        } = self;
        config.clock_offset_ms = offset_ms;
        core.shutdown().await;
        let core = coper_kiosk::core::KioskCore::start(config.clone()).expect("restart");
        Self { core, config, _dir }
    }
}

impl TestKiosk {
    /// The core, its configuration and the folder that holds its store (keep it alive).
    pub fn into_parts(
        self,
    ) -> (
        coper_kiosk::core::KioskCore,
        coper_kiosk::core::KioskConfig,
        tempfile::TempDir,
    ) {
        (self.core, self.config, self._dir)
    }

    /// Point this kiosk at another URL (a proxy), keeping its store: restart with the new URL.
    pub async fn reconnect_via(self, url: &str) -> Self {
        let Self { core, config, _dir } = self;
        core.shutdown().await;
        let conn = rusqlite::Connection::open(config.data_dir.join("kiosk.sqlite3")).unwrap();
        conn.execute("UPDATE identity SET server_url = ?1", [url])
            .unwrap();
        drop(conn);
        let core = coper_kiosk::core::KioskCore::start(config.clone()).expect("restart");
        Self { core, config, _dir }
    }
}

/// A staff member logged in through the login form, for HTTP tests of the pages.
#[derive(Clone)]
pub struct StaffSession {
    pub cookie: String,
    pub csrf: String,
}

impl TestApp {
    /// A client that does not follow redirects, so tests see them.
    pub fn page_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Log in through `/staff/login` as a browser would: the login form's CSRF cookie and field,
    /// then the session cookie. The status and page when the login is refused.
    pub async fn log_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<StaffSession, (u16, String)> {
        let client = self.page_client();
        let form = client.get(self.url("/staff/login")).send().await.unwrap();
        let login_cookie = set_cookie(&form, "coper_login_csrf").expect("a login CSRF cookie");
        let page = form.text().await.unwrap();
        let csrf = hidden_field(&page, "csrf").expect("a CSRF field");
        let answer = client
            .post(self.url("/staff/login"))
            .header("cookie", format!("coper_login_csrf={login_cookie}"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/counter"),
            ])
            .send()
            .await
            .unwrap();
        let Some(cookie) = set_cookie(&answer, "coper_session") else {
            return Err((answer.status().as_u16(), answer.text().await.unwrap()));
        };
        let cookie = format!("coper_session={cookie}");
        // The role's first page (the counter, or the pre-check's inbox) carries the token.
        let first = answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("/counter")
            .to_owned();
        let counter = client
            .get(self.url(&first))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_field(&counter, "csrf").expect("the session's CSRF token");
        Ok(StaffSession { cookie, csrf })
    }
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The value of the first hidden field `name` in an HTML page.
pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_owned())
}

impl TestApp {
    /// Post a form as `staff` (with the session's CSRF token); the status and the page.
    pub async fn submit(
        &self,
        staff: &StaffSession,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", staff.csrf.as_str())];
        form.extend_from_slice(fields);
        let response = self
            .page_client()
            .post(self.url(path))
            .header("cookie", &staff.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Close `date` for deliveries from the administration's page, with `note` as the reason;
    /// the status.
    pub async fn close_day(&self, admin: &StaffSession, date: &str, note: &str) -> u16 {
        let fields = [("date", date), ("service", "consegna-pse"), ("note", note)];
        self.submit(admin, "/admin/close-day", &fields).await.0
    }

    /// GET a page as `staff`; the status and the body's bytes.
    pub async fn fetch(&self, staff: &StaffSession, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .page_client()
            .get(self.url(path))
            .header("cookie", &staff.cookie)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    }
}

/// A real SMTP server writing every message it accepts to a maildir.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        // Debian's Python, where python3-aiosmtpd is installed (not a pyenv's first on PATH).
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (scripts/install-deps installs python3-aiosmtpd)");
        // Python and aiosmtpd's imports take seconds when the whole suite shares two cores (5 s
        // was once not enough in CI): wait up to 30 s, but not for a sink that has died.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self {
                    child,
                    port,
                    maildir,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the SMTP sink exited at start ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the SMTP sink did not start within 30 s");
    }

    /// Every message received, as text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
