//! The only way to run SQL as the service: a transaction with its context
//! set as the first statement.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use scoped_futures::ScopedBoxFuture;
use tenantry_core::TenantId;
use tracing::Instrument as _;

use crate::{ContextKey, Db, DbError};

/// One unit of work for one tenant. Every statement run through
/// [`TenantScope::run`] is inside a transaction that began with
/// `SELECT set_tenant_context($1, $2)` (a `SET LOCAL` of the id and of its
/// proof), so RLS confines it to this tenant; the setting ends with the
/// transaction, whatever way it ends.
#[derive(Debug, Clone)]
pub struct TenantScope {
    db: Db,
    tenant: TenantId,
    writes: bool,
}

impl TenantScope {
    pub(crate) fn new(db: Db, tenant: TenantId) -> Self {
        Self {
            db,
            tenant,
            writes: false,
        }
    }

    /// A scope whose transaction also holds the tenant's lifecycle lock,
    /// shared, from its first statement (`set_tenant_write_context`): a
    /// suspension or deletion waits for it, and it commits before the
    /// lifecycle change or not at all — never after it.
    #[must_use]
    pub fn writing(mut self) -> Self {
        self.writes = true;
        self
    }

    #[must_use]
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Runs `work` in one transaction under this tenant's context: commits
    /// if it returns `Ok`, rolls back if it returns `Err`. If the future is
    /// dropped or panics midway, the connection is discarded by the pool
    /// (it is still inside a transaction) and the server rolls back.
    ///
    /// ```text
    /// scope.run(|conn| async move { instances::list(conn, page).await }.scope_boxed()).await
    /// ```
    pub async fn run<'a, R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
            + Send
            + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        let context = if self.writes {
            Context::TenantWrites(self.tenant)
        } else {
            Context::Tenant(self.tenant)
        };
        run_in_context(&self.db, context, false, work).await
    }

    /// As [`TenantScope::run`], in a read-only REPEATABLE READ transaction:
    /// one consistent snapshot across every statement (exports).
    pub async fn read_snapshot<'a, R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
            + Send
            + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Tenant(self.tenant), true, work).await
    }
}

/// One unit of control-plane work, across tenants. Opens the control-plane
/// tables (tenants, quotas, usage, audit, retention receipts) and nothing
/// else: tenant-scoped tables stay at zero rows without a tenant context.
#[derive(Debug, Clone)]
pub struct PlatformScope {
    db: Db,
}

impl PlatformScope {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// As [`TenantScope::run`], with the platform-admin context instead.
    pub async fn run<'a, R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
            + Send
            + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Platform, false, work).await
    }

    /// Creates a tenant's registry rows and its first data in ONE
    /// transaction: `work` runs with the platform context AND `tenant`'s
    /// context set, so `tenant`'s rows are reachable and no other tenant's
    /// are (imports: all or nothing).
    pub async fn provision<'a, R, E, F>(&self, tenant: TenantId, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
            + Send
            + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Provision(tenant), false, work).await
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Context {
    Tenant(TenantId),
    /// The tenant's context and its lifecycle lock, shared.
    TenantWrites(TenantId),
    Platform,
    Provision(TenantId),
}

impl Context {
    /// Which context the transaction runs under (a span attribute).
    fn name(self) -> &'static str {
        match self {
            Self::Tenant(_) => "tenant",
            Self::TenantWrites(_) => "tenant_writes",
            Self::Platform => "platform",
            Self::Provision(_) => "provision",
        }
    }
}

/// The one place a transaction begins: check out, then [`run_on`].
async fn run_in_context<'a, R, E, F>(
    db: &Db,
    context: Context,
    snapshot: bool,
    work: F,
) -> Result<R, E>
where
    F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
        + Send
        + 'a,
    E: From<DbError> + From<diesel::result::Error> + Send + 'a,
    R: Send + 'a,
{
    let mut pooled = match context {
        Context::Platform | Context::Provision(_) => db.checkout_admin().await?,
        Context::Tenant(_) | Context::TenantWrites(_) => db.checkout().await?,
    };
    run_on(&mut pooled, db.context_key(), context, snapshot, work).await
}

