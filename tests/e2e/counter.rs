//! The Questura's counter end to end: a real server, real kiosk cores, and real headless Chromium
//! driving the staff pages as a clerk would — log in, scan with a keyboard-wedge scanner, check in,
//! deliver, watch the day fill up live, print the day's list.

use std::time::Duration;

use coper_e2e::browser::{Browser, ENTER};
use coper_server::{demo::DEMO_PASSWORD, web::Access};
use coper_shared::{
    jiff::civil,
    ticket::{Issuer, Ticket},
};

use crate::helpers::{Proxy, StaffSession, TestApp, TestKiosk, delivery, spawn_demo_at};

/// Monday 23 November 2026, 09:00 in Rome: the counter has just opened.
const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// A kiosk of partner body 1, reaching the server at `url`, whose clock agrees with the
/// server's frozen one.
async fn kiosk_at_server_time(app: &TestApp, url: &str) -> TestKiosk {
    TestKiosk::enrol_at(app, 1, url, MONDAY_NINE_ROME).await
}

/// Book the first free delivery slot at `kiosk` and wait for the server to confirm it.
async fn book_confirmed(
    kiosk: &TestKiosk,
    surname: &str,
    given: &str,
) -> coper_kiosk::core::LocalBooking {
    let proposal = kiosk
        .core
        .first_free(&delivery())
        .unwrap()
        .expect("a free slot");
    let booking = kiosk
        .core
        .book(&delivery(), proposal.slot.key(), surname, given, None)
        .unwrap();
    kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(15))
        .await
        .expect("a verdict");
    booking
}

fn set_window(app: &TestApp, early: i64, late: i64) {
    app.database_rw()
        .execute(
            "UPDATE settings SET checkin_early_minutes = ?1, checkin_late_minutes = ?2",
            [early, late],
        )
        .unwrap();
}

/// The server's ticket key, set by the test so it can sign tickets the way the server does.
fn server_key(app: &TestApp) -> ed25519_dalek::SigningKey {
    let secret = [42u8; 32];
    app.database_rw()
        .execute(
            "INSERT OR REPLACE INTO server_identity (id, secret_key, created_at)
             VALUES (1, ?1, '2026-01-01T00:00:00Z')",
            [secret.to_vec()],
        )
        .unwrap();
    ed25519_dalek::SigningKey::from_bytes(&secret)
}

