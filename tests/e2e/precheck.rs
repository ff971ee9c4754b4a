//! Issue #14, the document pre-check (the Ancona seed), over the real binary: staff open a
//! conversation for an application and ask for two documents; the person's page in Arabic (right
//! to left) shows the checklist in Arabic; the person sends a photo carrying GPS data (kept
//! without it) and a PDF, and answers; staff see it in their inbox, mark one document valid and
//! one "bring the original", and write; the person reads the phrase in Arabic and the free text
//! marked Italian; the counter's check-in shows what is missing. Refused files leave nothing.

use coper_server::demo::DEMO_PASSWORD;

use crate::helpers::TestApp;

const MONDAY_NINE_ROME: &str = "2026-11-23T08:00:00Z";

/// A small JPEG with an EXIF segment naming a GPS position, as a phone writes it.
pub(crate) fn photo_with_gps() -> Vec<u8> {
    let picture = image::RgbImage::from_pixel(64, 48, image::Rgb([20, 90, 200]));
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut bytes)
        .encode_image(&picture)
        .unwrap();
    let exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x25\x88\x04\0\x01\0\0\0\x1a\0\0\0GPS 45.18N 9.15E";
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(exif);
    bytes.splice(2..2, segment);
    bytes
}

/// The demo on Monday 23 November 2026 at 9 in Rome, whose links start with
/// `https://prenota.example.invalid` (`[notices] public_url`); and the configuration's folder.
pub(crate) async fn spawn_with_public_url() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("coper.toml");
    std::fs::write(
        &config,
        "[notices]\npublic_url = \"https://prenota.example.invalid\"\n",
    )
    .unwrap();
    let app = crate::helpers::spawn(crate::helpers::Options {
        demo: true,
        fixed_now: Some(MONDAY_NINE_ROME),
        args: vec!["--config".into(), config.to_str().unwrap().into()],
        ..crate::helpers::Options::default()
    })
    .await;
    (app, dir)
}

fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(app.data_dir.join("precheck"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

async fn send_file(
    app: &TestApp,
    token: &str,
    document: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, String) {
    let form = reqwest::multipart::Form::new()
        .text("lang", "ar")
        .text("document", document.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    let response = app
        .page_client()
        .post(app.url(&format!("/documents/{token}/upload")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_and_person_settle_the_documents_and_the_counter_sees_what_is_missing() {
    let (app, _config) = spawn_with_public_url().await;
    // A demo person with a booking and a pratica number.
    let (pratica, appointment): (String, String) = app
        .database()
        .query_row(
            "SELECT r.pratica_number, a.id FROM ready_permits r
             JOIN appointments a ON a.ready_permit_id = r.id AND a.status = 'booked'
             WHERE r.pratica_number IS NOT NULL ORDER BY a.slot_date, a.slot_time LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let staff = app.log_in("documenti", DEMO_PASSWORD).await.unwrap();
    let (status, page) = app
        .submit(
            &staff,
            "/precheck/files",
            &[("lang", "ar"), ("documents", "passport")],
        )
        .await;
    assert_eq!(status, 400, "nobody named");
    assert!(page.contains("numero di pratica"), "{page}");
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files",
            &[
                ("pratica", &pratica),
                ("lang", "ar"),
                ("documents", "passport"),
                ("documents", "housing"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (file, token, linked): (i64, String, Option<String>) = app
        .database()
        .query_row(
            "SELECT id, token, appointment_id FROM precheck_files",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        linked.as_deref(),
        Some(appointment.as_str()),
        "linked to the booking"
    );
    // The person, who consented to messages at booking, is sent the link once.
    let link = format!("https://prenota.example.invalid/documents/{token}");
    let body: String = app.one(
        "SELECT body FROM notices WHERE kind = 'precheck' AND appointment_id = ?1 LIMIT 1",
        &appointment,
    );
    assert_eq!(body.matches(&link).count(), 1, "{body}");

    // The person's page, in Arabic, right to left.
    let page = app.text(&format!("/documents/{token}")).await;
    assert!(page.contains(r#"lang="ar" dir="rtl""#), "{page}");
    assert!(page.contains("جواز السفر") && page.contains("شهادة صلاحية السكن"));
    let (status, _) = send_file(&app, &token, "passport", "foto.jpg", photo_with_gps()).await;
    assert_eq!(status, 303);
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
    let (status, _) = send_file(&app, &token, "housing", "casa.pdf", pdf.clone()).await;
    assert_eq!(status, 303);
    let kept = stored_files(&app);
    assert_eq!(kept.len(), 2);
    for path in &kept {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif"),
            "{path:?} keeps EXIF"
        );
        assert!(
            !bytes.windows(3).any(|w| w == b"GPS"),
            "{path:?} keeps the GPS"
        );
    }
    assert!(
        kept.iter().any(|p| std::fs::read(p).unwrap() == pdf),
        "the PDF as sent"
    );
    let answer = app
        .page_client()
        .post(app.url(&format!("/documents/{token}/message")))
        .form(&[("lang", "ar"), ("body", "أرسلت الوثيقتين")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);

    // Refused, and nothing more on disk: an executable named as a photo, 50 MB, a bomb.
    let (status, page) = send_file(
        &app,
        &token,
        "passport",
        "foto.jpg",
        b"\x7fELF\x02\x01".repeat(100),
    )
    .await;
    assert_eq!(status, 415);
    assert!(page.contains("هذا الملف ليس صورة"), "in Arabic: {page}");
    let (status, _) = send_file(&app, &token, "passport", "big.jpg", vec![0xFF; 50 << 20]).await;
    assert_eq!(status, 413);
    let (status, _) = send_file(
        &app,
        &token,
        "passport",
        "bomb.png",
        coper_server::precheck::png_claiming(100_000, 100_000),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(stored_files(&app).len(), 2);
    assert_eq!(app.scalar("SELECT count(*) FROM precheck_uploads"), 2);

    // The staff's inbox: waiting for the Questura.
    let (_, inbox) = app.fetch(&staff, "/precheck?show=us").await;
    assert!(
        String::from_utf8(inbox)
            .unwrap()
            .contains(&format!("/precheck/files/{file}"))
    );
    let (_, page) = app.fetch(&staff, &format!("/precheck/files/{file}")).await;
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("أرسلت الوثيقتين") && page.contains("/precheck/uploads/"));
    assert!(
        page.contains("Documento inviato: Passaporto") && page.contains("PDF · Certificato"),
        "each file named by its document: {page}"
    );
    assert!(
        page.contains(r#"<p id="booking">Appuntamento: <strong>"#),
        "{page}"
    );
    let upload: i64 = app.one("SELECT id FROM precheck_uploads WHERE kind = ?1", "image");
    let (status, picture) = app
        .fetch(&staff, &format!("/precheck/uploads/{upload}"))
        .await;
    assert_eq!(status, 200);
    assert!(image::load_from_memory(&picture).is_ok());
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'precheck.upload_viewed'"),
        1
    );
    let path = |action: &str| format!("/precheck/files/{file}/{action}");
    for (document, state) in [("passport", "valid"), ("housing", "original")] {
        let (status, _) = app
            .submit(
                &staff,
                &path("mark"),
                &[("document", document), ("state", state)],
            )
            .await;
        assert_eq!(status, 303);
    }
    let (status, page) = app
        .submit(
            &staff,
            &path("mark"),
            &[("document", "housing"), ("state", "invalid")],
        )
        .await;
    assert_eq!(status, 400, "not valid needs a reason");
    assert!(page.contains("serve un motivo"));
    let (status, _) = app
        .submit(
            &staff,
            &path("say"),
            &[
                ("phrase", "bring_original"),
                ("document", "housing"),
                ("text", "Grazie, a presto."),
            ],
        )
        .await;
    assert_eq!(status, 303);

    // The person reads the phrase in Arabic, the free text marked Italian.
    let page = app.text(&format!("/documents/{token}")).await;
    assert!(page.contains("أحضر أصل هذه الوثيقة إلى موعدك"), "{page}");
    assert!(page.contains("مكتوبة بالإيطالية") && page.contains("Grazie, a presto."));
    assert!(page.contains(r#"data-state="valid""#) && page.contains(r#"data-state="original""#));

    // The counter sees what is still to bring.
    let clerk = app.log_in("sportello", DEMO_PASSWORD).await.unwrap();
    let (_, page) = app
        .fetch(&clerk, &format!("/counter/appointments/{appointment}"))
        .await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("manca: Certificato di idoneità alloggiativa — Portare l&#39;originale")
            || page.contains("manca: Certificato di idoneità alloggiativa — Portare l'originale"),
        "{page}"
    );

    // A new link withdraws the old one; a made-up link shows nothing.
    let (status, _) = app.submit(&staff, &path("link"), &[]).await;
    assert_eq!(status, 303);
    let old = app
        .page_client()
        .get(app.url(&format!("/documents/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    assert!(!old.text().await.unwrap().contains("جواز"));
    let made_up = app
        .page_client()
        .get(app.url(&format!("/documents/{}", "ab".repeat(16))))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 404);
}

/// The files a person sent are deleted `precheck_keep_days` (30) after their conversation is
/// closed (or their booking ended), with their rows; an open conversation keeps its files; no
/// row ever names a missing file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_deleted_after_their_time_and_no_row_outlives_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let at = |now: &'static str| crate::helpers::Options {
        demo: true,
        fixed_now: Some(now),
        ..crate::helpers::Options::default()
    };
    let mut app = crate::helpers::spawn_in(&data, at(MONDAY_NINE_ROME), None).await;
    let staff = app.log_in("documenti", DEMO_PASSWORD).await.unwrap();
    let mut tokens = Vec::new();
    for surname in ["Closed", "Open"] {
        let (status, _) = app
            .submit(
                &staff,
                "/precheck/files",
                &[
                    ("surname", surname),
                    ("birth_date", "1990-01-01"),
                    ("lang", "en"),
                    ("documents", "passport"),
                ],
            )
            .await;
        assert_eq!(status, 303);
        let token: String = app.one(
            "SELECT token FROM precheck_files WHERE surname = ?1",
            surname,
        );
        let (status, _) = send_file(&app, &token, "passport", "p.jpg", photo_with_gps()).await;
        assert_eq!(status, 303);
        tokens.push(token);
    }
    assert_eq!(stored_files(&app).len(), 2);
    let closed: i64 = app.one("SELECT id FROM precheck_files WHERE surname = ?1", "Closed");
    let (status, _) = app
        .submit(
            &staff,
            &format!("/precheck/files/{closed}/state"),
            &[("state", "closed")],
        )
        .await;
    assert_eq!(status, 303);
    app.signal_and_wait("TERM");

    // 29 days on: still kept.
    let mut app = crate::helpers::spawn_in(&data, at("2026-12-22T08:00:00Z"), None).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(stored_files(&app).len(), 2);
    app.signal_and_wait("TERM");

    // 31 days on: the closed conversation's file is gone, with its row; the open one's stays.
    let app = crate::helpers::spawn_in(&data, at("2026-12-24T08:00:00Z"), None).await;
    crate::helpers::eventually(10, "the expired file deleted", || {
        stored_files(&app).len() == 1
    })
    .await;
    assert_eq!(app.scalar("SELECT count(*) FROM precheck_uploads"), 1);
    let kept: String = app.one(
        "SELECT u.stored_as FROM precheck_uploads u JOIN precheck_files f ON f.id = u.file_id
         WHERE f.surname = ?1",
        "Open",
    );
    assert!(app.data_dir.join("precheck").join(&kept).exists());
    let gone = app
        .page_client()
        .get(app.url(&format!("/documents/{}", tokens[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        404,
        "a closed conversation's link shows nothing"
    );
}

/// The administration keeps the pre-check: a document of its own (named in Italian and English:
/// the Arabic reader gets Italian), a checklist per service and kind of permit that staff open a
/// conversation from, an answer on times and procedures on the public site and sent by staff as
/// a reply; the person is told of the staff's news by message, at most once in a while; the
/// inbox narrows to a booking day; a document retired while a conversation asks for it stays in
/// that conversation and is no longer offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administration_keeps_checklists_and_answers_and_a_retired_document_stays_where_used() {
    let (app, _config) = spawn_with_public_url().await;
    let admin = app.log_in("admin", DEMO_PASSWORD).await.unwrap();
    let service: String = app.one("SELECT id FROM services WHERE ?1 ORDER BY rowid LIMIT 1", 1);

    // A document of the administration's own: Italian required.
    let (status, page) = app
        .submit(
            &admin,
            "/admin/precheck/documents",
            &[("name_en", "Work clearance")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("italiano è obbligatorio"), "{page}");
    let (status, _) = app
        .submit(
            &admin,
            "/admin/precheck/documents",
            &[
                ("name_it", "Nulla osta al lavoro"),
                ("name_en", "Work clearance"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    // A checklist for a kind of permit: its name once per service, known documents only.
    let checklist = [
        ("service", service.as_str()),
        ("name", "Lavoro subordinato"),
        ("documents", "passport"),
        ("documents", "x1"),
    ];
    assert_eq!(
        app.submit(&admin, "/admin/precheck/checklists", &checklist)
            .await
            .0,
        303
    );
    let (status, page) = app
        .submit(&admin, "/admin/precheck/checklists", &checklist)
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("esiste già"), "{page}");
    let (status, page) = app
        .submit(
            &admin,
            "/admin/precheck/checklists",
            &[
                ("service", &service),
                ("name", "Studio"),
                ("documents", "x99"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("documento sconosciuto o ritirato: x99"),
        "{page}"
    );
    // An answer for every service, in Italian and English.
    let (status, _) = app
        .submit(
            &admin,
            "/admin/precheck/answers",
            &[
                ("service", ""),
                ("question_it", "Si può delegare il ritiro?"),
                (
                    "answer_it",
                    "No: il permesso si consegna solo alla persona.",
                ),
                ("question_en", "Can someone else collect it?"),
                ("answer_en", "No: the permit is handed only to the person."),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let english = app.text("/?lang=en").await;
    assert!(
        english.contains("Can someone else collect it?"),
        "{english}"
    );
    let french = app.text("/?lang=fr").await;
    assert!(
        french.contains(r#"lang="it""#) && french.contains("Si può delegare il ritiro?"),
        "French readers get the Italian, marked"
    );

    // Staff open a conversation from the checklist (plus one document ticked) for a booked
    // person who consented to messages.
    let (pratica, appointment, day): (String, String, String) = app
        .database()
        .query_row(
            "SELECT r.pratica_number, a.id, a.slot_date FROM ready_permits r
             JOIN appointments a ON a.ready_permit_id = r.id AND a.status = 'booked'
             WHERE r.pratica_number IS NOT NULL AND a.consent_at IS NOT NULL
             ORDER BY a.slot_date, a.slot_time LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let staff = app.log_in("documenti", DEMO_PASSWORD).await.unwrap();
    let (_, inbox) = app.fetch(&staff, "/precheck").await;
    let inbox = String::from_utf8(inbox).unwrap();
    assert!(
        inbox.contains("Lavoro subordinato (2 documenti)"),
        "{inbox}"
    );
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files",
            &[
                ("pratica", &pratica),
                ("lang", "ar"),
                ("kind", "1"),
                ("documents", "housing"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let asked: String = app.one(
        "SELECT group_concat(document, ' ') FROM (SELECT document FROM precheck_items
         WHERE file_id = ?1 ORDER BY rowid)",
        1,
    );
    assert_eq!(asked, "passport x1 housing");
    let token: String = app.one("SELECT token FROM precheck_files WHERE id = ?1", 1);
    let page = app.text(&format!("/documents/{token}?lang=en")).await;
    assert!(page.contains("Work clearance"), "{page}");
    let page = app.text(&format!("/documents/{token}")).await;
    assert!(
        page.contains("Nulla osta al lavoro"),
        "no Arabic name: Italian"
    );

    // The answer as a reply: each reads it in their language.
    let (status, file_page) = app.fetch(&staff, "/precheck/files/1").await;
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(file_page)
            .unwrap()
            .contains("Risposta: Si può delegare il ritiro?")
    );
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files/1/say",
            &[("phrase", "answer:1"), ("text", "")],
        )
        .await;
    assert_eq!(status, 303);
    let page = app.text(&format!("/documents/{token}?lang=en")).await;
    assert!(
        page.contains("No: the permit is handed only to the person."),
        "{page}"
    );

    // Told by message: the link when the file opened; news in the next 30 minutes (the reply
    // above) waits for them to pass, and one message waiting covers every later news.
    let told = |kind: &str| -> i64 {
        app.database()
            .query_row(
                "SELECT count(*) FROM notices WHERE kind = ?1 AND appointment_id = ?2",
                [kind, &appointment],
                |r| r.get(0),
            )
            .unwrap()
    };
    let channels = told("precheck");
    assert!(channels >= 1, "the link was sent");
    assert_eq!(
        told("precheck_update"),
        channels,
        "the reply's news, one per channel"
    );
    let (due, body): (String, String) = app
        .database()
        .query_row(
            "SELECT due_at, body FROM notices WHERE kind = 'precheck_update'
             AND appointment_id = ?1 LIMIT 1",
            [&appointment],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(due, "2026-11-23T08:30:00Z", "30 minutes after the link");
    assert!(body.contains(&format!("/documents/{token}")), "{body}");
    let mark = |document: &'static str, state: &'static str| {
        let form = [("document", document), ("state", state)];
        let (app, staff) = (&app, &staff);
        async move { app.submit(staff, "/precheck/files/1/mark", &form).await }
    };
    assert_eq!(mark("passport", "valid").await.0, 303);
    assert_eq!(mark("housing", "original").await.0, 303);
    assert_eq!(
        told("precheck_update"),
        channels,
        "still one message for all the news"
    );

    // The inbox narrowed to the booking's day, and to another.
    let (_, listed) = app
        .fetch(&staff, &format!("/precheck?show=person&date={day}"))
        .await;
    assert!(
        String::from_utf8(listed)
            .unwrap()
            .contains("/precheck/files/1")
    );
    let (_, listed) = app
        .fetch(&staff, "/precheck?show=person&date=2027-01-04")
        .await;
    assert!(String::from_utf8(listed).unwrap().contains("no-files"));

    // Retired while the conversation asks for it: kept there, with its state; no longer offered.
    let (status, _) = app
        .submit(&admin, "/admin/precheck/documents/x1/retire", &[])
        .await;
    assert_eq!(status, 303);
    let (_, page) = app
        .fetch(&admin, "/admin/precheck?done=retired&in_use=1")
        .await;
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains("resta nelle 1 conversazioni aperte")
    );
    let (_, page) = app.fetch(&staff, "/precheck/files/1").await;
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains(r#"data-document="x1""#) && page.contains("Nulla osta al lavoro"));
    assert!(!page.contains(r#"id="ask-x1""#), "not offered any more");
    let (status, page) = app
        .submit(&staff, "/precheck/files/1/ask", &[("documents", "x1")])
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("ritirato"), "{page}");
    assert_eq!(
        mark("x1", "valid").await.0,
        303,
        "still marked where it is asked"
    );
    let page = app.text(&format!("/documents/{token}?lang=en")).await;
    assert!(page.contains("Work clearance"), "the person still reads it");

    // A link reaches its own conversation only: another person's names, documents and messages
    // never show on it, and what is sent through it lands in it alone.
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files",
            &[
                ("surname", "Altrapersona"),
                ("birth_date", "1990-01-01"),
                ("documents", "tax_code"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _) = app
        .submit(
            &staff,
            "/precheck/files/2/say",
            &[("text", "Messaggio riservato")],
        )
        .await;
    assert_eq!(status, 303);
    let page = app.text(&format!("/documents/{token}?lang=it")).await;
    assert!(
        !page.contains("Altrapersona")
            && !page.contains("Messaggio riservato")
            && !page.contains("Codice fiscale"),
        "{page}"
    );
    let sent = app
        .page_client()
        .post(app.url(&format!("/documents/{token}/message")))
        .form(&[("lang", "it"), ("body", "solo per la mia pratica")])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    let landed: i64 = app.one(
        "SELECT file_id FROM precheck_messages WHERE body = ?1",
        "solo per la mia pratica",
    );
    assert_eq!(landed, 1);

    // That other person was not on the ready list when staff opened their conversation: the
    // import that brings them links it (kiosks and the counter then see their pre-check).
    let unlinked: Option<i64> = app.one(
        "SELECT ready_permit_id FROM precheck_files WHERE id = ?1",
        2,
    );
    assert_eq!(unlinked, None);
    let csv = "Cognome;Nome;Data di nascita;Data impronte\n\
               ALTRAPERSONA;Anna;01/01/1990;03/10/2026\n";
    let (status, _) = app
        .submit(&admin, "/admin/permits/import", &[("csv", csv)])
        .await;
    assert_eq!(status, 200);
    let linked: Option<i64> = app.one(
        "SELECT ready_permit_id FROM precheck_files WHERE id = ?1",
        2,
    );
    let permit: i64 = app.one(
        "SELECT id FROM ready_permits WHERE surname = ?1",
        "ALTRAPERSONA",
    );
    assert_eq!(linked, Some(permit));
}
