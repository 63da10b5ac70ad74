//! `GET /v1/admin/tenants/{id_or_slug}/usage`: one tenant's usage history;
//! `GET /v1/admin/usage`: the finance export, every tenant's, a page of
//! tenants at a time (`limit`, `cursor`; in CSV the next cursor is the
//! `Tenantry-Next-Cursor` header). Both JSON or CSV, as `GET /v1/usage`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use tenantry_ops::usage;
use tenantry_ops::views::UsageReportView;

use crate::auth::PlatformAdmin;
use crate::routes::PageQuery;
use crate::routes::usage::{UsageQuery, respond};
use crate::{ApiError, AppState};

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), UsageQuery), responses((status = 200, body = UsageReportView, description = "The history; `text/csv` with `Accept: text/csv` or `format=csv`")))]
#[get("/tenants/{id_or_slug}/usage")]
pub async fn get_tenant_usage(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<UsageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (window, csv) = (query.window(&state)?, query.csv(req.headers())?);
    let report = usage::of_tenant(&state.ops, &key, window).await?;
    Ok(respond(&report, csv))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(UsageQuery, PageQuery), responses((status = 200, body = UsageReportView, description = "Every tenant's history, `limit` tenants a page; `text/csv` with `Accept: text/csv` or `format=csv`")))]
#[get("/usage")]
pub async fn export_usage(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<UsageQuery>,
    page: web::Query<PageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (window, csv) = (query.window(&state)?, query.csv(req.headers())?);
    let report = usage::export(&state.ops, window, page.page()?).await?;
    Ok(respond(&report, csv))
}
