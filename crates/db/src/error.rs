use diesel_async::pooled_connection::PoolError as ConnError;
use diesel_async::pooled_connection::deadpool::PoolError;

/// What can go wrong reaching the database. The API maps `Unavailable` to
/// 503 and `Query` case by case; neither carries SQL into a response.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time (pool exhausted, server down,
    /// authentication refused).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// The configuration cannot produce a pool.
    #[error("database configuration: {0}")]
    Config(String),
}

impl From<PoolError> for DbError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Backend(ConnError::QueryError(e)) => Self::Query(e),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
