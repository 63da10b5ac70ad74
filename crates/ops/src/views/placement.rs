use serde::Serialize;
use tenantry_core::TenantId;
use tenantry_db::queries::placement::Placement;

/// The tenant's shard of one table.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShardView {
    pub table: String,
    pub shard_id: i64,
    /// `host:port`.
    pub node: String,
}

/// Where a tenant's rows live.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlacementView {
    pub tenant_id: TenantId,
    /// Always `true` (a plain PostgreSQL database answers 409).
    pub distributed: bool,
    /// The tenant has a shard group of its own: its hash range is the
    /// tenant id's hash value alone.
    pub isolated: bool,
    /// `host:port` of the worker holding the tenant's shard group.
    pub node: Option<String>,
    /// The tenant id's hash value (Citus's `worker_hash`).
    pub hash: i32,
    /// `[min, max]` of the shard group's hash range.
    pub hash_range: Option<[i32; 2]>,
    /// One shard per tenant table (all co-located, on `node`).
    pub shards: Vec<ShardView>,
}

impl PlacementView {
    #[must_use]
    pub fn new(tenant: TenantId, placement: &Placement) -> Self {
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

/// A placement after a change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlacementChange {
    #[serde(flatten)]
    pub placement: PlacementView,
    /// Whether anything moved (`false`: it already was where asked).
    pub changed: bool,
}
