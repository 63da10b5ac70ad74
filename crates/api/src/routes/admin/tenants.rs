//! `/v1/admin/tenants`: the registry and the lifecycle.

use std::convert::Infallible;

use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, patch, post, web};
use diesel::result::DatabaseErrorKind;
use serde::Deserialize;
use serde_json::json;
use tenantry_core::{Action, Name, Slug, TenantId, TenantStatus, transition};
use tenantry_db::models::Limits;
use tenantry_db::{DbError, ScopedFutureExt, queries};

use super::{TenantView, ok, resolve};
use crate::auth::PlatformAdmin;
use crate::error::violated_constraint;
use crate::json::{Json, MaybeJson};
use crate::routes::{PageQuery, created, field, list};
use crate::{ApiError, AppState};

/// Limits to override at creation; the rest come from `[quotas.default]`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub max_users: Option<i32>,
    pub max_api_keys: Option<i32>,
    pub max_clusters: Option<i32>,
    pub max_instances: Option<i32>,
    pub max_cpu_cores: Option<i32>,
    pub max_memory_gb: Option<i32>,
    pub max_storage_gb: Option<i32>,
    pub requests_per_second: Option<i32>,
    pub burst: Option<i32>,
}

impl From<&Limits> for LimitsPatch {
    fn from(limits: &Limits) -> Self {
        Self {
            max_users: Some(limits.max_users),
            max_api_keys: Some(limits.max_api_keys),
            max_clusters: Some(limits.max_clusters),
            max_instances: Some(limits.max_instances),
            max_cpu_cores: Some(limits.max_cpu_cores),
            max_memory_gb: Some(limits.max_memory_gb),
            max_storage_gb: Some(limits.max_storage_gb),
            requests_per_second: Some(limits.requests_per_second),
            burst: Some(limits.burst),
        }
    }
}

