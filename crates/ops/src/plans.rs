//! Plans (admin plane): named quota templates (`free`, `team`, …). A tenant
//! on a plan has the plan's limits, except the ones an admin set for that
//! tenant (its overrides, `ops::quotas::set`); a tenant on no plan has
//! `[quotas.default]` instead. The effective limits live in the tenant's
//! quota row, so the quota check stays one conditional UPDATE.
//!
//! A plan's change reaches every tenant on it in ONE transaction, and
//! moves each one's registry stamp, so every replica reads the new rate
//! limits with the tenant's next request. Lowering a limit below a
//! tenant's usage is allowed, as for `ops::quotas::set`: nothing is
//! deleted, growth is blocked, and the change reports who is over. With
//! `dry_run` the same unit of work runs to the end and is rolled back.
//!
//! Locks, always in this order, so changes follow one another instead of
//! deadlocking: the plan's row (exclusive to change or delete it, shared to
//! move a tenant onto it), then the tenants' registry rows
//! (`ops::quotas::lock`). The plan's row lock is also what keeps
//! `tenants.plan_id` whole, which has no foreign key (sql/0010_plans says
//! why): a tenant is put on a plan only while holding it shared, a plan is
//! deleted only while holding it exclusively, after counting its tenants.

use std::borrow::Cow;
use std::collections::BTreeMap;
use tenantry_db::Conn;

use diesel::result::DatabaseErrorKind;
use serde_json::{Value, json};
use tenantry_core::{PlanId, Slug, TenantId};
use tenantry_db::models::{Limits, Plan};
use tenantry_db::{DbError, ScopedBoxFuture, ScopedFutureExt, queries};

use crate::error::on_constraint;
use crate::quotas::{LimitsPatch, current, lock};
use crate::tenants::resolve as resolve_tenant;
use crate::views::{
    LimitsView, List, OverLimitView, PlanChangeView, PlanView, QuotasView, TenantPlanView,
    TenantView,
};
use crate::{Actor, Error, Operations, Page};

/// A plan to create; limits not given are copied from `[quotas.default]`.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: Slug,
    pub limits: LimitsPatch,
}

/// What to change of a plan; `None` (and limits not given) keep theirs.
#[derive(Debug, Clone, Default)]
pub struct PlanChange {
    pub name: Option<Slug>,
    pub limits: LimitsPatch,
}

/// `{id_or_name}`: a key that parses as a UUID is only ever an id, anything
/// else only ever a name (no name parses as a UUID: `Slug::parse`).
async fn resolve(conn: &mut Conn<'_>, key: &str) -> Result<Plan, Error> {
    match key.parse::<uuid::Uuid>() {
        Ok(id) => Ok(queries::plans::get(conn, PlanId::from_uuid(id)).await?),
        Err(_) if !crate::could_name_a_row(key) => Err(Error::NotFound),
        Err(_) => Ok(queries::plans::find_by_name(conn, key).await?),
    }
}

/// A plan named in a request body (by id or name), locked shared: an
/// unknown one is the body's fault (422 naming `plan`), not a missing page.
pub(crate) async fn named(conn: &mut Conn<'_>, key: &str) -> Result<Plan, Error> {
    let found = resolve(conn, key).await.map_err(|e| match e {
        Error::NotFound => Error::validation("plan", "no such plan"),
        other => other,
    })?;
    Ok(queries::plans::lock(conn, found.id, false).await?)
}

fn name_taken(e: diesel::result::Error) -> Error {
    on_constraint(
        e,
        DatabaseErrorKind::UniqueViolation,
        "plans_name_unique",
        || Error::conflict("a plan of this name exists"),
    )
}

async fn tenants_on(conn: &mut Conn<'_>, plan: PlanId) -> Result<i64, Error> {
    Ok(queries::plans::tenant_counts(conn, &[plan])
        .await?
        .first()
        .map_or(0, |(_, n)| *n))
}

