//! The sync core end to end: real server binary, real kiosk cores, real WebSockets on loopback,
//! with a TCP proxy standing in for each partner office's internet connection.

use std::time::Duration;

use coper_kiosk::core::BookingStatus;
use coper_shared::{
    agenda::SlotKey,
    documents::{DocName, Outcome, collections},
};

use crate::helpers::{Options, Proxy, TestKiosk, delivery, eventually, spawn_demo, spawn_in};

fn appointments_for(
    app: &crate::helpers::TestApp,
    request: uuid::Uuid,
) -> Vec<(String, String, String)> {
    let db = app.database();
    let mut stmt = db
        .prepare("SELECT slot_date, slot_time, status FROM appointments WHERE request_id = ?1")
        .unwrap();
    stmt.query_map([request.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Test 1. An online booking comes back confirmed within moments, and the appointment is in SQLite
/// with the code the kiosk printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_booking_is_confirmed_and_stored() {
    let app = spawn_demo().await;
    let kiosk = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let proposal = kiosk
        .core
        .first_free(&delivery())
        .unwrap()
        .expect("a free slot");
    let booking = kiosk
        .core
        .book(
            &delivery(),
            proposal.slot.key(),
            "De la Cruz Rodríguez",
            "María José",
            None,
        )
        .unwrap();
    let verdict = kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(10))
        .await
        .expect("a verdict");
    assert_eq!(verdict.outcome, Outcome::Confirmed);
    assert_eq!(
        (verdict.date, verdict.time),
        (proposal.slot.date, proposal.slot.start)
    );
    let stored = appointments_for(&app, booking.request);
    assert_eq!(
        stored,
        vec![(
            proposal.slot.date.to_string(),
            coper_shared::rules::hh_mm(proposal.slot.start),
            "booked".to_owned()
        )]
    );
    let code: String = app.one(
        "SELECT booking_code FROM appointments WHERE request_id = ?1",
        booking.request.to_string(),
    );
    assert_eq!(code, booking.booking_code);
    assert_eq!(kiosk.core.bookings()[0].status, BookingStatus::Confirmed);
    assert_eq!(kiosk.core.status().pending, 0);
}

/// Test 2. Two kiosks offline, no leases, both take the last place of a slot: exactly one is
/// confirmed, the other relocated to the next slot, and both learn it after reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offline_kiosks_taking_the_last_place_get_one_confirmed_one_relocated() {
    let app = spawn_demo().await;
    app.set_lease_places(0);
    let (proxy_a, proxy_b) = (
        Proxy::start(app.addr()).await,
        Proxy::start(app.addr()).await,
    );
    let a = TestKiosk::enrol(&app, 1, &proxy_a.url()).await;
    let b = TestKiosk::enrol(&app, 2, &proxy_b.url()).await;
    // A slot far enough ahead that the demo booked nothing there: the first of a day.
    let far = a
        .core
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Rome").unwrap())
        .date()
        .checked_add(jiff::Span::new().days(40))
        .unwrap();
    let target = a
        .core
        .options(
            &delivery(),
            far.to_datetime(jiff::civil::Time::midnight()),
            1,
        )
        .unwrap()[0];
    assert_eq!(
        u32::from(target.free),
        u32::from(target.slot.places),
        "nothing booked there yet"
    );
    let slot = target.slot.key();
    for name in ["Popescu", "Hoxha", "Wang"]
        .into_iter()
        .take(usize::from(target.free) - 1)
    {
        let booked = a.core.book(&delivery(), slot, name, "Ioana", None).unwrap();
        let verdict = a
            .core
            .wait_for_verdict(booked.request, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(verdict.outcome, Outcome::Confirmed);
    }
    // Both kiosks see one place left before the offices go offline.
    for kiosk in [&a, &b] {
        eventually(10, "the replica to show one place left", || {
            kiosk
                .core
                .options(
                    &delivery(),
                    far.to_datetime(jiff::civil::Time::midnight()),
                    1,
                )
                .unwrap()[0]
                .free
                == 1
        })
        .await;
    }
    proxy_a.cut();
    proxy_b.cut();
    eventually(10, "both kiosks offline", || {
        !a.core.status().online && !b.core.status().online
    })
    .await;
    let booked_a = a
        .core
        .book(&delivery(), slot, "Okafor", "Kwame", None)
        .unwrap();
    let booked_b = b
        .core
        .book(&delivery(), slot, "Shevchenko", "Olha", None)
        .unwrap();
    assert_eq!(booked_a.status, BookingStatus::Pending { lease: false });
    assert_eq!(booked_b.status, BookingStatus::Pending { lease: false });
    proxy_a.restore();
    proxy_b.restore();
    let va = a
        .core
        .wait_for_verdict(booked_a.request, Duration::from_secs(20))
        .await
        .expect("A's verdict");
    let vb = b
        .core
        .wait_for_verdict(booked_b.request, Duration::from_secs(20))
        .await
        .expect("B's verdict");
    let mut outcomes = [va.outcome, vb.outcome];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Outcome::Confirmed, Outcome::Relocated]);
    let relocated = if va.outcome == Outcome::Relocated {
        &va
    } else {
        &vb
    };
    assert_eq!(relocated.date, slot.date);
    assert_eq!(
        relocated.time,
        jiff::civil::time(9, 10, 0, 0),
        "the nearest later slot"
    );
    let in_slot: i64 = app.one(
        "SELECT count(*) FROM appointments WHERE service_id = 'consegna-pse' AND slot_date = ?1
             AND slot_time = '09:00' AND status <> 'cancelled'",
        slot.date.to_string(),
    );
    assert_eq!(
        in_slot,
        i64::from(target.slot.places),
        "never more than the slot's places"
    );
}