/// BEGIN, set the context (with its proof) as the first statement, run the
/// work, COMMIT on `Ok`, ROLLBACK on `Err`.
pub(crate) async fn run_on<'a, R, E, F>(
    conn: &mut AsyncPgConnection,
    key: &ContextKey,
    context: Context,
    snapshot: bool,
    work: F,
) -> Result<R, E>
where
    F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, E>>
        + Send
        + 'a,
    E: From<DbError> + From<diesel::result::Error> + Send + 'a,
    R: Send + 'a,
{
    // The proofs are made before the transaction: the work closure owns
    // nothing of the key.
    let tenant_proof = match context {
        Context::Tenant(t) | Context::TenantWrites(t) | Context::Provision(t) => {
            Some(key.tenant_proof(t))
        }
        Context::Platform => None,
    };
    let platform_proof = match context {
        Context::Platform | Context::Provision(_) => Some(key.platform_proof()),
        Context::Tenant(_) | Context::TenantWrites(_) => None,
    };
    let body = async move |conn: &mut AsyncPgConnection| {
        match (context, tenant_proof, platform_proof) {
            (Context::Tenant(tenant), Some(proof), _) => {
                set_tenant_context(conn, tenant, proof, false).await?;
            }
            (Context::TenantWrites(tenant), Some(proof), _) => {
                set_tenant_context(conn, tenant, proof, true).await?;
            }
            (Context::Platform, _, Some(proof)) => set_platform_admin_context(conn, proof).await?,
            (Context::Provision(tenant), Some(tenant_proof), Some(platform_proof)) => {
                set_platform_admin_context(conn, platform_proof).await?;
                set_tenant_context(conn, tenant, tenant_proof, false).await?;
            }
            _ => {
                return Err(DbError::Config("a context without its proof".to_owned()).into());
            }
        }
        work(conn).await
    };
    // The transaction's span: with traces on, a child of the request's
    // span (see tenantry::telemetry). DEBUG, so the log lines carry it only
    // when asked. Never SQL text or parameters.
    let span = tracing::debug_span!(
        "db.transaction",
        db.system = "postgresql",
        otel.kind = "client",
        tenantry.context = context.name(),
    );
    if snapshot {
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(body)
            .instrument(span)
            .await
    } else {
        conn.transaction(body).instrument(span).await
    }
}

/// The context functions of sql/0005, declared so diesel can prepare and
/// cache their calls (a `sql_query` would be re-parsed on every request).
/// They return `void`; the declared type is never read (`execute` only).
mod context_functions {
    diesel::define_sql_function! {
        fn set_tenant_context(tenant: diesel::sql_types::Uuid, proof: diesel::sql_types::Text) -> diesel::sql_types::Bool;
    }
    diesel::define_sql_function! {
        fn set_tenant_write_context(tenant: diesel::sql_types::Uuid, proof: diesel::sql_types::Text) -> diesel::sql_types::Bool;
    }
    diesel::define_sql_function! {
        fn set_platform_admin_context(proof: diesel::sql_types::Text) -> diesel::sql_types::Bool;
    }
    diesel::define_sql_function! {
        fn lock_tenant_lifecycle(tenant: diesel::sql_types::Uuid) -> diesel::sql_types::Bool;
    }
}

async fn set_tenant_context(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    proof: String,
    writes: bool,
) -> Result<(), diesel::result::Error> {
    if writes {
        diesel::select(context_functions::set_tenant_write_context(tenant, proof))
            .execute(conn)
            .await
            .map(|_| ())
    } else {
        diesel::select(context_functions::set_tenant_context(tenant, proof))
            .execute(conn)
            .await
            .map(|_| ())
    }
}

async fn set_platform_admin_context(
    conn: &mut AsyncPgConnection,
    proof: String,
) -> Result<(), diesel::result::Error> {
    diesel::select(context_functions::set_platform_admin_context(proof))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Takes `tenant`'s lifecycle lock exclusively until the transaction ends
/// (platform scope, before a status change): waits for the tenant's writes
/// in flight; writes that arrive later queue behind it and then see the new
/// status.
pub(crate) async fn lock_tenant_lifecycle(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<(), diesel::result::Error> {
    diesel::select(context_functions::lock_tenant_lifecycle(tenant))
        .execute(conn)
        .await
        .map(|_| ())
}
