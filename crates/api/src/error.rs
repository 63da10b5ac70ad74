//! The one error type of the API and its one mapping to RFC 9457
//! `application/problem+json`. Bodies carry a stable `code` and a human
//! `detail`; never SQL, never a stack trace, never another tenant's data.

use std::borrow::Cow;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::Error as DieselError;
use serde::Serialize;
use tenantry_core::TenantStatus;
use tenantry_db::DbError;
use tenantry_ops::Error as OpError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed or invalid credentials.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Authenticated, but not allowed (scope, plane).
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// The tenant exists but is not active.
    #[error("tenant is {0}")]
    TenantInactive(TenantStatus),
    /// The addressed tenant (path or host) is not the token's.
    #[error("the addressed tenant is not the token's tenant")]
    TenantMismatch,
    /// The tenant is over its request rate.
    #[error("rate limit of {} requests per second exceeded; retry later", .0.limit)]
    RateLimited(crate::ratelimit::Limited),
    /// The request could not be read at all (malformed JSON, bad header).
    #[error("{0}")]
    BadRequest(String),
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    #[error("request headers too large (limit {0} bytes)")]
    HeadersTooLarge(usize),
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// This replica is draining before it stops (SIGTERM): `/readyz` says
    /// so, while every other route still answers.
    #[error("this replica is shutting down; send requests to another")]
    ShuttingDown,
    /// An `Idempotency-Key` sent again with another request (another body
    /// or route) than the one it was first used for: nothing was done.
    #[error("this Idempotency-Key was already used for a different request; use a new key")]
    IdempotencyKeyReused,
    /// What an operation answered instead of its result (not found,
    /// conflict, validation, quota, lifecycle, database unavailable, ...).
    #[error(transparent)]
    Operation(#[from] OpError),
}

impl ApiError {
    pub const NOT_FOUND: Self = Self::Operation(OpError::NotFound);

    pub fn forbidden(detail: &'static str) -> Self {
        Self::Forbidden(Cow::Borrowed(detail))
    }

    pub fn validation(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Operation(OpError::validation(field, detail))
    }

    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Operation(OpError::Internal(cause.into()))
    }

    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TenantInactive(TenantStatus::Suspended) => "tenant_suspended",
            Self::TenantInactive(TenantStatus::Archived) => "tenant_archived",
            Self::TenantInactive(TenantStatus::Deleted) => "tenant_deleted",
            // An active tenant is never refused as inactive; kept total.
            Self::TenantInactive(TenantStatus::Active) => "forbidden",
            Self::TenantMismatch => "tenant_mismatch",
            Self::RateLimited(_) => "rate_limited",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::HeadersTooLarge(_) => "headers_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ShuttingDown => "shutting_down",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Operation(e) => e.code(),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden(_) | Self::TenantMismatch => "Forbidden",
            Self::TenantInactive(_) => "Tenant not active",
            Self::RateLimited(_) => "Too many requests",
            Self::BadRequest(_) => "Bad request",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::HeadersTooLarge(_) => "Request header fields too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::ShuttingDown => "Service unavailable",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::Operation(e) => match e.innermost() {
                OpError::InvalidDocument(_) => "Invalid settings",
                OpError::StaleVersion { .. } => "Precondition failed",
                OpError::AtLine { .. } => "Import refused",
                OpError::NotFound => "Not found",
                OpError::TenantPurged => "Gone",
                OpError::InvalidTransition { .. } => "Invalid transition",
                OpError::QuotaExceeded(_) => "Quota exceeded",
                OpError::Conflict(_) | OpError::LastOwner => "Conflict",
                OpError::Forbidden(_) => "Forbidden",
                OpError::CitusRequired => "Citus required",
                OpError::PlacementUnavailable(_) => "Placement unavailable",
                OpError::PlacementInProgress => "Placement in progress",
                OpError::Validation { .. } => "Invalid field",
                OpError::NotVerified(_) => "Domain not verified",
                OpError::DatabaseUnavailable | OpError::QueryTimeout | OpError::Unavailable(_) => {
                    "Service unavailable"
                }
                OpError::Internal(_) => "Internal error",
            },
        }
    }

    /// The operation's error, through any import line around it.
    fn operation(&self) -> Option<&OpError> {
        match self {
            Self::Operation(e) => Some(e.innermost()),
            _ => None,
        }
    }

    fn exceeded(&self) -> Option<&tenantry_core::Exceeded> {
        match self.operation() {
            Some(OpError::QuotaExceeded(e)) => Some(e),
            _ => None,
        }
    }

    fn retry_later(&self) -> bool {
        matches!(self, Self::ShuttingDown)
            || matches!(
                self.operation(),
                Some(
                    OpError::DatabaseUnavailable | OpError::QueryTimeout | OpError::Unavailable(_)
                )
            )
    }

    /// The field a validation error is about.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self.operation() {
            Some(OpError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    /// What a person reads: the problem's `detail` (at most 200
    /// characters; an internal error's cause is logged, not shown).
    #[must_use]
    pub fn detail(&self) -> String {
        match self.operation() {
            Some(OpError::Internal(_)) => {
                "an unexpected error occurred; it has been logged".to_owned()
            }
            _ => self.to_string(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        Self::Operation(err.into())
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        Self::Operation(err.into())
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(err: JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } => Self::PayloadTooLarge(limit),
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                Self::validation("body", first_line(&e.to_string()))
            }
            JsonPayloadError::Deserialize(e) => {
                Self::BadRequest(format!("malformed JSON: {}", first_line(&e.to_string())))
            }
            other => Self::BadRequest(first_line(&other.to_string())),
        }
    }
}

