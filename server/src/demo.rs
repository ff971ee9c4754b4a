//! The demonstration Questura: a synthetic, Pavia-like set-up seeded by `coper-server serve --demo`
//! so that the README's first command shows a working system.
//!
//! Everything here is invented: the people (names in the shapes real ones have: several surnames,
//! particles, apostrophes, accents, partly known birth dates), the partner bodies' addresses and
//! telephone numbers (the 0382 000 … range, which is not assigned to anybody). Seeding happens once,
//! in one transaction; a database seeded before, or set up by hand, is never touched.

use crate::store::{
    self, Connection, StoreError, Transaction,
    appointments::{Contact, NewAppointment, book},
    partners::{self, Partner},
    ready::{self, Permit},
    services::{self, save_rules},
    settings::{self, Settings, questura},
};
use coper_shared::{
    agenda::{Agenda, DayPlan},
    holidays::HolidayCalendar,
    ids::ServiceId,
    rules::{OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule},
};
use jiff::{
    Timestamp, ToSpan,
    civil::{Date, Time, Weekday, time},
    tz::TimeZone,
};

pub const DELIVERY: &str = "consegna-pse";
pub const FINGERPRINTS: &str = "rilievi";

/// What `seed` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    Now {
        ready_permits: usize,
        appointments: usize,
    },
    AlreadySetUp,
}

/// The demo's staff accounts, all with [`DEMO_PASSWORD`]: synthetic, for trying the pages.
pub const DEMO_ACCOUNTS: [(&str, &str, crate::accounts::Role); 3] = [
    (
        "admin",
        "Amministratore (demo)",
        crate::accounts::Role::Admin,
    ),
    (
        "sportello",
        "Sportello 1 (demo)",
        crate::accounts::Role::Counter,
    ),
    (
        "documenti",
        "Verifica documenti (demo)",
        crate::accounts::Role::Precheck,
    ),
];
/// Printed in the README: the demo is for trying out, never for real data.
pub const DEMO_PASSWORD: &str = "demo-password";

/// Seed the demonstration data unless the database already has a Questura. Everything goes
/// through the store's own functions, so the audit log records the set-up as `system`.
pub fn seed(conn: &mut Connection, now: Timestamp) -> Result<Seeded, StoreError> {
    if questura(conn)?.is_some() {
        return Ok(Seeded::AlreadySetUp);
    }
    let tx = conn.transaction()?;
    settings::save_settings(
        &tx,
        &Settings {
            questura_name: "Questura di Pavia (dimostrazione)".into(),
            address: "Piazza dell'Esempio 1, 27100 Pavia".into(),
            phone: "0382 000100".into(),
            email: "immigrazione.demo@example.invalid".into(),
            patron: Some((12, 9, "San Siro".into())),
            checkin_early_minutes: 60,
            checkin_late_minutes: 90,
            kiosk_silent_minutes: 30,
            messaging: settings::Messaging::default(),
        },
        now,
        "system",
        "",
    )?;
    settings::mark_demo_seeded(&tx, now)?;
    // The demo's people are synthetic: their birth dates are stretched cheaply, so a demo starts
    // in a moment. A real list uses the default cost (docs/SECURITY.md).
    settings::set_ready_stretch(&tx, 8, 1)?;
    insert_services(&tx)?;
    insert_partner_bodies(&tx, now)?;
    let mut rng = fastrand::Rng::with_seed(0x00c0_ffee);
    let permits = insert_ready_permits(&tx, &mut rng, now)?;
    let appointments = book_a_realistic_week(&tx, &mut rng, now, &permits)?;
    for (username, display_name, role) in DEMO_ACCOUNTS {
        crate::accounts::create_user(
            &tx,
            username,
            display_name,
            DEMO_PASSWORD,
            role,
            None,
            now,
            "system",
        )?
        .map_err(|e| StoreError::InvalidData(e.to_string()))?;
    }
    store::audit_from(
        &tx,
        now,
        "system",
        "demo.seeded",
        "",
        &serde_json::json!({ "ready_permits": permits.len(), "appointments": appointments }),
        "",
    )?;
    tx.commit()?;
    Ok(Seeded::Now {
        ready_permits: permits.len(),
        appointments,
    })
}

fn range(start: Time, end: Time, slot_minutes: u16, places: u16) -> OpeningRange {
    OpeningRange::new(start, end, slot_minutes, places)
}

fn weekly(days: &[Weekday], r: OpeningRange) -> impl Iterator<Item = WeeklyRule> + '_ {
    days.iter()
        .map(move |&weekday| WeeklyRule { weekday, range: r })
}

