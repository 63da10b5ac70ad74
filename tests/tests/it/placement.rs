//! Dedicated placement (`/v1/admin/tenants/{id}/placement`): on a Citus
//! cluster a tenant gets a shard group of its own and moves to a named
//! worker with all its rows, and keeps serving; on plain PostgreSQL both
//! routes answer `409 citus_required`. Every test asks the database which
//! it is (and that it is what the run says: `make test` or `make
//! test-citus`), and holds each kind to its own behaviour.

use std::collections::BTreeSet;

use diesel::sql_types::{Bool, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_tests::{
    TestApp, citus, citus_workers, count_as, db_message, platform_context_sql, seed_events,
    tenant_context_sql,
};

/// The tables distributed by `tenant_id` (`citus.rs` places them): a
/// tenant's shard group holds one shard of each.
fn tenant_tables() -> Vec<&'static str> {
    tenantry_db::citus::TABLES
        .iter()
        .filter(|(_, p)| *p == tenantry_db::citus::Placement::Distributed)
        .map(|(name, _)| *name)
        .collect()
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    yes: bool,
}

/// Whether the test's database has the citus extension (asked as the
/// owner), checked against what the run says it is.
async fn has_citus(app: &TestApp) -> bool {
    let mut owner = app.test_db.owner_conn().await;
    let Flag { yes } =
        sql_query("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS yes")
            .get_result(&mut owner)
            .await
            .unwrap();
    assert_eq!(
        yes,
        citus(),
        "the database and TENANTRY_TEST_CITUS disagree on Citus"
    );
    yes
}

fn path(tenant: TenantId) -> String {
    format!("/v1/admin/tenants/{tenant}/placement")
}

/// `POST path` with `token`, which must create: the created resource.
async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = app.call(token, Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

/// A problem+json answer: its status and body.
async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

fn assert_citus_required(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "citus_required", "{body}");
    assert_eq!(body["type"], "https://tenantry.dev/problems/citus_required");
    assert!(body["detail"].as_str().unwrap().contains("Citus"), "{body}");
}

/// The `tenant.placed` audit entries of `tenant`, oldest first.
async fn placed_entries(app: &TestApp, tenant: TenantId) -> Vec<Value> {
    let (status, page) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={tenant}&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenant.placed")
        .cloned()
        .collect()
}

