use serde::Serialize;
use tenantry_core::TenantId;
use tenantry_db::queries::overview::{OverQuota, StatusCount};

use super::{AuditEntryView, RetentionRunView, TenantView};

/// How many tenants have one status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusCountView {
    /// `active`, `suspended`, `archived` or `deleted`.
    pub status: String,
    pub tenants: i64,
    /// Of those (deleted ones), how many are purged.
    pub purged: i64,
}

impl From<StatusCount> for StatusCountView {
    fn from(c: StatusCount) -> Self {
        Self {
            status: c.status,
            tenants: c.tenants,
            purged: c.purged,
        }
    }
}

/// A tenant at or over one of its limits.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OverQuotaView {
    pub tenant_id: TenantId,
    pub slug: String,
    pub status: String,
    /// The limit (`max_users`, ...).
    pub resource: String,
    pub used: i64,
    pub limit: i64,
}

impl From<OverQuota> for OverQuotaView {
    fn from(o: OverQuota) -> Self {
        Self {
            tenant_id: o.tenant_id,
            slug: o.slug,
            status: o.status,
            resource: o.resource,
            used: o.used,
            limit: o.limit,
        }
    }
}

/// The platform at a glance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OverviewView {
    /// Tenants per status (every status, zero included).
    pub by_status: Vec<StatusCountView>,
    /// The tenants most over their limits, by usage/limit.
    pub over_quota: Vec<OverQuotaView>,
    /// Deleted tenants (not on legal hold) the sweeper will purge, the
    /// first first.
    pub pending_purges: Vec<TenantView>,
    /// How many deleted tenants (not on legal hold) await their purge.
    pub pending_purges_total: i64,
    /// The receipt of the purge started last.
    pub last_run: Option<RetentionRunView>,
    /// The latest audit entries, newest first.
    pub latest_audit: Vec<AuditEntryView>,
}
