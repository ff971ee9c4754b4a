//! The audit log, newest first, filtered by who, what and when, a page at a time.

use axum::{extract::Query, response::IntoResponse};
use serde::Deserialize;

use crate::{
    store::audit::{self, AuditFilter, AuditLine},
    web::page::{Frame, PageResult, StaffContext},
};

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

/// What an action of the log means, in Italian (the code itself for one not listed here).
pub fn action_label(action: &str) -> &str {
    match action {
        "agenda.day_closed" => "giorno chiuso",
        "appointment.cancelled" => "prenotazione annullata",
        "appointment.check_in_undone" => "accettazione annullata",
        "appointment.checked_in" => "accettazione allo sportello",
        "appointment.contact_set" => "recapito della persona registrato",
        "appointment.delivered" => "permesso consegnato",
        "appointment.delivery_undone" => "consegna annullata",
        "appointment.no_show" => "assente",
        "appointment.no_show_undone" => "assenza annullata",
        "appointment.relocated" => "prenotazione spostata",
        "appointments.bulk_cancelled" => "prenotazioni annullate insieme",
        "contacts.forgotten" => "recapiti cancellati (conservazione scaduta)",
        "kiosk.code_issued" => "codice di attivazione chiosco emesso",
        "kiosk.code_revoked" => "codice di attivazione ritirato",
        "kiosk.enrolled" => "chiosco attivato",
        "kiosk.revoked" => "chiosco revocato",
        "login.failed" => "accesso rifiutato",
        "login.locked" => "account bloccato per troppi tentativi",
        "notice_template.saved" => "testo dei messaggi modificato",
        "notices.opted_out" => "la persona non vuole più messaggi",
        "partner.created" => "ente creato",
        "partner.updated" => "ente modificato",
        "precheck.answer_added" => "risposta pubblicata",
        "precheck.answer_retired" => "risposta ritirata",
        "precheck.checklist_deleted" => "lista di controllo eliminata",
        "precheck.checklist_saved" => "lista di controllo salvata",
        "precheck.document_added" => "documento aggiunto all'elenco",
        "precheck.document_retired" => "documento ritirato dall'elenco",
        "precheck.link_renewed" => "nuovo collegamento per la persona",
        "precheck.marked" => "stato di un documento segnato",
        "precheck.opened" => "verifica documenti aperta",
        "precheck.state" => "stato della verifica documenti",
        "precheck.upload_viewed" => "documento della persona visto",
        "ready.corrected" => "voce dei permessi pronti corretta",
        "ready.removed" => "voce dei permessi pronti tolta",
        "ready_permits.imported" => "elenco dei permessi pronti caricato",
        "service.created" => "servizio creato",
        "service.rules_saved" => "orari del servizio salvati",
        "settings.saved" => "impostazioni salvate",
        "user.activated" => "account riattivato",
        "user.created" => "account creato",
        "user.deactivated" => "account disattivato",
        "user.password_reset" => "password reimpostata",
        other => other,
    }
}

/// A line's details as people read them: "documento: passport · stato: valid" rather than JSON.
fn readable_detail(detail: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(detail)
    else {
        return detail.to_owned();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub frame: Frame,
    pub query: AuditQuery,
    pub lines: Vec<AuditLine>,
    pub next: Option<String>,
}

pub async fn audit(cx: StaffContext, Query(query): Query<AuditQuery>) -> PageResult {
    let filter = AuditFilter {
        actor: query.actor.clone(),
        action: query.action.clone(),
        from: query.from.trim().parse().ok(),
        to: query.to.trim().parse().ok(),
        before: query.before,
    };
    let (mut lines, zone) = cx
        .state
        .db
        .read(move |conn| {
            Ok::<_, crate::store::StoreError>((
                audit::audit_lines(conn, &filter, AUDIT_ROWS)?,
                crate::web::zone_of(conn)?,
            ))
        })
        .await?;
    // As people read them: local time, the action in words, the details as "what: value".
    for line in &mut lines {
        line.at = crate::web::local_moment(&line.at, &zone);
        line.detail = readable_detail(&line.detail);
    }
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
    Ok(AuditPage {
        frame: cx.frame(),
        query,
        lines,
        next,
    }
    .into_response())
}
