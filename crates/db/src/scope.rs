//! The only way to run SQL as the service: a transaction with its context
//! set as the first statement.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use scoped_futures::ScopedBoxFuture;
use tenantry_core::TenantId;

use crate::{Db, DbError};

/// One unit of work for one tenant. Every statement run through
/// [`TenantScope::run`] is inside a transaction that began with
/// `SELECT set_tenant_context($1)` (a `SET LOCAL`), so RLS confines it to this
/// tenant; the setting ends with the transaction, whatever way it ends.
#[derive(Debug, Clone)]
pub struct TenantScope {
    db: Db,
    tenant: TenantId,
}

impl TenantScope {
    pub(crate) fn new(db: Db, tenant: TenantId) -> Self {
        Self { db, tenant }
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
        run_in_context(&self.db, Context::Tenant(self.tenant), false, work).await
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
    Platform,
    Provision(TenantId),
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
    let mut pooled = db.checkout().await?;
    run_on(&mut pooled, context, snapshot, work).await
}

/// BEGIN, set the context as the first statement, run the work, COMMIT on
/// `Ok`, ROLLBACK on `Err`.
pub(crate) async fn run_on<'a, R, E, F>(
    conn: &mut AsyncPgConnection,
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
    let body = async move |conn: &mut AsyncPgConnection| {
        match context {
            Context::Tenant(tenant) => set_tenant_context(conn, tenant).await?,
            Context::Platform => set_platform_admin_context(conn).await?,
            Context::Provision(tenant) => {
                set_platform_admin_context(conn).await?;
                set_tenant_context(conn, tenant).await?;
            }
        }
        work(conn).await
    };
    if snapshot {
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(body)
            .await
    } else {
        conn.transaction(body).await
    }
}

/// The context functions of sql/0001, declared so diesel can prepare and
/// cache their calls (a `sql_query` would be re-parsed on every request).
/// They return `void`; the declared type is never read (`execute` only).
mod context_functions {
    diesel::define_sql_function! {
        fn set_tenant_context(tenant: diesel::sql_types::Uuid) -> diesel::sql_types::Bool;
    }
    diesel::define_sql_function! {
        fn set_platform_admin_context() -> diesel::sql_types::Bool;
    }
}

async fn set_tenant_context(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<(), diesel::result::Error> {
    diesel::select(context_functions::set_tenant_context(tenant))
        .execute(conn)
        .await
        .map(|_| ())
}

async fn set_platform_admin_context(
    conn: &mut AsyncPgConnection,
) -> Result<(), diesel::result::Error> {
    diesel::select(context_functions::set_platform_admin_context())
        .execute(conn)
        .await
        .map(|_| ())
}
