use serde::{Deserialize, Serialize};
use tenantry_core::quota::over_limit;
use tenantry_db::models::{Limits, QuotaOrigin, Usage};

/// A tenant's limits; also the shape of `[quotas.default]` in the config
/// and of the body of `PUT .../quotas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsView {
    pub max_users: i32,
    pub max_api_keys: i32,
    pub max_clusters: i32,
    pub max_instances: i32,
    pub max_cpu_cores: i32,
    pub max_memory_gb: i32,
    pub max_storage_gb: i32,
    /// Sustained requests per second.
    pub requests_per_second: i32,
    /// Requests allowed at once above the sustained rate.
    pub burst: i32,
}

impl From<Limits> for LimitsView {
    fn from(l: Limits) -> Self {
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

impl From<&LimitsView> for Limits {
    fn from(l: &LimitsView) -> Self {
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

/// What a tenant uses of each limited resource.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub users: i32,
    pub api_keys: i32,
    pub clusters: i32,
    pub instances: i32,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            users: u.users,
            api_keys: u.api_keys,
            clusters: u.clusters,
            instances: u.instances,
            cpu_cores: u.cpu_cores,
            memory_gb: u.memory_gb,
            storage_gb: u.storage_gb,
        }
    }
}

/// Where one limit's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitSourceKind {
    /// The tenant's plan (`plan` names it).
    Plan,
    /// Set for this tenant by an admin: a plan change leaves it alone.
    Override,
    /// The service's `[quotas.default]` (the tenant is on no plan).
    Default,
}

/// Where one limit's value comes from, and the plan's name when it is the
/// plan's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimitSource {
    pub source: LimitSourceKind,
    /// The plan's name, when `source` is `plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

/// Where each of the tenant's limits comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimitSourcesView {
    pub max_users: LimitSource,
    pub max_api_keys: LimitSource,
    pub max_clusters: LimitSource,
    pub max_instances: LimitSource,
    pub max_cpu_cores: LimitSource,
    pub max_memory_gb: LimitSource,
    pub max_storage_gb: LimitSource,
    pub requests_per_second: LimitSource,
    pub burst: LimitSource,
}

impl LimitSourcesView {
    #[must_use]
    pub fn new(origin: &QuotaOrigin) -> Self {
        let of = |name: &str| {
            if origin.overrides.iter().any(|o| o == name) {
                LimitSource {
                    source: LimitSourceKind::Override,
                    plan: None,
                }
            } else if let Some(plan) = &origin.plan_name {
                LimitSource {
                    source: LimitSourceKind::Plan,
                    plan: Some(plan.clone()),
                }
            } else {
                LimitSource {
                    source: LimitSourceKind::Default,
                    plan: None,
                }
            }
        };
        Self {
            max_users: of("max_users"),
            max_api_keys: of("max_api_keys"),
            max_clusters: of("max_clusters"),
            max_instances: of("max_instances"),
            max_cpu_cores: of("max_cpu_cores"),
            max_memory_gb: of("max_memory_gb"),
            max_storage_gb: of("max_storage_gb"),
            requests_per_second: of("requests_per_second"),
            burst: of("burst"),
        }
    }
}

/// Limits beside usage, and which resources are over their limit (after a
/// limit was lowered below usage: nothing is deleted, growth is blocked).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotasView {
    pub limits: LimitsView,
    pub usage: UsageView,
    /// Resources whose usage is above their limit, e.g. `["instances"]`.
    pub over_limit: Vec<String>,
    /// The plan the tenant is on, by name (none: `[quotas.default]`).
    pub plan: Option<String>,
    /// Where each limit comes from: the plan, an override set for this
    /// tenant, or the service's defaults.
    pub sources: LimitSourcesView,
}

impl QuotasView {
    #[must_use]
    pub fn new(limits: Limits, usage: Usage, origin: &QuotaOrigin) -> Self {
        let over_limit = over_limit(&limits.amounts(), &usage.amounts())
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        Self {
            limits: limits.into(),
            usage: usage.into(),
            over_limit,
            plan: origin.plan_name.clone(),
            sources: LimitSourcesView::new(origin),
        }
    }
}
