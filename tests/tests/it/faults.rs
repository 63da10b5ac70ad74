//! The bad days: the database restarts, the server is killed mid-write or
//! asked to stop, clients hang up, the pool runs dry. Real processes (the
//! `tenantry serve` binary as a child, a PostgreSQL cluster we can stop),
//! and every test checks the database afterwards. Every loop is bounded in
//! count and time.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_tests::process::{Cluster, Server};
use tenantry_tests::{TestDb, platform_context_sql, seed_events, tenant_context_sql};

/// A client that gives up after 20 s (no wait in these tests is unbounded).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A tenant with room for everything these tests provision, created
/// through the admin API.
async fn tenant(server: &Server, slug: &str) -> TenantId {
    let response = server
        .client
        .post(server.url("/v1/admin/tenants"))
        .bearer_auth(server.admin_token())
        .json(&json!({
            "slug": slug,
            "name": slug,
            "quotas": {"max_clusters": 100_000, "requests_per_second": 100_000, "burst": 100_000}
        }))
        .send()
        .await
        .expect("create a tenant");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("tenant json");
    body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("a tenant id")
}

/// `POST /v1/clusters` as `tenant`: the status, the problem code (if any),
/// the new id (if any) and how long it took.
async fn create_cluster(
    server: &Server,
    client: &reqwest::Client,
    token: &str,
    name: &str,
) -> Result<(StatusCode, Value, Duration), reqwest::Error> {
    let started = Instant::now();
    let response = client
        .post(server.url("/v1/clusters"))
        .bearer_auth(token)
        .json(&json!({"name": name, "region": "eu-west-1"}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, started.elapsed()))
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs `sql` (which yields one `n`) in a transaction on a fresh service-role
/// connection, after `context` (e.g. [`platform_context_sql`]).
async fn scalar(db: &TestDb, context: &str, sql: &str) -> i64 {
    let mut conn = db.app_conn().await;
    conn.batch_execute(&format!("BEGIN; {context};"))
        .await
        .expect("open a transaction");
    let row: N = diesel::sql_query(sql)
        .get_result(&mut conn)
        .await
        .expect("query");
    conn.batch_execute("COMMIT").await.expect("commit");
    row.n
}

async fn tenant_rows(db: &TestDb, tenant: TenantId, table: &str) -> i64 {
    scalar(
        db,
        &tenant_context_sql(tenant),
        &format!("SELECT count(*) AS n FROM {table}"),
    )
    .await
}

async fn recorded_usage(db: &TestDb, tenant: TenantId, resource: &str) -> i64 {
    scalar(
        db,
        &platform_context_sql(),
        &format!("SELECT {resource}::bigint AS n FROM tenant_usage WHERE tenant_id = '{tenant}'"),
    )
    .await
}

/// Sessions of the service's role in `state` (e.g. `idle in transaction`).
async fn sessions_in_state(db: &TestDb, state: &str) -> i64 {
    let mut conn = db.app_conn().await;
    let row: N = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND application_name = 'tenantry' AND state LIKE $1",
    )
    .bind::<Text, _>(state)
    .get_result(&mut conn)
    .await
    .expect("read pg_stat_activity");
    row.n
}

/// The backend pids of the service's sessions, sorted.
async fn service_backends(db: &TestDb) -> Vec<i32> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = db.app_conn().await;
    let rows: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'tenantry' ORDER BY pid",
    )
    .load(&mut conn)
    .await
    .expect("read pg_stat_activity");
    rows.into_iter().map(|r| r.pid).collect()
}

/// Waits (bounded) until no service session is idle in a transaction;
/// returns how many still are at the deadline.
async fn idle_in_transaction_after(db: &TestDb, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let n = sessions_in_state(db, "idle in transaction%").await;
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds `tenant`'s lifecycle lock (as a platform admin's status change
/// would): every write for the tenant waits on it at the tenant gate.
/// Dropping the connection releases it.
async fn hold_tenant_lock(db: &TestDb, tenant: TenantId) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(&db.app_url())
        .await
        .expect("connect");
    conn.batch_execute(&format!(
        "BEGIN; {}; SELECT lock_tenant_lifecycle('{tenant}');",
        platform_context_sql()
    ))
    .await
    .expect("lock the tenant row");
    conn
}

