//! The agenda editor's form as typed: a service's weekly hours, places, date exceptions, horizon
//! and lead time, read into the engine's rules (with the engine's own Italian messages) and
//! written back from them; and how the preview and the moved bookings are shown.

use coper_shared::{
    agenda::{ClosedReason, DayAvailability, DaySummary, Unbookable},
    ids::ServiceId,
    jiff::civil::{Date, Time, Weekday},
    rules::{
        DateException, ExceptionKind, OpeningRange, ServiceRules, ServiceRulesDraft, WeeklyRule,
        hh_mm,
    },
};

use crate::{agenda_change::Displaced, store, web::italian_date};

pub const WEEKDAYS: [(&str, &str); 7] = [
    ("1", "lunedì"),
    ("2", "martedì"),
    ("3", "mercoledì"),
    ("4", "giovedì"),
    ("5", "venerdì"),
    ("6", "sabato"),
    ("7", "domenica"),
];

/// A weekly row as typed.
#[derive(Debug, Clone, Default)]
pub struct WeeklyRow {
    pub day: String,
    pub start: String,
    pub end: String,
    pub slot: String,
    pub places: String,
}

/// An exception row as typed: a closure, or one range of an open day.
#[derive(Debug, Clone, Default)]
pub struct ExceptionRow {
    pub date: String,
    pub kind: String,
    pub start: String,
    pub end: String,
    pub slot: String,
    pub places: String,
    pub note: String,
}

/// Every language but Italian, with its own name, and `text(code)`.
fn other_languages(text: impl Fn(&str) -> String) -> Vec<(&'static str, &'static str, String)> {
    crate::web::public::MESSAGE_LANGUAGES
        .iter()
        .filter(|(code, _)| *code != "it")
        .map(|(code, name)| (*code, *name, text(code)))
        .collect()
}

impl Editor {
    /// "What to bring" in the other languages given, trimmed (empty ones left out).
    pub fn what_to_bring_translations(&self) -> coper_shared::precheck::Translations {
        self.what_to_bring_in
            .iter()
            .filter(|(_, _, text)| !text.trim().is_empty())
            .map(|(code, _, text)| (code.to_string(), text.trim().to_owned()))
            .collect()
    }
}

/// The editor's whole form, as typed.
#[derive(Debug, Clone, Default)]
pub struct Editor {
    pub id: String,
    pub name: String,
    pub description: String,
    pub what_to_bring: String,
    /// "What to bring" in the other languages (language code, text; empty when not given), in
    /// the public site's order.
    pub what_to_bring_in: Vec<(&'static str, &'static str, String)>,
    pub horizon_days: String,
    pub lead_minutes: String,
    pub weekly: Vec<WeeklyRow>,
    pub exceptions: Vec<ExceptionRow>,
}

/// Blank rows offered for adding hours or exceptions.
const BLANK_ROWS: usize = 3;

impl Editor {
    pub fn from_rules(service: &store::services::Service) -> Self {
        let draft = service.rules.to_draft();
        let mut weekly: Vec<WeeklyRow> = draft
            .weekly
            .iter()
            .map(|w| WeeklyRow {
                day: w.weekday.to_monday_one_offset().to_string(),
                start: hh_mm(w.range.start),
                end: hh_mm(w.range.end),
                slot: w.range.slot_minutes.to_string(),
                places: w.range.places.to_string(),
            })
            .collect();
        let mut exceptions = Vec::new();
        for e in &draft.exceptions {
            match &e.kind {
                ExceptionKind::Closed { note } => exceptions.push(ExceptionRow {
                    date: e.date.to_string(),
                    kind: "closed".into(),
                    note: note.clone(),
                    ..ExceptionRow::default()
                }),
                ExceptionKind::Open { ranges } => {
                    for r in ranges {
                        exceptions.push(ExceptionRow {
                            date: e.date.to_string(),
                            kind: "open".into(),
                            start: hh_mm(r.start),
                            end: hh_mm(r.end),
                            slot: r.slot_minutes.to_string(),
                            places: r.places.to_string(),
                            note: String::new(),
                        })
                    }
                }
            }
        }
        weekly.extend((0..BLANK_ROWS).map(|_| WeeklyRow::default()));
        exceptions.extend((0..BLANK_ROWS).map(|_| ExceptionRow::default()));
        Self {
            id: service.id.as_str().to_owned(),
            name: service.name.clone(),
            description: service.description.clone(),
            what_to_bring: service.what_to_bring.clone(),
            what_to_bring_in: other_languages(|code| {
                service
                    .what_to_bring_in
                    .get(code)
                    .cloned()
                    .unwrap_or_default()
            }),
            horizon_days: service.rules.horizon_days().to_string(),
            lead_minutes: service.rules.lead_minutes().to_string(),
            weekly,
            exceptions,
        }
    }

