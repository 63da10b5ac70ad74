//! `/v1/admin/tenants/{id_or_slug}/quotas`: limits and usage. PUT replaces
//! every limit, PATCH merges the given ones. Lowering a limit below usage is
//! allowed: it deletes nothing, blocks growth, and is reported.

use actix_web::{HttpResponse, get, patch, put, web};
use serde::Deserialize;
use serde_json::json;
use tenantry_core::quota::over_limit;
use tenantry_db::models::{Limits, Usage};
use tenantry_db::{AsyncPgConnection, ScopedFutureExt, queries};

use super::resolve;
use super::tenants::LimitsPatch;
use crate::auth::PlatformAdmin;
use crate::json::Json;
use crate::ratelimit::Rate;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceQuotas {
    /// Every limit.
    limits: Limits,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeQuotas {
    /// Only the limits to change.
    limits: LimitsPatch,
}

fn view(limits: &Limits, usage: &Usage) -> serde_json::Value {
    let over: Vec<&str> = over_limit(&limits.amounts(), &usage.amounts())
        .into_iter()
        .map(|r| r.as_str())
        .collect();
    json!({ "limits": limits, "usage": usage, "over_limit": over })
}

async fn current(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> Result<(tenantry_core::TenantId, Limits, Usage), ApiError> {
    let tenant = resolve(conn, key).await?;
    match queries::tenants::limits_and_usage(conn, tenant.id).await? {
        (Some(limits), Some(usage)) => Ok((tenant.id, limits, usage)),
        // A purged tenant has no quota rows left.
        _ => Err(ApiError::NotFound),
    }
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, description = "{limits, usage, over_limit}", body = Object), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/quotas")]
pub async fn get_quotas(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let body = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let (_, limits, usage) = current(conn, &key).await?;
                Ok::<_, ApiError>(view(&limits, &usage))
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn change(
    state: &AppState,
    admin: &PlatformAdmin,
    key: String,
    next: impl FnOnce(&Limits) -> Result<Limits, ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.sub.clone();
    let (tenant, rate, body) = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let (tenant, before, usage) = current(conn, &key).await?;
                let after = queries::tenants::set_limits(conn, tenant, &next(&before)?).await?;
                queries::audit::record(
                    conn,
                    Some(tenant),
                    &actor,
                    "quota.updated",
                    Some(json!(before)),
                    Some(json!(after)),
                    None,
                )
                .await?;
                let rate = Rate::from_columns(after.requests_per_second, after.burst);
                Ok::<_, ApiError>((tenant, rate, view(&after, &usage)))
            }
            .scope_boxed()
        })
        .await?;
    // This replica throttles at the new rate from now on; the others learn
    // it from the tenant's next admitted request.
    state.rate_limits.learn(tenant, Some(rate));
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = ReplaceQuotas, responses((status = 200, description = "{limits, usage, over_limit}", body = Object), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/tenants/{id_or_slug}/quotas")]
pub async fn replace_quotas(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<ReplaceQuotas>,
) -> Result<HttpResponse, ApiError> {
    let limits = body.0.limits;
    // Validate through the same rule as PATCH: every given value ≥ 0.
    let checked = LimitsPatch::from(&limits).apply(&limits)?;
    change(&state, &admin, key.into_inner(), move |_| Ok(checked)).await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = MergeQuotas, responses((status = 200, description = "{limits, usage, over_limit}", body = Object), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/tenants/{id_or_slug}/quotas")]
pub async fn merge_quotas(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<MergeQuotas>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.0.limits;
    change(&state, &admin, key.into_inner(), move |before| {
        patch.apply(before)
    })
    .await
}
