//! Zero-downtime rolling deploys (issue #14): migrate first (expand only),
//! then roll the replicas. So a replica must serve a schema that a later
//! release's `migrate` expanded, refuse (503, saying nothing sensitive) one
//! that lacks or altered one of its own migrations, and on SIGTERM go
//! unready while it still serves, before it stops. The previous release's
//! real binary against this schema: scripts/compat.sh.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenantry_db::Compatibility;
use tenantry_db::migrate;
use tenantry_tests::process::Server;
use tenantry_tests::{TestApp, TestDb, citus};

/// The version a later release's migration is recorded under.
const LATER: &str = "9000_later_release_expand";

/// What a later release's `migrate` would leave: an expand-only change
/// (tests/fixtures/later-release-expand.sql; its Citus form here) and the
/// record of a migration this build does not know.
async fn expand_like_a_later_release(test_db: &TestDb) {
    let mut owner = test_db.owner_conn().await;
    if citus() {
        // One statement at a time (Citus propagates DDL as the text it is
        // sent), the table distributed with the tenant tables before its
        // foreign keys, and the policy in its subquery-free form.
        for statement in [
            "ALTER TABLE instances ADD COLUMN note text",
            "ALTER TABLE clusters ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb",
            "CREATE INDEX instances_tenant_created ON instances (tenant_id, created_at)",
            "CREATE TABLE instance_tags (tenant_id uuid NOT NULL, id uuid NOT NULL,
                 instance_id uuid NOT NULL, tag text NOT NULL, PRIMARY KEY (tenant_id, id))",
            "SELECT create_distributed_table('instance_tags', 'tenant_id', colocate_with => 'tenant_quotas')",
            "ALTER TABLE instance_tags ADD CONSTRAINT instance_tags_instance FOREIGN KEY (tenant_id, instance_id)
                 REFERENCES instances (tenant_id, id) ON DELETE CASCADE",
            "ALTER TABLE instance_tags ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE instance_tags FORCE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_isolation ON instance_tags
                 USING (tenant_id = context_tenant_verified())
                 WITH CHECK (tenant_id = context_tenant_verified())",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON instance_tags TO tenantry_service",
        ] {
            owner.batch_execute(statement).await.unwrap();
        }
    } else {
        owner
            .batch_execute(include_str!("../../fixtures/later-release-expand.sql"))
            .await
            .unwrap();
    }
    owner
        .batch_execute(&format!(
            "INSERT INTO tenantry_migrations (version, checksum) VALUES ('{LATER}', 'not a migration of this build')"
        ))
        .await
        .unwrap();
}

/// A 503 problem from `/readyz`: its body, checked to name nothing of the
/// schema (no version, no checksum, no SQL).
async fn not_ready(app: &TestApp) -> Value {
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    let text = body.to_string();
    for secret in migrate::embedded_versions().into_iter().chain([
        LATER,
        "tampered",
        "checksum",
        "SELECT",
        "tenantry_migrations",
    ]) {
        assert!(!text.contains(secret), "/readyz told {secret}: {text}");
    }
    body
}

