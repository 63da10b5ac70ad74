//! The data side of the retention sweeper. A [`PurgeSession`] owns a
//! dedicated (unpooled) connection holding a session-level advisory lock on
//! one tenant: one sweeper per tenant across replicas, released by closing
//! the connection — also when the process dies. Every batch is its own short
//! transaction with BOTH the platform context (for the progress record) and
//! THAT tenant's context (so RLS confines the delete to it), and records its
//! progress in the same transaction, so a crash resumes with exact counts.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double, Text, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use tenantry_core::TenantId;

use crate::models::RetentionRun;
use crate::schema::TENANT_TABLES;
use crate::scope::{Context, run_on};
use crate::{ContextKey, Db, DbError};

/// Mixed into purge-lock keys ("purgelck"), so they stay apart from the
/// migrations' constant key in the same (int8) advisory-lock key space.
const PURGE_LOCK_SPACE: u64 = 0x7075_7267_656c_636b;

/// The purge lock's key: all 128 bits of the tenant id, folded to the 64 an
/// advisory lock has (until #12 it was the last 32, so among ~65,000
/// tenants two were likely to share a key and hold up each other's purge).
fn lock_key(tenant: TenantId) -> i64 {
    let bits = tenant.as_uuid().as_u128();
    let folded = ((bits >> 64) as u64) ^ (bits as u64);
    (folded ^ PURGE_LOCK_SPACE) as i64
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A batch deleted: how many rows, and the highest id among them.
#[derive(QueryableByName)]
struct Deleted {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<SqlUuid>)]
    last: Option<uuid::Uuid>,
}

/// What one batch removed: its rows, and the id to go on after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub rows: i64,
    /// The highest id deleted; `None` when nothing was.
    pub last: Option<uuid::Uuid>,
}

impl Db {
    /// Deleted tenants whose retention period has passed, not under legal
    /// hold, not yet purged: oldest deletion first.
    pub async fn purge_candidates(
        &self,
        period: Duration,
        limit: i64,
    ) -> Result<Vec<TenantId>, DbError> {
        self.platform()
            .run(|conn| {
                async move {
                    let rows: Vec<Id> = sql_query(
                        "SELECT id FROM tenants
                          WHERE status = 'deleted' AND purged_at IS NULL AND NOT legal_hold
                            AND deleted_at <= now() - make_interval(secs => $1)
                          ORDER BY deleted_at, id LIMIT $2",
                    )
                    .bind::<Double, _>(secs(period))
                    .bind::<BigInt, _>(limit)
                    .load(conn)
                    .await?;
                    Ok::<_, DbError>(
                        rows.into_iter()
                            .map(|r| TenantId::from_uuid(r.id))
                            .collect(),
                    )
                }
                .scope_boxed()
            })
            .await
    }

    /// Releases the slugs of tenants purged longer than `cooling_off` ago.
    /// (Here and below the cutoff carries the arithmetic, not the column:
    /// Citus refuses a STABLE function of a column in a write to a
    /// distributed or reference table.)
    pub async fn release_slugs(&self, cooling_off: Duration) -> Result<usize, DbError> {
        self.platform()
            .run(|conn| {
                async move {
                    Ok::<_, DbError>(
                        sql_query(
                            "UPDATE tenants SET slug_released_at = now()
                              WHERE purged_at IS NOT NULL AND slug_released_at IS NULL
                                AND purged_at <= now() - make_interval(secs => $1)",
                        )
                        .bind::<Double, _>(secs(cooling_off))
                        .execute(conn)
                        .await?,
                    )
                }
                .scope_boxed()
            })
            .await
    }

    /// The purge lock on `tenant`, or `None` when another sweeper holds it.
    pub async fn purge_session(&self, tenant: TenantId) -> Result<Option<PurgeSession>, DbError> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            ok: bool,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            version: i32,
        }
        let mut conn = self.dedicated().await?;
        let locked: Locked = sql_query(
            "SELECT pg_try_advisory_lock($1) AS ok,
                    current_setting('server_version_num')::int AS version",
        )
        .bind::<BigInt, _>(lock_key(tenant))
        .get_result(&mut conn)
        .await?;
        Ok(locked.ok.then_some(PurgeSession {
            conn,
            tenant,
            key: self.context_key().clone(),
            server_version: locked.version,
        }))
    }
}