/// Test 3. Offline, every booking a kiosk makes inside its lease is confirmed in place, even when
/// another office fills every other place of those slots meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_bookings_inside_leases_are_all_confirmed_in_place() {
    let app = spawn_demo().await;
    let proxy = Proxy::start(app.addr()).await;
    let a = TestKiosk::enrol(&app, 1, &proxy.url()).await;
    let b = TestKiosk::enrol(&app, 2, &app.ws_url()).await;
    eventually(10, "leases", || {
        a.core.status().lease_places_today > 0 || {
            // Today may have no open slot left: any leased place will do.
            a.core
                .first_free(&delivery())
                .ok()
                .flatten()
                .is_some_and(|p| p.lease.is_some())
        }
    })
    .await;
    proxy.cut();
    eventually(10, "A offline", || !a.core.status().online).await;
    let mut leased = vec![];
    while let Some(p) = a
        .core
        .first_free(&delivery())
        .unwrap()
        .filter(|p| p.lease.is_some())
    {
        let booking = a
            .core
            .book(&delivery(), p.slot.key(), "Nguyễn", "Thi Lan", None)
            .unwrap();
        assert_eq!(booking.status, BookingStatus::Pending { lease: true });
        assert!(
            booking.is_confirmed(),
            "a lease booking prints as confirmed"
        );
        leased.push((booking.request, p.slot.key()));
        assert!(leased.len() <= 50, "leases are finite");
    }
    assert!(
        leased.len() >= 2,
        "the partner body's lease covers several places: {}",
        leased.len()
    );
    // Meanwhile B, online, takes every place of those slots that the pool still has.
    for (_, slot) in &leased {
        while b
            .core
            .options(&delivery(), slot.date.to_datetime(slot.start), 1)
            .unwrap()
            .first()
            .is_some_and(|p| p.slot.key() == *slot)
        {
            // The replica may learn between the two calls that the place just went.
            if let Ok(booked) = b.core.book(&delivery(), *slot, "Singh", "Gurpreet", None) {
                b.core
                    .wait_for_verdict(booked.request, Duration::from_secs(10))
                    .await
                    .unwrap();
            }
        }
    }
    proxy.restore();
    for (request, slot) in &leased {
        let verdict = a
            .core
            .wait_for_verdict(*request, Duration::from_secs(20))
            .await
            .expect("verdict");
        assert_eq!(verdict.outcome, Outcome::Confirmed);
        assert_eq!(
            SlotKey {
                date: verdict.date,
                start: verdict.time
            },
            *slot
        );
    }
    let overfull = app.scalar("SELECT count(*) FROM slot_capacity WHERE taken + held > places");
    assert_eq!(overfull, 0);
}

