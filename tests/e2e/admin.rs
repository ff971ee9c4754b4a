//! The administration end to end: in a real browser, the ready-list import with bad rows, editing
//! a service's hours with the preview, closing a day that has bookings (a kiosk sees its booking
//! moved); over HTTP, partner bodies with kiosks and operators, appointments' export and
//! cancellation, and the audit log.

use std::time::Duration;

use coper_e2e::browser::Browser;
use coper_kiosk::core::BookingStatus;
use coper_server::demo::DEMO_PASSWORD;
use coper_shared::jiff::civil;

use crate::helpers::{TestApp, TestKiosk, delivery, eventually, spawn_demo_at};

/// Monday 23 November 2026, 09:00 in Rome.
const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// Issue an enrolment code on the partner body's page and enrol a real kiosk with it.
async fn enrol_from_page(
    app: &TestApp,
    admin: &crate::helpers::StaffSession,
    partner: i64,
    label: &str,
) -> (coper_kiosk::core::KioskConfig, tempfile::TempDir) {
    let (_, page) = app
        .submit(
            admin,
            &format!("/admin/partners/{partner}/kiosk-codes"),
            &[("label", label)],
        )
        .await;
    let code = page
        .split("mostrato una sola volta): ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the code is shown once")
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let config = coper_kiosk::core::KioskConfig::new(dir.path().join("kiosk"));
    coper_kiosk::core::enrol(&config, &app.ws_url(), &code)
        .await
        .expect("the code from the page enrols a kiosk");
    (config, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_the_ready_list_after_fixing_its_bad_rows() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let before = app.scalar("SELECT count(*) FROM ready_permits");
    let browser = Browser::start().await;
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser.goto(&format!("{}/admin/permits", app.base)).await;
    let bad = "Cognome;Nome;Data di nascita;Data impronte;Assicurata\n\
               Nuovo;Persona;01/02/1990;10/11/2026;050000000001\n\
               Sbagliato;Data;31/02/1990;10/11/2026;050000000002\n\
               ;SenzaCognome;01/02/1991;10/11/2026;050000000003\n";
    browser.type_into("#csv", bad).await;
    browser.click_and_wait_for_page("#import-check").await;
    let errors = browser.text("#import-errors").await;
    assert!(errors.contains("riga 3"), "{errors}");
    assert!(errors.contains("riga 4"), "{errors}");
    assert!(!errors.contains("riga 2"), "{errors}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM ready_permits"),
        before,
        "nothing imported"
    );

    // Fixed: the preview says what will happen, the import does it, a second import changes
    // nothing.
    let good = "Cognome;Nome;Data di nascita;Data impronte;Assicurata\n\
                Nuovo;Persona;01/02/1990;10/11/2026;050000000001\n\
                Sbagliato;Data;28/02/1990;10/11/2026;050000000002\n";
    browser
        .script("document.getElementById('csv').value = '';")
        .await;
    browser.type_into("#csv", good).await;
    browser.click_and_wait_for_page("#import-check").await;
    let preview = browser.text("#import-preview").await;
    assert!(preview.contains("2 aggiunti"), "{preview}");
    assert_eq!(app.scalar("SELECT count(*) FROM ready_permits"), before);
    browser.click_and_wait_for_page("#import-confirm").await;
    let done = browser.text("#import-done").await;
    assert!(
        done.contains("2 aggiunti, 0 aggiornati, 0 invariati"),
        "{done}"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM ready_permits"), before + 2);
    browser.type_into("#csv", good).await;
    browser.click_and_wait_for_page("#import-check").await;
    browser.click_and_wait_for_page("#import-confirm").await;
    let again = browser.text("#import-done").await;
    assert!(
        again.contains("0 aggiunti, 0 aggiornati, 2 invariati"),
        "{again}"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_hours_sees_the_preview_and_saves() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let browser = Browser::start().await;
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser
        .goto(&format!("{}/admin/services/consegna-pse", app.base))
        .await;

    // A mistake: zero places. The server says so in words and keeps what was typed.
    let blank_day = "#exceptions tbody tr:last-child";
    browser
        .script(&format!(
            "const row = document.querySelector('{blank_day}');
             row.querySelector('[name=x_date]').value = '2026-11-29';
             row.querySelector('[name=x_kind]').value = 'open';
             row.querySelector('[name=x_start]').value = '09:00';
             row.querySelector('[name=x_end]').value = '11:00';
             row.querySelector('[name=x_slot]').value = '10';
             row.querySelector('[name=x_places]').value = '0';"
        ))
        .await;
    browser.click_and_wait_for_page("#preview").await;
    let errors = browser.text("#rule-errors").await;
    assert!(errors.contains("0 posti"), "{errors}");
    let kept = browser
        .script("return [...document.querySelectorAll('[name=x_date]')].map(i => i.value);")
        .await;
    assert!(kept.to_string().contains("2026-11-29"), "{kept}");

    // Corrected: Sunday 29 November opens with 2 places in twelve slots; the preview shows it.
    browser
        .script(
            "const input = [...document.querySelectorAll('[name=x_places]')]
               .find(i => i.value === '0'); input.value = '2';",
        )
        .await;
    browser.click_and_wait_for_page("#preview").await;
    let sunday = browser
        .text("#preview-result [data-date='2026-11-29']")
        .await;
    assert!(sunday.contains("24 liberi su 24"), "{sunday}");
    assert!(browser.text("#no-moves").await.contains("Nessuna"));
    let days_before = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-11-29&to=2026-11-29")
        .await;
    assert_eq!(
        days_before["days"][0]["places"], 0,
        "not saved by the preview"
    );

    browser.click_and_wait_for_page("#save").await;
    assert!(browser.text("#saved-title").await.contains("Orari salvati"));
    let days = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-11-29&to=2026-11-29")
        .await;
    assert_eq!(days["days"][0]["places"], 24, "{days}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_day_moves_its_bookings_and_the_kiosk_sees_the_new_time() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    // The kiosk books Tuesday 24 November, the day that will close.
    let tuesday = civil::date(2026, 11, 24);
    let proposal = kiosk
        .core
        .options(&delivery(), tuesday.at(0, 0, 0, 0), 1)
        .unwrap()
        .into_iter()
        .next()
        .expect("a free slot on Tuesday");
    assert_eq!(proposal.slot.date, tuesday);
    let booking = kiosk
        .core
        .book(&delivery(), proposal.slot.key(), "Abebe", "Selam", None)
        .unwrap();
    kiosk
        .core
        .wait_for_verdict(booking.request, Duration::from_secs(15))
        .await
        .expect("confirmed");
    let on_tuesday = app.scalar(
        "SELECT count(*) FROM appointments WHERE slot_date = '2026-11-24'
           AND service_id = 'consegna-pse' AND status = 'booked'",
    );
    assert!(on_tuesday > 1);
    assert!(
        app.scalar(
            "SELECT count(*) FROM leases WHERE slot_date = '2026-11-24'
               AND service_id = 'consegna-pse' AND granted > used"
        ) > 0,
        "the kiosk holds leased places on Tuesday"
    );

    let browser = Browser::start().await;
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser.goto(&format!("{}/admin/close-day", app.base)).await;
    browser
        .script("document.getElementById('date').value = '2026-11-24';")
        .await;
    browser.type_into("#note", "sciopero").await;
    browser
        .script("document.getElementById('service').value = 'consegna-pse';")
        .await;
    browser.click_and_wait_for_page("#close-preview").await;
    let preview = browser.text("#close-preview-result").await;
    assert!(preview.contains(&format!("({on_tuesday})")), "{preview}");
    assert!(
        preview.contains("ABEBE") || preview.contains("Abebe"),
        "{preview}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM appointments WHERE slot_date = '2026-11-24' AND service_id = 'consegna-pse' AND status = 'booked'"
        ),
        on_tuesday,
        "the preview changes nothing"
    );
    browser.click_and_wait_for_page("#close-confirm").await;
    assert!(browser.text("#saved-title").await.contains("Giorno chiuso"));

    // Nobody is left on the closed day, nobody was dropped, and every slot is within its places.
    assert_eq!(
        app.scalar("SELECT count(*) FROM appointments WHERE slot_date = '2026-11-24' AND service_id = 'consegna-pse' AND status = 'booked'"
        ),
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'appointment.relocated'"),
        on_tuesday
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM slot_capacity WHERE taken + held > places"),
        0
    );
    // Places leased to kiosks on the closed day are given back.
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM leases WHERE slot_date = '2026-11-24'
               AND service_id = 'consegna-pse' AND granted > used"
        ),
        0
    );
    assert_eq!(
        app.scalar(
            "SELECT coalesce(sum(held), 0) FROM slot_capacity WHERE slot_date = '2026-11-24'
               AND service_id = 'consegna-pse'"
        ),
        0
    );
    // The kiosk shows its booking relocated to the new time.
    eventually(15, "the kiosk to see its booking relocated", || {
        kiosk.core.bookings().iter().any(|b| {
            b.request == booking.request
                && matches!(b.status, BookingStatus::Relocated { date, .. } if date > tuesday)
        })
    })
    .await;
    // Tuesday is closed for the public too.
    let days = app
        .get_ok("/api/v1/services/consegna-pse/days?from=2026-11-24&to=2026-11-24")
        .await;
    assert_eq!(days["days"][0]["status"], "closed", "{days}");
    assert_eq!(days["days"][0]["reason"]["label"], "sciopero", "{days}");
    // The audit log has the closure and the reason typed, not only the rules it changed.
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'agenda.day_closed'
             AND subject = '2026-11-24' AND json_extract(detail, '$.reason') = 'sciopero'
             AND json_extract(detail, '$.moved') > 0"
        ),
        1
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_bodies_kiosks_operators_appointments_and_audit_over_http() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();

    // A new partner body; a mistake is named.
    let (status, page) = app
        .submit(
            &admin,
            "/admin/partners",
            &[
                ("name", "Caritas Esempio"),
                ("address", ""),
                ("city", "Pavia"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("l&#x27;indirizzo e la città sono obbligatori")
            || page.contains("indirizzo e la città"),
        "{page}"
    );
    let (status, _) = app
        .submit(
            &admin,
            "/admin/partners",
            &[
                ("name", "Caritas Esempio"),
                ("address", "Via Prova 1"),
                ("city", "Pavia"),
                ("phone", "0382 000199"),
                ("opening_hours", "lun 9-12"),
                ("active", "1"),
                ("lease_places_per_day", "2"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let partner: i64 = app.scalar("SELECT id FROM partner_bodies WHERE name = 'Caritas Esempio'");
    let partners = app.get_ok("/api/v1/partners").await;
    assert!(partners.to_string().contains("Caritas Esempio"));

    // An enrolment code from the page enrols a real kiosk, which the page then lists.
    let _kiosk = enrol_from_page(&app, &admin, partner, "Sportello Caritas").await;
    let (_, page) = app
        .fetch(&admin, &format!("/admin/partners/{partner}"))
        .await;
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("Sportello Caritas"), "{page}");

    // An operator with a password; a short password is refused.
    let operators = format!("/admin/partners/{partner}/operators");
    let operator = |password: &'static str| {
        let fields = [
            ("username", "op.caritas"),
            ("display_name", "Operatore"),
            ("password", password),
        ];
        let (app, admin, operators) = (&app, &admin, &operators);
        async move { app.submit(admin, operators, &fields).await }
    };
    let (_, page) = operator("short").await;
    assert!(page.contains("almeno 12 caratteri"), "{page}");
    let (_, page) = operator("una password lunga").await;
    assert!(page.contains("Operatore creato"), "{page}");
    // Operators log in at kiosks, never on the staff pages.
    let (_, refused) = app
        .log_in("op.caritas", "una password lunga")
        .await
        .err()
        .unwrap();
    // … and read what a wrong password reads: the form reveals nothing about the account.
    assert!(
        refused.contains(
            coper_server::accounts::LOGIN_REFUSED
                .split('\'')
                .next()
                .unwrap()
        ),
        "{refused}"
    );

    // Appointments: export for Excel, then cancel one with a reason.
    let (status, csv) = app
        .fetch(
            &admin,
            "/admin/appointments.csv?from=2026-11-24&to=2026-11-24&service=consegna-pse",
        )
        .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "a BOM for Excel");
    let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Data;Ora;Servizio;Cognome;Nome")
    );
    let tuesday = app.scalar("SELECT count(*) FROM appointments WHERE slot_date = '2026-11-24' AND service_id = 'consegna-pse'",
    );
    assert_eq!(lines.clone().count() as i64, tuesday);
    assert!(lines.all(|l| l.starts_with("24/11/2026;")));
    let id: String = app
        .database()
        .query_row(
            "SELECT id FROM appointments WHERE status = 'booked' AND slot_date = '2026-11-24' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (_, page) = app
        .submit(
            &admin,
            &format!("/admin/appointments/{id}/cancel"),
            &[("reason", "")],
        )
        .await;
    assert!(page.contains("indicare il motivo"), "a reason is required");
    let (_, page) = app
        .submit(
            &admin,
            &format!("/admin/appointments/{id}/cancel"),
            &[("reason", "richiesta dell'interessato")],
        )
        .await;
    assert!(page.contains("Prenotazione annullata"), "{page}");
    let status: String = app.one("SELECT status FROM appointments WHERE id = ?1", &id);
    assert_eq!(status, "cancelled");

    // The audit log shows who did all this, from where, filtered by action.
    let (_, page) = app
        .fetch(&admin, "/admin/audit?action=appointment.cancelled")
        .await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("appointment.cancelled")
            && page.contains("(admin)")
            && page.contains("127.0.0.1"),
        "{page}"
    );
    assert!(!page.contains("partner.created"), "filtered");
}

