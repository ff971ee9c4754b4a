//! The administration pages (role admin): the Questura's settings, partner bodies with their
//! operators and kiosks, the ready-permit import with a preview, appointments (search, CSV export
//! for Excel, cancellation), and the audit log. The agenda's pages are in `admin_agenda`.

use std::net::SocketAddr;

use axum::{
    Extension,
    extract::{ConnectInfo, Form, Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use coper_shared::jiff::civil::Date;
use serde::Deserialize;

use super::{auth::who, internal_error, message};
use crate::{
    AppState,
    accounts::{self, Role, Staff},
    import,
    store::{
        self, StoreError,
        admin::{self, AppointmentFilter, AuditFilter, Partner, Settings},
    },
    sync,
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/home.html")]
pub struct HomePage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub services: Vec<(String, String)>,
    pub ready: i64,
    pub imported: String,
    pub configured: bool,
}

pub async fn home(State(state): State<AppState>, Extension(staff): Extension<Staff>) -> Response {
    let loaded = state
        .db
        .call(|conn| {
            let services = store::agenda::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect::<Vec<_>>();
            let (ready, imported) = admin::ready_summary(conn)?;
            let configured = admin::settings(conn)?.is_some();
            Ok::<_, StoreError>((services, ready, imported, configured))
        })
        .await;
    match loaded {
        Ok((services, ready, imported, configured)) => HomePage {
            csrf: staff.csrf_token.clone(),
            staff: Some(staff),
            services,
            ready,
            imported: imported.unwrap_or_else(|| "mai".into()),
            configured,
        }
        .into_response(),
        Err(e) => internal_error(e),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    pub staff: Option<Staff>,
    pub csrf: String,
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
        })
    }
}

pub async fn settings_page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Response {
    match state.db.call(|conn| admin::settings(conn)).await {
        Ok(settings) => {
            let form = settings
                .as_ref()
                .map(SettingsForm::of)
                .unwrap_or(SettingsForm {
                    checkin_early_minutes: "60".into(),
                    checkin_late_minutes: "90".into(),
                    ..SettingsForm::default()
                });
            SettingsPage {
                csrf: staff.csrf_token.clone(),
                staff: Some(staff),
                form,
                errors: Vec::new(),
                saved: false,
            }
            .into_response()
        }
        Err(e) => internal_error(e),
    }
}

pub async fn settings_save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let settings = match form.settings() {
        Ok(settings) => settings,
        Err(errors) => {
            return (
                StatusCode::BAD_REQUEST,
                SettingsPage {
                    csrf: staff.csrf_token.clone(),
                    staff: Some(staff),
                    form,
                    errors,
                    saved: false,
                },
            )
                .into_response();
        }
    };
    let now = state.clock.now();
    let (actor, source) = who(&staff, &peer);
    let saved = state
        .db
        .call(move |conn| admin::save_settings(conn, &settings, now, &actor, &source))
        .await;
    if let Err(e) = saved {
        return internal_error(e);
    }
    // The directory carries the Questura's name, address and holidays.
    if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
        return internal_error(e);
    }
    SettingsPage {
        csrf: staff.csrf_token.clone(),
        staff: Some(staff),
        form,
        errors: Vec::new(),
        saved: true,
    }
    .into_response()
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/partners.html")]
pub struct PartnersPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub partners: Vec<Partner>,
}

