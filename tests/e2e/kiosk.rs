//! What the kiosk core offers its screens beyond booking: operators logging in offline with the
//! accounts the server sent, the ready list checked without names on the kiosk, and the public
//! self-check with its per-kiosk limit.

use std::time::Duration;

use coper_kiosk::core::{
    BookingRequest, LoginRefusal, MAX_SELF_CHECKS, SelfCheck, SelfCheckRefusal,
};
use coper_server::demo::DEMO_PASSWORD;
use coper_shared::{documents::Outcome, ids::ServiceId, jiff::civil::Date};

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
             WHERE length(birth_date) = 10 AND given_names <> '' AND id NOT IN
                 (SELECT ready_permit_id FROM appointments WHERE ready_permit_id IS NOT NULL)
             ORDER BY id LIMIT 1",
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
    let slot = kiosk.first_free_slot();
    let booking = kiosk
        .core
        .book_request(&BookingRequest {
            service: delivery,
            slot,
            surname: surname.clone(),
            given_names: given.clone(),
            phone: None,
            permit: Some(id),
            moves: None,
            email: None,
            lang: None,
            consent: false,
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

/// Issue "A booking every party can trust", point 1: a person already booked (here by another
/// partner body) is found at a kiosk; the kiosk says when and by whom before booking, offline
/// too; a second booking is refused by the server, and "move" replaces the first. The booking
/// carries the ready list's spelling of the name, not the one typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_booked_once_and_a_move_replaces_the_booking() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let delivery = ServiceId::parse("consegna-pse").unwrap();
    // A person the demo booked from partner body 3, later this week.
    let (permit, surname, given, born, old, old_date): (
        i64,
        String,
        String,
        String,
        String,
        String,
    ) = app
        .database()
        .query_row(
            "SELECT r.id, r.surname, r.given_names, r.birth_date, a.id, a.slot_date
             FROM ready_permits r JOIN appointments a ON a.ready_permit_id = r.id
             WHERE length(r.birth_date) = 10 AND r.given_names <> '' AND a.status = 'booked'
               AND a.partner_body_id = 3 AND a.slot_date > '2026-11-24'
             ORDER BY r.id LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &proxy.url(), MONDAY_NINE_ROME).await;
    kiosk.wait_up_to_date().await;
    let birth: Date = born.parse().unwrap();
    // Typed as people type: lower case, no accents kept.
    let typed = surname.to_lowercase();
    assert_eq!(kiosk.core.find_ready(&typed, &given, birth), Some(permit));
    proxy.cut();
    let booked = kiosk
        .core
        .booked_already(permit, &delivery)
        .expect("the kiosk knows the person is booked, offline");
    assert_eq!(booked.date.to_string(), old_date);
    assert_eq!(booked.appointment.to_string(), old);
    let partner3: String = app.one("SELECT name FROM partner_bodies WHERE id = ?1", 3);
    assert_eq!(booked.partner, partner3);
    assert!(booked.movable);
    proxy.restore();

    let book = |moves| {
        let slot = kiosk.first_free_slot();
        kiosk
            .core
            .book_request(&BookingRequest {
                service: delivery.clone(),
                slot,
                surname: typed.clone(),
                given_names: given.clone(),
                phone: None,
                permit: Some(permit),
                moves,
                email: None,
                lang: None,
                consent: false,
            })
            .unwrap()
    };
    let second = book(None);
    let verdict = kiosk
        .core
        .wait_for_verdict(second.request, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(verdict.reason.as_deref(), Some("already_booked"));
    let active = || -> i64 {
        app.one(
            "SELECT count(*) FROM appointments WHERE ready_permit_id = ?1
             AND status IN ('booked', 'checked_in')",
            permit,
        )
    };
    assert_eq!(active(), 1, "the second booking changed nothing");

    let moved = book(Some(old.parse().unwrap()));
    let verdict = kiosk
        .core
        .wait_for_verdict(moved.request, Duration::from_secs(15))
        .await
        .unwrap();
    assert!(verdict.appointment.is_some(), "{verdict:?}");
    assert_eq!(active(), 1, "the move replaced the booking");
    let (status, reason): (String, String) = app
        .database()
        .query_row(
            "SELECT status, cancel_reason FROM appointments WHERE id = ?1",
            [&old],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "cancelled");
    assert!(reason.contains("spostata"), "{reason}");
    let stored: String = app.one(
        "SELECT surname FROM appointments WHERE request_id = ?1",
        moved.request.to_string(),
    );
    assert_eq!(stored, surname, "the list's spelling, not the typed one");
    eventually(15, "every kiosk to learn the new booking", || {
        kiosk
            .core
            .booked_already(permit, &delivery)
            .is_some_and(|b| Some(b.appointment) == verdict.appointment)
    })
    .await;

    // Cancelled at the kiosk: the person may be booked again, and every kiosk stops warning.
    let cancel = kiosk.core.cancel(moved.request).unwrap();
    let cancelled = kiosk
        .core
        .wait_for_verdict(cancel, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(cancelled.outcome, Outcome::Cancelled, "{cancelled:?}");
    assert_eq!(active(), 0);
    eventually(15, "every kiosk to learn the booking ended", || {
        kiosk.core.booked_already(permit, &delivery).is_none()
    })
    .await;
}

/// Issue "A booking every party can trust", point 4: a booking made at one kiosk of a partner
/// body is on its other kiosks too; when the Questura closes its day, every kiosk of the body
/// shows it moved, from which slot, to which, and why; another body's kiosk holds none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_closed_shows_the_moved_bookings_on_every_kiosk_of_the_body() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let delivery = ServiceId::parse("consegna-pse").unwrap();
    let a = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    let b = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    let other = TestKiosk::enrol_at(&app, 2, &app.ws_url(), MONDAY_NINE_ROME).await;
    let slot = a.first_free_slot();
    let booking = a
        .core
        .book(
            &delivery,
            slot,
            "Kowalczyk",
            "Zofia",
            Some("+39 333 1234567"),
        )
        .unwrap();
    a.core
        .wait_for_verdict(booking.request, Duration::from_secs(15))
        .await
        .unwrap();
    let on = |kiosk: &TestKiosk| {
        kiosk
            .core
            .partner_bookings()
            .into_iter()
            .find(|p| p.request == Some(booking.request))
    };
    eventually(15, "both kiosks of the body to list the booking", || {
        on(&a).is_some() && on(&b).is_some()
    })
    .await;
    let seen_at_b = on(&b).unwrap();
    let (at_a, at_b) = (a.core.kiosk_id(), b.core.kiosk_id());
    assert!(!seen_at_b.made_at_kiosk(at_b), "made at A, not at B");
    assert!(on(&a).unwrap().made_at_kiosk(at_a));
    assert_eq!(on(&a).unwrap(), seen_at_b, "one record for the whole body");
    assert_eq!(seen_at_b.surname, "Kowalczyk");
    assert_eq!(seen_at_b.phone.as_deref(), Some("+393331234567"));

    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let day = slot.date.to_string();
    assert_eq!(app.close_day(&admin, &day, "Sciopero").await, 200);
    eventually(15, "B to show the booking moved", || {
        on(&b).is_some_and(|p| p.moved_from.is_some())
    })
    .await;
    let moved = on(&b).unwrap();
    assert_eq!(moved.moved_from, Some((slot.date, slot.start)));
    assert_ne!(moved.date, slot.date);
    assert_eq!(moved.reason.as_deref(), Some("Sciopero"));
    assert!(moved.changed_by_questura);
    // The audit log has the reason too.
    let audited: String = app.one(
        "SELECT detail FROM audit_log WHERE action = 'agenda.day_closed' AND subject = ?1",
        slot.date.to_string(),
    );
    assert!(audited.contains("Sciopero"), "{audited}");
    // The printable list of moves, for the body: the person, old and new time, phone, reason.
    let (status, page) = app.fetch(&admin, "/admin/moved?partner=1").await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    let row = page
        .split("<tr>")
        .find(|r| r.contains("KOWALCZYK Zofia"))
        .expect("the moved person is listed");
    assert!(
        row.contains("+393331234567") && row.contains("Sciopero"),
        "{row}"
    );
    let (_, other_body) = app.fetch(&admin, "/admin/moved?partner=2").await;
    assert!(!String::from_utf8(other_body).unwrap().contains("KOWALCZYK"));
    // Another body's kiosk holds none of body 1's bookings.
    other.wait_up_to_date().await;
    assert!(
        other
            .core
            .partner_bookings()
            .iter()
            .all(|p| p.surname != "Kowalczyk")
    );
    assert!(
        other
            .core
            .documents()
            .iter()
            .all(|n| n.readable_by(other.core.kiosk_id())),
        "only its own documents"
    );
}

/// A kiosk's word alone does not tie a booking to a ready permit: a booking that names a permit
/// with somebody else's name (a hostile or mistaken kiosk) is booked as typed, without the
/// permit, so the list's spelling of the real person's name never comes back to the kiosk, and
/// the "move" it asks of that person's booking is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_naming_someone_elses_permit_gets_neither_the_permit_nor_the_move() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let delivery = ServiceId::parse("consegna-pse").unwrap();
    let (permit, surname, old): (i64, String, String) = app
        .database()
        .query_row(
            "SELECT r.id, r.surname, a.id FROM ready_permits r
             JOIN appointments a ON a.ready_permit_id = r.id
             WHERE a.status = 'booked' AND a.slot_date > '2026-11-24' ORDER BY r.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let kiosk = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    kiosk.wait_up_to_date().await;
    let slot = kiosk.first_free_slot();
    let booking = kiosk
        .core
        .book_request(&BookingRequest {
            service: delivery.clone(),
            slot,
            surname: "Intruso".into(),
            given_names: "Test".into(),
            phone: None,
            permit: Some(permit),
            moves: Some(old.parse().unwrap()),
            email: None,
            lang: None,
            consent: false,
        })
        .unwrap();
    let verdict = kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(15))
        .await
        .unwrap();
    assert!(
        verdict.appointment.is_some(),
        "booked as typed: {verdict:?}"
    );
    let (stored, stored_permit): (String, Option<i64>) = app
        .database()
        .query_row(
            "SELECT surname, ready_permit_id FROM appointments WHERE request_id = ?1",
            [booking.request.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((stored.as_str(), stored_permit), ("Intruso", None));
    assert_eq!(
        app.one::<String>("SELECT status FROM appointments WHERE id = ?1", &old),
        "booked",
        "the other person's booking is untouched"
    );
    eventually(15, "the body's list to have the booking", || {
        kiosk
            .core
            .partner_bookings()
            .iter()
            .any(|b| b.request == Some(booking.request))
    })
    .await;
    let listed = kiosk
        .core
        .partner_bookings()
        .into_iter()
        .find(|b| b.request == Some(booking.request))
        .unwrap();
    assert_eq!(listed.surname, "Intruso");
    assert_ne!(listed.surname, surname);
}

/// Issue #13, first notices: bookings whose person consented get a confirmation when the verdict
/// arrives and, when the Questura closes their day, a "moved" message with the new time and the
/// reason, each in the person's language with an Italian line, per channel given; a booking
/// without consent gets none. The log channel marks them sent and the administration reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consenting_people_are_told_of_their_booking_and_of_its_move_in_their_language() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let delivery = ServiceId::parse("consegna-pse").unwrap();
    let kiosk = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    kiosk.wait_up_to_date().await;
    let slot = kiosk.first_free_slot();
    let book = |surname: &str, phone: Option<&str>, email: Option<&str>, lang: &str, consent| {
        let slot = kiosk
            .core
            .options(&delivery, slot.date.to_datetime(slot.start), 1)
            .unwrap()[0]
            .slot
            .key();
        kiosk
            .core
            .book_request(&BookingRequest {
                service: delivery.clone(),
                slot,
                surname: surname.into(),
                given_names: "Test".into(),
                phone: phone.map(str::to_owned),
                permit: None,
                moves: None,
                email: email.map(str::to_owned),
                lang: Some(lang.into()),
                consent,
            })
            .unwrap()
    };
    let arabic = book("Haddad", Some("+39 333 1111111"), None, "ar", true);
    let french = book("Diallo", None, Some("awa@exemple.fr"), "fr", true);
    let silent = book("Rossi", Some("+39 333 2222222"), None, "it", false);
    for b in [&arabic, &french, &silent] {
        kiosk
            .core
            .wait_for_verdict(b.request, Duration::from_secs(15))
            .await
            .unwrap();
    }
    let notices = |kind: &str| -> Vec<(String, String, String, String)> {
        let db = app.database();
        let mut stmt = db
            .prepare(
                "SELECT n.channel, n.recipient, n.lang, n.body FROM notices n
                 JOIN appointments a ON a.id = n.appointment_id
                 WHERE n.kind = ?1 AND a.surname IN ('Haddad', 'Diallo', 'Rossi')
                 ORDER BY a.surname",
            )
            .unwrap();
        stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let confirmed = notices("confirmed");
    assert_eq!(
        confirmed.len(),
        2,
        "no message without consent: {confirmed:?}"
    );
    let (channel, recipient, lang, body) = &confirmed[0];
    assert_eq!(
        (channel.as_str(), recipient.as_str(), lang.as_str()),
        ("email", "awa@exemple.fr", "fr")
    );
    assert!(
        body.starts_with("Questura de Pavia") && body.contains("\nQuestura di Pavia"),
        "{body}"
    );
    assert_eq!(confirmed[1].0, "sms");
    assert!(confirmed[1].3.contains("كويستورا"), "{}", confirmed[1].3);

    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let day = slot.date.to_string();
    assert_eq!(app.close_day(&admin, &day, "sciopero").await, 200);
    let moved = notices("moved");
    assert_eq!(moved.len(), 2, "{moved:?}");
    for (_, _, _, body) in &moved {
        assert!(
            body.contains("sciopero")
                && !body.contains(&slot.date.strftime("%d/%m/%Y").to_string()),
            "{body}"
        );
    }
    // The log channel sends them within a few seconds; the page lists them.
    eventually(20, "the notices to be sent", || {
        app.scalar("SELECT count(*) FROM notices WHERE sent_at IS NULL") == 0
    })
    .await;
    let (_, page) = app.fetch(&admin, "/admin/notices").await;
    let page = String::from_utf8(page).unwrap();
    let listed = app.scalar("SELECT min(count(*), 200) FROM notices");
    assert_eq!(page.matches("class=\"notice\"").count() as i64, listed);
    assert!(
        page.contains("awa@exemple.fr") && page.contains("inviato ") && page.contains(" (log)")
    );
}
