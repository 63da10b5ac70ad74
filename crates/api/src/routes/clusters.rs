//! `/v1/clusters`: where instances run.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use tenantry_core::{ClusterId, Name, Region};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::clusters::{self, NewCluster};
use tenantry_ops::field;
use tenantry_ops::views::{ClusterView, List, Rehearsal};

use super::{ById, DryRun, PageQuery, create_or_rehearse, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// Unique within the tenant.
    name: String,
    region: String,
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<ClusterView>)))]
#[get("/clusters")]
pub async fn list_clusters(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(clusters::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = CreateCluster, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Rehearsal<ClusterView>), (status = 201, body = ClusterView), (status = 409, description = "conflict: the name is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/clusters")]
pub async fn create_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateCluster>,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let new = NewCluster {
        name: field("name", Name::parse(&body.0.name))?,
        region: field("region", Region::parse(&body.0.region))?,
    };
    let actor = who.actor();
    create_or_rehearse(
        &who,
        &state,
        &dry,
        &key,
        |conn| async move { clusters::create(conn, &actor, new).await }.scope_boxed(),
        |cluster| created(format!("/v1/clusters/{}", cluster.id), &cluster),
    )
    .await
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The cluster's id")), responses((status = 200, body = ClusterView)))]
#[get("/clusters/{id}")]
pub async fn get_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<ClusterId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let cluster = who
        .read(&state, |conn| {
            async move { Ok(clusters::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&cluster))
}

#[utoipa::path(tag = "clusters", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The cluster's id")), responses((status = 204, description = "Deleted"), (status = 409, description = "conflict: the cluster still has instances", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/clusters/{id}")]
pub async fn delete_cluster(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<ClusterId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    who.write(&state, |conn| {
        async move { Ok(clusters::delete(conn, &actor, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
