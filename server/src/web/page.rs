//! What every page handler shares: the staff frame of a page ([`Frame`]), the context a staff
//! handler starts from ([`StaffContext`]: the state, who is logged in, and the actor its
//! operations are audited as), and the error a handler returns with `?` ([`PageError`]: a plain
//! page in Italian, with internal errors logged and shown generically).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};

use crate::{AppState, accounts::Staff, ops::Actor};

/// The frame of a staff page: who is logged in (the header, the menu) and the session's CSRF
/// token for its forms. Every staff page struct holds one as `frame`.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub staff: Option<Staff>,
    pub csrf: String,
}

impl Frame {
    pub fn of(staff: &Staff) -> Self {
        Self {
            staff: Some(staff.clone()),
            csrf: staff.csrf_token.clone(),
        }
    }
}

/// What a staff page's handler starts from.
pub struct StaffContext {
    pub state: AppState,
    pub staff: Staff,
    /// The staff member, from the browser's address, now: for the operations' audit.
    pub by: Actor,
}

impl StaffContext {
    pub fn frame(&self) -> Frame {
        Frame::of(&self.staff)
    }
}

impl FromRequestParts<AppState> for StaffContext {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        // `auth::guard` puts the staff member in the request on every staff route.
        let staff = parts.extensions.get::<Staff>().cloned().ok_or_else(|| {
            PageError::internal(anyhow::anyhow!("a staff page without a session"))
        })?;
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Ok(Self {
            by: Actor {
                name: staff.actor(),
                source,
                now: state.clock.now(),
            },
            state: state.clone(),
            staff,
        })
    }
}

/// A page answering with an error: a plain message page with its status.
#[derive(Debug)]
pub struct PageError(Box<Response>);

pub type PageResult = Result<Response, PageError>;

impl PageError {
    /// A refusal the person reads: `status`, a title and a sentence, in Italian.
    pub fn message(status: StatusCode, title: &str, message: &str) -> Self {
        Self::page(super::message(status, title, message))
    }

    /// Any page that answers instead of the handler's (a form shown again with its errors).
    pub fn page(page: impl IntoResponse) -> Self {
        Self(Box::new(page.into_response()))
    }

    /// Something failed inside: logged with its cause, shown as a generic message.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::page(super::internal_error(error))
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}
