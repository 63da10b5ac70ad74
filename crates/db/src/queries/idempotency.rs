//! Idempotency keys: the tenant plane's (`idempotency_keys`, in the tenant's
//! context) and the admin plane's (`admin_idempotency_keys`, in the
//! platform-admin context). The same statements for both, named by
//! [`Plane`]; the rules (what a stored row means) are in
//! `tenantry_ops::idempotency`.

use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::sql_types::{
    BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryResult, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

/// How long a stored response is replayed. Older keys count as unused (a
/// create with one runs anew) and the housekeeping deletes them.
pub const RETENTION_HOURS: i32 = 24;

/// Whose keys: a tenant's, or the admin plane's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Tenant(TenantId),
    Platform,
}

/// A stored key, as a retry finds it.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoredKey {
    #[diesel(sql_type = Text)]
    pub operation: String,
    #[diesel(sql_type = Bytea)]
    pub request_hash: Vec<u8>,
    /// `None` only inside the transaction that claimed the key.
    #[diesel(sql_type = Nullable<Integer>)]
    pub response_status: Option<i32>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub response_body: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Younger than [`RETENTION_HOURS`], by the database's clock.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub live: bool,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

/// Inserts the key, unanswered, unless the key is there already: `true` if
/// this call inserted it. A concurrent transaction that holds the same key
/// uncommitted makes this wait until it commits (then `false`) or rolls
/// back (then `true`): the unique index serialises every retry of a key,
/// across replicas.
pub async fn claim(
    conn: &mut Conn<'_>,
    plane: Plane,
    key: &str,
    operation: &str,
    request_hash: &[u8],
) -> QueryResult<bool> {
    let id = uuid::Uuid::now_v7();
    let rows: Vec<Claimed> = match plane {
        Plane::Tenant(tenant) => {
            sql_query(
                "INSERT INTO idempotency_keys (tenant_id, id, key, operation, request_hash)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, key) DO NOTHING
                 RETURNING id",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(key)
            .bind::<Text, _>(operation)
            .bind::<Bytea, _>(request_hash)
            .load(conn)
            .await?
        }
        Plane::Platform => {
            sql_query(
                "INSERT INTO admin_idempotency_keys (id, key, operation, request_hash)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO NOTHING
                 RETURNING id",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(key)
            .bind::<Text, _>(operation)
            .bind::<Bytea, _>(request_hash)
            .load(conn)
            .await?
        }
    };
    Ok(rows.iter().any(|row| row.id == id))
}

/// The stored key, if there is one.
pub async fn find(conn: &mut Conn<'_>, plane: Plane, key: &str) -> QueryResult<Option<StoredKey>> {
    let columns = "operation, request_hash, response_status, response_body, location, created_at,
                   created_at > now() - make_interval(hours => $2) AS live";
    let rows: Vec<StoredKey> = match plane {
        Plane::Tenant(tenant) => {
            sql_query(format!(
                "SELECT {columns} FROM idempotency_keys WHERE tenant_id = $3 AND key = $1"
            ))
            .bind::<Text, _>(key)
            .bind::<Integer, _>(RETENTION_HOURS)
            .bind::<SqlUuid, _>(tenant)
            .load(conn)
            .await?
        }
        Plane::Platform => {
            sql_query(format!(
                "SELECT {columns} FROM admin_idempotency_keys WHERE key = $1"
            ))
            .bind::<Text, _>(key)
            .bind::<Integer, _>(RETENTION_HOURS)
            .load(conn)
            .await?
        }
    };
    Ok(rows.into_iter().next())
}

/// Takes over an expired key for a new request: `true` if this call did.
/// Two retries racing for the same expired key: the second waits for the
/// first's row lock, then finds the row no longer expired (`false`).
pub async fn renew(
    conn: &mut Conn<'_>,
    plane: Plane,
    key: &str,
    operation: &str,
    request_hash: &[u8],
) -> QueryResult<bool> {
    let set = "SET operation = $2, request_hash = $3, response_status = NULL,
                   response_body = NULL, location = NULL, created_at = now()";
    let expired = "created_at <= now() - make_interval(hours => $4)";
    let n = match plane {
        Plane::Tenant(tenant) => {
            sql_query(format!(
                "UPDATE idempotency_keys {set} WHERE tenant_id = $5 AND key = $1 AND {expired}"
            ))
            .bind::<Text, _>(key)
            .bind::<Text, _>(operation)
            .bind::<Bytea, _>(request_hash)
            .bind::<Integer, _>(RETENTION_HOURS)
            .bind::<SqlUuid, _>(tenant)
            .execute(conn)
            .await?
        }
        Plane::Platform => {
            sql_query(format!(
                "UPDATE admin_idempotency_keys {set} WHERE key = $1 AND {expired}"
            ))
            .bind::<Text, _>(key)
            .bind::<Text, _>(operation)
            .bind::<Bytea, _>(request_hash)
            .bind::<Integer, _>(RETENTION_HOURS)
            .execute(conn)
            .await?
        }
    };
    Ok(n > 0)
}

/// Stores the response of the request that claimed the key (in its
/// transaction, so it commits with the create or not at all).
pub async fn answer(
    conn: &mut Conn<'_>,
    plane: Plane,
    key: &str,
    status: i32,
    body: &serde_json::Value,
    location: Option<&str>,
) -> QueryResult<()> {
    let set = "SET response_status = $2, response_body = $3, location = $4";
    let n = match plane {
        Plane::Tenant(tenant) => {
            sql_query(format!(
                "UPDATE idempotency_keys {set} WHERE tenant_id = $5 AND key = $1"
            ))
            .bind::<Text, _>(key)
            .bind::<Integer, _>(status)
            .bind::<Jsonb, _>(body)
            .bind::<Nullable<Text>, _>(location)
            .bind::<SqlUuid, _>(tenant)
            .execute(conn)
            .await?
        }
        Plane::Platform => {
            sql_query(format!(
                "UPDATE admin_idempotency_keys {set} WHERE key = $1"
            ))
            .bind::<Text, _>(key)
            .bind::<Integer, _>(status)
            .bind::<Jsonb, _>(body)
            .bind::<Nullable<Text>, _>(location)
            .execute(conn)
            .await?
        }
    };
    if n == 1 {
        Ok(())
    } else {
        Err(diesel::result::Error::NotFound)
    }
}

/// Deletes up to `batch` keys older than [`RETENTION_HOURS`]; returns how
/// many it deleted.
pub async fn expire_batch(conn: &mut Conn<'_>, plane: Plane, batch: i64) -> QueryResult<usize> {
    match plane {
        // `x.tenant_id = $1` too: it keeps the delete on the tenant's shard
        // on Citus.
        Plane::Tenant(tenant) => {
            sql_query(
                "WITH doomed AS (SELECT tenant_id, id FROM idempotency_keys
                                  WHERE tenant_id = $1 AND created_at <= now() - make_interval(hours => $2)
                                  ORDER BY created_at LIMIT $3)
                 DELETE FROM idempotency_keys x USING doomed d
                  WHERE x.tenant_id = $1 AND x.tenant_id = d.tenant_id AND x.id = d.id",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Integer, _>(RETENTION_HOURS)
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await
        }
        Plane::Platform => {
            sql_query(
                "DELETE FROM admin_idempotency_keys WHERE id IN (
                     SELECT id FROM admin_idempotency_keys
                      WHERE created_at <= now() - make_interval(hours => $1)
                      ORDER BY created_at LIMIT $2)",
            )
            .bind::<Integer, _>(RETENTION_HOURS)
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await
        }
    }
}

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

/// A page of the tenants whose data is not purged (in id order, after
/// `after`): whose keys the housekeeping expires. Platform context.
pub async fn tenants_page(
    conn: &mut Conn<'_>,
    after: Option<TenantId>,
    limit: i64,
) -> QueryResult<Vec<TenantId>> {
    let rows: Vec<TenantRow> = sql_query(
        "SELECT id FROM tenants
          WHERE purged_at IS NULL AND ($1::uuid IS NULL OR id > $1)
          ORDER BY id LIMIT $2",
    )
    .bind::<Nullable<SqlUuid>, _>(after.map(uuid::Uuid::from))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| TenantId::from(r.id)).collect())
}
