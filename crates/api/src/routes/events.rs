//! `GET /v1/events`: what happened to the tenant — its own activity and
//! what operators did to it, in time order.

use actix_web::{HttpResponse, get, web};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::events;
use tenantry_ops::views::{EventView, List};

use super::{PageQuery, list};
use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

#[utoipa::path(tag = "events", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<EventView>)))]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(events::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}
