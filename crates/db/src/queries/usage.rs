//! Usage history for billing (sql/0015): per tenant and period (the
//! `[usage] interval`, aligned to UTC boundaries counted from
//! 2000-01-01 00:00 UTC), the usage at the end of the period and what its
//! charges provisioned and released.
//!
//! - [`record`] adds a charge to the counters of the period it falls in, in
//!   the charge's own transaction (called by `quotas::consume`); the period
//!   comes from the connection's `tenantry.usage_interval` (the pool sets
//!   it) and the database's clock.
//! - [`sample`] closes one period for every tenant in ONE statement (the
//!   platform scope, as `tenant_usage`'s admin reads): the usage now minus
//!   what the charges since the period's end changed — both read in the
//!   same snapshot, so the sample is the usage at the boundary however late
//!   the sampler runs, and `sample(p) + provisioned(p+1) − released(p+1) =
//!   sample(p+1)`. Idempotent: a period already sampled is left alone, so
//!   replicas sampling at once write it once.
//! - [`prune`] drops periods past the retention; [`buckets`] reads the
//!   history aggregated to a granularity.

use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryResult, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;
use tenantry_core::quota::{Amounts, Resource};

/// Where periods and buckets are aligned from, as a Unix time
/// (2000-01-01 00:00:00 UTC): an hourly period starts on the hour, a day
/// at 00:00 UTC.
pub const ORIGIN_UNIX: i64 = 946_684_800;

