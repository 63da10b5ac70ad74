//! Citus (issue #13): what holds on a distributed cluster, and how plain
//! PostgreSQL differs. Every test runs in both suites (`make test`, `make
//! test-citus`) and asserts each side.

use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::{
    TestApp, TestDb, citus, context_key, count_rows, create_instances, create_tenant, db_message,
    run_tenantry,
};

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The app's tenant pool refuses a statement that would reach every shard
/// (the tests run with `tenant_multi_shard = "error"`): a tenant-plane query
/// that forgot its tenant fails the suite instead of fanning out.
#[tokio::test]
async fn a_tenant_statement_that_would_reach_every_shard_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = create_tenant(&app.db, "acme").await;
    let outcome = app
        .db
        .tenant(tenant)
        .run(|conn| {
            async move {
                let level: Setting = diesel::sql_query(
                    "SELECT current_setting('citus.multi_task_query_log_level') AS value",
                )
                .get_result(conn)
                .await?;
                let all: Result<N, _> = diesel::sql_query("SELECT count(*) AS n FROM users")
                    .get_result(conn)
                    .await;
                Ok::<_, DbError>((level.value, all.map(|n| n.n).map_err(|e| db_message(&e))))
            }
            .scope_boxed()
        })
        .await;
    let (level, all) = outcome.unwrap();
    assert_eq!(
        level, "error",
        "the pool sets the level on every connection"
    );
    if citus() {
        let refused = all.unwrap_err();
        assert!(refused.contains("multi-task query"), "{refused}");
        // Named by tenant, the same count is one shard and fine.
        assert_eq!(tenantry_tests::count_as(&app.db, tenant, "users").await, 0);
    } else {
        assert_eq!(all, Ok(0));
    }
}

/// The guard checks the placement: a tenant table left out of it is named,
/// and `serve` would refuse to start (the wrong placement of a known table:
/// unit tests in crates/db/src/citus.rs). On plain PostgreSQL `migrate`
/// distributes nothing.
#[tokio::test]
async fn the_guard_refuses_a_half_distributed_schema() {
    let test_db = TestDb::new().await;
    if !citus() {
        let (ok, _stdout, stderr) = run_tenantry(&test_db, &["migrate"]);
        assert!(ok && !stderr.contains("citus"), "{stderr}");
        return;
    }
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(ok, "{stderr}");
    // A new tenant table that no one placed (a migration without its line
    // in sql/citus.sql): Citus keeps it on the coordinator, unsharded.
    // One statement at a time: Citus propagates DDL as the text it is
    // sent, and refuses a text of several.
    let mut owner = test_db.owner_conn().await;
    for statement in [
        "CREATE TABLE notes (tenant_id uuid NOT NULL REFERENCES tenants (id), id uuid NOT NULL,
                             PRIMARY KEY (tenant_id, id))",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE notes FORCE ROW LEVEL SECURITY",
        "CREATE POLICY tenant_isolation ON notes
             USING (tenant_id = context_tenant_verified())
             WITH CHECK (tenant_id = context_tenant_verified())",
    ] {
        owner.batch_execute(statement).await.unwrap();
    }
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("table notes") && stderr.contains("has no placement"),
        "{stderr}"
    );
}

/// A tenant's rows live on one shard group: on every tenant table its id
/// maps to shards of one co-location group, all on one node.
#[tokio::test]
async fn a_tenants_rows_live_together_on_one_node() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2);
    let tenant = create_tenant(&db, "acme").await;
    create_instances(&db, tenant, 2).await;
    if !citus() {
        assert_eq!(tenantry_tests::count_as(&db, tenant, "instances").await, 2);
        return;
    }
    #[derive(diesel::QueryableByName)]
    struct Where {
        #[diesel(sql_type = BigInt)]
        nodes: i64,
        #[diesel(sql_type = BigInt)]
        groups: i64,
        #[diesel(sql_type = BigInt)]
        tables: i64,
    }
    let mut su = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &test_db.superuser_url(),
    )
    .await
    .unwrap();
    let placed: Where = diesel::sql_query(format!(
        "SELECT count(DISTINCT p.groupid) AS nodes, count(DISTINCT d.colocationid) AS groups,
                count(*) AS tables
           FROM pg_dist_partition d
           JOIN pg_dist_shard s ON s.shardid = get_shard_id_for_distribution_column(d.logicalrelid, '{tenant}')
           JOIN pg_dist_placement p ON p.shardid = s.shardid
          WHERE d.partmethod = 'h'"
    ))
    .get_result(&mut su)
    .await
    .unwrap();
    // Every distributed table of the schema, as `citus.rs` places them.
    let distributed = tenantry_db::citus::TABLES
        .iter()
        .filter(|(_, p)| *p == tenantry_db::citus::Placement::Distributed)
        .count();
    assert_eq!(
        (placed.nodes, placed.groups, placed.tables),
        (1, 1, i64::try_from(distributed).unwrap())
    );
}

/// The context reaches the workers only through `SET LOCAL` (with
/// `citus.propagate_set_commands = 'local'`): set with `set_config`, even
/// with its proof, it never gets there, and the tenant's rows read as none
/// — closed, not open. On plain PostgreSQL both ways reach the policies.
#[tokio::test]
async fn a_context_set_with_set_config_reaches_no_worker() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2);
    let tenant = create_tenant(&db, "acme").await;
    create_instances(&db, tenant, 3).await;
    let mut conn = test_db.app_conn().await;
    conn.batch_execute(&format!(
        "BEGIN;
         SELECT set_config('app.tenant_id', '{tenant}', true),
                set_config('app.tenant_proof', '{}', true);",
        context_key().tenant_proof(tenant)
    ))
    .await
    .unwrap();
    let seen = count_rows(&mut &conn, "instances").await.unwrap();
    conn.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(seen, if citus() { 0 } else { 3 });
}
