//! The one error type of the API and its one mapping to RFC 9457
//! `application/problem+json`. Bodies carry a stable `code` and a human
//! `detail`; never SQL, never a stack trace, never another tenant's data.

use std::borrow::Cow;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use tenantry_core::TenantStatus;
use tenantry_db::DbError;

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
    #[error("no such resource")]
    NotFound,
    /// The tenant's data has been purged by the retention sweeper: it is
    /// gone for good (the tenant keeps only its tombstone).
    #[error("this tenant's data has been purged")]
    TenantPurged,
    /// A lifecycle transition the state machine does not allow (or that
    /// lost a race to another change).
    #[error("cannot go from {from} to {to}")]
    InvalidTransition {
        from: TenantStatus,
        to: TenantStatus,
    },
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// Dedicated placement on a database that is not a Citus cluster.
    #[error("dedicated placement needs a Citus cluster; this database is plain PostgreSQL")]
    CitusRequired,
    /// The Citus cluster is not set up for shard moves (the reason is the
    /// detail: what the operator must change).
    #[error("{0}")]
    PlacementUnavailable(&'static str),
    /// Another shard split or move is running on the cluster.
    #[error("another shard split or move is running on this cluster; retry when it has finished")]
    PlacementInProgress,
    /// The tenant is over its request rate.
    #[error("rate limit of {} requests per second exceeded; retry later", .0.limit)]
    RateLimited(crate::ratelimit::Limited),
    /// Provisioning would pass one of the tenant's limits; nothing changed.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(tenantry_core::Exceeded),
    /// A field's value is invalid.
    #[error("{field}: {detail}")]
    Validation {
        field: Cow<'static, str>,
        detail: String,
    },
    /// The request could not be read at all (malformed JSON, bad header).
    #[error("{0}")]
    BadRequest(String),
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    #[error("request headers too large (limit {0} bytes)")]
    HeadersTooLarge(usize),
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// No database connection could be had in time: the database is down
    /// or restarting, or every pooled connection is busy past the pool's
    /// wait timeout. Retry later.
    #[error("the database is unavailable; retry later")]
    DatabaseUnavailable,
    /// A statement ran past `statement_timeout` (or waited past
    /// `lock_timeout`) and was cancelled; its transaction rolled back.
    #[error("a database statement ran past its time limit and was cancelled; retry later")]
    QueryTimeout,
    /// The service cannot answer now for another reason (schema not
    /// migrated, a concurrent update). Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// This replica is draining before it stops (SIGTERM): `/readyz` says
    /// so, while every other route still answers.
    #[error("this replica is shutting down; send requests to another")]
    ShuttingDown,
    /// A bug or an unexpected failure: logged in full, answered opaquely.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn forbidden(detail: &'static str) -> Self {
        Self::Forbidden(Cow::Borrowed(detail))
    }

    pub fn conflict(detail: &'static str) -> Self {
        Self::Conflict(Cow::Borrowed(detail))
    }

    pub fn validation(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Validation {
            field: Cow::Borrowed(field),
            detail: detail.into(),
        }
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
            Self::NotFound => "not_found",
            Self::TenantPurged => "tenant_purged",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::RateLimited(_) => "rate_limited",
            Self::Conflict(_) => "conflict",
            Self::CitusRequired => "citus_required",
            Self::PlacementUnavailable(_) => "placement_unavailable",
            Self::PlacementInProgress => "placement_in_progress",
            Self::Validation { .. } => "validation",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::HeadersTooLarge(_) => "headers_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::QueryTimeout => "query_timeout",
            Self::Unavailable(_) => "unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden(_) | Self::TenantMismatch => "Forbidden",
            Self::TenantInactive(_) => "Tenant not active",
            Self::NotFound => "Not found",
            Self::TenantPurged => "Gone",
            Self::InvalidTransition { .. } => "Invalid transition",
            Self::QuotaExceeded(_) => "Quota exceeded",
            Self::RateLimited(_) => "Too many requests",
            Self::Conflict(_) => "Conflict",
            Self::CitusRequired => "Citus required",
            Self::PlacementUnavailable(_) => "Placement unavailable",
            Self::PlacementInProgress => "Placement in progress",
            Self::Validation { .. } => "Invalid field",
            Self::BadRequest(_) => "Bad request",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::HeadersTooLarge(_) => "Request header fields too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::DatabaseUnavailable
            | Self::QueryTimeout
            | Self::Unavailable(_)
            | Self::ShuttingDown => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    fn exceeded(&self) -> Option<&tenantry_core::Exceeded> {
        match self {
            Self::QuotaExceeded(e) => Some(e),
            _ => None,
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
                Self::DatabaseUnavailable
            }
            DbError::Query(e) => e.into(),
            DbError::Config(cause) => Self::Internal(cause),
        }
    }
}

/// Generic mapping of statement errors. Handlers that know better (which
/// field a foreign key is, what a unique index means) map first.
impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(kind, info) => match kind {
                DatabaseErrorKind::UniqueViolation => {
                    Self::conflict("conflicts with an existing resource")
                }
                DatabaseErrorKind::ForeignKeyViolation => {
                    Self::Conflict(Cow::Borrowed("conflicts with a related resource"))
                }
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => {
                    Self::validation("body", "a value is out of range")
                }
                DatabaseErrorKind::SerializationFailure => {
                    Self::Unavailable("concurrent update; retry".to_owned())
                }
                // The connection died under the statement: the server went
                // away (no SQLSTATE) or is shutting down / restarting.
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection => {
                    tracing::warn!(cause = %info.message(), "database connection lost");
                    Self::DatabaseUnavailable
                }
                _ if is_server_going_away(info.message()) => {
                    tracing::warn!(cause = %info.message(), "database connection lost");
                    Self::DatabaseUnavailable
                }
                _ if is_cancelled_for_time(info.message()) => Self::QueryTimeout,
                // 40P01 and 55P03: retryable, not a fault of the service.
                _ if is_lock_conflict(info.message()) => {
                    Self::Unavailable("concurrent update; retry".to_owned())
                }
                _ => Self::Internal(format!("{kind:?}: {}", info.message())),
            },
            // A connection whose transaction state was lost with it.
            DieselError::BrokenTransactionManager => Self::DatabaseUnavailable,
            _ => Self::Internal(err.to_string()),
        }
    }
}