fn insert_services(tx: &Transaction<'_>) -> Result<(), StoreError> {
    use Weekday::*;
    for (id, name, description, bring) in [
        (
            DELIVERY,
            "Consegna permesso elettronico",
            "Ritiro del permesso di soggiorno elettronico pronto per la consegna.",
            "Promemoria della prenotazione; passaporto o documento di identità; ricevuta della \
             richiesta (assicurata); il vecchio permesso di soggiorno, se ne avete uno.",
        ),
        (
            FINGERPRINTS,
            "Rilievi fotodattiloscopici",
            "Rilevamento delle impronte digitali per chi non si è presentato alla prima convocazione.",
            "Promemoria della prenotazione; passaporto; lettera di convocazione; quattro \
             fotografie formato tessera; ricevuta della richiesta (assicurata).",
        ),
    ] {
        let id = ServiceId::parse(id).expect("demo ids are valid");
        services::create(tx, &id, name)?;
        services::describe(
            tx,
            &id,
            name,
            description,
            bring,
            &demo_translations(id.as_str()),
        )?;
    }
    // Deliveries: every weekday morning at three counters, Thursday afternoon at two, and the extra
    // counter day the Pavia Questura opened for booked deliveries only (here: Saturday morning).
    let delivery: Vec<WeeklyRule> = weekly(
        &[Monday, Tuesday, Wednesday, Thursday, Friday],
        range(time(9, 0, 0, 0), time(12, 30, 0, 0), 10, 3),
    )
    .chain(weekly(
        &[Thursday],
        range(time(14, 30, 0, 0), time(16, 30, 0, 0), 10, 2),
    ))
    .chain(weekly(
        &[Saturday],
        range(time(9, 0, 0, 0), time(12, 0, 0, 0), 10, 2),
    ))
    .collect();
    let fingerprints: Vec<WeeklyRule> = weekly(
        &[Tuesday, Thursday],
        range(time(8, 30, 0, 0), time(12, 30, 0, 0), 15, 2),
    )
    .collect();
    for (id, weekly, horizon_days, lead_minutes) in [
        (DELIVERY, delivery, 60, 60),
        (FINGERPRINTS, fingerprints, 90, 1440),
    ] {
        let rules = ServiceRules::new(ServiceRulesDraft {
            service: ServiceId::parse(id).expect("demo ids are valid"),
            weekly,
            exceptions: vec![],
            horizon_days,
            lead_minutes,
        })
        .expect("demo rules are valid");
        save_rules(tx, &rules)?;
    }
    Ok(())
}

fn insert_partner_bodies(tx: &Transaction<'_>, now: Timestamp) -> Result<(), StoreError> {
    let bodies = [
        (
            "Comune di Pavia – Sportello Stranieri",
            "Via dei Mille Esempi 12",
            "Pavia",
            "0382 000101",
            "lun–ven 9:00–12:30; mar e gio 14:30–17:00",
        ),
        (
            "Comune di Vigevano – Ufficio Immigrazione",
            "Corso Dimostrativo 5",
            "Vigevano",
            "0381 000102",
            "lun, mer, ven 8:30–12:30",
        ),
        (
            "Patronato Lavoro e Diritti",
            "Viale della Prova 44",
            "Pavia",
            "0382 000103",
            "lun–ven 9:00–13:00 e 15:00–18:00",
        ),
        (
            "Associazione Porte Aperte",
            "Via del Campione 3",
            "Voghera",
            "0383 000104",
            "mar e gio 9:30–12:30; sab 9:30–11:30",
        ),
        (
            "Cooperativa Ponte sul Ticino",
            "Piazza Fittizia 8",
            "Mortara",
            "0384 000105",
            "lun–gio 14:00–18:00",
        ),
    ];
    for (name, address, city, phone, hours) in bodies {
        let body = Partner {
            id: 0,
            name: name.into(),
            address: address.into(),
            city: city.into(),
            phone: phone.into(),
            email: String::new(),
            opening_hours: hours.into(),
            ..Partner::draft()
        };
        partners::save_partner(tx, &body, now, "system", "")?
            .map_err(|e| StoreError::InvalidData(e.to_string()))?;
    }
    Ok(())
}

/// Synthetic surnames in the shapes that make name matching hard.
const SURNAMES: &[&str] = &[
    "El Amrani",
    "De la Cruz Rodríguez",
    "D'Souza",
    "Ben Saïd",
    "Nguyễn",
    "Hossain",
    "Al-Hassan",
    "Kovalenko",
    "Çela",
    "Da Silva Pereira",
    "Singh",
    "N'Diaye",
    "Ould Cheikh",
    "Dos Santos",
    "Mahmoud Abdel Rahman",
    "Popescu",
    "Wang",
    "Islam Chowdhury",
    "Hoxha",
    "Fernández-García",
    "Okafor",
    "Shevchenko",
    "Ahmed",
    "Van der Berg",
    "Mendoza Quispe",
];

