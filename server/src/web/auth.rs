//! Logging staff in and out, and the guard every page route passes through.
//!
//! The session cookie is `__Host-`-less on purpose (plain `coper_session`) so the demo works on
//! `http://127.0.0.1`, but it is `Secure`, `HttpOnly` and `SameSite=Strict`: browsers treat
//! loopback as a secure origin, and in production the server sits behind TLS. On top of SameSite,
//! every state-changing request must carry the session's CSRF token (a hidden `csrf` field, or
//! the `x-csrf-token` header), and a cross-site `Origin` is refused outright. The login form, which
//! has no session yet, uses a double-submit cookie.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Form, Query, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    Access, internal_error, message,
    page::{Frame, PageResult},
};
use crate::{AppState, accounts};

pub const SESSION_COOKIE: &str = "coper_session";
const LOGIN_CSRF_COOKIE: &str = "coper_login_csrf";
/// Form bodies are small; the guard reads at most this much to find the CSRF token.
const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn session_cookie(token: &str, max_age_secs: i64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_secs}"
    )
}

/// Whether the request's `Origin` (when a browser sent one) is this server: the configured
/// public origin, or else any scheme with the `Host` the request names.
fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if let Some(public) = public_origin {
        return origin.eq_ignore_ascii_case(public);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

/// The guard in front of every page: loads the session, enforces `access`, and checks the CSRF
/// token of every state-changing request made in a session. On success the handler finds the
/// [`crate::accounts::Staff`] (when logged in) in the request's extensions.
pub async fn guard(state: AppState, access: Access, req: Request, next: Next) -> Response {
    let staff = match cookie(req.headers(), SESSION_COOKIE) {
        Some(token) => {
            let now = state.clock.now();
            match state
                .db
                .call(move |conn| accounts::session(conn, &token, now))
                .await
            {
                Ok(staff) => staff,
                Err(e) => return internal_error(e),
            }
        }
        None => None,
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !same_origin(req.headers(), state.public_origin.as_deref()) {
        return message(
            StatusCode::FORBIDDEN,
            "Richiesta rifiutata",
            "La richiesta non proviene da questo sito.",
        );
    }
    if access != Access::Public {
        let Some(staff) = &staff else {
            if safe {
                let next_path = req.uri().path().to_owned();
                return Redirect::to(&format!("/staff/login?next={}", encode(&next_path)))
                    .into_response();
            }
            return message(
                StatusCode::UNAUTHORIZED,
                "Accesso richiesto",
                "La sessione è scaduta: accedere di nuovo.",
            );
        };
        if !access.admits(staff.role) {
            return message(
                StatusCode::FORBIDDEN,
                "Accesso non consentito",
                "Il vostro ruolo non permette di aprire questa pagina.",
            );
        }
    }
    let mut req = req;
    if let Some(staff) = &staff
        && !safe
        && access != Access::Public
    {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Richiesta troppo grande",
                    "I dati inviati sono troppo grandi.",
                );
            }
        };
        let from_header = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let from_form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
        let presented = from_header.or(from_form).unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), staff.csrf_token.as_bytes()) {
            return message(
                StatusCode::FORBIDDEN,
                "Richiesta rifiutata",
                "Il modulo è scaduto o non proviene da questo sito: ricaricare la pagina e riprovare.",
            );
        }
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    if let Some(staff) = staff {
        req.extensions_mut().insert(staff);
    }
    next.run(req).await
}

use crate::accounts::constant_time_eq;

/// Percent-encode a path for a query string.
pub fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// No one is logged in yet; the token is the login form's double-submit one.
    pub frame: Frame,
    pub next: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// Only local paths of the staff's pages are followed after login, never another site (browsers
/// drop tabs and newlines from URLs, so `/\t/evil.example` would read as `//evil.example`).
fn safe_next(next: &str) -> String {
    let plain = next
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.?=&%".contains(c));
    let staff_page = ["/counter", "/admin", "/precheck"]
        .iter()
        .any(|p| next.starts_with(p));
    if plain && staff_page && !next.contains("//") {
        next.to_owned()
    } else {
        "/counter".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_staff_pages_are_followed_after_login() {
        assert_eq!(
            safe_next("/admin/audit?action=login"),
            "/admin/audit?action=login"
        );
        for evil in [
            "//evil.example",
            "/\t/evil.example",
            "https://evil.example",
            "/\\evil",
            "/counter//evil.example",
            "",
        ] {
            assert_eq!(safe_next(evil), "/counter", "{evil:?}");
        }
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

fn login_form(
    next: String,
    username: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = random_hex();
    (
        status,
        [(
            header::SET_COOKIE,
            format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/staff; HttpOnly; Secure; SameSite=Strict"),
        )],
        LoginPage {
            frame: Frame { staff: None, csrf },
            next,
            username,
            error,
        },
    )
        .into_response()
}

pub async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    login_form(safe_next(&query.next), String::new(), None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let next = safe_next(&form.next);
    // Nowhere asked: each role's own first page.
    let asked = !form.next.is_empty();
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Ok(login_form(
            next,
            form.username,
            Some("Il modulo è scaduto: riprovare.".into()),
            StatusCode::FORBIDDEN,
        ));
    }
    if state
        .login_limits
        .check_key(&crate::status::network_of(peer.ip()))
        .is_err()
    {
        return Ok(login_form(
            next,
            form.username,
            Some("Troppi tentativi da questo computer: riprovare tra un minuto.".into()),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let now = state.clock.now();
    let username = form.username.clone();
    let source = peer.ip().to_string();
    // Argon2 takes a while: check the password outside the database lock, so a flood of logins
    // never stalls the kiosks' sync or the counter.
    let name = form.username.clone();
    let hash = state
        .db
        .call(move |conn| accounts::password_hash_of(conn, &name))
        .await?;
    let password = form.password;
    let matches = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let outcome = state
        .db
        .call(move |conn| accounts::login(conn, &form.username, matches, now, &source))
        .await?;
    Ok(match outcome {
        Ok(session) => (
            [(
                header::SET_COOKIE,
                session_cookie(&session.token, accounts::SESSION_LIFETIME.as_secs()),
            )],
            Redirect::to(match session.staff.role {
                accounts::Role::Precheck if !asked || next.starts_with("/counter") => "/precheck",
                _ => &next,
            }),
        )
            .into_response(),
        Err(refusal) => login_form(
            next,
            username,
            Some(refusal.to_string()),
            StatusCode::UNAUTHORIZED,
        ),
    })
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state
            .db
            .call(move |conn| accounts::logout(conn, &token))
            .await?;
    }
    Ok((
        [(header::SET_COOKIE, session_cookie("", 0))],
        Redirect::to("/staff/login"),
    )
        .into_response())
}