/// The limits that differ, by name: `(before, after)`.
fn differences(before: &LimitsView, after: &LimitsView) -> (Value, Value) {
    let (b, a) = (json!(before), json!(after));
    let mut was = serde_json::Map::new();
    let mut is = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (name, value) in a {
            if b.get(name) != Some(value) {
                was.insert(name.clone(), b.get(name).cloned().unwrap_or(Value::Null));
                is.insert(name.clone(), value.clone());
            }
        }
    }
    (Value::Object(was), Value::Object(is))
}

/// A unit of work's outcome inside the scope: failed, or rehearsed (done,
/// and rolled back by leaving as an error).
enum Outcome<T> {
    Failed(Error),
    Rehearsed(T),
}

impl<T> From<DbError> for Outcome<T> {
    fn from(e: DbError) -> Self {
        Self::Failed(e.into())
    }
}

impl<T> From<diesel::result::Error> for Outcome<T> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Runs `work` in the platform scope: commits, or with `dry_run` runs it
/// to the end and rolls it back, answering what it returned either way.
pub(crate) async fn commit_or_rehearse<'a, T, F>(
    ops: &Operations,
    dry_run: bool,
    work: F,
) -> Result<T, Error>
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<T, Error>> + Send + 'a,
    T: Send + 'a,
{
    let outcome = ops
        .db
        .platform()
        .run(move |conn| {
            async move {
                match work(conn).await {
                    Ok(done) if dry_run => Err(Outcome::Rehearsed(done)),
                    Ok(done) => Ok(done),
                    Err(e) => Err(Outcome::Failed(e)),
                }
            }
            .scope_boxed()
        })
        .await;
    match outcome {
        Ok(done) | Err(Outcome::Rehearsed(done)) => Ok(done),
        Err(Outcome::Failed(e)) => Err(e),
    }
}

/// Creates a plan; audited as `plan.created` with the plan.
pub async fn create(ops: &Operations, actor: &Actor, new: NewPlan) -> Result<PlanView, Error> {
    let tenancy = &ops.tenancy;
    ops.db
        .platform()
        .run(|conn| async move { create_on(conn, tenancy, actor, new).await }.scope_boxed())
        .await
}

/// [`create`] on the connection of a platform-scope transaction the caller
/// holds (an idempotent create claims its key in it first).
pub async fn create_on(
    conn: &mut Conn<'_>,
    tenancy: &crate::Tenancy,
    actor: &Actor,
    new: NewPlan,
) -> Result<PlanView, Error> {
    let limits = Limits::from(&new.limits.apply(&tenancy.default_limits)?);
    let id = PlanId::new();
    let plan = queries::plans::create(conn, id, new.name.as_str(), &limits)
        .await
        .map_err(name_taken)?;
    let view = PlanView::new(plan, 0);
    queries::audit::record(
        conn,
        None,
        actor.as_str(),
        "plan.created",
        None,
        Some(json!(view)),
        None,
    )
    .await?;
    Ok(view)
}

/// Plans in creation order, each with how many tenants are on it.
pub async fn list(ops: &Operations, page: Page) -> Result<List<PlanView>, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let (plans, more) = queries::plans::list(conn, page).await?;
                let ids: Vec<PlanId> = plans.iter().map(|p| p.id).collect();
                let counts: BTreeMap<PlanId, i64> = queries::plans::tenant_counts(conn, &ids)
                    .await?
                    .into_iter()
                    .collect();
                Ok(List::new(plans, more, |p| *p.id.as_uuid()).map(|p| {
                    let n = counts.get(&p.id).copied().unwrap_or(0);
                    PlanView::new(p, n)
                }))
            }
            .scope_boxed()
        })
        .await
}

pub async fn get(ops: &Operations, key: &str) -> Result<PlanView, Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let plan = resolve(conn, key).await?;
                let n = tenants_on(conn, plan.id).await?;
                Ok(PlanView::new(plan, n))
            }
            .scope_boxed()
        })
        .await
}

