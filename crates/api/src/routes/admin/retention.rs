//! `/v1/admin/retention/...`: run the sweeper now, and its receipts.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use tenantry_db::{ScopedFutureExt, queries};

use crate::auth::PlatformAdmin;
use crate::routes::{PageQuery, list};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SweepQuery {
    /// Report what would be purged, remove nothing (default: `retention.dry_run`).
    dry_run: Option<bool>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(SweepQuery), responses((status = 200, description = "The sweep report: receipts of purged tenants, or what would go", body = Object), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/retention/sweep")]
pub async fn sweep_now(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    query: web::Query<SweepQuery>,
) -> Result<HttpResponse, ApiError> {
    let settings = &state.tenancy.retention;
    let dry_run = query.dry_run.unwrap_or(settings.dry_run);
    let started = std::time::Instant::now();
    let name = format!("{} (by {})", tenantry_sweeper::instance_name(), admin.sub);
    let report = tenantry_sweeper::sweep(&state.db, settings, &name, dry_run, &state.stop).await?;
    state.metrics.swept(&report, started.elapsed());
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = crate::routes::List<tenantry_db::models::RetentionRun>), (status = "4XX", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/retention/runs")]
pub async fn list_runs(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let (items, more) = state
        .db
        .platform()
        .run(|conn| {
            async move { Ok::<_, ApiError>(queries::retention::list(conn, page).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(list(items, more, |r| r.id))
}
