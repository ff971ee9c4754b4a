//! The Questura's settings: name, address, contacts, patron saint, the counter's check-in
//! window, and when messages to people go out (reminder, quiet hours, how long contacts are
//! kept); a field left empty keeps its default. Kiosks show the name and address and book around the holidays, so saving republishes.

use axum::{
    extract::Form,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use coper_shared::jiff::civil::{Date, Time};
use serde::Deserialize;

use crate::{
    ops,
    store::settings::{self, Messaging, Settings},
    web::page::{Frame, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    pub frame: Frame,
    pub form: SettingsForm,
    pub errors: Vec<String>,
    pub saved: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub questura_name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
    /// `MM-DD`, or empty.
    #[serde(default)]
    pub patron_date: String,
    #[serde(default)]
    pub patron_name: String,
    #[serde(default)]
    pub checkin_early_minutes: String,
    #[serde(default)]
    pub checkin_late_minutes: String,
    #[serde(default)]
    pub kiosk_silent_minutes: String,
    #[serde(default)]
    pub contact_retention_days: String,
    #[serde(default)]
    pub reminder_days_before: String,
    #[serde(default)]
    pub reminder_at: String,
    #[serde(default)]
    pub quiet_from: String,
    #[serde(default)]
    pub quiet_until: String,
}

impl SettingsForm {
    fn of(s: &Settings) -> Self {
        Self {
            questura_name: s.questura_name.clone(),
            address: s.address.clone(),
            phone: s.phone.clone(),
            email: s.email.clone(),
            patron_date: s
                .patron
                .as_ref()
                .map(|(m, d, _)| format!("{m:02}-{d:02}"))
                .unwrap_or_default(),
            patron_name: s.patron.as_ref().map(|p| p.2.clone()).unwrap_or_default(),
            checkin_early_minutes: s.checkin_early_minutes.to_string(),
            checkin_late_minutes: s.checkin_late_minutes.to_string(),
            kiosk_silent_minutes: s.kiosk_silent_minutes.to_string(),
            ..Self::messaging(&s.messaging)
        }
    }

    fn messaging(m: &Messaging) -> Self {
        let hh_mm = |t: Time| t.strftime("%H:%M").to_string();
        Self {
            contact_retention_days: m.contact_retention_days.to_string(),
            reminder_days_before: m.reminder_days_before.to_string(),
            reminder_at: hh_mm(m.reminder_at),
            quiet_from: hh_mm(m.quiet_from),
            quiet_until: hh_mm(m.quiet_until),
            ..Self::default()
        }
    }

    fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        if self.questura_name.trim().is_empty() {
            errors.push("il nome della Questura è obbligatorio".to_owned());
        }
        if self.address.trim().is_empty() {
            errors.push("l'indirizzo è obbligatorio".to_owned());
        }
        let patron = if self.patron_date.trim().is_empty() {
            None
        } else {
            let parsed = self
                .patron_date
                .trim()
                .split_once('-')
                .and_then(|(m, d)| Some((m.parse::<i8>().ok()?, d.parse::<i8>().ok()?)))
                .filter(|(m, d)| Date::new(2024, *m, *d).is_ok());
            match parsed {
                Some((m, d)) => Some((m, d, self.patron_name.trim().to_owned())),
                None => {
                    errors.push("la festa del patrono si scrive MM-GG (es. 12-09)".to_owned());
                    None
                }
            }
        };
        let minutes =
            |text: &str, what: &str, errors: &mut Vec<String>| match text.trim().parse::<i64>() {
                Ok(n) if (0..=720).contains(&n) => n,
                _ => {
                    errors.push(format!("{what}: un numero di minuti tra 0 e 720"));
                    0
                }
            };
        let early = minutes(&self.checkin_early_minutes, "anticipo ammesso", &mut errors);
        let late = minutes(&self.checkin_late_minutes, "ritardo ammesso", &mut errors);
        let silent = match self.kiosk_silent_minutes.trim() {
            "" => 30,
            text => match text.parse::<i64>() {
                Ok(n) if (1..=10_080).contains(&n) => n,
                _ => {
                    errors.push(
                        "chiosco silenzioso dopo: un numero di minuti tra 1 e 10080 (una settimana)"
                            .to_owned(),
                    );
                    30
                }
            },
        };
        let default = Messaging::default();
        let days = |text: &str,
                    range: std::ops::RangeInclusive<i64>,
                    default: i64,
                    what: &str,
                    errors: &mut Vec<String>| {
            match text.trim().parse::<i64>() {
                Ok(n) if range.contains(&n) => n,
                _ if text.trim().is_empty() => default,
                _ => {
                    errors.push(format!(
                        "{what}: un numero di giorni tra {} e {}",
                        range.start(),
                        range.end()
                    ));
                    0
                }
            }
        };
        let time = |text: &str, default: Time, what: &str, errors: &mut Vec<String>| {
            if text.trim().is_empty() {
                return default;
            }
            text.trim().parse::<Time>().unwrap_or_else(|_| {
                errors.push(format!("{what}: un orario come 10:00"));
                default
            })
        };
        let messaging = Messaging {
            contact_retention_days: days(
                &self.contact_retention_days,
                0..=365,
                default.contact_retention_days,
                "contatti conservati",
                &mut errors,
            ),
            reminder_days_before: days(
                &self.reminder_days_before,
                0..=14,
                default.reminder_days_before,
                "promemoria",
                &mut errors,
            ),
            reminder_at: time(
                &self.reminder_at,
                default.reminder_at,
                "ora del promemoria",
                &mut errors,
            ),
            quiet_from: time(
                &self.quiet_from,
                default.quiet_from,
                "nessun messaggio dalle",
                &mut errors,
            ),
            quiet_until: time(
                &self.quiet_until,
                default.quiet_until,
                "nessun messaggio fino alle",
                &mut errors,
            ),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            questura_name: self.questura_name.trim().to_owned(),
            address: self.address.trim().to_owned(),
            phone: self.phone.trim().to_owned(),
            email: self.email.trim().to_owned(),
            patron,
            checkin_early_minutes: early,
            checkin_late_minutes: late,
            kiosk_silent_minutes: silent,
            messaging,
        })
    }
}

pub async fn settings_page(cx: StaffContext) -> PageResult {
    let current = cx.state.db.read(settings::settings).await?;
    let form = current
        .as_ref()
        .map(SettingsForm::of)
        .unwrap_or(SettingsForm {
            checkin_early_minutes: "60".into(),
            checkin_late_minutes: "90".into(),
            kiosk_silent_minutes: "30".into(),
            ..SettingsForm::messaging(&Messaging::default())
        });
    Ok(SettingsPage {
        frame: cx.frame(),
        form,
        errors: Vec::new(),
        saved: false,
    }
    .into_response())
}

pub async fn settings_save(cx: StaffContext, Form(form): Form<SettingsForm>) -> PageResult {
    let new = match form.settings() {
        Ok(new) => new,
        Err(errors) => return Ok(page(&cx, form, errors, false)),
    };
    let by = cx.by.clone();
    cx.state
        .perform(move |conn| ops::settings::save(conn, &by, &new))
        .await?;
    Ok(page(&cx, form, Vec::new(), true))
}

fn page(cx: &StaffContext, form: SettingsForm, errors: Vec<String>, saved: bool) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        SettingsPage {
            frame: cx.frame(),
            form,
            errors,
            saved,
        },
    )
        .into_response()
}
