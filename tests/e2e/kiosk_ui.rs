//! The kiosk's screens driven through Slint's testing backend (no display, software renderer),
//! against a real server: an operator books for a person found in the ready list and the
//! reminder comes out of the printer; a foreigner checks a permit in Arabic. Elements are found by
//! their accessible labels, in the language on screen, and pressed as a finger would. With
//! `COPER_SCREENSHOTS=1` every screen is also written to `docs/screenshots/` in Italian, Arabic
//! and Chinese.

use std::{path::Path, rc::Rc};

use coper_kiosk::{
    AppWindow,
    i18n::tr,
    reminder::raster_of_escpos,
    ui::{self, Controller, Printer},
};
use coper_server::demo::DEMO_PASSWORD;
use i_slint_backend_testing::ElementHandle;
use slint::{ComponentHandle, Model};

use crate::helpers::{TestApp, TestKiosk, eventually, spawn_demo_at};

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// Press the control labelled `label` (exactly one must be on screen).
fn press(window: &AppWindow, label: &str) {
    let found: Vec<ElementHandle> =
        ElementHandle::find_by_accessible_label(window, label).collect();
    if found.is_empty() {
        let all: Vec<String> = i_slint_backend_testing::ElementQuery::from_root(window)
            .find_all()
            .into_iter()
            .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
            .collect();
        panic!(
            "nothing labelled «{label}» on screen «{}»; labels: {all:?}",
            window.get_screen()
        );
    }
    found[0].invoke_accessible_default_action();
}

/// The accessible value of the element labelled `label`.
fn value(window: &AppWindow, label: &str) -> String {
    ElementHandle::find_by_accessible_label(window, label)
        .next()
        .and_then(|e| e.accessible_value())
        .unwrap_or_else(|| panic!("nothing labelled «{label}»"))
        .to_string()
}

/// Type `text` on the on-screen keyboard, key by key.
fn type_keys(window: &AppWindow, lang: &str, text: &str) {
    for c in text.chars() {
        let label = if c == ' ' {
            tr(lang, "Space")
        } else {
            c.to_string()
        };
        press(window, &label);
    }
}

async fn operator(app: &TestApp) {
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .submit(
            &admin,
            "/admin/partners/1/operators",
            &[
                ("username", "op1"),
                ("display_name", "Operatrice Uno"),
                ("password", "sportello stranieri 1"),
            ],
        )
        .await;
    assert!(page.contains("Operatore creato"));
}

