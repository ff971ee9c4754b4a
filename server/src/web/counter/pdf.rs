//! The day list as a PDF: for each service, its own set of A4 pages ("one day = one page" per
//! service, more pages only when the day is long), a header with the Questura, the date and the
//! service, the appointments in time order with the drawer each permit waits in, and an empty
//! box per line to tick at check-in (or, for a person already checked in, delivered or absent
//! when it is printed, that word instead).
//!
//! Text is set in Noto Sans, embedded (`assets/fonts/`), so names print as they are written.

use krilla::{
    Document,
    color::rgb,
    geom::{PathBuilder, Point, Rect},
    num::NormalizedF32,
    page::PageSettings,
    paint::{Fill, Stroke},
    surface::Surface,
    text::{Font, TextDirection},
};

static REGULAR: &[u8] = include_bytes!("../../../../assets/fonts/NotoSans-Regular.ttf");
static BOLD: &[u8] = include_bytes!("../../../../assets/fonts/NotoSans-Bold.ttf");

/// One line of the list.
pub struct Line {
    pub time: String,
    pub name: String,
    pub code: String,
    pub drawer: String,
    pub partner: String,
    /// Already done at print time ("presente", "consegnato", "assente"): written instead of the
    /// empty box, so nobody ticks it again.
    pub done: Option<String>,
}

/// One service's appointments of the day.
pub struct Section {
    pub service: String,
    pub rows: Vec<Line>,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("the PDF cannot be written: {0}")]
    Write(String),
}

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 42.0;
const ROW: f32 = 24.0;
const TABLE_TOP: f32 = 150.0;
const ROWS_PER_PAGE: usize = ((HEIGHT - TABLE_TOP - 60.0) / ROW) as usize;
/// Column starts: time, name, code, drawer, partner body, check-in box.
const COLUMNS: [f32; 6] = [
    MARGIN,
    MARGIN + 42.0,
    MARGIN + 232.0,
    MARGIN + 302.0,
    MARGIN + 344.0,
    WIDTH - MARGIN - 62.0,
];

/// Render the day list of `title` (the date, in words) for each of `sections`.
pub fn render(questura: &str, title: &str, sections: &[Section]) -> Result<Vec<u8>, PdfError> {
    let regular = Font::new(REGULAR.into(), 0).ok_or(PdfError::Font)?;
    let bold = Font::new(BOLD.into(), 0).ok_or(PdfError::Font)?;
    let mut document = Document::new();
    let empty = [Section {
        service: String::new(),
        rows: Vec::new(),
    }];
    let sections = if sections.is_empty() {
        &empty[..]
    } else {
        sections
    };
    for section in sections {
        let chunks: Vec<&[Line]> = if section.rows.is_empty() {
            vec![&[]]
        } else {
            section.rows.chunks(ROWS_PER_PAGE).collect()
        };
        let pages = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut page = document
                .start_page_with(PageSettings::from_wh(WIDTH, HEIGHT).expect("A4 is a valid size"));
            let mut surface = page.surface();
            let text = |s: &mut Surface<'_>, x: f32, y: f32, size: f32, font: &Font, t: &str| {
                s.draw_text(
                    Point::from_xy(x, y),
                    font.clone(),
                    size,
                    t,
                    false,
                    TextDirection::Auto,
                );
            };
            surface.set_fill(Some(black()));
            text(&mut surface, MARGIN, 60.0, 16.0, &bold, questura);
            text(
                &mut surface,
                MARGIN,
                84.0,
                13.0,
                &regular,
                &format!("Elenco appuntamenti di {title}"),
            );
            let service = if section.service.is_empty() {
                "nessun appuntamento".to_owned()
            } else {
                format!("Servizio: {}", section.service)
            };
            text(&mut surface, MARGIN, 104.0, 13.0, &bold, &service);
            text(
                &mut surface,
                MARGIN,
                124.0,
                10.0,
                &regular,
                &format!(
                    "{} appuntamenti · pagina {} di {}",
                    section.rows.len(),
                    index + 1,
                    pages
                ),
            );
            let headers = [
                "Ora",
                "Cognome e nome",
                "Codice",
                "Cassetto",
                "Ente",
                "Presente",
            ];
            for (x, header) in COLUMNS.iter().zip(headers) {
                text(&mut surface, *x, TABLE_TOP - 6.0, 9.0, &bold, header);
            }
            line(&mut surface, TABLE_TOP, 1.0);
            for (i, row) in chunk.iter().enumerate() {
                let top = TABLE_TOP + i as f32 * ROW;
                let baseline = top + ROW - 8.0;
                surface.set_fill(Some(black()));
                text(&mut surface, COLUMNS[0], baseline, 11.0, &bold, &row.time);
                text(
                    &mut surface,
                    COLUMNS[1],
                    baseline,
                    11.0,
                    &regular,
                    &clip(&row.name, 32),
                );
                text(&mut surface, COLUMNS[2], baseline, 9.0, &regular, &row.code);
                text(
                    &mut surface,
                    COLUMNS[3],
                    baseline,
                    10.0,
                    &bold,
                    &clip(&row.drawer, 6),
                );
                text(
                    &mut surface,
                    COLUMNS[4],
                    baseline,
                    9.0,
                    &regular,
                    &clip(&row.partner, 20),
                );
                match &row.done {
                    Some(done) => text(&mut surface, COLUMNS[5], baseline, 9.0, &bold, done),
                    None => check_box(&mut surface, COLUMNS[5] + 14.0, top + 5.0),
                }
                line(&mut surface, top + ROW, 0.4);
            }
            surface.finish();
            page.finish();
        }
    }
    document
        .finish()
        .map_err(|e| PdfError::Write(format!("{e:?}")))
}

fn black() -> Fill {
    Fill {
        paint: rgb::Color::new(0, 0, 0).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn stroke(width: f32) -> Stroke {
    Stroke {
        paint: rgb::Color::new(0, 0, 0).into(),
        width,
        ..Default::default()
    }
}

fn line(surface: &mut Surface<'_>, y: f32, width: f32) {
    let mut path = PathBuilder::new();
    path.move_to(MARGIN, y);
    path.line_to(WIDTH - MARGIN, y);
    if let Some(path) = path.finish() {
        surface.set_fill(None);
        surface.set_stroke(Some(stroke(width)));
        surface.draw_path(&path);
        surface.set_stroke(None);
    }
}

fn check_box(surface: &mut Surface<'_>, x: f32, y: f32) {
    let mut path = PathBuilder::new();
    if let Some(rect) = Rect::from_xywh(x, y, 14.0, 14.0) {
        path.push_rect(rect);
    }
    if let Some(path) = path.finish() {
        surface.set_fill(None);
        surface.set_stroke(Some(stroke(0.8)));
        surface.draw_path(&path);
        surface.set_stroke(None);
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}
