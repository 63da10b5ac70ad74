//! `GET /v1/tenant`, `GET /v1/quotas`: the caller's own tenant.

use actix_web::{HttpResponse, get, web};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::tenant;
use tenantry_ops::views::{OwnTenantView, QuotasView};

use super::ok;
use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

#[utoipa::path(tag = "tenant", security(("bearer" = [])), responses((status = 200, body = OwnTenantView)))]
#[get("/tenant")]
pub async fn get_own_tenant(
    state: web::Data<AppState>,
    who: TenantPrincipal,
) -> Result<HttpResponse, ApiError> {
    let tenant = who.tenant_id;
    let view = who
        .read(&state, |conn| {
            async move { Ok(tenant::get(conn, tenant).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "tenant", security(("bearer" = [])), responses((status = 200, body = QuotasView)))]
#[get("/quotas")]
pub async fn get_own_quotas(
    state: web::Data<AppState>,
    who: TenantPrincipal,
) -> Result<HttpResponse, ApiError> {
    let tenant = who.tenant_id;
    let view = who
        .read(&state, |conn| {
            async move { Ok(tenant::quotas(conn, tenant).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}
