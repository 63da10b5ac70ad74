//! Citus: where each table lives (sql/citus.sql places them; ARCHITECTURE.md
//! says why), and the guard's checks that the live cluster matches — so the
//! server refuses to start on a half-distributed schema.

use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::guard::Violation;

/// How a table is placed on a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A copy on every node: read by every request and by the policies on
    /// every shard, written rarely.
    Reference,
    /// Sharded by `tenant_id`, co-located with every other tenant table:
    /// one tenant's rows, on every table, live on one shard.
    Distributed,
    /// On the coordinator only (a Citus local table).
    Coordinator,
    /// Not in Citus's metadata at all (the migration bookkeeping).
    Unplaced,
}

impl Placement {
    fn describe(self) -> &'static str {
        match self {
            Self::Reference => "a reference table",
            Self::Distributed => "distributed by tenant_id in the tenant tables' co-location group",
            Self::Coordinator => "a Citus local table on the coordinator",
            Self::Unplaced => "a plain table outside Citus's metadata",
        }
    }
}

/// Every table of the schema and its placement (as `regclass::text`).
pub const TABLES: &[(&str, Placement)] = &[
    ("tenantry_private.context_keys", Placement::Reference),
    ("context_proofs", Placement::Reference),
    ("plans", Placement::Reference),
    ("tenants", Placement::Reference),
    ("domains", Placement::Reference),
    ("accounts", Placement::Reference),
    ("account_quotas", Placement::Coordinator),
    ("account_usage", Placement::Coordinator),
    ("tenant_quotas", Placement::Distributed),
    ("tenant_usage", Placement::Distributed),
    ("users", Placement::Distributed),
    ("api_keys", Placement::Distributed),
    ("clusters", Placement::Distributed),
    ("instances", Placement::Distributed),
    ("events", Placement::Distributed),
    ("members", Placement::Distributed),
    ("idempotency_keys", Placement::Distributed),
    ("admin_idempotency_keys", Placement::Coordinator),
    ("console_sessions", Placement::Coordinator),
    ("tenant_settings", Placement::Distributed),
    ("webhook_endpoints", Placement::Distributed),
    ("webhook_deliveries", Placement::Distributed),
    ("platform_webhook_endpoints", Placement::Coordinator),
    ("platform_webhook_deliveries", Placement::Coordinator),
    ("usage_history", Placement::Distributed),
    ("audit_events", Placement::Coordinator),
    ("retention_runs", Placement::Coordinator),
    ("tenantry_migrations", Placement::Unplaced),
];

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table: String,
    /// `distributed`, `reference`, `local`, or NULL when not in Citus's
    /// metadata.
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    column: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    colocation: Option<i64>,
}

#[derive(QueryableByName)]
struct ShardRow {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = BigInt)]
    shards: i64,
    #[diesel(sql_type = BigInt)]
    unplaced: i64,
}

#[derive(QueryableByName)]
struct ShardPolicyRow {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    shard: String,
    #[diesel(sql_type = Nullable<Text>)]
    result: Option<String>,
    /// What the table itself has: `<rls enabled and forced>:<policies>`.
    #[diesel(sql_type = Text)]
    expected: String,
}

#[derive(QueryableByName)]
struct SettingRow {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// The Citus checks of the isolation guard, on the service's connection.
/// `newer_schema`: the database has migrations this binary does not know
/// (a later release's, in a rolling deploy), so a table missing from
/// [`TABLES`] is that release's and passes when Citus has placed it.
pub(crate) async fn placement(
    conn: &mut AsyncPgConnection,
    newer_schema: bool,
) -> Result<Vec<Violation>, diesel::result::Error> {
    // Asking every shard takes a command per shard (hundreds at the default
    // shard count): more than the service's statement_timeout on a busy
    // cluster. A transaction of its own lets the guard wait longer.
    conn.transaction(async |conn| {
        conn.batch_execute("SET LOCAL statement_timeout = '120s'")
            .await?;
        placement_checks(conn, newer_schema).await
    })
    .await
}

async fn placement_checks(
    conn: &mut AsyncPgConnection,
    newer_schema: bool,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let mut found = Vec::new();
    let setting: SettingRow =
        sql_query("SELECT current_setting('citus.propagate_set_commands', true) AS value")
            .get_result(conn)
            .await?;
    if setting.value.as_deref() != Some("local") {
        found.push(violation(
            "setting citus.propagate_set_commands",
            "is not 'local' on the service's connection: SET LOCAL would not reach the workers",
        ));
    }

    let tables: Vec<TableRow> = sql_query(
        "SELECT c.oid::regclass::text AS table,
                CASE WHEN d.partmethod = 'h' THEN 'distributed'
                     WHEN d.repmodel = 't' THEN 'reference'
                     WHEN d.logicalrelid IS NOT NULL THEN 'local' END AS kind,
                CASE WHEN d.partmethod = 'h' THEN column_to_column_name(d.logicalrelid, d.partkey) END AS column,
                d.colocationid::bigint AS colocation
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_dist_partition d ON d.logicalrelid = c.oid
          WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
            AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                               AND e.objid = c.oid AND e.deptype = 'e')
          ORDER BY 1",
    )
    .load(conn)
    .await?;
    found.extend(judge_tables(&tables, newer_schema));

