//! `/v1/admin/tenants/{id_or_slug}/quotas`: limits and usage. PUT replaces
//! every limit, PATCH merges the given ones; the limits set become the
//! tenant's overrides (a change of its plan leaves them alone) until
//! `DELETE .../quotas/{limit}` gives one back to the plan. PUT and PATCH
//! take `?dry_run=true`: the same change rolled back, answering the quotas
//! it would leave.

use actix_web::{HttpResponse, delete, get, patch, put, web};
use serde::Deserialize;
use tenantry_ops::quotas::{self, LimitsPatch, QuotaChange};
use tenantry_ops::views::{LimitsView, QuotasView};

use crate::auth::PlatformAdmin;
use crate::json::Json;
use crate::ratelimit::Rate;
use crate::routes::{DryRun, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceQuotas {
    /// Every limit.
    limits: LimitsView,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeQuotas {
    /// Only the limits to change.
    limits: LimitsPatch,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = QuotasView)))]
#[get("/tenants/{id_or_slug}/quotas")]
pub async fn get_quotas(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&quotas::get(&state.ops, &key).await?))
}

async fn change(
    state: &AppState,
    admin: &PlatformAdmin,
    key: &str,
    change: QuotaChange,
    dry: &DryRun,
) -> Result<HttpResponse, ApiError> {
    if dry.wanted() {
        // The same unit of work, rolled back: the quotas it would leave.
        let preview = quotas::preview(&state.ops, &admin.actor(), key, change).await?;
        return Ok(ok(&preview.after));
    }
    let (tenant, view) = quotas::set(&state.ops, &admin.actor(), key, change).await?;
    learned(state, tenant, view)
}

fn learned(
    state: &AppState,
    tenant: tenantry_core::TenantId,
    view: QuotasView,
) -> Result<HttpResponse, ApiError> {
    // This replica throttles at the new rate from now on; the others learn
    // it from the tenant's next admitted request.
    let rate = Rate::from_columns(view.limits.requests_per_second, view.limits.burst);
    state.rate_limits.learn(tenant, Some(rate));
    Ok(ok(&view))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), DryRun), request_body = ReplaceQuotas, responses((status = 200, description = "The quotas after the change; with `dry_run=true` the quotas it would leave, nothing written", body = QuotasView)))]
#[put("/tenants/{id_or_slug}/quotas")]
pub async fn replace_quotas(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    dry: web::Query<DryRun>,
    body: Json<ReplaceQuotas>,
) -> Result<HttpResponse, ApiError> {
    change(
        &state,
        &admin,
        &key,
        QuotaChange::Replace(body.0.limits),
        &dry,
    )
    .await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), DryRun), request_body = MergeQuotas, responses((status = 200, description = "The quotas after the change; with `dry_run=true` the quotas it would leave, nothing written", body = QuotasView)))]
#[patch("/tenants/{id_or_slug}/quotas")]
pub async fn merge_quotas(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    dry: web::Query<DryRun>,
    body: Json<MergeQuotas>,
) -> Result<HttpResponse, ApiError> {
    change(
        &state,
        &admin,
        &key,
        QuotaChange::Merge(body.0.limits),
        &dry,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct OverridePath {
    id_or_slug: String,
    limit: String,
}

/// Drops the tenant's override of one limit: it follows its plan again (or
/// `[quotas.default]`, for a tenant on no plan).
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), ("limit" = String, Path, description = "The limit: max_users, max_api_keys, max_clusters, max_instances, max_cpu_cores, max_memory_gb, max_storage_gb, requests_per_second or burst")), responses((status = 200, body = QuotasView), (status = 422, description = "validation: not a limit's name", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/tenants/{id_or_slug}/quotas/{limit}")]
pub async fn drop_override(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    path: web::Path<OverridePath>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, view) =
        quotas::follow(&state.ops, &admin.actor(), &path.id_or_slug, &path.limit).await?;
    learned(&state, tenant, view)
}
