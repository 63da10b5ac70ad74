use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::{PlanId, Resource, TenantId};
use tenantry_db::models::{Limits, Plan};
use tenantry_db::queries::plans::TenantQuotas;

use super::{LimitsView, QuotasView};

/// A plan: a named quota template. A tenant on it has these limits, except
/// the ones set for that tenant (its overrides).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    pub id: PlanId,
    /// Lowercase letters, digits and hyphens; unique.
    pub name: String,
    pub limits: LimitsView,
    /// How many tenants (not purged) are on the plan.
    pub tenants: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanView {
    #[must_use]
    pub fn new(plan: Plan, tenants: i64) -> Self {
        Self {
            id: plan.id,
            name: plan.name,
            limits: Limits::from(plan.limits).into(),
            tenants,
            created_at: plan.created_at,
            updated_at: plan.updated_at,
        }
    }
}

/// A tenant whose usage of a resource is above its (new) limit: nothing is
/// deleted, its growth of that resource is refused until usage is below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OverLimitView {
    pub tenant_id: TenantId,
    pub slug: String,
    /// The usage name, e.g. `instances`.
    pub resource: String,
    pub usage: i64,
    pub limit: i64,
}

impl OverLimitView {
    /// Every resource of `quotas` whose usage is above its limit.
    #[must_use]
    pub fn of(quotas: &TenantQuotas, slug: &str) -> Vec<Self> {
        let (limits, usage) = (quotas.limits.amounts(), quotas.usage.amounts());
        tenantry_core::quota::over_limit(&limits, &usage)
            .into_iter()
            .map(|r: Resource| Self {
                tenant_id: quotas.tenant,
                slug: slug.to_owned(),
                resource: r.as_str().to_owned(),
                usage: usage.get(r),
                limit: limits.get(r),
            })
            .collect()
    }
}

/// `PATCH /v1/admin/plans/{id}`: the plan after the change, how many
/// tenants it reached, and which of them are over a limit after it. With
/// `dry_run` nothing was written: this is what the change would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanChangeView {
    pub dry_run: bool,
    pub plan: PlanView,
    /// Tenants whose limits changed (an overridden limit does not).
    pub tenants_changed: i64,
    /// Each tenant and resource whose usage is above its limit after the
    /// change, in tenant id order.
    pub over_limit: Vec<OverLimitView>,
}

/// `PUT /v1/admin/tenants/{id}/plan`: the tenant's quotas on its new plan
/// (or on none), and what is over a limit there. With `dry_run` nothing
/// was written.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantPlanView {
    pub dry_run: bool,
    pub tenant_id: TenantId,
    pub slug: String,
    /// The plan's id (none: the tenant is on no plan).
    pub plan_id: Option<PlanId>,
    pub quotas: QuotasView,
    pub over_limit: Vec<OverLimitView>,
}
