//! The platform at a glance: tenants by status, the tenants most over
//! their quotas, pending purges, the sweeper's last purge, the latest
//! audit entries (the console's overview).

use tenantry_core::TenantStatus;
use tenantry_db::models::Page;
use tenantry_db::{ScopedFutureExt, queries};

use crate::views::{OverviewView, StatusCountView, TenantView};
use crate::{Error, Operations};

/// At most this many rows in each list of the overview.
pub const TOP: i64 = 10;

/// Everything at once, read in one platform-scope transaction (so the
/// numbers agree with each other).
pub async fn overview(ops: &Operations) -> Result<OverviewView, Error> {
    let retention = ops.tenancy.retention.period;
    let first = Page {
        limit: TOP,
        after: None,
    };
    let (counts, over, (pending, _), pending_total, last, (audit, _)) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let counts = queries::overview::status_counts(conn).await?;
                let over = queries::overview::over_quota(conn, TOP).await?;
                let pending = queries::retention::deleted(conn, Some(false), first).await?;
                let total = queries::retention::deleted_count(conn, Some(false)).await?;
                let last = queries::retention::latest(conn).await?;
                let audit = queries::audit::search(
                    conn,
                    &queries::audit::AuditQuery {
                        newest_first: true,
                        ..queries::audit::AuditQuery::default()
                    },
                    first,
                )
                .await?;
                Ok::<_, Error>((counts, over, pending, total, last, audit))
            }
            .scope_boxed()
        })
        .await?;
    let by_status = TenantStatus::ALL
        .iter()
        .map(|s| {
            counts
                .iter()
                .find(|c| c.status == s.as_str())
                .cloned()
                .map_or_else(
                    || StatusCountView {
                        status: s.as_str().to_owned(),
                        tenants: 0,
                        purged: 0,
                    },
                    Into::into,
                )
        })
        .collect();
    Ok(OverviewView {
        by_status,
        over_quota: over.into_iter().map(Into::into).collect(),
        pending_purges: pending
            .into_iter()
            .map(|t| TenantView::new(t, retention))
            .collect(),
        pending_purges_total: pending_total,
        last_run: last.map(Into::into),
        latest_audit: audit.into_iter().map(Into::into).collect(),
    })
}
