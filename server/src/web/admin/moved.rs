//! The bookings still to come that the Questura moved (closing a day, a change of hours), for
//! the partner bodies that made them: person, old and new time, phone when known, why. A page
//! to print or read to each body, one section per body; the same bookings are listed on each
//! body's kiosks. The people who consented were also told by SMS or e-mail (`crate::notices`).

use axum::{extract::Query, response::IntoResponse};
use serde::Deserialize;

use crate::{
    checkin::local_now,
    store::appointments,
    web::{
        italian_date,
        page::{Frame, PageResult, StaffContext},
    },
};

/// One moved booking, as printed.
pub struct MovedShown {
    pub code: String,
    pub name: String,
    pub phone: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/moved.html")]
pub struct MovedPage {
    pub frame: Frame,
    pub today: String,
    /// Partner body, and its moved bookings.
    pub bodies: Vec<(String, Vec<MovedShown>)>,
}

#[derive(Debug, Deserialize)]
pub struct MovedQuery {
    /// One partner body only.
    #[serde(default)]
    partner: Option<i64>,
}

/// `GET /admin/moved?partner=ID`.
pub async fn moved(cx: StaffContext, Query(query): Query<MovedQuery>) -> PageResult {
    let now = cx.by.now;
    let (today, found) = cx
        .state
        .db
        .read(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let found = appointments::moved_from(conn, local.date(), query.partner)?;
            Ok::<_, crate::store::StoreError>((local.date(), found))
        })
        .await?;
    let mut bodies: Vec<(String, Vec<MovedShown>)> = Vec::new();
    for m in found {
        let shown = MovedShown {
            code: m.booking_code,
            name: format!("{} {}", m.surname.to_uppercase(), m.given_names),
            phone: m.phone.unwrap_or_default(),
            from: format!("{} alle {}", italian_date(m.from.0), m.from.1),
            to: format!("{} alle {}", italian_date(m.to.0), m.to.1),
            reason: m.reason.unwrap_or_default(),
        };
        match bodies.last_mut() {
            Some((body, rows)) if *body == m.partner => rows.push(shown),
            _ => bodies.push((m.partner, vec![shown])),
        }
    }
    Ok(MovedPage {
        frame: cx.frame(),
        today: italian_date(today),
        bodies,
    }
    .into_response())
}
