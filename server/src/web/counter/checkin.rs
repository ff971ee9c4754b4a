//! The check-in page: a scan (a form post of whatever the scanner typed) or a lookup by code or
//! name, the counter's verdict in large type, and the clerk's steps (check in, deliver, absent,
//! and undo the last one on the day it was taken).
//!
//! What a scan means and what the counter says of a booking is `crate::checkin`'s; the steps are
//! operations of `crate::ops`. This module only words the outcome for the clerk.

use axum::{
    extract::{Form, Path, Query},
    http::StatusCode,
    response::{IntoResponse, Redirect},
};
use coper_shared::booking_code;
use serde::Deserialize;

use crate::{
    checkin::{Assessment, Scan, describe, local_now, read_scan},
    ops::{self, appointments::Presented},
    store::{
        StoreError,
        appointments::{self as store, AppointmentStatus, CounterAppointment, Step},
        precheck as store_precheck,
    },
    web::{
        Paging, italian_date,
        page::{Frame, PageError, PageResult, StaffContext},
    },
};

/// What the check-in page shows after a scan or a lookup.
pub struct Outcome {
    /// `success`, `warning` or `danger`: the colour of the box.
    pub tone: &'static str,
    pub headline: String,
    pub detail: String,
    pub appointment: Option<Shown>,
    pub may_override: bool,
}

/// An appointment with its fields ready to show.
pub struct Shown {
    pub id: String,
    pub name: String,
    pub service: String,
    pub slot: String,
    pub status: String,
    pub code: String,
    pub partner: String,
    pub drawer: String,
    pub may_deliver: bool,
    pub may_no_show: bool,
    /// The button that undoes the last step, when it was taken today.
    pub undo: Option<&'static str>,
    pub ready_permit_id: Option<i64>,
}

/// `a` as the page shows it; `may_mark_absent`: its slot and the late window have passed;
/// `may_undo`: its last step was taken today.
pub(super) fn shown(a: &CounterAppointment, may_mark_absent: bool, may_undo: bool) -> Shown {
    let undo = match a.status {
        AppointmentStatus::Delivered => Some("Annulla la consegna"),
        AppointmentStatus::CheckedIn => Some("Annulla la presenza"),
        AppointmentStatus::NoShow => Some("Annulla l'assenza"),
        _ => None,
    };
    Shown {
        id: a.id.clone(),
        name: format!("{} {}", a.surname.to_uppercase(), a.given_names),
        service: a.service_name.clone(),
        slot: format!("{} alle {}", italian_date(a.date), a.time),
        status: a.status.label().into(),
        code: a.booking_code.clone(),
        partner: a.partner_name.clone().unwrap_or_else(|| "Questura".into()),
        drawer: a.drawer.clone().unwrap_or_default(),
        may_deliver: a.status == AppointmentStatus::CheckedIn,
        may_no_show: a.status == AppointmentStatus::Booked && may_mark_absent,
        undo: undo.filter(|_| may_undo),
        ready_permit_id: a.ready_permit_id,
    }
}

fn refusal(headline: &str, detail: &str) -> Outcome {
    Outcome {
        tone: "danger",
        headline: headline.into(),
        detail: detail.into(),
        appointment: None,
        may_override: false,
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "counter/checkin.html")]
pub struct CheckinPage {
    pub frame: Frame,
    pub today: String,
    pub outcome: Option<Outcome>,
    pub query: String,
    pub matches: Vec<Shown>,
    pub found: Option<Matches>,
    /// The contact form of the appointment on the page (its own page only).
    pub contact: Option<ContactForm>,
    /// The document pre-check of the person on the page, when there is one: what is still
    /// missing ("manca: …"), or that it is complete.
    pub precheck: Option<PrecheckShown>,
}

/// The pre-check as the counter reads it.
pub struct PrecheckShown {
    pub missing: Vec<String>,
    pub complete: bool,
}

/// How the person may be reached, as the counter's form shows and sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub consent: Option<String>,
    /// What is wrong with what was typed, in Italian; or that it was saved.
    #[serde(skip)]
    pub errors: Vec<String>,
    #[serde(skip)]
    pub saved: bool,
}

