//! Dedicated placement on a Citus cluster: a tenant isolated to a shard
//! group of its own and, when asked, put on a named worker. On plain
//! PostgreSQL both operations answer `CitusRequired`.

use diesel::result::Error as DieselError;
use serde_json::json;
use tenantry_db::Conn;
use tenantry_db::models::Tenant;
use tenantry_db::queries::placement::{self, Outcome, Placement};
use tenantry_db::{ScopedFutureExt, queries};

use crate::tenants::resolve;
use crate::views::{PlacementChange, PlacementView};
use crate::{Actor, Error, Operations};

/// A worker, as the cluster names it (`pg_dist_node`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub host: String,
    pub port: i32,
}

impl Node {
    /// `host:port`, or `[v6 address]:port`.
    pub fn parse(node: &str) -> Result<Self, Error> {
        let invalid = || Error::validation("node", "must be host:port, e.g. 10.0.0.7:5432");
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
        Ok(Self {
            host: host.to_owned(),
            port: i32::from(port),
        })
    }
}

/// What to do: isolate (always; Citus cannot merge a shard group back),
/// and optionally move to `node`.
#[derive(Debug, Clone)]
pub struct PlacementRequest {
    pub isolate: bool,
    /// `host:port` (parsed by [`Node::parse`] after `isolate` is checked).
    pub node: Option<String>,
    pub reason: Option<String>,
}

/// The tenant and, on Citus, its placement; `CitusRequired` elsewhere.
async fn current(conn: &mut Conn<'_>, key: &str) -> Result<(Tenant, Placement), Error> {
    let tenant = resolve(conn, key).await?;
    if !placement::is_citus(conn).await? {
        return Err(Error::CitusRequired);
    }
    let now = placement::of_tenant(conn, tenant.id).await?;
    Ok((tenant, now))
}

pub async fn get(ops: &Operations, key: &str) -> Result<PlacementView, Error> {
    let (tenant, now) = ops
        .db
        .platform()
        .run(|conn| async move { current(conn, key).await }.scope_boxed())
        .await?;
    Ok(PlacementView::new(tenant.id, &now))
}

/// The outcomes of `tenant_place` that did nothing because they could not.
fn refusal(outcome: Outcome) -> Result<(), Error> {
    Err(match outcome {
        Outcome::Isolated | Outcome::Moved | Outcome::IsolatedAndMoved | Outcome::Unchanged => {
            return Ok(());
        }
        Outcome::UnknownTenant => Error::NotFound,
        Outcome::UnknownNode => Error::validation(
            "node",
            "no active worker that holds shards has this address",
        ),
        Outcome::Busy => Error::PlacementInProgress,
        Outcome::NodeUnreachable => Error::DatabaseUnavailable,
        Outcome::Replicated => Error::PlacementUnavailable(
            "the tenant's shards are replicated; Citus isolates only unreplicated shards",
        ),
        Outcome::OwnerSubjectToRls => Error::PlacementUnavailable(
            "the migration role must bypass row level security on every node for Citus to copy shards (see the README, Citus); nothing was moved",
        ),
    })
}

/// Errors of the split or move itself: never SQL in the answer.
fn placement_error(err: DieselError) -> Error {
    if let DieselError::DatabaseError(_, info) = &err {
        let message = info.message();
        if message.starts_with("could not acquire the lock required to") {
            return Error::PlacementInProgress;
        }
        if message.starts_with("there are missing reference tables") {
            return Error::PlacementUnavailable(
                "a node lacks the reference tables; copy them first (replicate_reference_tables())",
            );
        }
        if message.contains("not enough empty space") {
            return Error::PlacementUnavailable(
                "the target node has not enough disk space for the tenant's shard group",
            );
        }
        if message.contains("connection to the remote node") {
            tracing::warn!(cause = %message, "placement: a node did not answer");
            return Error::DatabaseUnavailable;
        }
    }
    err.into()
}

/// Isolates the tenant (and moves it to `node`); audited as `tenant.placed`
/// with the placement before and after, when anything changed.
pub async fn place(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    request: PlacementRequest,
) -> Result<PlacementChange, Error> {
    if !request.isolate {
        return Err(Error::validation(
            "isolate",
            "must be true: a tenant's shard group cannot be merged back",
        ));
    }
    let node = request.node.as_deref().map(Node::parse).transpose()?;
    let reason = crate::reason(request.reason)?;
    let citus = ops.db.citus_settings().clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let (tenant, now) = current(conn, key).await?;
                if tenant.purged_at.is_some() {
                    return Err(Error::TenantPurged);
                }
                let before = PlacementView::new(tenant.id, &now);
                let target = node.as_ref().map(|n| (n.host.as_str(), n.port));
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
                        actor.as_str(),
                        "tenant.placed",
                        Some(json!(before)),
                        Some(json!(after)),
                        reason.as_deref(),
                    )
                    .await?;
                }
                Ok(PlacementChange {
                    placement: after,
                    changed,
                })
            }
            .scope_boxed()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::Node;

    #[test]
    fn nodes_are_host_and_port() {
        let parse = |s: &str| Node::parse(s).map(|n| (n.host, n.port));
        assert_eq!(
            parse("10.0.0.7:5432").ok(),
            Some(("10.0.0.7".to_owned(), 5432))
        );
        assert_eq!(
            parse("worker-2.db:6432").ok(),
            Some(("worker-2.db".to_owned(), 6432))
        );
        assert_eq!(parse("[::1]:5432").ok(), Some(("::1".to_owned(), 5432)));
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
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("{}:1", "a".repeat(254))).is_err());
    }
}
