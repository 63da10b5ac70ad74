//! `GET, PUT /v1/admin/tenants/{id_or_slug}/settings`: a tenant's settings
//! document, read and replaced by a platform admin (whatever the tenant's
//! status short of purged), validated and audited as the tenant plane's.

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use tenantry_ops::settings::{self, SettingsChange};
use tenantry_ops::views::SettingsView;

use crate::auth::PlatformAdmin;
use crate::json::Json;
use crate::routes::settings::{ReplaceSettings, expected, respond};
use crate::{ApiError, AppState};

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = SettingsView)))]
#[get("/tenants/{id_or_slug}/settings")]
pub async fn get_settings(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond(&settings::get_admin(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), ("If-Match" = Option<String>, Header, nullable = false, description = "Write only over this version (the ETag of a read)")), request_body = ReplaceSettings, responses((status = 200, body = SettingsView), (status = 412, description = "version_mismatch", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_settings: errors lists each JSON pointer and why", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/tenants/{id_or_slug}/settings")]
pub async fn replace_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<ReplaceSettings>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = SettingsChange {
        expected: expected(&req, body.version)?,
        document: body.document,
    };
    let view = settings::put_admin(&state.ops, &admin.actor(), &key, change).await?;
    Ok(respond(&view))
}