/// 1. PostgreSQL stopped (fast) and started again while requests run:
///    quick 503 `database_unavailable` during the outage, `/readyz` 503
///    then 200, and the same process serves normally afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load_gives_quick_503s_then_the_same_process_recovers() {
    let cluster = Cluster::start();
    let server = Server::start(
        &cluster.db,
        &[
            ("TENANTRY__DATABASE__MAX_CONNECTIONS", "4"),
            ("TENANTRY__DATABASE__ACQUIRE_TIMEOUT", "1s"),
            ("TENANTRY__DATABASE__CONNECT_TIMEOUT", "1s"),
        ],
    )
    .await;
    let pid = server.pid();
    let acme = tenant(&server, "acme").await;
    let token = server.tenant_token(acme);

    // Load: 4 clients creating clusters and listing them until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = std::sync::Arc::new(server);
    let mut load = Vec::new();
    for worker in 0..4 {
        let (server, token, stop) = (server.clone(), token.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let mut seen = Vec::new();
            for i in 0..2_000 {
                if std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Relaxed)
                {
                    break;
                }
                let name = format!("w{worker}-{i}");
                match create_cluster(&server, &client, &token, &name).await {
                    Ok((status, body, took)) => seen.push((status, body, took)),
                    Err(e) => panic!("request failed at the transport level: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    cluster.stop();
    // During the outage: 503 database_unavailable, quickly.
    let client = client();
    for path in ["/v1/clusters", "/v1/tenant"] {
        let started = Instant::now();
        let response = client
            .get(server.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the server answers while the database is down");
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value = response.json().await.expect("problem json");
        assert_eq!(body["code"], "database_unavailable", "{path}: {body}");
        assert!(
            took < Duration::from_millis(2_500),
            "{path} took {took:?} with the database down (acquire 1s + connect 1s)"
        );
    }
    let ready = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.restart();
    // Ready again within a bounded time, in the same process.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = client
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 15 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut created = Vec::new();
    let mut unavailable = 0;
    for worker in load {
        for (status, body, took) in worker.await.expect("load worker") {
            match status {
                StatusCode::CREATED => created.push(body["id"].as_str().expect("id").to_owned()),
                StatusCode::SERVICE_UNAVAILABLE => {
                    unavailable += 1;
                    assert_eq!(body["code"], "database_unavailable", "{body}");
                    assert!(took < Duration::from_millis(2_500), "a 503 took {took:?}");
                }
                other => panic!("unexpected {other} during the restart: {body}"),
            }
        }
    }
    assert!(unavailable > 0, "the load never saw the outage");
    assert!(!created.is_empty());

    // Afterwards: every client is served by the same process.
    let mut server = std::sync::Arc::into_inner(server).expect("no other owner");
    assert!(server.try_exit().is_none(), "the server exited");
    assert_eq!(server.pid(), pid);
    for i in 0..20 {
        let (status, body, _) = create_cluster(&server, &client, &token, &format!("after-{i}"))
            .await
            .expect("request");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        created.push(body["id"].as_str().expect("id").to_owned());
    }
    // Every acknowledged write is there; usage equals the rows.
    let rows = tenant_rows(&cluster.db, acme, "clusters").await;
    let usage = recorded_usage(&cluster.db, acme, "clusters").await;
    assert_eq!(usage, rows, "usage drifted from the rows");
    for id in &created {
        let n = scalar(
            &cluster.db,
            &tenant_context_sql(acme),
            &format!("SELECT count(*) AS n FROM clusters WHERE id = '{id}'"),
        )
        .await;
        assert_eq!(n, 1, "acknowledged cluster {id} is missing");
    }
    assert_eq!(
        idle_in_transaction_after(&cluster.db, Duration::from_secs(3)).await,
        0
    );
}

/// 2. SIGKILL in the middle of a burst of provisioning requests, then a
///    restart: every 201 is there, and usage equals the rows for every tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_provisioning_loses_no_acknowledged_write_and_leaves_no_usage_drift() {
    let db = TestDb::new().await;
    let mut server = Server::start(&db, &[("TENANTRY__DATABASE__MAX_CONNECTIONS", "8")]).await;
    let mut tenants = Vec::new();
    for slug in ["kill-a", "kill-b", "kill-c"] {
        tenants.push(tenant(&server, slug).await);
    }
    let server_url = server.address.clone();
    let mut burst = Vec::new();
    for (t, tenant) in tenants.iter().enumerate() {
        for worker in 0..3 {
            let token = server.tenant_token(*tenant);
            let url = format!("{server_url}/v1/clusters");
            burst.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                let mut acknowledged = Vec::new();
                for i in 0..500 {
                    let sent = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(
                            &json!({"name": format!("t{t}-w{worker}-{i}"), "region": "eu-west-1"}),
                        )
                        .send()
                        .await;
                    let Ok(response) = sent else { break }; // the server is gone
                    if response.status() == StatusCode::CREATED {
                        let Ok(body) = response.json::<Value>().await else {
                            break;
                        };
                        acknowledged.push(body["id"].as_str().expect("id").to_owned());
                    }
                }
                acknowledged
            }));
        }
    }
    // Kill it once writes are flowing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tenant_rows(&db, tenants[0], "clusters").await < 20 {
        assert!(Instant::now() < deadline, "no writes landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let mut acknowledged = Vec::new();
    for worker in burst {
        acknowledged.extend(worker.await.expect("burst worker"));
    }
    assert!(!acknowledged.is_empty());

    server.spawn().await;
    for tenant in &tenants {
        for resource in ["clusters", "instances", "users", "api_keys"] {
            let rows = tenant_rows(&db, *tenant, resource).await;
            let usage = recorded_usage(&db, *tenant, resource).await;
            assert_eq!(
                usage, rows,
                "{tenant} {resource}: usage {usage}, rows {rows}"
            );
        }
    }
    let total: i64 = {
        let mut sum = 0;
        for tenant in &tenants {
            sum += tenant_rows(&db, *tenant, "clusters").await;
        }
        sum
    };
    assert!(
        total >= i64::try_from(acknowledged.len()).expect("small"),
        "fewer rows ({total}) than acknowledged writes ({})",
        acknowledged.len()
    );
    for id in &acknowledged {
        // Each tenant's context sees only its own: exactly one must have it.
        let mut found = 0;
        for tenant in &tenants {
            found += scalar(
                &db,
                &tenant_context_sql(*tenant),
                &format!("SELECT count(*) AS n FROM clusters WHERE id = '{id}'"),
            )
            .await;
        }
        assert_eq!(
            found, 1,
            "acknowledged cluster {id} is missing after the kill"
        );
    }
    // The restarted process serves.
    let token = server.tenant_token(tenants[0]);
    let (status, body, _) = create_cluster(&server, &server.client, &token, "after-restart")
        .await
        .expect("request");
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// 3. Clients hanging up mid-body and mid-response, and requests abandoned
///    by a client timeout: no session is left idle in a transaction, and two
///    tenants reading in between never see each other's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_up_and_timed_out_clients_leave_no_open_transaction_and_no_crosstalk() {
    let db = TestDb::new().await;
    let server = Server::start(
        &db,
        &[
            ("TENANTRY__DATABASE__MAX_CONNECTIONS", "8"),
            ("TENANTRY__DATABASE__STATEMENT_TIMEOUT", "3s"),
        ],
    )
    .await;
    let a = tenant(&server, "hang-a").await;
    let b = tenant(&server, "hang-b").await;
    let (token_a, token_b) = (server.tenant_token(a), server.tenant_token(b));
    let mut own = [Vec::new(), Vec::new()];
    for (k, token) in [&token_a, &token_b].into_iter().enumerate() {
        for i in 0..30 {
            let (status, body, _) =
                create_cluster(&server, &server.client, token, &format!("c{k}-{i}"))
                    .await
                    .expect("request");
            assert_eq!(status, StatusCode::CREATED, "{body}");
            own[k].push(body["id"].as_str().expect("id").to_owned());
        }
    }
    // A large tenant for the streamed export.
    seed_events(&db, a, 50_000).await;
    let host = server.address.trim_start_matches("http://").to_owned();

    // Readers of both tenants run throughout and check every page.
    // A's names start "c0-" (or "late-", below), B's "c1-".
    let readers: Vec<_> = [
        (token_a.clone(), ["c0-", "late-"], own[1].clone()),
        (token_b.clone(), ["c1-", "c1-"], own[0].clone()),
    ]
    .into_iter()
    .map(|(token, mine, theirs)| {
        let url = server.url("/v1/clusters?limit=100");
        tokio::spawn(async move {
            let client = client();
            let mut pages = 0;
            for _ in 0..60 {
                let response = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("read");
                assert_eq!(response.status(), StatusCode::OK);
                let body: Value = response.json().await.expect("json");
                let items = body["items"].as_array().expect("items");
                assert!(items.len() >= 30, "lost rows: {body}");
                for item in items {
                    let (id, name) = (
                        item["id"].as_str().expect("id"),
                        item["name"].as_str().expect("name"),
                    );
                    assert!(
                        !theirs.iter().any(|t| t == id),
                        "saw another tenant's row: {item}"
                    );
                    assert!(
                        mine.iter().any(|p| name.starts_with(p)),
                        "saw a row that is not mine: {item}"
                    );
                }
                pages += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            pages
        })
    })
    .collect();

    for round in 0..10 {
        // Mid-body: announce 1000 bytes, send 20, hang up.
        let mut s = TcpStream::connect(&host).expect("connect");
        write!(
            s,
            "POST /v1/clusters HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token_a}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"half-{round}\","
        )
        .expect("send");
        drop(s);
        // Mid-response: start the streamed export (a snapshot transaction),
        // read a little, hang up.
        let mut s = TcpStream::connect(&host).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            s,
            "GET /v1/admin/tenants/{a}/export HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\r\n",
            server.admin_token()
        )
        .expect("send");
        let mut first = [0_u8; 4096];
        let n = s.read(&mut first).expect("read the start of the export");
        assert!(n > 0);
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
        drop(s);
    }

    // Abandoned by a client timeout while waiting at the tenant gate.
    let held = hold_tenant_lock(&db, a).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    for i in 0..3 {
        let result = create_cluster(&server, &impatient, &token_a, &format!("late-{i}")).await;
        assert!(
            result.is_err(),
            "the request should have timed out: {result:?}"
        );
    }
    drop(held);

    for reader in readers {
        assert_eq!(reader.await.expect("reader"), 60);
    }
    assert_eq!(
        idle_in_transaction_after(&db, Duration::from_secs(5)).await,
        0,
        "a session was left idle in transaction"
    );
    // Nothing half-done: the half-sent bodies created nothing, and usage
    // equals the rows (abandoned requests either landed whole or not at all).
    for (tenant, token) in [(a, &token_a), (b, &token_b)] {
        let rows = tenant_rows(&db, tenant, "clusters").await;
        assert_eq!(recorded_usage(&db, tenant, "clusters").await, rows);
        let response = server
            .client
            .get(server.url("/v1/clusters?limit=100"))
            .bearer_auth(token)
            .send()
            .await
            .expect("list");
        let body: Value = response.json().await.expect("json");
        assert!(
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|c| !c["name"].as_str().unwrap_or_default().starts_with("half-"))
        );
    }
    assert!(tenant_rows(&db, a, "clusters").await <= 33);
    assert_eq!(tenant_rows(&db, b, "clusters").await, 30);
}

