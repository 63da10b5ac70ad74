//! What `/metrics` shows of the database, read by the metrics refresher
//! every `[metrics] refresh_interval` (platform scope, the admin pool):
//! never per scrape.

use crate::Conn;
use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Float8, Integer, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

/// The refresher's transaction may take longer than a request's
/// `statement_timeout`: it reads every tenant (on Citus, across every
/// shard), in the background, once per refresh interval.
pub async fn allow_long_statements(conn: &mut Conn<'_>) -> QueryResult<()> {
    diesel::sql_query("SET LOCAL statement_timeout = '60s'")
        .execute(conn)
        .await
        .map(|_| ())
}

/// The platform's lifecycle and quota counts, in one row.
#[derive(Debug, Clone, Default, PartialEq, QueryableByName)]
pub struct Globals {
    #[diesel(sql_type = BigInt)]
    pub active: i64,
    #[diesel(sql_type = BigInt)]
    pub suspended: i64,
    #[diesel(sql_type = BigInt)]
    pub archived: i64,
    /// Deleted and not yet purged.
    #[diesel(sql_type = BigInt)]
    pub deleted: i64,
    /// Deleted, not yet purged, legal hold included.
    #[diesel(sql_type = BigInt)]
    pub awaiting_purge: i64,
    /// On legal hold (not purged; any status).
    #[diesel(sql_type = BigInt)]
    pub on_legal_hold: i64,
    /// now − deleted_at of the oldest deleted tenant not on hold; 0 if none.
    #[diesel(sql_type = Float8)]
    pub oldest_pending_purge_age_seconds: f64,
    /// Deleted, not on hold, past deleted_at + the retention period.
    #[diesel(sql_type = BigInt)]
    pub purge_overdue: i64,
    /// (tenant, resource) pairs with usage at or over the limit (usage > 0,
    /// tenants not purged), as the console's overview counts them.
    #[diesel(sql_type = BigInt)]
    pub quota_over_limit: i64,
}

/// Lifecycle counts of tenants not purged, and the quota pressure; the
/// retention period decides which pending purges are overdue.
pub async fn globals(conn: &mut Conn<'_>, retention_seconds: f64) -> QueryResult<Globals> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = 'active') AS active,
                count(*) FILTER (WHERE status = 'suspended') AS suspended,
                count(*) FILTER (WHERE status = 'archived') AS archived,
                count(*) FILTER (WHERE status = 'deleted') AS deleted,
                count(*) FILTER (WHERE status = 'deleted') AS awaiting_purge,
                count(*) FILTER (WHERE legal_hold) AS on_legal_hold,
                COALESCE(EXTRACT(EPOCH FROM now() - min(deleted_at)
                         FILTER (WHERE status = 'deleted' AND NOT legal_hold))::float8, 0)
                    AS oldest_pending_purge_age_seconds,
                count(*) FILTER (WHERE status = 'deleted' AND NOT legal_hold
                                   AND deleted_at + make_interval(secs => $1) < now())
                    AS purge_overdue,
                (SELECT count(*)
                   FROM tenant_usage u
                   JOIN tenant_quotas q ON q.tenant_id = u.tenant_id
                   JOIN tenants t ON t.id = u.tenant_id
                  CROSS JOIN LATERAL (VALUES
                        (u.users, q.max_users), (u.api_keys, q.max_api_keys),
                        (u.clusters, q.max_clusters), (u.instances, q.max_instances),
                        (u.cpu_cores, q.max_cpu_cores), (u.memory_gb, q.max_memory_gb),
                        (u.storage_gb, q.max_storage_gb)) AS r(used, lim)
                  WHERE t.purged_at IS NULL AND r.used > 0 AND r.used >= r.lim)
                    AS quota_over_limit
           FROM tenants
          WHERE purged_at IS NULL",
    )
    .bind::<Float8, _>(retention_seconds)
    .get_result(conn)
    .await
}

/// One tenant's usage and limits (the quota columns as stored: GB for
/// memory and storage).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct TenantUsage {
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: TenantId,
    #[diesel(sql_type = Integer)]
    pub users: i32,
    #[diesel(sql_type = Integer)]
    pub api_keys: i32,
    #[diesel(sql_type = Integer)]
    pub clusters: i32,
    #[diesel(sql_type = Integer)]
    pub instances: i32,
    #[diesel(sql_type = Integer)]
    pub cpu_cores: i32,
    #[diesel(sql_type = Integer)]
    pub memory_gb: i32,
    #[diesel(sql_type = Integer)]
    pub storage_gb: i32,
    #[diesel(sql_type = Integer)]
    pub max_users: i32,
    #[diesel(sql_type = Integer)]
    pub max_api_keys: i32,
    #[diesel(sql_type = Integer)]
    pub max_clusters: i32,
    #[diesel(sql_type = Integer)]
    pub max_instances: i32,
    #[diesel(sql_type = Integer)]
    pub max_cpu_cores: i32,
    #[diesel(sql_type = Integer)]
    pub max_memory_gb: i32,
    #[diesel(sql_type = Integer)]
    pub max_storage_gb: i32,
}

/// Usage and limits of these tenants (the metrics' tracked set: a few
/// dozen); tenants without rows are absent.
pub async fn usage(conn: &mut Conn<'_>, tenants: &[TenantId]) -> QueryResult<Vec<TenantUsage>> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| *t.as_uuid()).collect();
    diesel::sql_query(
        "SELECT u.tenant_id, u.users, u.api_keys, u.clusters, u.instances, u.cpu_cores,
                u.memory_gb, u.storage_gb, q.max_users, q.max_api_keys, q.max_clusters,
                q.max_instances, q.max_cpu_cores, q.max_memory_gb, q.max_storage_gb
           FROM tenant_usage u
           JOIN tenant_quotas q ON q.tenant_id = u.tenant_id
          WHERE u.tenant_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await
}
