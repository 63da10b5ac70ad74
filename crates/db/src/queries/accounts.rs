//! Accounts (sql/0008): the registry (platform scope) and the account's
//! quota, charged in the same transaction as each tenant's own charge by
//! one conditional UPDATE on the account's usage row — so concurrent
//! requests of all the account's tenants, on any number of replicas,
//! serialise on that row and N racers against an account limit of L yield
//! exactly L successes, as they do against a tenant's own limit.
//!
//! The default account has no quota or usage row: it is unmetered, and its
//! tenants' charges touch no shared row.

use crate::Conn;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryResult, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use tenantry_core::quota::{Amounts, Exceeded, Resource};
use tenantry_core::{AccountId, TenantId};

use crate::models::{Account, AccountLimits, AccountUsage, Page};
use crate::schema::{account_quotas, account_usage, accounts, tenants};

/// The account every tenant belongs to unless it names another (created by
/// sql/0008; the `tenants.account_id` default).
pub const DEFAULT_ACCOUNT: AccountId = AccountId::from_uuid(uuid::Uuid::from_u128(0xacc0));

impl AccountLimits {
    /// The limits on tenant resources, `None` where unlimited.
    #[must_use]
    pub fn limit(&self, resource: Resource) -> Option<i64> {
        match resource {
            Resource::Users => self.max_users,
            Resource::ApiKeys => self.max_api_keys,
            Resource::Clusters => self.max_clusters,
            Resource::Instances => self.max_instances,
            Resource::CpuCores => self.max_cpu_cores,
            Resource::MemoryGb => self.max_memory_gb,
            Resource::StorageGb => self.max_storage_gb,
        }
        .map(i64::from)
    }
}

