//! `/v1/members`: the people of the tenant and their roles. Reading needs
//! `tenant:read`; adding, changing and removing need `tenant:admin`, and
//! only an owner may make someone an owner or take it away. The last owner
//! stays (`409 last_owner`).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use tenantry_core::{MemberId, Role, Scope};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::field;
use tenantry_ops::members::{self, NewMember, Subject};
use tenantry_ops::views::{List, MemberView, Rehearsal};

use super::{ById, DryRun, PageQuery, create_or_rehearse_as, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The person: the `sub` of their identity provider's tokens (1–256
    /// bytes).
    pub subject: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMemberRole {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

pub(crate) fn role(name: &str) -> Result<Role, ApiError> {
    Ok(field(
        "role",
        name.parse::<Role>().map_err(|e| e.to_string()),
    )?)
}

pub(crate) fn new_member(body: AddMember) -> Result<NewMember, ApiError> {
    Ok(NewMember {
        subject: field("subject", Subject::parse(&body.subject))?,
        role: role(&body.role)?,
    })
}

#[utoipa::path(tag = "members", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<MemberView>)))]
#[get("/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(members::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "members", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = AddMember, responses((status = 200, description = "`dry_run=true`: who would be added; nothing is stored", body = Rehearsal<MemberView>), (status = 201, description = "Needs tenant:admin; role owner needs an owner", body = MemberView), (status = 409, description = "conflict: the subject is already a member", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/members")]
pub async fn add_member(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
    body: Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let new = new_member(body.0)?;
    let actor = who.actor();
    create_or_rehearse_as(
        &who,
        &state,
        &dry,
        Scope::TenantAdmin,
        &key,
        |conn, authority| {
            async move { members::add(conn, &actor, &authority, new).await }.scope_boxed()
        },
        |member| created(format!("/v1/members/{}", member.id), &member),
    )
    .await
}

#[utoipa::path(tag = "members", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The member's id")), responses((status = 200, body = MemberView)))]
#[get("/members/{id}")]
pub async fn get_member(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<MemberId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let member = who
        .read(&state, |conn| {
            async move { Ok(members::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&member))
}

#[utoipa::path(tag = "members", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The member's id")), request_body = ChangeMemberRole, responses((status = 200, description = "Needs tenant:admin; to or from owner needs an owner", body = MemberView), (status = 409, description = "last_owner: the tenant's last owner cannot be demoted", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/members/{id}")]
pub async fn change_member_role(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<MemberId>>,
    body: Json<ChangeMemberRole>,
) -> Result<HttpResponse, ApiError> {
    let role = role(&body.0.role)?;
    let (actor, id) = (who.actor(), id.into_inner().id);
    let member = who
        .write_as(&state, Scope::TenantAdmin, |conn, authority| {
            async move { Ok(members::change_role(conn, &actor, &authority, id, role).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(ok(&member))
}

#[utoipa::path(tag = "members", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The member's id")), responses((status = 204, description = "Removed (needs tenant:admin; an owner needs an owner)"), (status = 409, description = "last_owner: the tenant's last owner cannot be removed", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/members/{id}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<MemberId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    who.write_as(&state, Scope::TenantAdmin, |conn, authority| {
        async move { Ok(members::remove(conn, &actor, &authority, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
