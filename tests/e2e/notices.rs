//! Issue #13: the notices leave through real parts — an SMTP server (`python3 -m aiosmtpd`,
//! writing a maildir) and an HTTP SMS gateway (a recorder on loopback) — configured in the
//! server's TOML file as a Questura would; they survive a SIGKILL in the middle of sending;
//! people stop them with STOP or the e-mail's link; "tell me when my permit is ready" fires on
//! the import that brings the permit and for nobody else; reminders go out once, days before.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use coper_server::demo::DEMO_PASSWORD;

use crate::helpers::{Options, SmtpSink, TestApp, eventually, spawn, spawn_in};

const MONDAY_TEN_ROME: &str = "2026-11-23T09:00:00Z";

/// One request the SMS gateway received.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    authorization: String,
    body: serde_json::Value,
}

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answer this status instead of 200 (0: 200).
    failing: Arc<std::sync::atomic::AtomicU16>,
    /// Wait this long before answering, in milliseconds.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Gateway {
    /// A recorder of SMS gateway requests on a free loopback port.
    async fn start() -> (Self, SocketAddr) {
        async fn send(State(g): State<Gateway>, headers: HeaderMap, body: Bytes) -> StatusCode {
            use std::sync::atomic::Ordering::SeqCst;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            tokio::time::sleep(Duration::from_millis(g.delay_ms.load(SeqCst))).await;
            let failing = g.failing.load(SeqCst);
            if failing != 0 {
                return StatusCode::from_u16(failing).unwrap();
            }
            g.received.lock().unwrap().push(Received {
                key: header("idempotency-key"),
                authorization: header("authorization"),
                body: serde_json::from_slice(&body).unwrap(),
            });
            StatusCode::OK
        }
        let gateway = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/send", post(send))
            .with_state(gateway.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (gateway, addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// The `[notices]` table pointing at the sink and the gateway.
fn notices_config(dir: &Path, smtp_port: u16, gateway: SocketAddr) -> PathBuf {
    let path = dir.join("coper.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[notices]
per_minute = 100000
public_url = "https://prenota.example.invalid/"

[notices.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Questura di Pavia <noreply@example.invalid>"

[notices.sms]
url = "http://{gateway}/send"
headers = {{ Authorization = "Bearer {{secret}}", Idempotency-Key = "{{id}}" }}
body = '{{"to": "{{to}}", "text": "{{text}}"}}'
secret_env = "COPER_TEST_SMS_KEY"
reply_token_env = "COPER_TEST_REPLY_TOKEN"
timeout_seconds = 5
"#
        ),
    )
    .unwrap();
    path
}

const REPLY_TOKEN: &str = "0123456789abcdef0123";

fn options(config: &Path, now: Option<&'static str>) -> Options {
    Options {
        demo: true,
        fixed_now: now,
        args: vec!["--config".into(), config.to_str().unwrap().into()],
        env: vec![
            ("COPER_TEST_SMS_KEY".into(), "chiave-di-prova".into()),
            ("COPER_TEST_REPLY_TOKEN".into(), REPLY_TOKEN.into()),
        ],
        ..Options::default()
    }
}

/// (recipient, lang, body) of the notices of `kinds` on `channel`.
fn queued(app: &TestApp, channel: &str, kinds: &str) -> Vec<(String, String, String)> {
    let db = app.database();
    let mut stmt = db
        .prepare(&format!(
            "SELECT recipient, lang, body FROM notices WHERE channel = ?1 AND kind IN ({kinds})
             ORDER BY id"
        ))
        .unwrap();
    stmt.query_map([channel], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Closing a day with 30 bookings tells the 30 people by SMS (and those who gave one, by
/// e-mail), each in their language with the Italian line; the SMS reach the gateway with its
/// key and one idempotency key each, the e-mails the SMTP server with a Message-ID, a subject and
/// the opt-out link. The link (asked, then confirmed) and a STOP reply stop the messages to
/// that contact; a gateway that answers 500 holds nothing and the notice waits for its retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_day_tells_every_person_by_sms_and_e_mail_in_their_language() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path());
    let (gateway, gateway_addr) = Gateway::start().await;
    let config = notices_config(dir.path(), smtp.port, gateway_addr);
    let app = spawn(options(&config, Some(MONDAY_TEN_ROME))).await;
    let day = "2026-11-24";
    let booked = app.one::<i64>(
        "SELECT count(*) FROM appointments WHERE slot_date = ?1 AND status = 'booked'",
        day,
    );
    assert!(booked >= 25, "a busy demo day: {booked}");
    let with_email = app.one::<i64>(
        "SELECT count(*) FROM appointments WHERE slot_date = ?1 AND email IS NOT NULL",
        day,
    );
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    assert_eq!(app.close_day(&admin, day, "sciopero").await, 200);

    let sms = queued(&app, "sms", "'moved', 'cancelled'");
    assert_eq!(sms.len() as i64, booked, "one SMS a booking");
    assert_eq!(
        queued(&app, "email", "'moved', 'cancelled'").len() as i64,
        with_email
    );
    // Each in the language the booking asked for.
    let db = app.database();
    for (recipient, lang, body) in &sms {
        let asked: String = db
            .query_row(
                "SELECT notice_lang FROM appointments WHERE phone = ?1",
                [recipient],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(lang, &asked);
        assert!(
            body.contains("sciopero") && body.contains("Questura di Pavia"),
            "{body}"
        );
    }
    let langs: std::collections::BTreeSet<&str> = sms.iter().map(|(_, l, _)| l.as_str()).collect();
    assert!(langs.len() >= 8, "many languages on a demo day: {langs:?}");

    eventually(30, "every SMS at the gateway", || {
        gateway.received().len() as i64 == booked
    })
    .await;
    let received = gateway.received();
    for (recipient, _, body) in &sms {
        let got = received
            .iter()
            .find(|r| r.body["to"] == recipient.as_str())
            .unwrap_or_else(|| panic!("no SMS to {recipient}"));
        assert_eq!(
            got.body["text"],
            body.as_str(),
            "the text as queued, JSON-escaped"
        );
        assert_eq!(got.authorization, "Bearer chiave-di-prova");
        assert!(got.key.starts_with("coper-notice-"), "{}", got.key);
    }
    let keys: std::collections::BTreeSet<&str> = received.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), received.len(), "one key per notice");

    eventually(30, "every e-mail at the SMTP server", || {
        smtp.messages().len() as i64 == with_email
    })
    .await;
    let mails = smtp.messages();
    let mail = &mails[0];
    assert!(
        mail.contains("From: \"Questura di Pavia\" <noreply@example.invalid>"),
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <coper-notice-"), "{mail}");
    assert!(mail.contains("Subject: "), "{mail}");
    let link_start = mail
        .find("List-Unsubscribe: <https://prenota.example.invalid/notices/stop/")
        .expect("an opt-out link");
    let token: String = mail[link_start..]
        .split("/notices/stop/")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let address: String = db
        .query_row(
            "SELECT recipient FROM notices WHERE stop_token = ?1",
            [&token],
            |r| r.get(0),
        )
        .unwrap();

    // The link asks first; the confirmation stops the messages to that address.
    let page = app.text(&format!("/notices/stop/{token}")).await;
    assert!(page.contains("stop-submit"), "{page}");
    let client = reqwest::Client::new();
    let done = client
        .post(app.url(&format!("/notices/stop/{token}?lang=en")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("you will receive no more messages"), "{done}");
    let unknown = client
        .post(app.url(&format!("/notices/stop/{}", "f".repeat(32))))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // STOP by SMS: the gateway forwards the reply with its token; a wrong token is refused.
    let phone = sms[0].0.clone();
    let reply = |token: &str| {
        client
            .post(app.url(&format!("/api/v1/notices/sms-reply?token={token}")))
            .form(&[("from", phone.trim_start_matches('+')), ("text", "Stop")])
            .send()
    };
    assert_eq!(reply("wrong").await.unwrap().status(), 400);
    let stopped: serde_json::Value = reply(REPLY_TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(stopped["stopped"], true);

    // Now the Questura cancels every booking of the next day: nothing to the two who stopped,
    // and a gateway answering 500 leaves the SMS waiting for their retry, the page unharmed.
    gateway
        .failing
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let before = gateway.received().len();
    assert_eq!(app.close_day(&admin, "2026-11-25", "neve").await, 200);
    let to = |recipient: &str| {
        app.one::<i64>(
            "SELECT count(*) FROM notices WHERE recipient = ?1 AND body LIKE '%neve%'
             AND failed_at IS NULL",
            recipient,
        )
    };
    assert_eq!(to(&phone), 0, "STOP honoured");
    assert_eq!(to(&address), 0, "the e-mail link honoured");
    eventually(20, "an attempt refused by the gateway", || {
        app.scalar("SELECT count(*) FROM notices WHERE last_error LIKE '%500%' AND sent_at IS NULL")
            > 0
    })
    .await;
    assert_eq!(gateway.received().len(), before);
    let (status, page) = app.fetch(&admin, "/admin/notices").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(page).unwrap().contains("500"));
}

/// 200 notices queued, the server killed with SIGKILL while it hands them to the gateway,
/// started again: every notice reaches the gateway, and at most one twice (the one in flight
/// at the kill, sent again with the same idempotency key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_a_kill_in_the_middle_of_sending() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, gateway_addr) = Gateway::start().await;
    // No SMTP server: only SMS here.
    let config = notices_config(dir.path(), 9, gateway_addr);
    let data = dir.path().join("data");
    let mut app = spawn_in(&data, options(&config, Some(MONDAY_TEN_ROME)), None).await;
    gateway
        .delay_ms
        .store(15, std::sync::atomic::Ordering::SeqCst);
    app.queue_notices(200, "sms", "2026-11-23T09:00:00Z");
    eventually(60, "some notices sent", || gateway.received().len() >= 40).await;
    app.signal_and_wait("KILL");
    let at_kill = gateway.received().len();
    assert!(at_kill < 200, "killed in the middle: {at_kill}");
    let app = spawn_in(&data, options(&config, Some(MONDAY_TEN_ROME)), None).await;
    eventually(90, "every notice sent after the restart", || {
        app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NULL") == 0
    })
    .await;
    let received = gateway.received();
    let mut per_text = std::collections::BTreeMap::<String, usize>::new();
    for r in &received {
        *per_text
            .entry(r.body["text"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_text.len(), 200, "every notice delivered");
    let twice: Vec<_> = per_text.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= 1,
        "at most the one in flight twice: {twice:?}"
    );
    for (text, _) in twice {
        let sent: Vec<&Received> = received
            .iter()
            .filter(|r| r.body["text"] == text.as_str())
            .collect();
        assert_eq!(sent[0].key, sent[1].key, "the same idempotency key");
    }
}

/// "Tell me when my permit is ready": a person whose permit is not ready leaves a phone (a bad
/// one is refused in their language, so is a missing consent); an import that brings someone
/// else sends nothing; the import that brings their permit sends one message, in the language
/// chosen, and the request is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tell_me_when_ready_fires_on_the_import_that_brings_the_permit_and_for_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, gateway_addr) = Gateway::start().await;
    let config = notices_config(dir.path(), 9, gateway_addr);
    // The real clock: the import (`coper-server import-ready`) runs on it too.
    let app = spawn(options(&config, None)).await;
    app.without_quiet_hours();
    let client = reqwest::Client::new();
    let ask = |phone: &'static str, consent: bool| {
        let mut form = vec![
            ("lang", "fr"),
            ("surname", "Nguyen Van"),
            ("name", "Minh"),
            ("birth_date", "1991-03-14"),
            ("fingerprint_date", "2026-10-02"),
            ("notify_phone", phone),
            ("notify_lang", "uk"),
        ];
        if consent {
            form.push(("notify_consent", "1"));
        }
        client
            .post(app.url("/status-check/notify"))
            .form(&form)
            .send()
    };
    let bad = ask("333 12", true).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("indicatif du pays"));
    let no_consent = ask("+39 333 7654321", false).await.unwrap();
    assert_eq!(no_consent.status(), 400);
    let kept = ask("+39 333 7654321", true).await.unwrap();
    assert_eq!(kept.status(), 200);
    assert!(kept.text().await.unwrap().contains("notify-done"));
    assert_eq!(app.scalar("SELECT count(*) FROM ready_watches"), 1);

    let import = |rows: &str| {
        let file = dir.path().join("pronti.csv");
        std::fs::write(
            &file,
            format!("Cognome;Nome;Data di nascita;Data impronte\n{rows}"),
        )
        .unwrap();
        app.cli(&["import-ready", file.to_str().unwrap()])
    };
    // Someone else: same names, another birth date; another person the same day.
    import("Nguyen Van;Minh;14/03/1992;02/10/2026\nTran;Minh;14/03/1991;02/10/2026\n");
    assert_eq!(
        app.scalar("SELECT count(*) FROM notices WHERE kind = 'ready'"),
        0
    );
    import("NGUYEN VAN;Minh;14/03/1991;02/10/2026\n");
    assert_eq!(
        app.scalar("SELECT count(*) FROM notices WHERE kind = 'ready'"),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM ready_watches"), 0);
    eventually(20, "the message at the gateway", || {
        gateway.received().len() == 1
    })
    .await;
    let sent = &gateway.received()[0];
    assert_eq!(sent.body["to"], "+393337654321");
    let text = sent.body["text"].as_str().unwrap();
    assert!(text.contains("Пав") || text.contains("Questura"), "{text}");
    assert!(
        text.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
        "in Ukrainian first: {text}"
    );
    // Asking again now: the permit is ready, so nothing is kept.
    let again = ask("+39 333 7654321", true).await.unwrap();
    assert!(again.text().await.unwrap().contains("status-headline"));
    assert_eq!(app.scalar("SELECT count(*) FROM ready_watches"), 0);
}

/// The reminder goes out the configured days before (two, by default) at the configured hour,
/// once per booking, never in the quiet hours: queued on Tuesday evening for Thursday's
/// bookings, held through the night, sent on Wednesday morning; nothing for a booking made after
/// its reminder's hour, nothing twice after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_days_before_once_and_never_in_the_quiet_hours() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let at = |now: &'static str| Options {
        demo: true,
        fixed_now: Some(now),
        ..Options::default()
    };
    // Monday 10:00 in Rome: the demo books the week.
    let mut app = spawn_in(&data, at(MONDAY_TEN_ROME), None).await;
    let thursday = app.scalar(
        "SELECT count(*) FROM appointments WHERE slot_date = '2026-11-26' AND status = 'booked'
           AND consent_at IS NOT NULL",
    );
    let contacts = app.scalar(
        "SELECT count(phone) + count(email) FROM appointments
         WHERE slot_date = '2026-11-26' AND status = 'booked' AND consent_at IS NOT NULL",
    );
    assert!(thursday > 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM notices WHERE kind = 'reminder'"),
        0,
        "Wednesday's were booked at their reminder's hour: no reminder"
    );
    app.signal_and_wait("TERM");

    // Tuesday 21:30 in Rome: Thursday's reminders are due (Tuesday 10:00), but it is quiet.
    let mut app = spawn_in(&data, at("2026-11-24T20:30:00Z"), None).await;
    eventually(10, "Thursday's reminders queued", || {
        app.scalar("SELECT count(*) FROM notices WHERE kind = 'reminder'") == contacts
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NOT NULL AND kind = 'reminder'"),
        0,
        "nothing leaves in the quiet hours"
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM appointments WHERE reminded_at IS NOT NULL
               AND slot_date = '2026-11-26'"
        ),
        thursday
    );
    app.signal_and_wait("TERM");

    // Wednesday 08:30 in Rome: the quiet hours are over; Friday's moment has not come.
    let app = spawn_in(&data, at("2026-11-25T07:30:00Z"), None).await;
    eventually(15, "the reminders sent", || {
        app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NOT NULL AND kind = 'reminder'")
            == contacts
    })
    .await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM notices WHERE kind = 'reminder'"),
        contacts,
        "each booking reminded once"
    );
    let body: String = app.one(
        "SELECT body FROM notices WHERE kind = 'reminder' AND lang = ?1 LIMIT 1",
        "it",
    );
    assert!(body.contains("26/11/2026"), "{body}");
}

/// The administration edits a message in a language: a text missing a placeholder the message
/// needs is refused when saved, with the reason, and nothing changes; a good one is used by the
/// next notice; an empty one goes back to the shipped text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_text_is_checked_when_saved_and_used_by_the_next_notice() {
    let app = spawn(Options {
        demo: true,
        fixed_now: Some(MONDAY_TEN_ROME),
        ..Options::default()
    })
    .await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (status, page) = app
        .submit(
            &admin,
            "/admin/notices/templates",
            &[
                ("lang", "en"),
                ("moved", "The Questura moved your appointment."),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("manca il segnaposto"), "{page}");
    assert_eq!(app.scalar("SELECT count(*) FROM notice_templates"), 0);
    let (status, page) = app
        .submit(
            &admin,
            "/admin/notices/templates",
            &[
                ("lang", "en"),
                (
                    "moved",
                    "NEW TIME {date} {time} for {code} ({reason}), Questura of {place}.",
                ),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("templates-saved"));
    assert_eq!(app.close_day(&admin, "2026-11-24", "sciopero").await, 200);
    let body: String = app.one(
        "SELECT body FROM notices WHERE kind = 'moved' AND lang = ?1 LIMIT 1",
        "en",
    );
    assert!(
        body.starts_with("NEW TIME ") && body.contains("sciopero"),
        "{body}"
    );
    assert!(
        body.contains("\nLa Questura di"),
        "the Italian line as shipped: {body}"
    );
    let (status, _) = app
        .submit(
            &admin,
            "/admin/notices/templates",
            &[("lang", "en"), ("moved", "")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.scalar("SELECT count(*) FROM notice_templates"), 0);
}

/// The counter (or the administration, on the same page) takes down a person's phone, e-mail,
/// language and consent for a booking made without them: a malformed number is refused with the
/// reason and nothing is stored; a good contact is, and the next change the Questura makes
/// reaches the person in their language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_records_a_contact_and_the_next_notice_reaches_it() {
    let app = spawn(Options {
        demo: true,
        fixed_now: Some(MONDAY_TEN_ROME),
        ..Options::default()
    })
    .await;
    let id: String = app.one(
        "SELECT id FROM appointments WHERE slot_date = ?1 AND status = 'booked' LIMIT 1",
        "2026-11-26",
    );
    let clerk = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (status, page) = app
        .fetch(&clerk, &format!("/counter/appointments/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(page).unwrap().contains("contact-save"));
    let path = format!("/counter/appointments/{id}/contact");
    let (status, page) = app
        .submit(
            &clerk,
            &path,
            &[("phone", "333 12x"), ("lang", "sq"), ("consent", "1")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("Telefono non valido"), "{page}");
    let stored = || -> (Option<String>, Option<String>, Option<String>) {
        app.database()
            .query_row(
                "SELECT phone, email, notice_lang FROM appointments WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    let before = stored();
    let (status, page) = app
        .submit(
            &clerk,
            &path,
            &[
                ("phone", "+355 69 123 4567"),
                ("email", ""),
                ("lang", "sq"),
                ("consent", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("contact-saved"));
    assert_ne!(stored(), before);
    assert_eq!(
        stored(),
        (Some("+355691234567".into()), None, Some("sq".into()))
    );
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (status, _) = app
        .submit(
            &admin,
            &format!("/admin/appointments/{id}/cancel"),
            &[("reason", "permesso da ristampare")],
        )
        .await;
    assert!(status == 200 || status == 303, "{status}");
    let (recipient, lang, body): (String, String, String) = app
        .database()
        .query_row(
            "SELECT recipient, lang, body FROM notices WHERE appointment_id = ?1
               AND kind = 'cancelled'",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((recipient.as_str(), lang.as_str()), ("+355691234567", "sq"));
    assert!(body.contains("permesso da ristampare"), "{body}");
}
