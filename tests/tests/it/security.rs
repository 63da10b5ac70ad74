//! What an attacker tried (issue #12), as rules: each attack test here
//! failed on the code before its fix (the lock-semantics test at the end
//! pins down how the new lifecycle lock treats reads and writes).
//! RELIABILITY.md's "Security" section lists them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt;
use tenantry_tests::{
    TestApp, TestDb, context_key, count_as, count_rows, create_instances, create_tenant,
    db_message, test_server_settings,
};

/// `workers` tasks send `request` in a loop until `stop` is raised (at
/// most `max_each` requests each, and at most 15 s); returns the statuses
/// with when each arrived.
/// Requests the floods of this test process have answered (nextest runs
/// each test in a process of its own).
static ANSWERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits until the floods have had `n` answers, at least `min` and at most
/// 15 s: a flood's volume, not its duration, is what a test relies on, and a
/// loaded machine (or Citus's extra hop) slows it down.
async fn until_flooded(n: usize, min: Duration) {
    let started = Instant::now();
    tokio::time::sleep(min).await;
    while std::sync::atomic::AtomicUsize::load(&ANSWERED, Ordering::Relaxed) < n
        && started.elapsed() < Duration::from_secs(15)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn flood<F, Fut>(
    workers: usize,
    max_each: usize,
    stop: &Arc<AtomicBool>,
    request: F,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, StatusCode)>>>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<StatusCode>> + Send,
{
    (0..workers)
        .map(|w| {
            let (stop, request) = (Arc::clone(stop), request.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(15);
                let mut seen = Vec::new();
                for i in 0..max_each {
                    if AtomicBool::load(&stop, Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    if let Some(status) = request(w * max_each + i).await {
                        std::sync::atomic::AtomicUsize::fetch_add(&ANSWERED, 1, Ordering::Relaxed);
                        seen.push((Instant::now(), status));
                    }
                }
                seen
            })
        })
        .collect()
}

/// [`flood`] of `POST path` with `body(i)` by `workers` connections of
/// `token`'s tenant.
fn post_flood(
    app: &TestApp,
    token: &str,
    workers: usize,
    path: &str,
    body: fn(usize) -> Value,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, StatusCode)>>> {
    let (client, url, token) = (app.client.clone(), app.url(path), token.to_owned());
    flood(workers, 400, stop, move |i| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            client
                .post(url)
                .bearer_auth(&token)
                .json(&body(i))
                .send()
                .await
                .ok()
                .map(|r| r.status())
        }
    })
}

async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, StatusCode)>>>,
) -> Vec<(Instant, StatusCode)> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// `POST /v1/admin/tenants/{tenant}/suspend`: status, body, and how long
/// the answer took.
async fn suspend(app: &TestApp, tenant: TenantId) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, body) = app
        .call(
            &app.admin_token(),
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/suspend"),
            Some(json!({"reason": "abuse"})),
        )
        .await;
    (status, body, started.elapsed())
}

/// Item 1: 128 connections of dry-run creates, at 200 rps and unlimited,
/// used to keep the tenant's row share-locked so that the suspension waited
/// into its statement timeout (503 after 5 s) and the tenant stayed active.
/// The server gets both cores' worth of workers, as in production; the
/// flood runs on the same two cores, so every figure here is pessimistic.
fn flood_server() -> tenantry_api::ServerSettings {
    let mut server = test_server_settings();
    server.workers = 2;
    server
}

