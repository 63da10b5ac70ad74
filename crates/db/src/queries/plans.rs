//! Plans (platform scope): named quota templates, and the statements that
//! move tenants onto them or carry a plan's change to every tenant on it.
//!
//! Every change of a tenant's limits first moves the tenant's registry
//! row's `updated_at` (the rate-limit cache's stamp): that row's lock
//! is what serialises a plan change, a tenant's move to another plan and an
//! admin's override of one of its limits, and the new stamp makes every
//! replica's gate read the limits again.

use crate::Conn;
use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use tenantry_core::{PlanId, TenantId};

use crate::models::{Limits, Page, Plan, PlanLimits, QuotaOrigin, Tenant, Usage};
use crate::schema::{plans, tenant_quotas, tenant_usage, tenants};

impl Limits {
    /// The nine limits by name, in column order (also the names
    /// `tenant_quotas.overrides` holds).
    pub const NAMES: [&'static str; 9] = [
        "max_users",
        "max_api_keys",
        "max_clusters",
        "max_instances",
        "max_cpu_cores",
        "max_memory_gb",
        "max_storage_gb",
        "requests_per_second",
        "burst",
    ];

    /// The limit called `name` (one of [`Limits::NAMES`]).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<i32> {
        Some(match name {
            "max_users" => self.max_users,
            "max_api_keys" => self.max_api_keys,
            "max_clusters" => self.max_clusters,
            "max_instances" => self.max_instances,
            "max_cpu_cores" => self.max_cpu_cores,
            "max_memory_gb" => self.max_memory_gb,
            "max_storage_gb" => self.max_storage_gb,
            "requests_per_second" => self.requests_per_second,
            "burst" => self.burst,
            _ => return None,
        })
    }

    /// `self` with the limit called `name` set to `value` (unchanged for a
    /// name that is not a limit's).
    #[must_use]
    pub fn with(mut self, name: &str, value: i32) -> Self {
        let slot = match name {
            "max_users" => &mut self.max_users,
            "max_api_keys" => &mut self.max_api_keys,
            "max_clusters" => &mut self.max_clusters,
            "max_instances" => &mut self.max_instances,
            "max_cpu_cores" => &mut self.max_cpu_cores,
            "max_memory_gb" => &mut self.max_memory_gb,
            "max_storage_gb" => &mut self.max_storage_gb,
            "requests_per_second" => &mut self.requests_per_second,
            "burst" => &mut self.burst,
            _ => return self,
        };
        *slot = value;
        self
    }
}

pub async fn create(
    conn: &mut Conn<'_>,
    id: PlanId,
    name: &str,
    limits: &Limits,
) -> QueryResult<Plan> {
    diesel::insert_into(plans::table)
        .values((
            plans::id.eq(id),
            plans::name.eq(name),
            plans::max_users.eq(limits.max_users),
            plans::max_api_keys.eq(limits.max_api_keys),
            plans::max_clusters.eq(limits.max_clusters),
            plans::max_instances.eq(limits.max_instances),
            plans::max_cpu_cores.eq(limits.max_cpu_cores),
            plans::max_memory_gb.eq(limits.max_memory_gb),
            plans::max_storage_gb.eq(limits.max_storage_gb),
            plans::requests_per_second.eq(limits.requests_per_second),
            plans::burst.eq(limits.burst),
        ))
        .returning(Plan::as_returning())
        .get_result(conn)
        .await
}

