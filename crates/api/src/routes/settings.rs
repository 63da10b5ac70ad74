//! `GET, PUT /v1/settings`: the caller's tenant's settings document. Read
//! with `tenant:read`, replaced with `tenant:admin`; validated against the
//! operator's schema (`tenancy.settings_schema_file`), versioned, audited.

use actix_web::http::header::{ETAG, IF_MATCH};
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde::Deserialize;
use tenantry_db::ScopedFutureExt;
use tenantry_ops::settings::{self, SettingsChange};
use tenantry_ops::views::SettingsView;

use crate::auth::TenantPrincipal;
use crate::json::Json;
use crate::{ApiError, AppState};

/// A settings write: the whole new document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSettings {
    /// The new document, a JSON object; replaces the old one whole.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// Write only over this version (as `If-Match` does); 0 = only if the
    /// settings were never written. A different current version is `412`.
    pub version: Option<i32>,
}

/// `200` with the settings and their version as the `ETag`.
pub fn respond(view: &SettingsView) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((ETAG, format!("\"{}\"", view.version)))
        .json(view)
}

/// The version a write expects: `If-Match: "3"` (or `W/"3"`; `*` is no
/// precondition) and/or the body's `version`, which must agree.
pub fn expected(req: &HttpRequest, body: Option<i32>) -> Result<Option<i32>, ApiError> {
    let header = match req.headers().get(IF_MATCH) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or_default().trim();
            if text == "*" {
                None
            } else {
                let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
                Some(tag.parse::<i32>().map_err(|_| {
                    ApiError::validation("If-Match", "must be an ETag this API returned")
                })?)
            }
        }
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::validation(
            "version",
            "differs from If-Match; give one or make them agree",
        )),
        (h, b) => Ok(h.or(b)),
    }
}

#[utoipa::path(tag = "tenant", security(("bearer" = [])), responses((status = 200, body = SettingsView, headers(("ETag" = String, description = "The settings' version")))))]
#[get("/settings")]
pub async fn get_own_settings(
    state: web::Data<AppState>,
    who: TenantPrincipal,
) -> Result<HttpResponse, ApiError> {
    let tenant = who.tenant_id;
    let view = who
        .read(&state, |conn| {
            async move { Ok(settings::get(conn, tenant).await?) }.scope_boxed()
        })
        .await?;
    Ok(respond(&view))
}

#[utoipa::path(tag = "tenant", security(("bearer" = [])), request_body = ReplaceSettings, params(("If-Match" = Option<String>, Header, nullable = false, description = "Write only over this version (the ETag of a read)")), responses((status = 200, body = SettingsView), (status = 412, description = "version_mismatch: written by someone else since; current_version says where it is", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_settings: errors lists each JSON pointer and why", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/settings")]
pub async fn replace_own_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<ReplaceSettings>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = SettingsChange {
        expected: expected(&req, body.version)?,
        document: body.document,
    };
    // Refused before any database work when the document is invalid.
    state.ops.tenancy.settings.check(&change.document)?;
    let actor = who.actor();
    let rules = &state.ops.tenancy.settings;
    let view = who
        .write_as(&state, tenantry_core::Scope::TenantAdmin, |conn, _| {
            async move { Ok(settings::put(conn, rules, &actor, change).await?) }.scope_boxed()
        })
        .await?;
    Ok(respond(&view))
}
