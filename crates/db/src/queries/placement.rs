//! Where a tenant's rows live on a Citus cluster, and dedicated placement:
//! its own shard group, on a worker of the admin's choosing. The work is
//! done by `tenant_place` (sql/citus.sql), the one SECURITY DEFINER function
//! that may split and move shards; these run in the platform scope.

use crate::Conn;
use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

use crate::CitusSettings;

/// Whether the database has the citus extension: placement needs it.
pub async fn is_citus(conn: &mut Conn<'_>) -> Result<bool, diesel::result::Error> {
    crate::migrate::is_citus(conn).await
}

/// One shard holding the tenant's rows of one table.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Shard {
    #[diesel(sql_type = Text)]
    pub table: String,
    #[diesel(sql_type = BigInt)]
    pub shard_id: i64,
    /// The shard's range of `tenant_id` hash values.
    #[diesel(sql_type = Integer)]
    pub min_hash: i32,
    #[diesel(sql_type = Integer)]
    pub max_hash: i32,
    #[diesel(sql_type = Text)]
    pub node_name: String,
    #[diesel(sql_type = Integer)]
    pub node_port: i32,
}

impl Shard {
    /// `host:port` (`[host]:port` for an IPv6 address).
    #[must_use]
    pub fn node(&self) -> String {
        node_address(&self.node_name, self.node_port)
    }
}

#[must_use]
pub fn node_address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The tenant's shard of every table of the tenant tables' co-location
/// group (one shard group: they are always on one node together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The tenant id's hash value: its shard group holds it.
    pub hash: i32,
    pub shards: Vec<Shard>,
}

impl Placement {
    /// The shard group's hash range is the tenant's own hash value alone:
    /// no other tenant can land in it (but one whose id hashes to the very
    /// same 32-bit value).
    #[must_use]
    pub fn isolated(&self) -> bool {
        !self.shards.is_empty()
            && self
                .shards
                .iter()
                .all(|s| s.min_hash == self.hash && s.max_hash == self.hash)
    }

    /// The node holding the whole shard group, if one does.
    #[must_use]
    pub fn node(&self) -> Option<String> {
        let first = self.shards.as_slice().first()?;
        self.shards
            .iter()
            .all(|s| s.node_name == first.node_name && s.node_port == first.node_port)
            .then(|| first.node())
    }

    /// The shard group's hash range, if its shards agree on one.
    #[must_use]
    pub fn hash_range(&self) -> Option<(i32, i32)> {
        let first = self.shards.as_slice().first()?;
        self.shards
            .iter()
            .all(|s| s.min_hash == first.min_hash && s.max_hash == first.max_hash)
            .then_some((first.min_hash, first.max_hash))
    }
}

#[derive(QueryableByName)]
struct HashRow {
    #[diesel(sql_type = Integer)]
    hash: i32,
}

/// Where `tenant`'s rows live now. Citus only (see [`is_citus`]): reads
/// Citus's metadata, which every role may.
pub async fn of_tenant(
    conn: &mut Conn<'_>,
    tenant: TenantId,
) -> Result<Placement, diesel::result::Error> {
    let HashRow { hash } = sql_query("SELECT worker_hash($1::uuid) AS hash")
        .bind::<SqlUuid, _>(tenant)
        .get_result(conn)
        .await?;
    let shards = sql_query(
        "SELECT d.logicalrelid::regclass::text AS table, s.shardid AS shard_id,
                s.shardminvalue::integer AS min_hash, s.shardmaxvalue::integer AS max_hash,
                n.nodename::text AS node_name, n.nodeport AS node_port
           FROM pg_dist_partition d
           JOIN pg_dist_shard s
             ON s.shardid = get_shard_id_for_distribution_column(d.logicalrelid, $1::uuid)
           JOIN pg_dist_placement p ON p.shardid = s.shardid
           JOIN pg_dist_node n ON n.groupid = p.groupid
          WHERE d.colocationid = (SELECT c.colocationid FROM pg_dist_partition c
                                   WHERE c.logicalrelid = 'public.tenant_quotas'::regclass)
          ORDER BY 1, n.nodename, n.nodeport",
    )
    .bind::<SqlUuid, _>(tenant)
    .load(conn)
    .await?;
    Ok(Placement { hash, shards })
}

/// What `tenant_place` did, or why it did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Split off to a shard group of its own, on the node it was on.
    Isolated,
    /// Already isolated; its shard group moved to the target node.
    Moved,
    /// Split off to a shard group of its own, created on the target node.
    IsolatedAndMoved,
    /// Already isolated on the target node: nothing changed.
    Unchanged,
    UnknownTenant,
    /// No active primary worker that holds shards at that address.
    UnknownNode,
    /// Another placement is running.
    Busy,
    /// The shard has more than one placement (Citus's shard replication).
    Replicated,
    /// The owner role does not bypass row level security on every node:
    /// Citus's copies, which run as the owner, would copy nothing.
    OwnerSubjectToRls,
    /// A worker did not answer.
    NodeUnreachable,
}

impl Outcome {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "isolated" => Self::Isolated,
            "moved" => Self::Moved,
            "isolated_and_moved" => Self::IsolatedAndMoved,
            "unchanged" => Self::Unchanged,
            "unknown_tenant" => Self::UnknownTenant,
            "unknown_node" => Self::UnknownNode,
            "busy" => Self::Busy,
            "replicated" => Self::Replicated,
            "owner_subject_to_rls" => Self::OwnerSubjectToRls,
            "node_unreachable" => Self::NodeUnreachable,
            _ => return None,
        })
    }

    /// Whether the tenant's placement changed.
    #[must_use]
    pub fn changed(self) -> bool {
        matches!(self, Self::Isolated | Self::Moved | Self::IsolatedAndMoved)
    }
}

#[derive(QueryableByName)]
struct PlaceRow {
    #[diesel(sql_type = Nullable<Text>)]
    outcome: Option<String>,
}

/// Isolates `tenant` to a shard group of its own and, with `node`
/// (`host`, `port`), puts that group on that worker; its writes wait for
/// the copy (Citus's `block_writes`, the only mode that works on tables
/// with forced RLS: sql/citus.sql). The first work of the transaction it
/// runs in (Citus refuses a split after writes in the same transaction);
/// the transaction's `statement_timeout` becomes `placement_timeout`
/// (`SET LOCAL`: the pooled connection's own comes back with the
/// transaction's end).
pub async fn place(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    node: Option<(&str, i32)>,
    citus: &CitusSettings,
) -> Result<Outcome, diesel::result::Error> {
    let timeout_ms = citus.placement_timeout.as_millis();
    sql_query(format!("SET LOCAL statement_timeout = {timeout_ms}"))
        .execute(conn)
        .await?;
    let row: PlaceRow = sql_query("SELECT outcome FROM tenant_place($1, $2, $3)")
        .bind::<SqlUuid, _>(tenant)
        .bind::<Nullable<Text>, _>(node.map(|(host, _)| host))
        .bind::<Nullable<Integer>, _>(node.map(|(_, port)| port))
        .get_result(conn)
        .await?;
    row.outcome
        .as_deref()
        .and_then(Outcome::parse)
        .ok_or_else(|| {
            diesel::result::Error::DeserializationError(
                "tenant_place answered an unknown outcome".into(),
            )
        })
}
