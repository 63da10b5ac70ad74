use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::{AccountId, TenantId};
use tenantry_db::models::{Account, AccountLimits, AccountUsage};

use super::TenantView;

/// An account's limits over the sum of its tenants (those not yet
/// purged); `null` = unlimited. Also the body's `limits` of
/// `POST /v1/admin/accounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLimitsView {
    #[serde(default)]
    pub max_tenants: Option<i32>,
    #[serde(default)]
    pub max_users: Option<i32>,
    #[serde(default)]
    pub max_api_keys: Option<i32>,
    #[serde(default)]
    pub max_clusters: Option<i32>,
    #[serde(default)]
    pub max_instances: Option<i32>,
    #[serde(default)]
    pub max_cpu_cores: Option<i32>,
    #[serde(default)]
    pub max_memory_gb: Option<i32>,
    #[serde(default)]
    pub max_storage_gb: Option<i32>,
}

impl From<AccountLimits> for AccountLimitsView {
    fn from(l: AccountLimits) -> Self {
        Self {
            max_tenants: l.max_tenants,
            max_users: l.max_users,
            max_api_keys: l.max_api_keys,
            max_clusters: l.max_clusters,
            max_instances: l.max_instances,
            max_cpu_cores: l.max_cpu_cores,
            max_memory_gb: l.max_memory_gb,
            max_storage_gb: l.max_storage_gb,
        }
    }
}

impl From<&AccountLimitsView> for AccountLimits {
    fn from(l: &AccountLimitsView) -> Self {
        Self {
            max_tenants: l.max_tenants,
            max_users: l.max_users,
            max_api_keys: l.max_api_keys,
            max_clusters: l.max_clusters,
            max_instances: l.max_instances,
            max_cpu_cores: l.max_cpu_cores,
            max_memory_gb: l.max_memory_gb,
            max_storage_gb: l.max_storage_gb,
        }
    }
}

/// What an account's tenants use, summed (`tenants`: those not yet purged).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountUsageView {
    pub tenants: i32,
    pub users: i32,
    pub api_keys: i32,
    pub clusters: i32,
    pub instances: i32,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
}

impl From<AccountUsage> for AccountUsageView {
    fn from(u: AccountUsage) -> Self {
        Self {
            tenants: u.tenants,
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

/// An account: the owner of several isolated tenants, administered as one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: AccountId,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Absent for the default account, which is unmetered.
    pub limits: Option<AccountLimitsView>,
    /// Absent for the default account, which is unmetered.
    pub usage: Option<AccountUsageView>,
}

impl AccountView {
    #[must_use]
    pub fn new(a: Account, limits: Option<AccountLimits>, usage: Option<AccountUsage>) -> Self {
        Self {
            id: a.id,
            slug: a.slug,
            name: a.name,
            created_at: a.created_at,
            updated_at: a.updated_at,
            limits: limits.map(Into::into),
            usage: usage.map(Into::into),
        }
    }
}

/// A lifecycle action applied to every tenant of an account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountTransitionView {
    pub account: AccountId,
    /// `suspend`, `activate`, `archive`, `delete` or `restore`.
    pub action: String,
    /// The tenants that made the transition, as they are now.
    pub changed: Vec<TenantView>,
    /// Tenants left alone: already in the target status, purged, or (for
    /// every action but delete and restore) deleted; for restore, those
    /// not deleted.
    pub unchanged: Vec<TenantId>,
}
