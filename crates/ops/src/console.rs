//! Operator console sessions: a platform admin's sign-in, its lookups and
//! its sign-out. The console (crates/api/src/console) makes the session
//! token and hashes it; only the hash reaches the database. Sign-in and
//! sign-out are audited with the admin as the actor, like every action
//! the console takes afterwards.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tenantry_db::queries::{audit, console_sessions};
use tenantry_db::{Db, ScopedFutureExt as _};

use crate::{Actor, Error, Operations};

pub use console_sessions::ConsoleSession;

/// A session token's SHA-256.
pub type TokenHash = [u8; 32];

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Begins a session for `actor`, which ends at `expires_at` at the latest.
pub async fn sign_in(
    ops: &Operations,
    actor: &Actor,
    token_hash: TokenHash,
    expires_at: DateTime<Utc>,
) -> Result<ConsoleSession, Error> {
    let actor = actor.clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let session =
                    console_sessions::insert(conn, &token_hash, actor.as_str(), expires_at).await?;
                let after = serde_json::json!({
                    "session": session.id,
                    "expires_at": session.expires_at,
                });
                audit::record(
                    conn,
                    None,
                    actor.as_str(),
                    "console.signed_in",
                    None,
                    Some(after),
                    None,
                )
                .await?;
                Ok::<_, Error>(session)
            }
            .scope_boxed()
        })
        .await
}

/// The live session with this token (its idle clock reset), or `None`.
pub async fn session(
    ops: &Operations,
    token_hash: TokenHash,
    idle: Duration,
) -> Result<Option<ConsoleSession>, Error> {
    let idle = seconds(idle);
    ops.db
        .platform()
        .run(|conn| {
            async move { Ok::<_, Error>(console_sessions::touch(conn, &token_hash, idle).await?) }
                .scope_boxed()
        })
        .await
}

/// Ends the session with this token; audited when one was live.
pub async fn sign_out(ops: &Operations, actor: &Actor, token_hash: TokenHash) -> Result<(), Error> {
    let actor = actor.clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                if console_sessions::end(conn, &token_hash).await? {
                    audit::record(
                        conn,
                        None,
                        actor.as_str(),
                        "console.signed_out",
                        None,
                        None,
                        None,
                    )
                    .await?;
                }
                Ok::<_, Error>(())
            }
            .scope_boxed()
        })
        .await
}

/// Deletes sessions that ended more than a day ago, in batches; how many.
pub async fn expire(db: &Db, idle: Duration) -> Result<usize, Error> {
    const BATCH: i64 = 1000;
    const MAX_BATCHES: usize = 100;
    let idle = seconds(idle);
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        let n = db
            .platform()
            .run(|conn| {
                async move {
                    Ok::<_, Error>(console_sessions::delete_stale(conn, idle, BATCH).await?)
                }
                .scope_boxed()
            })
            .await?;
        deleted += n;
        if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(deleted)
}
