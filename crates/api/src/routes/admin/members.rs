//! `/v1/admin/tenants/{id_or_slug}/members`: a platform admin seeds and
//! manages a tenant's people, owners included (the last owner still stays).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use tenantry_core::MemberId;
use tenantry_db::ScopedFutureExt as _;
use tenantry_ops::members;
use tenantry_ops::views::{List, MemberView};

use crate::auth::PlatformAdmin;
use crate::idempotency::{IdempotencyKey, admin_create};
use crate::json::Json;
use crate::routes::members::{AddMember, ChangeMemberRole, new_member, role};
use crate::routes::{PageQuery, created, list, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct MemberPath {
    id_or_slug: String,
    id: MemberId,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), PageQuery), responses((status = 200, body = List<MemberView>)))]
#[get("/tenants/{id_or_slug}/members")]
pub async fn list_tenant_members(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(list(&members::admin_list(&state.ops, &key, page).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(IdempotencyKey, ("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = AddMember, responses((status = 201, body = MemberView), (status = 409, description = "conflict: the subject is already a member", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants/{id_or_slug}/members")]
pub async fn add_tenant_member(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    idempotency: IdempotencyKey,
    body: Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let new = new_member(body.0)?;
    let tenant = members::live(&state.ops, &key).await?;
    let actor = admin.actor();
    let location = format!("/v1/admin/tenants/{}/members", key.as_str());
    // The tenant's own context (its members rows) beside the platform's
    // (the admin plane's keys): a provisioning scope for the tenant.
    admin_create(
        &state,
        &idempotency,
        Some(tenant),
        move |conn| {
            async move { members::admin_add_on(conn, &actor, tenant, new).await }.scope_boxed()
        },
        move |member| created(format!("{location}/{}", member.id), &member),
    )
    .await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), ("id" = uuid::Uuid, Path, description = "The member's id")), request_body = ChangeMemberRole, responses((status = 200, body = MemberView), (status = 409, description = "last_owner: the tenant's last owner cannot be demoted", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/tenants/{id_or_slug}/members/{id}")]
pub async fn change_tenant_member_role(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    path: web::Path<MemberPath>,
    body: Json<ChangeMemberRole>,
) -> Result<HttpResponse, ApiError> {
    let role = role(&body.0.role)?;
    let path = path.into_inner();
    let member =
        members::admin_change_role(&state.ops, &admin.actor(), &path.id_or_slug, path.id, role)
            .await?;
    Ok(ok(&member))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), ("id" = uuid::Uuid, Path, description = "The member's id")), responses((status = 204, description = "Removed"), (status = 409, description = "last_owner: the tenant's last owner cannot be removed", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/tenants/{id_or_slug}/members/{id}")]
pub async fn remove_tenant_member(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    members::admin_remove(&state.ops, &admin.actor(), &path.id_or_slug, path.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
