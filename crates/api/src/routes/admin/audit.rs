//! `GET /v1/admin/audit`: the audit log, filtered by tenant, actor, action
//! and time.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tenantry_ops::audit::{self, AuditFilter};
use tenantry_ops::views::{AuditEntryView, List};

use crate::auth::PlatformAdmin;
use crate::routes::{PageQuery, list};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant's entries (its id).
    tenant_id: Option<String>,
    /// Only this tenant's entries, by id or slug (unknown: 422 on `tenant`).
    tenant: Option<String>,
    /// Only entries by exactly this actor.
    actor: Option<String>,
    /// Only this action (`tenant.suspend`), or a prefix ending in `.` or `*` (`tenant.`).
    action: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries before this time (RFC 3339).
    to: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    order: Option<String>,
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page (with the same filters and order).
    cursor: Option<String>,
}

fn time(field: &'static str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::validation(field, "must be an RFC 3339 time (2026-01-31T12:00:00Z)")
                })
        })
        .transpose()
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(AuditQuery), responses((status = 200, body = List<AuditEntryView>), (status = 422, description = "a filter is invalid (its field named)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/audit")]
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery::new(query.limit, query.cursor).page()?;
    let tenant_id = query
        .tenant_id
        .map(|t| {
            t.parse::<tenantry_core::TenantId>()
                .map(|id| id.to_string())
                .map_err(|_| ApiError::validation("tenant_id", "must be a UUID"))
        })
        .transpose()?;
    if tenant_id.is_some() && query.tenant.is_some() {
        return Err(ApiError::validation(
            "tenant",
            "give tenant or tenant_id, not both",
        ));
    }
    let newest_first = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::validation("order", "must be asc or desc")),
    };
    let filter = AuditFilter {
        tenant: tenant_id.or(query.tenant),
        actor: query.actor,
        action: query.action,
        from: time("from", query.from)?,
        to: time("to", query.to)?,
        newest_first,
    };
    Ok(list(&audit::list(&state.ops, &filter, page).await?))
}
