//! The pipelined unit of work: BEGIN, the context and the work's statements
//! go out in one flight, and nothing about that may change what commits.
//! A statement failing in the middle of a flight leaves nothing behind, the
//! connection goes back idle (not inside a transaction), the gate's verdict
//! still wins over what the work found, and the order holds on a
//! connection whose statement cache is cold.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::Method;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::{Conn, Db, DbError, ScopedFutureExt};
use tenantry_tests::{TestApp, TestDb, count_as, create_tenant};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

#[derive(QueryableByName)]
struct State {
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
}

async fn backend_pid(db: &Db, tenant: TenantId) -> i32 {
    db.tenant(tenant)
        .run(|conn| {
            async move {
                let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
                    .get_result(conn)
                    .await?;
                Ok::<_, DbError>(row.pid)
            }
            .scope_boxed()
        })
        .await
        .expect("read the backend pid")
}

/// The server's view of a backend: `idle`, `idle in transaction`, …
/// (waits a little for a state to settle: a read's COMMIT completes just
/// after its result is handed back).
async fn settled_state(superuser: &mut AsyncPgConnection, pid: i32) -> Option<String> {
    let mut state = None;
    for _ in 0..50 {
        let row: Option<State> =
            diesel::sql_query("SELECT state FROM pg_stat_activity WHERE pid = $1")
                .bind::<Integer, _>(pid)
                .get_result(superuser)
                .await
                .ok();
        state = row.and_then(|r| r.state);
        if state.as_deref() == Some("idle") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state
}

async fn insert_event(conn: &mut Conn<'_>, tenant: TenantId, kind: &str) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO events (tenant_id, id, kind, actor) VALUES ($1, $2, $3, 'pipeline-test')",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<Text, _>(kind)
    .execute(conn)
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_failing_statement_mid_flight_leaves_nothing_and_the_connection_comes_back_idle() {
    let test_db = TestDb::new().await;
    // One connection: every unit of work below runs on the same backend.
    let db = test_db.db(1);
    let tenant = create_tenant(&db, "acme").await;
    let pid = backend_pid(&db, tenant).await;

    let failed = db
        .tenant(tenant)
        .writing()
        .run(move |conn| {
            async move {
                // Three statements in one flight; the middle one fails.
                let (mut a, mut b, mut c): (Conn<'_>, Conn<'_>, Conn<'_>) =
                    (&**conn, &**conn, &**conn);
                futures_util::future::try_join3(
                    insert_event(&mut a, tenant, "pipeline.before"),
                    async {
                        diesel::sql_query("SELECT 1 / 0 AS pid")
                            .execute(&mut b)
                            .await
                            .map_err(DbError::from)
                    },
                    insert_event(&mut c, tenant, "pipeline.after"),
                )
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await;
    assert!(failed.is_err(), "division by zero must fail the unit");

    let mut superuser = AsyncPgConnection::establish(&test_db.superuser_url())
        .await
        .expect("superuser connection");
    assert_eq!(
        settled_state(&mut superuser, pid).await.as_deref(),
        Some("idle"),
        "the connection went back inside a transaction"
    );
    // Nothing of the flight committed, and the same connection (pooled
    // again, not discarded) serves the next unit in a fresh transaction.
    assert_eq!(count_as(&db, tenant, "events").await, 0);
    assert_eq!(backend_pid(&db, tenant).await, pid);
}

#[tokio::test]
async fn the_context_is_set_before_the_work_even_on_a_cold_statement_cache() {
    let test_db = TestDb::new().await;
    let setup = test_db.db(1);
    let tenant = create_tenant(&setup, "acme").await;
    drop(setup);
    // A new pool: its connection has prepared nothing yet, so every
    // statement of the first flight waits on a prepare round trip.
    let db = test_db.db(1);
    let seen = db
        .tenant(tenant)
        .run(|conn| {
            async move {
                let row: Setting =
                    diesel::sql_query("SELECT current_setting('app.tenant_id', true) AS value")
                        .get_result(conn)
                        .await?;
                Ok::<_, DbError>(row.value)
            }
            .scope_boxed()
        })
        .await
        .expect("a unit of work on a cold connection");
    assert_eq!(seen, Some(tenant.to_string()));
}

#[tokio::test]
async fn a_read_only_unit_cannot_write() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1);
    let tenant = create_tenant(&db, "acme").await;
    let wrote = db
        .tenant(tenant)
        .read_only()
        .run(move |conn| {
            async move { insert_event(conn, tenant, "pipeline.read_only").await }.scope_boxed()
        })
        .await;
    assert!(wrote.is_err(), "a READ ONLY transaction accepted an INSERT");
    assert_eq!(count_as(&db, tenant, "events").await, 0);
}

#[tokio::test]
async fn reads_answer_before_their_commit_and_the_connection_is_reused_only_after_it() {
    let app = TestApp::builder().pool(1).spawn().await;
    let tenant = app.create_tenant("acme").await;
    let token = app.tenant_token(tenant);
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (status, _) = app.call(&token, Method::GET, "/v1/instances", None).await;
        assert_eq!(status, 200);
    }
    // Every one of those reads ran on the single pooled connection; none
    // found it still inside the previous read's transaction (it would have
    // warned and joined it, and the pid below would show it busy).
    let mut superuser = AsyncPgConnection::establish(&app.test_db.superuser_url())
        .await
        .expect("superuser connection");
    #[derive(QueryableByName)]
    struct Backend {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let backends: Vec<Backend> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE usename = 'tenantry_app' AND pid <> pg_backend_pid()",
    )
    .load(&mut superuser)
    .await
    .expect("list the service's backends");
    for b in &backends {
        pids.insert(b.pid);
        let state = settled_state(&mut superuser, b.pid).await;
        assert_ne!(
            state.as_deref(),
            Some("idle in transaction"),
            "pid {}",
            b.pid
        );
    }
    assert!(!pids.is_empty(), "the service's backends were not found");
}

async fn usage(app: &TestApp, token: &str) -> Value {
    app.call(token, Method::GET, "/v1/quotas", None).await.1["usage"].clone()
}

async fn instance_events(app: &TestApp, token: &str) -> usize {
    let (_, events) = app
        .call(token, Method::GET, "/v1/events?limit=100", None)
        .await;
    events["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|e| e["kind"] == "instance.created")
            .count()
    })
}

#[tokio::test]
async fn a_create_refused_mid_flight_leaves_no_row_no_charge_and_no_event() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let token = app.tenant_token(tenant);

    // The row's insert fails (no such cluster) while the quota charge and
    // the event are in the same flight behind it.
    let (status, body) = app
        .call(
            &token,
            Method::POST,
            "/v1/instances",
            Some(json!({"name": "vm", "cluster_id": uuid::Uuid::now_v7(), "cpu_cores": 1, "memory_gb": 1})),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_eq!(usage(&app, &token).await["instances"], 0);
    assert_eq!(usage(&app, &token).await["cpu_cores"], 0);
    assert_eq!(instance_events(&app, &token).await, 0);

    let (status, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "c", "region": "eu"})),
        )
        .await;
    assert_eq!(status, 201, "{cluster}");
    let create = json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1});
    let (status, body) = app
        .call(&token, Method::POST, "/v1/instances", Some(create.clone()))
        .await;
    assert_eq!(status, 201, "{body}");
    // The same name again: the insert fails first, so the answer is the
    // conflict, and the charge and event sent with it roll back.
    let (status, body) = app
        .call(&token, Method::POST, "/v1/instances", Some(create))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(usage(&app, &token).await["instances"], 1);
    assert_eq!(usage(&app, &token).await["cpu_cores"], 1);
    assert_eq!(instance_events(&app, &token).await, 1);
}

