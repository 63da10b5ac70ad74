//! The platform at a glance (the console's overview; platform scope).

use crate::Conn;
use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

/// How many tenants have one status, and how many of them are purged.
#[derive(Debug, Clone, QueryableByName)]
pub struct StatusCount {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub tenants: i64,
    #[diesel(sql_type = BigInt)]
    pub purged: i64,
}

/// Tenants per status (statuses with none are absent).
pub async fn status_counts(conn: &mut Conn<'_>) -> QueryResult<Vec<StatusCount>> {
    diesel::sql_query(
        "SELECT status, count(*) AS tenants,
                count(*) FILTER (WHERE purged_at IS NOT NULL) AS purged
           FROM tenants GROUP BY status ORDER BY status",
    )
    .load(conn)
    .await
}

/// One tenant's use of one resource at or over its limit.
#[derive(Debug, Clone, QueryableByName)]
pub struct OverQuota {
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: TenantId,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    /// The limit's name (`max_users`, ...).
    #[diesel(sql_type = Text)]
    pub resource: String,
    #[diesel(sql_type = BigInt)]
    pub used: i64,
    #[diesel(sql_type = BigInt)]
    pub limit: i64,
}

/// The `top` (tenant, resource) pairs whose usage is at or over the limit,
/// by usage/limit, highest first (a limit of 0 with usage above it first
/// of all); unused resources and purged tenants are left out. One query
/// over `tenant_quotas` and `tenant_usage`.
pub async fn over_quota(conn: &mut Conn<'_>, top: i64) -> QueryResult<Vec<OverQuota>> {
    diesel::sql_query(
        "SELECT t.id AS tenant_id, t.slug, t.status, r.resource,
                r.used::bigint AS used, r.lim::bigint AS \"limit\"
           FROM tenant_usage u
           JOIN tenant_quotas q ON q.tenant_id = u.tenant_id
           JOIN tenants t ON t.id = u.tenant_id
          CROSS JOIN LATERAL (VALUES
                ('max_users', u.users, q.max_users),
                ('max_api_keys', u.api_keys, q.max_api_keys),
                ('max_clusters', u.clusters, q.max_clusters),
                ('max_instances', u.instances, q.max_instances),
                ('max_cpu_cores', u.cpu_cores, q.max_cpu_cores),
                ('max_memory_gb', u.memory_gb, q.max_memory_gb),
                ('max_storage_gb', u.storage_gb, q.max_storage_gb)
          ) AS r(resource, used, lim)
          WHERE t.purged_at IS NULL AND r.used > 0 AND r.used >= r.lim
          ORDER BY CASE WHEN r.lim <= 0 THEN 'Infinity'::float8
                        ELSE r.used::float8 / r.lim END DESC,
                   t.slug, r.resource
          LIMIT $1",
    )
    .bind::<BigInt, _>(top)
    .load(conn)
    .await
}
