use serde::{Deserialize, Serialize};
use tenantry_core::quota::over_limit;
use tenantry_db::models::{Limits, Usage};

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

/// Limits beside usage, and which resources are over their limit (after a
/// limit was lowered below usage: nothing is deleted, growth is blocked).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotasView {
    pub limits: LimitsView,
    pub usage: UsageView,
    /// Resources whose usage is above their limit, e.g. `["instances"]`.
    pub over_limit: Vec<String>,
}

impl QuotasView {
    #[must_use]
    pub fn new(limits: Limits, usage: Usage) -> Self {
        let over_limit = over_limit(&limits.amounts(), &usage.amounts())
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        Self {
            limits: limits.into(),
            usage: usage.into(),
            over_limit,
        }
    }
}
