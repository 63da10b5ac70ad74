//! Retention: running the sweeper now and reading its receipts.

use tenantry_db::{ScopedFutureExt, queries};
use tenantry_sweeper::Stop;

use crate::views::{List, RetentionRunView, SweepReportView, TenantView};
use crate::{Actor, Error, Operations, Page};

/// One sweep, on behalf of `actor` (recorded on each receipt as the
/// sweeper `host:pid (by actor)`). `dry_run` reports and removes nothing.
pub async fn sweep(
    ops: &Operations,
    actor: &Actor,
    dry_run: bool,
    stop: &Stop,
) -> Result<SweepReportView, Error> {
    let name = format!("{} (by {actor})", tenantry_sweeper::instance_name());
    let report =
        tenantry_sweeper::sweep(&ops.db, &ops.tenancy.retention, &name, dry_run, stop).await?;
    Ok(report.into())
}

/// Purge receipts, oldest first.
pub async fn runs(ops: &Operations, page: Page) -> Result<List<RetentionRunView>, Error> {
    receipts(ops, false, page).await
}

/// Purge receipts, oldest or newest first.
pub async fn receipts(
    ops: &Operations,
    newest_first: bool,
    page: Page,
) -> Result<List<RetentionRunView>, Error> {
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                Ok::<_, Error>(queries::retention::list_ordered(conn, newest_first, page).await?)
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |r| r.id).map(Into::into))
}

/// Deleted tenants whose data is still kept, the first to be purged first,
/// each with when it will be (`purge_after`; none while on legal hold).
/// `on_hold`: `Some(false)` leaves out those on legal hold.
pub async fn deleted(
    ops: &Operations,
    on_hold: Option<bool>,
    page: Page,
) -> Result<List<TenantView>, Error> {
    let retention = ops.tenancy.retention.period;
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(queries::retention::deleted(conn, on_hold, page).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |t| *t.id.as_uuid()).map(|t| TenantView::new(t, retention)))
}