impl ContactForm {
    fn of(id: &str, c: &store::ContactOf) -> Self {
        Self {
            id: id.to_owned(),
            phone: c.phone.clone().unwrap_or_default(),
            email: c.email.clone().unwrap_or_default(),
            lang: c.lang.clone().unwrap_or_else(|| "it".into()),
            consent: c.consent.then(|| "1".into()),
            ..Self::default()
        }
    }

    /// The contact to record, or what is wrong (in Italian, for the clerk).
    fn checked(&self) -> Result<store::ContactOf, Vec<String>> {
        use coper_shared::contact;
        let mut errors = Vec::new();
        let phone = contact::optional_phone(&self.phone).unwrap_or_else(|_| {
            errors
                .push("Telefono non valido: il prefisso del paese (+39…) e da 8 a 15 cifre".into());
            None
        });
        let email = contact::optional_email(&self.email).unwrap_or_else(|_| {
            errors.push("Indirizzo e-mail non valido".into());
            None
        });
        let lang = coper_shared::notices::LANGUAGES
            .into_iter()
            .find(|l| *l == self.lang)
            .unwrap_or("it");
        let consent = self.consent.is_some();
        if consent && phone.is_none() && email.is_none() {
            errors.push("Per inviare messaggi serve un telefono o un'e-mail".to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(store::ContactOf {
            phone,
            email,
            lang: Some(lang.to_owned()),
            consent,
        })
    }
}

/// The check-in page for today, with `outcome` shown.
async fn checkin(cx: &StaffContext, outcome: Option<Outcome>) -> Result<CheckinPage, PageError> {
    let now = cx.by.now;
    let (_, local) = cx.state.db.call(move |conn| local_now(conn, now)).await?;
    let precheck = match outcome.as_ref().and_then(|o| o.appointment.as_ref()) {
        Some(a) => {
            let (id, permit) = (a.id.clone(), a.ready_permit_id);
            cx.state
                .db
                .read(move |conn| {
                    let added = crate::store::checklists::added_names(conn)?;
                    store_precheck::outstanding_for(conn, &id, permit, &added)
                })
                .await?
                .map(|summary| PrecheckShown {
                    complete: summary.complete,
                    missing: summary.lines("it"),
                })
        }
        None => None,
    };
    Ok(CheckinPage {
        precheck,
        frame: cx.frame(),
        today: italian_date(local.date()),
        outcome,
        query: String::new(),
        matches: Vec::new(),
        found: None,
        contact: None,
    })
}

pub async fn checkin_page(cx: StaffContext) -> PageResult {
    Ok(checkin(&cx, None).await?.into_response())
}

/// What the clerk reads when a scan names no booking to assess.
fn scan_refusal(scan: Scan) -> Outcome {
    let (headline, detail) = match scan {
        Scan::NotYetArrived { date, time } => {
            return Outcome {
                tone: "warning",
                headline: "Prenotazione non ancora arrivata".into(),
                detail: format!(
                    "Il codice è autentico (appuntamento {} alle {}), ma il chiosco non ha ancora trasmesso la prenotazione: l'ente potrebbe essere senza rete. Cercare per nome o riprovare più tardi.",
                    italian_date(date),
                    coper_shared::rules::hh_mm(time)
                ),
                appointment: None,
                may_override: false,
            };
        }
        Scan::UnknownCode(code) => (
            "Prenotazione sconosciuta",
            format!("Nessuna prenotazione con il codice {code}."),
        ),
        Scan::Found(..) => ("Operazione non riuscita", String::new()),
        Scan::NotACode => (
            "Codice non riconosciuto",
            "Non è un codice coper né un codice di prenotazione (8 caratteri, es. K7QM-4XTA).".into(),
        ),
        Scan::Unreadable => (
            "Codice illeggibile",
            "Il codice QR è danneggiato o incompleto: ripetere la lettura, o digitare il codice di prenotazione stampato sotto il QR.".into(),
        ),
        Scan::UnknownKiosk => (
            "Codice non valido",
            "Il codice è stato emesso da un chiosco sconosciuto.".into(),
        ),
        Scan::RevokedKiosk => (
            "Codice non valido: chiosco revocato",
            "Il chiosco che ha emesso questo codice è stato revocato. Verificare l'identità e cercare la prenotazione per nome.".into(),
        ),
        Scan::Forged => (
            "Codice contraffatto",
            "La firma del codice non corrisponde: il promemoria è stato alterato o falsificato.".into(),
        ),
    };
    refusal(headline, &detail)
}

/// What the clerk reads of a booking presented at the counter.
fn outcome_of(presented: &Presented) -> Outcome {
    let assessment = &presented.assessment;
    match &presented.checked_in {
        Some(Ok(updated)) => {
            return Outcome {
                tone: "success",
                headline: "Presenza registrata".into(),
                detail: describe(assessment),
                appointment: Some(shown(updated, false, true)),
                may_override: false,
            };
        }
        Some(Err(e)) => return refusal("Operazione non riuscita", &e.to_string()),
        None => {}
    }
    let tone = match assessment {
        Assessment::OnTime | Assessment::AlreadyCheckedIn { .. } => "info",
        Assessment::Cancelled { .. } => "danger",
        _ => "warning",
    };
    let headline = match assessment {
        Assessment::OnTime => "Prenotazione in orario",
        Assessment::AlreadyCheckedIn { .. } => "Già presente",
        Assessment::AlreadyDelivered => "Già consegnato",
        Assessment::Cancelled { .. } => "Prenotazione annullata",
        Assessment::Relocated { .. } => "Appuntamento spostato",
        Assessment::WrongDay { .. } => "Giorno sbagliato",
        Assessment::TooEarly { .. } => "In anticipo",
        Assessment::TooLate { .. } => "In ritardo",
    };
    Outcome {
        tone,
        headline: headline.into(),
        detail: describe(assessment),
        may_override: assessment.may_override() || *assessment == Assessment::OnTime,
        appointment: Some(shown(
            &presented.appointment,
            presented.may_mark_absent,
            presented.may_undo,
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    scan: String,
}

/// A scan: the person is checked in when everything is in order, otherwise the clerk reads why.
pub async fn scan(cx: StaffContext, Form(form): Form<ScanForm>) -> PageResult {
    let by = cx.by.clone();
    let outcome = cx
        .state
        .perform(move |conn| match read_scan(conn, &form.scan, by.now)? {
            Scan::Found(appointment, slot) => {
                let (presented, changes) =
                    ops::appointments::present(conn, &by, *appointment, slot, true)?;
                Ok((outcome_of(&presented), changes))
            }
            other => Ok((scan_refusal(other), ops::Changes::none())),
        })
        .await?;
    Ok(checkin(&cx, Some(outcome)).await?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    #[serde(default)]
    q: String,
    /// From 1.
    #[serde(default)]
    page: Option<usize>,
}

/// Bookings found by name shown on one page.
const PAGE_SIZE: usize = 20;

/// What a search by name found, for the page: where, and which page of how many.
pub struct Matches {
    /// "oggi" or "in tutti i giorni".
    pub scope: &'static str,
    pub paging: Paging,
}

/// Manual lookup: a booking code opens that booking; anything else searches names, today first.
pub async fn lookup(cx: StaffContext, Query(query): Query<LookupQuery>) -> PageResult {
    let q = query.q.trim().to_owned();
    if let Some(code) = booking_code::normalise(&q) {
        let found = cx
            .state
            .db
            .call(move |conn| store::by_code(conn, &code))
            .await?;
        if let Some(a) = found {
            return Ok(Redirect::to(&format!("/counter/appointments/{}", a.id)).into_response());
        }
    }
    let (typed, now) = (q.clone(), cx.by.now);
    let (page, offset) = Paging::asked(query.page, PAGE_SIZE);
    let (found, scope) = cx
        .state
        .db
        .read(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let today = store::search_by_name(conn, Some(local.date()), &typed, offset, PAGE_SIZE)?;
            if today.total == 0 {
                Ok::<_, StoreError>((
                    store::search_by_name(conn, None, &typed, offset, PAGE_SIZE)?,
                    "in tutti i giorni",
                ))
            } else {
                Ok((today, "oggi"))
            }
        })
        .await?;
    let outcome = (found.total == 0).then(|| {
        refusal(
            "Nessun risultato",
            "Nessuna prenotazione corrisponde alla ricerca.",
        )
    });
    let mut shown_page = checkin(&cx, outcome).await?;
    shown_page.matches = found.page.iter().map(|a| shown(a, false, false)).collect();
    shown_page.found = (found.total > 0).then(|| Matches {
        scope,
        paging: Paging::new("/counter/lookup", &q, found.total, page, PAGE_SIZE),
    });
    shown_page.query = q;
    Ok(shown_page.into_response())
}

pub async fn appointment_page(cx: StaffContext, Path(id): Path<String>) -> PageResult {
    let by = cx.by.clone();
    let key = id.clone();
    let contact = cx
        .state
        .db
        .read(move |conn| store::contact_of(conn, &key))
        .await?
        .map(|c| ContactForm::of(&id, &c));
    let outcome = cx
        .state
        .perform(move |conn| match store::by_id(conn, &id)? {
            Some(a) => {
                let (presented, changes) = ops::appointments::present(conn, &by, a, None, false)?;
                Ok((outcome_of(&presented), changes))
            }
            None => Ok((
                refusal(
                    "Prenotazione sconosciuta",
                    "Nessuna prenotazione con questo identificativo.",
                ),
                ops::Changes::none(),
            )),
        })
        .await?;
    let mut page = checkin(&cx, Some(outcome)).await?;
    page.contact = contact;
    Ok(page.into_response())
}

/// `POST /counter/appointments/{id}/contact`: the phone, e-mail, language and consent the person
/// gave at the counter (or on the phone to the office), checked; the page again, saying so.
pub async fn set_contact(
    cx: StaffContext,
    Path(id): Path<String>,
    Form(mut form): Form<ContactForm>,
) -> PageResult {
    form.id = id.clone();
    let checked = form.checked();
    let status = match checked {
        Ok(contact) => {
            let by = cx.by.clone();
            let key = id.clone();
            let saved = cx
                .state
                .perform(move |conn| ops::appointments::set_contact(conn, &by, &key, &contact))
                .await?;
            if saved {
                form.saved = true;
            } else {
                form.errors
                    .push("Prenotazione conclusa o annullata: contatti non registrati".into());
            }
            if saved {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            }
        }
        Err(errors) => {
            form.errors = errors;
            StatusCode::BAD_REQUEST
        }
    };
    let outcome = cx
        .state
        .db
        .read(move |conn| store::by_id(conn, &id))
        .await?
        .map(|a| Outcome {
            tone: "info",
            headline: "Contatti per i messaggi".into(),
            detail: String::new(),
            appointment: Some(shown(&a, false, false)),
            may_override: false,
        });
    let mut page = checkin(&cx, outcome).await?;
    page.contact = Some(form);
    Ok((status, page).into_response())
}

/// Check in (also overriding a warning), deliver, mark absent, or undo the last step.
pub async fn take_step(cx: StaffContext, Path((id, step)): Path<(String, String)>) -> PageResult {
    let step = match step.as_str() {
        "check-in" => Step::CheckIn,
        "deliver" => Step::Deliver,
        "no-show" => Step::NoShow,
        "undo" => Step::Undo,
        _ => {
            return Err(PageError::message(
                StatusCode::NOT_FOUND,
                "Pagina non trovata",
                "Operazione sconosciuta.",
            ));
        }
    };
    let by = cx.by.clone();
    let taken = cx
        .state
        .perform(move |conn| ops::appointments::take_step(conn, &by, &id, step))
        .await?;
    let outcome = match taken {
        Ok(updated) => Outcome {
            tone: "success",
            headline: match step {
                Step::CheckIn => "Presenza registrata",
                Step::Deliver => "Permesso consegnato",
                Step::NoShow => "Segnato come assente",
                Step::Undo => "Operazione annullata",
            }
            .into(),
            detail: String::new(),
            appointment: Some(shown(&updated, false, step != Step::Undo)),
            may_override: false,
        },
        Err(e) => refusal("Operazione non riuscita", &e.to_string()),
    };
    Ok(checkin(&cx, Some(outcome)).await?.into_response())
}
