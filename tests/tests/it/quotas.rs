//! Quotas hold exactly under concurrency, across replicas: checked and
//! taken in the same transaction as the write, by one conditional UPDATE.

use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_db::ScopedFutureExt;
use tenantry_tests::TestApp;

async fn usage(app: &TestApp, token: &str) -> Value {
    app.call(token, Method::GET, "/v1/quotas", None).await.1["usage"].clone()
}

async fn count(app: &TestApp, token: &str, path: &str) -> usize {
    let mut total = 0;
    let mut cursor = String::new();
    for _ in 0..100 {
        let (_, page) = app
            .call(
                token,
                Method::GET,
                &format!("{path}?limit=100{cursor}"),
                None,
            )
            .await;
        total += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    total
}

/// Three replicas of the real server sharing one database.
async fn three_replicas() -> Vec<TestApp> {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_with(
        first.test_db.clone(),
        &first.test_db.settings(4),
        first.auth.clone(),
    )
    .await;
    let third = TestApp::spawn_with(
        first.test_db.clone(),
        &first.test_db.settings(4),
        first.auth.clone(),
    )
    .await;
    vec![first, second, third]
}

/// Fires `bodies` at `path` round-robin across the replicas, all at once;
/// returns the statuses and problem codes.
async fn race(
    replicas: &[TestApp],
    token: &str,
    path: &str,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, Value)> {
    let calls = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| replicas[i % replicas.len()].call(token, Method::POST, path, Some(body)));
    futures_util::future::join_all(calls).await
}

