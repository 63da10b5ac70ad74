//! `/healthz` (the process is up) and `/readyz` (it can serve: the database
//! answers and its schema is exactly this build's).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::{ApiError, AppState};

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    status: &'static str,
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up", body = Status), (status = 429, description = "rate_limited: too many requests from this client address (server.client_requests_per_second)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

#[utoipa::path(tag = "operations", responses((status = 200, description = "Database reachable, schema current", body = Status), (status = 503, body = crate::error::Problem, content_type = "application/problem+json"), (status = 429, description = "rate_limited: too many requests from this client address (server.client_requests_per_second)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let schema = state.db.schema_state().await?;
    if !schema.is_current() {
        return Err(ApiError::Operation(tenantry_ops::Error::Unavailable(
            "the database schema is not current; run `tenantry migrate`".to_owned(),
        )));
    }
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}
