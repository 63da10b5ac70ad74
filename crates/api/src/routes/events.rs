//! `GET /v1/events`: the tenant's activity log.

use actix_web::{HttpResponse, get, web};
use tenantry_db::{ScopedFutureExt, queries};

use super::{PageQuery, list};
use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

#[utoipa::path(tag = "events", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<tenantry_db::models::Event>), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let (items, more) = who
        .read(&state.db, |conn| {
            async move { Ok(queries::events::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(items, more, |e| *e.id.as_uuid()))
}
