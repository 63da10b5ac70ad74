//! `/v1/admin/tenants/{id_or_slug}/placement`: where a tenant's rows live
//! on a Citus cluster, and dedicated placement. On plain PostgreSQL both
//! answer `409 citus_required`.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use tenantry_ops::placement::{self, PlacementRequest};
use tenantry_ops::views::{PlacementChange, PlacementView};

use crate::auth::PlatformAdmin;
use crate::json::Json;
use crate::routes::ok;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceTenant {
    /// Must be `true`: the tenant gets a shard group of its own (Citus
    /// cannot merge one back).
    isolate: bool,
    /// `host:port` of the worker to put the tenant's shard group on, as the
    /// cluster names it (`pg_dist_node`); absent: the node it is on.
    #[serde(default)]
    node: Option<String>,
    /// Why; kept in the audit log.
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = PlacementView), (status = 409, description = "citus_required: the database is not a Citus cluster", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/placement")]
pub async fn get_placement(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&placement::get(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = PlaceTenant, responses((status = 200, body = PlacementChange), (status = 409, description = "citus_required (not a Citus cluster), placement_unavailable (the cluster is not set up for shard moves) or placement_in_progress (another split or move is running)", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "validation: isolate is not true, or node is not host:port of an active worker that holds shards", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants/{id_or_slug}/placement")]
pub async fn place_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<PlaceTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let request = PlacementRequest {
        isolate: body.isolate,
        node: body.node,
        reason: body.reason,
    };
    Ok(ok(&placement::place(
        &state.ops,
        &admin.actor(),
        &key,
        request,
    )
    .await?))
}
