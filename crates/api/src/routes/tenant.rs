//! `GET /v1/tenant`, `GET /v1/quotas`: the caller's own tenant.

use actix_web::{HttpResponse, get, web};
use serde_json::json;
use tenantry_db::{ScopedFutureExt, queries};

use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

#[utoipa::path(tag = "tenant", security(("bearer" = [])), responses((status = 200, description = "The caller's tenant", body = Object), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenant")]
pub async fn get_own_tenant(
    state: web::Data<AppState>,
    who: TenantPrincipal,
) -> Result<HttpResponse, ApiError> {
    let tenant = who.tenant_id;
    let row = who
        .read(&state, |conn| {
            async move { Ok(queries::tenants::get(conn, tenant).await?) }.scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": row.id,
        "slug": row.slug,
        "name": row.name,
        "status": row.status,
    })))
}

#[utoipa::path(tag = "tenant", security(("bearer" = [])), responses((status = 200, description = "Limits and usage", body = Object), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/quotas")]
pub async fn get_own_quotas(
    state: web::Data<AppState>,
    who: TenantPrincipal,
) -> Result<HttpResponse, ApiError> {
    let tenant = who.tenant_id;
    let (limits, usage) = who
        .read(&state, |conn| {
            async move { Ok(queries::tenants::limits_and_usage(conn, tenant).await?) }.scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "limits": limits, "usage": usage })))
}
