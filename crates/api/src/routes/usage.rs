//! `GET /v1/usage`: the tenant's usage history for billing, by period —
//! the usage at the end of each period, its peak, and what was provisioned
//! and released in it. JSON, or CSV with `Accept: text/csv` or
//! `?format=csv`. The admin plane's per-tenant report and the finance
//! export (`routes::admin::usage`) answer the same shapes.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use tenantry_db::ScopedFutureExt;
use tenantry_ops::usage::{self, Window};
use tenantry_ops::views::UsageReportView;

use super::ok;
use crate::auth::TenantPrincipal;
use crate::{ApiError, AppState};

/// `?from=&to=&granularity=&format=` (and, on the finance export,
/// `limit` and `cursor`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339; periods starting at or after it. Default: `to` − 24 h.
    from: Option<String>,
    /// RFC 3339; periods starting before it. Default: now.
    to: Option<String>,
    /// `hour` (default), `day` (UTC days) or `period` (as sampled).
    granularity: Option<String>,
    /// `json` (default) or `csv` (as `Accept: text/csv`).
    format: Option<String>,
}

impl UsageQuery {
    /// The window asked for; a bad one is a 400 naming the parameter.
    pub fn window(&self, state: &AppState) -> Result<Window, ApiError> {
        Window::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.granularity.as_deref(),
            &state.ops.tenancy.usage,
            chrono::Utc::now(),
        )
        .map_err(bad_request)
    }

    /// Whether the answer is CSV: `?format=csv`, or `Accept: text/csv`
    /// without a `format`.
    pub fn csv(&self, headers: &HeaderMap) -> Result<bool, ApiError> {
        match self.format.as_deref() {
            Some("csv") => Ok(true),
            Some("json") => Ok(false),
            Some(_) => Err(ApiError::BadRequest(
                "format: must be json or csv".to_owned(),
            )),
            None => Ok(headers
                .get_all(header::ACCEPT)
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|m| {
                    m.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
                })),
        }
    }
}

/// A refused parameter as `400 bad_request`: the query string is
/// malformed, not a body that failed validation.
fn bad_request(e: tenantry_ops::Error) -> ApiError {
    match e {
        tenantry_ops::Error::Validation { field, detail } => {
            ApiError::BadRequest(format!("{field}: {detail}"))
        }
        other => other.into(),
    }
}

/// The report as JSON, or as CSV (a header record, then one record per
/// tenant and period; RFC 4180).
pub fn respond(report: &UsageReportView, csv: bool) -> HttpResponse {
    if !csv {
        return ok(report);
    }
    let mut answer = HttpResponse::Ok();
    answer
        .content_type("text/csv; charset=utf-8; header=present")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"usage.csv\"",
        ));
    if let Some(next) = &report.next_cursor {
        answer.insert_header(("Tenantry-Next-Cursor", next.as_str()));
    }
    answer.body(report.to_csv())
}

#[utoipa::path(tag = "usage", security(("bearer" = [])), params(UsageQuery), responses((status = 200, body = UsageReportView, description = "The history; `text/csv` with `Accept: text/csv` or `format=csv`")))]
#[get("/usage")]
pub async fn get_own_usage(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<UsageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (window, csv) = (query.window(&state)?, query.csv(req.headers())?);
    let (tenant, settings) = (who.tenant_id, state.ops.tenancy.usage.clone());
    let report = who
        .read(&state, |conn| {
            async move { Ok(usage::own(conn, tenant, &window, &settings).await?) }.scope_boxed()
        })
        .await?;
    Ok(respond(&report, csv))
}