/// Test 4. A kiosk restarted while offline still has its pending bookings, and syncs them when
/// the network is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_restarted_offline_keeps_and_later_syncs_its_pending_requests() {
    let app = spawn_demo().await;
    app.set_lease_places(0);
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol(&app, 3, &proxy.url()).await;
    proxy.cut();
    eventually(10, "offline", || !kiosk.core.status().online).await;
    let p = kiosk.core.first_free(&delivery()).unwrap().unwrap();
    let booking = kiosk
        .core
        .book(
            &delivery(),
            p.slot.key(),
            "Ben Saïd",
            "Aïcha",
            Some("333 0000000"),
        )
        .unwrap();
    let kiosk = kiosk.restart().await;
    let after = kiosk.core.bookings();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].request, booking.request);
    assert_eq!(after[0].status, BookingStatus::Pending { lease: false });
    assert_eq!(kiosk.core.status().pending, 1);
    proxy.restore();
    let verdict = kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(20))
        .await
        .expect("verdict");
    assert_eq!(verdict.outcome, Outcome::Confirmed);
    assert_eq!(appointments_for(&app, booking.request).len(), 1);
}

/// Test 5. The server killed with SIGKILL in the middle of a burst and restarted: every verdict a
/// kiosk saw is still in SQLite with the same outcome, every request ends with exactly one verdict,
/// and no request made two appointments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_loses_no_seen_verdict_and_duplicates_nothing() {
    let mut app = spawn_demo().await;
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol(&app, 1, &proxy.url()).await;
    let mut requests = vec![];
    // The replica may learn between proposal and booking that the place just went: ask again,
    // as the operator's screen does.
    let book = |i: usize| loop {
        let p = kiosk.core.first_free(&delivery()).unwrap().unwrap();
        match kiosk.core.book(
            &delivery(),
            p.slot.key(),
            &format!("Kovalenko {i}"),
            "Oksana",
            None,
        ) {
            Ok(booking) => break booking.request,
            Err(coper_kiosk::core::CoreError::SlotNotFree) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    // Ten bookings whose verdicts the kiosk has seen …
    for i in 0..10 {
        requests.push(book(i));
    }
    for request in &requests {
        kiosk
            .core
            .wait_for_verdict(*request, Duration::from_secs(10))
            .await
            .expect("verdict");
    }
    // … ten in flight when the server is killed …
    for i in 10..20 {
        requests.push(book(i));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!app.signal_and_wait("KILL").success());
    // … and ten made while it is down.
    for i in 20..30 {
        requests.push(book(i));
    }
    let seen: Vec<(uuid::Uuid, Outcome)> = requests
        .iter()
        .filter_map(|r| kiosk.core.verdict(*r).map(|v| (*r, v.outcome)))
        .collect();
    assert!(seen.len() >= 10, "the kiosk saw verdicts before the kill");
    let dir = app.keep_data();
    let data_dir = app.data_dir.clone();
    drop(app);
    let app = spawn_in(&data_dir, Options::default(), dir).await;
    proxy.retarget(app.addr());
    for request in &requests {
        let v = kiosk
            .core
            .wait_for_verdict(*request, Duration::from_secs(20))
            .await
            .expect("every request ends with a verdict");
        assert_ne!(v.outcome, Outcome::Rejected, "{v:?}");
        assert_eq!(
            appointments_for(&app, *request).len(),
            1,
            "exactly one appointment per request"
        );
    }
    for (request, outcome) in seen {
        let stored: String = app.one(
            "SELECT outcome FROM sync_verdicts WHERE request_id = ?1",
            request.to_string(),
        );
        assert_eq!(stored, format!("{outcome:?}").to_lowercase());
    }
}

/// Invariant 7. No document that reaches a kiosk carries a name booked at another partner body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_never_receives_another_partner_bodys_names() {
    let app = spawn_demo().await;
    let a = TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let b = TestKiosk::enrol(&app, 2, &app.ws_url()).await;
    let p = a.core.first_free(&delivery()).unwrap().unwrap();
    let booked = a
        .core
        .book(
            &delivery(),
            p.slot.key(),
            // A name the demo never makes: B's own body's bookings are on B, by design.
            "Okafor-Lindqvist",
            "Nadia",
            None,
        )
        .unwrap();
    a.core
        .wait_for_verdict(booked.request, Duration::from_secs(10))
        .await
        .unwrap();
    // B receives the new count of that slot …
    eventually(10, "B to see the new count", || {
        b.core.heads(&DocName::agenda_for(&delivery(), p.slot.date))
            == a.core.heads(&DocName::agenda_for(&delivery(), p.slot.date))
    })
    .await;
    // … but nothing of A's outbox or inbox, and the name appears in none of its documents.
    for name in b.core.documents() {
        assert!(name.readable_by(b.core.kiosk_id()), "{name} reached B");
        for collection in [
            collections::SLOTS,
            collections::LEASES,
            collections::SERVICES,
            collections::PARTNERS,
            collections::REQUESTS,
            collections::VERDICTS,
            collections::BOOKINGS,
        ] {
            for (key, value) in b.core.raw_records(&name, collection) {
                let text = format!("{key} {value}");
                assert!(
                    !text.contains("Okafor-Lindqvist"),
                    "{name}/{collection} leaks: {text}"
                );
            }
        }
    }
}

