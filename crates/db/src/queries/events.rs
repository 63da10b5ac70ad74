use crate::Conn;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{EventId, TenantId};

use crate::models::{Event, Page};
use crate::schema::events;

/// Appends an event to the tenant's activity log (same transaction as the
/// change it describes), and a webhook delivery for each of the tenant's
/// endpoints subscribed to it (the outbox: same transaction, so a rollback
/// sends nothing).
pub async fn record(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    kind: &str,
    actor: &str,
    subject: Option<uuid::Uuid>,
    data: serde_json::Value,
) -> QueryResult<()> {
    let id = EventId::new();
    let at: chrono::DateTime<chrono::Utc> = diesel::insert_into(events::table)
        .values((
            events::tenant_id.eq(tenant),
            events::id.eq(id),
            events::kind.eq(kind),
            events::actor.eq(actor),
            events::subject.eq(subject),
            events::data.eq(&data),
        ))
        .returning(events::at)
        .get_result(conn)
        .await?;
    let event = super::webhooks::OutEvent {
        id: *id.as_uuid(),
        kind,
        tenant: Some(tenant),
        occurred_at: at,
        data: serde_json::json!({ "actor": actor, "subject": subject, "details": data }),
    };
    super::webhooks::enqueue_tenant(conn, tenant, &event)
        .await
        .map(|_| ())
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<Event>, bool)> {
    let mut query = events::table
        .filter(events::tenant_id.eq(tenant))
        .select(Event::as_select())
        .order(events::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(events::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

/// The tenant's `limit` latest events, newest first (tenant scope).
pub async fn latest(conn: &mut Conn<'_>, tenant: TenantId, limit: i64) -> QueryResult<Vec<Event>> {
    events::table
        .filter(events::tenant_id.eq(tenant))
        .select(Event::as_select())
        .order(events::id.desc())
        .limit(limit)
        .load(conn)
        .await
}
