//! Idempotent creates (`Idempotency-Key`): a create sent with a key runs at
//! most once per key within [`RETENTION_HOURS`]; a retry with the same key
//! and the same request gets the first response back, one with the same key
//! and another request is refused, and nothing runs twice — on any replica.
//!
//! Everything happens in the create's own transaction, right after the
//! tenant gate (or the platform context): the key is claimed first (an
//! `INSERT … ON CONFLICT DO NOTHING` on the unique `(tenant_id, key)`
//! index), the create runs, and its response is stored; all of it commits
//! together or not at all. A concurrent retry of the same key waits on the
//! unique index until the first request commits (then it replays the stored
//! response) or rolls back (then it runs itself). A create that fails
//! stores nothing — its transaction rolls back with the key — so a retry
//! after fixing the input runs anew.

use tenantry_core::TenantId;
use tenantry_db::Conn;
use tenantry_db::queries::idempotency::{self as queries, Plane};
use tenantry_db::{Db, ScopedBoxFuture, ScopedFutureExt as _};

pub use queries::RETENTION_HOURS;

use crate::{Error, Operations};

/// An idempotent request: its key and what identifies the request (the
/// operation and the hash of its canonical form), both made by the front
/// door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    key: String,
    operation: String,
    hash: [u8; 32],
}

impl Request {
    /// `key`: 1 to 255 visible ASCII characters (`!` to `~`).
    pub fn new(key: &str, operation: impl Into<String>, hash: [u8; 32]) -> Result<Self, Error> {
        if !valid_key(key) {
            return Err(Error::validation(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            operation: operation.into(),
            hash,
        })
    }

    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// 1 to 255 visible ASCII characters.
#[must_use]
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A response as it is stored and replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: serde_json::Value,
}

/// What became of an idempotent request.
#[derive(Debug)]
pub enum Outcome<P> {
    /// It ran (for the first time, or with no key): what `present` made.
    Done(P),
    /// The key was used before for the same request: its stored response.
    Replay(Response),
    /// The key was used before for another request: nothing ran.
    Reused,
}

/// What a claim found.
enum Claim {
    Fresh,
    Replay(Response),
    Reused,
}

/// How many times a claim looks again when the key changed under it (the
/// housekeeping deleted it, or a racing request renewed it).
const CLAIM_ATTEMPTS: usize = 3;

async fn claim(conn: &mut Conn<'_>, plane: Plane, req: &Request) -> Result<Claim, Error> {
    for _ in 0..CLAIM_ATTEMPTS {
        if queries::claim(conn, plane, &req.key, &req.operation, &req.hash).await? {
            return Ok(Claim::Fresh);
        }
        let Some(stored) = queries::find(conn, plane, &req.key).await? else {
            continue; // expired and deleted meanwhile: claim it again
        };
        if !stored.live {
            if queries::renew(conn, plane, &req.key, &req.operation, &req.hash).await? {
                return Ok(Claim::Fresh);
            }
            continue; // another request renewed it first: read it again
        }
        if stored.operation != req.operation || stored.request_hash != req.hash {
            return Ok(Claim::Reused);
        }
        return match (stored.response_status, stored.response_body) {
            (Some(status), Some(body)) => Ok(Claim::Replay(Response {
                status: u16::try_from(status)
                    .map_err(|_| Error::Internal(format!("stored status {status}")))?,
                location: stored.location,
                body,
            })),
            // Only the claiming transaction sees its key unanswered.
            _ => Err(Error::Unavailable(
                "a request with this Idempotency-Key is still in progress; retry".to_owned(),
            )),
        };
    }
    Err(Error::Unavailable(
        "the Idempotency-Key changed while it was read; retry".to_owned(),
    ))
}

/// Runs `work` idempotently on the connection of the caller's transaction
/// (`plane` says whose keys): with no `req`, it just runs; with one, the
/// key is claimed first, and `present` turns the result into what the
/// caller answers plus the [`Response`] stored for replays — both in this
/// transaction, so the key and the create commit together.
///
/// The stored response is what a replay shows: it should be the one the
/// caller answered, minus anything that may only be shown once (an API
/// key's secret is never stored).
pub async fn run<'a, 'c, T, P, F, G>(
    conn: &'c mut Conn<'_>,
    plane: Plane,
    req: Option<&Request>,
    work: F,
    present: G,
) -> Result<Outcome<P>, Error>
where
    'a: 'c,
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<T, Error>> + Send + 'a,
    G: FnOnce(T) -> Result<(P, Response), Error> + Send + 'a,
    T: Send + 'a,
    P: Send + 'a,
{
    let Some(req) = req else {
        let item = work(&mut &**conn).await?;
        return Ok(Outcome::Done(present(item)?.0));
    };
    match claim(conn, plane, req).await? {
        Claim::Fresh => {}
        Claim::Replay(response) => return Ok(Outcome::Replay(response)),
        Claim::Reused => return Ok(Outcome::Reused),
    }
    let item = work(&mut &**conn).await?;
    let (presented, stored) = present(item)?;
    queries::answer(
        conn,
        plane,
        &req.key,
        i32::from(stored.status),
        &stored.body,
        stored.location.as_deref(),
    )
    .await?;
    Ok(Outcome::Done(presented))
}

/// [`run`] for an admin-plane create: in a platform scope of its own.
pub async fn platform<'a, T, P, F, G>(
    ops: &Operations,
    req: Option<Request>,
    provision: Option<TenantId>,
    work: F,
    present: G,
) -> Result<Outcome<P>, Error>
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<T, Error>> + Send + 'a,
    G: FnOnce(T) -> Result<(P, Response), Error> + Send + 'a,
    T: Send + 'a,
    P: Send + 'a,
{
    let scope = ops.db.platform();
    match provision {
        Some(tenant) => {
            scope
                .provision(tenant, move |conn| {
                    async move { run(conn, Plane::Platform, req.as_ref(), work, present).await }
                        .scope_boxed()
                })
                .await
        }
        None => {
            scope
                .run(move |conn| {
                    async move { run(conn, Plane::Platform, req.as_ref(), work, present).await }
                        .scope_boxed()
                })
                .await
        }
    }
}

