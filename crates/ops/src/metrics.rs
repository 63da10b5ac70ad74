//! What the metrics refresher reads: the platform's lifecycle and quota
//! counts, the usage of the tenants `/metrics` tracks and the webhook
//! outbox's counts, in one
//! platform-scope transaction (the admin pool), every
//! `[metrics] refresh_interval` — never per scrape.

use tenantry_core::TenantId;
use tenantry_db::queries::metrics::{Globals, TenantUsage};
use tenantry_db::queries::webhooks::OutboxCounts;
use tenantry_db::{ScopedFutureExt, queries};

use crate::{Error, Operations};

/// One refresh's numbers.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub globals: Globals,
    /// One row per tracked tenant that has usage rows.
    pub usage: Vec<TenantUsage>,
    /// The webhook outbox, every tenant's and the platform's.
    pub outbox: OutboxCounts,
}

/// Reads the global counts and the usage of `tracked`, in one transaction
/// (so the numbers agree with each other).
pub async fn snapshot(ops: &Operations, tracked: Vec<TenantId>) -> Result<MetricsSnapshot, Error> {
    let retention = ops.tenancy.retention.period.as_secs_f64();
    ops.db
        .platform()
        .run(move |conn| {
            async move {
                queries::metrics::allow_long_statements(conn).await?;
                let usage = queries::metrics::usage(conn, &tracked).await?;
                let globals = queries::metrics::globals(conn, retention).await?;
                let outbox = queries::webhooks::outbox_counts(conn).await?;
                Ok::<_, Error>(MetricsSnapshot {
                    globals,
                    usage,
                    outbox,
                })
            }
            .scope_boxed()
        })
        .await
}
