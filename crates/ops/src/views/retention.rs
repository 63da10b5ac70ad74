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
    /// How the sweep paced its batches.
    pub pacing: PacingView,
}

/// How a sweep paced its batches (`[retention] adaptive`): the batch sizes
/// it used, the time it paused, and how often live load made it back off.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PacingView {
    /// Paced by the load (`false`: fixed `batch_size` and `batch_pause`).
    pub adaptive: bool,
    /// Batches that removed rows.
    pub batches: u64,
    /// The smallest, largest and last batch size asked for (0: no batch).
    pub min_batch: i64,
    pub max_batch: i64,
    pub last_batch: i64,
    /// All pauses together, and the longest one, in seconds.
    pub paused_seconds: f64,
    pub longest_pause_seconds: f64,
    /// Backoffs, by the signal that caused them.
    pub backoffs: BackoffsView,
}

/// Backoffs of a sweep's pacer, by cause.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackoffsView {
    /// A batch slower than `target_batch_latency`.
    pub batch_latency: u64,
    /// Backends writing dirty buffers out while traffic ran.
    pub backend_writes: u64,
    /// The service's request latency above its baseline (inside `serve`).
    pub request_latency: u64,
}

impl From<tenantry_sweeper::Pacing> for PacingView {
    fn from(p: tenantry_sweeper::Pacing) -> Self {
        Self {
            adaptive: p.adaptive,
            batches: p.batches,
            min_batch: p.min_batch,
            max_batch: p.max_batch,
            last_batch: p.last_batch,
            paused_seconds: p.paused.as_secs_f64(),
            longest_pause_seconds: p.longest_pause.as_secs_f64(),
            backoffs: BackoffsView {
                batch_latency: p.backoffs_latency,
                backend_writes: p.backoffs_backend_writes,
                request_latency: p.backoffs_requests,
            },
        }
    }
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
            pacing: r.pacing.into(),
        }
    }
}