pub async fn partners(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Response {
    match state.db.call(|conn| admin::partners(conn)).await {
        Ok(partners) => PartnersPage {
            csrf: staff.csrf_token.clone(),
            staff: Some(staff),
            partners,
        }
        .into_response(),
        Err(e) => internal_error(e),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/partner.html")]
pub struct PartnerPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub partner: Partner,
    pub operators: Vec<admin::Account>,
    pub kiosks: Vec<admin::Kiosk>,
    pub errors: Vec<String>,
    /// A message after an action: a new enrolment code, a password reset.
    pub notice: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartnerForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    opening_hours: String,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    lease_places_per_day: String,
}

impl PartnerForm {
    fn partner(&self, id: i64) -> Partner {
        Partner {
            id,
            name: self.name.clone(),
            address: self.address.clone(),
            city: self.city.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            opening_hours: self.opening_hours.clone(),
            active: self.active.is_some(),
            lease_places_per_day: self.lease_places_per_day.trim().parse().unwrap_or(-1),
        }
    }
}

async fn partner_page(
    state: &AppState,
    staff: Staff,
    id: i64,
    draft: Option<Partner>,
    errors: Vec<String>,
    notice: Option<String>,
) -> Response {
    let now = state.clock.now();
    let loaded = state
        .db
        .call(move |conn| {
            let partner = admin::partner(conn, id)?;
            let operators = admin::accounts(conn, Some(id), now)?;
            let kiosks = admin::kiosks_of(conn, id)?;
            Ok::<_, StoreError>((partner, operators, kiosks))
        })
        .await;
    match loaded {
        Ok((Some(partner), operators, kiosks)) => {
            let status = if errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                status,
                PartnerPage {
                    csrf: staff.csrf_token.clone(),
                    staff: Some(staff),
                    partner: draft.unwrap_or(partner),
                    operators,
                    kiosks,
                    errors,
                    notice,
                },
            )
                .into_response()
        }
        Ok((None, _, _)) => message(
            StatusCode::NOT_FOUND,
            "Ente sconosciuto",
            "Questo ente non esiste.",
        ),
        Err(e) => internal_error(e),
    }
}

pub async fn partner(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<i64>,
) -> Response {
    partner_page(&state, staff, id, None, Vec::new(), None).await
}

/// Create a partner body, from the list page.
pub async fn partner_create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<PartnerForm>,
) -> Response {
    partner_save(state, staff, peer, 0, form).await
}

/// Update a partner body.
pub async fn partner_update(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    Form(form): Form<PartnerForm>,
) -> Response {
    partner_save(state, staff, peer, id, form).await
}

