//! `/healthz` (the process is up) and `/readyz` (it can serve: not shutting
//! down, the database answers, and its schema has every migration of this
//! build, unchanged — newer ones of a later release are fine, see
//! sql/README.md's expand/contract rule).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use tenantry_db::Compatibility;

use crate::{ApiError, AppState};

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    status: &'static str,
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up (also while it drains before stopping)", body = Status), (status = 429, description = "rate_limited: too many requests from this client address (server.client_requests_per_second)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "Database reachable; its schema has every migration of this build, unchanged (and maybe newer ones)", body = Status), (status = 503, description = "shutting_down: the replica is draining before it stops; database_unavailable; unavailable: the schema lacks a migration of this build or has one with other contents", body = crate::error::Problem, content_type = "application/problem+json"), (status = 429, description = "rate_limited: too many requests from this client address (server.client_requests_per_second)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    let schema = state.db.schema_state().await?;
    // The versions go to the log only: /readyz answers anyone.
    match schema.compatibility() {
        Compatibility::Current | Compatibility::Newer { .. } => {
            Ok(HttpResponse::Ok().json(Status { status: "ready" }))
        }
        Compatibility::Behind { missing } => {
            tracing::warn!(
                ?missing,
                "not ready: migrations of this build are not applied"
            );
            Err(ApiError::Operation(tenantry_ops::Error::Unavailable(
                "the database schema lacks a migration this build needs; run this release's `tenantry migrate`".to_owned(),
            )))
        }
        Compatibility::Edited { versions } => {
            tracing::warn!(
                ?versions,
                "not ready: migrations of this build were applied with other contents"
            );
            Err(ApiError::Operation(tenantry_ops::Error::Unavailable(
                "the database schema is not this build's: a migration it knows was applied with other contents; see the service's log".to_owned(),
            )))
        }
    }
}
