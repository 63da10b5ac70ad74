//! `GET /v1/admin/audit`: the audit log, optionally for one tenant.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use tenantry_core::TenantId;
use tenantry_ops::audit;
use tenantry_ops::views::{AuditEntryView, List};

use crate::auth::PlatformAdmin;
use crate::routes::{PageQuery, list};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant's entries.
    tenant_id: Option<String>,
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(AuditQuery), responses((status = 200, body = List<AuditEntryView>)))]
#[get("/audit")]
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery::new(query.limit, query.cursor).page()?;
    let tenant = query
        .tenant_id
        .map(|t| {
            t.parse::<TenantId>()
                .map_err(|_| ApiError::validation("tenant_id", "must be a UUID"))
        })
        .transpose()?;
    Ok(list(&audit::list(&state.ops, tenant, page).await?))
}
