use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::TenantId;
use tenantry_db::models::RetentionRun;
use tenantry_sweeper::SweepReport;

/// A purge receipt: open while the purge runs, closed (`purged_at`) when
/// the tenant's data is gone.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionRunView {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub slug: String,
    pub deleted_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub purged_at: Option<DateTime<Utc>>,
    /// Rows removed per table.
    #[schema(value_type = Object)]
    pub rows_removed: serde_json::Value,
    /// Which sweeper (host:pid) ran it.
    pub sweeper: String,
}

impl From<RetentionRun> for RetentionRunView {
    fn from(r: RetentionRun) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            slug: r.slug,
            deleted_at: r.deleted_at,
            started_at: r.started_at,
            purged_at: r.purged_at,
            rows_removed: r.rows_removed,
            sweeper: r.sweeper,
        }
    }
}

/// What a dry run found for one tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WouldPurgeView {
    pub tenant_id: TenantId,
    /// Rows per table that would be removed.
    pub rows: BTreeMap<String, i64>,
}

/// A purge that stopped early; the next sweep resumes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InterruptedView {
    pub tenant_id: TenantId,
    pub reason: String,
}

/// What one sweep did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SweepReportView {
    pub dry_run: bool,
    /// Receipts of the tenants purged by this sweep.
    pub purged: Vec<RetentionRunView>,
    /// Dry run: what would go.
    pub would_purge: Vec<WouldPurgeView>,
    /// Tenants another sweeper is purging right now.
    pub busy: Vec<TenantId>,
    /// Tenants whose purge stopped early (e.g. a lock timeout while
    /// yielding to live traffic); the next sweep resumes them.
    pub interrupted: Vec<InterruptedView>,
    pub rows_removed: i64,
    pub slugs_released: usize,
}

impl From<SweepReport> for SweepReportView {
    fn from(r: SweepReport) -> Self {
        Self {
            dry_run: r.dry_run,
            purged: r.purged.into_iter().map(Into::into).collect(),
            would_purge: r
                .would_purge
                .into_iter()
                .map(|w| WouldPurgeView {
                    tenant_id: w.tenant_id,
                    rows: w.rows.into_iter().map(|(t, n)| (t.to_owned(), n)).collect(),
                })
                .collect(),
            busy: r.busy,
            interrupted: r
                .interrupted
                .into_iter()
                .map(|i| InterruptedView {
                    tenant_id: i.tenant_id,
                    reason: i.reason,
                })
                .collect(),
            rows_removed: r.rows_removed,
            slugs_released: r.slugs_released,
        }
    }
}
