//! `/v1/clusters`: where instances run. Names unique within the tenant.

use actix_web::{HttpResponse, delete, get, post, web};
use diesel::result::DatabaseErrorKind;
use serde::Deserialize;
use serde_json::json;
use tenantry_core::{ClusterId, Name, Region, Resource};
use tenantry_db::{ScopedFutureExt, queries};

use super::{DryRun, PageQuery, charge, create_or_rehearse, created, field, list, one};
use crate::auth::TenantPrincipal;
use crate::error::violated_constraint;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    name: String,
    region: String,
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<tenantry_db::models::Cluster>), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/clusters")]
pub async fn list_clusters(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let (items, more) = who
        .read(&state, |conn| {
            async move { Ok(queries::clusters::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(items, more, |c| *c.id.as_uuid()))
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(super::DryRun), request_body = CreateCluster, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Object), (status = 201, body = tenantry_db::models::Cluster), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/clusters")]
pub async fn create_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateCluster>,
    dry: web::Query<DryRun>,
) -> Result<HttpResponse, ApiError> {
    let name = field("name", Name::parse(&body.0.name))?;
    let region = field("region", Region::parse(&body.0.region))?;
    let (tenant, actor) = (who.tenant_id, who.sub.clone());
    create_or_rehearse(
        &who,
        &state,
        &dry,
        |conn| {
            async move {
                let cluster =
                    queries::clusters::create(conn, tenant, name.as_str(), region.as_str())
                        .await
                        .map_err(|e| match violated_constraint(&e) {
                            Some((DatabaseErrorKind::UniqueViolation, "clusters_tenant_name")) => {
                                ApiError::conflict("a cluster with this name already exists")
                            }
                            _ => e.into(),
                        })?;
                charge(conn, tenant, one(Resource::Clusters)).await?;
                queries::events::record(
                    conn,
                    tenant,
                    "cluster.created",
                    &actor,
                    Some(*cluster.id.as_uuid()),
                    json!({"name": cluster.name}),
                )
                .await?;
                Ok(cluster)
            }
            .scope_boxed()
        },
        |cluster| created(format!("/v1/clusters/{}", cluster.id), &cluster),
    )
    .await
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 200, body = tenantry_db::models::Cluster), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/clusters/{id}")]
pub async fn get_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ClusterId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner());
    let cluster = who
        .read(&state, |conn| {
            async move { Ok(queries::clusters::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(cluster))
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 204, description = "Deleted"), (status = 409, description = "still has instances", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/clusters/{id}")]
pub async fn delete_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ClusterId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    who.write(&state, |conn| {
        async move {
            let deleted = queries::clusters::delete(conn, tenant, id)
                .await
                .map_err(|e| match violated_constraint(&e) {
                    Some((DatabaseErrorKind::ForeignKeyViolation, "instances_cluster_fk")) => {
                        ApiError::conflict("the cluster still has instances; delete them first")
                    }
                    _ => e.into(),
                })?;
            if !deleted {
                return Err(ApiError::NotFound);
            }
            charge(conn, tenant, one(Resource::Clusters).negated()).await?;
            queries::events::record(
                conn,
                tenant,
                "cluster.deleted",
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