/// A demo appointment (server-issued) of `date`, still booked: id, time.
fn demo_appointment(app: &TestApp, date: &str) -> (String, String) {
    app.database()
        .query_row(
            "SELECT id, slot_time FROM appointments
             WHERE slot_date = ?1 AND status = 'booked' AND kiosk_id IS NULL
             ORDER BY slot_time LIMIT 1",
            [date],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn server_ticket(key: &ed25519_dalek::SigningKey, id: &str, date: &str, time: &str) -> String {
    Ticket {
        issuer: Issuer::Server,
        booking: id.parse().unwrap(),
        service: delivery(),
        date: date.parse().unwrap(),
        time: civil::Time::strptime("%H:%M", time).unwrap(),
    }
    .sign(key)
}

/// Scan `text` as a USB scanner does: keystrokes into the focused field, then Enter. Returns the
/// headline the page shows.
async fn scan(browser: &Browser, base: &str, text: &str) -> String {
    browser.goto(&format!("{base}/counter")).await;
    browser.find("#scan").await;
    browser.type_into_focus(&format!("{text}{ENTER}")).await;
    browser.text("#outcome-headline").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_scans_checks_in_delivers_and_watches_the_day_fill_up() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let kiosk = kiosk_at_server_time(&app, &app.ws_url()).await;
    // Nobody may check in early without the clerk's say-so.
    set_window(&app, 0, 90);
    let booking = book_confirmed(&kiosk, "Haddad", "Amira").await;
    let ticket = kiosk.core.ticket(&booking);

    let clerk = Browser::start().await;
    clerk.log_in(&app.base, "sportello", DEMO_PASSWORD).await;
    assert!(clerk.current_url().await.ends_with("/counter"));

    // The kiosk's booking is later today: the page says so and lets the clerk decide.
    assert_eq!(scan(&clerk, &app.base, &ticket).await, "In anticipo");
    assert!(clerk.text("#outcome-name").await.contains("HADDAD Amira"));
    clerk.click("#check-in-anyway").await;
    clerk
        .wait_for_text("#outcome-headline", "Presenza registrata", 10)
        .await;
    // A second scan of the same reminder: already checked in, at the server's 09:00.
    assert_eq!(scan(&clerk, &app.base, &ticket).await, "Già presente");
    assert!(
        clerk
            .text("#outcome-detail")
            .await
            .contains("già registrata alle 09:00")
    );
    clerk.click("#deliver").await;
    clerk
        .wait_for_text("#outcome-headline", "Permesso consegnato", 10)
        .await;
    let status: String = app.one(
        "SELECT status FROM appointments WHERE request_id = ?1",
        booking.request.to_string(),
    );
    assert_eq!(status, "delivered");

    // A forged reminder: one character of the signature changed.
    let mut forged = ticket.clone().into_bytes();
    let at = forged.len() - 20;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        scan(&clerk, &app.base, &forged).await,
        "Codice contraffatto"
    );

    // Server-issued reminders: tomorrow's is the wrong day; today's checks in at once.
    let key = server_key(&app);
    let (tomorrow_id, tomorrow_time) = demo_appointment(&app, "2026-11-24");
    let tomorrow = server_ticket(&key, &tomorrow_id, "2026-11-24", &tomorrow_time);
    assert_eq!(scan(&clerk, &app.base, &tomorrow).await, "Giorno sbagliato");
    set_window(&app, 720, 720);
    let (today_id, today_time) = demo_appointment(&app, "2026-11-23");
    let today = server_ticket(&key, &today_id, "2026-11-23", &today_time);
    assert_eq!(scan(&clerk, &app.base, &today).await, "Presenza registrata");
    // Audited with who and when.
    let audited = app.scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('appointment.checked_in',
                 'appointment.delivered') AND actor LIKE 'user:%' AND source = '127.0.0.1'",
    );
    assert_eq!(audited, 3);

    // A second clerk watches the day of the kiosk's bookings; a new booking appears by itself.
    let watcher = Browser::start().await;
    watcher.log_in(&app.base, "sportello", DEMO_PASSWORD).await;
    watcher
        .goto(&format!("{}/counter/day?date={}", app.base, booking.date))
        .await;
    let before = watcher.text("#day-table").await;
    assert!(before.contains("HADDAD Amira"), "{before}");
    // The page says when its event stream is open; the booking lands after that.
    watcher
        .wait_for_script(
            "return document.getElementById('live-state').dataset.live === 'open';",
            5,
        )
        .await;
    let next = book_confirmed(&kiosk, "Okonkwo", "Chidi").await;
    assert_eq!(
        next.date, booking.date,
        "the next free slot is the same day"
    );
    watcher
        .wait_for_text("#day-table", "OKONKWO Chidi", 5)
        .await;
    watcher.quit().await;
    clerk.quit().await;
}