const GIVEN_NAMES: &[&str] = &[
    "Mohamed Amine",
    "María José",
    "Oksana",
    "Ana-Maria",
    "Thi Lan",
    "Rahim Uddin",
    "Fatou",
    "Gjergj",
    "Zoë",
    "Xiaoming",
    "Chukwuemeka",
    "Ioana",
    "Aïcha",
    "Gurpreet",
    "José Luis",
    "Nadia",
    "Olha",
    "Sabbir",
    "Élise",
    "Kwame",
];

fn random_date(rng: &mut fastrand::Rng, from: Date, days: i32) -> Date {
    from.checked_add(rng.i32(0..days).days())
        .expect("demo dates are in range")
}

/// 200 ready permits with synthetic people; returns their ids and names.
fn insert_ready_permits(
    tx: &Transaction<'_>,
    rng: &mut fastrand::Rng,
    now: Timestamp,
) -> Result<Vec<(i64, Permit)>, StoreError> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let mut ids = Vec::with_capacity(200);
    for i in 0..200 {
        let surname = SURNAMES[rng.usize(..SURNAMES.len())];
        let given = GIVEN_NAMES[rng.usize(..GIVEN_NAMES.len())];
        let birth = random_date(rng, Date::constant(1955, 1, 1), 365 * 50);
        // About one in twenty birth dates is only partly known.
        let birth_text = match i % 20 {
            7 => birth.year().to_string(),
            13 => format!("{}-{:02}", birth.year(), birth.month()),
            _ => birth.to_string(),
        };
        let fingerprinted = random_date(rng, today.checked_sub(150.days()).expect("in range"), 120);
        // Synthetic identifiers: 12-character receipt and 10-character pratica numbers that
        // start with 99, a prefix the national systems do not issue.
        let receipt = format!("99{:010}", 4_000_000 + i * 7919);
        let pratica = format!("99{:08}", 300_000 + i * 104_729 % 9_000_000);
        let permit = Permit {
            surname: surname.into(),
            given_names: given.into(),
            birth_date: birth_text,
            fingerprint_date: fingerprinted.to_string(),
            receipt_number: Some(receipt),
            pratica_number: Some(pratica),
            drawer: format!("C{}", 1 + i / 25),
        };
        let id = ready::insert(tx, &permit, now)?;
        ids.push((id, permit));
    }
    Ok(ids)
}

/// Book about 40% of the delivery places of the next seven days for some of the ready permits, as
/// partner bodies would have, so the agenda and the day views are not empty.
fn book_a_realistic_week(
    tx: &Transaction<'_>,
    rng: &mut fastrand::Rng,
    now: Timestamp,
    permits: &[(i64, Permit)],
) -> Result<usize, StoreError> {
    let questura = questura(tx)?.expect("settings were just inserted");
    let service = services::service(tx, DELIVERY)?.expect("service was just inserted");
    let holidays: &HolidayCalendar = &questura.holidays;
    let agenda = Agenda::new(&service.rules, holidays, &questura.time_zone);
    let today = now.to_zoned(questura.time_zone.clone()).date();
    let mut next_permit = permits.iter();
    let mut booked = 0;
    for date in today.series(1.day()).take(7) {
        let DayPlan::Open(slots) = agenda.day(date) else {
            continue;
        };
        for slot in slots {
            for _ in 0..slot.places {
                if rng.f32() >= 0.4 {
                    continue;
                }
                let Some((permit, person)) = next_permit.next() else {
                    return Ok(booked);
                };
                let permit = *permit;
                let (surname, given_names) = (&person.surname, &person.given_names);
                // Synthetic contacts (a number range no one is given, a reserved domain), in
                // every language, so the notices can be seen on /admin/notices.
                let phone = format!("+39300{permit:07}");
                let email = format!("persona{permit}@example.invalid");
                let lang = coper_shared::notices::LANGUAGES
                    [permit as usize % coper_shared::notices::LANGUAGES.len()];
                let new = NewAppointment {
                    service: &service.id,
                    slot,
                    surname,
                    given_names,
                    phone: Some(&phone),
                    ready_permit_id: Some(permit),
                    partner_body_id: Some(1 + (permit % 5)),
                    kiosk: None,
                    created_by: "demo",
                    contact: Contact {
                        email: (permit % 3 == 0).then_some(email.as_str()),
                        lang: Some(lang),
                        consent: true,
                    },
                };
                book(tx, &new, now).map_err(|e| StoreError::InvalidData(e.to_string()))?;
                booked += 1;
            }
        }
    }
    Ok(booked)
}

