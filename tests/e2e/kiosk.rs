//! What the kiosk core offers its screens beyond booking: operators logging in offline with the
//! accounts the server sent, the ready list checked without names on the kiosk, and the public
//! self-check with its per-kiosk limit.

use std::time::Duration;

use coper_kiosk::core::{
    BookingRequest, LoginRefusal, MAX_SELF_CHECKS, SelfCheck, SelfCheckRefusal,
};
use coper_server::demo::DEMO_PASSWORD;
use coper_shared::{ids::ServiceId, jiff::civil::Date};

use crate::helpers::{Proxy, TestKiosk, eventually, spawn_demo_at};

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_log_in_offline_and_the_ready_list_is_checked_without_names() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .submit(
            &admin,
            "/admin/partners/1/operators",
            &[
                ("username", "mario.rossi"),
                ("display_name", "Mario Rossi"),
                ("password", "sportello stranieri 1"),
            ],
        )
        .await;
    assert!(page.contains("Operatore creato"));
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &proxy.url(), MONDAY_NINE_ROME).await;
    eventually(15, "the kiosk to know its operators", || {
        kiosk.core.partner().is_some()
    })
    .await;
    assert_eq!(kiosk.core.partner().unwrap().id, 1);

    // The office goes offline; the operator still logs in, with the right password only.
    proxy.cut();
    assert_eq!(
        kiosk
            .core
            .log_in("Mario.Rossi", "sportello stranieri 1")
            .as_deref(),
        Ok("Mario Rossi")
    );
    assert_eq!(
        kiosk.core.log_in("mario.rossi", "wrong"),
        Err(LoginRefusal::WrongCredentials)
    );

    // The ready list: found by the name as people write it, never with a wrong date; nothing in
    // the kiosk's store reads as a name.
    let (id, surname, given, born, fingerprinted): (i64, String, String, String, String) = app
        .database()
        .query_row(
            "SELECT id, surname, given_names, birth_date, fingerprint_date FROM ready_permits
             WHERE length(birth_date) = 10 AND given_names <> '' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let birth: Date = born.parse().unwrap();
    let fingerprint: Date = fingerprinted.parse().unwrap();
    assert_eq!(
        kiosk
            .core
            .find_ready(&given.to_lowercase(), &surname, birth),
        Some(id)
    );
    assert_eq!(
        kiosk
            .core
            .find_ready(&surname, &given, birth.tomorrow().unwrap()),
        None
    );
    let store = std::fs::read(kiosk.config.data_dir.join("kiosk.sqlite3")).unwrap();
    let upper = surname.to_uppercase();
    assert!(
        !store.windows(upper.len()).any(|w| w == upper.as_bytes()),
        "a name from the ready list is in the kiosk's store"
    );

    // The public self-check, offline, then the kiosk's limit.
    let asked = SelfCheck::ByName {
        surname: surname.clone(),
        given_names: given.clone(),
        birth,
        fingerprint,
    };
    assert_eq!(kiosk.core.self_check(&asked), Ok(true));
    let wrong = SelfCheck::ByName {
        surname: surname.clone(),
        given_names: given.clone(),
        birth,
        fingerprint: fingerprint.tomorrow().unwrap(),
    };
    assert_eq!(kiosk.core.self_check(&wrong), Ok(false));
    for _ in 2..MAX_SELF_CHECKS {
        kiosk.core.self_check(&wrong).unwrap();
    }
    assert_eq!(
        kiosk.core.self_check(&asked),
        Err(SelfCheckRefusal::TooManyAttempts)
    );

    // Booked for that permit; delivered at the counter; the permit leaves every kiosk's list.
    proxy.restore();
    kiosk.wait_up_to_date().await;
    let delivery = ServiceId::parse("consegna-pse").unwrap();
    let slot = kiosk
        .core
        .first_free(&delivery)
        .unwrap()
        .unwrap()
        .slot
        .key();
    let booking = kiosk
        .core
        .book_request(&BookingRequest {
            service: delivery,
            slot,
            surname: surname.clone(),
            given_names: given.clone(),
            phone: None,
            permit: Some(id),
        })
        .unwrap();
    kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(15))
        .await
        .unwrap();
    let appointment: String = app
        .database()
        .query_row(
            "SELECT id FROM appointments WHERE request_id = ?1 AND ready_permit_id = ?2",
            rusqlite::params![booking.request.to_string(), id],
            |r| r.get(0),
        )
        .unwrap();
    let clerk = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    for step in ["check-in", "deliver"] {
        let (status, page) = app
            .submit(
                &clerk,
                &format!("/counter/appointments/{appointment}/{step}"),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{page}");
    }
    eventually(15, "the delivered permit to leave the kiosk's list", || {
        kiosk.core.find_ready(&surname, &given, birth).is_none()
    })
    .await;
}