async fn partner_save(
    state: AppState,
    staff: Staff,
    peer: SocketAddr,
    id: i64,
    form: PartnerForm,
) -> Response {
    let draft = form.partner(id);
    let now = state.clock.now();
    let (actor, source) = who(&staff, &peer);
    let to_save = draft.clone();
    let saved = state
        .db
        .call(move |conn| admin::save_partner(conn, &to_save, now, &actor, &source))
        .await;
    match saved {
        Ok(Ok(saved_id)) => {
            if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            Redirect::to(&format!("/admin/partners/{saved_id}")).into_response()
        }
        Ok(Err(error)) if id == 0 => message(
            StatusCode::BAD_REQUEST,
            "Ente non creato",
            &error.to_string(),
        ),
        Ok(Err(error)) => {
            partner_page(
                &state,
                staff,
                id,
                Some(draft),
                vec![error.to_string()],
                None,
            )
            .await
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct OperatorForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

pub async fn operator_create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    Form(form): Form<OperatorForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, _) = who(&staff, &peer);
    let created = state
        .db
        .call(move |conn| {
            accounts::create_user(
                conn,
                &form.username,
                &form.display_name,
                &form.password,
                Role::Operator,
                Some(id),
                now,
                &actor,
            )
        })
        .await;
    match created {
        Ok(Ok(_)) => {
            // Operators log in at their kiosks, which learn the accounts from the directory.
            if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            partner_page(
                &state,
                staff,
                id,
                None,
                Vec::new(),
                Some("Operatore creato.".into()),
            )
            .await
        }
        Ok(Err(error)) => {
            partner_page(&state, staff, id, None, vec![error.to_string()], None).await
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    /// Where to go back to.
    #[serde(default)]
    partner: Option<i64>,
}

pub async fn user_password(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(user): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let back = form.partner.unwrap_or(0);
    if form.password.chars().count() < accounts::MIN_PASSWORD_CHARS {
        let error = accounts::AccountError::WeakPassword.to_string();
        return partner_page(&state, staff, back, None, vec![error], None).await;
    }
    let now = state.clock.now();
    let (actor, source) = who(&staff, &peer);
    let done = state
        .db
        .call(move |conn| admin::reset_password(conn, user, &form.password, now, &actor, &source))
        .await;
    match done {
        Ok(true) => {
            if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            partner_page(
                &state,
                staff,
                back,
                None,
                Vec::new(),
                Some("Password cambiata.".into()),
            )
            .await
        }
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            "Utente sconosciuto",
            "Questo utente non esiste.",
        ),
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
    #[serde(default)]
    partner: Option<i64>,
}

pub async fn user_active(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(user): Path<i64>,
    Form(form): Form<ActiveForm>,
) -> Response {
    let active = form.active == "1";
    let now = state.clock.now();
    let (actor, source) = who(&staff, &peer);
    let done = state
        .db
        .call(move |conn| admin::set_active(conn, user, active, now, &actor, &source))
        .await;
    match done {
        Ok(_) => {
            if let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            Redirect::to(&format!("/admin/partners/{}", form.partner.unwrap_or(0))).into_response()
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct KioskCodeForm {
    #[serde(default)]
    label: String,
}

/// Issue a one-time enrolment code; it is shown once and only its hash is kept.
pub async fn kiosk_code(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    Form(form): Form<KioskCodeForm>,
) -> Response {
    if form.label.trim().is_empty() {
        return partner_page(
            &state,
            staff,
            id,
            None,
            vec!["indicare un nome per il chiosco (es. Sportello 1)".into()],
            None,
        )
        .await;
    }
    let now = state.clock.now();
    let (actor, _) = who(&staff, &peer);
    let issued = state
        .db
        .call(move |conn| sync::enrol::issue_code(conn, id, form.label.trim(), 7, now, &actor))
        .await;
    match issued {
        Ok(Ok(code)) => {
            let notice = format!(
                "Codice di attivazione del chiosco (valido 7 giorni, mostrato una sola volta): {code}"
            );
            partner_page(&state, staff, id, None, Vec::new(), Some(notice)).await
        }
        Ok(Err(error)) => {
            partner_page(&state, staff, id, None, vec![error.to_string()], None).await
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    partner: Option<i64>,
}

/// Revoke a kiosk: refused from its next connection, cut off within seconds if connected, its
/// leases returned.
pub async fn kiosk_revoke(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(kiosk): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, _) = who(&staff, &peer);
    let done = state
        .db
        .call(move |conn| sync::enrol::revoke(conn, &kiosk, now, &actor))
        .await;
    match done {
        Ok(Ok(())) => {
            Redirect::to(&format!("/admin/partners/{}", form.partner.unwrap_or(0))).into_response()
        }
        Ok(Err(error)) => message(
            StatusCode::NOT_FOUND,
            "Chiosco sconosciuto",
            &error.to_string(),
        ),
        Err(e) => internal_error(e),
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/permits.html")]
pub struct PermitsPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub ready: i64,
    pub imported: String,
    pub csv: String,
    pub errors: Vec<String>,
    /// (added, updated, unchanged) of the preview or of the import.
    pub counts: Option<(usize, usize, usize)>,
    pub rows: usize,
    pub imported_now: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct CsvForm {
    #[serde(default)]
    csv: String,
}

async fn permits_page(
    state: &AppState,
    staff: Staff,
    csv: String,
    errors: Vec<String>,
    counts: Option<(usize, usize, usize)>,
    rows: usize,
    imported_now: bool,
) -> Response {
    match state.db.call(|conn| admin::ready_summary(conn)).await {
        Ok((ready, imported)) => {
            let status = if errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                status,
                PermitsPage {
                    csrf: staff.csrf_token.clone(),
                    staff: Some(staff),
                    ready,
                    imported: imported.unwrap_or_else(|| "mai".into()),
                    csv,
                    errors,
                    counts,
                    rows,
                    imported_now,
                },
            )
                .into_response()
        }
        Err(e) => internal_error(e),
    }
}

pub async fn permits(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Response {
    permits_page(&state, staff, String::new(), Vec::new(), None, 0, false).await
}

/// Check the file and show what importing it would do; nothing is written.
pub async fn permits_preview(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<CsvForm>,
) -> Response {
    permits_run(state, staff, form, false).await
}

/// Import the file: all rows or none.
pub async fn permits_import(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<CsvForm>,
) -> Response {
    permits_run(state, staff, form, true).await
}

/// Parse the file (every bad row reported, nothing written), then preview or apply it.
async fn permits_run(state: AppState, staff: Staff, form: CsvForm, apply: bool) -> Response {
    let rows = match import::parse(form.csv.as_bytes()) {
        Ok(rows) => rows,
        Err(errors) => {
            let errors = errors.iter().map(|e| e.to_string()).collect();
            return permits_page(&state, staff, form.csv, errors, None, 0, false).await;
        }
    };
    let now = state.clock.now();
    let actor = staff.actor();
    let count = rows.len();
    let report = state
        .db
        .call(move |conn| {
            if apply {
                import::apply(conn, &rows, now, &actor)
            } else {
                import::dry_run(conn, &rows, now)
            }
        })
        .await;
    match report {
        Ok(report) => {
            // Kiosks check the list offline: send them the new one.
            if apply && let Err(e) = state.sync.republish(Vec::new(), Vec::new()).await {
                return internal_error(e);
            }
            let counts = Some((report.added, report.updated, report.unchanged));
            // After an import the text area is emptied: the file is in the list now.
            let csv = if apply { String::new() } else { form.csv };
            permits_page(&state, staff, csv, Vec::new(), counts, count, apply).await
        }
        Err(e) => internal_error(e),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppointmentsQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub q: String,
}

impl AppointmentsQuery {
    fn filter(&self) -> AppointmentFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AppointmentFilter {
            from: self.from.trim().parse().ok(),
            to: self.to.trim().parse().ok(),
            service: text(&self.service),
            status: text(&self.status),
            partner: None,
            text: self.q.trim().to_owned(),
        }
    }

    /// The same filters as a query string, for the export link.
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string([
            ("from", &self.from),
            ("to", &self.to),
            ("service", &self.service),
            ("status", &self.status),
            ("q", &self.q),
        ])
        .unwrap_or_default()
    }
}

/// Appointments listed on the page at most; the export has them all.
const PAGE_ROWS: usize = 500;

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/appointments.html")]
pub struct AppointmentsPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub query: AppointmentsQuery,
    pub services: Vec<(String, String)>,
    pub rows: Vec<admin::AppointmentRow>,
    pub more: bool,
    pub notice: Option<String>,
}

async fn appointments_page(
    state: &AppState,
    staff: Staff,
    query: AppointmentsQuery,
    notice: Option<String>,
) -> Response {
    let filter = query.filter();
    let loaded = state
        .db
        .call(move |conn| {
            let services = store::agenda::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect::<Vec<_>>();
            let rows = admin::appointments(conn, &filter, PAGE_ROWS + 1)?;
            Ok::<_, StoreError>((services, rows))
        })
        .await;
    match loaded {
        Ok((services, mut rows)) => {
            let more = rows.len() > PAGE_ROWS;
            rows.truncate(PAGE_ROWS);
            AppointmentsPage {
                csrf: staff.csrf_token.clone(),
                staff: Some(staff),
                query,
                services,
                rows,
                more,
                notice,
            }
            .into_response()
        }
        Err(e) => internal_error(e),
    }
}

pub async fn appointments(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<AppointmentsQuery>,
) -> Response {
    appointments_page(&state, staff, query, None).await
}

/// The appointments as CSV for Excel: `;`, UTF-8 with BOM, Italian headers.
pub async fn appointments_csv(
    State(state): State<AppState>,
    Query(query): Query<AppointmentsQuery>,
) -> Response {
    let filter = query.filter();
    let rows = match state
        .db
        .call(move |conn| admin::appointments(conn, &filter, usize::MAX))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return internal_error(e),
    };
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_writer(&mut out);
        let header = [
            "Data",
            "Ora",
            "Servizio",
            "Cognome",
            "Nome",
            "Telefono",
            "Ente",
            "Codice",
            "Stato",
            "Prenotato il",
            "Motivo annullamento",
        ];
        let mut result = writer.write_record(header);
        for r in &rows {
            if result.is_err() {
                break;
            }
            let date = r
                .date
                .parse::<Date>()
                .map(|d| d.strftime("%d/%m/%Y").to_string())
                .unwrap_or_else(|_| r.date.clone());
            result = writer.write_record(
                [
                    date.as_str(),
                    &r.time,
                    &r.service,
                    &r.surname,
                    &r.given_names,
                    &r.phone,
                    &r.partner,
                    &r.booking_code,
                    store::counter::status_label(&r.status),
                    &r.created_at,
                    &r.cancel_reason,
                ]
                .map(not_a_formula),
            );
        }
        if let Err(e) = result.and_then(|_| writer.flush().map_err(csv::Error::from)) {
            return internal_error(e);
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"appuntamenti.csv\"".to_owned(),
            ),
        ],
        out,
    )
        .into_response()
}

/// A cell Excel will not run as a formula: text starting with `=`, `+`, `-` or `@` gets a
/// leading apostrophe.
fn not_a_formula(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    reason: String,
}

/// Cancel an appointment with a reason; the kiosk that booked it shows it cancelled.
pub async fn appointment_cancel(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let now = state.clock.now();
    let (actor, source) = who(&staff, &peer);
    let done = state
        .db
        .call(move |conn| admin::cancel(conn, &id, &form.reason, now, &actor, &source))
        .await;
    let notice = match done {
        Ok(Ok((kiosk, service, date))) => {
            let kiosks = kiosk
                .and_then(|k| k.parse().ok())
                .map(coper_shared::documents::KioskId)
                .into_iter()
                .collect();
            let agendas = coper_shared::ids::ServiceId::parse(&service)
                .map(|s| vec![coper_shared::documents::DocName::agenda_for(&s, date)])
                .unwrap_or_default();
            if let Err(e) = state.sync.republish(agendas, kiosks).await {
                return internal_error(e);
            }
            state.counter_changed();
            "Prenotazione annullata.".to_owned()
        }
        Ok(Err(error)) => format!("Non annullata: {error}."),
        Err(e) => return internal_error(e),
    };
    appointments_page(&state, staff, AppointmentsQuery::default(), Some(notice)).await
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub before: Option<i64>,
}

const AUDIT_ROWS: usize = 200;

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub staff: Option<Staff>,
    pub csrf: String,
    pub query: AuditQuery,
    pub lines: Vec<admin::AuditLine>,
    pub next: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<AuditQuery>,
) -> Response {
    let filter = AuditFilter {
        actor: query.actor.clone(),
        action: query.action.clone(),
        from: query.from.trim().parse().ok(),
        to: query.to.trim().parse().ok(),
        before: query.before,
    };
    match state
        .db
        .call(move |conn| admin::audit_lines(conn, &filter, AUDIT_ROWS))
        .await
    {
        Ok(lines) => {
            let next = (lines.len() == AUDIT_ROWS).then(|| {
                let last = lines.last().map(|l| l.id).unwrap_or_default();
                serde_urlencoded::to_string([
                    ("actor", query.actor.as_str()),
                    ("action", &query.action),
                    ("from", &query.from),
                    ("to", &query.to),
                    ("before", &last.to_string()),
                ])
                .unwrap_or_default()
            });
            AuditPage {
                csrf: staff.csrf_token.clone(),
                staff: Some(staff),
                query,
                lines,
                next,
            }
            .into_response()
        }
        Err(e) => internal_error(e),
    }
}
