//! `/v1/admin/tenants`: the registry and the lifecycle.

use std::convert::Infallible;

use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use serde_json::json;
use tenantry_core::{AccountId, Action, Name, Slug};
use tenantry_db::ScopedFutureExt as _;
use tenantry_ops::field;
use tenantry_ops::quotas::LimitsPatch;
use tenantry_ops::tenants::{self, NewTenant, TenantChange};
use tenantry_ops::views::{DataHealthView, List, TenantView};

use crate::auth::PlatformAdmin;
use crate::idempotency::{IdempotencyKey, admin_create};
use crate::json::{Json, MaybeJson};
use crate::routes::{PageQuery, created, list, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Lowercase letters, digits and hyphens; unique among live tenants.
    slug: String,
    name: String,
    /// Limits to override at creation; the rest come from the plan, or
    /// `[quotas.default]`.
    #[serde(default)]
    quotas: Option<LimitsPatch>,
    /// The tenant's first owner: a person's subject (the `sub` of their
    /// identity provider's tokens), made a member with role `owner` in the
    /// same transaction.
    #[serde(default)]
    owner: Option<String>,
    /// The id of the account that owns it; left out: the default account.
    #[serde(default)]
    account: Option<AccountId>,
    /// The plan (id or name) the tenant's limits come from; none: `[quotas.default]`.
    #[serde(default)]
    plan: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    name: Option<String>,
    /// While set, the sweeper never purges the tenant.
    legal_hold: Option<bool>,
    /// Why; kept in the audit log (at most 1000 characters).
    reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Why; kept in the audit log (at most 1000 characters).
    reason: Option<String>,
}

impl Transition {
    pub(crate) fn into_reason(self) -> Option<String> {
        self.reason
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantsQuery {
    /// Only tenants with this status.
    status: Option<String>,
    /// Only tenants of this account (its id).
    #[param(value_type = Option<String>, format = Uuid)]
    account: Option<AccountId>,
    /// Only tenants whose slug or name contains this text (ignoring case; `%` and `_` are literal).
    q: Option<String>,
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(IdempotencyKey), request_body = CreateTenant, responses((status = 201, body = TenantView), (status = 409, description = "conflict: the slug is taken, or the account's tenant limit is reached", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "validation: a limit below 0, no such plan or no such account", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    body: Json<CreateTenant>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let new = NewTenant {
        slug: field("slug", Slug::parse(&body.slug).map_err(|e| e.to_string()))?,
        name: field("name", Name::parse(&body.name))?,
        limits: body.quotas.unwrap_or_default(),
        owner: body
            .owner
            .as_deref()
            .map(|o| field("owner", tenantry_ops::members::Subject::parse(o)))
            .transpose()?,
        account: body.account,
        plan: body.plan,
    };
    let (actor, tenancy) = (admin.actor(), state.ops.tenancy.clone());
    let id = tenantry_core::TenantId::new();
    admin_create(
        &state,
        &key,
        Some(id),
        move |conn| {
            async move { tenants::create_on(conn, &tenancy, &actor, id, new).await }.scope_boxed()
        },
        |view| created(format!("/v1/admin/tenants/{}", view.id), &view),
    )
    .await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(TenantsQuery), responses((status = 200, body = List<TenantView>)))]
#[get("/tenants")]
pub async fn list_tenants(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<TenantsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery::new(query.limit, query.cursor).page()?;
    let status = super::accounts::parse_status(query.status)?;
    Ok(list(
        &tenants::search(&state.ops, status, query.account, query.q.as_deref(), page).await?,
    ))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = TenantView)))]
#[get("/tenants/{id_or_slug}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&tenants::get(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body = UpdateTenant, responses((status = 200, body = TenantView)))]
#[patch("/tenants/{id_or_slug}")]
pub async fn update_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = TenantChange {
        name: body
            .name
            .as_deref()
            .map(|n| field("name", Name::parse(n)))
            .transpose()?,
        legal_hold: body.legal_hold,
        reason: body.reason,
    };
    Ok(ok(&tenants::update(
        &state.ops,
        &admin.actor(),
        &key,
        change,
    )
    .await?))
}

async fn step(
    state: &AppState,
    admin: &PlatformAdmin,
    key: &str,
    action: Action,
    body: MaybeJson<Transition>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.and_then(|t| t.reason);
    let view = tenants::transition_to(&state.ops, &admin.actor(), key, action, reason).await?;
    Ok(ok(&view))
}

macro_rules! lifecycle_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), request_body(content = Option<Transition>, description = "Optional reason"), responses((status = 200, body = TenantView), (status = 409, description = "invalid_transition, with from and to", body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        pub async fn $name(
            state: web::Data<AppState>,
            admin: PlatformAdmin,
            key: web::Path<String>,
            body: MaybeJson<Transition>,
        ) -> Result<HttpResponse, ApiError> {
            step(&state, &admin, &key, $action, body).await
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

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = DataHealthView)))]
#[get("/tenants/{id_or_slug}/health")]
pub async fn tenant_health(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&tenants::health(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, description = "NDJSON: one {\"table\", \"row\"} per row, then {\"end\": true, \"rows\": N}", content_type = "application/x-ndjson", body = String), (status = 410, description = "tenant_purged: the retention sweeper purged this tenant's data; only its tombstone is left", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/tenants/{id_or_slug}/export")]
pub async fn export_tenant(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let export = tenants::export(&state.ops, &key).await?;
    Ok(export_response(export, None))
}

/// An export as the NDJSON answer, streamed as the rows are read, then a
/// trailer saying whether it is whole. `filename`: also offered as a
/// download under that name (`Content-Disposition: attachment`).
pub(crate) fn export_response(export: tenants::Export, filename: Option<&str>) -> HttpResponse {
    // Streamed as the rows are read.
    let state = (export.rows, Some(export.complete), 0_u64);
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
    let mut res = HttpResponse::Ok();
    res.content_type("application/x-ndjson");
    if let Some(name) = filename {
        res.insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    }
    res.streaming(body)
}