impl AccountUsage {
    /// The summed usage of tenant resources (the tenant count aside).
    #[must_use]
    pub fn amounts(&self) -> Amounts {
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

/// Creates an account with its quota and (zero) usage rows.
pub async fn create(
    conn: &mut Conn<'_>,
    id: AccountId,
    slug: &str,
    name: &str,
    limits: &AccountLimits,
) -> QueryResult<Account> {
    let account = diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(id),
            accounts::slug.eq(slug),
            accounts::name.eq(name),
        ))
        .returning(Account::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(account_quotas::table)
        .values((account_quotas::account_id.eq(id), limits))
        .execute(conn)
        .await?;
    diesel::insert_into(account_usage::table)
        .values(account_usage::account_id.eq(id))
        .execute(conn)
        .await?;
    Ok(account)
}

pub async fn get(conn: &mut Conn<'_>, id: AccountId) -> QueryResult<Account> {
    accounts::table
        .filter(accounts::id.eq(id))
        .select(Account::as_select())
        .first(conn)
        .await
}

pub async fn find_by_slug(conn: &mut Conn<'_>, slug: &str) -> QueryResult<Account> {
    accounts::table
        .filter(accounts::slug.eq(slug))
        .select(Account::as_select())
        .first(conn)
        .await
}

/// Accounts in id order.
pub async fn list(conn: &mut Conn<'_>, page: Page) -> QueryResult<(Vec<Account>, bool)> {
    let mut query = accounts::table
        .select(Account::as_select())
        .order(accounts::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(accounts::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

/// Renames (and moves `updated_at`).
pub async fn rename(
    conn: &mut Conn<'_>,
    id: AccountId,
    name: Option<&str>,
) -> QueryResult<Account> {
    let current = get(conn, id).await?;
    diesel::update(accounts::table.filter(accounts::id.eq(id)))
        .set((
            accounts::name.eq(name.unwrap_or(&current.name)),
            accounts::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Account::as_returning())
        .get_result(conn)
        .await
}

/// The account's limits and usage; both `None` for the unmetered default
/// account.
pub async fn limits_and_usage(
    conn: &mut Conn<'_>,
    id: AccountId,
) -> QueryResult<(Option<AccountLimits>, Option<AccountUsage>)> {
    let limits = account_quotas::table
        .filter(account_quotas::account_id.eq(id))
        .select(AccountLimits::as_select())
        .first(conn)
        .await
        .optional()?;
    let usage = account_usage::table
        .filter(account_usage::account_id.eq(id))
        .select(AccountUsage::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok((limits, usage))
}

/// Replaces the account's limits; `None` when it has no quota row (the
/// default account).
pub async fn set_limits(
    conn: &mut Conn<'_>,
    id: AccountId,
    limits: &AccountLimits,
) -> QueryResult<Option<AccountLimits>> {
    diesel::update(account_quotas::table.filter(account_quotas::account_id.eq(id)))
        .set((limits, account_quotas::updated_at.eq(diesel::dsl::now)))
        .returning(AccountLimits::as_returning())
        .get_result(conn)
        .await
        .optional()
}

#[derive(QueryableByName)]
struct Touched {
    #[diesel(sql_type = SqlUuid)]
    #[expect(dead_code, reason = "only its presence matters")]
    account_id: uuid::Uuid,
}

/// The account of the tenant of this context (its own registry row).
pub async fn of_tenant(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Option<AccountId>> {
    tenants::table
        .filter(tenants::id.eq(tenant))
        .select(tenants::account_id)
        .first(conn)
        .await
        .optional()
}

/// Counts one more tenant against `account`'s `max_tenants` (platform
/// scope, in the creating transaction). `Err((limit, used))` when full; an
/// unmetered account always has room.
pub async fn take_tenant(
    conn: &mut Conn<'_>,
    account: AccountId,
) -> QueryResult<Result<(), (i64, i64)>> {
    let touched: Option<Touched> = sql_query(
        "UPDATE account_usage u SET tenants = u.tenants + 1, updated_at = now()
           FROM account_quotas q
          WHERE u.account_id = $1 AND q.account_id = u.account_id
            AND (q.max_tenants IS NULL OR u.tenants + 1 <= q.max_tenants)
      RETURNING u.account_id",
    )
    .bind::<SqlUuid, _>(account)
    .get_result(conn)
    .await
    .optional()?;
    if touched.is_some() {
        return Ok(Ok(()));
    }
    match limits_and_usage(conn, account).await? {
        (Some(limits), Some(usage)) => Ok(Err((
            limits.max_tenants.map_or(i64::MAX, i64::from),
            usage.tenants.into(),
        ))),
        _ => Ok(Ok(())),
    }
}

/// Takes `delta` of the tenant's resources from its account's quota, in
/// the transaction (and the tenant's context) that takes them from the
/// tenant's own (`quotas::consume`). Growth beyond an account limit is
/// refused and changes nothing; giving back always succeeds (never below
/// zero). An unmetered account (no usage row) always has room.
pub async fn consume(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    delta: Amounts,
) -> QueryResult<Result<(), Exceeded>> {
    if delta.is_zero() {
        return Ok(Ok(()));
    }
    let Some(account) = of_tenant(conn, tenant).await? else {
        return Ok(Ok(()));
    };
    if account == DEFAULT_ACCOUNT {
        return Ok(Ok(()));
    }
    /// The account charge's statement-cache key.
    struct ConsumeAccount;
    let touched: Option<Touched> = super::fixed::Fixed::<ConsumeAccount>::new(
        "UPDATE account_usage u SET
             users      = GREATEST(u.users + $2, 0),
             api_keys   = GREATEST(u.api_keys + $3, 0),
             clusters   = GREATEST(u.clusters + $4, 0),
             instances  = GREATEST(u.instances + $5, 0),
             cpu_cores  = GREATEST(u.cpu_cores + $6, 0),
             memory_gb  = GREATEST(u.memory_gb + $7, 0),
             storage_gb = GREATEST(u.storage_gb + $8, 0),
             updated_at = now()
           FROM account_quotas q
          WHERE u.account_id = $1 AND q.account_id = u.account_id
            AND ($2 <= 0 OR q.max_users IS NULL OR u.users + $2 <= q.max_users)
            AND ($3 <= 0 OR q.max_api_keys IS NULL OR u.api_keys + $3 <= q.max_api_keys)
            AND ($4 <= 0 OR q.max_clusters IS NULL OR u.clusters + $4 <= q.max_clusters)
            AND ($5 <= 0 OR q.max_instances IS NULL OR u.instances + $5 <= q.max_instances)
            AND ($6 <= 0 OR q.max_cpu_cores IS NULL OR u.cpu_cores + $6 <= q.max_cpu_cores)
            AND ($7 <= 0 OR q.max_memory_gb IS NULL OR u.memory_gb + $7 <= q.max_memory_gb)
            AND ($8 <= 0 OR q.max_storage_gb IS NULL OR u.storage_gb + $8 <= q.max_storage_gb)
      RETURNING u.account_id",
        super::quotas::deltas(super::fixed::Bind::Uuid(account.into()), &delta),
    )
    .get_result(conn)
    .await
    .optional()?;
    if touched.is_some() {
        return Ok(Ok(()));
    }
    let (Some(limits), Some(usage)) = limits_and_usage(conn, account).await? else {
        // No usage row visible: unmetered.
        return Ok(Ok(()));
    };
    let used = usage.amounts();
    // The first resource that does not fit, from the row as it stands now
    // (or, had usage moved since, the first one asked for).
    let over = Resource::ALL.into_iter().find(|r| {
        delta.get(*r) > 0
            && limits
                .limit(*r)
                .is_some_and(|l| used.get(*r) + delta.get(*r) > l)
    });
    let resource = over
        .or_else(|| Resource::ALL.into_iter().find(|r| delta.get(*r) > 0))
        .unwrap_or(Resource::Users);
    Ok(Err(Exceeded {
        resource,
        limit: limits.limit(resource).unwrap_or(i64::MAX),
        used: used.get(resource),
        requested: delta.get(resource),
    }))
}

/// Gives back a purged tenant's count and its usage (`usage`, read from
/// its usage row before that row goes) to its account (provision context,
/// in the purge's finishing transaction).
pub async fn release_tenant(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    usage: Amounts,
) -> QueryResult<()> {
    let account: Option<AccountId> = tenants::table
        .filter(tenants::id.eq(tenant))
        .select(tenants::account_id)
        .first(conn)
        .await
        .optional()?;
    let Some(account) = account else {
        return Ok(());
    };
    let d = |r: Resource| usage.get(r);
    sql_query(
        "UPDATE account_usage u SET
             tenants    = GREATEST(u.tenants - 1, 0),
             users      = GREATEST(u.users - $2, 0),
             api_keys   = GREATEST(u.api_keys - $3, 0),
             clusters   = GREATEST(u.clusters - $4, 0),
             instances  = GREATEST(u.instances - $5, 0),
             cpu_cores  = GREATEST(u.cpu_cores - $6, 0),
             memory_gb  = GREATEST(u.memory_gb - $7, 0),
             storage_gb = GREATEST(u.storage_gb - $8, 0),
             updated_at = now()
          WHERE u.account_id = $1",
    )
    .bind::<SqlUuid, _>(account)
    .bind::<BigInt, _>(d(Resource::Users))
    .bind::<BigInt, _>(d(Resource::ApiKeys))
    .bind::<BigInt, _>(d(Resource::Clusters))
    .bind::<BigInt, _>(d(Resource::Instances))
    .bind::<BigInt, _>(d(Resource::CpuCores))
    .bind::<BigInt, _>(d(Resource::MemoryGb))
    .bind::<BigInt, _>(d(Resource::StorageGb))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every tenant of the account, purged ones included, in id order (the
/// order an account-wide lifecycle action takes their locks in).
pub async fn tenants_of(
    conn: &mut Conn<'_>,
    account: AccountId,
) -> QueryResult<Vec<crate::models::Tenant>> {
    tenants::table
        .filter(tenants::account_id.eq(account))
        .select(crate::models::Tenant::as_select())
        .order(tenants::id.asc())
        .load(conn)
        .await
}

/// Moves the tenant's account's usage by `delta` without a limit check
/// (never below zero): `tenantry quotas reconcile` correcting a tenant's
/// usage row corrects its account's by the same amounts, in the same
/// transaction. Nothing for an unmetered account.
pub async fn adjust(conn: &mut Conn<'_>, tenant: TenantId, delta: Amounts) -> QueryResult<()> {
    if delta.is_zero() {
        return Ok(());
    }
    let Some(account) = of_tenant(conn, tenant).await? else {
        return Ok(());
    };
    let d = |r: Resource| delta.get(r);
    sql_query(
        "UPDATE account_usage u SET
             users      = GREATEST(u.users + $2, 0),
             api_keys   = GREATEST(u.api_keys + $3, 0),
             clusters   = GREATEST(u.clusters + $4, 0),
             instances  = GREATEST(u.instances + $5, 0),
             cpu_cores  = GREATEST(u.cpu_cores + $6, 0),
             memory_gb  = GREATEST(u.memory_gb + $7, 0),
             storage_gb = GREATEST(u.storage_gb + $8, 0),
             updated_at = now()
          WHERE u.account_id = $1",
    )
    .bind::<SqlUuid, _>(account)
    .bind::<BigInt, _>(d(Resource::Users))
    .bind::<BigInt, _>(d(Resource::ApiKeys))
    .bind::<BigInt, _>(d(Resource::Clusters))
    .bind::<BigInt, _>(d(Resource::Instances))
    .bind::<BigInt, _>(d(Resource::CpuCores))
    .bind::<BigInt, _>(d(Resource::MemoryGb))
    .bind::<BigInt, _>(d(Resource::StorageGb))
    .execute(conn)
    .await?;
    Ok(())
}
