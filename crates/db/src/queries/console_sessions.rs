//! Operator console sessions (`console_sessions`, control plane): run in
//! the platform-admin context. Sessions are found by the SHA-256 of their
//! token; the token itself is never stored.

use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use crate::schema::console_sessions;

/// A live session, as a request finds it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = console_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ConsoleSession {
    pub id: uuid::Uuid,
    pub subject: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Begins a session for `subject`, ending at `expires_at` at the latest.
pub async fn insert(
    conn: &mut Conn<'_>,
    token_hash: &[u8; 32],
    subject: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<ConsoleSession> {
    diesel::insert_into(console_sessions::table)
        .values((
            console_sessions::id.eq(uuid::Uuid::now_v7()),
            console_sessions::token_hash.eq(token_hash.as_slice()),
            console_sessions::subject.eq(subject),
            console_sessions::expires_at.eq(expires_at),
        ))
        .returning(ConsoleSession::as_returning())
        .get_result(conn)
        .await
}

/// The live session with this token, its idle clock reset, in one
/// statement: `None` once it was ended, passed its expiry, or sat unused
/// for `idle_seconds`.
pub async fn touch(
    conn: &mut Conn<'_>,
    token_hash: &[u8; 32],
    idle_seconds: i64,
) -> QueryResult<Option<ConsoleSession>> {
    diesel::update(console_sessions::table)
        .filter(console_sessions::token_hash.eq(token_hash.as_slice()))
        .filter(console_sessions::ended_at.is_null())
        .filter(console_sessions::expires_at.gt(diesel::dsl::now))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "last_seen_at > now() - make_interval(secs => ",
            )
            .bind::<BigInt, _>(idle_seconds)
            .sql(")"),
        )
        .set(console_sessions::last_seen_at.eq(diesel::dsl::now))
        .returning(ConsoleSession::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Ends the session with this token (sign-out); `false` when none was
/// live.
pub async fn end(conn: &mut Conn<'_>, token_hash: &[u8; 32]) -> QueryResult<bool> {
    let ended = diesel::update(console_sessions::table)
        .filter(console_sessions::token_hash.eq(token_hash.as_slice()))
        .filter(console_sessions::ended_at.is_null())
        .set(console_sessions::ended_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(ended > 0)
}

/// Deletes up to `batch` sessions that ended, expired or went idle more
/// than a day ago (housekeeping).
pub async fn delete_stale(
    conn: &mut Conn<'_>,
    idle_seconds: i64,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM console_sessions WHERE id IN (
             SELECT id FROM console_sessions
              WHERE least(coalesce(ended_at, 'infinity'), expires_at,
                          last_seen_at + make_interval(secs => $1))
                    < now() - interval '1 day'
              LIMIT $2)",
    )
    .bind::<BigInt, _>(idle_seconds)
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}