/// 4. More concurrent slow requests than pooled connections: the excess get
///    503 within the pool's wait timeout; a statement past
///    `statement_timeout` gets a problem response, and its connection serves
///    the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_exhaustion_gives_503_within_the_wait_timeout_and_timed_out_connections_are_reused() {
    let db = TestDb::new().await;
    let server = Server::start(
        &db,
        &[
            ("TENANTRY__DATABASE__MAX_CONNECTIONS", "2"),
            ("TENANTRY__DATABASE__ACQUIRE_TIMEOUT", "500ms"),
            ("TENANTRY__DATABASE__STATEMENT_TIMEOUT", "2s"),
        ],
    )
    .await;
    let acme = tenant(&server, "slow").await;
    let token = server.tenant_token(acme);
    // Warm the pool to its two connections.
    for i in 0..2 {
        let (status, _, _) = create_cluster(&server, &server.client, &token, &format!("warm-{i}"))
            .await
            .expect("request");
        assert_eq!(status, StatusCode::CREATED);
    }

    let held = hold_tenant_lock(&db, acme).await;
    let mut slow = Vec::new();
    for i in 0..6 {
        let (address, token) = (server.address.clone(), token.clone());
        slow.push(tokio::spawn(async move {
            let client = client();
            let started = Instant::now();
            let response = client
                .post(format!("{address}/v1/clusters"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("slow-{i}"), "region": "eu-west-1"}))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The two connections the pool has, both stuck at the gate.
    let deadline = Instant::now() + Duration::from_secs(2);
    while sessions_in_state(&db, "active").await < 2 {
        assert!(Instant::now() < deadline, "the pool never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stuck = service_backends(&db).await;
    assert_eq!(stuck.len(), 2);
    let mut busy = 0;
    let mut timed_out = 0;
    for request in slow {
        let (status, body, took) = request.await.expect("request task");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        match body["code"].as_str() {
            Some("database_unavailable") => {
                busy += 1;
                assert!(
                    took < Duration::from_millis(1_500),
                    "waited {took:?} for a connection"
                );
            }
            Some("query_timeout") => {
                timed_out += 1;
                assert!(
                    took < Duration::from_secs(4),
                    "a timed-out statement took {took:?}"
                );
            }
            other => panic!("unexpected problem {other:?}: {body}"),
        }
    }
    assert_eq!((busy, timed_out), (4, 2));
    drop(held);

    // The two connections that timed out serve again; nothing was written.
    for i in 0..5 {
        let (status, body, _) =
            create_cluster(&server, &server.client, &token, &format!("after-{i}"))
                .await
                .expect("request");
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(tenant_rows(&db, acme, "clusters").await, 7);
    assert_eq!(recorded_usage(&db, acme, "clusters").await, 7);
    // The very connections whose statements timed out served those requests:
    // returned to the pool intact, not replaced.
    assert_eq!(service_backends(&db).await, stuck);
    assert_eq!(
        idle_in_transaction_after(&db, Duration::from_secs(3)).await,
        0
    );
}

/// 5a. SIGTERM: no new connections, in-flight requests finish and land,
///     the process exits 0 within the shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_refuses_new_connections_and_finishes_in_flight_writes() {
    let db = TestDb::new().await;
    // The in-flight writes wait on a lock; they must not time out first.
    let mut server = Server::start(&db, &[("TENANTRY__DATABASE__STATEMENT_TIMEOUT", "30s")]).await;
    let acme = tenant(&server, "term").await;
    let token = server.tenant_token(acme);
    // Once, so the service knows the tenant's limits and the three below
    // go straight to the gate.
    let warm = client()
        .get(server.url("/v1/tenant"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("warm-up");
    assert_eq!(warm.status(), StatusCode::OK);
    let held = hold_tenant_lock(&db, acme).await;
    let mut in_flight = Vec::new();
    for i in 0..3 {
        let (address, token) = (server.address.clone(), token.clone());
        in_flight.push(tokio::spawn(async move {
            let response = client()
                .post(format!("{address}/v1/clusters"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("inflight-{i}"), "region": "eu-west-1"}))
                .send()
                .await;
            response.expect("an in-flight request is answered").status()
        }));
    }
    // Wait until all three wait at the gate.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sessions_in_state(&db, "active").await < 3 {
        assert!(
            Instant::now() < deadline,
            "the requests never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.terminate();
    // New connections are refused once the signal is handled.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let refused = client()
            .get(server.url("/healthz"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .is_err_and(|e| e.is_connect());
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still accepting 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.try_exit().is_none(),
        "exited with requests in flight"
    );
    drop(held);
    for request in in_flight {
        let status = request.await;
        assert!(
            matches!(status, Ok(StatusCode::CREATED)),
            "{status:?}; server log:\n{}",
            server.log_text()
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the server exits after its in-flight requests");
    assert!(status.success(), "exit status {status}");
    assert_eq!(tenant_rows(&db, acme, "clusters").await, 3);
    assert_eq!(recorded_usage(&db, acme, "clusters").await, 3);
}

/// 5b. SIGTERM during a purge: the sweeper stops between batches, the
///     receipt counts exactly what is gone, and the next sweep finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_the_sweeper_between_batches_with_exact_counts() {
    const ROWS: i64 = 60_000;
    let db = TestDb::new().await;
    // Seed the doomed tenant before the sweeping server starts.
    let setup = Server::start(&db, &[]).await;
    let doomed = tenant(&setup, "doomed").await;
    drop(setup);
    seed_events(&db, doomed, ROWS).await;
    let before = tenant_rows(&db, doomed, "events").await;
    scalar(
        &db,
        &platform_context_sql(),
        &format!(
            "WITH x AS (UPDATE tenants SET status = 'deleted', deleted_at = now() - interval '1 day'
               WHERE id = '{doomed}' RETURNING 1) SELECT count(*) AS n FROM x"
        ),
    )
    .await;

    let mut server = Server::start(
        &db,
        &[
            ("TENANTRY__RETENTION__ENABLED", "true"),
            ("TENANTRY__RETENTION__PERIOD", "1s"),
            ("TENANTRY__RETENTION__SWEEP_INTERVAL", "1s"),
            ("TENANTRY__RETENTION__BATCH_SIZE", "50"),
        ],
    )
    .await;
    // Wait until the purge is under way, then stop the server.
    let deadline = Instant::now() + Duration::from_secs(15);
    while tenant_rows(&db, doomed, "events").await > before - 500 {
        assert!(Instant::now() < deadline, "the sweeper never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the server stops mid-purge");
    assert!(status.success(), "exit status {status}");
    assert!(
        server
            .log_text()
            .contains("stopped between batches for shutdown"),
        "{}",
        server.log_text()
    );

    let left = tenant_rows(&db, doomed, "events").await;
    assert!(
        left > 0,
        "the purge finished before the signal; nothing was tested"
    );
    let receipted = scalar(
        &db,
        &platform_context_sql(),
        &format!(
            "SELECT COALESCE(sum((rows_removed ->> 'events')::bigint), 0)::bigint AS n
               FROM retention_runs WHERE tenant_id = '{doomed}' AND purged_at IS NULL"
        ),
    )
    .await;
    assert_eq!(
        receipted + left,
        before,
        "the receipt disagrees with what is gone"
    );

    // The next sweep finishes the job and accounts for every row.
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry_with(
        &db,
        &["sweep", "--once"],
        &[("TENANTRY__RETENTION__PERIOD", "1s")],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"purged\""), "{stdout}");
    assert_eq!(tenant_rows(&db, doomed, "events").await, 0);
    let total = scalar(
        &db,
        &platform_context_sql(),
        &format!(
            "SELECT (rows_removed ->> 'events')::bigint AS n FROM retention_runs
              WHERE tenant_id = '{doomed}' AND purged_at IS NOT NULL"
        ),
    )
    .await;
    assert_eq!(total, before);
}
