//! The printed reminder (promemoria): in Italian and the person's language, with the Questura,
//! the date and time, the service, the name, the booking code, the signed QR ticket, what to
//! bring (and, from the document pre-check, what is still missing, with a second QR code to the
//! person's page), the partner body, and "provisional" when it is.
//!
//! Two outputs: a PDF (A4 or A5) for an ordinary printer through CUPS (`lp`), and an 80 mm ESC/POS
//! receipt for thermal printers. Receipt printers' code pages cannot print Arabic, Bengali or
//! Chinese, so the receipt is the same layout set as a PDF 72 mm wide, rasterised at the printer's
//! 203 dpi by `pdftoppm` (poppler), and sent as one bitmap (`GS v 0`). Text is shaped by krilla
//! (rustybuzz), right to left where the script needs it; fonts are Noto (Latin, Greek and Cyrillic
//! bundled; Arabic, Bengali and Chinese from Debian's `fonts-noto-core` and `fonts-noto-cjk`).
//!
//! - `pdf`: the layout, set with krilla, and printing through CUPS.
//! - `receipt`: the same layout rasterised for an 80 mm ESC/POS printer.

mod pdf;
mod receipt;

use coper_shared::jiff::civil::{Date, Time};

pub use pdf::{pdf, print_pdf};
pub use receipt::{
    RECEIPT_DPI, Raster, escpos, print_escpos, raster_of_escpos, receipt_png, receipt_raster,
};

/// Everything a reminder shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub questura: String,
    pub questura_address: String,
    pub service: String,
    /// What to bring, as the Questura wrote it (Italian).
    pub what_to_bring: String,
    /// The same in the person's language, when the Questura gave it.
    pub what_to_bring_theirs: Option<String>,
    pub date: Date,
    pub time: Time,
    pub surname: String,
    pub given_names: String,
    pub booking_code: String,
    /// The signed ticket the QR code carries (`coper_shared::ticket`).
    pub ticket: String,
    pub partner: String,
    pub provisional: bool,
    /// The person's language (a code of [`crate::i18n::LANGUAGES`]).
    pub lang: String,
    /// The documents the Questura's pre-check says are still to bring, each in Italian and in
    /// the person's language ("Passaporto — Portare l'originale").
    pub still_to_bring: Vec<(String, String)>,
    /// The person's pre-check page, printed as a second QR code ("send your documents").
    pub precheck_link: Option<String>,
}

impl Reminder {
    /// The lines of a pre-check summary for the reminder: Italian, and `lang`.
    pub fn lines_of(
        summary: &coper_shared::precheck::PrecheckSummary,
        lang: &str,
    ) -> Vec<(String, String)> {
        summary
            .lines("it")
            .into_iter()
            .zip(summary.lines(lang))
            .collect()
    }
}

/// Paper for the PDF reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    A4,
    A5,
    /// 72 mm printable width of an 80 mm receipt roll.
    Receipt,
}

impl Paper {
    /// Width and height in points.
    fn size(self) -> (f32, f32) {
        match self {
            Self::A4 => (595.0, 842.0),
            Self::A5 => (420.0, 595.0),
            Self::Receipt => (204.0, 720.0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error("font {0} is missing: install the Noto fonts (scripts/install-deps)")]
    MissingFont(String),
    #[error("the PDF cannot be written: {0}")]
    Pdf(String),
    #[error("cannot rasterise the receipt with pdftoppm (poppler-utils): {0}")]
    Raster(String),
}

/// A synthetic reminder, for `coper-kiosk reminder --sample` and the tests.
pub fn sample(lang: &str) -> Reminder {
    let date = Date::constant(2026, 11, 24);
    let time = Time::constant(9, 40, 0, 0);
    let ticket = coper_shared::ticket::Ticket {
        issuer: coper_shared::ticket::Issuer::Kiosk(uuid::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0001,
        )),
        booking: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002),
        service: coper_shared::ids::ServiceId::parse("consegna-pse").expect("a valid id"),
        date,
        time,
    }
    .sign(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    Reminder {
        questura: "Questura di Pavia (dimostrazione)".into(),
        questura_address: "Piazza dell'Esempio 1, 27100 Pavia".into(),
        service: "Consegna permesso elettronico".into(),
        what_to_bring: "Promemoria della prenotazione; passaporto o documento di identità; ricevuta della richiesta (assicurata); il vecchio permesso di soggiorno, se ne avete uno.".into(),
        what_to_bring_theirs: None,
        date,
        time,
        surname: "El Amrani".into(),
        given_names: "Fatima Zahra".into(),
        booking_code: "K7QM-4XTA".into(),
        ticket,
        partner: "Comune di Pavia – Sportello Stranieri".into(),
        provisional: true,
        lang: lang.into(),
        still_to_bring: Vec::new(),
        precheck_link: None,
    }
}