/// "What to bring" of a demo service in the other languages (synthetic, like everything here).
fn demo_translations(service: &str) -> coper_shared::precheck::Translations {
    let texts: &[(&str, &str)] = match service {
        DELIVERY => &[
            (
                "en",
                "Booking reminder; passport or identity document; receipt of the application (assicurata); your old residence permit, if you have one.",
            ),
            (
                "fr",
                "Rappel de la réservation ; passeport ou pièce d'identité ; récépissé de la demande (assicurata) ; l'ancien titre de séjour, si vous en avez un.",
            ),
            (
                "ar",
                "تذكير الحجز؛ جواز السفر أو وثيقة الهوية؛ إيصال الطلب (assicurata)؛ تصريح الإقامة القديم، إن كان لديك واحد.",
            ),
            (
                "sq",
                "Kujtesa e rezervimit; pasaporta ose dokumenti i identitetit; mandata e kërkesës (assicurata); leja e vjetër e qëndrimit, nëse keni një të tillë.",
            ),
            (
                "uk",
                "Нагадування про запис; паспорт або документ, що посвідчує особу; квитанція про подання заяви (assicurata); старий дозвіл на проживання, якщо він у вас є.",
            ),
            (
                "ru",
                "Напоминание о записи; паспорт или удостоверение личности; квитанция о подаче заявления (assicurata); старый вид на жительство, если он у вас есть.",
            ),
            (
                "zh",
                "预约提醒单；护照或身份证件；申请回执 (assicurata)；旧的居留许可（如有）。",
            ),
            (
                "es",
                "Recordatorio de la reserva; pasaporte o documento de identidad; recibo de la solicitud (assicurata); el permiso de residencia antiguo, si tiene uno.",
            ),
            (
                "bn",
                "বুকিংয়ের রিমাইন্ডার; পাসপোর্ট বা পরিচয়পত্র; আবেদনের রসিদ (assicurata); পুরোনো রেসিডেন্স পারমিট, যদি থাকে।",
            ),
            (
                "ur",
                "بکنگ کی یاد دہانی؛ پاسپورٹ یا شناختی دستاویز؛ درخواست کی رسید (assicurata)؛ پرانا رہائشی پرمٹ، اگر آپ کے پاس ہے۔",
            ),
        ],
        _ => &[
            (
                "en",
                "Booking reminder; passport; appointment letter; four passport-size photos; receipt of the application (assicurata).",
            ),
            (
                "fr",
                "Rappel de la réservation ; passeport ; lettre de convocation ; quatre photos d'identité ; récépissé de la demande (assicurata).",
            ),
            (
                "ar",
                "تذكير الحجز؛ جواز السفر؛ رسالة الاستدعاء؛ أربع صور شخصية بمقاس صورة جواز السفر؛ إيصال الطلب (assicurata).",
            ),
            (
                "sq",
                "Kujtesa e rezervimit; pasaporta; letra e thirrjes; katër fotografi të formatit të pasaportës; mandata e kërkesës (assicurata).",
            ),
            (
                "uk",
                "Нагадування про запис; паспорт; лист-виклик; чотири фотографії паспортного формату; квитанція про подання заяви (assicurata).",
            ),
            (
                "ru",
                "Напоминание о записи; паспорт; письмо-вызов; четыре фотографии паспортного формата; квитанция о подаче заявления (assicurata).",
            ),
            (
                "zh",
                "预约提醒单；护照；约见通知信；四张证件照；申请回执 (assicurata)。",
            ),
            (
                "es",
                "Recordatorio de la reserva; pasaporte; carta de convocatoria; cuatro fotos tamaño carné; recibo de la solicitud (assicurata).",
            ),
            (
                "bn",
                "বুকিংয়ের রিমাইন্ডার; পাসপোর্ট; ডেকে পাঠানোর চিঠি; চারটি পাসপোর্ট সাইজের ছবি; আবেদনের রসিদ (assicurata)।",
            ),
            (
                "ur",
                "بکنگ کی یاد دہانی؛ پاسپورٹ؛ بلاوے کا خط؛ پاسپورٹ سائز کی چار تصویریں؛ درخواست کی رسید (assicurata)۔",
            ),
        ],
    };
    texts
        .iter()
        .map(|(code, text)| (code.to_string(), text.to_string()))
        .collect()
}