impl LimitsPatch {
    /// `base` with the given keys replaced; every limit must be ≥ 0.
    pub fn apply(&self, base: &Limits) -> Result<Limits, ApiError> {
        let pick = |name: &'static str, value: Option<i32>, default: i32| match value {
            Some(v) if v < 0 => Err(ApiError::validation(name, "must be 0 or more")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        Ok(Limits {
            max_users: pick("max_users", self.max_users, base.max_users)?,
            max_api_keys: pick("max_api_keys", self.max_api_keys, base.max_api_keys)?,
            max_clusters: pick("max_clusters", self.max_clusters, base.max_clusters)?,
            max_instances: pick("max_instances", self.max_instances, base.max_instances)?,
            max_cpu_cores: pick("max_cpu_cores", self.max_cpu_cores, base.max_cpu_cores)?,
            max_memory_gb: pick("max_memory_gb", self.max_memory_gb, base.max_memory_gb)?,
            max_storage_gb: pick("max_storage_gb", self.max_storage_gb, base.max_storage_gb)?,
            requests_per_second: pick(
                "requests_per_second",
                self.requests_per_second,
                base.requests_per_second,
            )?,
            burst: pick("burst", self.burst, base.burst)?,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    slug: String,
    name: String,
    #[serde(default)]
    quotas: Option<LimitsPatch>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    name: Option<String>,
    legal_hold: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Why; kept in the audit log.
    reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantsQuery {
    /// Only tenants with this status.
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn snapshot(view: &TenantView) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = CreateTenant, responses((status = 201, body = TenantView), (status = 409, description = "slug taken", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    body: Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let slug = field("slug", Slug::parse(&body.slug).map_err(|e| e.to_string()))?;
    let name = field("name", Name::parse(&body.name))?;
    let limits = body
        .quotas
        .unwrap_or_default()
        .apply(&state.tenancy.default_limits)?;
    let retention = state.tenancy.retention.period;
    let id = TenantId::new();
    let view = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let tenant = queries::tenants::create(conn, id, slug.as_str(), name.as_str(), &limits)
                    .await
                    .map_err(|e| match violated_constraint(&e) {
                        Some((DatabaseErrorKind::UniqueViolation, "tenants_slug_unique")) => {
                            ApiError::conflict("this slug is taken (by a live tenant or one not yet purged and released)")
                        }
                        _ => e.into(),
                    })?;
                let view = TenantView::new(tenant, retention);
                let after = json!({ "tenant": snapshot(&view), "limits": limits });
                queries::audit::record(conn, Some(id), &admin.sub, "tenant.created", None, Some(after), None).await?;
                Ok::<_, ApiError>(view)
            }
            .scope_boxed()
        })
        .await?;
    Ok(created(format!("/v1/admin/tenants/{}", view.id), &view))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(TenantsQuery), responses((status = 200, body = crate::routes::List<TenantView>), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants")]
pub async fn list_tenants(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<TenantsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery::new(query.limit, query.cursor).page()?;
    let status = query
        .status
        .map(|s| {
            s.parse::<TenantStatus>().map_err(|_| {
                ApiError::validation("status", "must be active, suspended, archived or deleted")
            })
        })
        .transpose()?;
    let retention = state.tenancy.retention.period;
    let (items, more) = state
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, ApiError>(queries::tenants::list(conn, status, page).await?) }
                .scope_boxed()
        })
        .await?;
    let views: Vec<TenantView> = items
        .into_iter()
        .map(|t| TenantView::new(t, retention))
        .collect();
    Ok(list(views, more, |t| *t.id.as_uuid()))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = TenantView), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let retention = state.tenancy.retention.period;
    let tenant = state
        .db
        .platform()
        .run(|conn| async move { resolve(conn, &key).await }.scope_boxed())
        .await?;
    Ok(ok(&TenantView::new(tenant, retention)))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = UpdateTenant, responses((status = 200, body = TenantView), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/tenants/{id_or_slug}")]
pub async fn update_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = body
        .name
        .as_deref()
        .map(|n| field("name", Name::parse(n)))
        .transpose()?;
    let legal_hold = body.legal_hold;
    let retention = state.tenancy.retention.period;
    let view = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let before = TenantView::new(resolve(conn, &key).await?, retention);
                let tenant = queries::tenants::update(
                    conn,
                    before.id,
                    name.as_ref().map(Name::as_str),
                    legal_hold,
                )
                .await?;
                let after = TenantView::new(tenant, retention);
                queries::audit::record(
                    conn,
                    Some(after.id),
                    &admin.sub,
                    "tenant.updated",
                    Some(snapshot(&before)),
                    Some(snapshot(&after)),
                    None,
                )
                .await?;
                Ok::<_, ApiError>(after)
            }
            .scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

/// One lifecycle step, guarded by the tenant's current status: the pure
/// transition decides, the conditional UPDATE makes two racing admins get
/// one success and one `invalid_transition`.
async fn step(
    state: &AppState,
    admin: &PlatformAdmin,
    key: String,
    action: Action,
    reason: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let retention = state.tenancy.retention.period;
    let actor = admin.sub.clone();
    let view = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let current = resolve(conn, &key).await?;
                let refused = |from| ApiError::InvalidTransition { from, to: action.target() };
                let to = transition(current.status, action).map_err(|e| refused(e.from))?;
                if current.purged_at.is_some() {
                    return Err(refused(current.status));
                }
                let Some(updated) = queries::tenants::transition(conn, current.id, current.status, to).await? else {
                    // Lost a race (or a purge has started): say where it stands now.
                    let now = queries::tenants::get(conn, current.id).await?;
                    return Err(refused(now.status));
                };
                let before = TenantView::new(current, retention);
                let after = TenantView::new(updated, retention);
                queries::audit::record(
                    conn,
                    Some(after.id),
                    &actor,
                    &format!("tenant.{action}"),
                    Some(json!({ "status": before.status })),
                    Some(json!({ "status": after.status, "deleted_at": after.deleted_at, "purge_after": after.purge_after })),
                    reason.as_deref(),
                )
                .await?;
                Ok::<_, ApiError>(after)
            }
            .scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

fn reason(body: MaybeJson<Transition>) -> Result<Option<String>, ApiError> {
    match body.0.and_then(|t| t.reason) {
        Some(r) if r.chars().count() > 1000 => {
            Err(ApiError::validation("reason", "at most 1000 characters"))
        }
        other => Ok(other),
    }
}

macro_rules! lifecycle_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body(content = Option<Transition>, description = "Optional reason"), responses((status = 200, body = TenantView), (status = 409, description = "invalid_transition, with from and to", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        pub async fn $name(
            state: web::Data<AppState>,
            admin: PlatformAdmin,
            key: web::Path<String>,
            body: MaybeJson<Transition>,
        ) -> Result<HttpResponse, ApiError> {
            step(&state, &admin, key.into_inner(), $action, reason(body)?).await
        }
    };
}

lifecycle_route!(
    suspend_tenant,
    "/tenants/{id_or_slug}/suspend",
    Action::Suspend,
    "active → suspended"
);
lifecycle_route!(
    activate_tenant,
    "/tenants/{id_or_slug}/activate",
    Action::Activate,
    "suspended → active"
);
lifecycle_route!(
    archive_tenant,
    "/tenants/{id_or_slug}/archive",
    Action::Archive,
    "active or suspended → archived"
);
lifecycle_route!(
    delete_tenant,
    "/tenants/{id_or_slug}/delete",
    Action::Delete,
    "→ deleted: stamps deleted_at; the sweeper purges after the retention period"
);
lifecycle_route!(
    restore_tenant,
    "/tenants/{id_or_slug}/restore",
    Action::Restore,
    "deleted → archived, only before the purge starts"
);

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, description = "status, counts per resource, usage vs limits, last activity, approximate bytes", body = Object), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/health")]
pub async fn tenant_health(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, limits, usage) = state
        .db
        .platform()
        .run(|conn| {
            async move {
                let tenant = resolve(conn, &key).await?;
                let (limits, usage) = queries::tenants::limits_and_usage(conn, tenant.id).await?;
                Ok::<_, ApiError>((tenant, limits, usage))
            }
            .scope_boxed()
        })
        .await?;
    let id = tenant.id;
    // Row counts need the tenant's own context: the platform context sees
    // no tenant rows.
    let data = state
        .db
        .tenant(id)
        .run(|conn| {
            async move { Ok::<_, DbError>(queries::export::health(conn, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&json!({
        "id": tenant.id,
        "slug": tenant.slug,
        "status": tenant.status,
        "counts": data.counts,
        "usage": usage,
        "limits": limits,
        "last_activity_at": data.last_activity_at,
        "approx_bytes": data.approx_bytes,
    })))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, description = "NDJSON: one {\"table\", \"row\"} per row, then {\"end\": true, \"rows\": N}", content_type = "application/x-ndjson", body = String), (status = 410, description = "tenant_purged: the retention sweeper purged this tenant's data; only its tombstone is left", body = crate::error::Problem, content_type = "application/problem+json"), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/export")]
pub async fn export_tenant(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = state
        .db
        .platform()
        .run(|conn| async move { resolve(conn, &key).await }.scope_boxed())
        .await?;
    if tenant.purged_at.is_some() {
        return Err(ApiError::TenantPurged);
    }
    let id = tenant.id;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let db = state.db.clone();
    // The rows are read in ONE snapshot of the tenant's own scope (RLS: only
    // its rows can come out) and streamed as they are read.
    actix_web::rt::spawn(async move {
        let result = db
            .tenant(id)
            .read_snapshot(|conn| {
                async move { Ok::<_, DbError>(queries::export::export(conn, id, tx).await?) }
                    .scope_boxed()
            })
            .await;
        if let Err(e) = &result {
            tracing::error!(tenant = %id, error = %e, "export failed midway");
        }
        let _ = done_tx.send(result.is_ok());
    });
    let state = (rx, Some(done_rx), 0_u64);
    let body = futures_util::stream::unfold(state, |(mut rx, done, rows)| async move {
        if let Some((table, row)) = rx.recv().await {
            let line = format!("{}\n", json!({ "table": table, "row": row }));
            return Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, done, rows + 1)));
        }
        // The producer finished: a trailer says whether the export is whole,
        // so a truncated file can never pass for a complete one.
        let done = done?;
        let complete = done.await.unwrap_or(false);
        let trailer = if complete {
            json!({ "end": true, "rows": rows })
        } else {
            json!({ "end": false, "error": "the export failed midway; do not use this file" })
        };
        Some((Ok(Bytes::from(format!("{trailer}\n"))), (rx, None, rows)))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}
