//! The audit log, read by platform admins.

use chrono::{DateTime, Utc};
use tenantry_db::{ScopedFutureExt, queries};

use crate::views::{AuditEntryView, List};
use crate::{Error, Operations, Page};

/// Which entries to list; every given field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// One tenant's entries, by id or slug (an unknown one is refused on
    /// `tenant`).
    pub tenant: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action (`tenant.suspend`), or, ending in `.` or `*`,
    /// every action starting with it (`tenant.`, `quota*`).
    pub action: Option<String>,
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// Newest first (the API's default is oldest first).
    pub newest_first: bool,
}

impl AuditFilter {
    /// Only `tenant`'s entries.
    #[must_use]
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self {
            tenant: Some(tenant.into()),
            ..Self::default()
        }
    }
}

fn given(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Entries matching `filter`, in time order (oldest or newest first).
pub async fn list(
    ops: &Operations,
    filter: &AuditFilter,
    page: Page,
) -> Result<List<AuditEntryView>, Error> {
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        return Err(Error::validation("to", "must not be before from"));
    }
    let actor = given(filter.actor.as_deref());
    let (action, action_prefix) = match given(filter.action.as_deref()) {
        Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*'))),
        Some(a) if a.ends_with('.') => (None, Some(a)),
        other => (other, None),
    };
    if actor.is_some_and(|a| a.chars().count() > 1000) {
        return Err(Error::validation("actor", "at most 1000 characters"));
    }
    if action
        .or(action_prefix)
        .is_some_and(|a| a.chars().count() > 200)
    {
        return Err(Error::validation("action", "at most 200 characters"));
    }
    let tenant_key = given(filter.tenant.as_deref());
    let (from, to, newest_first) = (filter.from, filter.to, filter.newest_first);
    let (items, more) = ops
        .db
        .platform()
        .run(|conn| {
            async move {
                let tenant = match tenant_key {
                    Some(key) => Some(
                        crate::tenants::resolve(conn, key)
                            .await
                            .map_err(|e| match e {
                                Error::NotFound => {
                                    Error::validation("tenant", "no tenant has this id or slug")
                                }
                                other => other,
                            })?
                            .id,
                    ),
                    None => None,
                };
                let q = queries::audit::AuditQuery {
                    tenant,
                    actor,
                    action,
                    action_prefix,
                    from,
                    to,
                    newest_first,
                };
                Ok::<_, Error>(queries::audit::search(conn, &q, page).await?)
            }
            .scope_boxed()
        })
        .await?;
    Ok(List::new(items, more, |e| e.id).map(Into::into))
}