/// One tenant's purge, holding its lock. Dropping it closes the connection,
/// which releases the lock.
pub struct PurgeSession {
    conn: AsyncPgConnection,
    tenant: TenantId,
    key: ContextKey,
    /// `server_version_num`: where the backend-write counter lives.
    server_version: i32,
}

/// The database's load as the purge's pacer sees it ([`PurgeSession::load`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct DbLoad {
    /// Other sessions of this role on this database running a statement
    /// right now (Citus's own connections between nodes left out).
    #[diesel(sql_type = BigInt)]
    pub other_active: i64,
    /// Buffers client backends have written out (evicting dirty pages)
    /// since the statistics were reset: `pg_stat_bgwriter.buffers_backend`
    /// before PostgreSQL 16, `pg_stat_io` from 16 on.
    #[diesel(sql_type = BigInt)]
    pub backend_writes: i64,
}

impl std::fmt::Debug for PurgeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeSession")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl PurgeSession {
    #[must_use]
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Starts (or resumes) the purge: the tenant must still be deleted, past
    /// `period`, not on legal hold and not purged — checked under a row lock,
    /// so a restore either commits first (and this returns `None`) or finds
    /// the open receipt and is refused. Returns the open receipt.
    pub async fn claim(
        &mut self,
        period: Duration,
        sweeper: &str,
    ) -> Result<Option<RetentionRun>, DbError> {
        let (tenant, sweeper) = (self.tenant, sweeper.to_owned());
        run_on(
            &mut self.conn,
            &self.key,
            Context::Platform,
            false,
            |conn| {
                async move {
                    #[derive(QueryableByName)]
                    struct Eligible {
                        #[diesel(sql_type = Text)]
                        slug: String,
                        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
                        deleted_at: chrono::DateTime<chrono::Utc>,
                    }
                    let eligible: Option<Eligible> = sql_query(
                        "SELECT slug, deleted_at FROM tenants
                      WHERE id = $1 AND status = 'deleted' AND purged_at IS NULL AND NOT legal_hold
                        AND deleted_at <= now() - make_interval(secs => $2)
                      FOR UPDATE",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Double, _>(secs(period))
                    .get_result(conn)
                    .await
                    .optional()?;
                    let Some(eligible) = eligible else {
                        return Ok::<_, DbError>(None);
                    };
                    let open: Option<RetentionRun> = sql_query(
                        "SELECT * FROM retention_runs WHERE tenant_id = $1 AND purged_at IS NULL",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .get_result(conn)
                    .await
                    .optional()?;
                    if let Some(open) = open {
                        return Ok(Some(open));
                    }
                    let run: RetentionRun = sql_query(
                        "INSERT INTO retention_runs (id, tenant_id, slug, deleted_at, sweeper)
                     VALUES ($1, $2, $3, $4, $5) RETURNING *",
                    )
                    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<Text, _>(&eligible.slug)
                    .bind::<diesel::sql_types::Timestamptz, _>(eligible.deleted_at)
                    .bind::<Text, _>(&sweeper)
                    .get_result(conn)
                    .await?;
                    Ok(Some(run))
                }
                .scope_boxed()
            },
        )
        .await
    }

    /// One look at the database's load, for the pacer: a single statement
    /// on this session's own connection (the service's role, never the
    /// owner), outside any transaction: it reads only the statistics views,
    /// which carry no tenant's rows, so no context is needed; every
    /// statement is its own snapshot of them. `pg_stat_activity` shows this
    /// role its own sessions.
    pub async fn load(&mut self) -> Result<DbLoad, DbError> {
        let writes = if self.server_version >= 160_000 {
            "(SELECT COALESCE(sum(writes), 0) FROM pg_stat_io WHERE backend_type = 'client backend')"
        } else {
            "(SELECT buffers_backend FROM pg_stat_bgwriter)"
        };
        Ok(sql_query(format!(
            "SELECT (SELECT count(*) FROM pg_stat_activity
                      WHERE state = 'active' AND usename = current_user
                        AND datname = current_database() AND pid <> pg_backend_pid()
                        AND left(application_name, 14) <> 'citus_internal')::bigint AS other_active,
                    {writes}::bigint AS backend_writes"
        ))
        .get_result(&mut self.conn)
        .await?)
    }

    /// Rows of `table` still there (a dry run's report).
    pub async fn count(&mut self, table: &'static str) -> Result<i64, DbError> {
        let tenant = self.tenant;
        run_on(
            &mut self.conn,
            &self.key,
            Context::Tenant(tenant),
            false,
            |conn| {
                async move {
                    let count: Count = sql_query(format!(
                        "SELECT count(*) AS n FROM {table} WHERE tenant_id = $1"
                    ))
                    .bind::<SqlUuid, _>(tenant)
                    .get_result(conn)
                    .await?;
                    Ok::<_, DbError>(count.n)
                }
                .scope_boxed()
            },
        )
        .await
    }

    /// Deletes up to `batch` rows of `table` (the lowest ids above `after`,
    /// when given) and adds them to the receipt, in one transaction that
    /// waits at most `lock_timeout` for row locks (it yields to live traffic
    /// rather than stall it).
    ///
    /// `after` is the previous batch's [`Batch::last`]: without it every
    /// batch's index scan would start at the tenant's first entry and step
    /// over the entries of every row deleted so far (dead until VACUUM), so
    /// the later batches of a large tenant would cost more than the first.
    pub async fn delete_batch(
        &mut self,
        run: uuid::Uuid,
        table: &'static str,
        batch: i64,
        lock_timeout: Duration,
        after: Option<uuid::Uuid>,
    ) -> Result<Batch, DbError> {
        let tenant = self.tenant;
        if !TENANT_TABLES.contains(&table) {
            return Err(DbError::Config(format!("{table} is not a tenant table")));
        }
        let above = if after.is_some() { " AND id > $3" } else { "" };
        // `x.tenant_id = $1` too: it keeps the delete on the tenant's
        // shard on Citus (the join alone would reach every shard).
        let statement = format!(
            "WITH doomed AS (SELECT tenant_id, id FROM {table}
                              WHERE tenant_id = $1{above} ORDER BY id LIMIT $2),
                  gone AS (DELETE FROM {table} x USING doomed d
                            WHERE x.tenant_id = $1 AND x.tenant_id = d.tenant_id AND x.id = d.id
                        RETURNING x.id)
             SELECT count(*) AS n, (SELECT id FROM gone ORDER BY id DESC LIMIT 1) AS last FROM gone"
        );
        run_on(
            &mut self.conn,
            &self.key,
            Context::Provision(tenant),
            false,
            |conn| {
                async move {
                    // A batch's COMMIT does not wait for its WAL to reach
                    // disk: a batch lost in a crash is lost whole (its rows
                    // and its progress together) and the next sweep redoes
                    // it. The closing transaction (tombstone, receipt,
                    // audit) keeps synchronous commit.
                    sql_query(
                        "SELECT set_config('lock_timeout', $1, true),
                                set_config('synchronous_commit', 'off', true)",
                    )
                    .bind::<Text, _>(format!("{}ms", lock_timeout.as_millis()))
                    .execute(conn)
                    .await?;
                    let query = sql_query(statement)
                        .bind::<SqlUuid, _>(tenant)
                        .bind::<BigInt, _>(batch);
                    let deleted: Deleted = match after {
                        Some(after) => query.bind::<SqlUuid, _>(after).get_result(conn).await?,
                        None => query.get_result(conn).await?,
                    };
                    if deleted.n > 0 {
                        sql_query(
                            "UPDATE retention_runs
                            SET rows_removed = jsonb_set(rows_removed, ARRAY[$2],
                                    to_jsonb(COALESCE((rows_removed ->> $2)::bigint, 0) + $3))
                          WHERE id = $1",
                        )
                        .bind::<SqlUuid, _>(run)
                        .bind::<Text, _>(table)
                        .bind::<BigInt, _>(deleted.n)
                        .execute(conn)
                        .await?;
                    }
                    Ok::<_, DbError>(Batch {
                        rows: deleted.n,
                        last: deleted.last,
                    })
                }
                .scope_boxed()
            },
        )
        .await
    }

    /// Closes the purge once every tenant table is empty: the tenant keeps a
    /// tombstone (id, slug, deleted_at, purged_at), its quota and usage rows
    /// and its custom domains go, the receipt is closed and the purge is audited.
    pub async fn finish(&mut self, run: uuid::Uuid, actor: &str) -> Result<RetentionRun, DbError> {
        let (tenant, actor) = (self.tenant, actor.to_owned());
        run_on(&mut self.conn, &self.key, Context::Provision(tenant), false, |conn| {
            async move {
                for table in TENANT_TABLES {
                    let left: Count = sql_query(format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = $1"))
                        .bind::<SqlUuid, _>(tenant)
                        .get_result(conn)
                        .await?;
                    if left.n > 0 {
                        return Err(DbError::Config(format!("{table} still has {} rows", left.n)));
                    }
                }
                sql_query("UPDATE tenants SET purged_at = now(), updated_at = now() WHERE id = $1 AND purged_at IS NULL")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                // Its custom domains (a control-plane claim per name,
                // sql/0012): the names are free for others once purged.
                sql_query("DELETE FROM domains WHERE tenant_id = $1")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                // The account gives back what this tenant held, and its
                // place in the account's tenant count.
                let held: Option<crate::models::Usage> = sql_query(
                    "SELECT users, api_keys, clusters, instances, cpu_cores, memory_gb, storage_gb
                       FROM tenant_usage WHERE tenant_id = $1",
                )
                .bind::<SqlUuid, _>(tenant)
                .get_result(conn)
                .await
                .optional()?;
                crate::queries::accounts::release_tenant(
                    conn,
                    tenant,
                    held.map(|u| u.amounts()).unwrap_or_default(),
                )
                .await?;
                sql_query("DELETE FROM tenant_usage WHERE tenant_id = $1")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                sql_query("DELETE FROM tenant_quotas WHERE tenant_id = $1")
                    .bind::<SqlUuid, _>(tenant)
                    .execute(conn)
                    .await?;
                let receipt: RetentionRun =
                    sql_query("UPDATE retention_runs SET purged_at = now() WHERE id = $1 RETURNING *")
                        .bind::<SqlUuid, _>(run)
                        .get_result(conn)
                        .await?;
                crate::queries::audit::record(
                    conn,
                    Some(tenant),
                    &actor,
                    "tenant.purged",
                    None,
                    Some(serde_json::json!({
                        "receipt": receipt.id,
                        "rows_removed": receipt.rows_removed,
                        "purged_at": receipt.purged_at,
                    })),
                    None,
                )
                .await?;
                Ok(receipt)
            }
            .scope_boxed()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ids that agree on their last 32 bits (or on either 64-bit half)
    /// no longer share a purge lock.
    #[test]
    fn the_purge_lock_key_depends_on_every_half_of_the_id() {
        let base = 0x0190_a5e4_1234_7000_8000_0000_dead_beef_u128;
        let same_low_32 = base ^ (1_u128 << 100);
        let same_low_64 = base ^ (1_u128 << 70);
        let same_high_64 = base ^ (1_u128 << 40);
        let key = |bits| lock_key(TenantId::from_uuid(uuid::Uuid::from_u128(bits)));
        for other in [same_low_32, same_low_64, same_high_64] {
            assert_ne!(key(base), key(other));
        }
    }
}