/// The day list PDF has the day's names in time order, one service per page set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_day_list_has_the_names_in_time_order() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    // One person already delivered when the list is printed: marked, with no box to tick.
    let (delivered, drawer): (String, String) = app
        .database()
        .query_row(
            "SELECT a.id, r.drawer FROM appointments a JOIN ready_permits r ON r.id = a.ready_permit_id
             WHERE a.slot_date = '2026-11-24' AND a.status = 'booked' AND r.drawer <> ''
             ORDER BY a.slot_time LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for step in [
        "UPDATE appointments SET status = 'checked_in', checked_in_at = '2026-11-24T08:00:00Z' WHERE id = ?1",
        "UPDATE appointments SET status = 'delivered', delivered_at = '2026-11-24T08:05:00Z' WHERE id = ?1",
    ] {
        app.database_rw().execute(step, [&delivered]).unwrap();
    }
    let staff = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (status, pdf) = app
        .fetch(
            &staff,
            "/counter/day-list.pdf?date=2026-11-24&service=consegna-pse",
        )
        .await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext is installed (poppler-utils: scripts/install-deps)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Questura di Pavia (dimostrazione)"), "{text}");
    assert!(text.contains("martedì 24 novembre 2026"), "{text}");
    assert!(text.contains("Consegna permesso elettronico"), "{text}");
    assert!(text.contains("Cassetto"), "{text}");
    let code: String = app.one(
        "SELECT booking_code FROM appointments WHERE id = ?1",
        &delivered,
    );
    let line = text
        .lines()
        .find(|l| l.contains(&code))
        .expect("the delivered person's line");
    assert!(
        line.contains(&drawer) && line.trim_end().ends_with("consegnato"),
        "{line}\n{text}"
    );
    let expected: Vec<(String, String)> = {
        let db = app.database();
        let mut stmt = db
            .prepare(
                "SELECT slot_time, surname, given_names FROM appointments
                 WHERE slot_date = '2026-11-24' AND service_id = 'consegna-pse'
                   AND status <> 'cancelled'
                 ORDER BY slot_time, surname COLLATE NOCASE, given_names",
            )
            .unwrap();
        stmt.query_map([], |r| {
            let surname: String = r.get(1)?;
            let given: String = r.get(2)?;
            Ok((r.get(0)?, format!("{} {given}", surname.to_uppercase())))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    assert!(expected.len() >= 3, "the demo books Tuesday");
    // Each name is found after the one before it: the list is in time order.
    let mut from = 0;
    for (time, name) in &expected {
        let at = text[from..]
            .find(name.as_str())
            .unwrap_or_else(|| panic!("{name} ({time}) missing or out of order:\n{text}"));
        from += at + name.len();
    }
}

/// Every page route refuses anonymous visitors, the wrong role, and forms without the session's
/// CSRF token — walked from the router's own list, so a new route cannot be forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_route_refuses_anonymous_wrong_role_and_forged_requests() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let counter = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let precheck = app.log_in("documenti", DEMO_PASSWORD).await.unwrap();
    let client = app.page_client();
    let pages = coper_server::web::pages();
    let mut checked = 0;
    // Logging out ends the session the walk uses: do it last.
    let mut routes = pages.routes().to_vec();
    routes.sort_by_key(|r| r.path == "/staff/logout");
    for route in &routes {
        let path = route
            .path
            .replace("{id}", "0190f000-0000-7000-8000-000000000000")
            .replace("{step}", "check-in")
            .replace("{action}", "ask")
            .replace("{*file}", "coper.css");
        let request = |cookie: Option<&str>, csrf: Option<&str>| {
            let mut request = client.request(route.method.clone(), app.url(&path));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            if let Some(csrf) = csrf {
                request = request.form(&[("csrf", csrf)]);
            }
            request
        };
        if route.access == Access::Public {
            continue;
        }
        checked += 1;
        let anonymous = request(None, None).send().await.unwrap();
        let status = anonymous.status().as_u16();
        if route.method == reqwest::Method::GET {
            assert_eq!(status, 303, "anonymous GET {path}");
            assert!(
                anonymous.headers()["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/staff/login"),
                "{path}"
            );
        } else {
            assert_eq!(status, 401, "anonymous {} {path}", route.method);
            // A logged-in clerk without the CSRF token is refused too.
            let forged = request(Some(&counter.cookie), Some("not-the-token"))
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), 403, "forged {} {path}", route.method);
        }
        let as_counter = request(Some(&counter.cookie), Some(&counter.csrf))
            .send()
            .await
            .unwrap();
        if matches!(route.access, Access::Admin | Access::Precheck) {
            assert_eq!(as_counter.status(), 403, "counter on {path}");
        } else {
            assert_ne!(as_counter.status().as_u16(), 401, "{path}");
            assert_ne!(as_counter.status().as_u16(), 403, "{path}");
        }
        // The pre-check staff see their pages only (and log out).
        let as_precheck = request(Some(&precheck.cookie), Some(&precheck.csrf))
            .send()
            .await
            .unwrap();
        if matches!(route.access, Access::Admin | Access::Counter) {
            assert_eq!(as_precheck.status(), 403, "pre-check on {path}");
        } else if route.path != "/staff/logout" {
            assert_ne!(as_precheck.status().as_u16(), 401, "{path}");
            assert_ne!(as_precheck.status().as_u16(), 403, "{path}");
        }
    }
    assert!(checked >= 10, "only {checked} staff routes");
}