async fn suspension_under_a_dry_run_flood(requests_per_second: i32) {
    let app = TestApp::spawn_with_server(flood_server(), 8).await;
    let (tenant, token) = app
        .tenant_with(
            "flooder",
            json!({"requests_per_second": requests_per_second, "burst": requests_per_second}),
        )
        .await;
    // One request first: the service learns the tenant's limits (until
    // then its other requests wait, which would be no flood at all).
    let (status, _) = app.call(&token, Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = post_flood(
        &app,
        &token,
        128,
        "/v1/users?dry_run=true",
        |i| json!({"email": format!("u{i}@flood.test")}),
        &stop,
    );
    until_flooded(400, Duration::from_millis(700)).await;
    let (status, body, took) = suspend(&app, tenant).await;
    stop.store(true, Ordering::Relaxed);
    let seen = finish(tasks).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "suspended");
    assert!(
        took < Duration::from_secs(1),
        "the suspension took {took:?} under the flood (rps {requests_per_second})"
    );
    assert!(
        seen.len() > 256,
        "the flood did not run: {} requests",
        seen.len()
    );
    eprintln!(
        "rps {requests_per_second}: suspend answered in {took:?} during a flood of {} requests",
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_flood_at_200_rps_cannot_delay_the_tenants_suspension() {
    suspension_under_a_dry_run_flood(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlimited_dry_run_flood_cannot_delay_the_tenants_suspension() {
    suspension_under_a_dry_run_flood(0).await;
}

/// Item 1, the guarantee the lock exists for: under a flood of real writes
/// the suspension is prompt, and no write of the tenant commits after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_write_commits_after_a_suspension_made_during_a_write_flood() {
    let app = TestApp::spawn_with_server(flood_server(), 8).await;
    let (tenant, token) = app
        .tenant_with("writer", json!({"requests_per_second": 0}))
        .await;
    let (status, _) = app.call(&token, Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = post_flood(
        &app,
        &token,
        64,
        "/v1/clusters",
        |i| json!({"name": format!("c{i}"), "region": "eu-west-1"}),
        &stop,
    );
    // Some writes in before the suspension (the test needs them).
    until_flooded(64, Duration::from_millis(700)).await;
    let (status, body, took) = suspend(&app, tenant).await;
    let answered = Instant::now();
    assert_eq!(status, StatusCode::OK, "{body}");
    let at_suspension = count_as(&app.db, tenant, "clusters").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = finish(tasks).await;
    let at_end = count_as(&app.db, tenant, "clusters").await;
    assert!(
        took < Duration::from_secs(1),
        "the suspension took {took:?}"
    );
    assert!(at_suspension > 0, "no write got in before the suspension");
    assert_eq!(
        at_end, at_suspension,
        "writes committed after the suspension"
    );
    // (A 201 may still arrive after the answer: its commit came first. The
    // counts above, read in the database, are what proves the order.)
    assert!(
        seen.iter()
            .any(|(at, s)| *at > answered && *s == StatusCode::FORBIDDEN),
        "the flood never saw the suspension"
    );
}

/// Item 2: a tenant held to 1 rps that floods used to take a pooled
/// connection for every refused request: 503s for itself, ~1 s for its
/// neighbour. Now the refusal happens before the pool: the neighbour gets
/// only 200s, and the flood costs no checkouts beyond its admitted requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_flood_costs_no_database_work_and_leaves_the_neighbour_alone() {
    let app = TestApp::spawn_with_server(flood_server(), 4).await;
    let (_, noisy) = app
        .tenant_with("noisy", json!({"requests_per_second": 1, "burst": 1}))
        .await;
    let (_, quiet) = app
        .tenant_with("quiet", json!({"requests_per_second": 1000, "burst": 1000}))
        .await;
    for token in [&noisy, &quiet] {
        let (status, _) = app.call(token, Method::GET, "/v1/users", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = Instant::now();
    let checkouts_before = app.db.checkouts();
    let (client, base) = (app.client.clone(), app.address.clone());
    let tasks = flood(32, 2000, &stop, move |_| {
        let (client, base, token) = (client.clone(), base.clone(), noisy.clone());
        async move {
            client
                .get(format!("{base}/v1/users"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()
                .map(|r| r.status())
        }
    });
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut quiet_statuses = Vec::new();
    while started.elapsed() < Duration::from_secs(3) && latencies.len() < 5000 {
        let t = Instant::now();
        let (status, _) = app.call(&quiet, Method::GET, "/v1/users", None).await;
        latencies.push(t.elapsed());
        quiet_statuses.push(status);
    }
    stop.store(true, Ordering::Relaxed);
    let seen = finish(tasks).await;
    let elapsed = flood_started.elapsed();
    let checkouts = app.db.checkouts() - checkouts_before;

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let noisy_ok = seen.iter().filter(|(_, s)| *s == StatusCode::OK).count();
    let noisy_limited = seen
        .iter()
        .filter(|(_, s)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    eprintln!(
        "flood: {} requests ({noisy_ok} ok, {noisy_limited} limited) in {elapsed:?}; neighbour: {} requests, p99 {p99:?}; checkouts {checkouts}",
        seen.len(),
        latencies.len()
    );
    assert!(
        quiet_statuses.iter().all(|s| *s == StatusCode::OK),
        "the neighbour got {:?}",
        quiet_statuses
            .iter()
            .filter(|s| **s != StatusCode::OK)
            .collect::<Vec<_>>()
    );
    // The neighbour's latency is printed, not asserted: timings belong in
    // `make bench`, and on a loaded 2-core machine a bound here failed
    // without anything being wrong. What made it ~1 s before — refused
    // requests holding pooled connections — is asserted exactly below
    // (checkouts), and the neighbour's statuses above.
    assert!(
        !seen.iter().any(|(_, s)| s.is_server_error()),
        "the flood itself got 5xx"
    );
    assert!(seen.len() > 500, "the flood did not run: {}", seen.len());
    assert!(
        noisy_ok as f64 <= 1.0 + elapsed.as_secs_f64(),
        "{noisy_ok} got through"
    );
    // Each admitted request takes one connection; refused ones take none.
    assert!(
        checkouts as usize <= noisy_ok + latencies.len() + 2,
        "{checkouts} checkouts for {noisy_ok} + {} admitted requests",
        latencies.len()
    );
}

async fn exchange(app: &TestApp, api_key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/v1/auth/token"))
        .json(&json!({ "api_key": api_key }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Item 2: guessing one key's secret is throttled per key, before any
/// database work; another key keeps its own budget.
#[tokio::test]
async fn the_token_exchange_is_limited_per_key_before_the_database() {
    let mut server = test_server_settings();
    server.token_exchange_per_second = 1;
    server.token_exchange_burst = 2;
    let app = TestApp::spawn_with_server(server, 4).await;
    let (tenant, token) = app.tenant_with("keys", json!({})).await;
    let (status, key) = app
        .call(
            &token,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    // Same key id, wrong secret: a character inside the secret's part
    // changed (the last one may not decode at all, refused before anything).
    let at = secret.len() - 10;
    let mut wrong = secret.clone();
    let swapped = if &secret[at..=at] == "A" { "B" } else { "A" };
    wrong.replace_range(at..=at, swapped);
    let before = app.db.checkouts();
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(exchange(&app, &wrong).await.0);
    }
    // Burst 2, then 1 a second: how many could have been let through.
    let allowed = 2 + started.elapsed().as_secs() as usize;
    let checkouts = app.db.checkouts() - before;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((2..=allowed).contains(&refused), "{statuses:?}");
    assert_eq!(refused + limited, 10, "{statuses:?}");
    assert_eq!(
        checkouts as usize, refused,
        "refused exchanges reached the database"
    );
    // Another key has a budget of its own.
    let (_, other) = app
        .call(
            &token,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "other"})),
        )
        .await;
    let (status, body) = exchange(&app, other["secret"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body} ({tenant})");
}

/// Item 2: the routes that need no token are limited per client address.
#[tokio::test]
async fn routes_without_a_token_are_limited_per_client_address() {
    let mut server = test_server_settings();
    server.client_requests_per_second = 1;
    server.client_burst = 3;
    let app = TestApp::spawn_with_server(server, 4).await;
    let (_, token) = app.tenant_with("probe", json!({})).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/healthz",
    ] {
        statuses.push(app.get(path).await.status());
    }
    let allowed = 3 + started.elapsed().as_secs() as usize;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((3..=allowed).contains(&ok), "{statuses:?}");
    assert!(
        statuses[..3].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    // Spelled with an escape, and with a junk token, it is the same route.
    let (status, _) = app.call("junk", Method::GET, "/%72eadyz", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // A tenant's own requests are limited by its own rate, not this one.
    for _ in 0..5 {
        let (status, body) = app.call(&token, Method::GET, "/v1/tenant", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Item 3: a token obtained for an API key stopped working only at its
/// `exp` (15 minutes) — it could even mint new keys after its key was
/// revoked. It names its key now, and the gate checks the key every time.
#[tokio::test]
async fn a_revoked_keys_tokens_are_refused_at_the_next_request() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("revoker").await;
    let owner = app.tenant_token(tenant);
    // Every tenant scope, so that its token could mint keys were it not
    // revoked (managing keys needs tenant:admin).
    let (_, key) = app
        .call(
            &owner,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci", "scopes": ["tenant:read", "tenant:write", "tenant:admin"]})),
        )
        .await;
    let (status, issued) = exchange(&app, key["secret"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let derived = issued["access_token"].as_str().unwrap().to_owned();
    let claims: Value = {
        use base64::Engine as _;
        let payload = derived.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["api_key_id"], key["id"]);
    let (status, _) = app.call(&derived, Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app
        .call(
            &owner,
            Method::DELETE,
            &format!("/v1/api-keys/{}", key["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path, body) in [
        (Method::GET, "/v1/tenant", None),
        (
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "escape"})),
        ),
        (
            Method::POST,
            "/v1/users",
            Some(json!({"email": "x@y.test"})),
        ),
    ] {
        let (status, problem) = app.call(&derived, method, path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {problem}");
        assert_eq!(problem["code"], "unauthorized");
    }
    let (_, keys) = app.call(&owner, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(
        keys["items"],
        json!([]),
        "a revoked key's token minted a key"
    );
}

/// Item 8: the exchange recorded `last_used_at` before it looked at the
/// tenant's status; a suspended tenant's key is refused and records nothing.
#[tokio::test]
async fn a_suspended_tenants_key_exchange_is_refused_and_records_no_use() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("dormant").await;
    let token = app.tenant_token(tenant);
    let (_, key) = app
        .call(
            &token,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    app.set_status(tenant, "suspended").await;
    let (status, problem) = exchange(&app, key["secret"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "tenant_suspended");
    let used = app
        .db
        .tenant(tenant)
        .run(|conn| {
            async move {
                #[derive(diesel::QueryableByName)]
                struct Used {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                tenantry_tests::allow_fan_out(conn).await?;
                let row: Used = diesel::sql_query(
                    "SELECT count(*) AS n FROM api_keys WHERE last_used_at IS NOT NULL",
                )
                .get_result(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(row.n)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(used, 0, "last_used_at was written for a suspended tenant");
}

/// Every table row-level security guards, from the catalog — but the proof
/// registry, which shows a role the proofs it presents itself (checked in
/// `the_service_role_sees_only_the_proofs_it_presents`).
async fn rls_tables(conn: &mut AsyncPgConnection) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let rows: Vec<T> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relrowsecurity AND n.nspname = 'public' AND c.relname <> 'context_proofs'
          ORDER BY 1",
    )
    .load(conn)
    .await
    .unwrap();
    rows.into_iter().map(|t| t.name).collect()
}

/// Two tenants with a row in every tenant table.
async fn two_populated_tenants(test_db: &TestDb) -> (TenantId, TenantId) {
    let db = test_db.db(2);
    let a = create_tenant(&db, "alpha").await;
    let b = create_tenant(&db, "bravo").await;
    for t in [a, b] {
        create_instances(&db, t, 2).await;
        db.tenant(t)
            .run(|conn| {
                async move {
                    conn.batch_execute(&format!(
                        "INSERT INTO users (tenant_id, id, email) VALUES ('{t}', gen_random_uuid(), 'u@x.test');
                         INSERT INTO api_keys (tenant_id, id, name, prefix, secret_hash)
                              VALUES ('{t}', gen_random_uuid(), 'k', 'tnry_x', '\\x00');
                         INSERT INTO events (tenant_id, id, kind, actor) VALUES ('{t}', gen_random_uuid(), 'k', 'a');"
                    ))
                    .await?;
                    Ok::<_, tenantry_db::DbError>(())
                }
                .scope_boxed()
            })
            .await
            .unwrap();
    }
    (a, b)
}

/// Counts every RLS table's rows after `context` (SQL run as the service's
/// role, in one transaction that is rolled back).
async fn visible_after(test_db: &TestDb, context: &str) -> Vec<(String, i64)> {
    let mut conn = test_db.app_conn().await;
    let tables = rls_tables(&mut conn).await;
    conn.batch_execute(&format!("BEGIN; {context};"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for table in tables {
        let n = count_rows(&mut &conn, &table).await.unwrap();
        seen.push((table, n));
    }
    conn.batch_execute("ROLLBACK").await.unwrap();
    seen
}

/// Item 9: any SQL running as the service's role (an injected statement)
/// could `SET LOCAL app.tenant_id` to another tenant and read it. A context
/// now counts only with its proof, which only the key's holder can make.
#[tokio::test]
async fn sql_as_the_service_role_cannot_forge_a_tenant_context() {
    let test_db = TestDb::new().await;
    let (a, b) = two_populated_tenants(&test_db).await;
    let key = context_key();
    let forgeries = [
        format!("SET LOCAL app.tenant_id = '{b}'"),
        format!("SELECT set_config('app.tenant_id', '{b}', true)"),
        format!("SELECT set_tenant_context('{b}', 'forged')"),
        format!(
            "SELECT set_tenant_context('{b}', '{}')",
            key.tenant_proof(a)
        ),
        format!(
            "SELECT set_tenant_context('{a}', '{}'); SET LOCAL app.tenant_id = '{b}'",
            key.tenant_proof(a)
        ),
        format!(
            "SET LOCAL app.tenant_id = '{b}'; SET LOCAL app.tenant_proof = '{}'",
            key.platform_proof()
        ),
        format!(
            "SET LOCAL app.tenant_id = '{}'",
            b.to_string().to_uppercase()
        ),
    ];
    for forged in &forgeries {
        let seen = visible_after(&test_db, forged).await;
        assert!(seen.len() >= 9, "{seen:?}");
        for (table, n) in &seen {
            assert_eq!(*n, 0, "{table} showed {n} rows after: {forged}");
        }
    }
    // Writes: nothing lands in B, nothing of B changes.
    let mut conn = test_db.app_conn().await;
    conn.batch_execute(&format!("BEGIN; SET LOCAL app.tenant_id = '{b}';"))
        .await
        .unwrap();
    let insert = diesel::sql_query(
        "INSERT INTO clusters (tenant_id, id, name, region) VALUES ($1, gen_random_uuid(), 'implant', 'x')",
    )
    .bind::<SqlUuid, _>(b)
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(
        db_message(&insert).contains("row-level security"),
        "{insert}"
    );
    conn.batch_execute(&format!(
        "ROLLBACK; BEGIN; SET LOCAL app.tenant_id = '{b}';"
    ))
    .await
    .unwrap();
    tenantry_tests::allow_fan_out(&mut &conn).await.unwrap();
    for statement in [
        "UPDATE clusters SET name = 'renamed'",
        "UPDATE tenant_usage SET users = 0",
        "DELETE FROM instances",
        "DELETE FROM events",
        "UPDATE tenants SET status = 'active'",
    ] {
        let n = diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "{statement} touched {n} rows");
    }
    conn.batch_execute("COMMIT").await.unwrap();
    // The real proof opens exactly B's rows, and they are intact.
    let genuine = visible_after(
        &test_db,
        &format!(
            "SELECT set_tenant_context('{b}', '{}')",
            key.tenant_proof(b)
        ),
    )
    .await;
    let rows = |t: &str| genuine.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(rows("instances"), 2);
    assert_eq!(rows("clusters"), 1);
    assert_eq!(rows("tenants"), 1);
    assert_eq!(rows("users"), 1);
}

/// Item 9: the proof registry shows the service's role only the proofs it
/// presents; it cannot list the others, nor add one.
#[tokio::test]
async fn the_service_role_sees_only_the_proofs_it_presents() {
    let test_db = TestDb::new().await;
    let (a, _b) = two_populated_tenants(&test_db).await;
    let key = context_key();
    if tenantry_tests::citus() {
        // Citus checks each proof against the key on every node (sql/citus.sql):
        // the registry stays empty, and the key is as far out of reach.
        let owner = test_db.owner_conn().await;
        assert_eq!(count_rows(&mut &owner, "context_proofs").await.unwrap(), 0);
        let conn = test_db.app_conn().await;
        let err = count_rows(&mut &conn, "tenantry_private.context_keys")
            .await
            .unwrap_err();
        assert!(db_message(&err).contains("permission denied"), "{err}");
        return;
    }
    let seen = |context: String| {
        let test_db = test_db.clone();
        async move {
            let mut conn = test_db.app_conn().await;
            conn.batch_execute(&format!("BEGIN; {context};"))
                .await
                .unwrap();
            let n = count_rows(&mut &conn, "context_proofs").await.unwrap();
            conn.batch_execute("ROLLBACK").await.unwrap();
            n
        }
    };
    assert_eq!(seen("SELECT 1".to_owned()).await, 0);
    assert_eq!(
        seen(format!(
            "SELECT set_tenant_context('{a}', '{}')",
            key.tenant_proof(a)
        ))
        .await,
        1
    );
    assert_eq!(
        seen(format!(
            "SELECT set_platform_admin_context('{}')",
            key.platform_proof()
        ))
        .await,
        1
    );
    // The owner sees every context: the platform's and both tenants'.
    let owner = test_db.owner_conn().await;
    assert_eq!(count_rows(&mut &owner, "context_proofs").await.unwrap(), 3);
}

/// Item 9, the admin side: `app.platform_admin = 'on'` used to open every
/// control-plane table across tenants.
#[tokio::test]
async fn sql_as_the_service_role_cannot_forge_the_platform_context() {
    let test_db = TestDb::new().await;
    let (a, _b) = two_populated_tenants(&test_db).await;
    let key = context_key();
    let forgeries = [
        "SET LOCAL app.platform_admin = 'on'".to_owned(),
        "SELECT set_platform_admin_context('forged')".to_owned(),
        format!(
            "SELECT set_platform_admin_context('{}')",
            key.tenant_proof(a)
        ),
        format!(
            "SET LOCAL app.platform_proof = '{}.{}'",
            key.id(),
            "0".repeat(64)
        ),
    ];
    for forged in &forgeries {
        for (table, n) in visible_after(&test_db, forged).await {
            assert_eq!(n, 0, "{table} showed {n} rows after: {forged}");
        }
    }
    let mut conn = test_db.app_conn().await;
    conn.batch_execute("BEGIN; SET LOCAL app.platform_admin = 'on';")
        .await
        .unwrap();
    let n = diesel::sql_query("UPDATE tenants SET status = 'suspended'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let forged_audit = diesel::sql_query(
        "INSERT INTO audit_events (id, actor, action) VALUES (gen_random_uuid(), 'platform-admin:security-team', 'tenant.suspend')",
    )
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(
        db_message(&forged_audit).contains("row-level security"),
        "{forged_audit}"
    );
    conn.batch_execute("ROLLBACK").await.unwrap();
    let genuine = visible_after(
        &test_db,
        &format!(
            "SELECT set_platform_admin_context('{}')",
            key.platform_proof()
        ),
    )
    .await;
    let rows = |t: &str| genuine.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(rows("tenants"), 2);
    assert_eq!(
        rows("instances"),
        0,
        "the platform context opens no tenant rows"
    );
}

/// Item 9: the key that makes proofs is out of the service role's reach,
/// and so is every way to plant an object that could capture a proof.
#[tokio::test]
async fn the_service_role_can_neither_read_the_context_key_nor_create_objects() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    for statement in [
        "SELECT * FROM tenantry_private.context_keys",
        "INSERT INTO context_proofs (proof_hash, key_id, tenant) VALUES (sha256('x'), 'k', NULL)",
        "SELECT context_register(NULL)",
        "CREATE TEMP TABLE users (tenant_id uuid)",
        "CREATE TABLE public.trap (x int)",
        "CREATE FUNCTION public.context_tenant_id2() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'",
        // A session-level lifecycle lock would outlive its transaction on a
        // pooled connection and stall the tenant's suspension for good.
        "SELECT pg_advisory_lock(1, 2)",
        "SELECT pg_try_advisory_lock_shared(1, 2)",
    ] {
        let err = conn.batch_execute(statement).await.unwrap_err();
        assert!(
            db_message(&err).contains("permission denied"),
            "{statement}: {err}"
        );
    }
}

/// Item 1's lock, as the tenant plane meets it: while a lifecycle change
/// holds it, the tenant's reads go on and its writes wait; when the change
/// commits, the waiting write sees the new status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_on_and_writes_wait_while_a_lifecycle_change_holds_the_lock() {
    let app = TestApp::spawn_with_server(flood_server(), 8).await;
    let (tenant, token) = app
        .tenant_with("holder", json!({"requests_per_second": 0}))
        .await;
    let (status, _) = app.call(&token, Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    // What `transition` does first, held open: the lock, exclusively.
    let mut admin = app.test_db.app_conn().await;
    admin
        .batch_execute(&format!(
            "BEGIN; {}; SELECT lock_tenant_lifecycle('{tenant}');",
            tenantry_tests::platform_context_sql()
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let (status, _) = app.call(&token, Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "a read waited");
    let write = {
        let (client, url, token) = (app.client.clone(), app.url("/v1/clusters"), token.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(&token)
                .json(&json!({"name": "waits", "region": "eu-west-1"}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !write.is_finished(),
        "a write went past a held lifecycle lock"
    );
    admin
        .batch_execute(&format!(
            "UPDATE tenants SET status = 'suspended', updated_at = now() WHERE id = '{tenant}'; COMMIT;"
        ))
        .await
        .unwrap();
    assert_eq!(write.await.unwrap(), StatusCode::FORBIDDEN);
    assert_eq!(count_as(&app.db, tenant, "clusters").await, 0);
}