/// SQLSTATE 57P01–57P03 (admin_shutdown, crash_shutdown, cannot_connect_now).
/// diesel does not expose SQLSTATEs, so these match PostgreSQL's messages
/// (the server's `lc_messages` must be English, the default).
fn is_server_going_away(message: &str) -> bool {
    message.starts_with("terminating connection")
        || message.starts_with("the database system is")
        || message.starts_with("server closed the connection")
}

/// SQLSTATE 57014 (statement_timeout) and 55P03 (lock_timeout).
fn is_cancelled_for_time(message: &str) -> bool {
    message.contains("statement timeout") || message.contains("lock timeout")
}

/// SQLSTATE 40P01 (deadlock_detected) and 55P03 (lock_not_available,
/// NOWAIT).
fn is_lock_conflict(message: &str) -> bool {
    message.starts_with("deadlock detected") || message.starts_with("could not obtain lock")
}

/// The constraint a database error names, for handlers that map by it. On
/// Citus a shard's constraint carries the shard id (`users_tenant_email_102008`):
/// the suffix is dropped, so no constraint of ours may end in `_<digits>`.
#[must_use]
pub fn violated_constraint(err: &DieselError) -> Option<(&DatabaseErrorKind, &str)> {
    match err {
        DieselError::DatabaseError(kind, info) => info
            .constraint_name()
            .or_else(|| constraint_in_message(info.message()))
            .map(|c| (kind, without_shard_suffix(c))),
        _ => None,
    }
}

/// Citus relays a worker's error without its fields: the constraint is
/// named only in the message (`... violates foreign key constraint "x_102008"`).
fn constraint_in_message(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once(" constraint \"")?;
    rest.split_once('"').map(|(name, _)| name)
}

fn without_shard_suffix(constraint: &str) -> &str {
    match constraint.rsplit_once('_') {
        Some((stem, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => constraint,
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(err: JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } => Self::PayloadTooLarge(limit),
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(e) if e.is_data() => Self::Validation {
                field: Cow::Borrowed("body"),
                detail: first_line(&e.to_string()),
            },
            JsonPayloadError::Deserialize(e) => {
                Self::BadRequest(format!("malformed JSON: {}", first_line(&e.to_string())))
            }
            other => Self::BadRequest(first_line(&other.to_string())),
        }
    }
}

impl From<QueryPayloadError> for ApiError {
    fn from(err: QueryPayloadError) -> Self {
        Self::Validation {
            field: Cow::Borrowed("query"),
            detail: first_line(&err.to_string()),
        }
    }
}

impl From<PathError> for ApiError {
    fn from(_: PathError) -> Self {
        // An id that does not parse names nothing that exists.
        Self::NotFound
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_)
            | Self::TenantInactive(_)
            | Self::TenantMismatch
            | Self::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::TenantPurged => StatusCode::GONE,
            Self::Conflict(_)
            | Self::InvalidTransition { .. }
            | Self::CitusRequired
            | Self::PlacementUnavailable(_)
            | Self::PlacementInProgress => StatusCode::CONFLICT,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::DatabaseUnavailable
            | Self::QueryTimeout
            | Self::Unavailable(_)
            | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
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
            field: match self {
                Self::Validation { field, .. } => Some(field.to_string()),
                _ => None,
            },
            from: match self {
                Self::InvalidTransition { from, .. } => Some(*from),
                _ => None,
            },
            to: match self {
                Self::InvalidTransition { to, .. } => Some(*to),
                _ => None,
            },
            resource: self.exceeded().map(|e| e.resource.as_str()),
            limit: self.exceeded().map(|e| e.limit),
            used: self.exceeded().map(|e| e.used),
            requested: self.exceeded().map(|e| e.requested),
        };
        let mut response = HttpResponse::build(status);
        match self {
            Self::DatabaseUnavailable
            | Self::QueryTimeout
            | Self::Unavailable(_)
            | Self::ShuttingDown => {
                response.insert_header(("Retry-After", "1"));
            }
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

#[cfg(test)]
mod shard_suffix_tests {
    #[test]
    fn a_shards_constraint_name_maps_to_the_tables() {
        assert_eq!(
            super::without_shard_suffix("users_tenant_email_102008"),
            "users_tenant_email"
        );
        assert_eq!(
            super::without_shard_suffix("users_tenant_email"),
            "users_tenant_email"
        );
        assert_eq!(
            super::without_shard_suffix("instances_cluster_fk"),
            "instances_cluster_fk"
        );
        assert_eq!(super::without_shard_suffix("x_"), "x_");
        assert_eq!(
            super::constraint_in_message(
                "insert or update on table \"instances_102042\" violates foreign key constraint \"instances_cluster_fk_102042\""
            ),
            Some("instances_cluster_fk_102042")
        );
        assert_eq!(super::constraint_in_message("deadlock detected"), None);
    }
}
