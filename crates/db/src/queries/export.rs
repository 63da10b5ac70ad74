//! A tenant's data as a whole: health counts, NDJSON export, and usage
//! recomputed from the rows. Run in the tenant's own scope, so RLS
//! guarantees nothing of another tenant is read or written. (Import is not
//! here: `tenantry_ops::import` parses each row like the API and writes it
//! through the API's own queries.)

use crate::Conn;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use futures_util::StreamExt as _;
use tenantry_core::TenantId;
use tokio::sync::mpsc;

/// The tenant-scoped tables, parents before children (import order; a
/// purge goes the other way, see `schema::TENANT_TABLES`). Not the webhook
/// tables (sql/0016): an endpoint's signing secret never leaves the
/// database, and its deliveries are transient.
pub const TABLES: [&str; 7] = [
    "members",
    "users",
    "api_keys",
    "clusters",
    "instances",
    "events",
    "usage_history",
];

/// What an export carries of each table: named columns, never `*`, so a
/// column added later (a secret, say) stays out until someone adds it here.
/// No secret is ever listed: `api_keys` goes without `secret_hash` and
/// `hash_version` (an import never re-creates credentials anyway).
pub const EXPORTED_COLUMNS: [(&str, &str); 7] = [
    (
        "members",
        "tenant_id, id, subject, role, created_at, updated_at",
    ),
    (
        "users",
        "tenant_id, id, email, name, created_at, updated_at",
    ),
    (
        "api_keys",
        "tenant_id, id, name, prefix, created_at, last_used_at, revoked_at",
    ),
    (
        "clusters",
        "tenant_id, id, name, region, created_at, updated_at",
    ),
    (
        "instances",
        "tenant_id, id, cluster_id, name, cpu_cores, memory_gb, storage_gb, created_at, updated_at",
    ),
    ("events", "tenant_id, id, kind, actor, subject, data, at"),
    // The billing history (sql/0015), for the record: an import skips it
    // (the new tenant's history starts with its own charges).
    (
        "usage_history",
        "tenant_id, id, period_start, users, api_keys, clusters, instances, cpu_cores, \
         memory_gb, storage_gb, sampled_at, users_provisioned, users_released, \
         api_keys_provisioned, api_keys_released, clusters_provisioned, clusters_released, \
         instances_provisioned, instances_released, cpu_cores_provisioned, cpu_cores_released, \
         memory_gb_provisioned, memory_gb_released, storage_gb_provisioned, storage_gb_released",
    ),
];

/// What an export carries about the tenant besides its rows, before them:
/// `(section, from, columns)`, each line `{"table": <section>, "row": {...}}`
/// like a row, read by `tenantry_ops::import` first so that the rows after
/// them can rely on them. Named columns, as in [`EXPORTED_COLUMNS`]. The
/// place to add a section: a line here, and its parser in
/// `tenantry_ops::import`.
///
/// - `tenant_quotas`: the nine effective limits (one line).
/// - `tenant_settings`: the settings document (at most one line).
/// - `tenant_plan`: where the limits come from (one line): the plan by
///   NAME (`plan_name`; plans are per deployment, an id would mean
///   nothing elsewhere; null: no plan) and the limits an admin set for the
///   tenant (`overrides`).
/// - `domains`: the tenant's custom domains (a line each, by host name),
///   without the verification token: it is a secret, like a key's hash.
pub const EXPORTED_SECTIONS: [(&str, &str, &str); 4] = [
    (
        "tenant_quotas",
        "tenant_quotas",
        "tenant_id, max_users, max_api_keys, max_clusters, max_instances, max_cpu_cores, \
         max_memory_gb, max_storage_gb, requests_per_second, burst",
    ),
    (
        "tenant_settings",
        "tenant_settings",
        "tenant_id, version, document, updated_at, updated_by",
    ),
    (
        "tenant_plan",
        "tenant_quotas",
        "tenant_id, plan_name, overrides",
    ),
    (
        "domains",
        "domains",
        "tenant_id, hostname, verified_at, created_at",
    ),
];

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
#[derive(Debug, Clone)]
pub struct DataHealth {
    pub counts: BTreeMap<String, i64>,
    /// Sum of the rows' sizes (pg_column_size): an estimate without indexes.
    pub approx_bytes: i64,
    pub last_activity_at: Option<DateTime<Utc>>,
}

pub async fn health(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<DataHealth> {
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

/// Streams the tenant's sections ([`EXPORTED_SECTIONS`]), then every row
/// of the tenant, table by table, into `sink` as `(table, row)`. Stops
/// early, without error, when the receiver is gone (the client
/// disconnected). Run it in a snapshot for a consistent export.
pub async fn export(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    sink: mpsc::Sender<(&'static str, serde_json::Value)>,
) -> QueryResult<()> {
    for (table, from, columns) in EXPORTED_SECTIONS {
        // In the tenant's scope: RLS shows only its own domains.
        let mut rows = sql_query(format!(
            "SELECT to_jsonb(t) AS row
               FROM (SELECT {columns} FROM {from} WHERE tenant_id = $1) t ORDER BY t::text"
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
    for (table, columns) in EXPORTED_COLUMNS {
        let mut rows = sql_query(format!(
            "SELECT to_jsonb(t) AS row
               FROM (SELECT {columns} FROM {table} WHERE tenant_id = $1) t ORDER BY t.id"
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

#[derive(QueryableByName)]
struct Any {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    any: bool,
}

/// Whether the tenant has no row in any tenant table (the target of an
/// import must have none). Its usage history does not count: the sampler
/// writes it for every tenant, data or not.
pub async fn is_empty(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<bool> {
    for table in crate::schema::TENANT_TABLES
        .iter()
        .filter(|t| **t != "usage_history")
    {
        let found: Any = sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = $1) AS any"
        ))
        .bind::<SqlUuid, _>(tenant)
        .get_result(conn)
        .await?;
        if found.any {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sets the tenant's usage row to what its rows add up to.
pub async fn recompute_usage(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exported_table_names_its_columns_and_no_secret() {
        let tables: Vec<&str> = EXPORTED_COLUMNS.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, TABLES);
        for (table, columns) in EXPORTED_COLUMNS {
            assert!(!columns.contains('*'), "{table}");
            assert!(columns.starts_with("tenant_id, id"), "{table}");
            assert!(
                !columns.contains("secret") && !columns.contains("hash"),
                "{table}"
            );
        }
        // Webhook endpoints hold signing secrets: never exported.
        for table in ["webhook_endpoints", "webhook_deliveries"] {
            assert!(!tables.contains(&table), "{table}");
            assert!(
                !EXPORTED_SECTIONS
                    .iter()
                    .any(|(t, from, _)| *t == table || *from == table)
            );
        }
        for (table, _, columns) in EXPORTED_SECTIONS {
            assert!(!columns.contains('*'), "{table}");
            assert!(columns.starts_with("tenant_id"), "{table}");
            // A domain's verification token proves ownership: a secret.
            assert!(
                !columns.contains("token") && !columns.contains("secret"),
                "{table}"
            );
            assert!(!tables.contains(&table), "{table}");
        }
    }
}
