//! The printed reminder (promemoria): in Italian and the person's language, with the Questura,
//! the date and time, the service, the name, the booking code, the signed QR ticket, what to
//! bring, the partner body, and "provisional" when it is.
//!
//! Two outputs: a PDF (A4 or A5) for an ordinary printer through CUPS (`lp`), and an 80 mm ESC/POS
//! receipt for thermal printers. Receipt printers' code pages cannot print Arabic, Bengali or
//! Chinese, so the receipt is the same layout set as a PDF 72 mm wide, rasterised at the printer's
//! 203 dpi by `pdftoppm` (poppler), and sent as one bitmap (`GS v 0`). Text is shaped by krilla
//! (rustybuzz), right to left where the script needs it; fonts are Noto (Latin, Greek and Cyrillic
//! bundled; Arabic, Bengali and Chinese from Debian's `fonts-noto-core` and `fonts-noto-cjk`).

use std::{path::Path, process::Command};

use coper_shared::jiff::civil::{Date, Time};
use krilla::{
    Document,
    color::rgb,
    geom::{PathBuilder, Point, Rect},
    num::NormalizedF32,
    page::PageSettings,
    paint::Fill,
    surface::Surface,
    text::{Font, TextDirection},
};

use crate::i18n::tr;

/// Everything a reminder shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub questura: String,
    pub questura_address: String,
    pub service: String,
    /// What to bring, as the Questura wrote it (Italian).
    pub what_to_bring: String,
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

static LATIN: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Regular.ttf");
static LATIN_BOLD: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Bold.ttf");
const ARABIC: &str = "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf";
const BENGALI: &str = "/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf";
const CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
/// Simplified Chinese in the CJK collection.
const CJK_SC_INDEX: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Arabic,
    Bengali,
    Cjk,
}

fn script_of(text: &str) -> Script {
    for c in text.chars() {
        match c as u32 {
            0x0600..=0x06FF | 0x0750..=0x077F | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
                return Script::Arabic;
            }
            0x0980..=0x09FF => return Script::Bengali,
            0x3000..=0x303F | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF => return Script::Cjk,
            _ => {}
        }
    }
    Script::Latin
}

struct Fonts {
    latin: Font,
    bold: Font,
    arabic: Option<Font>,
    bengali: Option<Font>,
    cjk: Option<Font>,
}

fn system_font(path: &str, index: u32) -> Option<Font> {
    let bytes = std::fs::read(path).ok()?;
    Font::new(bytes.into(), index)
}

impl Fonts {
    fn load() -> Result<Self, ReminderError> {
        let bundled = |bytes: &'static [u8]| {
            Font::new(bytes.into(), 0).ok_or_else(|| ReminderError::MissingFont("Noto Sans".into()))
        };
        Ok(Self {
            latin: bundled(LATIN)?,
            bold: bundled(LATIN_BOLD)?,
            arabic: system_font(ARABIC, 0),
            bengali: system_font(BENGALI, 0),
            cjk: system_font(CJK, CJK_SC_INDEX),
        })
    }

    fn for_text(&self, text: &str, bold: bool) -> Result<&Font, ReminderError> {
        let (font, path) = match script_of(text) {
            Script::Latin => return Ok(if bold { &self.bold } else { &self.latin }),
            Script::Arabic => (&self.arabic, ARABIC),
            Script::Bengali => (&self.bengali, BENGALI),
            Script::Cjk => (&self.cjk, CJK),
        };
        font.as_ref()
            .ok_or_else(|| ReminderError::MissingFont(path.to_owned()))
    }
}

/// A page being laid out top to bottom; with no surface it only measures.
struct Flow<'a, 'b> {
    surface: Option<&'a mut Surface<'b>>,
    fonts: &'a Fonts,
    width: f32,
    margin: f32,
    y: f32,
}