    // Every shard of every distributed or reference table has a placement
    // on an active node, and each carries forced RLS and the table's
    // policies (Citus propagates both; a shard created by hand would not).
    let shards: Vec<ShardRow> = sql_query(
        "SELECT s.logicalrelid::regclass::text AS table, count(*) AS shards,
                count(*) FILTER (WHERE NOT EXISTS (
                    SELECT 1 FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
                     WHERE p.shardid = s.shardid AND n.isactive)) AS unplaced
           FROM pg_dist_shard s
          GROUP BY s.logicalrelid
          ORDER BY 1",
    )
    .load(conn)
    .await?;
    for row in &shards {
        if row.unplaced > 0 {
            found.push(violation(
                format!("table {}", row.table),
                format!(
                    "{} of its {} shards have no placement on an active node",
                    row.unplaced, row.shards
                ),
            ));
        }
    }
    let on_shards: Vec<ShardPolicyRow> = sql_query(
        "SELECT d.logicalrelid::regclass::text AS table, r.shardid::text AS shard, r.result,
                (t.relrowsecurity AND t.relforcerowsecurity)::text || ':' ||
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = t.oid) AS expected
           FROM pg_dist_partition d
           JOIN pg_class t ON t.oid = d.logicalrelid,
                LATERAL run_command_on_shards(d.logicalrelid,
                    $cmd$SELECT (c.relrowsecurity AND c.relforcerowsecurity)::text || ':' ||
                                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
                           FROM pg_class c WHERE c.oid = '%s'::regclass$cmd$) r
          WHERE d.logicalrelid IN (SELECT logicalrelid FROM pg_dist_shard)
            AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = d.logicalrelid AND c.relrowsecurity)",
    )
    .load(conn)
    .await?;
    for row in &on_shards {
        if row.result.as_deref() != Some(row.expected.as_str()) {
            found.push(violation(
                format!("shard {} of table {}", row.shard, row.table),
                format!(
                    "does not carry the table's row level security and policies (forced:policies {} on the table, {:?} on the shard)",
                    row.expected,
                    row.result.as_deref().unwrap_or("nothing")
                ),
            ));
        }
    }
    Ok(found)
}

fn violation(object: impl Into<String>, problem: impl Into<String>) -> Violation {
    Violation {
        object: object.into(),
        problem: problem.into(),
    }
}