#[tokio::test]
async fn a_schema_a_later_release_expanded_is_ready_and_passes_the_guard() {
    let test_db = TestDb::new().await;
    expand_like_a_later_release(&test_db).await;
    let db = test_db.db(2);
    assert_eq!(
        db.schema_state().await.unwrap().compatibility(),
        Compatibility::Newer {
            unknown: vec![LATER.to_owned()]
        }
    );
    // The guard (and so `serve`) accepts the new tenant table and its policy.
    assert_eq!(db.check_isolation().await.unwrap(), vec![]);
    // The real binary starts on it (the guard runs before it listens) and
    // is ready.
    let server = Server::start(&test_db, &[]).await;
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", server.log_text());
    drop(server);
    // And the app serves it: ready, and a tenant's writes to the tables the
    // later release widened still work.
    let app = TestApp::spawn_on(test_db).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ready");
    let (_, token) = app.tenant_with("later", json!({})).await;
    let (status, cluster) = app
        .call(
            &token,
            reqwest::Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu-west-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cluster}");
    let (status, instance) = app
        .call(
            &token,
            reqwest::Method::POST,
            "/v1/instances",
            Some(json!({"name": "web-1", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{instance}");
}

#[tokio::test]
async fn a_schema_missing_one_of_this_builds_migrations_is_not_ready_even_with_newer_ones() {
    let test_db = TestDb::new().await;
    expand_like_a_later_release(&test_db).await;
    let known = migrate::embedded_versions();
    let gone = known[known.len() - 1];
    test_db
        .owner_conn()
        .await
        .batch_execute(&format!(
            "DELETE FROM tenantry_migrations WHERE version = '{gone}'"
        ))
        .await
        .unwrap();
    assert_eq!(
        test_db.db(1).schema_state().await.unwrap().compatibility(),
        Compatibility::Behind {
            missing: vec![gone.to_owned()]
        }
    );
    let app = TestApp::spawn_on(test_db).await;
    let body = not_ready(&app).await;
    assert_eq!(body["code"], "unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("lacks a migration") && detail.contains("tenantry migrate"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_known_migration_applied_with_other_contents_is_not_ready() {
    let test_db = TestDb::new().await;
    let first = migrate::embedded_versions()[0];
    test_db
        .owner_conn()
        .await
        .batch_execute(&format!(
            "UPDATE tenantry_migrations SET checksum = 'tampered' WHERE version = '{first}'"
        ))
        .await
        .unwrap();
    assert_eq!(
        test_db.db(1).schema_state().await.unwrap().compatibility(),
        Compatibility::Edited {
            versions: vec![first.to_owned()]
        }
    );
    let app = TestApp::spawn_on(test_db).await;
    let body = not_ready(&app).await;
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("applied with other contents"),
        "{body}"
    );
}

/// A newer schema is no free pass: the guard judges the catalog, so a
/// later release's table without RLS is still named.
#[tokio::test]
async fn the_guard_still_refuses_a_newer_schemas_table_without_row_level_security() {
    let test_db = TestDb::new().await;
    expand_like_a_later_release(&test_db).await;
    let mut owner = test_db.owner_conn().await;
    for statement in [
        "CREATE TABLE rogue_notes (tenant_id uuid NOT NULL, body text)",
        "GRANT SELECT ON rogue_notes TO tenantry_service",
    ] {
        owner.batch_execute(statement).await.unwrap();
    }
    let violations = test_db.db(1).check_isolation().await.unwrap();
    assert!(
        violations.iter().any(|v| v.object == "table rogue_notes"
            && v.problem.contains("row level security is not enabled")),
        "{violations:?}"
    );
}

/// A tenant made through the admin API of a running binary.
async fn tenant(server: &Server, slug: &str) -> tenantry_core::TenantId {
    let response = server
        .client
        .post(server.url("/v1/admin/tenants"))
        .bearer_auth(server.admin_token())
        .json(&json!({"slug": slug, "name": slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// SIGTERM: `/readyz` turns 503 `shutting_down` at once, while `/healthz`,
/// reads and writes (on new connections: the client keeps none) are still
/// served through `server.shutdown_drain`; then the server stops and
/// exits 0 within drain + shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_makes_readiness_503_and_serves_through_the_drain_then_exits_0() {
    const DRAIN: Duration = Duration::from_secs(3);
    let test_db = TestDb::new().await;
    let mut server = Server::start(&test_db, &[("TENANTRY__SERVER__SHUTDOWN_DRAIN", "3s")]).await;
    let acme = tenant(&server, "drain").await;
    let token = server.tenant_token(acme);
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    server.terminate();
    let signalled = Instant::now();
    let body: Value = loop {
        let response = server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers().get("retry-after").unwrap(), "1");
            break response.json().await.unwrap();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "/readyz still {} 2 s after SIGTERM",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["code"], "shutting_down", "{body}");
    assert_eq!(body["status"], 503);

    let healthz = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    let read = server
        .client
        .get(server.url("/v1/tenant"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let write = server
        .client
        .post(server.url("/v1/clusters"))
        .bearer_auth(&token)
        .json(&json!({"name": "during-drain", "region": "eu-west-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::CREATED);
    let served_until = signalled.elapsed();
    assert!(
        served_until < DRAIN,
        "the checks took {served_until:?}, past the drain: they prove nothing"
    );
    assert!(server.try_exit().is_none(), "exited during the drain");

    // Drain (3 s) + shutdown timeout (10 s, tests/src/process.rs) + slack.
    let status = server
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("the server exits after the drain");
    assert!(
        status.success(),
        "exit status {status}: {}",
        server.log_text()
    );
    assert!(
        signalled.elapsed() >= DRAIN,
        "exited {:?} after SIGTERM, before the drain was over",
        signalled.elapsed()
    );
}

/// Ctrl-C at a terminal stops at once: SIGINT skips the drain.
#[tokio::test]
async fn sigint_skips_the_drain() {
    let test_db = TestDb::new().await;
    let mut server = Server::start(&test_db, &[("TENANTRY__SERVER__SHUTDOWN_DRAIN", "60s")]).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("SIGINT stops at once, not after the 60 s drain");
    assert!(
        status.success(),
        "exit status {status}: {}",
        server.log_text()
    );
}
