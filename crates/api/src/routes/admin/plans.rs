//! `/v1/admin/plans`: named quota templates, and `PUT
//! /v1/admin/tenants/{id_or_slug}/plan`, which puts a tenant on one.
//! Changes of a plan and moves between plans take `?dry_run=true`: the same
//! unit of work, rolled back, answering what it would do.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::Deserialize;
use tenantry_core::Slug;
use tenantry_db::ScopedFutureExt as _;
use tenantry_ops::field;
use tenantry_ops::plans::{self, NewPlan, PlanChange};
use tenantry_ops::quotas::LimitsPatch;
use tenantry_ops::views::{List, PlanChangeView, PlanView, TenantPlanView, TenantView};

use crate::auth::PlatformAdmin;
use crate::idempotency::{IdempotencyKey, admin_create};
use crate::json::Json;
use crate::ratelimit::Rate;
use crate::routes::{DryRun, PageQuery, created, list, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// Lowercase letters, digits and hyphens (2–63); unique.
    name: String,
    /// The plan's limits; those not given are copied from `[quotas.default]`.
    #[serde(default)]
    limits: Option<LimitsPatch>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    /// A new name (unique).
    #[serde(default)]
    name: Option<String>,
    /// Only the limits to change. Every tenant on the plan gets them,
    /// except where it has an override of its own.
    #[serde(default)]
    limits: Option<LimitsPatch>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTenantPlan {
    /// The plan's id or name; `null`: no plan (the tenant's limits that are
    /// not overridden go back to `[quotas.default]`). Required.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    plan: Option<String>,
}

const PLAN_KEY: &str = "Plan id or name: a key that parses as a UUID is only ever an id";

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(IdempotencyKey), request_body = CreatePlan, responses((status = 201, body = PlanView), (status = 409, description = "conflict: a plan of this name exists", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/plans")]
pub async fn create_plan(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: IdempotencyKey,
    body: Json<CreatePlan>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let new = NewPlan {
        name: field("name", Slug::parse(&body.name).map_err(|e| e.to_string()))?,
        limits: body.limits.unwrap_or_default(),
    };
    let (actor, tenancy) = (admin.actor(), state.ops.tenancy.clone());
    admin_create(
        &state,
        &key,
        None,
        move |conn| {
            async move { plans::create_on(conn, &tenancy, &actor, new).await }.scope_boxed()
        },
        |view| created(format!("/v1/admin/plans/{}", view.id), &view),
    )
    .await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<PlanView>)))]
#[get("/plans")]
pub async fn list_plans(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(list(&plans::list(&state.ops, page).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_name" = String, Path, description = PLAN_KEY)), responses((status = 200, body = PlanView)))]
#[get("/plans/{id_or_name}")]
pub async fn get_plan(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&plans::get(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_name" = String, Path, description = PLAN_KEY), PageQuery), responses((status = 200, description = "The tenants (not purged) on the plan, in id order", body = List<TenantView>)))]
#[get("/plans/{id_or_name}/tenants")]
pub async fn list_plan_tenants(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(list(&plans::tenants(&state.ops, &key, page).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_name" = String, Path, description = PLAN_KEY), DryRun), request_body = UpdatePlan, responses((status = 200, description = "The plan after the change and every tenant over a limit after it; with `dry_run=true` nothing is written", body = PlanChangeView), (status = 409, description = "conflict: a plan of this name exists", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/plans/{id_or_name}")]
pub async fn update_plan(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    dry: web::Query<DryRun>,
    body: Json<UpdatePlan>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = PlanChange {
        name: body
            .name
            .as_deref()
            .map(|n| field("name", Slug::parse(n).map_err(|e| e.to_string())))
            .transpose()?,
        limits: body.limits.unwrap_or_default(),
    };
    // Every replica (this one too) reads the tenants' new rate limits with
    // their next request: the change moved their registry stamps.
    let view = plans::update(&state.ops, &admin.actor(), &key, change, dry.wanted()).await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_name" = String, Path, description = PLAN_KEY)), responses((status = 204, description = "Deleted"), (status = 409, description = "conflict: tenants are on the plan", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/plans/{id_or_name}")]
pub async fn delete_plan(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    plans::delete(&state.ops, &admin.actor(), &key).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), DryRun), request_body = SetTenantPlan, responses((status = 200, description = "The tenant's quotas on its new plan and what is over a limit there; with `dry_run=true` nothing is written", body = TenantPlanView), (status = 422, description = "validation: no such plan", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/tenants/{id_or_slug}/plan")]
pub async fn set_tenant_plan(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    dry: web::Query<DryRun>,
    body: Json<SetTenantPlan>,
) -> Result<HttpResponse, ApiError> {
    let dry_run = dry.wanted();
    let view = plans::assign(&state.ops, &admin.actor(), &key, body.0.plan, dry_run).await?;
    if !dry_run {
        // As for a change of its quotas: this replica throttles at the new
        // rate at once; the others learn it from the tenant's next request.
        let limits = &view.quotas.limits;
        let rate = Rate::from_columns(limits.requests_per_second, limits.burst);
        state.rate_limits.learn(view.tenant_id, Some(rate));
    }
    Ok(ok(&view))
}
