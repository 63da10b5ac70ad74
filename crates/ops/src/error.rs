//! What an operation can answer instead of its result. Front doors map it:
//! the API to problem+json (`tenantry_api::ApiError`, one place), the CLI to
//! a message and an exit code. No variant carries SQL or another tenant's
//! data; `Internal` is logged in full and shown opaquely.

use std::borrow::Cow;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tenantry_core::{Exceeded, TenantStatus};
use tenantry_db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// The caller may not do this (its role or scopes do not allow it).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The change would leave the tenant without an owner.
    #[error(
        "the tenant's last owner cannot be removed or demoted; make another member owner first"
    )]
    LastOwner,
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
    /// Provisioning would pass one of the tenant's limits; nothing changed.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(Exceeded),
    /// A field's value is invalid.
    #[error("{field}: {detail}")]
    Validation {
        field: Cow<'static, str>,
        detail: String,
    },
    /// A custom domain's proof of control was looked for and not found;
    /// the detail says what each check found.
    #[error("the domain is not verified: {0}")]
    NotVerified(String),
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
    /// A settings document the operator's JSON Schema (or the size bound)
    /// refuses: where (JSON pointers into the document) and why, at most
    /// [`crate::settings::MAX_REPORTED_ERRORS`] of them. Nothing changed.
    #[error("the settings document is invalid: {}", describe_document_errors(.0))]
    InvalidDocument(Vec<DocumentError>),
    /// A write that named the version it expected (`If-Match`, `version`)
    /// found another: someone wrote in between. Nothing changed.
    #[error("the settings are at version {current}, not the version this write expected")]
    StaleVersion { current: i32 },
    /// One line of an import refused: the line number, the table it named
    /// (when known), and why — the error the same row would get from the
    /// API. The whole import rolled back.
    #[error("{}", at_line(*line, table.as_deref(), source))]
    AtLine {
        line: u64,
        table: Option<String>,
        source: Box<Error>,
    },
    /// A bug or an unexpected failure: logged in full, answered opaquely.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn conflict(detail: &'static str) -> Self {
        Self::Conflict(Cow::Borrowed(detail))
    }

    pub fn validation(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Validation {
            field: Cow::Borrowed(field),
            detail: detail.into(),
        }
    }

    /// The stable machine-readable code (problem+json `code`, CLI output).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::TenantPurged => "tenant_purged",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::Conflict(_) => "conflict",
            Self::Forbidden(_) => "forbidden",
            Self::LastOwner => "last_owner",
            Self::CitusRequired => "citus_required",
            Self::PlacementUnavailable(_) => "placement_unavailable",
            Self::PlacementInProgress => "placement_in_progress",
            Self::Validation { .. } => "validation",
            Self::NotVerified(_) => "domain_not_verified",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::QueryTimeout => "query_timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::InvalidDocument(_) => "invalid_settings",
            Self::StaleVersion { .. } => "version_mismatch",
            Self::AtLine { source, .. } => source.code(),
        }
    }

    /// The error itself, through any [`Error::AtLine`] around it.
    #[must_use]
    pub fn innermost(&self) -> &Self {
        match self {
            Self::AtLine { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The import line this error is about, if any.
    #[must_use]
    pub const fn line(&self) -> Option<u64> {
        match self {
            Self::AtLine { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// One place a settings document fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DocumentError {
    /// JSON pointer (RFC 6901) into the document; "" is the whole document.
    pub pointer: String,
    pub message: String,
}

fn describe_document_errors(errors: &[DocumentError]) -> String {
    errors
        .iter()
        .map(|e| {
            let at = if e.pointer.is_empty() {
                "/"
            } else {
                &e.pointer
            };
            format!("{at}: {}", e.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A refused import line's reason: the table (when the error does not name
/// it itself), then the error; a quota refusal names the limit as the
/// configuration and the API's limits do (`max_users`).
fn at_line(line: u64, table: Option<&str>, source: &Error) -> String {
    let prefix = table.map(|t| format!("{t}: ")).unwrap_or_default();
    match source {
        // The file itself, not a row: `line 61: not JSON: ...`.
        Error::Validation { field, detail } if table.is_none() && field == "body" => {
            format!("line {line}: {detail}")
        }
        Error::QuotaExceeded(e) => format!(
            "line {line}, {prefix}quota exceeded: {} is {}; {} used, {} more requested",
            e.resource.limit_name(),
            e.limit,
            e.used,
            e.requested
        ),
        other => format!("line {line}, {prefix}{other}"),
    }
}

/// Maps a parse failure of an input field to a validation error naming it.
pub fn field<T>(name: &'static str, parsed: Result<T, String>) -> Result<T, Error> {
    parsed.map_err(|detail| Error::validation(name, detail))
}

impl From<DbError> for Error {
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

/// Generic mapping of statement errors. Operations that know better (which
/// field a foreign key is, what a unique index means) map first, by
/// [`violated_constraint`].
impl From<DieselError> for Error {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(kind, info) => match kind {
                DatabaseErrorKind::UniqueViolation => {
                    Self::conflict("conflicts with an existing resource")
                }
                DatabaseErrorKind::ForeignKeyViolation => {
                    Self::conflict("conflicts with a related resource")
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

/// The constraint a database error names, for operations that map by it. On
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

/// `err` as `mapped` when it violates `constraint` (of `kind`), else the
/// generic mapping.
pub(crate) fn on_constraint(
    err: DieselError,
    kind: DatabaseErrorKind,
    constraint: &str,
    mapped: impl FnOnce() -> Error,
) -> Error {
    match violated_constraint(&err) {
        Some((k, c)) if *k == kind && c == constraint => mapped(),
        _ => err.into(),
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
