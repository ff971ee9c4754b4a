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
    let lines = cx
        .state
        .db
        .read(move |conn| audit::audit_lines(conn, &filter, AUDIT_ROWS))
        .await?;
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
