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

/// [`record`] for many events of one kind by one actor, in order: one
/// insert of every row, one lookup of the subscribed endpoints, one
/// insert of every delivery, whatever their number (the import's
/// history, where a statement per event costs a hop each on Citus).
pub async fn record_many(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    kind: &str,
    actor: &str,
    items: Vec<(Option<uuid::Uuid>, serde_json::Value)>,
) -> QueryResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<EventId> = items.iter().map(|_| EventId::new()).collect();
    let rows: Vec<_> = ids
        .iter()
        .zip(&items)
        .map(|(id, (subject, data))| {
            (
                events::tenant_id.eq(tenant),
                events::id.eq(*id),
                events::kind.eq(kind),
                events::actor.eq(actor),
                events::subject.eq(*subject),
                events::data.eq(data),
            )
        })
        .collect();
    let written: Vec<(EventId, chrono::DateTime<chrono::Utc>)> = diesel::insert_into(events::table)
        .values(rows)
        .returning((events::id, events::at))
        .get_results(conn)
        .await?;
    let at: std::collections::HashMap<EventId, chrono::DateTime<chrono::Utc>> =
        written.into_iter().collect();
    let out: Vec<super::webhooks::OutEvent<'_>> = ids
        .iter()
        .zip(items)
        .filter_map(|(id, (subject, data))| {
            Some(super::webhooks::OutEvent {
                id: *id.as_uuid(),
                kind,
                tenant: Some(tenant),
                occurred_at: *at.get(id)?,
                data: serde_json::json!({ "actor": actor, "subject": subject, "details": data }),
            })
        })
        .collect();
    super::webhooks::enqueue_tenant_all(conn, tenant, kind, &out)
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