/// Every shard of the placement is on its `node`, one per tenant table.
fn assert_one_shard_group(placement: &Value) {
    let node = placement["node"].as_str().expect("a node holds the group");
    let shards = placement["shards"].as_array().unwrap();
    let tables: BTreeSet<&str> = shards
        .iter()
        .map(|s| s["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, tenant_tables().into_iter().collect(), "{placement}");
    assert_eq!(shards.len(), tenant_tables().len(), "{placement}");
    for shard in shards {
        assert_eq!(shard["node"], node, "{placement}");
        assert!(shard["shard_id"].as_i64().unwrap() > 0, "{placement}");
    }
    assert!(
        citus_workers().iter().any(|w| w == node),
        "{node} is not a worker of {:?}",
        citus_workers()
    );
    let hash = placement["hash"].as_i64().unwrap();
    let range = placement["hash_range"].as_array().unwrap();
    assert!(range[0].as_i64().unwrap() <= hash && hash <= range[1].as_i64().unwrap());
}

/// Row counts of `tenant` in every tenant table, in its own scope.
async fn rows_of(app: &TestApp, tenant: TenantId) -> Vec<i64> {
    let db = app.test_db.db(2);
    let mut counts = Vec::new();
    for table in tenant_tables() {
        counts.push(count_as(&db, tenant, table).await);
    }
    counts
}

#[tokio::test]
async fn placement_shows_the_tenants_shard_group_on_citus_and_is_409_citus_required_without() {
    let app = TestApp::spawn().await;
    let (acme, _) = app.tenant_with("acme", json!({})).await;
    let response = app
        .with_token(Method::GET, &path(acme), &app.admin_token())
        .send()
        .await
        .unwrap();
    if !has_citus(&app).await {
        let (status, body) = problem(response).await;
        assert_citus_required(status, &body);
        let text = body.to_string();
        assert!(!text.contains("pg_") && !text.contains("SELECT"), "{text}");
        return;
    }
    assert_eq!(response.status(), StatusCode::OK);
    let placement: Value = response.json().await.unwrap();
    assert_eq!(placement["tenant_id"], acme.to_string());
    assert_eq!(placement["distributed"], true);
    // A fresh tenant shares its shard's hash range with its neighbours.
    assert_eq!(placement["isolated"], false, "{placement}");
    assert_one_shard_group(&placement);
    // By slug, the same.
    let (status, by_slug) = app
        .admin_call(Method::GET, "/v1/admin/tenants/acme/placement", None)
        .await;
    assert_eq!((status, &by_slug), (StatusCode::OK, &placement));
}

#[tokio::test]
async fn an_isolated_tenant_moves_to_the_other_worker_with_its_rows_and_keeps_serving() {
    let app = TestApp::spawn().await;
    let (acme, acme_token) = app.tenant_with("acme", json!({})).await;
    let (globex, globex_token) = app.tenant_with("globex", json!({})).await;
    let cluster = create(
        &app,
        &acme_token,
        "/v1/clusters",
        json!({"name": "web", "region": "eu-west-1"}),
    )
    .await;
    for name in ["vm-1", "vm-2"] {
        let instance = json!({"name": name, "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1, "storage_gb": 1});
        create(&app, &acme_token, "/v1/instances", instance).await;
    }
    create(
        &app,
        &globex_token,
        "/v1/clusters",
        json!({"name": "db", "region": "us-east-1"}),
    )
    .await;
    seed_events(&app.test_db, acme, 300).await;
    let rows_before = rows_of(&app, acme).await;
    let globex_before = rows_of(&app, globex).await;

    if !has_citus(&app).await {
        let (status, body) = app
            .admin_call(
                Method::POST,
                &path(acme),
                Some(json!({"isolate": true, "node": "127.0.0.1:5432", "reason": "dedicated"})),
            )
            .await;
        assert_citus_required(status, &body);
        assert!(placed_entries(&app, acme).await.is_empty());
        assert_eq!(rows_of(&app, acme).await, rows_before);
        return;
    }
    let workers = citus_workers();
    assert!(
        workers.len() >= 2,
        "the Citus test cluster has two workers: {workers:?}"
    );

    // 1. Isolate where it is.
    let (_, before) = app.admin_call(Method::GET, &path(acme), None).await;
    let (status, isolated) = app
        .admin_call(
            Method::POST,
            &path(acme),
            Some(json!({"isolate": true, "reason": "noisy"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{isolated}");
    assert_eq!(
        (
            &isolated["changed"],
            &isolated["isolated"],
            &isolated["node"]
        ),
        (&json!(true), &json!(true), &before["node"]),
        "{isolated}"
    );
    assert_eq!(
        isolated["hash_range"],
        json!([isolated["hash"], isolated["hash"]])
    );
    assert_one_shard_group(&isolated);
    // Asked again: nothing to do, nothing audited.
    let (status, again) = app
        .admin_call(Method::POST, &path(acme), Some(json!({"isolate": true})))
        .await;
    assert_eq!(
        (status, &again["changed"]),
        (StatusCode::OK, &json!(false)),
        "{again}"
    );

    // 2. Move it to the other worker.
    let from = isolated["node"].as_str().unwrap().to_owned();
    let to = workers.iter().find(|w| **w != from).unwrap().clone();
    let (status, moved) = app
        .admin_call(
            Method::POST,
            &path(acme),
            Some(json!({"isolate": true, "node": to, "reason": "dedicated"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (&moved["changed"], &moved["isolated"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(moved["node"], to, "{moved}");
    assert_one_shard_group(&moved);
    let (status, shown) = app.admin_call(Method::GET, &path(acme), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&shown["node"], &shown["isolated"]),
        (&json!(to), &json!(true))
    );

    // 3. Audited, with where it was and where it went.
    let entries = placed_entries(&app, acme).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0]["actor"], "test-admin");
    assert_eq!(entries[0]["reason"], "noisy");
    assert_eq!(
        (
            &entries[0]["before"]["isolated"],
            &entries[0]["after"]["isolated"]
        ),
        (&json!(false), &json!(true))
    );
    assert_eq!(entries[1]["reason"], "dedicated");
    assert_eq!(
        (&entries[1]["before"]["node"], &entries[1]["after"]["node"]),
        (&json!(from), &json!(to))
    );

    // 4. Every row came along; the tenant reads and writes as before, and
    //    its former neighbour too.
    assert_eq!(rows_of(&app, acme).await, rows_before);
    assert_eq!(rows_of(&app, globex).await, globex_before);
    let (status, clusters) = app
        .call(&acme_token, Method::GET, "/v1/clusters", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clusters["items"][0]["id"], cluster["id"], "{clusters}");
    let (_, instances) = app
        .call(&acme_token, Method::GET, "/v1/instances", None)
        .await;
    assert_eq!(
        instances["items"].as_array().unwrap().len(),
        2,
        "{instances}"
    );
    create(
        &app,
        &acme_token,
        "/v1/clusters",
        json!({"name": "web-2", "region": "eu-west-1"}),
    )
    .await;
    let (_, quotas) = app.call(&acme_token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quotas["usage"]["clusters"], 2, "{quotas}");
    create(
        &app,
        &globex_token,
        "/v1/clusters",
        json!({"name": "db-2", "region": "us-east-1"}),
    )
    .await;
}

#[tokio::test]
async fn placement_refuses_bad_input_with_4xx_problems_and_moves_nothing() {
    let app = TestApp::spawn().await;
    let (acme, acme_token) = app.tenant_with("acme", json!({})).await;
    let on_citus = has_citus(&app).await;
    let post = |body: Value| {
        app.with_token(Method::POST, &path(acme), &app.admin_token())
            .json(&body)
            .send()
    };
    // Checked before the database is asked, on any database.
    for (body, field) in [
        (json!({"isolate": false}), "isolate"),
        (json!({}), "isolate"),
        (json!({"isolate": "yes"}), "isolate"),
        (json!({"isolate": true, "node": "worker-1"}), "node"),
        (json!({"isolate": true, "node": "127.0.0.1:0"}), "node"),
        (json!({"isolate": true, "node": "a b:5432"}), "node"),
        (json!({"isolate": true, "shard": 1}), "shard"),
        (
            json!({"isolate": true, "reason": "x".repeat(1001)}),
            "reason",
        ),
    ] {
        let (status, problem) = problem(post(body.clone()).await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {problem}"
        );
        assert_eq!(problem["field"], field, "{body} -> {problem}");
    }
    let unknown = TenantId::new();
    for method in [Method::GET, Method::POST] {
        let (status, body) = problem(
            app.with_token(method.clone(), &path(unknown), &app.admin_token())
                .json(&json!({"isolate": true}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::NOT_FOUND, &json!("not_found"))
        );
        // A tenant's token never reaches the admin plane; no token is 401.
        let (status, _) = problem(
            app.with_token(method.clone(), &path(acme), &acme_token)
                .json(&json!({"isolate": true}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = problem(
            app.client
                .request(method, app.url(&path(acme)))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A well-formed address that names no worker holding shards: the
    // coordinator (it holds none) and a port nothing listens on.
    let coordinator = format!(
        "127.0.0.1:{}",
        std::env::var("TENANTRY_TEST_PG_PORT").unwrap()
    );
    for node in [coordinator, "127.0.0.1:1".to_owned()] {
        let (status, body) =
            problem(post(json!({"isolate": true, "node": node})).await.unwrap()).await;
        if on_citus {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{node}: {body}");
            assert_eq!(body["field"], "node");
        } else {
            assert_citus_required(status, &body);
        }
    }
    assert!(placed_entries(&app, acme).await.is_empty());
    if on_citus {
        let (_, placement) = app.admin_call(Method::GET, &path(acme), None).await;
        assert_eq!(placement["isolated"], false, "{placement}");
    }
}

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Text)]
    outcome: String,
}

/// A superuser connection to the test's own database (on the coordinator).
async fn superuser_conn(app: &TestApp) -> AsyncPgConnection {
    let url = std::env::var("TENANTRY_TEST_PG_SUPERUSER_URL").unwrap();
    let (server, _) = url.rsplit_once('/').unwrap();
    AsyncPgConnection::establish(&format!("{server}/{}", app.test_db.name))
        .await
        .unwrap()
}

#[tokio::test]
async fn tenant_place_runs_only_in_the_platform_context_and_only_if_the_owner_bypasses_rls() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let mut conn = app.test_db.app_conn().await;
    if !has_citus(&app).await {
        // Without Citus there is no definer that could move anything.
        let Flag { yes } =
            sql_query("SELECT to_regprocedure('tenant_place(uuid,text,integer)') IS NULL AS yes")
                .get_result(&mut conn)
                .await
                .unwrap();
        assert!(yes, "tenant_place exists on plain PostgreSQL");
        return;
    }
    let call = format!("SELECT outcome FROM tenant_place('{acme}', NULL, NULL)");
    // No context, a tenant's own context, a forged platform proof: refused.
    for context in [
        "SELECT 1".to_owned(),
        tenant_context_sql(acme),
        "SELECT set_platform_admin_context('00.forged')".to_owned(),
    ] {
        conn.batch_execute(&format!("BEGIN; {context};"))
            .await
            .unwrap();
        let err = sql_query(&call)
            .get_result::<Outcome>(&mut conn)
            .await
            .err();
        conn.batch_execute("ROLLBACK").await.unwrap();
        let err = err.unwrap_or_else(|| panic!("tenant_place ran after {context:?}"));
        assert!(db_message(&err).contains("platform-admin context"), "{err}");
    }

    // Without BYPASSRLS for the owner, Citus's copies (they run as the
    // owner) would see no rows: refused before any work. The role is
    // changed inside a transaction that rolls back, on this node only.
    let mut su = superuser_conn(&app).await;
    su.batch_execute(&format!(
        "BEGIN;
         SET LOCAL citus.enable_alter_role_propagation = off;
         ALTER ROLE tenantry_owner NOBYPASSRLS;
         SET LOCAL ROLE tenantry_app;
         {};",
        platform_context_sql()
    ))
    .await
    .unwrap();
    let refused = sql_query(&call).get_result::<Outcome>(&mut su).await;
    su.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(refused.unwrap().outcome, "owner_subject_to_rls");
    let (_, placement) = app.admin_call(Method::GET, &path(acme), None).await;
    assert_eq!(placement["isolated"], false, "{placement}");
}
