//! `/v1/users`: people of the tenant.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use tenantry_core::{Email, Name, UserId};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::field;
use tenantry_ops::users::{self, NewUser, UserChange};
use tenantry_ops::views::{List, Rehearsal, UserView};

use super::{ById, DryRun, PageQuery, create_or_rehearse, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique within the tenant.
    email: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    email: Option<String>,
    /// `""` clears the name.
    name: Option<String>,
}

fn optional_name(name: Option<&str>) -> Result<Option<Name>, ApiError> {
    Ok(field(
        "name",
        Name::parse_optional(name.unwrap_or_default()),
    )?)
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<UserView>)))]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(users::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = CreateUser, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Rehearsal<UserView>), (status = 201, body = UserView), (status = 409, description = "conflict: the email is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateUser>,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let new = NewUser {
        email: field("email", Email::parse(&body.0.email))?,
        name: optional_name(body.0.name.as_deref())?,
    };
    let actor = who.actor();
    create_or_rehearse(
        &who,
        &state,
        &dry,
        &key,
        |conn| async move { users::create(conn, &actor, new).await }.scope_boxed(),
        |user| created(format!("/v1/users/{}", user.id), &user),
    )
    .await
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The user's id")), responses((status = 200, body = UserView)))]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<UserId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let user = who
        .read(&state, |conn| {
            async move { Ok(users::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&user))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The user's id")), request_body = UpdateUser, responses((status = 200, body = UserView), (status = 409, description = "conflict: the email is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<UserId>>,
    body: Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = UserChange {
        email: body
            .email
            .as_deref()
            .map(|e| field("email", Email::parse(e)))
            .transpose()?,
        name: body
            .name
            .as_deref()
            .map(|n| optional_name(Some(n)))
            .transpose()?,
    };
    let (actor, id) = (who.actor(), id.into_inner().id);
    let user = who
        .write(&state, |conn| {
            async move { Ok(users::update(conn, &actor, id, change).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&user))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The user's id")), responses((status = 204, description = "Deleted")))]
#[delete("/users/{id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<UserId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    who.write(&state, |conn| {
        async move { Ok(users::delete(conn, &actor, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