impl From<QueryPayloadError> for ApiError {
    fn from(err: QueryPayloadError) -> Self {
        Self::validation("query", first_line(&err.to_string()))
    }
}

impl From<PathError> for ApiError {
    fn from(_: PathError) -> Self {
        // An id that does not parse names nothing that exists.
        Self::NOT_FOUND
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// RFC 9457 problem details.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    /// Stable machine-readable code, e.g. `quota_exceeded`.
    code: &'static str,
    /// The offending field, for `validation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// For `invalid_transition`: the tenant's current status...
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<TenantStatus>,
    /// ...and the one asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<TenantStatus>,
    /// For `quota_exceeded`: the resource, its limit, what is used and what
    /// was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    used: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested: Option<i64>,
    /// `invalid_settings`: where the document fails the schema, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<tenantry_ops::DocumentError>>,
    /// `version_mismatch`: the settings' version now.
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<i32>,
    /// An import's refusal: the line of the file it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::TenantInactive(_) | Self::TenantMismatch => {
                StatusCode::FORBIDDEN
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Operation(e) => match e.innermost() {
                OpError::InvalidDocument(_) | OpError::AtLine { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                OpError::StaleVersion { .. } => StatusCode::PRECONDITION_FAILED,
                OpError::QuotaExceeded(_) | OpError::Forbidden(_) => StatusCode::FORBIDDEN,
                OpError::NotFound => StatusCode::NOT_FOUND,
                OpError::TenantPurged => StatusCode::GONE,
                OpError::Conflict(_)
                | OpError::LastOwner
                | OpError::InvalidTransition { .. }
                | OpError::CitusRequired
                | OpError::PlacementUnavailable(_)
                | OpError::PlacementInProgress => StatusCode::CONFLICT,
                OpError::Validation { .. } | OpError::NotVerified(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                OpError::DatabaseUnavailable | OpError::QueryTimeout | OpError::Unavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                OpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(OpError::Internal(cause)) = self.operation() {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status_code();
        let problem = Problem {
            kind: format!("https://tenantry.dev/problems/{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
            field: match self.operation() {
                Some(OpError::Validation { field, .. }) => Some(field.to_string()),
                _ => None,
            },
            from: match self.operation() {
                Some(OpError::InvalidTransition { from, .. }) => Some(*from),
                _ => None,
            },
            to: match self.operation() {
                Some(OpError::InvalidTransition { to, .. }) => Some(*to),
                _ => None,
            },
            resource: self.exceeded().map(|e| e.resource.as_str()),
            limit: self.exceeded().map(|e| e.limit),
            used: self.exceeded().map(|e| e.used),
            requested: self.exceeded().map(|e| e.requested),
            errors: match self.operation() {
                Some(OpError::InvalidDocument(errors)) => Some(errors.clone()),
                _ => None,
            },
            current_version: match self.operation() {
                Some(OpError::StaleVersion { current }) => Some(*current),
                _ => None,
            },
            line: match self {
                Self::Operation(e) => e.line(),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        if self.retry_later() {
            response.insert_header(("Retry-After", "1"));
        }
        match self {
            Self::Unauthorized => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Self::RateLimited(limited) => {
                // Whole seconds, rounded up: never tell a client to retry early.
                let wait = limited.retry_after.as_secs()
                    + u64::from(limited.retry_after.subsec_nanos() > 0);
                let wait = wait.max(1).to_string();
                response.insert_header(("Retry-After", wait.clone()));
                response.insert_header(("RateLimit-Limit", limited.limit.to_string()));
                response.insert_header(("RateLimit-Remaining", "0"));
                response.insert_header(("RateLimit-Reset", wait));
            }
            // The rest of the body is not read: close the connection so a
            // client does not send its next request into the leftover bytes.
            Self::PayloadTooLarge(_) | Self::HeadersTooLarge(_) => {
                response.force_close();
            }
            _ => {}
        }
        match serde_json::to_string(&problem) {
            Ok(body) => response
                .insert_header((CONTENT_TYPE, "application/problem+json"))
                .body(body),
            Err(_) => response.finish(),
        }
    }
}
