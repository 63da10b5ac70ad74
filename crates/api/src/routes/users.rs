//! `/v1/users`: people of the tenant. Email unique within the tenant.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use diesel::result::DatabaseErrorKind;
use serde::Deserialize;
use serde_json::json;
use tenantry_core::{Email, Name, Resource, UserId};
use tenantry_db::{ScopedFutureExt, queries};

use super::{DryRun, PageQuery, charge, create_or_rehearse, created, field, list, one};
use crate::auth::TenantPrincipal;
use crate::error::violated_constraint;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    email: Option<String>,
    name: Option<String>,
}

fn duplicate_email(err: diesel::result::Error) -> ApiError {
    match violated_constraint(&err) {
        Some((DatabaseErrorKind::UniqueViolation, "users_tenant_email")) => {
            ApiError::conflict("a user with this email already exists")
        }
        _ => err.into(),
    }
}

fn optional_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = field("name", Name::parse_optional(name.unwrap_or_default()))?;
    Ok(name.as_ref().map_or("", Name::as_str).to_owned())
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<tenantry_db::models::User>), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let (items, more) = who
        .read(&state, |conn| {
            async move { Ok(queries::users::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(items, more, |u| *u.id.as_uuid()))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(super::DryRun), request_body = CreateUser, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Object), (status = 201, body = tenantry_db::models::User), (status = 409, description = "email already in use", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateUser>,
    dry: web::Query<DryRun>,
) -> Result<HttpResponse, ApiError> {
    let email = field("email", Email::parse(&body.0.email))?;
    let name = optional_name(body.0.name.as_deref())?;
    let (tenant, actor) = (who.tenant_id, who.sub.clone());
    create_or_rehearse(
        &who,
        &state,
        &dry,
        |conn| {
            async move {
                let user = queries::users::create(conn, tenant, email.as_str(), &name)
                    .await
                    .map_err(duplicate_email)?;
                charge(conn, tenant, one(Resource::Users)).await?;
                queries::events::record(
                    conn,
                    tenant,
                    "user.created",
                    &actor,
                    Some(*user.id.as_uuid()),
                    json!({"email": user.email}),
                )
                .await?;
                Ok(user)
            }
            .scope_boxed()
        },
        |user| created(format!("/v1/users/{}", user.id), &user),
    )
    .await
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 200, body = tenantry_db::models::User), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner());
    let user = who
        .read(&state, |conn| {
            async move { Ok(queries::users::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), request_body = UpdateUser, responses((status = 200, body = tenantry_db::models::User), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<UserId>,
    body: Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let email = body
        .0
        .email
        .as_deref()
        .map(|e| field("email", Email::parse(e)))
        .transpose()?;
    let name = body
        .0
        .name
        .as_deref()
        .map(|n| optional_name(Some(n)))
        .transpose()?;
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    let user = who
        .write(&state, |conn| {
            async move {
                let user = queries::users::update(
                    conn,
                    tenant,
                    id,
                    email.as_ref().map(Email::as_str),
                    name.as_deref(),
                )
                .await
                .map_err(duplicate_email)?;
                queries::events::record(
                    conn,
                    tenant,
                    "user.updated",
                    &actor,
                    Some(*id.as_uuid()),
                    json!({}),
                )
                .await?;
                Ok(user)
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/users/{id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    who.write(&state, |conn| {
        async move {
            if !queries::users::delete(conn, tenant, id).await? {
                return Err(ApiError::NotFound);
            }
            charge(conn, tenant, one(Resource::Users).negated()).await?;
            queries::events::record(
                conn,
                tenant,
                "user.deleted",
                &actor,
                Some(*id.as_uuid()),
                json!({}),
            )
            .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
