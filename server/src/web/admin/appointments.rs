//! Appointments: search by date, service, status, kiosk and name or code; export for Excel;
//! cancel one with a reason, or every future one the search found (a revoked kiosk's bookings
//! are listed here first, to be cancelled together). The kiosks that booked them show them
//! cancelled.

use axum::{
    extract::{Form, Path, Query},
    http::header,
    response::IntoResponse,
};
use coper_shared::jiff::civil::Date;
use serde::Deserialize;

use crate::{
    AppState,
    checkin::local_now,
    ops,
    store::{
        StoreError,
        appointments::{self, AppointmentFilter, AppointmentRow, AppointmentStatus},
        services,
    },
    web::page::{Frame, PageError, PageResult, StaffContext},
};

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
    /// A kiosk's id: its bookings only.
    #[serde(default)]
    pub kiosk: String,
    /// Set when a kiosk was just revoked: the page offers to cancel its bookings.
    #[serde(default)]
    pub revoked: String,
}

impl AppointmentsQuery {
    fn filter(&self) -> AppointmentFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AppointmentFilter {
            from: self.from.trim().parse().ok(),
            to: self.to.trim().parse().ok(),
            service: text(&self.service),
            status: AppointmentStatus::parse(self.status.trim()),
            partner: None,
            kiosk: text(&self.kiosk),
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
            ("kiosk", &self.kiosk),
        ])
        .unwrap_or_default()
    }
}

/// Appointments listed on the page at most; the export has them all.
const PAGE_ROWS: usize = 500;

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/appointments.html")]
pub struct AppointmentsPage {
    pub frame: Frame,
    pub query: AppointmentsQuery,
    pub services: Vec<(String, String)>,
    pub rows: Vec<AppointmentRow>,
    pub more: bool,
    pub notice: Option<String>,
    /// Bookings the search found that are still to come and only booked: what "cancel all" takes.
    pub cancellable: usize,
}

async fn appointments_page(
    cx: &StaffContext,
    query: AppointmentsQuery,
    notice: Option<String>,
) -> PageResult {
    let filter = query.filter();
    let now = cx.by.now;
    let (services, mut rows, cancellable) = cx
        .state
        .db
        .read(move |conn| {
            let services = services::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect::<Vec<_>>();
            let rows = appointments::search(conn, &filter, PAGE_ROWS + 1)?;
            let today = local_now(conn, now)?.1.date();
            let cancellable =
                appointments::search(conn, &filter.still_to_come(today), usize::MAX)?.len();
            Ok::<_, StoreError>((services, rows, cancellable))
        })
        .await?;
    let more = rows.len() > PAGE_ROWS;
    rows.truncate(PAGE_ROWS);
    Ok(AppointmentsPage {
        frame: cx.frame(),
        query,
        services,
        rows,
        more,
        notice,
        cancellable,
    }
    .into_response())
}

pub async fn appointments(cx: StaffContext, Query(query): Query<AppointmentsQuery>) -> PageResult {
    appointments_page(&cx, query, None).await
}

/// The appointments as CSV for Excel: `;`, UTF-8 with BOM, Italian headers.
pub async fn appointments_csv(
    axum::extract::State(state): axum::extract::State<AppState>,
    Query(query): Query<AppointmentsQuery>,
) -> PageResult {
    let filter = query.filter();
    let (rows, zone) = state
        .db
        .read(move |conn| {
            Ok::<_, crate::store::StoreError>((
                appointments::search(conn, &filter, usize::MAX)?,
                crate::web::zone_of(conn)?,
            ))
        })
        .await?;
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
            let date = day(&r.date);
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
                    r.status.label(),
                    &crate::web::local_moment(&r.created_at, &zone),
                    &r.cancel_reason,
                ]
                .map(not_a_formula),
            );
        }
        result
            .and_then(|_| writer.flush().map_err(csv::Error::from))
            .map_err(PageError::internal)?;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"appuntamenti.csv\"".to_owned(),
            ),
        ],
        out,
    )
        .into_response())
}

/// A cell Excel will not run as a formula: text that starts (after any blanks, tabs or line
/// breaks Excel skips) with `=`, `+`, `-`, `@` or their full-width forms gets a leading
/// apostrophe; so does text starting with a tab or a carriage return.
fn not_a_formula(cell: &str) -> String {
    const TRIGGERS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];
    let risky = cell.starts_with(['\t', '\r'])
        || cell
            .trim_start_matches([' ', '\t', '\r', '\n', '\u{3000}'])
            .starts_with(TRIGGERS);
    if risky {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::not_a_formula;

    #[test]
    fn cells_that_excel_could_run_are_neutralised() {
        for risky in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            " =1",
            "\n=1",
            "＝1+1",
            "＋1",
            "\u{3000}=1",
        ] {
            assert!(not_a_formula(risky).starts_with('\''), "{risky:?}");
        }
        for plain in ["Rossi", "De la Cruz", "K7QM-4XTA", "0382 000101", ""] {
            assert_eq!(not_a_formula(plain), plain);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    reason: String,
}

/// Cancel an appointment with a reason; the kiosk that booked it shows it cancelled.
pub async fn appointment_cancel(
    cx: StaffContext,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> PageResult {
    let by = cx.by.clone();
    let notice = match cx
        .state
        .perform(move |conn| ops::appointments::cancel(conn, &by, &id, &form.reason))
        .await?
    {
        Ok(()) => "Prenotazione annullata.".to_owned(),
        Err(error) => format!("Non annullata: {error}."),
    };
    appointments_page(&cx, AppointmentsQuery::default(), Some(notice)).await
}

#[derive(Debug, Deserialize)]
pub struct CancelAllForm {
    #[serde(flatten)]
    query: AppointmentsQuery,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// Cancel every future booking the search found, with one reason, once the administrator has
/// ticked the confirmation; the same page comes back with how many.
pub async fn appointments_cancel_all(
    cx: StaffContext,
    Form(form): Form<CancelAllForm>,
) -> PageResult {
    let query = AppointmentsQuery {
        revoked: String::new(),
        ..form.query
    };
    if form.confirm != "1" {
        let notice = "Non annullate: spuntare la conferma.".to_owned();
        return appointments_page(&cx, query, Some(notice)).await;
    }
    let (by, filter) = (cx.by.clone(), query.filter());
    let notice = match cx
        .state
        .perform(move |conn| ops::appointments::cancel_all(conn, &by, &filter, &form.reason))
        .await?
    {
        Ok(n) => format!("Prenotazioni annullate: {n}."),
        Err(error) => format!("Non annullate: {error}."),
    };
    appointments_page(&cx, query, Some(notice)).await
}

/// A day of the list as people read it: `23/11/2026` (the store keeps `2026-11-23`).
pub fn day(date: &str) -> String {
    date.parse::<Date>()
        .map(|d| d.strftime("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| date.to_owned())
}
