use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

use crate::models::{AuditEntry, Page};
use crate::schema::audit_events;

/// Appends to the audit log (append-only: the service cannot update or
/// delete entries). Runs in the same transaction as the change it records.
///
/// A platform event (a tenant's lifecycle, quota or purge: see
/// [`is_platform_event`]) also goes to the outbox, in this transaction: to
/// every subscribed platform endpoint (visible in the platform context
/// only) and to the tenant's own endpoints (visible only when the
/// tenant's own context is set too, as `PlatformScope::provision` does).
pub async fn record(
    conn: &mut Conn<'_>,
    tenant: Option<TenantId>,
    actor: &str,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    reason: Option<&str>,
) -> QueryResult<AuditEntry> {
    let entry = diesel::insert_into(audit_events::table)
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
        .await?;
    if is_platform_event(&entry.action) {
        let event = super::webhooks::OutEvent {
            id: entry.id,
            kind: &entry.action,
            tenant: entry.tenant_id,
            occurred_at: entry.at,
            data: serde_json::json!({
                "actor": entry.actor,
                "before": entry.before,
                "after": entry.after,
                "reason": entry.reason,
            }),
        };
        super::webhooks::enqueue_platform(conn, &event).await?;
        if let Some(tenant) = entry.tenant_id {
            super::webhooks::enqueue_tenant(conn, tenant, &event).await?;
        }
    }
    Ok(entry)
}

/// Audit actions that are platform webhook events: a tenant's lifecycle and
/// registry changes (`tenant.*`, the purge included) and its quotas
/// (`quota.*`).
#[must_use]
pub fn is_platform_event(action: &str) -> bool {
    action.starts_with("tenant.") || action.starts_with("quota.")
}

/// Which entries to read; every field narrows (all `None`: every entry).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub tenant: Option<TenantId>,
    /// Exactly this actor.
    pub actor: Option<&'a str>,
    /// Exactly this action.
    pub action: Option<&'a str>,
    /// Actions starting with this (`tenant.`).
    pub action_prefix: Option<&'a str>,
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// Newest first (the cursor then pages towards older entries).
    pub newest_first: bool,
}

/// `s` as a LIKE pattern matching itself literally, then anything.
fn prefix_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Entries in id (time) order, optionally for one tenant. In a tenant's own
/// context RLS limits this to that tenant whatever the filter.
pub async fn list(
    conn: &mut Conn<'_>,
    tenant: Option<TenantId>,
    page: Page,
) -> QueryResult<(Vec<AuditEntry>, bool)> {
    search(
        conn,
        &AuditQuery {
            tenant,
            ..AuditQuery::default()
        },
        page,
    )
    .await
}

/// Entries matching `q`, in id (time) order, oldest or newest first; every
/// value is a bound parameter.
pub async fn search(
    conn: &mut Conn<'_>,
    q: &AuditQuery<'_>,
    page: Page,
) -> QueryResult<(Vec<AuditEntry>, bool)> {
    let mut query = audit_events::table
        .select(AuditEntry::as_select())
        .limit(page.limit + 1)
        .into_boxed();
    query = if q.newest_first {
        query.order(audit_events::id.desc())
    } else {
        query.order(audit_events::id.asc())
    };
    if let Some(tenant) = q.tenant {
        query = query.filter(audit_events::tenant_id.eq(tenant));
    }
    if let Some(actor) = q.actor {
        query = query.filter(audit_events::actor.eq(actor.to_owned()));
    }
    if let Some(action) = q.action {
        query = query.filter(audit_events::action.eq(action.to_owned()));
    }
    if let Some(prefix) = q.action_prefix {
        query = query.filter(audit_events::action.like(prefix_pattern(prefix)));
    }
    if let Some(from) = q.from {
        query = query.filter(audit_events::at.ge(from));
    }
    if let Some(to) = q.to {
        query = query.filter(audit_events::at.lt(to));
    }
    if let Some(after) = page.after {
        query = if q.newest_first {
            query.filter(audit_events::id.lt(after))
        } else {
            query.filter(audit_events::id.gt(after))
        };
    }
    Ok(page.finish(query.load(conn).await?))
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn a_prefix_matches_itself_literally() {
        assert_eq!(prefix_pattern("tenant."), "tenant.%");
        assert_eq!(prefix_pattern("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