/// Five wrong passwords lock the account for a quarter of an hour against the right password from
/// a computer it never logged in from, but not from the clerk's own desk; and no answer tells a
/// stranger whether an account exists, is locked, or belongs to an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_account() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    // (Up to the first apostrophe, which the page escapes.)
    let refused = coper_server::accounts::LOGIN_REFUSED
        .split('\'')
        .next()
        .unwrap();
    let wrong_five_times = |user: &'static str| {
        let app = &app;
        async move {
            for attempt in 1..=5 {
                let (status, page) = app.log_in(user, "wrong password!").await.err().unwrap();
                assert_eq!(status, 401, "{user}: attempt {attempt}");
                assert!(page.contains(refused), "{page}");
            }
        }
    };
    // The clerk has worked from this computer before.
    assert!(app.log_in("sportello", DEMO_PASSWORD).await.is_ok());
    wrong_five_times("sportello").await;
    assert!(
        app.log_in("sportello", DEMO_PASSWORD).await.is_ok(),
        "a seen computer still opens with the right password"
    );
    // The administrator never logged in from here: locked, with the same words as a wrong password.
    wrong_five_times("admin").await;
    let (status, page) = app.log_in("admin", DEMO_PASSWORD).await.err().unwrap();
    assert_eq!(status, 401);
    assert!(page.contains(refused), "{page}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'login.locked'"),
        2
    );
    // An unknown user gets the same words.
    let (_, page) = app.log_in("nessuno", "whatever it is").await.err().unwrap();
    assert!(page.contains(refused), "{page}");
}

/// Post what a scanner typed to the check-in page; the headline and the whole page.
async fn post_scan(app: &TestApp, staff: &StaffSession, text: &str) -> (String, String) {
    let (_, page) = app.submit(staff, "/counter/scan", &[("scan", text)]).await;
    let headline = page
        .split("id=\"outcome-headline\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no outcome in {page}"))
        .to_owned();
    (headline, page)
}

/// What the counter says of a ticket from an office that is offline, of a typed booking code, of
/// a ticket read with Caps Lock on, and of a ticket from a revoked kiosk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_explains_offline_typed_and_revoked_codes() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = kiosk_at_server_time(&app, &proxy.url()).await;
    let staff = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    set_window(&app, 720, 720);

    // The office is offline: the reminder is genuine but the booking has not arrived yet.
    proxy.cut();
    let proposal = kiosk.core.first_free(&delivery()).unwrap().unwrap();
    let booking = kiosk
        .core
        .book(&delivery(), proposal.slot.key(), "Kovalenko", "Olena", None)
        .unwrap();
    let ticket = kiosk.core.ticket(&booking);
    let (headline, page) = post_scan(&app, &staff, &ticket).await;
    assert_eq!(headline, "Prenotazione non ancora arrivata", "{page}");
    proxy.restore();
    kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(20))
        .await
        .expect("a verdict once back online");

    // Caps Lock on the scanner: the same ticket in lower case checks in.
    let (headline, page) = post_scan(&app, &staff, &ticket.to_lowercase()).await;
    assert_eq!(headline, "Presenza registrata", "{page}");
    assert!(page.contains("KOVALENKO Olena"));

    // A booking code typed by hand, sloppily, finds the booking (already checked in now).
    let sloppy = booking.booking_code.to_lowercase().replace('-', " ");
    let (headline, _) = post_scan(&app, &staff, &sloppy).await;
    assert_eq!(headline, "Già presente");
    let (headline, _) = post_scan(&app, &staff, "ZZZZ-ZZZZ").await;
    assert_eq!(headline, "Prenotazione sconosciuta");
    let (headline, _) = post_scan(&app, &staff, "hello").await;
    assert_eq!(headline, "Codice non riconosciuto");
    let (headline, _) = post_scan(&app, &staff, &ticket[..ticket.len() - 30]).await;
    assert_eq!(headline, "Codice illeggibile");

    // The kiosk is revoked (stolen, say): its tickets are no longer trusted.
    app.cli(&["kiosk-revoke", &kiosk.core.kiosk_id().to_string()]);
    let (headline, _) = post_scan(&app, &staff, &ticket).await;
    assert_eq!(headline, "Codice non valido: chiosco revocato");
}