fn tally(results: &[(StatusCode, Value)]) -> (usize, usize) {
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::FORBIDDEN && b["code"] == "quota_exceeded")
        .count();
    (created, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_user_creates_on_three_replicas_admit_exactly_the_limit() {
    let replicas = three_replicas().await;
    let (_, token) = replicas[0]
        .tenant_with("acme", json!({"max_users": 25}))
        .await;
    let bodies = (0..200)
        .map(|i| json!({"email": format!("u{i}@example.com")}))
        .collect();
    let results = race(&replicas, &token, "/v1/users", bodies).await;
    assert_eq!(
        tally(&results),
        (25, 175),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let refusal = &results
        .iter()
        .find(|(s, _)| *s == StatusCode::FORBIDDEN)
        .unwrap()
        .1;
    assert_eq!(
        (
            refusal["resource"].as_str(),
            refusal["limit"].as_i64(),
            refusal["used"].as_i64(),
            refusal["requested"].as_i64()
        ),
        (Some("users"), Some(25), Some(25), Some(1))
    );
    assert_eq!(usage(&replicas[1], &token).await["users"], 25);
    assert_eq!(count(&replicas[2], &token, "/v1/users").await, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_instances_admit_exactly_what_the_cpu_limit_allows() {
    let replicas = three_replicas().await;
    let (_, token) = replicas[0]
        .tenant_with("acme", json!({"max_cpu_cores": 50, "max_memory_gb": 1000}))
        .await;
    let (_, cluster) = replicas[0]
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    let bodies = (0..200)
        .map(|i| json!({"name": format!("vm{i}"), "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 3}))
        .collect();
    let results = race(&replicas, &token, "/v1/instances", bodies).await;
    assert_eq!(tally(&results), (25, 175));
    let used = usage(&replicas[0], &token).await;
    assert_eq!(
        (
            used["instances"].as_i64(),
            used["cpu_cores"].as_i64(),
            used["memory_gb"].as_i64()
        ),
        (Some(25), Some(50), Some(75))
    );
    assert_eq!(count(&replicas[1], &token, "/v1/instances").await, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_and_deletes_never_pass_the_limit_and_end_equal_to_the_rows() {
    let replicas = three_replicas().await;
    let (_, token) = replicas[0]
        .tenant_with("acme", json!({"max_clusters": 10}))
        .await;
    let mut existing = Vec::new();
    for i in 0..10 {
        let (_, c) = replicas[0]
            .call(
                &token,
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": format!("old{i}"), "region": "eu"})),
            )
            .await;
        existing.push(c["id"].as_str().unwrap().to_owned());
    }
    let creates = (0..60).map(|i| {
        let app = &replicas[i % 3];
        let token = &token;
        async move {
            app.call(
                token,
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": format!("new{i}"), "region": "eu"})),
            )
            .await
            .0
        }
    });
    let deletes = existing.iter().enumerate().map(|(i, id)| {
        let app = &replicas[(i + 1) % 3];
        let token = &token;
        async move {
            app.call(token, Method::DELETE, &format!("/v1/clusters/{id}"), None)
                .await
                .0
        }
    });
    let watcher = async {
        let mut peak = 0;
        for _ in 0..20 {
            peak = peak.max(
                usage(&replicas[2], &token).await["clusters"]
                    .as_i64()
                    .unwrap(),
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        peak
    };
    let (created, deleted, peak) = tokio::join!(
        futures_util::future::join_all(creates),
        futures_util::future::join_all(deletes),
        watcher
    );
    assert!(deleted.iter().all(|s| *s == StatusCode::NO_CONTENT));
    assert!(
        created
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::FORBIDDEN)
    );
    assert!(peak <= 10, "usage peaked at {peak}");
    let rows = count(&replicas[0], &token, "/v1/clusters").await;
    let admitted = created
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    // Every old cluster is gone, so what is left is exactly what was admitted.
    assert_eq!(rows, admitted);
    assert!(admitted <= 10);
    assert_eq!(
        usage(&replicas[1], &token).await["clusters"]
            .as_u64()
            .unwrap() as usize,
        rows
    );
}

#[tokio::test]
async fn validation_and_uniqueness_come_before_the_quota_and_a_failed_create_takes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app
        .tenant_with("acme", json!({"max_users": 1, "max_instances": 1}))
        .await;
    assert_eq!(
        app.call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "ada@example.com"}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    // At the limit: a duplicate is still a 409, a bad email still a 422.
    let (status, body) = app
        .call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "ADA@example.com"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A create that fails on its foreign key leaves usage as it was.
    let (status, _) = app
        .call(&token, Method::POST, "/v1/instances", Some(json!({"name": "x", "cluster_id": uuid::Uuid::now_v7(), "cpu_cores": 1, "memory_gb": 1})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let used = usage(&app, &token).await;
    assert_eq!(
        (
            used["users"].as_i64(),
            used["instances"].as_i64(),
            used["cpu_cores"].as_i64()
        ),
        (Some(1), Some(0), Some(0))
    );
}

#[tokio::test]
async fn instance_creates_on_a_missing_cluster_are_all_422_however_many_run_at_once() {
    // The row, its quota charge and its event go out in one flight; the
    // row's foreign-key violation must be the answer even when the later
    // statements' refusals ("transaction aborted") are read first.
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant_with("acme", json!({"max_instances": 100})).await;
    let creates = (0..64).map(|i| {
        let body = json!({"name": format!("vm{i}"), "cluster_id": uuid::Uuid::now_v7(), "cpu_cores": 1, "memory_gb": 1});
        let (app, token) = (&app, &token);
        async move { app.call(token, Method::POST, "/v1/instances", Some(body)).await }
    });
    let answers = futures_util::future::join_all(creates).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let used = usage(&app, &token).await;
    assert_eq!(
        (used["instances"].as_i64(), used["cpu_cores"].as_i64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn a_resize_pays_only_the_difference_and_a_delete_gives_everything_back() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant_with("acme", json!({"max_cpu_cores": 8})).await;
    let (_, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    let (_, vm) = app
        .call(&token, Method::POST, "/v1/instances", Some(json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 4, "memory_gb": 2, "storage_gb": 10})))
        .await;
    let path = format!("/v1/instances/{}", vm["id"].as_str().unwrap());
    assert_eq!(
        app.call(&token, Method::PATCH, &path, Some(json!({"cpu_cores": 8})))
            .await
            .0,
        StatusCode::OK
    );
    let (status, refusal) = app
        .call(&token, Method::PATCH, &path, Some(json!({"cpu_cores": 9})))
        .await;
    assert_eq!(
        (
            status,
            refusal["requested"].as_i64(),
            refusal["used"].as_i64()
        ),
        (StatusCode::FORBIDDEN, Some(1), Some(8))
    );
    assert_eq!(
        app.call(&token, Method::PATCH, &path, Some(json!({"cpu_cores": 2})))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(usage(&app, &token).await["cpu_cores"], 2);
    assert_eq!(
        app.call(&token, Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let used = usage(&app, &token).await;
    for resource in ["instances", "cpu_cores", "memory_gb", "storage_gb"] {
        assert_eq!(used[resource], 0, "{resource}");
    }
}

#[tokio::test]
async fn lowering_a_limit_below_usage_keeps_the_rows_blocks_growth_and_is_reported() {
    let app = TestApp::spawn().await;
    let (id, token) = app.tenant_with("acme", json!({})).await;
    for i in 0..3 {
        app.call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": format!("u{i}@example.com")})),
        )
        .await;
    }
    let path = format!("/v1/admin/tenants/{id}/quotas");
    let (status, quotas) = app
        .call(
            &app.admin_token(),
            Method::PATCH,
            &path,
            Some(json!({"limits": {"max_users": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    assert_eq!(quotas["over_limit"], json!(["users"]));
    assert_eq!(quotas["limits"]["max_clusters"], 1000, "PATCH merges");
    assert_eq!(count(&app, &token, "/v1/users").await, 3);
    let (status, refusal) = app
        .call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(
        (status, refusal["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("quota_exceeded"))
    );
    // PUT replaces every limit and needs every key.
    let (status, problem) = app
        .call(
            &app.admin_token(),
            Method::PUT,
            &path,
            Some(json!({"limits": {"max_users": 5}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let mut all = quotas["limits"].clone();
    all["max_users"] = json!(5);
    let (status, replaced) = app
        .call(
            &app.admin_token(),
            Method::PUT,
            &path,
            Some(json!({"limits": all})),
        )
        .await;
    assert_eq!(
        (status, replaced["over_limit"].clone()),
        (StatusCode::OK, json!([]))
    );
    let (status, _) = app
        .call(
            &app.admin_token(),
            Method::PATCH,
            &path,
            Some(json!({"limits": {"max_users": -1}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, log) = app
        .call(
            &app.admin_token(),
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={id}"),
            None,
        )
        .await;
    let changes: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "quota.updated")
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        (
            changes[0]["before"]["max_users"].as_i64(),
            changes[0]["after"]["max_users"].as_i64()
        ),
        (Some(1000), Some(1))
    );
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant_with("acme", json!({"max_instances": 1})).await;
    let (_, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    let body = json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 4});
    let (status, rehearsal) = app
        .call(
            &token,
            Method::POST,
            "/v1/instances?dry_run=true",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rehearsal}");
    assert_eq!(rehearsal["dry_run"], true);
    assert_eq!(rehearsal["would_create"]["cpu_cores"], 2);
    assert_eq!(
        (
            rehearsal["usage_after"]["instances"].as_i64(),
            rehearsal["usage_after"]["cpu_cores"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(count(&app, &token, "/v1/instances").await, 0);
    assert_eq!(usage(&app, &token).await["instances"], 0);
    // Now really create it; a second dry run no longer fits, and says why.
    assert_eq!(
        app.call(&token, Method::POST, "/v1/instances", Some(body))
            .await
            .0,
        StatusCode::CREATED
    );
    let other = json!({"name": "vm2", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1});
    let (status, refusal) = app
        .call(
            &token,
            Method::POST,
            "/v1/instances?dry_run=true",
            Some(other),
        )
        .await;
    assert_eq!(
        (status, refusal["resource"].as_str()),
        (StatusCode::FORBIDDEN, Some("instances"))
    );
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters?dry_run=true",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "uniqueness is checked too");
    let (status, key) = app
        .call(
            &token,
            Method::POST,
            "/v1/api-keys?dry_run=true",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(key["would_create"].get("secret").is_none());
    assert_eq!(count(&app, &token, "/v1/api-keys").await, 0);
    let (_, events) = app.call(&token, Method::GET, "/v1/events", None).await;
    assert_eq!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "instance.created")
            .count(),
        1
    );
}

/// Each replica caches a tenant's limits; a change made through another
/// replica reaches it with the tenant's next admitted request (the change
/// moves the registry row the gate reads anyway).
#[tokio::test]
async fn a_limit_lowered_on_one_replica_holds_on_another_from_its_next_request() {
    let replicas = three_replicas().await;
    let (tenant, token) = replicas[0]
        .tenant_with(
            "cached",
            json!({"requests_per_second": 1000, "burst": 1000}),
        )
        .await;
    for _ in 0..3 {
        let (status, _) = replicas[1]
            .call(&token, Method::GET, "/v1/tenant", None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = replicas[0]
        .call(
            &replicas[0].admin_token(),
            Method::PATCH,
            &format!("/v1/admin/tenants/{tenant}/quotas"),
            Some(json!({"limits": {"requests_per_second": 1, "burst": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The first request on replica 1 still runs under the cached limits and
    // learns the new ones; from then on replica 1 holds the tenant to 1/s.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            replicas[1]
                .call(&token, Method::GET, "/v1/tenant", None)
                .await
                .0,
        );
    }
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        statuses[1..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "replica 1 never learned the lowered limit: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_rate_limited_while_its_neighbour_is_not() {
    let app = TestApp::spawn().await;
    let (_, noisy) = app
        .tenant_with("noisy", json!({"requests_per_second": 5, "burst": 5}))
        .await;
    let (_, quiet) = app
        .tenant_with("quiet", json!({"requests_per_second": 50, "burst": 50}))
        .await;
    let started = std::time::Instant::now();
    let burst = (0..60).map(|_| app.with_token(Method::GET, "/v1/tenant", &noisy).send());
    let neighbour = (0..20).map(|_| app.call(&quiet, Method::GET, "/v1/tenant", None));
    let (noisy_results, quiet_results) = tokio::join!(
        futures_util::future::join_all(burst),
        futures_util::future::join_all(neighbour)
    );
    let elapsed = started.elapsed();
    let limited: Vec<&reqwest::Response> = noisy_results
        .iter()
        .map(|r| r.as_ref().unwrap())
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    // At most burst + rate × elapsed get through; the rest are refused.
    let allowed = 60 - limited.len();
    assert!(
        allowed as f64 <= 5.0 + 5.0 * elapsed.as_secs_f64() + 1.0,
        "{allowed} got through in {elapsed:?}"
    );
    assert!(!limited.is_empty(), "nothing was limited in {elapsed:?}");
    let headers = limited[0].headers();
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(headers["ratelimit-limit"], "5");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert!(
        quiet_results.iter().all(|(s, _)| *s == StatusCode::OK),
        "the neighbour was throttled"
    );
    let metrics = app.metrics().await;
    let counted: usize = metrics
        .lines()
        .filter(|l| l.starts_with("tenantry_rate_limited_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, limited.len(), "{metrics}");
}

#[tokio::test]
async fn quota_refusals_are_counted_by_resource() {
    let app = TestApp::spawn().await;
    let (tenant, token) = app.tenant_with("acme", json!({"max_users": 0})).await;
    for i in 0..3 {
        let (status, _) = app
            .call(
                &token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com")})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "tenantry_quota_rejections_total{{tenant=\"{tenant}\",resource=\"users\"}} 3"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn reconcile_reports_injected_drift_and_fix_repairs_it() {
    let app = TestApp::spawn().await;
    let (id, token) = app.tenant_with("acme", json!({})).await;
    for i in 0..2 {
        app.call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": format!("u{i}@example.com")})),
        )
        .await;
    }
    let (clean, stdout, _) = tenantry_tests::run_tenantry(&app.test_db, &["quotas", "reconcile"]);
    assert!(clean && stdout.is_empty(), "{stdout}");
    // Drift injected behind the service's back.
    app.db
        .platform()
        .run(|conn| {
            async move {
                diesel::sql_query(
                    "UPDATE tenant_usage SET users = 7, cpu_cores = 3 WHERE tenant_id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(id)
                .execute(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let (ok, stdout, _) = tenantry_tests::run_tenantry(&app.test_db, &["quotas", "reconcile"]);
    assert!(!ok, "drift must fail the report");
    assert!(
        stdout.contains("acme")
            && stdout.contains("users recorded 7 actual 2")
            && stdout.contains("cpu_cores recorded 3 actual 0"),
        "{stdout}"
    );
    assert_eq!(
        usage(&app, &token).await["users"],
        7,
        "a report changes nothing"
    );
    let (ok, stdout, _) =
        tenantry_tests::run_tenantry(&app.test_db, &["quotas", "reconcile", "--fix"]);
    assert!(ok && stdout.contains("(fixed)"), "{stdout}");
    assert_eq!(usage(&app, &token).await["users"], 2);
    let (clean, stdout, _) = tenantry_tests::run_tenantry(&app.test_db, &["quotas", "reconcile"]);
    assert!(clean && stdout.is_empty(), "{stdout}");
}