/// "Done when": from an empty database, an administrator sets up a Questura with the pages only
/// (after `create-admin`), imports the ready list, enrols a kiosk, and the public's status check
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_questura_is_set_up_from_an_empty_database() {
    let app = crate::helpers::spawn(crate::helpers::Options::default()).await;
    let out = std::process::Command::new(crate::helpers::server_binary())
        .args(["create-admin", "--username", "capo.ufficio", "--data-dir"])
        .arg(&app.data_dir)
        .env("COPER_ADMIN_PASSWORD", "una frase lunga e segreta")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = app
        .log_in("capo.ufficio", "una frase lunga e segreta")
        .await
        .unwrap();
    let (_, home) = app.fetch(&admin, "/admin").await;
    assert!(
        String::from_utf8(home)
            .unwrap()
            .contains("non è ancora configurata")
    );

    let settings = |retention: &'static str| {
        [
            ("questura_name", "Questura di Esempio"),
            ("address", "Via Nuova 1, Esempio"),
            ("patron_date", "06-24"),
            ("patron_name", "San Giovanni"),
            ("checkin_early_minutes", "45"),
            ("checkin_late_minutes", "60"),
            ("reminder_days_before", "1"),
            ("reminder_at", "18:30"),
            ("quiet_from", "21:00"),
            ("quiet_until", "07:30"),
            ("contact_retention_days", retention),
        ]
    };
    let (status, _) = app
        .submit(&admin, "/admin/settings", &settings("400"))
        .await;
    assert_eq!(status, 400, "a year and more of contacts is refused");
    assert_eq!(app.scalar("SELECT count(*) FROM settings"), 0);
    let (status, _) = app.submit(&admin, "/admin/settings", &settings("14")).await;
    assert_eq!(status, 200);
    let stored: (i64, String, String, String, i64) = app
        .database()
        .query_row(
            "SELECT reminder_days_before, reminder_at, quiet_from, quiet_until,
                    contact_retention_days FROM settings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        stored,
        (1, "18:30".into(), "21:00".into(), "07:30".into(), 14)
    );
    let (status, _) = app
        .submit(
            &admin,
            "/admin/services",
            &[("id", "consegna"), ("name", "Consegna permessi")],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page) = app
        .submit(
            &admin,
            "/admin/services/consegna",
            &[
                ("name", "Consegna permessi"),
                ("horizon_days", "30"),
                ("lead_minutes", "60"),
                ("what_to_bring", "Passaporto e ricevuta."),
                ("w_day", "1"),
                ("w_start", "09:00"),
                ("w_end", "12:00"),
                ("w_slot", "15"),
                ("w_places", "2"),
                ("w_day", "3"),
                ("w_start", "09:00"),
                ("w_end", "12:00"),
                ("w_slot", "15"),
                ("w_places", "2"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let first = app.get_ok("/api/v1/services/consegna/first-free").await;
    // Within the hours just saved (on the real clock: later than 09:00 on a Monday or
    // Wednesday morning once the lead time has passed).
    let start = first["slot"]["start"].as_str().unwrap_or_default();
    assert!(("09:00".."12:00").contains(&start), "{first}");

    let (status, _) = app
        .submit(
            &admin,
            "/admin/partners",
            &[
                ("name", "Comune di Esempio"),
                ("address", "Piazza 1"),
                ("city", "Esempio"),
                ("active", "1"),
                ("lease_places_per_day", "2"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let partner = app.scalar("SELECT id FROM partner_bodies");
    let (config, _dir) = enrol_from_page(&app, &admin, partner, "Chiosco 1").await;
    let kiosk = coper_kiosk::core::KioskCore::start(config).unwrap();
    eventually(15, "the new kiosk to learn the service", || {
        kiosk
            .services()
            .iter()
            .any(|(id, _)| id.as_str() == "consegna")
    })
    .await;
    kiosk.shutdown().await;

    let (_, page) = app
        .submit(
            &admin,
            "/admin/permits/import",
            &[(
                "csv",
                "cognome,nome,data di nascita,data rilievi\nNdiaye,Awa,12/05/1988,02/10/2026\n",
            )],
        )
        .await;
    assert!(page.contains("1 aggiunti"), "{page}");
    let answer = app
        .client
        .post(app.url("/api/v1/status-check"))
        .json(&serde_json::json!({"surname": "NDIAYE", "name": "awa",
               "birth_date": "1988-05-12", "fingerprint_date": "2026-10-02"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(answer["status"], "ready");
    for lang in ["it", "en", "fr", "ar"] {
        let page = app.text(&format!("/?lang={lang}")).await;
        assert!(
            page.contains(&format!("lang=\"{lang}\"")) && page.contains("Comune di Esempio"),
            "{lang}"
        );
    }
}

/// A kiosk's last contact follows its syncs (not only its enrolment), reads as "… min fa" on its
/// partner body's page, and a kiosk silent for longer than the settings allow is flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_that_syncs_is_seen_alive_and_a_silent_one_is_flagged() {
    let app = crate::helpers::spawn_demo().await;
    let alive = crate::helpers::TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let silent = crate::helpers::TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let (core, _config, _dir) = silent.into_parts();
    core.shutdown().await;
    let two_hours_ago = coper_shared::jiff::Timestamp::now()
        .checked_sub(coper_shared::jiff::SignedDuration::from_hours(2))
        .unwrap()
        .to_string();
    app.database_rw()
        .execute(
            "UPDATE kiosks SET last_seen_at = ?1 WHERE partner_body_id = 1",
            [&two_hours_ago],
        )
        .unwrap();
    // The connected kiosk is seen again while it stays connected, without reconnecting.
    let id = alive.core.kiosk_id().to_string();
    eventually(30, "the connected kiosk's last contact to move", || {
        let seen: String = app.one("SELECT last_seen_at FROM kiosks WHERE id = ?1", &id);
        seen > two_hours_ago
    })
    .await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let page = String::from_utf8(app.fetch(&admin, "/admin/partners/1").await.1).unwrap();
    let row_of = |kiosk: &str| -> String {
        let at = page.find(kiosk).expect("the kiosk is listed");
        let start = page[..at].rfind("<tr").unwrap();
        let end = at + page[at..].find("</tr>").unwrap();
        page[start..end].to_owned()
    };
    let alive_row = row_of(&id);
    assert!(
        alive_row.contains("adesso") || alive_row.contains("min fa"),
        "{alive_row}"
    );
    assert!(!alive_row.contains("silenzioso"), "{alive_row}");
    let silent_id: String = app.one(
        "SELECT id FROM kiosks WHERE partner_body_id = 1 AND public_key IS NOT NULL AND id <> ?1",
        &id,
    );
    let silent_row = row_of(&silent_id);
    assert!(
        silent_row.contains("2 h fa") && silent_row.contains("silenzioso"),
        "{silent_row}"
    );
}

/// Issue "A booking every party can trust", point 6: a `;` file saved by Italian Excel in
/// Windows-1252, chosen with the page's file input in a real browser, previews with its accents
/// intact, imports as the right names, and the same people in UTF-8 afterwards add nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excel_file_in_windows_1252_imports_with_its_accents() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let utf8 = "Cognome;Nome;Data di nascita;Data impronte\n\
                Fernández López;José;01/02/1980;03/10/2026\n\
                Traoré;Aïssata;1976;03/10/2026\n";
    // The bytes Excel writes: one byte per accented letter.
    let cp1252: Vec<u8> = utf8
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 letters"))
        .collect();
    assert!(std::str::from_utf8(&cp1252).is_err());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("permessi.csv");
    std::fs::write(&file, &cp1252).unwrap();

    let browser = Browser::start().await;
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser.goto(&format!("{}/admin/permits", app.base)).await;
    browser.type_into("#csv-file", file.to_str().unwrap()).await;
    browser
        .wait_for_script(
            "return document.getElementById('csv').value.includes('Fernández López');",
            5,
        )
        .await;
    browser.click_and_wait_for_page("#import-check").await;
    let sample = browser.text("#import-sample").await;
    assert!(
        sample.contains("Fernández López") && sample.contains("Aïssata"),
        "{sample}"
    );
    browser.click_and_wait_for_page("#import-confirm").await;
    assert!(browser.text("#import-done").await.contains("2 aggiunti"));
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM ready_permits WHERE surname IN ('Fernández López', 'Traoré')"
        ),
        2
    );
    // The same people, saved in UTF-8 this time: nobody new.
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .submit(&admin, "/admin/permits/import", &[("csv", utf8)])
        .await;
    assert!(page.contains("0 aggiunti"), "{page}");
    browser.quit().await;
}

/// Issue "A booking every party can trust", point 6: the administrator finds an entry of the
/// ready list without typing its accents, corrects it (the booking still to come takes the new
/// spelling), cannot remove one whose person has a booking, and removes a wrong one with a
/// reason; each change is audited; the command line does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_searches_corrects_and_removes_ready_list_entries() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let csv = "Cognome;Nome;Data di nascita;Data impronte\n\
               Fernández López;Jose;01/02/1980;03/10/2026\n\
               Sbagliato;Riga;1976;03/10/2026\n";
    let (_, page) = app
        .submit(&admin, "/admin/permits/import", &[("csv", csv)])
        .await;
    assert!(page.contains("2 aggiunti"), "{page}");
    let fernandez: i64 = app.one(
        "SELECT id FROM ready_permits WHERE surname = ?1",
        "Fernández López",
    );

    let browser = Browser::start().await;
    browser.log_in(&app.base, "admin", DEMO_PASSWORD).await;
    browser.goto(&format!("{}/admin/permits", app.base)).await;
    browser.click_and_wait_for_page("#browse").await;
    browser.type_into("#q", "fernandez lopez").await;
    browser.click_and_wait_for_page("#search").await;
    assert!(browser.text("#found").await.starts_with("1 voce trovata"));
    assert!(browser.text("#entries").await.contains("Fernández López"));
    browser
        .goto(&format!("{}/admin/permits/{fernandez}", app.base))
        .await;
    browser
        .script("document.getElementById('given_names').value = 'José';")
        .await;
    browser.click_and_wait_for_page("#save").await;
    assert!(browser.text("#saved").await.starts_with("Voce corretta"));
    assert_eq!(
        app.one::<String>(
            "SELECT given_names FROM ready_permits WHERE id = ?1",
            fernandez
        ),
        "José"
    );
    let audited: String = app.one(
        "SELECT detail FROM audit_log WHERE action = 'ready.corrected' AND subject = ?1",
        fernandez.to_string(),
    );
    assert!(
        audited.contains("given_names") && !audited.contains("José"),
        "{audited}"
    );
    // A date typed wrong: refused with the reason, nothing lost of what was typed.
    browser
        .script("document.getElementById('birth_date').value = '31/02/1980';")
        .await;
    browser.click_and_wait_for_page("#save").await;
    assert!(
        browser
            .text("#error")
            .await
            .contains("data di nascita non valida")
    );
    let kept = browser
        .script("return document.getElementById('birth_date').value;")
        .await;
    assert_eq!(kept, "31/02/1980");

    // A person with a booking still to come cannot be removed; a correction renames the booking.
    let (booked, code): (i64, String) = app
        .database()
        .query_row(
            "SELECT ready_permit_id, booking_code FROM appointments
             WHERE ready_permit_id IS NOT NULL AND status = 'booked' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    browser
        .goto(&format!("{}/admin/permits/{booked}", app.base))
        .await;
    assert!(browser.text("#entry-state").await.contains(&code));
    assert!(
        browser
            .text("#remove-blocked")
            .await
            .contains("prenotazione attiva")
    );
    let (_, page) = app
        .submit(
            &admin,
            &format!("/admin/permits/{booked}/remove"),
            &[("reason", "prova"), ("confirm", "1")],
        )
        .await;
    assert!(page.contains("prenotazione attiva"), "{page}");
    browser
        .script("document.getElementById('surname').value = 'Corretto';")
        .await;
    browser.click_and_wait_for_page("#save").await;
    assert_eq!(
        app.one::<String>(
            "SELECT surname FROM appointments WHERE booking_code = ?1",
            &code
        ),
        "Corretto"
    );

    // The wrong row: removed with a reason, after a confirmation.
    let wrong: i64 = app.one(
        "SELECT id FROM ready_permits WHERE surname = ?1",
        "Sbagliato",
    );
    browser
        .goto(&format!("{}/admin/permits/{wrong}", app.base))
        .await;
    browser
        .type_into("#reason", "riga duplicata dal sistema")
        .await;
    browser
        .script("document.getElementById('confirm-remove').checked = true;")
        .await;
    browser.click_and_wait_for_page("#remove").await;
    let removed: Option<String> =
        app.one("SELECT removed_at FROM ready_permits WHERE id = ?1", wrong);
    assert!(removed.is_some());
    let audited: String = app.one(
        "SELECT detail FROM audit_log WHERE action = 'ready.removed' AND subject = ?1",
        wrong.to_string(),
    );
    assert!(audited.contains("riga duplicata"), "{audited}");
    browser
        .goto(&format!("{}/admin/permits/list?q=sbagliato", app.base))
        .await;
    assert!(browser.text("#found").await.starts_with("0 voci trovate"));
    browser.quit().await;

    // The command line: search, correct, and a removal refused for a booked person.
    let listed = app.cli(&["ready-list", "search", "fernandez", "lopez"]);
    assert!(
        listed.starts_with(&format!("{fernandez}\tFernández López\tJosé")),
        "{listed}"
    );
    app.cli(&[
        "ready-list",
        "correct",
        &fernandez.to_string(),
        "--drawer",
        "B-12",
    ]);
    assert_eq!(
        app.one::<String>("SELECT drawer FROM ready_permits WHERE id = ?1", fernandez),
        "B-12"
    );
    // (The command line reads the real clock, so the demo's bookings are all past for it: the
    // refusal of a booked person is shown above, on the page.)
    let out = app.cli_output(&["ready-list", "remove", &fernandez.to_string()]);
    assert!(!out.status.success(), "a reason is required");
    app.cli(&[
        "ready-list",
        "remove",
        &fernandez.to_string(),
        "--reason",
        "prova dalla riga di comando",
    ]);
    let removed: Option<String> = app.one(
        "SELECT removed_at FROM ready_permits WHERE id = ?1",
        fernandez,
    );
    assert!(removed.is_some());
}
