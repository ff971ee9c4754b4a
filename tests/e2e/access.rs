//! Issue #15, access for everyone, on the web: axe-core (WCAG 2.0 and 2.1, A and AA) finds
//! nothing on any page — every public page in every language of the site, with the status check
//! after a hit, a miss and an error, the person's pre-check page, and every staff page — and no
//! page scrolls sideways at 320 CSS px (public) or 640 (staff, a 1280 px screen at 200 % zoom).

use coper_e2e::browser::Browser;
use coper_server::{demo::DEMO_PASSWORD, web::i18n::Lang};

use crate::helpers::spawn_demo_at;

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// What is wrong with the page now: axe's violations, and sideways scrolling.
async fn faults(browser: &Browser, page: &str) -> Vec<String> {
    let mut found: Vec<String> = browser
        .axe()
        .await
        .into_iter()
        .map(|v| format!("{page}: {v}"))
        .collect();
    if browser.scrolls_sideways().await {
        let width = browser
            .script("return document.documentElement.scrollWidth + ' > ' + window.innerWidth;")
            .await;
        found.push(format!("{page}: scrolls sideways ({width})"));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_nothing_and_no_page_scrolls_sideways() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let (surname, given, born, fingerprinted): (String, String, String, String) = app
        .database()
        .query_row(
            "SELECT surname, given_names, birth_date, fingerprint_date FROM ready_permits
             WHERE length(birth_date) = 10 AND delivered_at IS NULL AND given_names <> ''
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    // A pre-check conversation, for the person's page.
    let staff = app.log_in("documenti", DEMO_PASSWORD).await.unwrap();
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files",
            &[
                ("surname", surname.as_str()),
                ("birth_date", born.as_str()),
                ("documents", "passport"),
                ("documents", "housing"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let token: String = app.one("SELECT token FROM precheck_files WHERE id = ?1", 1);
    let mut found = Vec::new();

    // The public pages, on a 320 px screen, in every language of the site.
    let browser = Browser::start().await;
    browser.resize(320, 800).await;
    let set = |id: &'static str, value: String| {
        let browser = &browser;
        async move {
            browser
                .script(&format!(
                    "document.getElementById('{id}').value = '{value}';"
                ))
                .await;
        }
    };
    for lang in Lang::ALL.map(Lang::code) {
        for path in [
            format!("/?lang={lang}"),
            format!("/status-check?lang={lang}"),
            format!("/documents/{token}?lang={lang}"),
            "/documents/00000000000000000000000000000000".to_owned(),
        ] {
            browser.goto(&app.url(&path)).await;
            found.extend(faults(&browser, &path).await);
        }
        // The status check after a hit, a miss and an error.
        for (case, fingerprint) in [
            ("hit", fingerprinted.clone()),
            ("miss", "2020-01-01".to_owned()),
            ("error", "2099-01-01".to_owned()),
        ] {
            browser
                .goto(&app.url(&format!("/status-check?lang={lang}")))
                .await;
            browser.type_into("#surname", &surname).await;
            browser.type_into("#name", &given).await;
            set("birth_date", born.clone()).await;
            set("fingerprint_date", fingerprint).await;
            browser.click_and_wait_for_page("#status-submit").await;
            found.extend(faults(&browser, &format!("status check, {case}, {lang}")).await);
        }
    }
    browser.quit().await;

    // The page that stops the messages, reached from an e-mail (a closed day sends some).
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let day: String = app.one(
        "SELECT slot_date FROM appointments WHERE status = ?1 AND email IS NOT NULL
         AND consent_at IS NOT NULL ORDER BY slot_date DESC LIMIT 1",
        "booked",
    );
    assert_eq!(app.close_day(&admin, &day, "sciopero").await, 200);
    let stop: String = app.one(
        "SELECT stop_token FROM notices WHERE stop_token IS NOT NULL AND ?1 LIMIT 1",
        1,
    );
    let browser = Browser::start().await;
    browser.resize(320, 800).await;
    browser
        .goto(&app.url(&format!("/notices/stop/{stop}")))
        .await;
    found.extend(faults(&browser, "/notices/stop").await);
    browser.quit().await;

    // The staff's pages, at 640 px: a 1280 px screen at 200 % zoom.
    let browser = Browser::start().await;
    browser.resize(640, 900).await;
    browser.goto(&app.url("/staff/login")).await;
    found.extend(faults(&browser, "/staff/login").await);
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    let service: String = app.one("SELECT id FROM services WHERE ?1 ORDER BY rowid LIMIT 1", 1);
    let (code, appointment, permit): (String, String, i64) = app
        .database()
        .query_row(
            "SELECT booking_code, id, ready_permit_id FROM appointments
             WHERE status = 'booked' AND ready_permit_id IS NOT NULL ORDER BY slot_date LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    for path in [
        format!("/counter/appointments/{appointment}"),
        format!("/admin/permits/{permit}"),
        "/counter".to_owned(),
        format!("/counter/lookup?q={code}"),
        "/counter/day".to_owned(),
        "/counter/day-list".to_owned(),
        "/precheck".to_owned(),
        "/precheck/files/1".to_owned(),
        "/admin".to_owned(),
        "/admin/settings".to_owned(),
        format!("/admin/services/{service}"),
        "/admin/close-day".to_owned(),
        "/admin/partners".to_owned(),
        "/admin/partners/1".to_owned(),
        "/admin/permits".to_owned(),
        "/admin/permits/list".to_owned(),
        "/admin/appointments".to_owned(),
        "/admin/notices".to_owned(),
        "/admin/notices/templates".to_owned(),
        "/admin/precheck".to_owned(),
        "/admin/missed?partner=1".to_owned(),
        "/admin/moved?partner=1".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        browser.goto(&app.url(&path)).await;
        found.extend(faults(&browser, &path).await);
    }
    browser.quit().await;
    assert!(
        found.is_empty(),
        "{} faults:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// Errors are said where they are: the status check marks the fields an error is about and
/// points them at the message, and the page's title names the answer; the operator form keeps
/// what was typed after a refusal; the counter's scanner field points at the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_answers_are_tied_to_their_fields_and_titles() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/status-check?lang=en")).await;
    browser.type_into("#surname", "Rossi").await;
    browser.click_and_wait_for_page("#status-submit").await;
    let marks = browser
        .script(
            "return ['surname', 'name', 'birth_date', 'fingerprint_date', 'number'].map(id => {
                const f = document.getElementById(id);
                return id + ':' + f.getAttribute('aria-invalid') + ':' + f.getAttribute('aria-describedby');
            });",
        )
        .await;
    assert_eq!(
        marks,
        serde_json::json!([
            "surname:null:null",
            "name:true:status-headline",
            "birth_date:true:status-headline",
            "fingerprint_date:true:status-headline fingerprint-help",
            "number:null:null"
        ])
    );
    let title = browser.script("return document.title;").await;
    assert!(
        title
            .as_str()
            .unwrap()
            .starts_with("Enter surname, given names"),
        "{title}"
    );

    // The operator form after a password too short: the username and the name are still there.
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser.goto(&app.url("/admin/partners/1")).await;
    browser.type_into("#o-username", "nuovo.operatore").await;
    browser.type_into("#o-name", "Nuova Operatrice").await;
    browser.type_into("#o-password", "corta").await;
    browser
        .click_and_wait_for_page("form[action$='/operators'] button[type=submit]")
        .await;
    let kept = browser
        .script("return [document.getElementById('o-username').value, document.getElementById('o-name').value];")
        .await;
    assert_eq!(
        kept,
        serde_json::json!(["nuovo.operatore", "Nuova Operatrice"])
    );

    // The counter: the scanner's field is described by the verdict.
    let code: String = app.one(
        "SELECT booking_code FROM appointments WHERE status = ?1 ORDER BY slot_date LIMIT 1",
        "booked",
    );
    browser
        .goto(&app.url(&format!("/counter/lookup?q={code}")))
        .await;
    let described = browser
        .script("return document.getElementById('scan').getAttribute('aria-describedby');")
        .await;
    assert_eq!(described, "outcome-headline");
    browser.quit().await;
}
