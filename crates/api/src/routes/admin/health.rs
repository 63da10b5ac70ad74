//! `GET /v1/admin/health`: the service's health for operators, with the
//! schema versions `/readyz` keeps to the log (it answers anyone).

use actix_web::{HttpResponse, get, web};
use tenantry_ops::health;
use tenantry_ops::views::ServiceHealthView;

use crate::auth::PlatformAdmin;
use crate::routes::ok;
use crate::{ApiError, AppState};

#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, description = "The database's schema version against this build's; `status` is `degraded` when this build cannot serve it", body = ServiceHealthView)))]
#[get("/health")]
pub async fn service_health(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&health::service(&state.ops).await?))
}
