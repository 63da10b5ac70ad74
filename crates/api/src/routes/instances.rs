//! `/v1/instances`: compute in a cluster. A resize is a PATCH.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use diesel::result::DatabaseErrorKind;
use serde::Deserialize;
use serde_json::json;
use tenantry_core::input;
use tenantry_core::{ClusterId, InstanceId, Name, Resource};
use tenantry_db::queries::instances::Size;
use tenantry_db::{ScopedFutureExt, queries};

use super::{DryRun, PageQuery, charge, create_or_rehearse, created, field, list};
use crate::auth::TenantPrincipal;
use crate::error::violated_constraint;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    name: String,
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
    field("cpu_cores", input::cpu_cores(v))
}
fn memory(v: i64) -> Result<i32, ApiError> {
    field("memory_gb", input::memory_gb(v))
}
fn storage(v: i64) -> Result<i32, ApiError> {
    field("storage_gb", input::storage_gb(v))
}

fn name_taken(err: diesel::result::Error) -> ApiError {
    match violated_constraint(&err) {
        Some((DatabaseErrorKind::UniqueViolation, "instances_tenant_name")) => {
            ApiError::conflict("an instance with this name already exists")
        }
        // Another tenant's cluster and a missing one are the same: absent.
        Some((DatabaseErrorKind::ForeignKeyViolation, "instances_cluster_fk")) => {
            ApiError::validation("cluster_id", "no such cluster")
        }
        _ => err.into(),
    }
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<tenantry_db::models::Instance>), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/instances")]
pub async fn list_instances(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let (items, more) = who
        .read(&state, |conn| {
            async move { Ok(queries::instances::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(items, more, |i| *i.id.as_uuid()))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(super::DryRun), request_body = CreateInstance, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Object), (status = 201, body = tenantry_db::models::Instance), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/instances")]
pub async fn create_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateInstance>,
    dry: web::Query<DryRun>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = field("name", Name::parse(&body.name))?;
    let cluster: ClusterId = body
        .cluster_id
        .parse()
        .map_err(|_| ApiError::validation("cluster_id", "must be a UUID"))?;
    let size = Size {
        cpu_cores: cpu(body.cpu_cores)?,
        memory_gb: memory(body.memory_gb)?,
        storage_gb: storage(body.storage_gb)?,
    };
    let (tenant, actor) = (who.tenant_id, who.sub.clone());
    create_or_rehearse(
        &who,
        &state,
        &dry,
        |conn| {
            async move {
                let instance = queries::instances::create(conn, tenant, cluster, name.as_str(), size)
                    .await
                    .map_err(name_taken)?;
                charge(conn, tenant, size.footprint()).await?;
                queries::events::record(
                    conn,
                    tenant,
                    "instance.created",
                    &actor,
                    Some(*instance.id.as_uuid()),
                    json!({"name": instance.name, "cpu_cores": size.cpu_cores, "memory_gb": size.memory_gb, "storage_gb": size.storage_gb}),
                )
                .await?;
                Ok(instance)
            }
            .scope_boxed()
        },
        |instance| created(format!("/v1/instances/{}", instance.id), &instance),
    )
    .await
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 200, body = tenantry_db::models::Instance), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/instances/{id}")]
pub async fn get_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<InstanceId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner());
    let instance = who
        .read(&state, |conn| {
            async move { Ok(queries::instances::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(instance))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), request_body = UpdateInstance, responses((status = 200, body = tenantry_db::models::Instance), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/instances/{id}")]
pub async fn update_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<InstanceId>,
    body: Json<UpdateInstance>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = body
        .name
        .as_deref()
        .map(|n| field("name", Name::parse(n)))
        .transpose()?;
    let cpu_cores = body.cpu_cores.map(cpu).transpose()?;
    let memory_gb = body.memory_gb.map(memory).transpose()?;
    let storage_gb = body.storage_gb.map(storage).transpose()?;
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    let instance = who
        .write(&state, |conn| {
            async move {
                let current = queries::instances::get_for_update(conn, tenant, id).await?;
                let size = Size {
                    cpu_cores: cpu_cores.unwrap_or(current.cpu_cores),
                    memory_gb: memory_gb.unwrap_or(current.memory_gb),
                    storage_gb: storage_gb.unwrap_or(current.storage_gb),
                };
                let name = name.as_ref().map_or(current.name.as_str(), Name::as_str);
                let updated = queries::instances::update(conn, tenant, id, name, size).await.map_err(name_taken)?;
                // A resize pays (or gives back) only the difference.
                let before = Size {
                    cpu_cores: current.cpu_cores,
                    memory_gb: current.memory_gb,
                    storage_gb: current.storage_gb,
                };
                let mut delta = size.footprint();
                let previous = before.footprint();
                for resource in [Resource::CpuCores, Resource::MemoryGb, Resource::StorageGb] {
                    delta = delta.with(resource, delta.get(resource) - previous.get(resource));
                }
                charge(conn, tenant, delta.with(Resource::Instances, 0)).await?;
                queries::events::record(
                    conn,
                    tenant,
                    "instance.updated",
                    &actor,
                    Some(*id.as_uuid()),
                    json!({"cpu_cores": size.cpu_cores, "memory_gb": size.memory_gb, "storage_gb": size.storage_gb}),
                )
                .await?;
                Ok(updated)
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(instance))
}

#[utoipa::path(tag = "instances", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/instances/{id}")]
pub async fn delete_instance(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<InstanceId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    who.write(&state, |conn| {
        async move {
            let deleted = queries::instances::delete(conn, tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            let size = Size {
                cpu_cores: deleted.cpu_cores,
                memory_gb: deleted.memory_gb,
                storage_gb: deleted.storage_gb,
            };
            charge(conn, tenant, size.footprint().negated()).await?;
            queries::events::record(
                conn,
                tenant,
                "instance.deleted",
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
