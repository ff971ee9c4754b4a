//! The public site end to end: "is my permit ready?" in a real browser in four languages, the JSON
//! API behind it, and the rate limits.

use std::time::{Duration, Instant};

use coper_e2e::browser::Browser;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_demo_at};

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// A ready permit of the demo list with a fully known birth date:
/// (surname, given names, birth date, fingerprint date, receipt number).
fn a_ready_permit(app: &TestApp) -> (String, String, String, String, Option<String>) {
    app.database()
        .query_row(
            "SELECT surname, given_names, birth_date, fingerprint_date, receipt_number
             FROM ready_permits
             WHERE length(birth_date) = 10 AND delivered_at IS NULL AND given_names <> ''
               AND receipt_number IS NOT NULL
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
}

/// A date input takes keystrokes in the browser's locale order; setting its value is the
/// locale-independent way to fill it.
async fn set_date(browser: &Browser, id: &str, date: &str) {
    browser
        .script(&format!(
            "document.getElementById('{id}').value = '{date}';"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_check_answers_in_four_languages_and_limits_attempts() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let (surname, given, born, fingerprinted, _) = a_ready_permit(&app);
    let browser = Browser::start().await;

    // Every language has its own page, with lang and dir, and every field a label.
    for (lang, dir, title) in [
        ("it", "ltr", "Il mio permesso è pronto?"),
        ("en", "ltr", "Is my permit ready?"),
        ("fr", "ltr", "Mon titre de séjour est-il prêt ?"),
        ("ar", "rtl", "هل تصريح إقامتي جاهز؟"),
    ] {
        browser
            .goto(&format!("{}/status-check?lang={lang}", app.base))
            .await;
        assert_eq!(browser.text("h1").await, title);
        let attributes = browser
            .script("return [document.documentElement.lang, document.documentElement.dir];")
            .await;
        assert_eq!(attributes, json!([lang, dir]));
        let unlabelled = browser
            .script(
                "return [...document.querySelectorAll('input:not([type=hidden])')]
                   .filter(i => i.labels.length === 0).map(i => i.id);",
            )
            .await;
        assert_eq!(unlabelled, json!([]), "{lang}");
    }

    // A hit in Arabic (the last language chosen sticks), typed the way people type: names swapped,
    // lower case, without accents.
    browser.goto(&format!("{}/status-check", app.base)).await;
    let plain = |s: &str| coper_shared::names::words(s).join(" ");
    browser.type_into("#surname", &plain(&given)).await;
    browser.type_into("#name", &plain(&surname)).await;
    set_date(&browser, "birth_date", &born).await;
    set_date(&browser, "fingerprint_date", &fingerprinted).await;
    browser.click("#status-submit").await;
    browser
        .wait_for_text("#status-headline", "تصريح إقامتك جاهز للتسليم", 10)
        .await;
    let result = browser.text("#status-result").await;
    assert!(result.contains("Patronato Lavoro e Diritti"), "{result}");

    // A miss in French: the right person, a wrong fingerprinting date.
    browser
        .goto(&format!("{}/status-check?lang=fr", app.base))
        .await;
    browser.type_into("#surname", &surname).await;
    browser.type_into("#name", &given).await;
    set_date(&browser, "birth_date", &born).await;
    set_date(&browser, "fingerprint_date", "2020-01-01").await;
    browser.click("#status-submit").await;
    browser
        .wait_for_text("#status-headline", "pas encore prêt", 10)
        .await;
    // The form keeps what was typed.
    let kept = browser
        .script("return document.getElementById('surname').value;")
        .await;
    assert_eq!(kept, json!(surname));

    // Guessing the fingerprinting date again and again is stopped.
    let mut refused = false;
    for day in 2..=12 {
        set_date(&browser, "fingerprint_date", &format!("2020-01-{day:02}")).await;
        browser.click_and_wait_for_page("#status-submit").await;
        if browser
            .text("#status-headline")
            .await
            .contains("Trop de tentatives")
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the attempts were never limited");
    browser.quit().await;
}

async fn ask(app: &TestApp, body: Value) -> (u16, Value, Option<String>, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/api/v1/status-check"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_api_says_only_ready_or_not_with_the_same_shape_and_time() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let (surname, given, born, fingerprinted, receipt) = a_ready_permit(&app);
    let (status, hit, _, hit_time) = ask(
        &app,
        json!({"surname": surname.to_lowercase(), "name": given, "birth_date": born,
               "fingerprint_date": fingerprinted}),
    )
    .await;
    assert_eq!((status, &hit), (200, &json!({"status": "ready"})));
    let (status, miss, _, miss_time) = ask(
        &app,
        json!({"surname": "Nessuno", "name": "Mai", "birth_date": born,
               "fingerprint_date": fingerprinted}),
    )
    .await;
    assert_eq!((status, &miss), (200, &json!({"status": "not_ready"})));
    // Same keys, and neither answer comes back sooner than the fixed answer time.
    assert_eq!(
        hit.as_object().unwrap().keys().collect::<Vec<_>>(),
        miss.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let floor = coper_server::status::ANSWER_TIME;
    assert!(
        hit_time >= floor && miss_time >= floor,
        "{hit_time:?} {miss_time:?}"
    );

    // By receipt number with the birth date; a wrong birth date is never tolerated.
    let receipt = receipt.unwrap();
    let (_, by_receipt, _, _) = ask(
        &app,
        json!({"receipt_number": receipt.to_lowercase(), "birth_date": born}),
    )
    .await;
    assert_eq!(by_receipt, json!({"status": "ready"}));
    let (_, wrong_birth, _, _) = ask(
        &app,
        json!({"receipt_number": receipt, "birth_date": "1900-01-01"}),
    )
    .await;
    assert_eq!(wrong_birth, json!({"status": "not_ready"}));

    // A delivered permit leaves the list.
    app.database_rw()
        .execute(
            "UPDATE ready_permits SET delivered_at = '2026-11-23T08:00:00Z' WHERE receipt_number = ?1",
            [&receipt],
        )
        .unwrap();
    let (_, delivered, _, _) =
        ask(&app, json!({"receipt_number": receipt, "birth_date": born})).await;
    assert_eq!(delivered, json!({"status": "not_ready"}));

    // Bad input is named; too many attempts from one address are refused with Retry-After.
    let (status, bad, _, _) = ask(&app, json!({"surname": "Rossi"})).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "incomplete");
    let (status, bad, _, _) = ask(&app, json!({"pratica_number": "123", "birth_date": born})).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_pratica_number"))
    );
    let mut limited = None;
    for _ in 0..coper_server::status::PER_ADDRESS_PER_MINUTE {
        let (status, body, retry, _) = ask(&app, json!({"surname": "x"})).await;
        if status == 429 {
            limited = Some((body, retry));
            break;
        }
    }
    let (body, retry) = limited.expect("the address was never limited");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
}

/// Ask as the client `from`, arriving through a proxy that says so in `X-Forwarded-For`.
async fn ask_from(app: &TestApp, from: &str, body: Value) -> (u16, Value, Option<String>) {
    let response = app
        .client
        .post(app.url("/api/v1/status-check"))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry)
}

/// Finding 6: behind a trusted proxy the limits count real clients' networks (and without one a
/// forged `X-Forwarded-For` changes nothing); a permit listed with only a birth year is one
/// identity whatever day is typed; and questions about one person slow down instead of locking
/// them out: after the delay, the person is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_limits_count_real_clients_and_never_lock_a_person_out() {
    use crate::helpers::{Options, spawn};
    use coper_server::status::{BACKOFF_START, FREE_PER_IDENTITY, PER_ADDRESS_PER_MINUTE};

    let incomplete = json!({"surname": "x"});
    // No proxy trusted: the header is the client's to forge, and every question is loopback's.
    let direct = spawn_demo_at(MONDAY_NINE_ROME).await;
    for n in 0..PER_ADDRESS_PER_MINUTE {
        let (status, ..) = ask_from(&direct, &format!("198.51.{n}.1"), incomplete.clone()).await;
        assert_eq!(status, 400);
    }
    let (status, ..) = ask_from(&direct, "203.0.113.1", incomplete.clone()).await;
    assert_eq!(status, 429, "a forged header bought no new limit");

    let app = spawn(Options {
        demo: true,
        fixed_now: Some(MONDAY_NINE_ROME),
        args: vec!["--trusted-proxy".into(), "127.0.0.1/32".into()],
        ..Options::default()
    })
    .await;
    for n in 0..PER_ADDRESS_PER_MINUTE {
        let (status, ..) = ask_from(&app, &format!("198.51.100.{n}"), incomplete.clone()).await;
        assert_eq!(status, 400);
    }
    let (status, ..) = ask_from(&app, "198.51.100.250", incomplete.clone()).await;
    assert_eq!(
        status, 429,
        "one network's minute is used up, whichever address asks"
    );
    let (status, ..) = ask_from(&app, "203.0.113.1", incomplete.clone()).await;
    assert_eq!(status, 400, "another client is not held up by it");

    // A permit listed with only the birth year.
    app.database_rw()
        .execute(
            "INSERT INTO ready_permits (surname, given_names, birth_date, fingerprint_date, imported_at)
             VALUES ('Diallo', 'Moussa', '1976', '2026-10-02', '2026-11-01T08:00:00Z')",
            [],
        )
        .unwrap();
    let question = |day: u32| {
        json!({"surname": "Diallo", "name": "Moussa", "birth_date": format!("1976-03-{day:02}"),
               "fingerprint_date": "2026-10-02"})
    };
    // A guesser spread over many networks, trying days of 1976.
    let mut answered = 0;
    let mut wait = None;
    for day in 1..=11 {
        let (status, _, retry) = ask_from(&app, &format!("192.0.{day}.1"), question(day)).await;
        match status {
            200 => answered += 1,
            429 => {
                wait = retry;
                break;
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(
        answered, FREE_PER_IDENTITY,
        "every typed day counted for one person"
    );
    let wait: u64 = wait.expect("then told to wait").parse().unwrap();
    assert!(
        wait <= BACKOFF_START.as_secs(),
        "a short wait, not a lock: {wait} s"
    );
    // The person, after that short wait, is answered.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, body, _) = ask_from(&app, "203.0.113.77", question(15)).await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
}
