//! The notices sent to people about their bookings: first those given up after the last
//! attempt (with the reason), then the latest, newest first — what, to whom, in which language,
//! through which channel. With the log channel (the demo), this page is where the messages are
//! read. `/admin/notices/templates` edits their texts, language by language; each text is
//! checked when it is saved (a placeholder missing or unknown is refused then, not at sending).

use axum::{
    extract::{Form, Query},
    http::StatusCode,
    response::IntoResponse,
};
use coper_shared::notices::{Facts, LANGUAGES, NoticeKind, fill, sms_cost, template};
use serde::Deserialize;

use crate::{
    store::notices,
    web::page::{Frame, PageResult, StaffContext},
};

/// Notices shown.
const SHOWN: usize = 200;

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/notices.html")]
pub struct NoticesPage {
    pub frame: Frame,
    pub failed: Vec<notices::Listed>,
    pub notices: Vec<notices::Listed>,
}

/// `GET /admin/notices`.
pub async fn notices(cx: StaffContext) -> PageResult {
    let (mut failed, mut notices, zone) = cx
        .state
        .db
        .read(|conn| {
            Ok::<_, crate::store::StoreError>((
                notices::latest(conn, SHOWN, true)?,
                notices::latest(conn, SHOWN, false)?,
                crate::web::zone_of(conn)?,
            ))
        })
        .await?;
    for n in failed.iter_mut().chain(notices.iter_mut()) {
        n.created_at = crate::web::local_moment(&n.created_at, &zone);
    }
    Ok(NoticesPage {
        frame: cx.frame(),
        failed,
        notices,
    }
    .into_response())
}

/// One message's text in the editor.
pub struct TemplateRow {
    pub kind: &'static str,
    pub text: String,
    pub shipped: &'static str,
    pub edited: bool,
    pub error: Option<String>,
    /// What it costs as an SMS, filled with sample facts: "2 SMS (UCS-2)".
    pub cost: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/notice_templates.html")]
pub struct TemplatesPage {
    pub frame: Frame,
    pub lang: String,
    pub languages: &'static [&'static str],
    pub rows: Vec<TemplateRow>,
    pub saved: bool,
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    pub lang: Option<String>,
}

fn chosen(lang: Option<&str>) -> &'static str {
    LANGUAGES
        .iter()
        .find(|l| Some(**l) == lang)
        .copied()
        .unwrap_or("it")
}

fn cost(text: &str) -> String {
    // Filled as a real message would be: a long code, a date, a place, a link.
    let c = sms_cost(&fill(text, &Facts::sample()));
    format!(
        "{} SMS ({})",
        c.parts,
        if c.ucs2 { "UCS-2" } else { "GSM-7" }
    )
}

fn rows(lang: &'static str, edited: &[(String, String, String)]) -> Vec<TemplateRow> {
    NoticeKind::ALL
        .into_iter()
        .map(|kind| {
            let shipped = template(lang, kind).unwrap_or_default();
            let mine = edited
                .iter()
                .find(|(l, k, _)| l == lang && k == kind.key())
                .map(|(_, _, t)| t.clone());
            let text = mine.clone().unwrap_or_else(|| shipped.to_owned());
            TemplateRow {
                kind: kind.key(),
                cost: cost(&text),
                text,
                shipped,
                edited: mine.is_some(),
                error: None,
            }
        })
        .collect()
}

/// `GET /admin/notices/templates?lang=`.
pub async fn templates(cx: StaffContext, Query(q): Query<LangQuery>) -> PageResult {
    let lang = chosen(q.lang.as_deref());
    let edited = cx.state.db.read(notices::edited_templates).await?;
    Ok(TemplatesPage {
        frame: cx.frame(),
        lang: lang.to_owned(),
        languages: &LANGUAGES,
        rows: rows(lang, &edited),
        saved: false,
    }
    .into_response())
}

/// `POST /admin/notices/templates`: every text of one language; each checked, the good ones
/// saved, the bad ones shown again with what is wrong.
pub async fn templates_save(
    cx: StaffContext,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let lang = chosen(field("lang").as_deref());
    let texts: Vec<(NoticeKind, String)> = NoticeKind::ALL
        .into_iter()
        .filter_map(|kind| field(kind.key()).map(|text| (kind, text)))
        .collect();
    let by = cx.by.clone();
    let outcomes = cx
        .state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let mut outcomes = Vec::new();
            for (kind, text) in &texts {
                let outcome =
                    notices::save_template(&tx, lang, *kind, text, by.now, &by.name, &by.source)?;
                outcomes.push((*kind, text.clone(), outcome.err().map(|e| e.to_string())));
            }
            tx.commit()?;
            Ok::<_, crate::store::StoreError>(outcomes)
        })
        .await?;
    let edited = cx.state.db.read(notices::edited_templates).await?;
    let mut rows = rows(lang, &edited);
    let mut refused = false;
    for (kind, text, error) in outcomes {
        if let (Some(error), Some(row)) = (error, rows.iter_mut().find(|r| r.kind == kind.key())) {
            refused = true;
            row.cost = cost(&text);
            row.text = text;
            row.error = Some(error);
        }
    }
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        TemplatesPage {
            frame: cx.frame(),
            lang: lang.to_owned(),
            languages: &LANGUAGES,
            rows,
            saved: !refused,
        },
    )
        .into_response())
}
