use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError as ConnError, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use tenantry_core::TenantId;

use crate::scope::{PlatformScope, TenantScope};
use crate::{CitusSettings, ContextKey, DatabaseSettings, DbError};

/// The service's handle on PostgreSQL: a pool of connections as the
/// service's role. Cheap to clone. It hands out scopes, never raw
/// connections (outside this crate).
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    /// A few connections of their own for the platform scope, so that no
    /// tenant's flood — at any rate limit — can make a suspension or any
    /// other admin action queue behind it for a connection.
    admin_pool: Pool<AsyncPgConnection>,
    /// For the few dedicated (unpooled) connections: the sweeper's, whose
    /// session-level purge lock must die with the connection.
    url: Arc<SecretString>,
    session: Arc<SessionSettings>,
    /// Proves the contexts this pool's transactions set (sql/0005).
    key: ContextKey,
    /// Connections handed out so far (pooled and dedicated): how much
    /// database work requests cost, for metrics and tests.
    checkouts: Arc<AtomicU64>,
    /// How this pool uses a Citus cluster (dedicated placement reads it).
    citus: Arc<CitusSettings>,
    /// Checkouts that waited past `acquire_timeout` (answered 503):
    /// `[main pool, admin pool]`, for `tenantry_db_pool_timeouts_total`.
    timeouts: Arc<[AtomicU64; 2]>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("pool", &self.status()).finish()
    }
}

/// A snapshot of the pool, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
}

