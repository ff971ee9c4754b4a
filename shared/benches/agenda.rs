//! The agenda engine's first free place, the query behind every "first free slot" a kiosk
//! proposes and every relocation the server plans: a large Questura (40,000 deliveries a year)
//! over a 180-day horizon whose first half is booked up, so the search walks past every full
//! slot before it finds one. Goal (issue #16): ≤ 100 µs. Figures in docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo bench -p coper-shared --bench agenda
//! ```

use std::hint::black_box;

use coper_shared::{
    agenda::{Agenda, Occupancy, SlotKey, TakenPlaces},
    holidays::HolidayCalendar,
    ids::ServiceId,
    rules::{OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule},
};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{
    Timestamp,
    civil::{Weekday, time},
    tz::TimeZone,
};

/// Bookings a year at the largest Questura the issue names.
const BOOKINGS_A_YEAR: u32 = 40_000;
const HORIZON_DAYS: u16 = 180;

/// Monday to Friday 8:30–13:30 and 14:30–16:30, a slot every 10 minutes with 5 places: 210 a
/// day, enough for 40,000 a year with room for the busy weeks.
fn rules() -> ServiceRules {
    let ranges = [
        OpeningRange::new(time(8, 30, 0, 0), time(13, 30, 0, 0), 10, 5),
        OpeningRange::new(time(14, 30, 0, 0), time(16, 30, 0, 0), 10, 5),
    ];
    ServiceRules::new(ServiceRulesDraft {
        service: ServiceId::parse("consegna-pse").unwrap(),
        weekly: [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ]
        .into_iter()
        .flat_map(|weekday| {
            ranges.iter().map(move |range| WeeklyRule {
                weekday,
                range: *range,
            })
        })
        .collect(),
        exceptions: Vec::new(),
        horizon_days: HORIZON_DAYS,
        lead_minutes: 60,
    })
    .expect("valid rules")
}

fn first_free(c: &mut Criterion) {
    let rules = rules();
    let holidays = HolidayCalendar::new(None);
    let tz = TimeZone::get("Europe/Rome").unwrap();
    let agenda = Agenda::new(&rules, &holidays, &tz);
    let now: Timestamp = "2026-12-01T07:00:00Z".parse().unwrap();
    let today = now.to_zoned(tz.clone()).date();
    // The horizon's bookings (half a year of 40,000 a year), every place from the start taken.
    let mut taken = TakenPlaces::default();
    let mut left = BOOKINGS_A_YEAR / 2;
    for slot in agenda.free_slots(&TakenPlaces::default(), now, today.at(0, 0, 0, 0)) {
        if left == 0 {
            break;
        }
        let places = u32::from(slot.free).min(left);
        taken.add(slot.slot.key(), places);
        left -= places;
    }
    let first = agenda
        .first_free(&taken, now, today.at(0, 0, 0, 0))
        .expect("a free place within the horizon");
    let key: SlotKey = first.slot.key();
    assert_eq!(taken.taken(key), 0);
    println!(
        "{} slots booked; the first free place is {} {}",
        taken.0.len(),
        key.date,
        key.start
    );
    c.bench_function("first free place, 180 days, 40,000 bookings a year", |b| {
        b.iter(|| agenda.first_free(black_box(&taken), now, today.at(0, 0, 0, 0)))
    });
}

criterion_group!(benches, first_free);
criterion_main!(benches);