/// Most keys one expiry transaction deletes.
const EXPIRE_BATCH: i64 = 1000;
/// Most batches per tenant (and for the admin plane) in one [`expire`]:
/// what is left waits for the next run.
const EXPIRE_ROUNDS: usize = 50;
/// Tenants read per page of the registry.
const TENANTS_PAGE: i64 = 500;

/// Deletes the keys older than [`RETENTION_HOURS`], the admin plane's in
/// the platform scope and each tenant's in that tenant's own scope (RLS
/// confines every delete to it), in bounded batches. Returns how many it
/// deleted. Run by the server's housekeeping.
pub async fn expire(db: &Db) -> Result<u64, Error> {
    let mut deleted = expire_in(db, Plane::Platform).await?;
    let mut after: Option<TenantId> = None;
    loop {
        let page = db
            .platform()
            .run(move |conn| {
                async move {
                    Ok::<_, Error>(queries::tenants_page(conn, after, TENANTS_PAGE).await?)
                }
                .scope_boxed()
            })
            .await?;
        for tenant in &page {
            deleted += expire_in(db, Plane::Tenant(*tenant)).await?;
        }
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(i64::MAX) == TENANTS_PAGE => {
                after = Some(*last);
            }
            _ => return Ok(deleted),
        }
    }
}

async fn expire_in(db: &Db, plane: Plane) -> Result<u64, Error> {
    let mut deleted = 0u64;
    for _ in 0..EXPIRE_ROUNDS {
        let n = match plane {
            Plane::Tenant(tenant) => {
                db.tenant(tenant)
                    .run(move |conn| {
                        async move {
                            Ok::<_, Error>(queries::expire_batch(conn, plane, EXPIRE_BATCH).await?)
                        }
                        .scope_boxed()
                    })
                    .await?
            }
            Plane::Platform => {
                db.platform()
                    .run(move |conn| {
                        async move {
                            Ok::<_, Error>(queries::expire_batch(conn, plane, EXPIRE_BATCH).await?)
                        }
                        .scope_boxed()
                    })
                    .await?
            }
        };
        deleted += u64::try_from(n).unwrap_or(u64::MAX);
        if i64::try_from(n).unwrap_or(i64::MAX) < EXPIRE_BATCH {
            break;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(valid_key("a"));
        assert!(valid_key("order-2026-12-01/retry~1"));
        assert!(valid_key(&"k".repeat(255)));
        for bad in ["", " ", "a b", "tab\there", "é", "key\u{7f}", "new\nline"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(!valid_key(&"k".repeat(256)));
        assert!(Request::new("", "POST /v1/users", [0; 32]).is_err());
    }
}
