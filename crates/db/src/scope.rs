//! The only way to run SQL as the service: a transaction with its context
//! set as the first statement.

use crate::Conn;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
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
    read_only: bool,
}

impl TenantScope {
    pub(crate) fn new(db: Db, tenant: TenantId) -> Self {
        Self {
            db,
            tenant,
            writes: false,
            read_only: false,
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

    /// A scope whose transaction is `READ ONLY`: a statement that writes
    /// fails, and the result is handed back without waiting for the
    /// `COMMIT` (there is nothing to make durable).
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
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
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        let context = if self.writes {
            Context::TenantWrites(self.tenant)
        } else {
            Context::Tenant(self.tenant)
        };
        let mode = if self.read_only && !self.writes {
            Mode::ReadOnly
        } else {
            Mode::ReadWrite
        };
        run_in_context(&self.db, context, mode, work).await
    }

    /// As [`TenantScope::run`], in a read-only REPEATABLE READ transaction:
    /// one consistent snapshot across every statement (exports).
    pub async fn read_snapshot<'a, R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Tenant(self.tenant), Mode::Snapshot, work).await
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
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Platform, Mode::ReadWrite, work).await
    }

    /// Creates a tenant's registry rows and its first data in ONE
    /// transaction: `work` runs with the platform context AND `tenant`'s
    /// context set, so `tenant`'s rows are reachable and no other tenant's
    /// are (imports: all or nothing).
    pub async fn provision<'a, R, E, F>(&self, tenant: TenantId, work: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
        E: From<DbError> + From<diesel::result::Error> + Send + 'a,
        R: Send + 'a,
    {
        run_in_context(&self.db, Context::Provision(tenant), Mode::ReadWrite, work).await
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

/// How a unit of work's transaction begins and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `BEGIN` … `COMMIT`, the result after the commit.
    ReadWrite,
    /// `BEGIN READ ONLY`: nothing to commit but the end of the transaction,
    /// so the result is returned as soon as the work has it and the
    /// `COMMIT` completes after, before the connection is pooled again.
    ReadOnly,
    /// `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: one snapshot for
    /// every statement (exports); committed before the result is returned.
    Snapshot,
}

/// The transaction-control statements, as cached prepared statements (one
/// type each: the statement cache is keyed by type). They go through the
/// same path, and the same FIFO statement lock, as every other statement,
/// so they are sent in the order they are first polled — which is what
/// lets `BEGIN` and the context ride in one flight with the work's first
/// statement.
mod control {
    macro_rules! control_statement {
        ($name:ident, $sql:literal) => {
            #[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
            pub(super) struct $name;

            impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for $name {
                fn walk_ast<'b>(
                    &'b self,
                    mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
                ) -> diesel::QueryResult<()> {
                    out.push_sql($sql);
                    Ok(())
                }
            }
        };
    }
    control_statement!(Begin, "BEGIN");
    control_statement!(BeginReadOnly, "BEGIN READ ONLY");
    control_statement!(
        BeginSnapshot,
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    );
    control_statement!(Commit, "COMMIT");
    control_statement!(Rollback, "ROLLBACK");
}

/// A checked-out connection that goes back to the pool only when its
/// transaction has ended. Dropped while one may still be open (a request
/// cancelled midway, a `ROLLBACK` that failed), the connection is taken out
/// of the pool and closed, and the server rolls back: the next checkout
/// can never find itself inside someone else's transaction.
struct Checkout {
    conn: Option<Object<AsyncPgConnection>>,
    idle: bool,
}

impl Checkout {
    fn new(conn: Object<AsyncPgConnection>) -> Self {
        Self {
            conn: Some(conn),
            idle: false,
        }
    }
}

impl Checkout {
    /// Done with: pooled again if `idle`, closed otherwise.
    fn release(mut self, idle: bool) {
        self.idle = idle;
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.idle
            && let Some(conn) = self.conn.take()
        {
            tracing::debug!("a connection left inside a transaction is closed, not pooled");
            drop(Object::take(conn));
        }
    }
}

