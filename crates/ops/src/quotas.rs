//! Quotas: charging and releasing them inside a use case's transaction,
//! and the admin operations that read and set a tenant's limits. Lowering a
//! limit below usage is allowed: it deletes nothing, blocks growth, and is
//! reported (`over_limit`).
//!
//! A limit set here is the tenant's own (an override): a change of its plan
//! leaves it alone, until [`follow`] gives it back to the plan (or, for a
//! tenant on no plan, to `[quotas.default]`).

use serde::Deserialize;
use serde_json::json;
use tenantry_core::quota::{fits, over_limit};
use tenantry_core::{Amounts, Resource, TenantId};
use tenantry_db::Conn;
use tenantry_db::models::{Limits, QuotaOrigin, Usage};
use tenantry_db::{ScopedFutureExt, queries};

use crate::plans::commit_or_rehearse;
use crate::tenants::resolve;
use crate::views::{LimitsView, QuotasView, UsageView};
use crate::{Actor, Error, Operations};

/// Takes `delta` from the tenant's quota in the current transaction, or
/// refuses with `QuotaExceeded` (the transaction then rolls back).
pub async fn charge(conn: &mut Conn<'_>, tenant: TenantId, delta: Amounts) -> Result<(), Error> {
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
pub async fn usage(conn: &mut Conn<'_>, tenant: TenantId) -> Result<Option<UsageView>, Error> {
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
    /// The names of the limits given, in column order.
    #[must_use]
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("max_users", self.max_users),
            ("max_api_keys", self.max_api_keys),
            ("max_clusters", self.max_clusters),
            ("max_instances", self.max_instances),
            ("max_cpu_cores", self.max_cpu_cores),
            ("max_memory_gb", self.max_memory_gb),
            ("max_storage_gb", self.max_storage_gb),
            ("requests_per_second", self.requests_per_second),
            ("burst", self.burst),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|_| name))
        .collect()
    }

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

/// The tenant's limits, usage and where the limits come from. Run after
/// [`lock`] when the limits are about to change.
pub(crate) async fn current(
    conn: &mut Conn<'_>,
    tenant: TenantId,
) -> Result<(Limits, Usage, QuotaOrigin), Error> {
    let origin = queries::plans::origin(conn, tenant).await?;
    match (
        queries::tenants::limits_and_usage(conn, tenant).await?,
        origin,
    ) {
        ((Some(limits), Some(usage)), Some(origin)) => Ok((limits, usage, origin)),
        // A purged tenant has no quota rows left.
        _ => Err(Error::NotFound),
    }
}

/// Stamps and locks the tenant's registry row: every change of a tenant's
/// limits (here, a plan's change, a move to another plan) takes it first,
/// so they follow one another and none overwrites another's limits; the
/// new stamp makes every replica read the tenant's rate limits again.
pub(crate) async fn lock(conn: &mut Conn<'_>, tenant: TenantId) -> Result<(), Error> {
    queries::plans::stamp_tenant(conn, tenant).await?;
    Ok(())
}

/// A tenant's limits beside its usage.
pub async fn get(ops: &Operations, key: &str) -> Result<QuotasView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let tenant = resolve(conn, key).await?.id;
                let (limits, usage, origin) = current(conn, tenant).await?;
                Ok(QuotasView::new(limits, usage, &origin))
            }
            .scope_boxed()
        })
        .await
}

/// Sets a tenant's limits, audited as `quota.updated` with the limits
/// before and after. The limits set become the tenant's overrides (`PUT`:
/// all of them). Returns the tenant and its quotas after the change.
pub async fn set(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: QuotaChange,
) -> Result<(TenantId, QuotasView), Error> {
    let done = change_limits(ops, actor, key, change, false).await?;
    Ok((done.tenant, done.after))
}

/// A resource whose usage is at or over its limit: at it, the next one is
/// refused; over it (a limit lowered below usage), nothing is deleted and
/// growth is refused until usage is below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub resource: Resource,
    pub usage: i64,
    pub limit: i64,
    /// Usage above the limit, not just at it.
    pub over: bool,
}

/// Every resource whose usage is at or over its limit, in
/// [`Resource::ALL`] order: those one more of would not fit
/// ([`tenantry_core::quota::fits`], the quota check's own rule).
#[must_use]
pub fn reached(limits: &Amounts, usage: &Amounts) -> Vec<Reached> {
    let over = over_limit(limits, usage);
    Resource::ALL
        .into_iter()
        .filter(|r| fits(limits, usage, &one(*r)).is_err())
        .map(|r| Reached {
            resource: r,
            usage: usage.get(r),
            limit: limits.get(r),
            over: over.contains(&r),
        })
        .collect()
}

