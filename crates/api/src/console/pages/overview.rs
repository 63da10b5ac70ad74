//! `/console/overview`: the platform at a glance.

use actix_web::{HttpResponse, web};
use maud::html;

use crate::AppState;
use crate::console::ConsoleError;
use crate::console::layout::{self, Nav};
use crate::console::session::Session;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/overview", web::get().to(overview));
}

async fn overview(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let health = tenantry_ops::health::service(&state.ops).await?;
    let body = html! {
        section aria-labelledby="schema-h" {
            h2 id="schema-h" { "Service" }
            dl {
                dt { "Status" } dd { (health.status) }
                dt { "Database schema" }
                dd { (health.schema.database_version.as_deref().unwrap_or("none")) " (" (health.schema.compatibility) ")" }
            }
        }
    };
    Ok(layout::ok(&session, "Overview", Nav::Overview, body))
}