impl Flow<'_, '_> {
    /// One paragraph, wrapped to the page's width.
    fn text(&mut self, text: &str, size: f32, bold: bool) -> Result<(), ReminderError> {
        let font = self.fonts.for_text(text, bold)?.clone();
        // Average advance: CJK glyphs are square, others about half as wide.
        let per_char = if script_of(text) == Script::Cjk {
            size
        } else {
            size * 0.52
        };
        let max_chars = (((self.width - 2.0 * self.margin) / per_char) as usize).max(8);
        for line in wrap(text, max_chars) {
            self.y += size * 1.3;
            if let Some(surface) = self.surface.as_mut() {
                surface.set_fill(Some(black()));
                surface.draw_text(
                    Point::from_xy(self.margin, self.y),
                    font.clone(),
                    size,
                    &line,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        Ok(())
    }

    /// A label in Italian, and in the person's language when it is another.
    fn label(&mut self, english: &str, lang: &str, size: f32) -> Result<(), ReminderError> {
        let italian = tr("it", english);
        let theirs = tr(lang, english);
        if lang == "it" || theirs == italian {
            self.text(&italian, size, false)
        } else {
            self.text(&italian, size, false)?;
            self.text(&theirs, size, false)
        }
    }

    fn gap(&mut self, points: f32) {
        self.y += points;
    }

    fn rule(&mut self) {
        self.y += 6.0;
        let mut path = PathBuilder::new();
        if let Some(rect) =
            Rect::from_xywh(self.margin, self.y, self.width - 2.0 * self.margin, 0.8)
        {
            path.push_rect(rect);
        }
        if let (Some(path), Some(surface)) = (path.finish(), self.surface.as_mut()) {
            surface.set_fill(Some(black()));
            surface.draw_path(&path);
        }
        self.y += 4.0;
    }

    /// The QR code of `text`, `side` points wide, centred.
    fn qr(&mut self, text: &str, side: f32) -> Result<(), ReminderError> {
        let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
            .map_err(|e| ReminderError::Pdf(format!("QR code: {e}")))?;
        let modules = code.width();
        // A quiet zone of four modules on every side, as scanners need.
        let module = side / (modules as f32 + 8.0);
        let left = (self.width - side) / 2.0 + 4.0 * module;
        let top = self.y + 6.0 + 4.0 * module;
        let colors = code.to_colors();
        let mut path = PathBuilder::new();
        for (i, color) in colors.iter().enumerate() {
            if *color == qrcode::Color::Dark {
                let (x, y) = ((i % modules) as f32, (i / modules) as f32);
                if let Some(rect) =
                    Rect::from_xywh(left + x * module, top + y * module, module, module)
                {
                    path.push_rect(rect);
                }
            }
        }
        if let (Some(path), Some(surface)) = (path.finish(), self.surface.as_mut()) {
            surface.set_fill(Some(black()));
            surface.draw_path(&path);
        }
        self.y += side + 6.0;
        Ok(())
    }
}

fn black() -> Fill {
    Fill {
        paint: rgb::Color::new(0, 0, 0).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

/// Words into lines of at most `max` characters (a longer word gets a line of its own, cut).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > max {
            let head: String = line.chars().take(max).collect();
            line = line.chars().skip(max).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The PDF of `reminder` on `paper`. Texts shrink (down to 60 %) when the two languages do not
/// fit the sheet; a receipt is as long as its content.
pub fn pdf(reminder: &Reminder, paper: Paper) -> Result<Vec<u8>, ReminderError> {
    let fonts = Fonts::load()?;
    let (width, mut height) = paper.size();
    let margin = if paper == Paper::Receipt { 6.0 } else { 36.0 };
    let base = if paper == Paper::Receipt { 0.8 } else { 1.0 };
    let measured = compose(
        &mut Flow {
            surface: None,
            fonts: &fonts,
            width,
            margin,
            y: margin - 6.0,
        },
        reminder,
        paper,
        base,
    )?;
    let scale = if paper == Paper::Receipt {
        height = measured + margin;
        base
    } else if measured > height - margin {
        (base * (height - 2.0 * margin) / (measured - margin)).max(0.6)
    } else {
        base
    };
    let mut document = Document::new();
    let mut page = document.start_page_with(
        PageSettings::from_wh(width, height).ok_or(ReminderError::Pdf("page size".into()))?,
    );
    let mut surface = page.surface();
    compose(
        &mut Flow {
            surface: Some(&mut surface),
            fonts: &fonts,
            width,
            margin,
            y: margin - 6.0,
        },
        reminder,
        paper,
        scale,
    )?;
    surface.finish();
    page.finish();
    document
        .finish()
        .map_err(|e| ReminderError::Pdf(format!("{e:?}")))
}

/// Lay the reminder out with text sizes times `scale`; where it ends.
fn compose(
    flow: &mut Flow<'_, '_>,
    r: &Reminder,
    paper: Paper,
    scale: f32,
) -> Result<f32, ReminderError> {
    let lang = r.lang.as_str();
    let s = |points: f32| points * scale;
    flow.label("Appointment reminder", lang, s(15.0))?;
    flow.rule();
    flow.text(&r.questura, s(12.0), true)?;
    flow.text(&r.questura_address, s(10.0), false)?;
    flow.rule();
    if r.provisional {
        flow.label(
            "PROVISIONAL: the Questura has yet to confirm. If it changes, the office will tell you.",
            lang,
            s(11.0),
        )?;
        flow.rule();
    }
    flow.label("Date and time", lang, s(9.0))?;
    flow.text(
        &format!(
            "{}, ore {}",
            coper_shared::italian::long_date(r.date),
            r.time.strftime("%H:%M")
        ),
        s(15.0),
        true,
    )?;
    flow.text(
        &format!(
            "{} {}",
            r.date.strftime("%d/%m/%Y"),
            r.time.strftime("%H:%M")
        ),
        s(12.0),
        true,
    )?;
    flow.gap(s(4.0));
    flow.label("Service", lang, s(9.0))?;
    flow.text(&r.service, s(12.0), true)?;
    flow.gap(s(4.0));
    flow.label("Given names", lang, s(9.0))?;
    flow.text(
        &format!("{} {}", r.surname.to_uppercase(), r.given_names),
        s(14.0),
        true,
    )?;
    flow.gap(s(4.0));
    flow.label("Booking code", lang, s(9.0))?;
    flow.text(&r.booking_code, s(18.0), true)?;
    // The code must stay big enough to scan, whatever the text's scale.
    flow.qr(
        &r.ticket,
        if paper == Paper::Receipt {
            180.0
        } else {
            150.0
        },
    )?;
    flow.rule();
    flow.text(&r.what_to_bring, s(9.0), false)?;
    if lang != "it" {
        flow.text(
            &tr(
                lang,
                "Bring: this reminder, your passport and the receipt of your application.",
            ),
            s(9.0),
            false,
        )?;
    }
    flow.gap(s(4.0));
    flow.label("Booked at", lang, s(9.0))?;
    flow.text(&r.partner, s(10.0), true)?;
    Ok(flow.y)
}

/// A 1-bit raster: `width` dots per row, rows of `(width + 7) / 8` bytes, 1 = black.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub bits: Vec<u8>,
}

impl Raster {
    pub fn is_black(&self, x: usize, y: usize) -> bool {
        let row = self.width.div_ceil(8);
        self.bits[y * row + x / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Parse a binary PBM (`P4`), as `pdftoppm -mono` writes it.
    fn from_pbm(bytes: &[u8]) -> Option<Self> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 3 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(std::str::from_utf8(&bytes[start..at]).ok()?.to_owned());
        }
        if fields[0] != "P4" {
            return None;
        }
        let (width, height): (usize, usize) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
        let data = bytes.get(at + 1..)?;
        let len = width.div_ceil(8) * height;
        (data.len() >= len).then(|| Self {
            width,
            height,
            bits: data[..len].to_vec(),
        })
    }

    /// Without the blank rows at the bottom (the receipt page is taller than its text).
    fn trimmed(mut self) -> Self {
        let row = self.width.div_ceil(8);
        while self.height > 1
            && self.bits[(self.height - 1) * row..self.height * row]
                .iter()
                .all(|b| *b == 0)
        {
            self.height -= 1;
        }
        self.bits.truncate(self.height * row);
        self
    }
}

/// The printer's resolution: 8 dots per millimetre, 576 dots across 72 mm.
pub const RECEIPT_DPI: u32 = 203;

fn pdftoppm(pdf: &[u8], args: &[&str], extension: &str) -> Result<Vec<u8>, ReminderError> {
    let dir = tempfile_dir()?;
    // The PDF carries a name: the folder goes whatever happens.
    let result = rasterise(&dir, pdf, args, extension);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn rasterise(
    dir: &Path,
    pdf: &[u8],
    args: &[&str],
    extension: &str,
) -> Result<Vec<u8>, ReminderError> {
    let input = dir.join("reminder.pdf");
    std::fs::write(&input, pdf).map_err(|e| ReminderError::Raster(e.to_string()))?;
    let output = dir.join("reminder");
    let status = Command::new("pdftoppm")
        .args(args)
        .arg("-singlefile")
        .arg(&input)
        .arg(&output)
        .status()
        .map_err(|e| ReminderError::Raster(e.to_string()))?;
    if !status.success() {
        return Err(ReminderError::Raster(format!(
            "pdftoppm exited with {status}"
        )));
    }
    std::fs::read(output.with_extension(extension))
        .map_err(|e| ReminderError::Raster(e.to_string()))
}

fn tempfile_dir() -> Result<std::path::PathBuf, ReminderError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| ReminderError::Raster(e.to_string()))?;
    let dir = std::env::temp_dir().join(format!(
        "coper-reminder-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| ReminderError::Raster(e.to_string()))?;
    Ok(dir)
}

/// The receipt as the printer will print it.
pub fn receipt_raster(reminder: &Reminder) -> Result<Raster, ReminderError> {
    let pdf = pdf(reminder, Paper::Receipt)?;
    let dpi = RECEIPT_DPI.to_string();
    let pbm = pdftoppm(&pdf, &["-mono", "-r", &dpi], "pbm")?;
    Raster::from_pbm(&pbm)
        .map(Raster::trimmed)
        .ok_or_else(|| ReminderError::Raster("unreadable PBM".into()))
}

/// The receipt as a PNG picture (for setting printers up, and for the documentation).
pub fn receipt_png(reminder: &Reminder) -> Result<Vec<u8>, ReminderError> {
    let pdf = pdf(reminder, Paper::Receipt)?;
    pdftoppm(&pdf, &["-png", "-r", &RECEIPT_DPI.to_string()], "png")
}

/// The ESC/POS byte stream of `raster`: initialise, the bitmap in bands (`GS v 0`), feed, cut.
pub fn escpos(raster: &Raster) -> Vec<u8> {
    const BAND: usize = 256;
    let row = raster.width.div_ceil(8);
    let mut out = vec![0x1B, 0x40]; // ESC @: initialise
    out.extend_from_slice(&[0x1B, 0x61, 0x01]); // ESC a 1: centre
    for start in (0..raster.height).step_by(BAND) {
        let rows = BAND.min(raster.height - start);
        out.extend_from_slice(&[0x1D, 0x76, 0x30, 0x00]);
        out.extend_from_slice(&(row as u16).to_le_bytes());
        out.extend_from_slice(&(rows as u16).to_le_bytes());
        out.extend_from_slice(&raster.bits[start * row..(start + rows) * row]);
    }
    out.extend_from_slice(&[0x1B, 0x64, 0x04]); // ESC d 4: feed four lines
    out.extend_from_slice(&[0x1D, 0x56, 0x42, 0x00]); // GS V B 0: cut
    out
}

/// Read the bitmap back out of an ESC/POS stream written by [`escpos`] (for tests and checks).
pub fn raster_of_escpos(bytes: &[u8]) -> Option<Raster> {
    let mut at = 0;
    let (mut width, mut bits, mut height) = (0, Vec::new(), 0);
    while at + 8 <= bytes.len() {
        if bytes[at..at + 4] == [0x1D, 0x76, 0x30, 0x00] {
            let row = u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]) as usize;
            let rows = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
            width = row * 8;
            bits.extend_from_slice(bytes.get(at + 8..at + 8 + row * rows)?);
            height += rows;
            at += 8 + row * rows;
        } else {
            at += 1;
        }
    }
    (height > 0).then_some(Raster {
        width,
        height,
        bits,
    })
}

/// Send a PDF to the system printer through CUPS.
pub fn print_pdf(pdf: &[u8], printer: Option<&str>) -> Result<(), ReminderError> {
    let dir = tempfile_dir()?;
    let file = dir.join("reminder.pdf");
    if let Err(e) = std::fs::write(&file, pdf) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(ReminderError::Raster(e.to_string()));
    }
    let mut command = Command::new("lp");
    if let Some(printer) = printer {
        command.arg("-d").arg(printer);
    }
    let status = command.arg(&file).status();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.map_err(|e| ReminderError::Raster(format!("lp: {e}")))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| ReminderError::Raster(format!("lp exited with {status}")))
}

/// Write an ESC/POS stream to a receipt printer's device (e.g. `/dev/usb/lp0`).
pub fn print_escpos(bytes: &[u8], device: &Path) -> std::io::Result<()> {
    std::fs::write(device, bytes)
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
        date,
        time,
        surname: "El Amrani".into(),
        given_names: "Fatima Zahra".into(),
        booking_code: "K7QM-4XTA".into(),
        ticket,
        partner: "Comune di Pavia – Sportello Stranieri".into(),
        provisional: true,
        lang: lang.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_words_and_long_words_are_cut() {
        assert_eq!(
            wrap("uno due tre quattro", 8),
            vec!["uno due", "tre", "quattro"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn scripts_pick_their_fonts() {
        assert_eq!(script_of("Promemoria"), Script::Latin);
        assert_eq!(script_of("Напоминание"), Script::Latin);
        assert_eq!(script_of("تذكير"), Script::Arabic);
        assert_eq!(script_of("ملاقات"), Script::Arabic);
        assert_eq!(script_of("রিমাইন্ডার"), Script::Bengali);
        assert_eq!(script_of("预约提醒单"), Script::Cjk);
    }

    #[test]
    fn an_escpos_stream_gives_its_bitmap_back() {
        let raster = Raster {
            width: 16,
            height: 300,
            bits: (0..600).map(|i| (i % 251) as u8).collect(),
        };
        assert_eq!(raster_of_escpos(&escpos(&raster)), Some(raster));
    }
}