impl PoolStatus {
    fn of(status: deadpool::Status) -> Self {
        Self {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// Session settings applied once to every new connection.
#[derive(Debug)]
struct SessionSettings {
    statement_timeout_ms: String,
    idle_in_transaction_timeout_ms: String,
    application_name: String,
    /// Citus's `multi_task_query_log_level` (a harmless placeholder setting
    /// on plain PostgreSQL).
    multi_shard_level: &'static str,
    /// `tenantry.usage_interval`: the usage history's period, in seconds.
    usage_interval_secs: String,
}

impl Db {
    /// Builds the pool. No connection is opened until one is needed.
    /// `settings.context_key` must be set (the binary resolves
    /// `context_key_file` into it).
    pub fn new(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let key = settings
            .context_key
            .as_ref()
            .ok_or_else(|| {
                DbError::Config(
                    "no database.context_key: set it (TENANTRY__DATABASE__CONTEXT_KEY) or database.context_key_file".to_owned(),
                )
            })
            .and_then(|secret| ContextKey::new(secret).map_err(|e| DbError::Config(e.to_string())))?;
        let session = Arc::new(SessionSettings {
            statement_timeout_ms: millis(settings.statement_timeout),
            idle_in_transaction_timeout_ms: millis(settings.idle_in_transaction_timeout),
            application_name: settings.application_name.clone(),
            multi_shard_level: settings.citus.tenant_multi_shard.as_guc(),
            usage_interval_secs: settings.usage_interval.as_secs().max(1).to_string(),
        });
        let pool = build_pool(settings, &session, settings.max_connections)?;
        // Told apart in pg_stat_activity by its application_name.
        let admin_session = Arc::new(SessionSettings {
            statement_timeout_ms: session.statement_timeout_ms.clone(),
            idle_in_transaction_timeout_ms: session.idle_in_transaction_timeout_ms.clone(),
            application_name: format!("{}-admin", settings.application_name),
            // The admin plane lists across tenants: fan-out is its job.
            multi_shard_level: "off",
            usage_interval_secs: session.usage_interval_secs.clone(),
        });
        let admin_pool = build_pool(settings, &admin_session, settings.admin_connections.max(1))?;
        Ok(Self {
            pool,
            admin_pool,
            url: Arc::new(settings.url.clone()),
            session,
            key,
            checkouts: Arc::new(AtomicU64::new(0)),
            citus: Arc::new(settings.citus.clone()),
            timeouts: Arc::default(),
        })
    }

    /// `[database.citus]` as this pool was built with.
    #[must_use]
    pub fn citus_settings(&self) -> &CitusSettings {
        &self.citus
    }

    /// The context key this pool proves its contexts with.
    #[must_use]
    pub fn context_key(&self) -> &ContextKey {
        &self.key
    }

    /// How many connections requests have taken so far.
    #[must_use]
    pub fn checkouts(&self) -> u64 {
        AtomicU64::load(&self.checkouts, Ordering::Relaxed)
    }

    /// The scope for one unit of tenant-plane work.
    #[must_use]
    pub fn tenant(&self, tenant: TenantId) -> TenantScope {
        TenantScope::new(self.clone(), tenant)
    }

    /// The scope for one unit of control-plane work. Callers must hold a
    /// platform-admin principal (the API's `PlatformAdmin` extractor).
    #[must_use]
    pub fn platform(&self) -> PlatformScope {
        PlatformScope::new(self.clone())
    }

    /// The main (tenant-plane) pool.
    #[must_use]
    pub fn status(&self) -> PoolStatus {
        PoolStatus::of(self.pool.status())
    }

    /// The platform scope's own pool.
    #[must_use]
    pub fn admin_status(&self) -> PoolStatus {
        PoolStatus::of(self.admin_pool.status())
    }

    /// Checkouts that timed out waiting for a connection so far (each one
    /// answered 503): `(main pool, admin pool)`.
    #[must_use]
    pub fn pool_timeouts(&self) -> (u64, u64) {
        (
            AtomicU64::load(&self.timeouts[0], Ordering::Relaxed),
            AtomicU64::load(&self.timeouts[1], Ordering::Relaxed),
        )
    }

    /// A pooled connection with no tenant context. Crate-private: outside
    /// this crate, connections come only through the scopes.
    pub(crate) async fn checkout(&self) -> Result<Object<AsyncPgConnection>, DbError> {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        let got = self.pool.get().await;
        Ok(self.count_timeout(got, 0)?)
    }

    /// A connection from the platform scope's own pool.
    pub(crate) async fn checkout_admin(&self) -> Result<Object<AsyncPgConnection>, DbError> {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        let got = self.admin_pool.get().await;
        Ok(self.count_timeout(got, 1)?)
    }

    fn count_timeout<T>(
        &self,
        got: Result<T, diesel_async::pooled_connection::deadpool::PoolError>,
        pool: usize,
    ) -> Result<T, diesel_async::pooled_connection::deadpool::PoolError> {
        if let Err(deadpool::managed::PoolError::Timeout(_)) = &got
            && let Some(counter) = self.timeouts.get(pool)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        got
    }
}

fn build_pool(
    settings: &DatabaseSettings,
    session: &Arc<SessionSettings>,
    max_size: usize,
) -> Result<Pool<AsyncPgConnection>, DbError> {
    let mut manager_config = ManagerConfig::default();
    // A connection returned inside a transaction, or in an errored
    // transaction state, or closed by the server, is discarded by the
    // manager's `is_broken` check before any recycling method runs.
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.url.expose_secret(),
        manager_config,
    );
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.recycle_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .post_create(Hook::async_fn({
            let session = Arc::clone(session);
            move |conn, _metrics| {
                let session = Arc::clone(&session);
                Box::pin(async move {
                    apply_session_settings(conn, &session).await?;
                    crate::scope::warm(conn)
                        .await
                        .map_err(|e| HookError::Backend(ConnError::QueryError(e)))
                })
            }
        }))
        .build()
        .map_err(|e| DbError::Config(e.to_string()))?;
    Ok(pool)
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

async fn apply_session_settings(
    conn: &mut AsyncPgConnection,
    session: &SessionSettings,
) -> Result<(), HookError> {
    // On Citus, SET LOCAL (how the context setters place the context)
    // reaches the workers only with propagate_set_commands = 'local';
    // without it every distributed read finds nothing (it fails closed).
    diesel::sql_query(
        "SELECT set_config('statement_timeout', $1, false), \
                set_config('idle_in_transaction_session_timeout', $2, false), \
                set_config('application_name', $3, false), \
                set_config('citus.propagate_set_commands', 'local', false), \
                set_config('citus.multi_task_query_log_level', $4, false), \
                set_config('tenantry.usage_interval', $5, false)",
    )
    .bind::<Text, _>(&session.statement_timeout_ms)
    .bind::<Text, _>(&session.idle_in_transaction_timeout_ms)
    .bind::<Text, _>(&session.application_name)
    .bind::<Text, _>(session.multi_shard_level)
    .bind::<Text, _>(&session.usage_interval_secs)
    .execute(conn)
    .await
    .map_err(|e| HookError::Backend(ConnError::QueryError(e)))?;
    // On Citus, the hand-written multi-table statements are planned for
    // their parameters every time (see `queries::fixed`).
    if crate::migrate::is_citus(&mut &*conn)
        .await
        .map_err(|e| HookError::Backend(ConnError::QueryError(e)))?
    {
        crate::queries::fixed::on_citus();
    }
    Ok(())
}

impl Db {
    /// Whether the database answers and which migrations it has, for
    /// `/readyz`. Reads only `tenantry_migrations`; no tenant context.
    pub async fn schema_state(&self) -> Result<crate::SchemaState, DbError> {
        let mut conn = self.checkout().await?;
        Ok(crate::migrate::schema_state(&mut conn).await?)
    }
}

impl Db {
    /// A dedicated connection, outside the pool, with the same session
    /// settings. Crate-private: only the purge session uses one.
    pub(crate) async fn dedicated(&self) -> Result<AsyncPgConnection, DbError> {
        use diesel_async::AsyncConnection as _;
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        let mut conn = AsyncPgConnection::establish(self.url.expose_secret())
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        apply_session_settings(&mut conn, &self.session)
            .await
            .map_err(|e| DbError::Unavailable(format!("{e:?}")))?;
        crate::scope::warm(&conn).await?;
        Ok(conn)
    }
}
