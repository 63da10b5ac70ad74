use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::{AccountId, TenantId, TenantStatus};
use tenantry_db::models::Tenant;

use super::{LimitsView, UsageView};

/// A tenant, as the admin plane shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: TenantId,
    /// The account that owns the tenant.
    pub account_id: AccountId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub legal_hold: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the sweeper may purge this deleted tenant's data (none while on
    /// legal hold).
    pub purge_after: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
}

impl TenantView {
    #[must_use]
    pub fn new(tenant: Tenant, retention: Duration) -> Self {
        let purge_after = match (tenant.deleted_at, tenant.purged_at, tenant.legal_hold) {
            (Some(deleted), None, false) => chrono::Duration::from_std(retention)
                .ok()
                .and_then(|period| deleted.checked_add_signed(period)),
            _ => None,
        };
        Self {
            id: tenant.id,
            account_id: tenant.account_id,
            slug: tenant.slug,
            name: tenant.name,
            status: tenant.status,
            legal_hold: tenant.legal_hold,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            deleted_at: tenant.deleted_at,
            purge_after,
            purged_at: tenant.purged_at,
        }
    }
}

/// The caller's own tenant (`GET /v1/tenant`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnTenantView {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
}

impl From<Tenant> for OwnTenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            slug: t.slug,
            name: t.name,
            status: t.status,
        }
    }
}

/// A tenant's data at a glance (`GET /v1/admin/tenants/{id}/health`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DataHealthView {
    pub id: TenantId,
    pub slug: String,
    pub status: TenantStatus,
    /// Rows per tenant table.
    pub counts: BTreeMap<String, i64>,
    /// Absent once the tenant is purged.
    pub usage: Option<UsageView>,
    pub limits: Option<LimitsView>,
    /// The latest change to any of the tenant's rows.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Approximate size of the tenant's rows, in bytes.
    pub approx_bytes: i64,
}

/// What an import wrote: the tenant as it left it, rows per table, rows
/// skipped (`api_keys`: credentials are never imported), and what became
/// of each section of the file (`restored` or `skipped`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    pub tenant: TenantView,
    pub rows: std::collections::BTreeMap<String, u64>,
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub sections: std::collections::BTreeMap<String, String>,
}
