use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tenantry_core::TenantId;

use crate::models::{AuditEntry, Page};
use crate::schema::audit_events;

/// Appends to the audit log (append-only: the service cannot update or
/// delete entries). Runs in the same transaction as the change it records.
pub async fn record(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    actor: &str,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    reason: Option<&str>,
) -> QueryResult<AuditEntry> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(uuid::Uuid::now_v7()),
            audit_events::tenant_id.eq(tenant),
            audit_events::actor.eq(actor),
            audit_events::action.eq(action),
            audit_events::before.eq(before),
            audit_events::after.eq(after),
            audit_events::reason.eq(reason),
        ))
        .returning(AuditEntry::as_returning())
        .get_result(conn)
        .await
}

/// Entries in id (time) order, optionally for one tenant. In a tenant's own
/// context RLS limits this to that tenant whatever the filter.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    page: Page,
) -> QueryResult<(Vec<AuditEntry>, bool)> {
    let mut query = audit_events::table
        .select(AuditEntry::as_select())
        .order(audit_events::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(tenant) = tenant {
        query = query.filter(audit_events::tenant_id.eq(tenant));
    }
    if let Some(after) = page.after {
        query = query.filter(audit_events::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}
