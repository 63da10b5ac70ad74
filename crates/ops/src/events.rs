//! What happened to a tenant — its own activity (`events`) and what
//! operators did to it (its entries of the audit log), merged in time order
//! (both use time-ordered UUIDv7 ids).

use serde_json::json;
use tenantry_core::TenantId;
use tenantry_db::Conn;
use tenantry_db::queries;

use crate::views::{EventView, List};
use crate::{Error, Page};

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<EventView>, Error> {
    let (activity, more_activity) = queries::events::list(conn, tenant, page).await?;
    let (audit, more_audit) = queries::audit::list(conn, Some(tenant), page).await?;
    let mut items: Vec<EventView> = activity
        .into_iter()
        .map(|e| EventView {
            id: *e.id.as_uuid(),
            kind: e.kind,
            actor: e.actor,
            subject: e.subject,
            data: e.data,
            at: e.at,
        })
        .chain(audit.into_iter().map(|a| EventView {
            id: a.id,
            kind: a.action,
            actor: a.actor,
            subject: a.tenant_id.map(Into::into),
            data: json!({ "before": a.before, "after": a.after, "reason": a.reason }),
            at: a.at,
        }))
        .collect();
    items.sort_by_key(|e| e.id);
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let more = more_activity || more_audit || items.len() > limit;
    items.truncate(limit);
    Ok(List::new(items, more, |e| e.id))
}
