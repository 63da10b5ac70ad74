//! `/v1/admin/tenants/{id_or_slug}/placement`: where a tenant's rows live
//! on a Citus cluster, and dedicated placement — the tenant isolated to a
//! shard group of its own and, when asked, put on a named worker. On plain
//! PostgreSQL both answer `409 citus_required`.

use actix_web::{HttpResponse, get, post, web};
use diesel::result::Error as DieselError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantry_core::TenantId;
use tenantry_db::models::Tenant;
use tenantry_db::queries::placement::{self, Outcome, Placement};
use tenantry_db::{AsyncPgConnection, ScopedFutureExt, queries};

use super::{ok, resolve};
use crate::auth::PlatformAdmin;
use crate::json::Json;
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

/// The tenant's shard of one table.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShardView {
    table: String,
    shard_id: i64,
    /// `host:port`.
    node: String,
}

/// Where a tenant's rows live.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlacementView {
    tenant_id: TenantId,
    /// Always `true` (a plain PostgreSQL database answers 409).
    distributed: bool,
    /// The tenant has a shard group of its own: its hash range is the
    /// tenant id's hash value alone.
    isolated: bool,
    /// `host:port` of the worker holding the tenant's shard group.
    node: Option<String>,
    /// The tenant id's hash value (Citus's `worker_hash`).
    hash: i32,
    /// `[min, max]` of the shard group's hash range.
    hash_range: Option<[i32; 2]>,
    /// One shard per tenant table (all co-located, on `node`).
    shards: Vec<ShardView>,
}

impl PlacementView {
    fn new(tenant: TenantId, placement: &Placement) -> Self {
        Self {
            tenant_id: tenant,
            distributed: true,
            isolated: placement.isolated(),
            node: placement.node(),
            hash: placement.hash,
            hash_range: placement.hash_range().map(|(lo, hi)| [lo, hi]),
            shards: placement
                .shards
                .iter()
                .map(|s| ShardView {
                    table: s.table.clone(),
                    shard_id: s.shard_id,
                    node: s.node(),
                })
                .collect(),
        }
    }
}

/// `POST` answers the placement after the change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlacementChange {
    #[serde(flatten)]
    placement: PlacementView,
    /// Whether anything moved (`false`: it already was where asked).
    changed: bool,
}

/// `host:port`, or `[v6 address]:port`.
fn parse_node(node: &str) -> Result<(String, i32), ApiError> {
    let invalid = || ApiError::validation("node", "must be host:port, e.g. 10.0.0.7:5432");
    let (host, port) = node.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let (host, allowed): (&str, fn(char) -> bool) =
        match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => (v6, |c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
            None => (host, |c| {
                c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'
            }),
        };
    if port == 0 || host.is_empty() || host.len() > 253 || !host.chars().all(allowed) {
        return Err(invalid());
    }
    Ok((host.to_owned(), i32::from(port)))
}

/// The tenant and, on Citus, its placement; `409 citus_required` elsewhere.
async fn current(conn: &mut AsyncPgConnection, key: &str) -> Result<(Tenant, Placement), ApiError> {
    let tenant = resolve(conn, key).await?;
    if !placement::is_citus(conn).await? {
        return Err(ApiError::CitusRequired);
    }
    let now = placement::of_tenant(conn, tenant.id).await?;
    Ok((tenant, now))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = PlacementView), (status = 409, description = "citus_required: the database is not a Citus cluster", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/placement")]
pub async fn get_placement(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, now) = state
        .db
        .platform()
        .run(|conn| async move { current(conn, &key).await }.scope_boxed())
        .await?;
    Ok(ok(&PlacementView::new(tenant.id, &now)))
}

