//! The retention sweeper: purges a deleted tenant's data after the period,
//! confined by RLS to that tenant, resumable after a crash, once per tenant
//! however many sweepers run, with a receipt.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::schema::TENANT_TABLES;
use tenantry_db::{Db, DbError, ScopedFutureExt};
use tenantry_tests::{TestApp, count_as, tenantry_bin};

async fn create(app: &TestApp, slug: &str) -> TenantId {
    let (status, t) = app
        .call(
            &app.admin_token(),
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t["id"].as_str().unwrap().parse().unwrap()
}

/// Rows in every tenant table, through the real API.
async fn populate(app: &TestApp, tenant: TenantId, n: usize) {
    let token = app.tenant_token(tenant);
    // A webhook endpoint: the users created below fill its outbox (the
    // worker is off in the harness, so they stay there); only them, so a
    // later lifecycle change adds no delivery to count.
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "https://hooks.example.test/x", "event_types": ["user.created"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    for i in 0..n {
        let (s1, _) = app
            .call(&token, Method::POST, "/v1/instances", Some(json!({"name": format!("vm{i}"), "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1})))
            .await;
        let (s2, _) = app
            .call(
                &token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com")})),
            )
            .await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    }
    // With an Idempotency-Key: a row in idempotency_keys too.
    let key = app
        .with_token(Method::POST, "/v1/api-keys", &token)
        .header("Idempotency-Key", "populate")
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), StatusCode::CREATED);
    assert_eq!(
        app.call(
            &token,
            Method::POST,
            "/v1/members",
            Some(json!({"subject": "someone", "role": "viewer"}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    // A settings document: the purge removes it with the rest.
    assert_eq!(
        app.admin_call(
            Method::PUT,
            &format!("/v1/admin/tenants/{tenant}/settings"),
            Some(json!({"document": {"theme": "dark"}}))
        )
        .await
        .0,
        StatusCode::OK
    );
}

async fn counts(db: &Db, tenant: TenantId) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in TENANT_TABLES {
        counts.insert(*table, count_as(db, tenant, table).await);
    }
    counts
}

async fn act(app: &TestApp, tenant: TenantId, action: &str) -> (StatusCode, Value) {
    app.call(
        &app.admin_token(),
        Method::POST,
        &format!("/v1/admin/tenants/{tenant}/{action}"),
        None,
    )
    .await
}

async fn sweep(app: &TestApp, dry_run: bool) -> Value {
    let (status, report) = app
        .call(
            &app.admin_token(),
            Method::POST,
            &format!("/v1/admin/retention/sweep?dry_run={dry_run}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

#[tokio::test]
async fn a_deleted_tenant_is_purged_after_the_period_and_no_other_tenant_is_touched() {
    let app = TestApp::spawn_with_retention(Duration::from_secs(2)).await;
    let (a, b) = (
        create(&app, "tenant-a").await,
        create(&app, "tenant-b").await,
    );
    populate(&app, a, 3).await;
    populate(&app, b, 2).await;
    let (before_a, before_b) = (counts(&app.db, a).await, counts(&app.db, b).await);
    assert!(
        before_a.values().all(|n| *n > 0),
        "rows in every table: {before_a:?}"
    );
    assert_eq!(act(&app, a, "delete").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let report = sweep(&app, false).await;
    let last_batch = report["pacing"]["last_batch"].as_i64().unwrap();
    assert!(last_batch > 0, "{report}");
    let after_first = app.metrics().await;
    assert!(
        after_first.contains(&format!("tenantry_sweep_batch_rows {last_batch}\n")),
        "{after_first}"
    );
    let purged = report["purged"].as_array().unwrap();
    assert_eq!(purged.len(), 1, "{report}");
    let receipt = &purged[0];
    assert_eq!(receipt["tenant_id"], a.to_string());
    assert_eq!(receipt["slug"], "tenant-a");
    assert!(
        receipt["purged_at"].is_string()
            && receipt["deleted_at"].is_string()
            && receipt["sweeper"].is_string()
    );
    for (table, n) in &before_a {
        assert_eq!(receipt["rows_removed"][table].as_i64(), Some(*n), "{table}");
        assert_eq!(
            count_as(&app.db, a, table).await,
            0,
            "{table} still has rows of A"
        );
    }
    assert_eq!(counts(&app.db, b).await, before_b, "B untouched");

    // The tombstone stays; data, quotas and usage are gone; a receipt and an audit entry remain.
    let admin = app.admin_token();
    let (_, tombstone) = app
        .call(&admin, Method::GET, &format!("/v1/admin/tenants/{a}"), None)
        .await;
    assert_eq!(
        (
            tombstone["status"].as_str(),
            tombstone["purged_at"].is_string()
        ),
        (Some("deleted"), true)
    );
    let (_, health) = app
        .call(
            &admin,
            Method::GET,
            &format!("/v1/admin/tenants/{a}/health"),
            None,
        )
        .await;
    assert!(
        health["counts"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 0),
        "{health}"
    );
    assert!(health["usage"].is_null() && health["limits"].is_null());
    let export = app
        .with_token(
            Method::GET,
            &format!("/v1/admin/tenants/{a}/export"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        export.status(),
        StatusCode::GONE,
        "a purged tenant's data is gone"
    );
    assert_eq!(export.headers()["content-type"], "application/problem+json");
    let problem: Value = export.json().await.unwrap();
    assert_eq!(
        (problem["code"].as_str(), problem["status"].as_u64()),
        (Some("tenant_purged"), Some(410))
    );
    let (status, _) = act(&app, a, "restore").await;
    assert_eq!(status, StatusCode::CONFLICT, "no restore after a purge");
    let (_, runs) = app
        .call(&admin, Method::GET, "/v1/admin/retention/runs", None)
        .await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    let (_, audit) = app
        .call(
            &admin,
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={a}"),
            None,
        )
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "tenant.purged")
    );
    // No cooling-off in tests: the slug was released and can be taken again.
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "tenant-a", "name": "again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // A second sweep finds nothing to do.
    assert!(
        sweep(&app, false).await["purged"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tenantry_tenants_purged_total 1"),
        "{metrics}"
    );
    // The pacer's work shows in the metrics as the sweep reported it.
    let pacing = &report["pacing"];
    let batches = pacing["batches"].as_u64().unwrap();
    assert!(batches > 0, "{report}");
    assert!(
        metrics.contains(&format!("tenantry_sweep_batches_total {batches}\n")),
        "{metrics}"
    );
    for signal in ["batch_latency", "backend_writes", "request_latency"] {
        let n = pacing["backoffs"][signal].as_u64().unwrap();
        let line = format!("tenantry_sweep_backoffs_total{{signal=\"{signal}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} missing: {metrics}");
    }
    assert!(
        metrics.contains("# TYPE tenantry_sweep_paused_seconds counter"),
        "{metrics}"
    );
    // The second sweep ran no batch.
    assert!(
        metrics.contains("tenantry_sweep_batch_rows 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn nothing_is_purged_early_under_legal_hold_after_restore_or_in_a_dry_run() {
    // "early" is deleted after the others' period has run out and must
    // still be inside its own when the real sweep runs: a period long
    // enough that a loaded machine (Citus, a build beside it) does not
    // reach it between the two.
    let app = TestApp::spawn_with_retention(Duration::from_secs(6)).await;
    let held = create(&app, "held").await;
    let restored = create(&app, "restored").await;
    let aged = create(&app, "aged").await;
    for t in [held, restored, aged] {
        populate(&app, t, 1).await;
        assert_eq!(act(&app, t, "delete").await.0, StatusCode::OK);
    }
    let admin = app.admin_token();
    let (status, _) = app
        .call(
            &admin,
            Method::PATCH,
            &format!("/v1/admin/tenants/{held}"),
            Some(json!({"legal_hold": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(act(&app, restored, "restore").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(6200)).await;
    let early = create(&app, "early").await;
    populate(&app, early, 1).await;
    act(&app, early, "delete").await;
    let snapshot = [
        (held, counts(&app.db, held).await),
        (restored, counts(&app.db, restored).await),
        (aged, counts(&app.db, aged).await),
        (early, counts(&app.db, early).await),
    ];

    // A dry run reports what would go and removes nothing.
    let dry = sweep(&app, true).await;
    let would: Vec<&Value> = dry["would_purge"].as_array().unwrap().iter().collect();
    assert_eq!(would.len(), 1, "{dry}");
    assert_eq!(would[0]["tenant_id"], aged.to_string());
    assert_eq!(would[0]["rows"]["instances"], 1);
    for (t, c) in &snapshot {
        assert_eq!(&counts(&app.db, *t).await, c);
    }
    // The real sweep takes only the aged, unheld, still-deleted tenant.
    let report = sweep(&app, false).await;
    let purged: Vec<&str> = report["purged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(purged, [aged.to_string()]);
    for (t, c) in &snapshot[..2] {
        assert_eq!(
            &counts(&app.db, *t).await,
            c,
            "held or restored tenant lost data"
        );
    }
    assert_eq!(
        &counts(&app.db, early).await,
        &snapshot[3].1,
        "purged before its period"
    );
}

/// A deleted tenant with `events` event rows, inserted in bulk.
async fn big_deleted_tenant(app: &TestApp, slug: &str, events: i64) -> TenantId {
    let tenant = create(app, slug).await;
    app.db
        .platform()
        .provision(tenant, |conn| {
            async move {
                tenantry_tests::insert_events(conn, tenant, events).await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(act(app, tenant, "delete").await.0, StatusCode::OK);
    tenant
}

fn sweeper(app: &TestApp, batch_size: u32) -> Command {
    let mut command = Command::new(tenantry_bin());
    command
        .args(["sweep", "--once"])
        .envs(app.test_db.binary_env())
        .env("TENANTRY__RETENTION__PERIOD", "1s")
        .env("TENANTRY__RETENTION__BATCH_SIZE", batch_size.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

async fn open_run_progress(app: &TestApp, tenant: TenantId) -> Option<i64> {
    let (_, runs) = app
        .call(
            &app.admin_token(),
            Method::GET,
            "/v1/admin/retention/runs?limit=100",
            None,
        )
        .await;
    runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant_id"] == tenant.to_string() && r["purged_at"].is_null())
        .map(|r| r["rows_removed"]["events"].as_i64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeper_killed_mid_purge_resumes_with_exact_counts_and_one_receipt() {
    let app = TestApp::spawn().await;
    let tenant = big_deleted_tenant(&app, "big", 20_000).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Small batches: a thousand short transactions, so the kill lands mid-purge.
    let mut child = sweeper(&app, 20).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let killed_at = loop {
        if let Some(done) = open_run_progress(&app, tenant).await.filter(|n| *n > 0) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break done;
        }
        assert!(Instant::now() < deadline, "the purge never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweeper finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let progress = open_run_progress(&app, tenant)
        .await
        .expect("the receipt stays open");
    assert!(progress >= killed_at && progress < 20_000, "{progress}");
    assert_eq!(
        count_as(&app.db, tenant, "events").await,
        20_000 - progress,
        "progress matches what is gone"
    );
    // Once a purge has started, restore is refused.
    let (status, problem) = act(&app, tenant, "restore").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );

    let output = sweeper(&app, 1000).output().unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["purged"][0]["rows_removed"]["events"], 20_000,
        "{report}"
    );
    assert_eq!(count_as(&app.db, tenant, "events").await, 0);
    let (_, runs) = app
        .call(
            &app.admin_token(),
            Method::GET,
            "/v1/admin/retention/runs?limit=100",
            None,
        )
        .await;
    let receipts = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tenant_id"] == tenant.to_string())
        .count();
    assert_eq!(receipts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweepers_on_one_backlog_purge_every_tenant_exactly_once() {
    let app = TestApp::spawn().await;
    let mut tenants = Vec::new();
    for i in 0..5 {
        tenants.push(big_deleted_tenant(&app, &format!("backlog-{i}"), 1_000).await);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = sweeper(&app, 100).spawn().unwrap();
    let second = sweeper(&app, 100).spawn().unwrap();
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(first.status.success() && second.status.success());
    let mut purged: Vec<String> = Vec::new();
    let mut removed = 0;
    for output in [&first.stdout, &second.stdout] {
        let report: Value = serde_json::from_slice(output).unwrap();
        for receipt in report["purged"].as_array().unwrap() {
            purged.push(receipt["tenant_id"].as_str().unwrap().to_owned());
            removed += receipt["rows_removed"]["events"].as_i64().unwrap();
        }
    }
    purged.sort();
    let mut expected: Vec<String> = tenants.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(
        purged, expected,
        "each tenant purged exactly once between the two"
    );
    assert_eq!(removed, 5_000);
    let (_, runs) = app
        .call(
            &app.admin_token(),
            Method::GET,
            "/v1/admin/retention/runs?limit=100",
            None,
        )
        .await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_pause_paces_a_purge_without_changing_what_it_removes() {
    let app = TestApp::spawn().await;
    let tenant = big_deleted_tenant(&app, "paced", 60).await;
    let before = counts(&app.db, tenant).await["events"];
    assert!(before >= 60);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // 60 rows in batches of 10 with 300 ms after each: at least 1.8 s. (A
    // lower bound only: a loaded machine makes it slower, never faster.)
    let started = std::time::Instant::now();
    let output = sweeper(&app, 10)
        .env("TENANTRY__RETENTION__BATCH_PAUSE", "300ms")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(output.status.success());
    assert!(took >= Duration::from_millis(1_800), "not paced: {took:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let receipt = &report["purged"][0];
    assert_eq!(receipt["tenant_id"], tenant.to_string());
    assert_eq!(receipt["rows_removed"]["events"], before);
    assert_eq!(counts(&app.db, tenant).await.values().sum::<i64>(), 0);
}
