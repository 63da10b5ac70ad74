//! `GET /v1/events`: what happened to the tenant — its own activity
//! (`events`) and what operators did to it (its entries of the audit log),
//! merged in time order (both use time-ordered UUIDv7 ids).

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tenantry_db::{ScopedFutureExt, queries};

use super::{PageQuery, list};
use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: uuid::Uuid,
    /// e.g. `instance.created`, `tenant.suspend`.
    pub kind: String,
    pub actor: String,
    pub subject: Option<uuid::Uuid>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[utoipa::path(tag = "events", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<EventView>), (status = "4XX", description = "problem+json", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let ((activity, more_activity), (audit, more_audit)) = who
        .read(&state, |conn| {
            async move {
                let activity = queries::events::list(conn, tenant, page).await?;
                let audit = queries::audit::list(conn, Some(tenant), page).await?;
                Ok((activity, audit))
            }
            .scope_boxed()
        })
        .await?;
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
    Ok(list(items, more, |e| e.id))
}
