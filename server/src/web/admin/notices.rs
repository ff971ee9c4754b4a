//! The notices sent to people about their bookings, newest first: what, to whom, in which
//! language, and whether it went out or why not. With the log channel (the demo), this page is
//! where the messages are read.

use axum::response::IntoResponse;

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
    pub notices: Vec<notices::Listed>,
}

/// `GET /admin/notices`.
pub async fn notices(cx: StaffContext) -> PageResult {
    let notices = cx
        .state
        .db
        .read(|conn| notices::latest(conn, SHOWN))
        .await?;
    Ok(NoticesPage {
        frame: cx.frame(),
        notices,
    }
    .into_response())
}