/// At the end of the day, whoever is still only booked and past the window becomes a no-show;
/// later slots stay booked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_marks_no_shows_only_for_slots_past_the_window() {
    let app = spawn_demo_at("2026-11-23T11:00:00Z"); // 12:00 in Rome
    let app = app.await;
    set_window(&app, 60, 90);
    let staff = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let count = |status: &str, before: &str| -> i64 {
        app.database()
            .query_row(
                "SELECT count(*) FROM appointments WHERE slot_date = '2026-11-23'
                   AND status = ?1 AND slot_time < ?2",
                [status, before],
                |r| r.get(0),
            )
            .unwrap()
    };
    let booked_early = count("booked", "10:30");
    let booked_late = count("booked", "24:00") - booked_early;
    assert!(booked_early > 0 && booked_late > 0, "the demo books Monday");
    let (status, _) = app
        .submit(&staff, "/counter/day/no-shows", &[("date", "2026-11-23")])
        .await;
    assert_eq!(status, 303);
    assert_eq!(count("no_show", "10:30"), booked_early);
    assert_eq!(count("booked", "10:30"), 0);
    assert_eq!(
        count("booked", "24:00"),
        booked_late,
        "slots from 10:30 on are not over yet"
    );
    let audited = app.scalar("SELECT count(*) FROM audit_log WHERE action = 'appointment.no_show'");
    assert_eq!(audited, booked_early);
}

/// Issue "A booking every party can trust", point 2: a booking still to come cannot be marked
/// absent, neither from the page (no button) nor by posting the form; the clerk is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_still_to_come_cannot_be_marked_absent() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let (id, _) = demo_appointment(&app, "2026-11-28");
    let code: String = app.one("SELECT booking_code FROM appointments WHERE id = ?1", &id);
    let clerk = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .submit(&clerk, "/counter/scan", &[("scan", &code)])
        .await;
    assert!(page.contains(&code), "the booking is shown");
    assert!(
        !page.contains("id=\"no-show\""),
        "no absent button for Saturday"
    );
    let (_, page) = app
        .submit(
            &clerk,
            &format!("/counter/appointments/{id}/no-show"),
            &[("confirm", "1")],
        )
        .await;
    assert!(page.contains("non si può ancora segnare assente"), "{page}");
    let status: String = app.one("SELECT status FROM appointments WHERE id = ?1", &id);
    assert_eq!(status, "booked");
}

