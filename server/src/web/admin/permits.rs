//! The ready-permit list: import from the national system's CSV with a preview (every bad row
//! reported, nothing written until the whole file is right).

use axum::{extract::Form, http::StatusCode, response::IntoResponse};
use serde::Deserialize;

use crate::{
    import::{self, ReadyRow},
    ops,
    store::ready,
    web::page::{Frame, PageError, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/permits.html")]
pub struct PermitsPage {
    pub frame: Frame,
    pub ready: i64,
    pub imported: String,
    pub csv: String,
    pub errors: Vec<String>,
    /// (added, updated, unchanged) of the preview or of the import.
    pub counts: Option<(usize, usize, usize)>,
    pub rows: usize,
    pub imported_now: bool,
    /// The first rows as read, in the preview: names as they will be stored.
    pub sample: Vec<ReadyRow>,
}

/// Rows of the file shown in the preview, so the administrator sees the names as read.
const SAMPLE_ROWS: usize = 20;

#[derive(Debug, Default, Deserialize)]
pub struct CsvForm {
    #[serde(default)]
    csv: String,
}

/// What the page shows besides the list's summary.
#[derive(Default)]
struct Shown {
    csv: String,
    errors: Vec<String>,
    counts: Option<(usize, usize, usize)>,
    rows: usize,
    imported_now: bool,
    sample: Vec<ReadyRow>,
}

async fn permits_page(cx: &StaffContext, shown: Shown) -> PageResult {
    let (ready, imported) = cx
        .state
        .db
        .read(|conn| {
            let (ready, imported) = ready::summary(conn)?;
            let zone = crate::web::zone_of(conn)?;
            Ok::<_, crate::store::StoreError>((
                ready,
                imported.map(|i| crate::web::local_moment(&i, &zone)),
            ))
        })
        .await?;
    let status = if shown.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((
        status,
        PermitsPage {
            frame: cx.frame(),
            ready,
            imported: imported.unwrap_or_else(|| "mai".into()),
            csv: shown.csv,
            errors: shown.errors,
            counts: shown.counts,
            rows: shown.rows,
            imported_now: shown.imported_now,
            sample: shown.sample,
        },
    )
        .into_response())
}

pub async fn permits(cx: StaffContext) -> PageResult {
    permits_page(&cx, Shown::default()).await
}

/// Check the file and show what importing it would do; nothing is written.
pub async fn permits_preview(cx: StaffContext, Form(form): Form<CsvForm>) -> PageResult {
    permits_run(cx, form, false).await
}

/// Import the file: all rows or none.
pub async fn permits_import(cx: StaffContext, Form(form): Form<CsvForm>) -> PageResult {
    permits_run(cx, form, true).await
}

/// Parse the file (every bad row reported, nothing written), then preview or apply it.
async fn permits_run(cx: StaffContext, form: CsvForm, apply: bool) -> PageResult {
    let rows = match import::parse(form.csv.as_bytes()) {
        Ok(rows) => rows,
        Err(errors) => {
            let errors = errors.iter().map(|e| e.to_string()).collect();
            return permits_page(
                &cx,
                Shown {
                    csv: form.csv,
                    errors,
                    ..Shown::default()
                },
            )
            .await;
        }
    };
    let by = cx.by.clone();
    let count = rows.len();
    let sample: Vec<ReadyRow> = if apply {
        Vec::new()
    } else {
        rows.iter().take(SAMPLE_ROWS).cloned().collect()
    };
    let report = if apply {
        // Birth dates new to the list are stretched first, on the blocking pool, so the import
        // holds the writing connection only to write.
        let births: Vec<String> = rows.iter().map(|r| r.birth_date.clone()).collect();
        let now = by.now;
        let (stretch, missing) = cx
            .state
            .db
            .read(move |conn| import::births_to_stretch(conn, births, now))
            .await?;
        let stretched =
            tokio::task::spawn_blocking(move || import::stretch_births(&stretch, missing))
                .await
                .map_err(PageError::internal)?;
        cx.state
            .perform(move |conn| ops::ready::import(conn, &by, &rows, &stretched))
            .await?
    } else {
        cx.state
            .db
            .call(move |conn| import::dry_run(conn, &rows, by.now))
            .await?
    };
    permits_page(
        &cx,
        Shown {
            // After an import the text area is emptied: the file is in the list now.
            csv: if apply { String::new() } else { form.csv },
            errors: Vec::new(),
            counts: Some((report.added, report.updated, report.unchanged)),
            rows: count,
            imported_now: apply,
            sample,
        },
    )
    .await
}