/// The one place a transaction begins: check out, then run the work in a
/// pipelined transaction.
async fn run_in_context<'a, R, E, F>(db: &Db, context: Context, mode: Mode, work: F) -> Result<R, E>
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
    E: From<DbError> + From<diesel::result::Error> + Send + 'a,
    R: Send + 'a,
{
    let pooled = match context {
        Context::Platform | Context::Provision(_) => db.checkout_admin().await?,
        Context::Tenant(_) | Context::TenantWrites(_) => db.checkout().await?,
    };
    let mut checkout = Checkout::new(pooled);
    let Some(conn) = checkout.conn.as_deref() else {
        return Err(DbError::Config("a checkout without its connection".to_owned()).into());
    };
    let (result, end) = pipelined(conn, db.context_key(), context, mode, work).await;
    match end {
        End::Idle => checkout.idle = true,
        End::Open => {}
        End::CommitPending => {
            // A read-only transaction: its result is final already. The
            // COMMIT is sent now and completes off the request's path; the
            // connection is pooled again once it has.
            tokio::spawn(async move {
                let idle = match checkout.conn.as_deref() {
                    Some(conn) => {
                        let mut shared: &AsyncPgConnection = conn;
                        control::Commit.execute(&mut shared).await.is_ok()
                    }
                    None => false,
                };
                checkout.release(idle);
            });
        }
    }
    result
}

/// How the connection was left.
enum End {
    /// No transaction open: it may be pooled.
    Idle,
    /// Possibly still inside a transaction: it must be closed.
    Open,
    /// A read-only transaction whose work is done: COMMIT it, then pool it.
    CommitPending,
}

/// BEGIN, the context (with its proof) as the first statement, and the
/// work, all sent in one flight: the scope's statements are first polled
/// before the work's, so the server receives BEGIN, the context, then the
/// work's statements, in that order, in one transaction. An error in any
/// of them rolls the whole back: the work's result counts only if BEGIN
/// and the context succeeded, and COMMIT is sent only once every result is
/// in and `Ok` (a refusal decided in Rust must be able to roll back).
async fn pipelined<'a, R, E, F>(
    conn: &AsyncPgConnection,
    key: &ContextKey,
    context: Context,
    mode: Mode,
    work: F,
) -> (Result<R, E>, End)
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
    E: From<DbError> + From<diesel::result::Error> + Send + 'a,
    R: Send + 'a,
{
    // The transaction's span: with traces on, a child of the request's
    // span (see tenantry::telemetry). DEBUG, so the log lines carry it only
    // when asked. Never SQL text or parameters.
    let span = tracing::debug_span!(
        "db.transaction",
        db.system = "postgresql",
        otel.kind = "client",
        tenantry.context = context.name(),
    );
    async move {
        let opened = open(conn, key, context, mode);
        let mut shared: &AsyncPgConnection = conn;
        let body = work(&mut shared);
        let (opened, done) = futures_util::future::join(opened, body).await;
        let outcome = match (opened, done) {
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(r)) => Ok(r),
        };
        let mut shared: &AsyncPgConnection = conn;
        match outcome {
            Ok(r) if mode == Mode::ReadOnly => (Ok(r), End::CommitPending),
            Ok(r) => match control::Commit.execute(&mut shared).await {
                Ok(_) => (Ok(r), End::Idle),
                // A failed COMMIT (a serialization failure, a deferred
                // constraint) has rolled back; the connection is idle.
                Err(e) => (Err(E::from(e)), End::Idle),
            },
            Err(e) => {
                // After an error the transaction is aborted (or was never
                // begun: ROLLBACK then only warns).
                let end = match control::Rollback.execute(&mut shared).await {
                    Ok(_) => End::Idle,
                    Err(_) => End::Open,
                };
                (Err(e), end)
            }
        }
    }
    .instrument(span)
    .await
}

