//! The agenda's queries over HTTP against the demo Questura, checked against what the server's own
//! SQLite file says is booked.

use serde_json::Value;

use crate::helpers::{TestApp, spawn_demo_at};

/// Monday 23 November 2026, 09:00 in Rome.
const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// Places taken in one slot, straight from the database.
fn booked_in(app: &TestApp, service: &str, date: &str, time: &str) -> i64 {
    app.database()
        .query_row(
            "SELECT count(*) FROM appointments WHERE service_id = ?1 AND slot_date = ?2
             AND slot_time = ?3 AND status <> 'cancelled'",
            [service, date, time],
            |r| r.get(0),
        )
        .unwrap()
}

/// The first free delivery slot respects the lead time, has a free place according to the
/// database, and every earlier slot of that day after the lead time is full.
#[tokio::test]
async fn first_free_is_the_earliest_slot_with_a_place_after_the_lead_time() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let body = app.get_ok("/api/v1/services/consegna-pse/first-free").await;
    let slot = &body["slot"];
    let (date, start) = (
        slot["date"].as_str().unwrap(),
        slot["start"].as_str().unwrap(),
    );
    // Lead time is 60 minutes: nothing before 10:00 today.
    assert!(
        (date, start) >= ("2026-11-23", "10:00"),
        "first free {date} {start} is inside the lead time"
    );
    let places = slot["places"].as_i64().unwrap();
    let taken = booked_in(&app, "consegna-pse", date, start);
    assert_eq!(slot["free"].as_i64().unwrap(), places - taken);
    assert!(taken < places);
    // Every slot between 10:00 today and the answer is full.
    let days = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-11-23&to=2026-11-23")
        .await;
    if date == "2026-11-23" {
        let mut t = jiff::civil::time(10, 0, 0, 0);
        while coper_shared::rules::hh_mm(t).as_str() < start {
            let hm = coper_shared::rules::hh_mm(t);
            assert_eq!(
                booked_in(&app, "consegna-pse", "2026-11-23", &hm),
                3,
                "{hm}"
            );
            t = t.checked_add(jiff::Span::new().minutes(10)).unwrap();
        }
        assert_eq!(days["days"][0]["status"], "bookable");
    }
    // "Another day" starting from the same moment begins with the same slot.
    let options = app
        .get_ok("/api/v1/services/consegna-pse/options?count=3")
        .await;
    assert_eq!(options["options"][0], *slot);
}

/// "Another day" gives ten distinct later days, skipping holidays, Sundays and full days.
#[tokio::test]
async fn options_skip_closed_days_and_give_distinct_dates() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let body = app
        .get_ok("/api/v1/services/consegna-pse/options?from=2026-12-05&count=10")
        .await;
    let dates: Vec<&str> = body["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["date"].as_str().unwrap())
        .collect();
    // Sat 5, Mon 7, (8 Immacolata, 9 San Siro), Thu 10, Fri 11, Sat 12, Mon 14 … (Sundays closed).
    assert_eq!(
        dates,
        vec![
            "2026-12-05",
            "2026-12-07",
            "2026-12-10",
            "2026-12-11",
            "2026-12-12",
            "2026-12-14",
            "2026-12-15",
            "2026-12-16",
            "2026-12-17",
            "2026-12-18"
        ]
    );
    for o in body["options"].as_array().unwrap() {
        assert_eq!(o["start"], "09:00", "nothing is booked that far ahead: {o}");
        assert_eq!(o["free"], o["places"]);
    }
}

fn day<'a>(days: &'a Value, date: &str) -> &'a Value {
    days["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("{date} missing"))
}

/// The calendar gives every day with its places and, for closed or unbookable days, the reason.
#[tokio::test]
async fn days_report_places_and_reasons() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let days = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-12-05&to=2027-01-26")
        .await;
    assert_eq!(days["days"].as_array().unwrap().len(), 53);
    let saturday = day(&days, "2026-12-05");
    assert_eq!(saturday["status"], "bookable");
    assert_eq!(saturday["places"], 18 * 2);
    let thursday = day(&days, "2026-12-10");
    // Morning 21 slots × 3 places, afternoon 12 slots × 2.
    assert_eq!(thursday["places"], 21 * 3 + 12 * 2);
    let sunday = day(&days, "2026-12-06");
    assert_eq!(sunday["status"], "closed");
    assert_eq!(sunday["reason"]["code"], "not_opening_day");
    assert_eq!(sunday["free"], 0);
    let immacolata = day(&days, "2026-12-08");
    assert_eq!(immacolata["reason"]["holiday"], "immaculate_conception");
    let patron = day(&days, "2026-12-09");
    assert_eq!(patron["reason"]["holiday"], "patron_saint");
    assert_eq!(patron["reason"]["label"], "San Siro");
    for (date, holiday) in [
        ("2026-12-25", "christmas"),
        ("2026-12-26", "saint_stephen"),
        ("2027-01-01", "new_year"),
        ("2027-01-06", "epiphany"),
    ] {
        assert_eq!(day(&days, date)["reason"]["holiday"], holiday, "{date}");
    }
    // The horizon is 60 days from Monday 23 November: 22 January 2027 is the last bookable day.
    assert_eq!(day(&days, "2027-01-22")["status"], "bookable");
    let beyond = day(&days, "2027-01-25");
    assert_eq!(beyond["status"], "unbookable");
    assert_eq!(beyond["reason"]["code"], "beyond_horizon");
    // Today's counts agree with the database.
    let today = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-11-23&to=2026-11-23")
        .await;
    let booked_today = app.scalar(
        "SELECT count(*) FROM appointments WHERE service_id = 'consegna-pse'
             AND slot_date = '2026-11-23'",
    );
    assert_eq!(today["days"][0]["taken"], booked_today);
}

/// Across the change to summer time the slots keep their wall-clock times and the lead time is
/// counted in real hours: from Saturday 27 March 2027 09:00, with 24 hours of lead time, the first
/// fingerprinting slot is Tuesday 30 March at 08:30 summer time.
#[tokio::test]
async fn slots_after_the_march_change_keep_their_wall_clock_time() {
    let app = spawn_demo_at("2027-03-27T08:00:00Z").await;
    let body = app.get_ok("/api/v1/services/rilievi/first-free").await;
    assert_eq!(body["slot"]["date"], "2027-03-30");
    assert_eq!(body["slot"]["start"], "08:30");
    assert_eq!(body["slot"]["starts_at"], "2027-03-30T08:30:00+02:00");
    let autumn = spawn_demo_at("2026-10-24T07:00:00Z").await;
    let body = autumn.get_ok("/api/v1/services/rilievi/first-free").await;
    assert_eq!(body["slot"]["date"], "2026-10-27");
    assert_eq!(body["slot"]["starts_at"], "2026-10-27T08:30:00+01:00");
}

/// `from` accepts a date, a wall-clock time in Rome and an instant with an offset, all meaning the
/// same moment here.
#[tokio::test]
async fn from_accepts_a_date_a_local_time_or_an_instant() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let mut answers = vec![];
    for from in [
        "2026-12-10T11:00",
        "2026-12-10T10:00:00Z",
        "2026-12-10T11:00:00%2B01:00",
    ] {
        let body = app
            .get_ok(&format!(
                "/api/v1/services/consegna-pse/first-free?from={from}"
            ))
            .await;
        answers.push(body["slot"].clone());
    }
    assert_eq!(answers[0]["start"], "11:00");
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let by_date = app
        .get_ok("/api/v1/services/consegna-pse/first-free?from=2026-12-10")
        .await;
    assert_eq!(by_date["slot"]["start"], "09:00");
}