/// Issue "A booking every party can trust", point 2: a step taken by mistake is undone by the
/// clerk the same day (a delivery goes back to checked in and its permit back on the ready list),
/// audited; a step of another day is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_undoes_a_delivery_the_same_day_but_not_the_next() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    set_window(&app, 720, 720);
    let key = server_key(&app);
    let (id, time) = demo_appointment(&app, "2026-11-23");
    let permit: i64 = app.one(
        "SELECT ready_permit_id FROM appointments WHERE id = ?1",
        &id,
    );
    let clerk = Browser::start().await;
    clerk.log_in(&app.base, "sportello", DEMO_PASSWORD).await;
    let ticket = server_ticket(&key, &id, "2026-11-23", &time);
    assert_eq!(
        scan(&clerk, &app.base, &ticket).await,
        "Presenza registrata"
    );
    clerk.click("#deliver").await;
    clerk
        .wait_for_text("#outcome-headline", "Permesso consegnato", 10)
        .await;
    let delivered: Option<String> = app.one(
        "SELECT delivered_at FROM ready_permits WHERE id = ?1",
        permit,
    );
    assert!(
        delivered.is_some(),
        "the delivery took the permit off the list"
    );
    assert_eq!(clerk.text("#undo").await, "Annulla la consegna");
    clerk.click("#undo").await;
    clerk
        .wait_for_text("#outcome-headline", "Operazione annullata", 10)
        .await;
    assert_eq!(
        app.one::<String>("SELECT status FROM appointments WHERE id = ?1", &id),
        "checked_in"
    );
    let delivered: Option<String> = app.one(
        "SELECT delivered_at FROM ready_permits WHERE id = ?1",
        permit,
    );
    assert_eq!(delivered, None, "the permit is back on the ready list");
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'appointment.delivery_undone' AND actor LIKE 'user:%'"),
        1
    );

    // A check-in recorded yesterday stays: no button, and the form is refused with the reason.
    app.database_rw()
        .execute(
            "UPDATE appointments SET checked_in_at = '2026-11-22T10:00:00Z' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    clerk
        .goto(&format!("{}/counter/appointments/{id}", app.base))
        .await;
    clerk.find("#outcome-status").await;
    let has_undo = clerk
        .script("return document.getElementById('undo') !== null;")
        .await;
    assert_eq!(has_undo, false, "no undo for yesterday's step");
    let staff = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .submit(&staff, &format!("/counter/appointments/{id}/undo"), &[])
        .await;
    assert!(page.contains("solo nel giorno in cui"), "{page}");
    assert_eq!(
        app.one::<String>("SELECT status FROM appointments WHERE id = ?1", &id),
        "checked_in"
    );
    clerk.quit().await;
}

/// Issue "A booking every party can trust", point 8: the counter's search by name ignores
/// accents and case, says how many it found, and pages through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_finds_names_without_accents_and_pages_through_many() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let kiosk = kiosk_at_server_time(&app, &app.ws_url()).await;
    book_confirmed(&kiosk, "Ben Saïd", "Yûsuf").await;
    let clerk = Browser::start().await;
    clerk.log_in(&app.base, "sportello", DEMO_PASSWORD).await;
    clerk
        .goto(&format!("{}/counter/lookup?q=ben+said+yusuf", app.base))
        .await;
    assert!(clerk.text("#matches").await.contains("BEN SAÏD Yûsuf"));
    assert!(
        clerk
            .text("#found")
            .await
            .starts_with("1 prenotazione trovata")
    );

    // One letter: most of today's bookings, more than a page of them.
    let names: Vec<String> = {
        let db = app.database();
        let mut stmt = db
            .prepare(
                "SELECT surname || ' ' || given_names FROM appointments
                 WHERE slot_date = '2026-11-23'",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let expected = names
        .iter()
        .filter(|n| coper_shared::names::folded(n).contains('a'))
        .count();
    assert!(expected > 20, "{expected} of today's bookings have an «a»");
    clerk
        .goto(&format!("{}/counter/lookup?q=A", app.base))
        .await;
    let found = clerk.text("#found").await;
    assert!(
        found.starts_with(&format!("{expected} prenotazioni trovate oggi")),
        "{found}"
    );
    if expected > 20 {
        assert!(found.contains("pagina 1 di"), "{found}");
        clerk.click_and_wait_for_page("#next-page").await;
        assert!(clerk.text("#found").await.contains("pagina 2 di"));
    }
    clerk.quit().await;
}