/// The tenants (not purged) on the plan, in id order.
pub async fn tenants(ops: &Operations, key: &str, page: Page) -> Result<List<TenantView>, Error> {
    let retention = ops.tenancy.retention.period;
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let plan = resolve(conn, key).await?;
                Ok::<_, Error>(queries::plans::tenants_on(conn, plan.id, page).await?)
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |t| *t.id.as_uuid()).map(|t| TenantView::new(t, retention)))
}

/// Renames a plan and/or changes its limits, and gives the new limits to
/// every tenant on it (not purged) wherever the tenant has no override —
/// all in one transaction. Audited as `plan.updated` (the limits that
/// changed, before and after) and, for each tenant whose limits changed,
/// `quota.updated`. Reports every tenant and resource over its limit
/// after the change; with `dry_run`, what the change would do.
pub async fn update(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: PlanChange,
    dry_run: bool,
) -> Result<PlanChangeView, Error> {
    // Every given limit ≥ 0, before any database work.
    change.limits.apply(&ops.tenancy.default_limits)?;
    commit_or_rehearse(ops, dry_run, move |conn| {
        async move {
            let plan = resolve(conn, key).await?;
            let plan = queries::plans::lock(conn, plan.id, true).await?;
            let before = LimitsView::from(Limits::from(&plan));
            let after = change.limits.apply(&before)?;
            let name = change
                .name
                .map_or_else(|| plan.name.clone(), |n| n.as_str().to_owned());
            let updated = queries::plans::update(conn, plan.id, &name, &(&after).into())
                .await
                .map_err(name_taken)?;
            let tenants = queries::plans::stamp_tenants_on(conn, plan.id).await?;
            let ids: Vec<TenantId> = tenants.iter().map(|(id, _)| *id).collect();
            let slugs: BTreeMap<TenantId, String> = tenants.into_iter().collect();
            let was: BTreeMap<TenantId, LimitsView> = queries::plans::quotas_of(conn, &ids)
                .await?
                .into_iter()
                .map(|q| (q.tenant, LimitsView::from(q.limits)))
                .collect();
            queries::plans::apply(conn, &ids, Some(&name), &(&after).into()).await?;
            let now = queries::plans::quotas_of(conn, &ids).await?;
            let (mut tenants_changed, mut over_limit) = (0, Vec::new());
            for quotas in &now {
                let slug = slugs.get(&quotas.tenant).map_or("", String::as_str);
                over_limit.extend(OverLimitView::of(quotas, slug));
                let limits = LimitsView::from(quotas.limits.clone());
                let Some(previous) = was.get(&quotas.tenant) else {
                    continue;
                };
                if *previous != limits {
                    tenants_changed += 1;
                    queries::audit::record(
                        conn,
                        Some(quotas.tenant),
                        actor.as_str(),
                        "quota.updated",
                        Some(json!(previous)),
                        Some(json!(limits)),
                        None,
                    )
                    .await?;
                }
            }
            let (limits_was, limits_is) = differences(&before, &after);
            queries::audit::record(
                conn,
                None,
                actor.as_str(),
                "plan.updated",
                Some(json!({ "id": plan.id, "name": plan.name, "limits": limits_was })),
                Some(json!({
                    "id": plan.id,
                    "name": name,
                    "limits": limits_is,
                    "tenants": ids.len(),
                    "tenants_changed": tenants_changed,
                    "over_limit": over_limit.len(),
                })),
                None,
            )
            .await?;
            let on_plan = i64::try_from(ids.len()).unwrap_or(i64::MAX);
            Ok(PlanChangeView {
                dry_run,
                plan: PlanView::new(updated, on_plan),
                tenants_changed,
                over_limit,
            })
        }
        .scope_boxed()
    })
    .await
}