    /// Read the posted form: repeated fields, one value per row, in order.
    pub fn from_form(id: &str, pairs: &[(String, String)]) -> Self {
        let one = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let all = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let (days, starts, ends, slots, places) = (
            all("w_day"),
            all("w_start"),
            all("w_end"),
            all("w_slot"),
            all("w_places"),
        );
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let mut weekly: Vec<WeeklyRow> = (0..days.len())
            .map(|i| WeeklyRow {
                day: at(&days, i),
                start: at(&starts, i),
                end: at(&ends, i),
                slot: at(&slots, i),
                places: at(&places, i),
            })
            .collect();
        let (dates, kinds, xs, xe, xslot, xplaces, notes) = (
            all("x_date"),
            all("x_kind"),
            all("x_start"),
            all("x_end"),
            all("x_slot"),
            all("x_places"),
            all("x_note"),
        );
        let mut exceptions: Vec<ExceptionRow> = (0..dates.len())
            .map(|i| ExceptionRow {
                date: at(&dates, i),
                kind: at(&kinds, i),
                start: at(&xs, i),
                end: at(&xe, i),
                slot: at(&xslot, i),
                places: at(&xplaces, i),
                note: at(&notes, i),
            })
            .collect();
        // Keep what was typed, drop what was left blank, and offer fresh blank rows again.
        weekly.retain(|w| !(w.start.trim().is_empty() && w.end.trim().is_empty()));
        exceptions.retain(|x| !x.date.trim().is_empty());
        weekly.extend((0..BLANK_ROWS).map(|_| WeeklyRow::default()));
        exceptions.extend((0..BLANK_ROWS).map(|_| ExceptionRow::default()));
        Self {
            id: id.to_owned(),
            name: one("name"),
            description: one("description"),
            what_to_bring: one("what_to_bring"),
            what_to_bring_in: other_languages(|code| one(&format!("what_to_bring_{code}"))),
            horizon_days: one("horizon_days"),
            lead_minutes: one("lead_minutes"),
            weekly,
            exceptions,
        }
    }