fn judge_tables(tables: &[TableRow], newer_schema: bool) -> Vec<Violation> {
    let mut found = Vec::new();
    // The tenant tables' co-location group, taken from the known ones.
    let tenant_group = tables
        .iter()
        .find(|r| {
            r.kind.as_deref() == Some("distributed")
                && TABLES
                    .iter()
                    .any(|(t, p)| *t == r.table && *p == Placement::Distributed)
        })
        .map(|r| r.colocation);
    let mut colocation = None;
    for row in tables {
        let name = format!("table {}", row.table);
        let Some(&(_, expected)) = TABLES.iter().find(|(t, _)| *t == row.table) else {
            // A later release's table: placed by that release's citus.sql
            // (a reference or coordinator table, or a tenant table in the
            // tenant tables' group). RLS is checked for every table anyway.
            let placed = match (row.kind.as_deref(), row.column.as_deref()) {
                (Some("reference" | "local"), _) => true,
                (Some("distributed"), Some("tenant_id")) => {
                    tenant_group.is_none_or(|g| g == row.colocation)
                }
                _ => false,
            };
            if !(newer_schema && placed) {
                found.push(violation(
                    name,
                    "has no placement in sql/citus.sql (and crates/db/src/citus.rs): a new table must be placed before the schema is served",
                ));
            }
            continue;
        };
        let ok = match (expected, row.kind.as_deref()) {
            (Placement::Reference, Some("reference"))
            | (Placement::Coordinator, Some("local"))
            | (Placement::Unplaced, None) => true,
            (Placement::Distributed, Some("distributed")) => {
                let first = *colocation.get_or_insert(row.colocation);
                row.column.as_deref() == Some("tenant_id") && row.colocation == first
            }
            _ => false,
        };
        if !ok {
            found.push(violation(
                name,
                format!(
                    "must be {} but is {}: the schema is not (fully) distributed; run `tenantry migrate`",
                    expected.describe(),
                    match (row.kind.as_deref(), row.column.as_deref()) {
                        (None, _) => "not in Citus's metadata".to_owned(),
                        (Some(kind), Some(column)) => format!(
                            "{kind} by {column} (co-location {})",
                            row.colocation.unwrap_or(0)
                        ),
                        (Some(kind), None) => kind.to_owned(),
                    }
                ),
            ));
        }
    }
    for (table, _) in TABLES {
        if !tables.iter().any(|r| r.table == *table) {
            found.push(violation(format!("table {table}"), "is missing"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(table: &str, kind: Option<&str>, column: Option<&str>, colocation: i64) -> TableRow {
        TableRow {
            table: table.to_owned(),
            kind: kind.map(str::to_owned),
            column: column.map(str::to_owned),
            colocation: Some(colocation),
        }
    }

    fn placed() -> Vec<TableRow> {
        TABLES
            .iter()
            .map(|(t, p)| match p {
                Placement::Reference => row(t, Some("reference"), None, 1),
                Placement::Distributed => row(t, Some("distributed"), Some("tenant_id"), 2),
                Placement::Coordinator => row(t, Some("local"), None, 0),
                Placement::Unplaced => row(t, None, None, 0),
            })
            .collect()
    }

    #[test]
    fn the_placed_schema_passes() {
        assert!(judge_tables(&placed(), false).is_empty());
    }

    #[test]
    fn a_half_distributed_schema_is_refused() {
        let mut tables = placed();
        let users = tables.iter_mut().find(|r| r.table == "users").unwrap();
        users.kind = Some("local".to_owned());
        users.column = None;
        let v = judge_tables(&tables, false);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].problem.contains("not (fully) distributed"));
    }

    #[test]
    fn tenant_tables_share_one_colocation_group_and_the_tenant_column() {
        let mut tables = placed();
        tables
            .iter_mut()
            .find(|r| r.table == "events")
            .unwrap()
            .colocation = Some(9);
        tables
            .iter_mut()
            .find(|r| r.table == "clusters")
            .unwrap()
            .column = Some("id".to_owned());
        assert_eq!(judge_tables(&tables, false).len(), 2);
    }

    #[test]
    fn an_unknown_table_is_refused() {
        let mut tables = placed();
        tables.push(row("invoices", None, None, 0));
        assert_eq!(judge_tables(&tables, false).len(), 1);
        // Unplaced, it is refused on a newer schema too.
        assert_eq!(judge_tables(&tables, true).len(), 1);
    }

    #[test]
    fn a_newer_release_table_passes_once_placed() {
        for (kind, column, colocation) in [
            (Some("distributed"), Some("tenant_id"), 2),
            (Some("reference"), None, 1),
            (Some("local"), None, 0),
        ] {
            let mut tables = placed();
            tables.push(row("invoices", kind, column, colocation));
            assert!(judge_tables(&tables, true).is_empty(), "{kind:?}");
            // Without a newer migration recorded, it is someone's stray table.
            assert_eq!(judge_tables(&tables, false).len(), 1, "{kind:?}");
        }
        // Distributed, but not with the tenant tables (or not by tenant_id).
        for (column, colocation) in [(Some("tenant_id"), 9), (Some("id"), 2)] {
            let mut tables = placed();
            tables.push(row("invoices", Some("distributed"), column, colocation));
            assert_eq!(judge_tables(&tables, true).len(), 1, "{column:?}");
        }
    }
}
