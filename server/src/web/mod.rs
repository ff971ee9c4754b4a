//! The server-rendered web pages: the public site (home, status check) and the staff's (login,
//! counter, administration).
//!
//! Pages are askama templates in `server/templates/` (compile-time checked, HTML auto-escaped),
//! styled with Bootstrap Italia, which is vendored and served from the binary under `/static/`:
//! nothing is fetched at run time. Forms post back to the server; a little JavaScript adds the
//! live day view and keeps the scanner's field focused, and every page works without it.
//!
//! Access is decided per route group, never per handler: [`Pages`] records every route with the
//! roles it admits and wraps it in [`auth::guard`], so no handler can forget to check, and a test
//! walks [`Pages::routes`] to prove each refuses anonymous and wrong-role requests.

pub mod admin;
pub mod auth;
pub mod counter;
pub mod documents;
pub mod i18n;
pub mod page;
pub mod precheck;
pub mod public;

use axum::{
    Router,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use coper_shared::jiff::civil::Date;

use crate::{AppState, accounts::Role};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Any logged-in staff member.
    Staff,
    /// Counter staff and administrators.
    Counter,
    /// Pre-check staff and administrators.
    Precheck,
    /// Administrators only.
    Admin,
}

impl Access {
    pub fn admits(self, role: Role) -> bool {
        match self {
            Self::Public => true,
            Self::Staff => matches!(role, Role::Counter | Role::Precheck | Role::Admin),
            Self::Counter => matches!(role, Role::Counter | Role::Admin),
            Self::Precheck => matches!(role, Role::Precheck | Role::Admin),
            Self::Admin => role == Role::Admin,
        }
    }
}

