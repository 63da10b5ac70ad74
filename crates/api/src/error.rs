//! The one error type of the API and its one mapping to RFC 9457
//! `application/problem+json`. Bodies carry a stable `code` and a human
//! `detail`; never SQL, never a stack trace, never another tenant's data.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tenantry_db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such resource")]
    NotFound,
    /// The service cannot answer now (database down, pool exhausted, schema
    /// not migrated). Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged in full, answered opaquely.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::Unavailable("the database is unavailable; retry later".to_owned())
            }
            DbError::Query(diesel::result::Error::NotFound) => Self::NotFound,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        DbError::from(err).into()
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status_code();
        let problem = Problem {
            kind: format!("https://tenantry.dev/problems/{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        match serde_json::to_string(&problem) {
            Ok(body) => response
                .insert_header((CONTENT_TYPE, "application/problem+json"))
                .body(body),
            Err(_) => response.finish(),
        }
    }
}