/// The outcomes of `tenant_place` that did nothing because they could not.
fn refusal(outcome: Outcome) -> Result<(), ApiError> {
    Err(match outcome {
        Outcome::Isolated | Outcome::Moved | Outcome::IsolatedAndMoved | Outcome::Unchanged => {
            return Ok(());
        }
        Outcome::UnknownTenant => ApiError::NotFound,
        Outcome::UnknownNode => ApiError::validation(
            "node",
            "no active worker that holds shards has this address",
        ),
        Outcome::Busy => ApiError::PlacementInProgress,
        Outcome::NodeUnreachable => ApiError::DatabaseUnavailable,
        Outcome::Replicated => ApiError::PlacementUnavailable(
            "the tenant's shards are replicated; Citus isolates only unreplicated shards",
        ),
        Outcome::OwnerSubjectToRls => ApiError::PlacementUnavailable(
            "the migration role must bypass row level security on every node for Citus to copy shards (see the README, Citus); nothing was moved",
        ),
    })
}

/// Errors of the split or move itself: never SQL in the answer.
fn placement_error(err: DieselError) -> ApiError {
    if let DieselError::DatabaseError(_, info) = &err {
        let message = info.message();
        if message.starts_with("could not acquire the lock required to") {
            return ApiError::PlacementInProgress;
        }
        if message.starts_with("there are missing reference tables") {
            return ApiError::PlacementUnavailable(
                "a node lacks the reference tables; copy them first (replicate_reference_tables())",
            );
        }
        if message.contains("not enough empty space") {
            return ApiError::PlacementUnavailable(
                "the target node has not enough disk space for the tenant's shard group",
            );
        }
        if message.contains("connection to the remote node") {
            tracing::warn!(cause = %message, "placement: a node did not answer");
            return ApiError::DatabaseUnavailable;
        }
    }
    err.into()
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = PlaceTenant, responses((status = 200, body = PlacementChange), (status = 409, description = "citus_required (not a Citus cluster), placement_unavailable (the cluster is not set up for shard moves) or placement_in_progress (another split or move is running)", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "validation: isolate is not true, or node is not host:port of an active worker that holds shards", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants/{id_or_slug}/placement")]
pub async fn place_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<PlaceTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if !body.isolate {
        return Err(ApiError::validation(
            "isolate",
            "must be true: a tenant's shard group cannot be merged back",
        ));
    }
    let node = body.node.as_deref().map(parse_node).transpose()?;
    let reason = body.reason;
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::validation("reason", "at most 1000 characters"));
    }
    let citus = state.db.citus_settings().clone();
    let actor = admin.sub.clone();
    let change = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let (tenant, now) = current(conn, &key).await?;
                if tenant.purged_at.is_some() {
                    return Err(ApiError::TenantPurged);
                }
                let before = PlacementView::new(tenant.id, &now);
                let target = node.as_ref().map(|(host, port)| (host.as_str(), *port));
                let outcome = placement::place(conn, tenant.id, target, &citus)
                    .await
                    .map_err(placement_error)?;
                refusal(outcome)?;
                let after =
                    PlacementView::new(tenant.id, &placement::of_tenant(conn, tenant.id).await?);
                let changed = outcome.changed();
                if changed {
                    queries::audit::record(
                        conn,
                        Some(tenant.id),
                        &actor,
                        "tenant.placed",
                        Some(json!(before)),
                        Some(json!(after)),
                        reason.as_deref(),
                    )
                    .await?;
                }
                Ok::<_, ApiError>(PlacementChange {
                    placement: after,
                    changed,
                })
            }
            .scope_boxed()
        })
        .await?;
    Ok(ok(&change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_host_and_port() {
        assert_eq!(
            parse_node("10.0.0.7:5432").unwrap(),
            ("10.0.0.7".to_owned(), 5432)
        );
        assert_eq!(
            parse_node("worker-2.db:6432").unwrap(),
            ("worker-2.db".to_owned(), 6432)
        );
        assert_eq!(parse_node("[::1]:5432").unwrap(), ("::1".to_owned(), 5432));
        for bad in [
            "",
            "10.0.0.7",
            ":5432",
            "10.0.0.7:",
            "10.0.0.7:0",
            "10.0.0.7:65536",
            "h:p",
            "a b:5432",
            "h\u{202e}:5432",
            "[::1:5432",
            "::1:5432",
            "[]:5432",
            "x:-1",
        ] {
            assert!(parse_node(bad).is_err(), "{bad:?}");
        }
        assert!(parse_node(&format!("{}:1", "a".repeat(254))).is_err());
    }
}