/// One route of the pages, as recorded for the access test.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// The pages' router, built route by route so that each carries its access rule.
pub struct Pages {
    handlers: Vec<(&'static str, Access, MethodRouter<AppState>)>,
    routes: Vec<RouteInfo>,
}

impl Pages {
    fn new() -> Self {
        Self {
            handlers: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Add `path` for `methods` (the methods the route answers, for the record), admitting `access`.
    fn add(
        mut self,
        path: &'static str,
        methods: &[Method],
        access: Access,
        route: MethodRouter<AppState>,
    ) -> Self {
        for method in methods {
            self.routes.push(RouteInfo {
                method: method.clone(),
                path,
                access,
            });
        }
        self.handlers.push((path, access, route));
        self
    }

    /// Every route of the pages, with its access rule.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The router, every route behind [`auth::guard`] with its access rule.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        self.handlers
            .into_iter()
            .fold(Router::new(), |router, (path, access, route)| {
                let guard = axum::middleware::from_fn_with_state(
                    state.clone(),
                    move |axum::extract::State(state): axum::extract::State<AppState>,
                          req: axum::extract::Request,
                          next: axum::middleware::Next| {
                        auth::guard(state, access, req, next)
                    },
                );
                router.route(path, route.route_layer(guard))
            })
    }
}

/// All pages.
pub fn pages() -> Pages {
    use Method as M;
    use axum::routing::post;
    Pages::new()
        .add(
            "/static/{*file}",
            &[M::GET],
            Access::Public,
            get(static_file),
        )
        .add("/", &[M::GET], Access::Public, get(public::home))
        .add(
            "/status-check",
            &[M::GET, M::POST],
            Access::Public,
            get(public::status_form).post(public::status_check),
        )
        .add(
            "/status-check/notify",
            &[M::POST],
            Access::Public,
            post(public::status_notify),
        )
        .add(
            "/documents/{token}",
            &[M::GET],
            Access::Public,
            get(documents::show),
        )
        .add(
            "/documents/{token}/message",
            &[M::POST],
            Access::Public,
            post(documents::message),
        )
        .add(
            "/documents/{token}/upload",
            &[M::POST],
            Access::Public,
            post(documents::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .add(
            "/precheck",
            &[M::GET],
            Access::Precheck,
            get(precheck::inbox),
        )
        .add(
            "/precheck/events",
            &[M::GET],
            Access::Precheck,
            get(precheck::events),
        )
        .add(
            "/precheck/files",
            &[M::POST],
            Access::Precheck,
            post(precheck::open),
        )
        .add(
            "/precheck/files/{id}",
            &[M::GET],
            Access::Precheck,
            get(precheck::file),
        )
        .add(
            "/precheck/files/{id}/{action}",
            &[M::POST],
            Access::Precheck,
            post(precheck::act),
        )
        .add(
            "/precheck/uploads/{id}",
            &[M::GET],
            Access::Precheck,
            get(precheck::upload),
        )
        .add(
            "/notices/stop/{token}",
            &[M::GET, M::POST],
            Access::Public,
            get(public::stop_form).post(public::stop),
        )
        .add(
            "/staff/login",
            &[M::GET, M::POST],
            Access::Public,
            get(auth::login_page).post(auth::login),
        )
        .add(
            "/staff/logout",
            &[M::POST],
            Access::Staff,
            post(auth::logout),
        )
        .add("/admin", &[M::GET], Access::Admin, get(admin::home::home))
        .add(
            "/admin/settings",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::settings::settings_page).post(admin::settings::settings_save),
        )
        .add(
            "/admin/services",
            &[M::POST],
            Access::Admin,
            post(admin::services::service_create),
        )
        .add(
            "/admin/services/{id}",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::services::service_editor).post(admin::services::service_save),
        )
        .add(
            "/admin/services/{id}/preview",
            &[M::POST],
            Access::Admin,
            post(admin::services::service_preview),
        )
        .add(
            "/admin/close-day",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::close_day::close_day_form).post(admin::close_day::close_day),
        )
        .add(
            "/admin/close-day/preview",
            &[M::POST],
            Access::Admin,
            post(admin::close_day::close_day_preview),
        )
        .add(
            "/admin/partners",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::partners::partners).post(admin::partners::partner_create),
        )
        .add(
            "/admin/partners/{id}",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::partners::partner).post(admin::partners::partner_update),
        )
        .add(
            "/admin/partners/{id}/operators",
            &[M::POST],
            Access::Admin,
            post(admin::partners::operator_create),
        )
        .add(
            "/admin/partners/{id}/kiosk-codes",
            &[M::POST],
            Access::Admin,
            post(admin::partners::kiosk_code),
        )
        .add(
            "/admin/users/{id}/password",
            &[M::POST],
            Access::Admin,
            post(admin::partners::user_password),
        )
        .add(
            "/admin/users/{id}/active",
            &[M::POST],
            Access::Admin,
            post(admin::partners::user_active),
        )
        .add(
            "/admin/kiosks/{id}/revoke",
            &[M::POST],
            Access::Admin,
            post(admin::partners::kiosk_revoke),
        )
        .add(
            "/admin/permits",
            &[M::GET],
            Access::Admin,
            get(admin::permits::permits),
        )
        .add(
            "/admin/permits/preview",
            &[M::POST],
            Access::Admin,
            post(admin::permits::permits_preview),
        )
        .add(
            "/admin/permits/import",
            &[M::POST],
            Access::Admin,
            post(admin::permits::permits_import),
        )
        .add(
            "/admin/notices",
            &[M::GET],
            Access::Admin,
            get(admin::notices::notices),
        )
        .add(
            "/admin/precheck",
            &[M::GET],
            Access::Admin,
            get(admin::precheck::page),
        )
        .add(
            "/admin/precheck/documents",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::add_document),
        )
        .add(
            "/admin/precheck/documents/{code}/retire",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::retire_document),
        )
        .add(
            "/admin/precheck/checklists",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::save_checklist),
        )
        .add(
            "/admin/precheck/checklists/{id}/delete",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::delete_checklist),
        )
        .add(
            "/admin/precheck/answers",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::add_answer),
        )
        .add(
            "/admin/precheck/answers/{id}/retire",
            &[M::POST],
            Access::Admin,
            post(admin::precheck::retire_answer),
        )
        .add(
            "/admin/notices/templates",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::notices::templates).post(admin::notices::templates_save),
        )
        .add(
            "/admin/missed",
            &[M::GET],
            Access::Admin,
            get(admin::missed::missed),
        )
        .add(
            "/admin/moved",
            &[M::GET],
            Access::Admin,
            get(admin::moved::moved),
        )
        .add(
            "/admin/permits/list",
            &[M::GET],
            Access::Admin,
            get(admin::ready_list::ready_list),
        )
        .add(
            "/admin/permits/{id}",
            &[M::GET, M::POST],
            Access::Admin,
            get(admin::ready_list::ready_entry).post(admin::ready_list::ready_correct),
        )
        .add(
            "/admin/permits/{id}/remove",
            &[M::POST],
            Access::Admin,
            post(admin::ready_list::ready_remove),
        )
        .add(
            "/admin/appointments",
            &[M::GET],
            Access::Admin,
            get(admin::appointments::appointments),
        )
        .add(
            "/admin/appointments.csv",
            &[M::GET],
            Access::Admin,
            get(admin::appointments::appointments_csv),
        )
        .add(
            "/admin/appointments/cancel-all",
            &[M::POST],
            Access::Admin,
            post(admin::appointments::appointments_cancel_all),
        )
        .add(
            "/admin/appointments/{id}/cancel",
            &[M::POST],
            Access::Admin,
            post(admin::appointments::appointment_cancel),
        )
        .add(
            "/admin/audit",
            &[M::GET],
            Access::Admin,
            get(admin::audit::audit),
        )
        .add(
            "/counter",
            &[M::GET],
            Access::Counter,
            get(counter::checkin::checkin_page),
        )
        .add(
            "/counter/scan",
            &[M::POST],
            Access::Counter,
            post(counter::checkin::scan),
        )
        .add(
            "/counter/lookup",
            &[M::GET],
            Access::Counter,
            get(counter::checkin::lookup),
        )
        .add(
            "/counter/appointments/{id}",
            &[M::GET],
            Access::Counter,
            get(counter::checkin::appointment_page),
        )
        .add(
            "/counter/appointments/{id}/contact",
            &[M::POST],
            Access::Counter,
            post(counter::checkin::set_contact),
        )
        .add(
            "/counter/appointments/{id}/{step}",
            &[M::POST],
            Access::Counter,
            post(counter::checkin::take_step),
        )
        .add(
            "/counter/day",
            &[M::GET],
            Access::Counter,
            get(counter::day::day_page),
        )
        .add(
            "/counter/day/rows",
            &[M::GET],
            Access::Counter,
            get(counter::day::day_rows),
        )
        .add(
            "/counter/day/events",
            &[M::GET],
            Access::Counter,
            get(counter::day::day_events),
        )
        .add(
            "/counter/day/no-shows",
            &[M::POST],
            Access::Counter,
            post(counter::day::mark_no_shows),
        )
        .add(
            "/counter/day-list",
            &[M::GET],
            Access::Counter,
            get(counter::day_list::day_list),
        )
        .add(
            "/counter/day-list.pdf",
            &[M::GET],
            Access::Counter,
            get(counter::day_list::day_list_pdf),
        )
}