fn clamp(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Adds `delta` (positive: provisioned, negative: released) to the
/// counters of the tenant's current period. One statement; run it in the
/// charge's transaction, after the charge succeeded.
pub async fn record(conn: &mut Conn<'_>, tenant: TenantId, delta: Amounts) -> QueryResult<()> {
    if delta.is_zero() {
        return Ok(());
    }
    use super::fixed::{Bind, Fixed};
    /// The counters' statement-cache key.
    struct RecordUsage;
    let mut binds = vec![Bind::Uuid(tenant.into())];
    for r in Resource::ALL {
        binds.push(Bind::Int(clamp(delta.get(r).max(0))));
        binds.push(Bind::Int(clamp((-delta.get(r)).max(0))));
    }
    Fixed::<RecordUsage>::new(
        "INSERT INTO usage_history AS h (tenant_id, id, period_start, users_provisioned, users_released, api_keys_provisioned, api_keys_released, clusters_provisioned, clusters_released, instances_provisioned, instances_released, cpu_cores_provisioned, cpu_cores_released, memory_gb_provisioned, memory_gb_released, storage_gb_provisioned, storage_gb_released)
         VALUES ($1, gen_random_uuid(),
                 date_bin(make_interval(secs => coalesce(nullif(current_setting('tenantry.usage_interval', true), ''), '3600')::double precision),
                          clock_timestamp(), timestamptz '2000-01-01 00:00:00+00'),
                 $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (tenant_id, period_start) DO UPDATE SET
             users_provisioned = h.users_provisioned + EXCLUDED.users_provisioned,
             users_released = h.users_released + EXCLUDED.users_released,
             api_keys_provisioned = h.api_keys_provisioned + EXCLUDED.api_keys_provisioned,
             api_keys_released = h.api_keys_released + EXCLUDED.api_keys_released,
             clusters_provisioned = h.clusters_provisioned + EXCLUDED.clusters_provisioned,
             clusters_released = h.clusters_released + EXCLUDED.clusters_released,
             instances_provisioned = h.instances_provisioned + EXCLUDED.instances_provisioned,
             instances_released = h.instances_released + EXCLUDED.instances_released,
             cpu_cores_provisioned = h.cpu_cores_provisioned + EXCLUDED.cpu_cores_provisioned,
             cpu_cores_released = h.cpu_cores_released + EXCLUDED.cpu_cores_released,
             memory_gb_provisioned = h.memory_gb_provisioned + EXCLUDED.memory_gb_provisioned,
             memory_gb_released = h.memory_gb_released + EXCLUDED.memory_gb_released,
             storage_gb_provisioned = h.storage_gb_provisioned + EXCLUDED.storage_gb_provisioned,
             storage_gb_released = h.storage_gb_released + EXCLUDED.storage_gb_released",
        binds,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Samples the period `[period_start, period_end)` for every tenant that
/// has usage (not purged) and existed before the period's end: one
/// statement, in the platform scope. Answers how many tenants it sampled
/// (0 when another replica was first).
pub async fn sample(
    conn: &mut Conn<'_>,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> QueryResult<usize> {
    sql_query(
        "INSERT INTO usage_history AS h
                (tenant_id, id, period_start, users, api_keys, clusters, instances, cpu_cores, memory_gb, storage_gb, sampled_at)
         SELECT u.tenant_id, md5(u.tenant_id::text || '/' || $3)::uuid, $1,
                u.users - coalesce(sum(o.users_provisioned - o.users_released), 0),
                u.api_keys - coalesce(sum(o.api_keys_provisioned - o.api_keys_released), 0),
                u.clusters - coalesce(sum(o.clusters_provisioned - o.clusters_released), 0),
                u.instances - coalesce(sum(o.instances_provisioned - o.instances_released), 0),
                u.cpu_cores - coalesce(sum(o.cpu_cores_provisioned - o.cpu_cores_released), 0),
                u.memory_gb - coalesce(sum(o.memory_gb_provisioned - o.memory_gb_released), 0),
                u.storage_gb - coalesce(sum(o.storage_gb_provisioned - o.storage_gb_released), 0),
                now()
           FROM tenant_usage u
           JOIN tenants t ON t.id = u.tenant_id AND t.created_at < $2
           LEFT JOIN usage_history o ON o.tenant_id = u.tenant_id AND o.period_start >= $2
          GROUP BY u.tenant_id, u.users, u.api_keys, u.clusters, u.instances, u.cpu_cores, u.memory_gb, u.storage_gb
         ON CONFLICT (tenant_id, period_start) DO UPDATE SET
             users = EXCLUDED.users,
             api_keys = EXCLUDED.api_keys,
             clusters = EXCLUDED.clusters,
             instances = EXCLUDED.instances,
             cpu_cores = EXCLUDED.cpu_cores,
             memory_gb = EXCLUDED.memory_gb,
             storage_gb = EXCLUDED.storage_gb,
             sampled_at = EXCLUDED.sampled_at
          WHERE h.sampled_at IS NULL",
    )
    .bind::<Timestamptz, _>(period_start)
    .bind::<Timestamptz, _>(period_end)
    .bind::<Text, _>(period_start.timestamp().to_string())
    .execute(conn)
    .await
}

/// Deletes every tenant's periods that started before `before` (the
/// retention), tenant by tenant along the (tenant_id, period_start) index,
/// in one statement. Answers how many periods went.
pub async fn prune(conn: &mut Conn<'_>, before: DateTime<Utc>) -> QueryResult<usize> {
    sql_query(
        "DELETE FROM usage_history h USING tenant_usage u
          WHERE h.tenant_id = u.tenant_id AND h.period_start < $1",
    )
    .bind::<Timestamptz, _>(before)
    .execute(conn)
    .await
}

/// One bucket of one tenant's history: the sampled periods that start in
/// it, aggregated (the usage at the end of the last one, the peak, the
/// counters summed).
#[derive(Debug, Clone, QueryableByName)]
pub struct Bucket {
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: TenantId,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Timestamptz)]
    pub bucket_start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub periods: i64,
    #[diesel(sql_type = Integer)]
    pub users: i32,
    #[diesel(sql_type = Integer)]
    pub users_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub users_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub users_released: i64,
    #[diesel(sql_type = Integer)]
    pub api_keys: i32,
    #[diesel(sql_type = Integer)]
    pub api_keys_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub api_keys_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub api_keys_released: i64,
    #[diesel(sql_type = Integer)]
    pub clusters: i32,
    #[diesel(sql_type = Integer)]
    pub clusters_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub clusters_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub clusters_released: i64,
    #[diesel(sql_type = Integer)]
    pub instances: i32,
    #[diesel(sql_type = Integer)]
    pub instances_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub instances_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub instances_released: i64,
    #[diesel(sql_type = Integer)]
    pub cpu_cores: i32,
    #[diesel(sql_type = Integer)]
    pub cpu_cores_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub cpu_cores_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub cpu_cores_released: i64,
    #[diesel(sql_type = Integer)]
    pub memory_gb: i32,
    #[diesel(sql_type = Integer)]
    pub memory_gb_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub memory_gb_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub memory_gb_released: i64,
    #[diesel(sql_type = Integer)]
    pub storage_gb: i32,
    #[diesel(sql_type = Integer)]
    pub storage_gb_peak: i32,
    #[diesel(sql_type = BigInt)]
    pub storage_gb_provisioned: i64,
    #[diesel(sql_type = BigInt)]
    pub storage_gb_released: i64,
}

impl Bucket {
    /// The usage at the end of the bucket.
    #[must_use]
    pub fn usage(&self) -> Amounts {
        Amounts::default()
            .with(Resource::Users, self.users.into())
            .with(Resource::ApiKeys, self.api_keys.into())
            .with(Resource::Clusters, self.clusters.into())
            .with(Resource::Instances, self.instances.into())
            .with(Resource::CpuCores, self.cpu_cores.into())
            .with(Resource::MemoryGb, self.memory_gb.into())
            .with(Resource::StorageGb, self.storage_gb.into())
    }
}

/// What to read: the sampled periods starting in `[from, to)`, aggregated
/// into buckets of `bucket_secs` aligned to [`ORIGIN_UNIX`]; at most
/// `limit` rows, ordered by tenant then bucket.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_secs: f64,
    pub limit: i64,
}

/// The history of `tenants` in `range` (in a tenant's scope, the tenant
/// itself; in the platform scope, any).
pub async fn buckets(
    conn: &mut Conn<'_>,
    tenants: &[TenantId],
    range: Range,
) -> QueryResult<Vec<Bucket>> {
    // One tenant: `tenant_id = $6`, so Citus routes it to one shard.
    let (which, first) = match tenants {
        [one] => ("h.tenant_id = $6", Some(*one)),
        _ => ("h.tenant_id = ANY($1)", None),
    };
    sql_query(format!(
        "SELECT h.tenant_id, t.slug,
                date_bin(make_interval(secs => $4), h.period_start, timestamptz '2000-01-01 00:00:00+00') AS bucket_start,
                count(*) AS periods,
                (array_agg(h.users ORDER BY h.period_start DESC))[1] AS users, max(h.users) AS users_peak,
                sum(h.users_provisioned)::bigint AS users_provisioned, sum(h.users_released)::bigint AS users_released,
                (array_agg(h.api_keys ORDER BY h.period_start DESC))[1] AS api_keys, max(h.api_keys) AS api_keys_peak,
                sum(h.api_keys_provisioned)::bigint AS api_keys_provisioned, sum(h.api_keys_released)::bigint AS api_keys_released,
                (array_agg(h.clusters ORDER BY h.period_start DESC))[1] AS clusters, max(h.clusters) AS clusters_peak,
                sum(h.clusters_provisioned)::bigint AS clusters_provisioned, sum(h.clusters_released)::bigint AS clusters_released,
                (array_agg(h.instances ORDER BY h.period_start DESC))[1] AS instances, max(h.instances) AS instances_peak,
                sum(h.instances_provisioned)::bigint AS instances_provisioned, sum(h.instances_released)::bigint AS instances_released,
                (array_agg(h.cpu_cores ORDER BY h.period_start DESC))[1] AS cpu_cores, max(h.cpu_cores) AS cpu_cores_peak,
                sum(h.cpu_cores_provisioned)::bigint AS cpu_cores_provisioned, sum(h.cpu_cores_released)::bigint AS cpu_cores_released,
                (array_agg(h.memory_gb ORDER BY h.period_start DESC))[1] AS memory_gb, max(h.memory_gb) AS memory_gb_peak,
                sum(h.memory_gb_provisioned)::bigint AS memory_gb_provisioned, sum(h.memory_gb_released)::bigint AS memory_gb_released,
                (array_agg(h.storage_gb ORDER BY h.period_start DESC))[1] AS storage_gb, max(h.storage_gb) AS storage_gb_peak,
                sum(h.storage_gb_provisioned)::bigint AS storage_gb_provisioned, sum(h.storage_gb_released)::bigint AS storage_gb_released
           FROM usage_history h
           JOIN tenants t ON t.id = h.tenant_id
          WHERE {which} AND h.sampled_at IS NOT NULL
            AND h.period_start >= $2 AND h.period_start < $3
          GROUP BY h.tenant_id, t.slug, bucket_start
          ORDER BY h.tenant_id, bucket_start
          LIMIT $5"
    ))
    .bind::<Array<SqlUuid>, _>(tenants)
    .bind::<Timestamptz, _>(range.from)
    .bind::<Timestamptz, _>(range.to)
    .bind::<Double, _>(range.bucket_secs)
    .bind::<BigInt, _>(range.limit)
    .bind::<Nullable<SqlUuid>, _>(first)
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Tenant {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: TenantId,
}

/// A page of the tenants whose history the finance export reads: every
/// tenant not purged (a purged tenant's history went with it), by id,
/// after `after`, at most `limit`. From the registry, not a scan of the
/// history: each page's history is then read along the (tenant_id,
/// period_start) index. Platform scope.
pub async fn tenants(
    conn: &mut Conn<'_>,
    after: Option<uuid::Uuid>,
    limit: i64,
) -> QueryResult<Vec<TenantId>> {
    let rows: Vec<Tenant> = sql_query(
        "SELECT id AS tenant_id FROM tenants
          WHERE purged_at IS NULL AND ($1::uuid IS NULL OR id > $1)
          ORDER BY id LIMIT $2",
    )
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

#[derive(QueryableByName)]
struct Clock {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// The database's clock (the one the charges' periods are read from).
pub async fn clock(conn: &mut Conn<'_>) -> QueryResult<DateTime<Utc>> {
    let c: Clock = sql_query("SELECT clock_timestamp() AS now")
        .get_result(conn)
        .await?;
    Ok(c.now)
}
