//! `/v1/admin/retention/...`: run the sweeper now, and its receipts.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use tenantry_ops::retention;
use tenantry_ops::views::{List, RetentionRunView, SweepReportView};

use crate::auth::PlatformAdmin;
use crate::routes::{PageQuery, list, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SweepQuery {
    /// Report what would be purged, remove nothing (default: `retention.dry_run`).
    dry_run: Option<bool>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(SweepQuery), responses((status = 200, body = SweepReportView)))]
#[post("/retention/sweep")]
pub async fn sweep_now(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    query: web::Query<SweepQuery>,
) -> Result<HttpResponse, ApiError> {
    let dry_run = query.dry_run.unwrap_or(state.ops.tenancy.retention.dry_run);
    let started = std::time::Instant::now();
    let report = retention::sweep(&state.ops, &admin.actor(), dry_run, &state.stop).await?;
    state.metrics.swept(&report, started.elapsed());
    Ok(ok(&report))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<RetentionRunView>)))]
#[get("/retention/runs")]
pub async fn list_runs(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(list(&retention::runs(&state.ops, page).await?))
}
