//! Quotas: charging and releasing them inside a use case's transaction,
//! and the admin operations that read and set a tenant's limits. Lowering a
//! limit below usage is allowed: it deletes nothing, blocks growth, and is
//! reported (`over_limit`).

use serde::Deserialize;
use serde_json::json;
use tenantry_core::{Amounts, Resource, TenantId};
use tenantry_db::models::{Limits, Usage};
use tenantry_db::{AsyncPgConnection, ScopedFutureExt, queries};

use crate::tenants::resolve;
use crate::views::{LimitsView, QuotasView, UsageView};
use crate::{Actor, Error, Operations};

/// Takes `delta` from the tenant's quota in the current transaction, or
/// refuses with `QuotaExceeded` (the transaction then rolls back).
pub async fn charge(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    delta: Amounts,
) -> Result<(), Error> {
    queries::quotas::consume(conn, tenant, delta)
        .await?
        .map_err(Error::QuotaExceeded)
}

/// One of `resource`.
#[must_use]
pub fn one(resource: Resource) -> Amounts {
    Amounts::default().with(resource, 1)
}

/// The tenant's usage as the current transaction sees it (a rehearsal's
/// "usage after").
pub async fn usage(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<Option<UsageView>, Error> {
    Ok(queries::tenants::limits_and_usage(conn, tenant)
        .await?
        .1
        .map(Into::into))
}

/// Limits to change; the others keep their value. Every given limit must
/// be 0 or more.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub max_users: Option<i32>,
    pub max_api_keys: Option<i32>,
    pub max_clusters: Option<i32>,
    pub max_instances: Option<i32>,
    pub max_cpu_cores: Option<i32>,
    pub max_memory_gb: Option<i32>,
    pub max_storage_gb: Option<i32>,
    pub requests_per_second: Option<i32>,
    pub burst: Option<i32>,
}

impl From<&LimitsView> for LimitsPatch {
    fn from(l: &LimitsView) -> Self {
        Self {
            max_users: Some(l.max_users),
            max_api_keys: Some(l.max_api_keys),
            max_clusters: Some(l.max_clusters),
            max_instances: Some(l.max_instances),
            max_cpu_cores: Some(l.max_cpu_cores),
            max_memory_gb: Some(l.max_memory_gb),
            max_storage_gb: Some(l.max_storage_gb),
            requests_per_second: Some(l.requests_per_second),
            burst: Some(l.burst),
        }
    }
}

impl LimitsPatch {
    /// `base` with the given limits replaced; refused if one is negative.
    pub fn apply(&self, base: &LimitsView) -> Result<LimitsView, Error> {
        let pick = |name: &'static str, value: Option<i32>, default: i32| match value {
            Some(v) if v < 0 => Err(Error::validation(name, "must be 0 or more")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        Ok(LimitsView {
            max_users: pick("max_users", self.max_users, base.max_users)?,
            max_api_keys: pick("max_api_keys", self.max_api_keys, base.max_api_keys)?,
            max_clusters: pick("max_clusters", self.max_clusters, base.max_clusters)?,
            max_instances: pick("max_instances", self.max_instances, base.max_instances)?,
            max_cpu_cores: pick("max_cpu_cores", self.max_cpu_cores, base.max_cpu_cores)?,
            max_memory_gb: pick("max_memory_gb", self.max_memory_gb, base.max_memory_gb)?,
            max_storage_gb: pick("max_storage_gb", self.max_storage_gb, base.max_storage_gb)?,
            requests_per_second: pick(
                "requests_per_second",
                self.requests_per_second,
                base.requests_per_second,
            )?,
            burst: pick("burst", self.burst, base.burst)?,
        })
    }
}

/// How to change a tenant's limits.
#[derive(Debug, Clone)]
pub enum QuotaChange {
    /// Every limit (`PUT`).
    Replace(LimitsView),
    /// Only the given ones (`PATCH`).
    Merge(LimitsPatch),
}

async fn current(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> Result<(TenantId, Limits, Usage), Error> {
    let tenant = resolve(conn, key).await?;
    match queries::tenants::limits_and_usage(conn, tenant.id).await? {
        (Some(limits), Some(usage)) => Ok((tenant.id, limits, usage)),
        // A purged tenant has no quota rows left.
        _ => Err(Error::NotFound),
    }
}

/// A tenant's limits beside its usage.
pub async fn get(ops: &Operations, key: &str) -> Result<QuotasView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let (_, limits, usage) = current(conn, key).await?;
                Ok(QuotasView::new(limits, usage))
            }
            .scope_boxed()
        })
        .await
}

/// Sets a tenant's limits, audited as `quota.updated` with the limits
/// before and after. Returns the tenant and its quotas after the change.
pub async fn set(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: QuotaChange,
) -> Result<(TenantId, QuotasView), Error> {
    // Validate before any database work: every given value ≥ 0.
    if let QuotaChange::Replace(limits) = &change {
        LimitsPatch::from(limits).apply(limits)?;
    }
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let (tenant, before, usage) = current(conn, key).await?;
                let before = LimitsView::from(before);
                let next = match change {
                    QuotaChange::Replace(limits) => limits,
                    QuotaChange::Merge(patch) => patch.apply(&before)?,
                };
                let after = queries::tenants::set_limits(conn, tenant, &(&next).into()).await?;
                let after_view = LimitsView::from(after.clone());
                queries::audit::record(
                    conn,
                    Some(tenant),
                    actor.as_str(),
                    "quota.updated",
                    Some(json!(before)),
                    Some(json!(after_view)),
                    None,
                )
                .await?;
                Ok((tenant, QuotasView::new(after, usage)))
            }
            .scope_boxed()
        })
        .await
}