/// What a change of a tenant's limits would do, rehearsed ([`preview`]):
/// nothing was written.
#[derive(Debug, Clone)]
pub struct QuotaPreview {
    pub tenant: TenantId,
    /// The limits now.
    pub before: LimitsView,
    /// The quotas after the change: limits, usage, sources.
    pub after: QuotasView,
    /// Each resource that would be at or over its new limit.
    pub reached: Vec<Reached>,
}

/// Rehearses [`set`]: the same unit of work (validation, the write, the
/// audit entry) run to the end and rolled back; answers what it would do.
pub async fn preview(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: QuotaChange,
) -> Result<QuotaPreview, Error> {
    change_limits(ops, actor, key, change, true).await
}

/// [`set`], or with `dry_run` its rehearsal.
async fn change_limits(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: QuotaChange,
    dry_run: bool,
) -> Result<QuotaPreview, Error> {
    // Validate before any database work: every given value ≥ 0.
    if let QuotaChange::Replace(limits) = &change {
        LimitsPatch::from(limits).apply(limits)?;
    }
    commit_or_rehearse(ops, dry_run, move |conn| {
        async move {
            let tenant = resolve(conn, key).await?.id;
            lock(conn, tenant).await?;
            let (before, usage, mut origin) = current(conn, tenant).await?;
            let before = LimitsView::from(before);
            let (next, set) = match change {
                QuotaChange::Replace(limits) => (limits, Limits::NAMES.to_vec()),
                QuotaChange::Merge(patch) => (patch.apply(&before)?, patch.given()),
            };
            for name in set {
                if !origin.overrides.iter().any(|o| o == name) {
                    origin.overrides.push(name.to_owned());
                }
            }
            origin
                .overrides
                .sort_by_key(|o| Limits::NAMES.iter().position(|n| n == o));
            let after =
                queries::plans::write_quotas(conn, tenant, &(&next).into(), &origin).await?;
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
            let reached = reached(&after.amounts(), &usage.amounts());
            Ok(QuotaPreview {
                tenant,
                before,
                after: QuotasView::new(after, usage, &origin),
                reached,
            })
        }
        .scope_boxed()
    })
    .await
}

/// Drops the tenant's override of one limit (`max_users`, …, `burst`): the
/// limit goes back to its plan's value, or to `[quotas.default]` for a
/// tenant on no plan. Audited as `quota.updated` (nothing to audit when the
/// limit was not overridden).
pub async fn follow(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    limit: &str,
) -> Result<(TenantId, QuotasView), Error> {
    let Some(name) = Limits::NAMES.iter().copied().find(|n| *n == limit) else {
        return Err(Error::validation(
            "limit",
            format!("must be one of {}", Limits::NAMES.join(", ")),
        ));
    };
    let defaults = Limits::from(&ops.tenancy.default_limits);
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let tenant = resolve(conn, key).await?.id;
                // The plan before the tenant (the lock order of ops::plans).
                let plan = queries::plans::plan_of(conn, tenant).await?;
                let base = match plan {
                    Some(plan) => Limits::from(&queries::plans::lock(conn, plan, false).await?),
                    None => defaults,
                };
                lock(conn, tenant).await?;
                if queries::plans::plan_of(conn, tenant).await? != plan {
                    return Err(Error::Unavailable("concurrent update; retry".to_owned()));
                }
                let (before, usage, mut origin) = current(conn, tenant).await?;
                if !origin.overrides.iter().any(|o| o == name) {
                    return Ok((tenant, QuotasView::new(before, usage, &origin)));
                }
                let value = base.get(name).unwrap_or_default();
                let next = before.clone().with(name, value);
                origin.overrides.retain(|o| o != name);
                let after = queries::plans::write_quotas(conn, tenant, &next, &origin).await?;
                queries::audit::record(
                    conn,
                    Some(tenant),
                    actor.as_str(),
                    "quota.updated",
                    Some(json!(LimitsView::from(before))),
                    Some(json!(LimitsView::from(after.clone()))),
                    None,
                )
                .await?;
                Ok((tenant, QuotasView::new(after, usage, &origin)))
            }
            .scope_boxed()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_reached_at_its_limit_and_over_it_only_above() {
        let limits = Resource::ALL
            .into_iter()
            .fold(Amounts::default(), |a, r| a.with(r, 2));
        let usage = Amounts::default()
            .with(Resource::Clusters, 3)
            .with(Resource::Users, 2)
            .with(Resource::Instances, 1);
        assert_eq!(
            reached(&limits, &usage),
            vec![
                Reached {
                    resource: Resource::Users,
                    usage: 2,
                    limit: 2,
                    over: false
                },
                Reached {
                    resource: Resource::Clusters,
                    usage: 3,
                    limit: 2,
                    over: true
                },
            ]
        );
        // A limit of 0 with nothing used: at it (nothing can be added).
        let zero = Amounts::default();
        assert_eq!(reached(&zero, &zero).len(), Resource::ALL.len());
    }
}