/// Files served under `/static/`, compiled into the binary.
const STATIC_FILES: &[(&str, &str, &[u8])] = &[
    (
        "bootstrap-italia.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/bootstrap-italia/bootstrap-italia.min.css"),
    ),
    (
        "fonts/titillium-web-regular.woff2",
        "font/woff2",
        include_bytes!(
            "../../assets/vendor/bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2"
        ),
    ),
    (
        "fonts/titillium-web-600.woff2",
        "font/woff2",
        include_bytes!(
            "../../assets/vendor/bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-600.woff2"
        ),
    ),
    (
        "fonts/titillium-web-700.woff2",
        "font/woff2",
        include_bytes!(
            "../../assets/vendor/bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-700.woff2"
        ),
    ),
    (
        "coper.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/coper.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/admin.js"),
    ),
    (
        "counter.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/counter.js"),
    ),
    (
        "precheck.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/precheck.js"),
    ),
];

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Where a search's results are, one page of `size` at a time: the links to the other pages
/// carry the query (`paging.html` draws them).
pub struct Paging {
    pub total: usize,
    /// From 1.
    pub page: usize,
    pub pages: usize,
    /// The page's path and `q=` the query, encoded: the links are `{path}?{query}&page=N`.
    pub path: &'static str,
    pub query: String,
}

impl Paging {
    /// The page asked (from 1; missing or 0: the first) and the offset of its first result.
    pub fn asked(page: Option<usize>, size: usize) -> (usize, usize) {
        let page = page.unwrap_or(1).max(1);
        (page, (page - 1).saturating_mul(size))
    }

    pub fn new(path: &'static str, query: &str, total: usize, page: usize, size: usize) -> Self {
        Self {
            total,
            page,
            pages: total.div_ceil(size),
            path,
            query: serde_urlencoded::to_string([("q", query)]).unwrap_or_default(),
        }
    }
}

/// A date as Italian staff read it: "martedì 24 novembre 2026".
pub fn italian_date(date: Date) -> String {
    coper_shared::italian::long_date(date)
}

/// The value of every field called `name` of a form read as pairs (ticked boxes repeat a name).
pub fn form_values(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The first value of the field `name`, or empty.
pub fn form_value(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// An instant as stored (`2026-11-23T08:00:00Z`) as people read it, in the Questura's zone:
/// "23/11/2026 09:00". Anything that is not an instant is shown as it is.
pub fn local_moment(instant: &str, zone: &coper_shared::jiff::tz::TimeZone) -> String {
    instant
        .parse::<coper_shared::jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(zone.clone())
                .strftime("%d/%m/%Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| instant.to_owned())
}

/// The Questura's time zone (Rome until the settings say otherwise).
pub fn zone_of(
    conn: &crate::store::Connection,
) -> Result<coper_shared::jiff::tz::TimeZone, crate::store::StoreError> {
    Ok(crate::store::settings::questura(conn)?
        .map(|q| q.time_zone)
        .unwrap_or_else(|| {
            coper_shared::jiff::tz::TimeZone::get("Europe/Rome")
                .unwrap_or(coper_shared::jiff::tz::TimeZone::UTC)
        }))
}

/// A plain page with a message, for refusals and errors.
#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
    pub frame: page::Frame,
}

/// Answer with `status` and a page saying `message`.
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        MessagePage {
            title: title.into(),
            message: message.into(),
            frame: page::Frame::default(),
        },
    )
        .into_response()
}

/// The database failed: say so plainly, log the details.
pub fn internal_error(error: impl Into<anyhow::Error>) -> Response {
    let error = format!("{:#}", error.into());
    tracing::error!(%error, "page failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Errore del server",
        "Si è verificato un errore interno. Riprovare; se continua, avvisare l'amministratore.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_registered_once_per_method() {
        let pages = pages();
        let mut seen = std::collections::BTreeSet::new();
        for route in pages.routes() {
            assert!(
                seen.insert((route.method.to_string(), route.path)),
                "{route:?} twice"
            );
        }
    }
}