/// Plans in id (creation) order.
pub async fn list(conn: &mut Conn<'_>, page: Page) -> QueryResult<(Vec<Plan>, bool)> {
    let mut query = plans::table
        .select(Plan::as_select())
        .order(plans::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(plans::id.gt(PlanId::from_uuid(after)));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(conn: &mut Conn<'_>, id: PlanId) -> QueryResult<Plan> {
    plans::table
        .filter(plans::id.eq(id))
        .select(Plan::as_select())
        .first(conn)
        .await
}

pub async fn find_by_name(conn: &mut Conn<'_>, name: &str) -> QueryResult<Plan> {
    plans::table
        .filter(plans::name.eq(name))
        .select(Plan::as_select())
        .first(conn)
        .await
}

/// Reads the plan and locks it until the transaction ends: `exclusive`
/// for a change or a delete of the plan, shared for moving a tenant onto
/// it (so the limits read are the ones the tenant keeps: a change of the
/// plan waits, then carries its new limits to the tenant too).
pub async fn lock(conn: &mut Conn<'_>, id: PlanId, exclusive: bool) -> QueryResult<Plan> {
    let query = plans::table
        .filter(plans::id.eq(id))
        .select(Plan::as_select());
    if exclusive {
        query.for_update().first(conn).await
    } else {
        query.for_share().first(conn).await
    }
}

pub async fn update(
    conn: &mut Conn<'_>,
    id: PlanId,
    name: &str,
    limits: &Limits,
) -> QueryResult<Plan> {
    diesel::update(plans::table.filter(plans::id.eq(id)))
        .set((
            plans::name.eq(name),
            plans::max_users.eq(limits.max_users),
            plans::max_api_keys.eq(limits.max_api_keys),
            plans::max_clusters.eq(limits.max_clusters),
            plans::max_instances.eq(limits.max_instances),
            plans::max_cpu_cores.eq(limits.max_cpu_cores),
            plans::max_memory_gb.eq(limits.max_memory_gb),
            plans::max_storage_gb.eq(limits.max_storage_gb),
            plans::requests_per_second.eq(limits.requests_per_second),
            plans::burst.eq(limits.burst),
            plans::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Plan::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut Conn<'_>, id: PlanId) -> QueryResult<usize> {
    diesel::delete(plans::table.filter(plans::id.eq(id)))
        .execute(conn)
        .await
}

/// How many tenants not yet purged are on each of `ids` (plans no tenant
/// is on are left out).
pub async fn tenant_counts(conn: &mut Conn<'_>, ids: &[PlanId]) -> QueryResult<Vec<(PlanId, i64)>> {
    let rows: Vec<(Option<PlanId>, i64)> = tenants::table
        .filter(tenants::plan_id.eq_any(ids.iter().copied().map(Some)))
        .filter(tenants::purged_at.is_null())
        .group_by(tenants::plan_id)
        .select((tenants::plan_id, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(plan, n)| plan.map(|p| (p, n)))
        .collect())
}

/// One page of the tenants not yet purged on the plan, in id order.
pub async fn tenants_on(
    conn: &mut Conn<'_>,
    plan: PlanId,
    page: Page,
) -> QueryResult<(Vec<Tenant>, bool)> {
    let mut query = tenants::table
        .filter(tenants::plan_id.eq(plan))
        .filter(tenants::purged_at.is_null())
        .select(Tenant::as_select())
        .order(tenants::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(tenants::id.gt(TenantId::from_uuid(after)));
    }
    Ok(page.finish(query.load(conn).await?))
}

/// The plan the tenant is on.
pub async fn plan_of(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Option<PlanId>> {
    tenants::table
        .filter(tenants::id.eq(tenant))
        .select(tenants::plan_id)
        .first(conn)
        .await
}

/// Moves the registry row's stamp, and so locks the row until the
/// transaction ends: the first statement of any change of the tenant's
/// limits. The change then writes the quota row only ([`write_quotas`]):
/// updating the registry row again in the same transaction would check its
/// plan's foreign key again, locking the plan after the tenant — the
/// reverse of the order a plan's change takes them in. (An update, not a
/// `SELECT … FOR UPDATE`: on Citus the registry is a reference table, whose
/// updates also take a lock on its shard, and that must come with the row's.)
pub async fn stamp_tenant(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<usize> {
    diesel::update(tenants::table.filter(tenants::id.eq(tenant)))
        .set(tenants::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
}

/// Writes the tenant's limits and where they come from (after
/// [`stamp_tenant`] in the same transaction).
pub async fn write_quotas(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    limits: &Limits,
    origin: &QuotaOrigin,
) -> QueryResult<Limits> {
    diesel::update(tenant_quotas::table.filter(tenant_quotas::tenant_id.eq(tenant)))
        .set((
            tenant_quotas::max_users.eq(limits.max_users),
            tenant_quotas::max_api_keys.eq(limits.max_api_keys),
            tenant_quotas::max_clusters.eq(limits.max_clusters),
            tenant_quotas::max_instances.eq(limits.max_instances),
            tenant_quotas::max_cpu_cores.eq(limits.max_cpu_cores),
            tenant_quotas::max_memory_gb.eq(limits.max_memory_gb),
            tenant_quotas::max_storage_gb.eq(limits.max_storage_gb),
            tenant_quotas::requests_per_second.eq(limits.requests_per_second),
            tenant_quotas::burst.eq(limits.burst),
            tenant_quotas::overrides.eq(&origin.overrides),
            tenant_quotas::plan_name.eq(&origin.plan_name),
            tenant_quotas::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Limits::as_returning())
        .get_result(conn)
        .await
}

/// Stamps (and locks) the registry row of every tenant on the plan that is
/// not purged; returns them in id order, with their slugs.
pub async fn stamp_tenants_on(
    conn: &mut Conn<'_>,
    plan: PlanId,
) -> QueryResult<Vec<(TenantId, String)>> {
    let mut rows: Vec<(TenantId, String)> = diesel::update(
        tenants::table.filter(tenants::plan_id.eq(plan).and(tenants::purged_at.is_null())),
    )
    .set(tenants::updated_at.eq(diesel::dsl::now))
    .returning((tenants::id, tenants::slug))
    .get_results(conn)
    .await?;
    rows.sort_by_key(|(id, _)| *id);
    Ok(rows)
}

/// Puts the tenant on `plan` (or on none).
pub async fn set_plan(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    plan: Option<PlanId>,
) -> QueryResult<usize> {
    diesel::update(tenants::table.filter(tenants::id.eq(tenant)))
        .set((
            tenants::plan_id.eq(plan),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Records which limits an admin set for the tenant, and the plan the
/// others came from.
pub async fn set_origin(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    origin: &QuotaOrigin,
) -> QueryResult<usize> {
    diesel::update(tenant_quotas::table.filter(tenant_quotas::tenant_id.eq(tenant)))
        .set((
            tenant_quotas::overrides.eq(&origin.overrides),
            tenant_quotas::plan_name.eq(&origin.plan_name),
        ))
        .execute(conn)
        .await
}

/// Where the tenant's limits come from (its own context may read it).
pub async fn origin(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Option<QuotaOrigin>> {
    tenant_quotas::table
        .filter(tenant_quotas::tenant_id.eq(tenant))
        .select(QuotaOrigin::as_select())
        .first(conn)
        .await
        .optional()
}

/// One tenant's quota row beside its usage.
#[derive(Debug, Clone)]
pub struct TenantQuotas {
    pub tenant: TenantId,
    pub limits: Limits,
    pub origin: QuotaOrigin,
    pub usage: Usage,
}

type QuotasColumns = (TenantId, Limits, QuotaOrigin, Usage);

/// The quota rows and usage of `tenants` (those that still have them: a
/// purged tenant has none), in tenant id order. Co-located on Citus: the
/// join stays on each tenant's shard.
pub async fn quotas_of(
    conn: &mut Conn<'_>,
    tenants: &[TenantId],
) -> QueryResult<Vec<TenantQuotas>> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<QuotasColumns> = tenant_quotas::table
        .inner_join(tenant_usage::table.on(tenant_usage::tenant_id.eq(tenant_quotas::tenant_id)))
        .filter(tenant_quotas::tenant_id.eq_any(tenants))
        .order(tenant_quotas::tenant_id.asc())
        .select((
            tenant_quotas::tenant_id,
            Limits::as_select(),
            QuotaOrigin::as_select(),
            Usage::as_select(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, limits, origin, usage)| TenantQuotas {
            tenant,
            limits,
            origin,
            usage,
        })
        .collect())
}

/// Gives `tenants` the limits `limits` wherever they have no override of
/// their own, and records `plan_name` as where those came from (none: the
/// service defaults). One statement for all of them; an overridden limit
/// keeps its value.
pub async fn apply(
    conn: &mut Conn<'_>,
    tenants: &[TenantId],
    plan_name: Option<&str>,
    limits: &Limits,
) -> QueryResult<usize> {
    if tenants.is_empty() {
        return Ok(0);
    }
    let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| *t.as_uuid()).collect();
    diesel::sql_query(
        "UPDATE tenant_quotas q SET
             max_users           = CASE WHEN 'max_users' = ANY (q.overrides) THEN q.max_users ELSE $3 END,
             max_api_keys        = CASE WHEN 'max_api_keys' = ANY (q.overrides) THEN q.max_api_keys ELSE $4 END,
             max_clusters        = CASE WHEN 'max_clusters' = ANY (q.overrides) THEN q.max_clusters ELSE $5 END,
             max_instances       = CASE WHEN 'max_instances' = ANY (q.overrides) THEN q.max_instances ELSE $6 END,
             max_cpu_cores       = CASE WHEN 'max_cpu_cores' = ANY (q.overrides) THEN q.max_cpu_cores ELSE $7 END,
             max_memory_gb       = CASE WHEN 'max_memory_gb' = ANY (q.overrides) THEN q.max_memory_gb ELSE $8 END,
             max_storage_gb      = CASE WHEN 'max_storage_gb' = ANY (q.overrides) THEN q.max_storage_gb ELSE $9 END,
             requests_per_second = CASE WHEN 'requests_per_second' = ANY (q.overrides) THEN q.requests_per_second ELSE $10 END,
             burst               = CASE WHEN 'burst' = ANY (q.overrides) THEN q.burst ELSE $11 END,
             plan_name           = $2,
             updated_at          = now()
          WHERE q.tenant_id = ANY ($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Nullable<Text>, _>(plan_name)
    .bind::<Integer, _>(limits.max_users)
    .bind::<Integer, _>(limits.max_api_keys)
    .bind::<Integer, _>(limits.max_clusters)
    .bind::<Integer, _>(limits.max_instances)
    .bind::<Integer, _>(limits.max_cpu_cores)
    .bind::<Integer, _>(limits.max_memory_gb)
    .bind::<Integer, _>(limits.max_storage_gb)
    .bind::<Integer, _>(limits.requests_per_second)
    .bind::<Integer, _>(limits.burst)
    .execute(conn)
    .await
}

/// A plan's limits as a tenant's.
impl From<&Plan> for Limits {
    fn from(plan: &Plan) -> Self {
        plan.limits.clone().into()
    }
}

impl From<&Limits> for PlanLimits {
    fn from(l: &Limits) -> Self {
        Self {
            max_users: l.max_users,
            max_api_keys: l.max_api_keys,
            max_clusters: l.max_clusters,
            max_instances: l.max_instances,
            max_cpu_cores: l.max_cpu_cores,
            max_memory_gb: l.max_memory_gb,
            max_storage_gb: l.max_storage_gb,
            requests_per_second: l.requests_per_second,
            burst: l.burst,
        }
    }
}
