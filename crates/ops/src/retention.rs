//! Retention: running the sweeper now and reading its receipts.

use tenantry_db::{ScopedFutureExt, queries};
use tenantry_sweeper::Stop;

use crate::views::{List, RetentionRunView, SweepReportView};
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
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(queries::retention::list(conn, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |r| r.id).map(Into::into))
}
