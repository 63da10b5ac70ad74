//! Rows as the service reads them. Never serialized as they are: the
//! operations layer turns them into views (`tenantry_ops::views`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tenantry_core::{
    AccountId, ApiKeyId, ClusterId, EventId, InstanceId, MemberId, TenantId, TenantStatus, UserId,
};

use crate::schema::{
    account_quotas, account_usage, accounts, api_keys, audit_events, clusters, events, instances,
    members, tenant_quotas, tenant_settings, tenant_usage, tenants, users,
};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub legal_hold: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub account_id: AccountId,
}

/// An account: the owner of several tenants, administered as one (sql/0008).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = accounts, check_for_backend(diesel::pg::Pg))]
pub struct Account {
    pub id: AccountId,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An account's limits over the sum of its tenants; `None` = unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = account_quotas, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct AccountLimits {
    pub max_tenants: Option<i32>,
    pub max_users: Option<i32>,
    pub max_api_keys: Option<i32>,
    pub max_clusters: Option<i32>,
    pub max_instances: Option<i32>,
    pub max_cpu_cores: Option<i32>,
    pub max_memory_gb: Option<i32>,
    pub max_storage_gb: Option<i32>,
}

/// What an account's tenants use, summed.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = account_usage, check_for_backend(diesel::pg::Pg))]
pub struct AccountUsage {
    pub tenants: i32,
    pub users: i32,
    pub api_keys: i32,
    pub clusters: i32,
    pub instances: i32,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
}

/// A tenant's limits.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenant_quotas, check_for_backend(diesel::pg::Pg))]
pub struct Limits {
    pub max_users: i32,
    pub max_api_keys: i32,
    pub max_clusters: i32,
    pub max_instances: i32,
    pub max_cpu_cores: i32,
    pub max_memory_gb: i32,
    pub max_storage_gb: i32,
    pub requests_per_second: i32,
    pub burst: i32,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = tenant_usage, check_for_backend(diesel::pg::Pg))]
pub struct Usage {
    pub users: i32,
    pub api_keys: i32,
    pub clusters: i32,
    pub instances: i32,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
}

/// A tenant's settings document and how many times it was written.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenant_settings, check_for_backend(diesel::pg::Pg))]
pub struct TenantSettings {
    pub version: i32,
    pub document: serde_json::Value,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Space-separated tenant-plane scopes; `None`: a key from before
    /// migration 0009 (`tenant:read tenant:write`).
    pub scopes: Option<String>,
}

/// A person's membership of the tenant. `role` is one of `owner`, `admin`,
/// `member`, `viewer` (a CHECK holds it to them).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = members, check_for_backend(diesel::pg::Pg))]
pub struct Member {
    pub id: MemberId,
    pub subject: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clusters, check_for_backend(diesel::pg::Pg))]
pub struct Cluster {
    pub id: ClusterId,
    pub name: String,
    pub region: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = instances, check_for_backend(diesel::pg::Pg))]
pub struct Instance {
    pub id: InstanceId,
    pub cluster_id: ClusterId,
    pub name: String,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: EventId,
    pub kind: String,
    pub actor: String,
    pub subject: Option<uuid::Uuid>,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// One page of a keyset-paginated list: rows after `after`, in id order
/// (ids are UUIDv7, so that is creation order).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub after: Option<uuid::Uuid>,
}

impl Page {
    /// Splits `limit + 1` fetched rows into the page and whether more follow.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        (rows, more)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A purge receipt (`retention_runs`): open while the purge runs, closed
/// (`purged_at`) when the tenant's data is gone.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = crate::schema::retention_runs, check_for_backend(diesel::pg::Pg))]
pub struct RetentionRun {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub slug: String,
    pub deleted_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub purged_at: Option<DateTime<Utc>>,
    /// Rows removed per table.
    pub rows_removed: serde_json::Value,
    /// Which sweeper (host:pid) ran it.
    pub sweeper: String,
}

/// A custom domain (sql/0012).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::domains, check_for_backend(diesel::pg::Pg))]
pub struct Domain {
    pub tenant_id: TenantId,
    pub id: tenantry_core::DomainId,
    pub hostname: String,
    pub token: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A plan: a named quota template (`plans`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::plans, check_for_backend(diesel::pg::Pg))]
pub struct Plan {
    pub id: tenantry_core::PlanId,
    pub name: String,
    #[diesel(embed)]
    pub limits: PlanLimits,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A plan's limits, the same nine as a tenant's.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::plans, check_for_backend(diesel::pg::Pg))]
pub struct PlanLimits {
    pub max_users: i32,
    pub max_api_keys: i32,
    pub max_clusters: i32,
    pub max_instances: i32,
    pub max_cpu_cores: i32,
    pub max_memory_gb: i32,
    pub max_storage_gb: i32,
    pub requests_per_second: i32,
    pub burst: i32,
}

impl From<PlanLimits> for Limits {
    fn from(l: PlanLimits) -> Self {
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

/// Where a tenant's limits come from: the limits an admin set for it (by
/// name, e.g. `max_users`) and the plan that gave the others, if any.
#[derive(Debug, Clone, Default, Queryable, Selectable)]
#[diesel(table_name = tenant_quotas, check_for_backend(diesel::pg::Pg))]
pub struct QuotaOrigin {
    pub overrides: Vec<String>,
    pub plan_name: Option<String>,
}