/// A kiosk never books into a lease that has expired by its own clock, even offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_never_used() {
    let app = spawn_demo().await;
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol(&app, 1, &proxy.url()).await;
    eventually(10, "leases granted", || lease_expiries(&app, &kiosk).0 > 0).await;
    proxy.cut();
    // Offline, a day and a half later by the kiosk's clock: every lease (24 h) has expired.
    let kiosk = kiosk.restart_with_clock(36 * 3600 * 1000).await;
    let p = kiosk.core.first_free(&delivery()).unwrap().expect("a slot");
    assert_eq!(p.lease, None);
    let booking = kiosk
        .core
        .book(&delivery(), p.slot.key(), "Çela", "Gjergj", None)
        .unwrap();
    assert_eq!(booking.status, BookingStatus::Pending { lease: false });
    assert!(!booking.is_confirmed(), "the reminder must say provisional");
    assert_eq!(kiosk.core.status().lease_places_today, 0);
}

/// A kiosk whose clock is off by more than the bound gets no leases, and uses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_with_a_wrong_clock_gets_and_uses_no_lease() {
    let app = spawn_demo().await;
    let proxy = Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol(&app, 2, &proxy.url()).await;
    eventually(10, "leases granted", || lease_expiries(&app, &kiosk).0 > 0).await;
    let before = lease_expiries(&app, &kiosk);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let kiosk = kiosk.restart_with_clock(10 * 60 * 1000).await;
    kiosk.wait_up_to_date().await;
    assert!(!kiosk.core.status().clock_trusted);
    proxy.cut();
    eventually(10, "offline", || !kiosk.core.status().online).await;
    let p = kiosk.core.first_free(&delivery()).unwrap().expect("a slot");
    assert_eq!(
        p.lease, None,
        "no lease may be used with an untrusted clock"
    );
    assert_eq!(
        lease_expiries(&app, &kiosk),
        before,
        "no lease granted or extended while the clock is wrong"
    );
}

/// How many leases a kiosk holds on the server, and the latest expiry among them.
fn lease_expiries(app: &crate::helpers::TestApp, kiosk: &TestKiosk) -> (i64, Option<i64>) {
    app.database()
        .query_row(
            "SELECT count(*), max(expires_at_ms) FROM leases WHERE kiosk_id = ?1",
            [kiosk.core.kiosk_id().to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// A kiosk revoked while connected is cut off within seconds and told why; its leases go back to
/// the pool and it gets no new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_revoked_during_its_session_is_cut_off() {
    let app = spawn_demo().await;
    let kiosk = TestKiosk::enrol(&app, 5, &app.ws_url()).await;
    eventually(10, "leases granted", || lease_expiries(&app, &kiosk).0 > 0).await;
    app.cli(&["kiosk-revoke", &kiosk.core.kiosk_id().to_string()]);
    eventually(15, "the kiosk to learn it is revoked", || {
        kiosk.core.status().refused.as_deref() == Some("revoked")
    })
    .await;
    assert!(!kiosk.core.status().online);
    assert_eq!(
        lease_expiries(&app, &kiosk).0,
        0,
        "its leases were returned"
    );
    let held = app.scalar("SELECT coalesce(sum(held), 0) FROM slot_capacity");
    assert_eq!(held, 0, "no place is still held for it");
}
