//! The audit log, read by platform admins.

use tenantry_core::TenantId;
use tenantry_db::{ScopedFutureExt, queries};

use crate::views::{AuditEntryView, List};
use crate::{Error, Operations, Page};

/// Entries in time order, optionally for one tenant.
pub async fn list(
    ops: &Operations,
    tenant: Option<TenantId>,
    page: Page,
) -> Result<List<AuditEntryView>, Error> {
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(queries::audit::list(conn, tenant, page).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |e| e.id).map(Into::into))
}