/// Deletes a plan no tenant is on (a purged tenant's tombstone does not
/// count: it may keep the id); otherwise `409`. Audited as `plan.deleted`.
pub async fn delete(ops: &Operations, actor: &Actor, key: &str) -> Result<(), Error> {
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let plan = resolve(conn, key).await?;
                // Exclusive: a tenant being moved onto the plan holds it
                // shared, so it is either counted here or refused after.
                let plan = queries::plans::lock(conn, plan.id, true).await?;
                let n = tenants_on(conn, plan.id).await?;
                if n > 0 {
                    return Err(Error::Conflict(Cow::Owned(format!(
                        "{n} tenant(s) are on this plan; move them to another plan (PUT /v1/admin/tenants/{{id}}/plan) first"
                    ))));
                }
                queries::plans::delete(conn, plan.id).await?;
                queries::audit::record(
                    conn,
                    None,
                    actor.as_str(),
                    "plan.deleted",
                    Some(json!(PlanView::new(plan, 0))),
                    None,
                    None,
                )
                .await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
}

/// Puts `tenant` on `plan` (held shared: [`named`]) or on none, its
/// registry row already locked (`quotas::lock`, after the plan: the lock
/// order above): its limits become the plan's (or `defaults`, the service's
/// `[quotas.default]`) wherever it has no override, and the plan's name is
/// recorded as their source. [`assign`] and the import both move a tenant
/// this way.
pub(crate) async fn put_on(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    plan: Option<&Plan>,
    defaults: &Limits,
) -> Result<(), Error> {
    let (limits, name) = match plan {
        Some(p) => (Limits::from(p), Some(p.name.as_str())),
        None => (defaults.clone(), None),
    };
    queries::plans::set_plan(conn, tenant, plan.map(|p| p.id)).await?;
    queries::plans::apply(conn, &[tenant], name, &limits).await?;
    Ok(())
}

/// Puts a tenant on a plan (`Some`, by id or name) or on none: its limits
/// become the plan's (or `[quotas.default]`) wherever it has no override.
/// Audited as `tenant.plan_changed` and, when its limits changed,
/// `quota.updated`. With `dry_run`, what the move would do.
pub async fn assign(
    ops: &Operations,
    actor: &Actor,
    tenant_key: &str,
    plan_key: Option<String>,
    dry_run: bool,
) -> Result<TenantPlanView, Error> {
    let defaults = Limits::from(&ops.tenancy.default_limits);
    commit_or_rehearse(ops, dry_run, move |conn| {
        async move {
            let tenant = resolve_tenant(conn, tenant_key).await?;
            let plan = match plan_key.as_deref() {
                Some(key) => Some(named(conn, key).await?),
                None => None,
            };
            lock(conn, tenant.id).await?;
            let was_on = queries::plans::plan_of(conn, tenant.id).await?;
            let (before, _, origin) = current(conn, tenant.id).await?;
            put_on(conn, tenant.id, plan.as_ref(), &defaults).await?;
            let plan_id = plan.as_ref().map(|p| p.id);
            let name = plan.as_ref().map(|p| p.name.as_str());
            let Some(now) = queries::plans::quotas_of(conn, &[tenant.id]).await?.pop() else {
                return Err(Error::NotFound);
            };
            queries::audit::record(
                conn,
                Some(tenant.id),
                actor.as_str(),
                "tenant.plan_changed",
                Some(json!({ "plan_id": was_on, "plan": origin.plan_name })),
                Some(json!({ "plan_id": plan_id, "plan": name })),
                None,
            )
            .await?;
            let (before, after) = (
                LimitsView::from(before),
                LimitsView::from(now.limits.clone()),
            );
            if before != after {
                queries::audit::record(
                    conn,
                    Some(tenant.id),
                    actor.as_str(),
                    "quota.updated",
                    Some(json!(before)),
                    Some(json!(after)),
                    None,
                )
                .await?;
            }
            let over_limit = OverLimitView::of(&now, &tenant.slug);
            Ok(TenantPlanView {
                dry_run,
                tenant_id: tenant.id,
                slug: tenant.slug,
                plan_id,
                quotas: QuotasView::new(now.limits, now.usage, &now.origin),
                over_limit,
            })
        }
        .scope_boxed()
    })
    .await
}