    /// The checked rules, or every mistake found, in Italian, with the row it is on.
    pub fn rules(&self) -> Result<ServiceRules, Vec<String>> {
        let mut errors = Vec::new();
        let service = ServiceId::parse(&self.id).map_err(|e| vec![e.to_string()])?;
        let time = |text: &str, what: &str, row: usize, errors: &mut Vec<String>| {
            Time::strptime("%H:%M", text.trim())
                .map_err(|_| {
                    errors.push(format!(
                        "riga {row}: {what} «{text}» non è un orario (HH:MM)"
                    ))
                })
                .ok()
        };
        let number = |text: &str, what: &str, row: usize, errors: &mut Vec<String>| {
            text.trim()
                .parse::<u16>()
                .map_err(|_| errors.push(format!("riga {row}: {what} «{text}» non è un numero")))
                .ok()
        };
        let range = |start: &str,
                     end: &str,
                     slot: &str,
                     places: &str,
                     row: usize,
                     errors: &mut Vec<String>| {
            let start = time(start, "l'inizio", row, errors);
            let end = time(end, "la fine", row, errors);
            let slot = number(slot, "la durata dello slot", row, errors);
            let places = number(places, "il numero di posti", row, errors);
            Some(OpeningRange {
                start: start?,
                end: end?,
                slot_minutes: slot?,
                places: places?,
            })
        };
        let mut weekly = Vec::new();
        for (i, w) in self.weekly.iter().enumerate() {
            if w.start.trim().is_empty() && w.end.trim().is_empty() {
                continue;
            }
            let day = w
                .day
                .parse::<i8>()
                .ok()
                .and_then(|d| Weekday::from_monday_one_offset(d).ok());
            let r = range(&w.start, &w.end, &w.slot, &w.places, i + 1, &mut errors);
            match (day, r) {
                (Some(weekday), Some(range)) => weekly.push(WeeklyRule { weekday, range }),
                (None, _) => errors.push(format!("orari, riga {}: scegliere il giorno", i + 1)),
                _ => {}
            }
        }
        let mut exceptions: Vec<DateException> = Vec::new();
        for (i, x) in self.exceptions.iter().enumerate() {
            if x.date.trim().is_empty() {
                continue;
            }
            let Ok(date) = x.date.trim().parse::<Date>() else {
                errors.push(format!(
                    "eccezioni, riga {}: la data «{}» non è valida",
                    i + 1,
                    x.date
                ));
                continue;
            };
            if x.kind == "open" {
                let Some(r) = range(&x.start, &x.end, &x.slot, &x.places, i + 1, &mut errors)
                else {
                    continue;
                };
                match exceptions.iter_mut().find(|e| e.date == date) {
                    Some(DateException {
                        kind: ExceptionKind::Open { ranges },
                        ..
                    }) => ranges.push(r),
                    Some(_) => errors.push(format!("la data {date} è sia chiusa sia aperta")),
                    None => exceptions.push(DateException {
                        date,
                        kind: ExceptionKind::Open { ranges: vec![r] },
                    }),
                }
            } else {
                exceptions.push(DateException {
                    date,
                    kind: ExceptionKind::Closed {
                        note: x.note.trim().to_owned(),
                    },
                });
            }
        }
        let horizon = self.horizon_days.trim().parse::<u16>();
        let lead = self.lead_minutes.trim().parse::<u32>();
        if horizon.is_err() {
            errors.push("l'orizzonte di prenotazione deve essere un numero di giorni".into());
        }
        if lead.is_err() {
            errors.push("il preavviso minimo deve essere un numero di minuti".into());
        }
        if self.name.trim().is_empty() {
            errors.push("il nome del servizio è obbligatorio".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        ServiceRules::new(ServiceRulesDraft {
            service,
            weekly,
            exceptions,
            horizon_days: horizon.unwrap_or_default(),
            lead_minutes: lead.unwrap_or_default(),
        })
        .map_err(|e| vec![e.to_string()])
    }
}

/// A day of the preview calendar.
pub struct PreviewDay {
    pub date: String,
    pub label: String,
    pub places: u32,
    pub free: u32,
    pub state: &'static str,
    pub note: String,
}

pub fn preview_day(d: &DaySummary) -> PreviewDay {
    let (state, note) = match &d.availability {
        DayAvailability::Bookable => ("open", String::new()),
        DayAvailability::Closed { reason } => (
            "closed",
            match reason {
                ClosedReason::Holiday { holiday } => holiday.italian_name().to_owned(),
                ClosedReason::Closure { note } if !note.is_empty() => format!("chiuso: {note}"),
                ClosedReason::Closure { .. } => "chiuso".to_owned(),
                ClosedReason::NotOpeningDay => String::new(),
            },
        ),
        DayAvailability::Unbookable { reason } => (
            "full",
            match reason {
                Unbookable::Past => "passato",
                Unbookable::TooSoon => "entro il preavviso",
                Unbookable::BeyondHorizon => "oltre l'orizzonte",
                Unbookable::Full => "completo",
            }
            .to_owned(),
        ),
    };
    PreviewDay {
        date: d.date.to_string(),
        label: format!(
            "{} {}",
            &italian_date(d.date)[..3],
            d.date.strftime("%d/%m")
        ),
        places: d.places,
        free: d.free,
        state,
        note,
    }
}

/// A displaced booking, as shown.
pub struct MoveShown {
    pub code: String,
    pub name: String,
    pub partner: String,
    pub from: String,
    pub to: Option<String>,
}

pub fn move_shown(d: &Displaced) -> MoveShown {
    let slot = |k: coper_shared::agenda::SlotKey| {
        format!("{} alle {}", italian_date(k.date), hh_mm(k.start))
    };
    MoveShown {
        code: d.booking_code.clone(),
        name: d.name.clone(),
        partner: d.partner.clone(),
        from: slot(d.from),
        to: d.to.map(slot),
    }
}
