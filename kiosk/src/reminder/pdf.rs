//! The reminder as a PDF: the layout (shaped text in the script's Noto font, right to left where
//! the script needs it, wrapped to the paper), and printing it through CUPS (`lp`).

use std::process::Command;

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

use super::{Paper, Reminder, ReminderError, receipt::tempfile_dir};
use crate::i18n::tr;

static LATIN: &[u8] = include_bytes!("../../../assets/fonts/NotoSans-Regular.ttf");
static LATIN_BOLD: &[u8] = include_bytes!("../../../assets/fonts/NotoSans-Bold.ttf");
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

impl<'a, 'b> Flow<'a, 'b> {
    /// A flow from the top margin: onto `surface`, or only measuring when there is none.
    fn new(
        surface: Option<&'a mut Surface<'b>>,
        fonts: &'a Fonts,
        width: f32,
        margin: f32,
    ) -> Self {
        Self {
            surface,
            fonts,
            width,
            margin,
            y: margin - 6.0,
        }
    }
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
    let measure = |scale: f32| -> Result<f32, ReminderError> {
        compose(
            &mut Flow::new(None, &fonts, width, margin),
            reminder,
            paper,
            scale,
        )
    };
    let measured = measure(base)?;
    // Only the text shrinks to fit a page (the QR codes keep the size scanners need): the
    // largest scale whose layout ends within the page, found by halving.
    let scale = if paper == Paper::Receipt {
        height = measured + margin;
        base
    } else if measured > height - margin {
        let (mut fits, mut over) = (0.4, base);
        for _ in 0..12 {
            let mid = (fits + over) / 2.0;
            if measure(mid)? <= height - margin {
                fits = mid;
            } else {
                over = mid;
            }
        }
        fits
    } else {
        base
    };
    let mut document = Document::new();
    let mut page = document.start_page_with(
        PageSettings::from_wh(width, height).ok_or(ReminderError::Pdf("page size".into()))?,
    );
    let mut surface = page.surface();
    compose(
        &mut Flow::new(Some(&mut surface), &fonts, width, margin),
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
    // The same in the person's language, with its weekday (the Italian line has it in words).
    flow.text(
        &format!(
            "{} {} {}",
            crate::i18n::weekday(lang, r.date),
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
    if let Some(theirs) = r.what_to_bring_theirs.as_ref().filter(|_| lang != "it") {
        flow.text(theirs, s(9.0), false)?;
    } else if lang != "it" {
        flow.text(
            &tr(
                lang,
                "Bring: this reminder, your passport and the receipt of your application.",
            ),
            s(9.0),
            false,
        )?;
    }
    if !r.still_to_bring.is_empty() {
        flow.rule();
        flow.label(
            "Documents still to bring, from the document check",
            lang,
            s(10.0),
        )?;
        for (italian, theirs) in &r.still_to_bring {
            flow.text(&format!("• {italian}"), s(10.0), true)?;
            if theirs != italian {
                flow.text(theirs, s(10.0), false)?;
            }
        }
    }
    if let Some(link) = &r.precheck_link {
        flow.rule();
        flow.label(
            "Send your documents to the Questura: scan this code with your phone",
            lang,
            s(10.0),
        )?;
        flow.qr(link, 110.0)?;
        flow.text(link, s(7.0), false)?;
    }
    flow.gap(s(4.0));
    flow.label("Booked at", lang, s(9.0))?;
    flow.text(&r.partner, s(10.0), true)?;
    Ok(flow.y)
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

    /// An Arabic, provisional reminder with four documents still to bring and both QR codes
    /// fits an A5 page: its last line is on the page.
    #[test]
    fn a_long_reminder_fits_its_page() {
        let mut r = crate::reminder::sample("ar");
        r.still_to_bring = (0..4)
            .map(|_| {
                (
                    "Certificato di idoneità alloggiativa — Portare l'originale".to_owned(),
                    "شهادة صلاحية السكن — إحضار الأصل".to_owned(),
                )
            })
            .collect();
        r.precheck_link = Some(format!(
            "https://prenota.questura.example.it/documents/{}",
            "a".repeat(32)
        ));
        let pdf = pdf(&r, Paper::A5).unwrap();
        // Read back: the last line (the partner body) is on the page, under the second code.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.pdf");
        std::fs::write(&path, pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-layout", "-f", "1", "-l", "1"])
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Sportello Stranieri"), "{text}");
        let pages = std::process::Command::new("pdfinfo")
            .arg(&path)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&pages.stdout);
        let count = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .map(str::trim);
        assert_eq!(count, Some("1"), "{info}");
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
}
