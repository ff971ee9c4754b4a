//! The missed appointments of the last 30 days whose person has not been booked again: who to
//! call back, with their phone, e-mail and language, and whether the "missed" message reached
//! them. All partner bodies, or one (`?partner=`), one section per body, printable; each body's
//! kiosks list their own with "Book again", which carries the person into the booking.

use axum::{extract::Query, response::IntoResponse};
use coper_shared::{documents::MISSED_LISTED_DAYS, jiff::Span};
use serde::Deserialize;

use crate::{
    checkin::local_now,
    store::appointments,
    web::{
        italian_date,
        page::{Frame, PageResult, StaffContext},
    },
};

/// One missed appointment, as printed.
pub struct MissedShown {
    pub code: String,
    pub name: String,
    pub when: String,
    pub phone: String,
    pub email: String,
    pub lang: String,
    pub told: bool,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/missed.html")]
pub struct MissedPage {
    pub frame: Frame,
    pub since: String,
    pub bodies: Vec<(String, Vec<MissedShown>)>,
}

#[derive(Debug, Deserialize)]
pub struct MissedQuery {
    #[serde(default)]
    partner: Option<i64>,
}

/// `GET /admin/missed?partner=ID`.
pub async fn missed(cx: StaffContext, Query(query): Query<MissedQuery>) -> PageResult {
    let now = cx.by.now;
    let (since, found) = cx
        .state
        .db
        .read(move |conn| {
            let (_, local) = local_now(conn, now)?;
            let since = local
                .date()
                .checked_sub(Span::new().days(MISSED_LISTED_DAYS))
                .unwrap_or(local.date());
            let found = appointments::missed_since(conn, since, query.partner)?;
            Ok::<_, crate::store::StoreError>((since, found))
        })
        .await?;
    let mut bodies: Vec<(String, Vec<MissedShown>)> = Vec::new();
    for m in found {
        let shown = MissedShown {
            code: m.booking_code,
            name: format!("{} {}", m.surname.to_uppercase(), m.given_names),
            when: format!("{} alle {}", italian_date(m.date), m.time),
            phone: m.phone.unwrap_or_default(),
            email: m.email.unwrap_or_default(),
            lang: m.lang.unwrap_or_default(),
            told: m.told,
        };
        match bodies.last_mut() {
            Some((body, rows)) if *body == m.partner => rows.push(shown),
            _ => bodies.push((m.partner, vec![shown])),
        }
    }
    Ok(MissedPage {
        frame: cx.frame(),
        since: italian_date(since),
        bodies,
    }
    .into_response())
}