fn a_ready_person(app: &TestApp) -> (String, String, String, String) {
    app.database()
        .query_row(
            "SELECT surname, given_names, birth_date, fingerprint_date FROM ready_permits
             WHERE length(birth_date) = 10 AND given_names <> '' AND surname NOT LIKE '%''%'
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

/// `YYYY-MM-DD` as typed on the kiosk: `DD/MM/YYYY`.
fn typed(date: &str) -> String {
    format!("{}/{}/{}", &date[8..10], &date[5..7], &date[..4])
}

fn snapshot(window: &AppWindow, name: &str) {
    let shot = window
        .window()
        .take_snapshot()
        .expect("the software renderer draws");
    let (w, h) = (shot.width(), shot.height());
    let pixels = shot.as_bytes();
    assert!(
        pixels.chunks(4).any(|p| p[0] < 100),
        "{name}: nothing drawn"
    );
    if std::env::var_os("COPER_SCREENSHOTS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::File::create(dir.join(format!("{name}.png"))).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(pixels)
            .unwrap();
    }
}

fn start_ui(core: coper_kiosk::core::KioskCore, printer: Printer) -> (AppWindow, Controller) {
    // The testing backend, per test thread, with the software renderer so screens can be
    // snapshotted to pixels.
    slint::platform::set_platform(Box::new(i_slint_backend_testing::TestingBackend::new(
        i_slint_backend_testing::TestingBackendOptions {
            mock_time: true,
            threading: false,
            renderer_name: Some("software".into()),
        },
    )))
    .expect("a fresh test thread");
    let window = AppWindow::new().unwrap();
    window
        .window()
        .set_size(slint::PhysicalSize::new(1024, 768));
    let controller = ui::bind(&window, Rc::new(core), printer);
    window.show().unwrap();
    (window, controller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_books_on_the_touchscreen_and_the_reminder_prints() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    operator(&app).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    eventually(15, "the operators' accounts", || {
        kiosk.core.partner().is_some()
    })
    .await;
    let (core, _config, _dir) = kiosk.into_parts();
    let printed = tempfile::tempdir().unwrap();
    let (window, controller) = start_ui(core, Printer::Folder(printed.path().to_owned()));
    let it = |english: &str| tr("it", english);

    assert_eq!(window.get_screen(), "start");
    press(&window, &it("Partner office"));
    assert_eq!(window.get_screen(), "login");
    // The username field has the focus: typed on the on-screen keyboard.
    type_keys(&window, "it", "op1");
    press(&window, &it("Password"));
    type_keys(&window, "it", "sportello stranieri 1");
    press(&window, &it("Log in"));
    assert_eq!(window.get_screen(), "menu", "{}", window.get_message());
    assert_eq!(window.get_operator_name(), "Operatrice Uno");

    // Find the person in the ready list.
    press(&window, &it("New booking"));
    let (surname, given, born, _) = a_ready_person(&app);
    press(&window, &it("Surname"));
    type_keys(&window, "it", &surname.to_uppercase());
    press(&window, &it("Given names"));
    type_keys(&window, "it", &given.to_uppercase());
    press(&window, &it("Date of birth"));
    type_keys(&window, "it", &typed(&born));
    press(&window, &it("Search"));
    assert_eq!(
        value(&window, "message"),
        it("Permit ready: it can be booked")
    );

    // The first free day, then another day, then confirm.
    press(&window, "Consegna permesso elettronico");
    assert_eq!(window.get_screen(), "proposal");
    let first = value(&window, "proposal");
    assert!(first.contains("/2026 "), "{first}");
    press(&window, &it("Another day"));
    assert!(window.get_show_options());
    let options: Vec<String> = (0..window.get_options().row_count())
        .map(|i| {
            slint::Model::row_data(&window.get_options(), i)
                .unwrap()
                .name
                .to_string()
        })
        .collect();
    assert!(options.len() >= 5, "up to ten other days: {options:?}");
    assert!(options.iter().all(|o| o != &first));
    press(&window, &options[0]);
    assert_eq!(value(&window, "proposal"), options[0]);
    press(&window, &it("Confirm"));
    assert_eq!(window.get_screen(), "confirm");
    press(&window, &it("Confirm the booking"));
    assert_eq!(window.get_screen(), "done", "{}", window.get_message());
    let code = value(&window, "booking code");

    // The reminder went to the printer (here a folder): its QR code reads back as a ticket the
    // counter accepts.
    let escpos = std::fs::read(printed.path().join(format!("{code}.escpos"))).expect("printed");
    let raster = raster_of_escpos(&escpos).unwrap();
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(raster.width, raster.height, |x, y| {
            if raster.is_black(x, y) { 0 } else { 255 }
        });
    let grids = image.detect_grids();
    let (_, ticket) = grids[0].decode().unwrap();
    assert!(ticket.starts_with("CP1"));
    assert!(printed.path().join(format!("{code}.pdf")).exists());

    // Confirmed by the server: the status shown follows, and the bookings list has it.
    eventually(15, "the server's confirmation", || {
        controller.refresh();
        value(&window, "booking status") == it("Confirmed")
    })
    .await;
    press(&window, &it("Done"));
    press(&window, &it("Today's bookings"));
    let name = format!("{} {}", surname.to_uppercase(), given.to_uppercase());
    assert_eq!(value(&window, &name), it("Confirmed"));
    let clerk = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (status, page) = app
        .submit(&clerk, "/counter/scan", &[("scan", &ticket)])
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&surname.to_uppercase()),
        "the counter knows the ticket"
    );

    // The Questura closes that day: the kiosk shows the booking moved, raises the alert, and a
    // reprint carries the new time.
    let date: String = app
        .database()
        .query_row(
            "SELECT slot_date FROM appointments WHERE booking_code = ?1",
            [&code],
            |r| r.get(0),
        )
        .unwrap();
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let (status, _) = app
        .submit(
            &admin,
            "/admin/close-day",
            &[
                ("date", &date),
                ("service", "consegna-pse"),
                ("note", "sciopero"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let moved_prefix = it("Moved to {}").replace("{}", "");
    eventually(15, "the kiosk to show the booking moved", || {
        controller.refresh();
        value(&window, &name).starts_with(&moved_prefix)
    })
    .await;
    assert!(
        window.get_alert(),
        "an alert for a printed booking the Questura changed"
    );
    let new_time: String = app
        .database()
        .query_row(
            "SELECT slot_date FROM appointments WHERE booking_code = ?1",
            [&code],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(new_time, date);
    press(&window, &it("Back"));
    assert_eq!(window.get_screen(), "menu");

    // Nobody touches the kiosk: the operator is logged out.
    controller.pretend_idle(ui::OPERATOR_IDLE + std::time::Duration::from_secs(1));
    controller.refresh();
    assert_eq!(window.get_screen(), "start");
    press(&window, &it("Partner office"));
    assert_eq!(window.get_screen(), "login", "logged out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_offline_still_books_and_prints_and_the_server_confirms_later() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    operator(&app).await;
    let proxy = crate::helpers::Proxy::start(app.addr()).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &proxy.url(), MONDAY_NINE_ROME).await;
    eventually(15, "the operators' accounts", || {
        kiosk.core.partner().is_some()
    })
    .await;
    let (core, _config, _dir) = kiosk.into_parts();
    let printed = tempfile::tempdir().unwrap();
    let (window, controller) = start_ui(core, Printer::Folder(printed.path().to_owned()));
    let it = |english: &str| tr("it", english);

    proxy.cut();
    eventually(15, "the kiosk to notice it is offline", || {
        controller.refresh();
        !window.get_online()
    })
    .await;
    press(&window, &it("Partner office"));
    window.set_username("op1".into());
    window.set_password("sportello stranieri 1".into());
    press(&window, &it("Log in"));
    assert_eq!(
        window.get_screen(),
        "menu",
        "offline login: {}",
        window.get_message()
    );
    press(&window, &it("New booking"));
    let (surname, given, born, _) = a_ready_person(&app);
    window.set_surname(surname.clone().into());
    window.set_given_names(given.into());
    window.set_birth_date(typed(&born).into());
    press(&window, &it("Search"));
    press(&window, "Consegna permesso elettronico");
    press(&window, &it("Confirm"));
    press(&window, &it("Confirm the booking"));
    assert_eq!(window.get_screen(), "done");
    let code = value(&window, "booking code");
    assert!(
        printed.path().join(format!("{code}.pdf")).exists(),
        "printed offline"
    );
    assert_eq!(window.get_pending(), 1, "one request waits for the network");

    proxy.restore();
    eventually(20, "the server's verdict once back online", || {
        controller.refresh();
        window.get_pending() == 0 && value(&window, "booking status") == it("Confirmed")
    })
    .await;
    let stored: i64 = app
        .database()
        .query_row(
            "SELECT count(*) FROM appointments WHERE booking_code = ?1",
            [&code],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreigner_checks_a_permit_in_arabic_and_every_screen_renders() {
    let app = spawn_demo_at(MONDAY_NINE_ROME).await;
    operator(&app).await;
    let kiosk = TestKiosk::enrol_at(&app, 1, &app.ws_url(), MONDAY_NINE_ROME).await;
    eventually(15, "the ready list", || kiosk.core.partner().is_some()).await;
    let (surname, given, born, fingerprinted) = a_ready_person(&app);
    let (core, _config, _dir) = kiosk.into_parts();
    let printed = tempfile::tempdir().unwrap();
    let (window, controller) = start_ui(core, Printer::Folder(printed.path().to_owned()));

    press(&window, "العربية");
    assert!(window.get_rtl(), "Arabic reads right to left");
    let ar = |english: &str| tr("ar", english);
    press(&window, &ar("Is my permit ready?"));
    assert_eq!(window.get_screen(), "check");
    window.set_surname(surname.clone().into());
    window.set_given_names(given.clone().into());
    window.set_birth_date(typed(&born).into());
    window.set_fingerprint_date(typed(&fingerprinted).into());
    press(&window, &ar("Check"));
    assert_eq!(
        value(&window, "check result"),
        ar("Your permit is ready. Book the collection here, with this office's operator.")
    );
    window.set_fingerprint_date("01/01/2020".into());
    press(&window, &ar("Check"));
    assert_eq!(
        value(&window, "check result"),
        ar("Your permit is not ready yet. Try again in a few days.")
    );

    // Every screen, in Italian, Arabic and Chinese, rendered to pixels.
    for lang in ["it", "ar", "zh"] {
        controller.refresh();
        window.set_screen("start".into());
        press(&window, coper_kiosk::i18n::language(lang).unwrap().own_name);
        for screen in [
            "start", "login", "menu", "find", "proposal", "confirm", "done", "bookings", "check",
        ] {
            window.set_screen(screen.into());
            match screen {
                "login" => window.set_active_field("username".into()),
                "find" | "check" => {
                    window.set_surname("EL AMRANI".into());
                    window.set_active_field("birth-date".into());
                }
                "proposal" | "confirm" | "done" => {
                    window.set_active_field("".into());
                    window.set_proposal("24/11/2026 09:40".into());
                    window.set_booking_code("K7QM-4XTA".into());
                }
                _ => window.set_active_field("".into()),
            }
            snapshot(&window, &format!("{screen}-{lang}"));
        }
    }
}
