//! One module per resource; handlers are named after what they do.

pub mod health;

use crate::ApiError;

/// Anything no route matches: a problem+json 404, like every other error.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
