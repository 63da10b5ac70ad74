//! A tenant's data as a whole: health counts, NDJSON export, import, and
//! usage recomputed from the rows. Run in the tenant's own scope, so RLS
//! guarantees nothing of another tenant is read or written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt as _;
use serde::Serialize;
use tenantry_core::TenantId;
use tokio::sync::mpsc;

/// The tenant-scoped tables, parents before children (import order; a
/// purge goes the other way, see `schema::TENANT_TABLES`).
pub const TABLES: [&str; 5] = ["users", "api_keys", "clusters", "instances", "events"];

fn known(table: &str) -> Option<&'static str> {
    TABLES.iter().copied().find(|t| *t == table)
}

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

#[derive(QueryableByName)]
struct Latest {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    at: Option<DateTime<Utc>>,
}

/// What `GET /v1/admin/tenants/{id}/health` reports about the data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DataHealth {
    pub counts: BTreeMap<String, i64>,
    /// Sum of the rows' sizes (pg_column_size): an estimate without indexes.
    pub approx_bytes: i64,
    pub last_activity_at: Option<DateTime<Utc>>,
}

pub async fn health(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<DataHealth> {
    let mut counts = BTreeMap::new();
    let mut approx_bytes = 0;
    for table in TABLES {
        let size: Size = sql_query(format!(
            "SELECT count(*) AS rows, coalesce(sum(pg_column_size(t.*)), 0)::bigint AS bytes
               FROM {table} t WHERE tenant_id = $1"
        ))
        .bind::<SqlUuid, _>(tenant)
        .get_result(conn)
        .await?;
        counts.insert(table.to_owned(), size.rows);
        approx_bytes += size.bytes;
    }
    let latest: Latest = sql_query("SELECT max(at) AS at FROM events WHERE tenant_id = $1")
        .bind::<SqlUuid, _>(tenant)
        .get_result(conn)
        .await?;
    Ok(DataHealth {
        counts,
        approx_bytes,
        last_activity_at: latest.at,
    })
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    row: serde_json::Value,
}

/// Streams every row of the tenant, table by table, into `sink` as
/// `(table, row)`. Stops early, without error, when the receiver is gone
/// (the client disconnected). Run it in a snapshot for a consistent export.
pub async fn export(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sink: mpsc::Sender<(&'static str, serde_json::Value)>,
) -> QueryResult<()> {
    for table in TABLES {
        let mut rows = sql_query(format!(
            "SELECT to_jsonb(t) AS row FROM {table} t WHERE tenant_id = $1 ORDER BY id"
        ))
        .bind::<SqlUuid, _>(tenant)
        .load_stream::<JsonRow>(conn)
        .await?;
        while let Some(row) = rows.next().await {
            if sink.send((table, row?.row)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Inserts one exported row into `tenant` (whatever tenant it came from).
/// Unknown tables and non-object rows are refused.
pub async fn import_row(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    table: &str,
    mut row: serde_json::Value,
) -> QueryResult<()> {
    let table = known(table).ok_or_else(|| invalid(format!("unknown table {table:?}")))?;
    let object = row
        .as_object_mut()
        .ok_or_else(|| invalid(format!("a row of {table} is not an object")))?;
    object.insert(
        "tenant_id".to_owned(),
        serde_json::Value::String(tenant.to_string()),
    );
    sql_query(format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, $1)"
    ))
    .bind::<Jsonb, _>(row)
    .execute(conn)
    .await
    .map(|_| ())
}

fn invalid(message: String) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(message.into())
}

/// Sets the tenant's usage row to what its rows add up to.
pub async fn recompute_usage(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<()> {
    sql_query(
        "UPDATE tenant_usage SET
             users      = (SELECT count(*) FROM users WHERE tenant_id = $1),
             api_keys   = (SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL),
             clusters   = (SELECT count(*) FROM clusters WHERE tenant_id = $1),
             instances  = (SELECT count(*) FROM instances WHERE tenant_id = $1),
             cpu_cores  = (SELECT coalesce(sum(cpu_cores), 0) FROM instances WHERE tenant_id = $1),
             memory_gb  = (SELECT coalesce(sum(memory_gb), 0) FROM instances WHERE tenant_id = $1),
             storage_gb = (SELECT coalesce(sum(storage_gb), 0) FROM instances WHERE tenant_id = $1),
             updated_at = now()
         WHERE tenant_id = $1",
    )
    .bind::<SqlUuid, _>(tenant)
    .execute(conn)
    .await
    .map(|_| ())
}
