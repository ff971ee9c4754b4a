//! The printed reminder, read back as a person and a scanner would: `pdftotext` finds the name,
//! the time and the code; a real QR decoder (rqrr) reads the signed ticket back from the PDF
//! rendered to pixels and from the ESC/POS receipt's bitmap.

use std::process::Command;

use coper_kiosk::reminder::{self, Paper, Raster, escpos, raster_of_escpos, receipt_raster};

fn decode(width: usize, height: usize, dark: impl Fn(usize, usize) -> bool) -> Vec<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        if dark(x, y) { 0 } else { 255 }
    });
    image
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// A PDF rendered to grey pixels by poppler, as a scanner's camera would see the paper.
fn pixels(pdf: &[u8], dpi: u32) -> (usize, usize, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.pdf"), pdf).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-gray", "-r", &dpi.to_string(), "-singlefile"])
        .arg(dir.path().join("r.pdf"))
        .arg(dir.path().join("r"))
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(status.success());
    let pgm = std::fs::read(dir.path().join("r.pgm")).unwrap();
    // P5 <w> <h> <max>\n then one byte per pixel.
    let header: Vec<String> = String::from_utf8_lossy(&pgm[..40])
        .split_whitespace()
        .take(4)
        .map(str::to_owned)
        .collect();
    let (w, h): (usize, usize) = (header[1].parse().unwrap(), header[2].parse().unwrap());
    let data = pgm[pgm.len() - w * h..].to_vec();
    (w, h, data)
}

fn text_of(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.pdf"), pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(dir.path().join("r.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext is installed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_pdf_reminder_reads_back_in_italian_and_the_persons_language() {
    for (lang, phrase) in [
        ("it", "Promemoria dell'appuntamento"),
        ("ar", "تذكير بالموعد"),
        ("zh", "预约提醒单"),
        ("bn", "অ্যাপয়েন্টমেন্টের"),
    ] {
        let sample = reminder::sample(lang);
        let pdf = reminder::pdf(&sample, Paper::A5).unwrap();
        let text = text_of(&pdf);
        for expected in [
            "EL AMRANI Fatima Zahra",
            "09:40",
            "K7QM-4XTA",
            "Promemoria dell'appuntamento",
            "Comune di Pavia",
            phrase,
        ] {
            assert!(
                text.contains(expected),
                "{lang}: «{expected}» missing in:\n{text}"
            );
        }
        assert!(text.contains("PROVVISORIO"), "{lang}: provisional");
        let (w, h, grey) = pixels(&pdf, 150);
        let decoded = decode(w, h, |x, y| grey[y * w + x] < 128);
        assert_eq!(decoded, vec![sample.ticket.clone()], "{lang}: the QR code");
    }
}

#[test]
fn the_escpos_receipt_carries_the_ticket_in_its_bitmap() {
    let sample = reminder::sample("ur");
    let raster = receipt_raster(&sample).unwrap();
    assert_eq!(raster.width, 576, "72 mm at 203 dpi");
    let bytes = escpos(&raster);
    assert_eq!(
        &bytes[..2],
        &[0x1B, 0x40],
        "starts by initialising the printer"
    );
    assert_eq!(
        &bytes[bytes.len() - 4..],
        &[0x1D, 0x56, 0x42, 0x00],
        "ends with a cut"
    );
    let back: Raster = raster_of_escpos(&bytes).unwrap();
    assert_eq!(back, raster);
    let decoded = decode(back.width, back.height, |x, y| back.is_black(x, y));
    assert_eq!(decoded, vec![sample.ticket]);
}

#[test]
fn the_command_line_writes_a_sample_reminder_for_setting_printers_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.escpos");
    let png = dir.path().join("r.png");
    let status = Command::new(env!("CARGO_BIN_EXE_coper-kiosk"))
        .args([
            "reminder", "--sample", "--lang", "bn", "--format", "escpos", "--out",
        ])
        .arg(&out)
        .arg("--png")
        .arg(&png)
        .status()
        .unwrap();
    assert!(status.success());
    let raster = raster_of_escpos(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        decode(raster.width, raster.height, |x, y| raster.is_black(x, y)),
        vec![reminder::sample("bn").ticket]
    );
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let pdf = dir.path().join("r.pdf");
    let status = Command::new(env!("CARGO_BIN_EXE_coper-kiosk"))
        .args([
            "reminder", "--sample", "--lang", "zh", "--format", "pdf", "--paper", "a4", "--out",
        ])
        .arg(&pdf)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(text_of(&std::fs::read(&pdf).unwrap()).contains("预约提醒单"));
    let refused = Command::new(env!("CARGO_BIN_EXE_coper-kiosk"))
        .args(["reminder", "--sample", "--lang", "xx", "--out"])
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown language"));
}
