//! `/v1/instances`: compute in a cluster. A resize is a PATCH.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use tenantry_core::{ClusterId, InstanceId, Name, input};
use tenantry_db::ScopedFutureExt;
use tenantry_db::queries::instances::Size;
use tenantry_ops::field;
use tenantry_ops::instances::{self, InstanceChange, NewInstance};
use tenantry_ops::views::{InstanceView, List, Rehearsal};

use super::{ById, DryRun, PageQuery, create_or_rehearse, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    /// Unique within the tenant.
    name: String,
    /// One of the tenant's clusters.
    cluster_id: String,
    cpu_cores: i64,
    memory_gb: i64,
    #[serde(default)]
    storage_gb: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    name: Option<String>,
    cpu_cores: Option<i64>,
    memory_gb: Option<i64>,
    storage_gb: Option<i64>,
}

fn cpu(v: i64) -> Result<i32, ApiError> {
    Ok(field("cpu_cores", input::cpu_cores(v))?)
}
fn memory(v: i64) -> Result<i32, ApiError> {
    Ok(field("memory_gb", input::memory_gb(v))?)
}
fn storage(v: i64) -> Result<i32, ApiError> {
    Ok(field("storage_gb", input::storage_gb(v))?)
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<InstanceView>)))]
#[get("/instances")]
pub async fn list_instances(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(instances::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = CreateInstance, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Rehearsal<InstanceView>), (status = 201, body = InstanceView), (status = 403, description = "quota_exceeded, with resource, limit, used and requested", body = crate::error::Problem, content_type = "application/problem+json"), (status = 409, description = "conflict: the name is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/instances")]
pub async fn create_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateInstance>,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let new = NewInstance {
        name: field("name", Name::parse(&body.name))?,
        cluster: body
            .cluster_id
            .parse::<ClusterId>()
            .map_err(|_| ApiError::validation("cluster_id", "must be a UUID"))?,
        size: Size {
            cpu_cores: cpu(body.cpu_cores)?,
            memory_gb: memory(body.memory_gb)?,
            storage_gb: storage(body.storage_gb)?,
        },
    };
    let actor = who.actor();
    create_or_rehearse(
        &who,
        &state,
        &dry,
        &key,
        |conn| async move { instances::create(conn, &actor, new).await }.scope_boxed(),
        |instance| created(format!("/v1/instances/{}", instance.id), &instance),
    )
    .await
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The instance's id")), responses((status = 200, body = InstanceView)))]
#[get("/instances/{id}")]
pub async fn get_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<InstanceId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let instance = who
        .read(&state, |conn| {
            async move { Ok(instances::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&instance))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The instance's id")), request_body = UpdateInstance, responses((status = 200, body = InstanceView), (status = 403, description = "quota_exceeded: the resize needs more than the quota has left", body = crate::error::Problem, content_type = "application/problem+json"), (status = 409, description = "conflict: the name is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/instances/{id}")]
pub async fn update_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<InstanceId>>,
    body: Json<UpdateInstance>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = InstanceChange {
        name: body
            .name
            .as_deref()
            .map(|n| field("name", Name::parse(n)))
            .transpose()?,
        cpu_cores: body.cpu_cores.map(cpu).transpose()?,
        memory_gb: body.memory_gb.map(memory).transpose()?,
        storage_gb: body.storage_gb.map(storage).transpose()?,
    };
    let (actor, id) = (who.actor(), id.into_inner().id);
    let instance = who
        .write(&state, |conn| {
            async move { Ok(instances::update(conn, &actor, id, change).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&instance))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The instance's id")), responses((status = 204, description = "Deleted")))]
#[delete("/instances/{id}")]
pub async fn delete_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<InstanceId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    who.write(&state, |conn| {
        async move { Ok(instances::delete(conn, &actor, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
