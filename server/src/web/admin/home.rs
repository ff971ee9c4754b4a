//! The administration's home page: what is set up and what to do next.

use axum::response::IntoResponse;

use crate::{
    store::{ready, services, settings},
    web::page::{Frame, PageResult, StaffContext},
};

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/home.html")]
pub struct HomePage {
    pub frame: Frame,
    pub services: Vec<(String, String)>,
    pub ready: i64,
    pub imported: String,
    pub configured: bool,
}

pub async fn home(cx: StaffContext) -> PageResult {
    let (services, ready, imported, configured) = cx
        .state
        .db
        .read(|conn| {
            let services = services::services(conn)?
                .into_iter()
                .map(|s| (s.id.as_str().to_owned(), s.name))
                .collect::<Vec<_>>();
            let (ready, imported) = ready::summary(conn)?;
            let zone = crate::web::zone_of(conn)?;
            let imported = imported.map(|i| crate::web::local_moment(&i, &zone));
            let configured = settings::settings(conn)?.is_some();
            Ok::<_, crate::store::StoreError>((services, ready, imported, configured))
        })
        .await?;
    Ok(HomePage {
        frame: cx.frame(),
        services,
        ready,
        imported: imported.unwrap_or_else(|| "mai".into()),
        configured,
    }
    .into_response())
}
