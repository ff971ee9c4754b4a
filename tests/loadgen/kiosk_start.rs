//! `coper-loadgen kiosk-start`: a fresh kiosk's first full sync (enrolment to every document in
//! step), and its cold start (the process's work from opening the local store to the first
//! screen drawn, with the first free slot ready to propose), offline as after a power cut.
//! Goals (issue #16): first full sync ≤ 2 s, cold start ≤ 300 ms.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use coper_e2e::harness::Options;
use coper_kiosk::{
    AppWindow,
    core::{KioskConfig, KioskCore},
    ui::{self, Printer},
};
use slint::ComponentHandle;

use crate::{delivery, floors::ms, percentile, spawn_for_load, wait_until};

pub async fn kiosk_start(rounds: usize) {
    let app = spawn_for_load(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut syncs = Vec::with_capacity(rounds);
    let mut config = None;
    for i in 0..rounds {
        let code = app.cli(&["kiosk-code", "--partner", "1", "--label", "avvio"]);
        let kiosk = KioskConfig::new(dir.path().join(format!("kiosk-{i}")));
        let started = Instant::now();
        coper_kiosk::core::enrol(&kiosk, &app.ws_url(), code.trim())
            .await
            .expect("enrol");
        let core = KioskCore::start(kiosk.clone()).expect("start");
        wait_until(Duration::from_secs(30), "the first full sync", || {
            core.status().up_to_date
        })
        .await;
        syncs.push(started.elapsed());
        drop(core);
        config = Some(kiosk);
    }
    // Offline from here: the kiosk starts from what it saved, as after a power cut.
    drop(app);
    let config = config.expect("one kiosk");
    let printed = tempfile::tempdir().unwrap();
    let starts = tokio::task::block_in_place(|| {
        slint::platform::set_platform(Box::new(i_slint_backend_testing::TestingBackend::new(
            i_slint_backend_testing::TestingBackendOptions {
                mock_time: false,
                threading: false,
                renderer_name: Some("software".into()),
            },
        )))
        .expect("the platform, once");
        (0..rounds)
            .map(|_| {
                let started = Instant::now();
                let core = Arc::new(KioskCore::start(config.clone()).expect("start"));
                let window = AppWindow::new().unwrap();
                window
                    .window()
                    .set_size(slint::PhysicalSize::new(1024, 768));
                let _controller = ui::bind(
                    &window,
                    core.clone(),
                    Printer::Folder {
                        folder: printed.path().to_owned(),
                        delay: Duration::ZERO,
                    },
                );
                window.show().unwrap();
                // The first screen drawn, pixel by pixel, by the software renderer.
                let frame = window.window().take_snapshot().expect("a frame");
                assert!(frame.width() == 1024);
                assert!(core.first_free(&delivery()).is_ok());
                let elapsed = started.elapsed();
                window.hide().unwrap();
                elapsed
            })
            .collect::<Vec<_>>()
    });
    let summary = |mut v: Vec<Duration>| {
        v.sort();
        format!(
            "p50 {:.0} ms, max {:.0} ms",
            ms(percentile(&v, 0.5)),
            ms(*v.last().unwrap())
        )
    };
    println!(
        "a fresh kiosk's first full sync (enrolment to every document in step, {rounds} kiosks): {}",
        summary(syncs)
    );
    println!(
        "kiosk cold start, offline (store opened, replica read, first screen drawn, first free \
         slot ready; {rounds} starts): {}",
        summary(starts)
    );
}
