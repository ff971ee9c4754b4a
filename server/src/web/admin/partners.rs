//! Partner bodies, their operators (who log in at the kiosks) and their kiosks (enrolment codes,
//! revocation). Everything here reaches the kiosks, through the operations' changes.

use axum::{
    extract::{Form, Path},
    http::StatusCode,
    response::{IntoResponse, Redirect},
};
use coper_shared::jiff::Timestamp;
use serde::Deserialize;

use crate::{
    accounts::{self, AccountError},
    ops,
    store::{
        StoreError, kiosks,
        partners::{self, Partner},
        settings, users,
    },
    web::page::{Frame, PageError, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/partners.html")]
pub struct PartnersPage {
    pub frame: Frame,
    pub partners: Vec<Partner>,
}

pub async fn partners(cx: StaffContext) -> PageResult {
    let partners = cx.state.db.read(partners::partners).await?;
    Ok(PartnersPage {
        frame: cx.frame(),
        partners,
    }
    .into_response())
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/partner.html")]
pub struct PartnerPage {
    pub frame: Frame,
    pub partner: Partner,
    pub operators: Vec<users::Account>,
    pub kiosks: Vec<KioskRow>,
    pub errors: Vec<String>,
    /// A message after an action: a new enrolment code, a password reset.
    pub notice: Option<String>,
    /// The new operator's username and name as typed, when the form comes back with an error.
    pub operator: (String, String),
}

/// A kiosk as its partner body's page lists it: when it was last heard from, in words, and
/// whether that is longer ago than the settings allow.
pub struct KioskRow {
    pub kiosk: kiosks::Kiosk,
    pub contact: String,
    pub silent: bool,
}

/// How long ago `then` was, as a person says it: "adesso", "2 min fa", "3 h fa", "5 giorni fa".
fn ago(now: Timestamp, then: Timestamp) -> String {
    let minutes = (now.as_second() - then.as_second()).max(0) / 60;
    match minutes {
        0 => "adesso".to_owned(),
        1..60 => format!("{minutes} min fa"),
        60..1440 => format!("{} h fa", minutes / 60),
        _ if minutes < 2880 => "ieri".to_owned(),
        _ => format!("{} giorni fa", minutes / 1440),
    }
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
    #[serde(default)]
    quota_day: String,
    #[serde(default)]
    quota_week: String,
    #[serde(default)]
    kiosk_quota_day: String,
    #[serde(default)]
    kiosk_quota_week: String,
}

impl PartnerForm {
    fn partner(&self, id: i64) -> Partner {
        // A number left empty takes the default; anything else that is not one is refused.
        let defaults = Partner::draft();
        let number = |text: &str, default: i64| match text.trim() {
            "" => default,
            t => t.parse().unwrap_or(-1),
        };
        Partner {
            id,
            name: self.name.clone(),
            address: self.address.clone(),
            city: self.city.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            opening_hours: self.opening_hours.clone(),
            active: self.active.is_some(),
            lease_places_per_day: number(&self.lease_places_per_day, defaults.lease_places_per_day),
            quota_day: number(&self.quota_day, defaults.quota_day),
            quota_week: number(&self.quota_week, defaults.quota_week),
            kiosk_quota_day: number(&self.kiosk_quota_day, defaults.kiosk_quota_day),
            kiosk_quota_week: number(&self.kiosk_quota_week, defaults.kiosk_quota_week),
        }
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

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    /// Where to go back to.
    #[serde(default)]
    partner: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
    #[serde(default)]
    partner: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct KioskCodeForm {
    #[serde(default)]
    label: String,
}

/// The partner body's page: its fields (or the draft that failed), operators and kiosks.
async fn partner_page(
    cx: &StaffContext,
    id: i64,
    draft: Option<Partner>,
    errors: Vec<String>,
    notice: Option<String>,
) -> PageResult {
    partner_page_typed(cx, id, draft, errors, notice, Default::default()).await
}

/// The partner body's page, the new operator's form holding what was typed.
async fn partner_page_typed(
    cx: &StaffContext,
    id: i64,
    draft: Option<Partner>,
    errors: Vec<String>,
    notice: Option<String>,
    operator: (String, String),
) -> PageResult {
    let now = cx.by.now;
    let (partner, operators, kiosks, silent_after) = cx
        .state
        .db
        .read(move |conn| {
            let partner = partners::partner(conn, id)?;
            let operators = users::accounts(conn, Some(id), now)?;
            let kiosks = kiosks::kiosks_of(conn, id)?;
            let silent_after = settings::settings(conn)?.map_or(30, |s| s.kiosk_silent_minutes);
            Ok::<_, StoreError>((partner, operators, kiosks, silent_after))
        })
        .await?;
    let kiosks = kiosks
        .into_iter()
        .map(|kiosk| {
            let seen = kiosk
                .last_seen_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok());
            KioskRow {
                contact: seen.map_or_else(|| "mai".to_owned(), |t| ago(now, t)),
                silent: kiosk.revoked_at.is_none()
                    && seen.is_none_or(|t| (now.as_second() - t.as_second()) / 60 > silent_after),
                kiosk,
            }
        })
        .collect();
    let Some(partner) = partner else {
        return Err(unknown_partner());
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((
        status,
        PartnerPage {
            frame: cx.frame(),
            partner: draft.unwrap_or(partner),
            operators,
            kiosks,
            errors,
            notice,
            operator,
        },
    )
        .into_response())
}

fn unknown_partner() -> PageError {
    PageError::message(
        StatusCode::NOT_FOUND,
        "Ente sconosciuto",
        "Questo ente non esiste.",
    )
}

pub async fn partner(cx: StaffContext, Path(id): Path<i64>) -> PageResult {
    partner_page(&cx, id, None, Vec::new(), None).await
}

/// Create a partner body, from the list page.
pub async fn partner_create(cx: StaffContext, Form(form): Form<PartnerForm>) -> PageResult {
    partner_save(cx, 0, form).await
}

/// Update a partner body.
pub async fn partner_update(
    cx: StaffContext,
    Path(id): Path<i64>,
    Form(form): Form<PartnerForm>,
) -> PageResult {
    partner_save(cx, id, form).await
}

async fn partner_save(cx: StaffContext, id: i64, form: PartnerForm) -> PageResult {
    let draft = form.partner(id);
    let (by, to_save) = (cx.by.clone(), draft.clone());
    match cx
        .state
        .perform(move |conn| ops::partners::save(conn, &by, &to_save))
        .await?
    {
        Ok(saved_id) => Ok(Redirect::to(&format!("/admin/partners/{saved_id}")).into_response()),
        Err(error) if id == 0 => Err(PageError::message(
            StatusCode::BAD_REQUEST,
            "Ente non creato",
            &error.to_string(),
        )),
        Err(error) => partner_page(&cx, id, Some(draft), vec![error.to_string()], None).await,
    }
}

pub async fn operator_create(
    cx: StaffContext,
    Path(id): Path<i64>,
    Form(form): Form<OperatorForm>,
) -> PageResult {
    let by = cx.by.clone();
    let typed = (form.username.clone(), form.display_name.clone());
    let created = cx
        .state
        .perform(move |conn| {
            ops::partners::create_operator(
                conn,
                &by,
                id,
                &form.username,
                &form.display_name,
                &form.password,
            )
        })
        .await?;
    match created {
        // Operators log in at their kiosks, which learn the accounts from their documents.
        Ok(_) => partner_page(&cx, id, None, Vec::new(), Some("Operatore creato.".into())).await,
        // What was typed stays (but the password), beside the reason.
        Err(error) => partner_page_typed(&cx, id, None, vec![error.to_string()], None, typed).await,
    }
}

pub async fn user_password(
    cx: StaffContext,
    Path(user): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let back = form.partner.unwrap_or(0);
    if form.password.chars().count() < accounts::MIN_PASSWORD_CHARS {
        let error = AccountError::WeakPassword.to_string();
        return partner_page(&cx, back, None, vec![error], None).await;
    }
    // Argon2 runs here, on the blocking pool, not under the database's lock.
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&form.password))
        .await
        .map_err(PageError::internal)?;
    let by = cx.by.clone();
    let done = cx
        .state
        .perform(move |conn| ops::partners::reset_password(conn, &by, user, &hash))
        .await?;
    if !done {
        return Err(PageError::message(
            StatusCode::NOT_FOUND,
            "Utente sconosciuto",
            "Questo utente non esiste.",
        ));
    }
    partner_page(
        &cx,
        back,
        None,
        Vec::new(),
        Some("Password cambiata.".into()),
    )
    .await
}

pub async fn user_active(
    cx: StaffContext,
    Path(user): Path<i64>,
    Form(form): Form<ActiveForm>,
) -> PageResult {
    let active = form.active == "1";
    let by = cx.by.clone();
    cx.state
        .perform(move |conn| ops::partners::set_active(conn, &by, user, active))
        .await?;
    Ok(Redirect::to(&format!("/admin/partners/{}", form.partner.unwrap_or(0))).into_response())
}

pub async fn kiosk_code(
    cx: StaffContext,
    Path(id): Path<i64>,
    Form(form): Form<KioskCodeForm>,
) -> PageResult {
    if form.label.trim().is_empty() {
        let error = "indicare un nome per il chiosco (es. Sportello 1)".to_owned();
        return partner_page(&cx, id, None, vec![error], None).await;
    }
    let by = cx.by.clone();
    let issued = cx
        .state
        .perform(move |conn| ops::kiosks::issue_code(conn, &by, id, form.label.trim(), 7))
        .await?;
    match issued {
        Ok(code) => {
            let notice = format!(
                "Codice di attivazione del chiosco (valido 7 giorni, mostrato una sola volta): {code}"
            );
            partner_page(&cx, id, None, Vec::new(), Some(notice)).await
        }
        Err(error) => partner_page(&cx, id, None, vec![error.to_string()], None).await,
    }
}

/// Revoke a kiosk: refused from its next connection, cut off within seconds if connected, its
/// leases returned to the pool (and the agendas holding them republished). Then its bookings
/// still to come are listed, with the offer to cancel them all.
pub async fn kiosk_revoke(cx: StaffContext, Path(kiosk): Path<String>) -> PageResult {
    let by = cx.by.clone();
    let kiosk_id = kiosk.clone();
    match cx
        .state
        .perform(move |conn| ops::kiosks::revoke(conn, &by, &kiosk))
        .await?
    {
        // Its bookings stay valid: list them, with the offer to cancel them together.
        Ok(()) => Ok(Redirect::to(&format!(
            "/admin/appointments?status=booked&revoked=1&{}",
            serde_urlencoded::to_string([("kiosk", &kiosk_id)]).unwrap_or_default()
        ))
        .into_response()),
        Err(error) => Err(PageError::message(
            StatusCode::NOT_FOUND,
            "Chiosco sconosciuto",
            &error.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn last_contact_reads_as_a_person_says_it() {
        let now: coper_shared::jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let before = |seconds: i64| {
            coper_shared::jiff::Timestamp::from_second(now.as_second() - seconds).unwrap()
        };
        assert_eq!(ago(now, before(20)), "adesso");
        assert_eq!(ago(now, before(120)), "2 min fa");
        assert_eq!(ago(now, before(3 * 3600 + 5)), "3 h fa");
        assert_eq!(ago(now, before(30 * 3600)), "ieri");
        assert_eq!(ago(now, before(5 * 86400)), "5 giorni fa");
        assert_eq!(
            ago(now, before(-60)),
            "adesso",
            "a clock ahead is not the future"
        );
    }
}
