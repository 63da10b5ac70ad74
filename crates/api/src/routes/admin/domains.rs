//! `/v1/admin/tenants/{id_or_slug}/domains`: a tenant's custom domains.

use actix_web::{HttpResponse, get, web};
use tenantry_ops::domains;
use tenantry_ops::views::{DomainView, List};

use crate::auth::PlatformAdmin;
use crate::routes::{PageQuery, list};
use crate::{ApiError, AppState};

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), PageQuery), responses((status = 200, body = List<DomainView>)))]
#[get("/tenants/{id_or_slug}/domains")]
pub async fn list_tenant_domains(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(list(
        &domains::list_for_tenant(&state.ops, &key, page).await?,
    ))
}