/// Prepares the statements every unit of work begins with, once per new
/// connection (the pool's post-create hook). A statement waiting for its
/// prepare holds its place in the statement queue, but `batch_execute`
/// does not take that queue: with these prepared, BEGIN and the context
/// are on the wire at the first poll, before anything the work sends.
pub(crate) async fn warm(conn: &AsyncPgConnection) -> Result<(), diesel::result::Error> {
    let mut c: Conn<'_> = conn;
    let nil = TenantId::from(uuid::Uuid::nil());
    control::Begin.execute(&mut c).await?;
    // Executed only to be prepared: set in a transaction rolled back at
    // once, for a tenant that does not exist, with no valid proof.
    set_tenant_context(&mut c, nil, String::new(), false).await?;
    set_tenant_context(&mut c, nil, String::new(), true).await?;
    set_platform_admin_context(&mut c, String::new()).await?;
    control::Rollback.execute(&mut c).await?;
    control::BeginReadOnly.execute(&mut c).await?;
    control::Commit.execute(&mut c).await?;
    control::BeginSnapshot.execute(&mut c).await?;
    control::Rollback.execute(&mut c).await?;
    Ok(())
}

/// BEGIN and the context statements, polled together so they are sent
/// together (in this order).
async fn open(
    conn: &AsyncPgConnection,
    key: &ContextKey,
    context: Context,
    mode: Mode,
) -> Result<(), DbError> {
    use futures_util::future::{try_join, try_join3};
    let (mut c0, mut c1, mut c2) = (conn, conn, conn);
    let begin = match mode {
        Mode::ReadWrite => control::Begin.execute(&mut c0),
        Mode::ReadOnly => control::BeginReadOnly.execute(&mut c0),
        Mode::Snapshot => control::BeginSnapshot.execute(&mut c0),
    };
    match context {
        Context::Tenant(tenant) => {
            let proof = key.tenant_proof(tenant);
            try_join(begin, set_tenant_context(&mut c1, tenant, proof, false)).await?;
        }
        Context::TenantWrites(tenant) => {
            let proof = key.tenant_proof(tenant);
            try_join(begin, set_tenant_context(&mut c1, tenant, proof, true)).await?;
        }
        Context::Platform => {
            let proof = key.platform_proof();
            try_join(begin, set_platform_admin_context(&mut c1, proof)).await?;
        }
        Context::Provision(tenant) => {
            let (platform, tenant_proof) = (key.platform_proof(), key.tenant_proof(tenant));
            try_join3(
                begin,
                set_platform_admin_context(&mut c1, platform),
                set_tenant_context(&mut c2, tenant, tenant_proof, false),
            )
            .await?;
        }
    }
    Ok(())
}

/// As the scopes do, on a connection the caller holds (the purge's
/// dedicated session): BEGIN, the context, the work, COMMIT on `Ok`,
/// ROLLBACK on `Err`. `snapshot`: one REPEATABLE READ snapshot.
pub(crate) async fn run_on<'a, R, E, F>(
    conn: &mut AsyncPgConnection,
    key: &ContextKey,
    context: Context,
    snapshot: bool,
    work: F,
) -> Result<R, E>
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<R, E>> + Send + 'a,
    E: From<DbError> + From<diesel::result::Error> + Send + 'a,
    R: Send + 'a,
{
    let mode = if snapshot {
        Mode::Snapshot
    } else {
        Mode::ReadWrite
    };
    let (result, end) = pipelined(conn, key, context, mode, work).await;
    match end {
        End::Idle => result,
        // The caller's connection must not be reused inside a transaction
        // it does not know about.
        End::Open | End::CommitPending => Err(DbError::Unavailable(
            "the connection's transaction could not be ended".to_owned(),
        )
        .into()),
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
    conn: &mut Conn<'_>,
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
    conn: &mut Conn<'_>,
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
    conn: &mut Conn<'_>,
    tenant: TenantId,
) -> Result<(), diesel::result::Error> {
    diesel::select(context_functions::lock_tenant_lifecycle(tenant))
        .execute(conn)
        .await
        .map(|_| ())
}