#[tokio::test]
async fn a_suspended_tenants_write_sent_with_its_gate_creates_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let token = app.tenant_token(tenant);
    let (status, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "c", "region": "eu"})),
        )
        .await;
    assert_eq!(status, 201, "{cluster}");
    app.set_status(tenant, "suspended").await;

    // A machine token's work is sent right behind the gate: the insert
    // reaches the server before the service has read the gate's answer.
    let (status, body) = app
        .call(
            &token,
            Method::POST,
            "/v1/instances",
            Some(
                json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1}),
            ),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // The gate also wins over what the work found (a missing instance).
    let (status, body) = app
        .call(
            &token,
            Method::GET,
            &format!("/v1/instances/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");

    app.set_status(tenant, "active").await;
    assert_eq!(usage(&app, &token).await["instances"], 0);
    assert_eq!(count_as(&app.db, tenant, "instances").await, 0);
    assert_eq!(instance_events(&app, &token).await, 0);
}

#[tokio::test]
async fn a_first_statement_that_skips_the_statement_queue_still_runs_inside_the_transaction() {
    let test_db = TestDb::new().await;
    let setup = test_db.db(1);
    let tenant = create_tenant(&setup, "acme").await;
    drop(setup);
    // A new pool, a new connection: `batch_execute` does not wait behind
    // statements still being prepared, so BEGIN and the context must
    // already be prepared (the pool's post-create hook) to be sent first.
    let db = test_db.db(1);
    db.tenant(tenant)
        .writing()
        .run(move |conn| {
            async move {
                tenantry_tests::insert_events(conn, tenant, 3).await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("a simple-protocol insert as a unit's first statement");
    assert_eq!(count_as(&db, tenant, "events").await, 3);
}
