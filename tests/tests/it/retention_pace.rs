//! The adaptive purge (`[retention] adaptive`): against the real database,
//! a purge backs off (smaller batches, longer pauses) when its batches
//! run slow or the service's requests slow down, runs at its cap when
//! nothing suffers (an idle database, or one merely busy with other
//! sessions), and removes exactly the same either way.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::{TestApp, count_as, tenantry_bin, test_retention};

const EVENTS: i64 = 3_000;

async fn deleted_tenant(app: &TestApp, slug: &str) -> TenantId {
    let (status, t) = app
        .call(
            &app.admin_token(),
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let tenant: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    app.db
        .platform()
        .provision(tenant, |conn| {
            async move {
                tenantry_tests::insert_events(conn, tenant, EVENTS).await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let (status, _) = app
        .call(
            &app.admin_token(),
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tenant
}

/// `tenantry sweep --once` with batches of at most 200 rows, pauses of at
/// most 40 ms, and a batch-latency target no batch misses (so that only
/// the signal under test moves the pace, however loaded the machine).
fn sweeper(app: &TestApp) -> Command {
    let mut command = Command::new(tenantry_bin());
    command
        .args(["sweep", "--once"])
        .envs(app.test_db.binary_env())
        .env("TENANTRY__RETENTION__PERIOD", "1s")
        .env("TENANTRY__RETENTION__BATCH_SIZE", "200")
        .env("TENANTRY__RETENTION__MAX_BATCH_PAUSE", "40ms")
        .env("TENANTRY__RETENTION__TARGET_BATCH_LATENCY", "30s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

fn run(mut command: Command) -> Value {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sessions of the service's role on this database running `pg_sleep`.
async fn sleepers(conn: &mut AsyncPgConnection) -> i64 {
    let count: Count = sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND state = 'active'
            AND query LIKE 'SELECT pg_sleep%'",
    )
    .get_result(conn)
    .await
    .unwrap();
    count.n
}

/// The receipt of `tenant` in a sweep report.
fn receipt(report: &Value, tenant: TenantId) -> &Value {
    report["purged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant_id"] == tenant.to_string())
        .unwrap_or_else(|| panic!("{tenant} not purged: {report}"))
}

/// Runs `command` while `held` sessions of the service's role each run a
/// statement (`pg_sleep`) from before the purge starts until it ends.
async fn run_beside_busy_sessions(app: &TestApp, held: u32, command: Command) -> Value {
    let mut tasks = Vec::new();
    for _ in 0..held {
        let mut conn = app.test_db.app_conn().await;
        tasks.push(tokio::spawn(async move {
            let _ = sql_query("SELECT pg_sleep(30)").execute(&mut conn).await;
        }));
    }
    let mut watcher = app.test_db.app_conn().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleepers(&mut watcher).await < i64::from(held) {
        assert!(
            Instant::now() < deadline,
            "the sessions never became active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = tokio::task::spawn_blocking(move || run(command))
        .await
        .unwrap();
    assert!(
        sleepers(&mut watcher).await >= i64::from(held),
        "the sessions ended before the purge did"
    );
    sql_query(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'
            AND pid <> pg_backend_pid()",
    )
    .execute(&mut watcher)
    .await
    .unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_sessions_alone_do_not_slow_the_purge_but_slow_batches_do() {
    let app = TestApp::spawn().await;
    let quiet = deleted_tenant(&app, "quiet").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Nothing else running: it grows to its cap and never pauses.
    let report = run(sweeper(&app));
    let pacing = &report["pacing"];
    assert_eq!(receipt(&report, quiet)["rows_removed"]["events"], EVENTS);
    assert_eq!(pacing["adaptive"], true, "{pacing}");
    assert_eq!(pacing["max_batch"], 200, "{pacing}");
    assert_eq!(pacing["last_batch"], 200, "{pacing}");
    assert_eq!(pacing["paused_seconds"], 0.0, "{pacing}");
    assert_eq!(count_as(&app.db, quiet, "events").await, 0);

    // Eight sessions of the service's role busy throughout: traffic, but
    // nothing it suffers from (fast batches, no buffers written out for
    // it). The purge still reaches its cap without a pause.
    let busy = deleted_tenant(&app, "busy").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = run_beside_busy_sessions(&app, 8, sweeper(&app)).await;
    let pacing = &report["pacing"];
    assert_eq!(receipt(&report, busy)["rows_removed"]["events"], EVENTS);
    assert_eq!(pacing["max_batch"], 200, "{pacing}");
    assert_eq!(pacing["backoffs"]["batch_latency"], 0, "{pacing}");
    assert_eq!(pacing["paused_seconds"], 0.0, "{pacing}");
    assert_eq!(count_as(&app.db, busy, "events").await, 0);

    // Every batch slower than the target: the same receipt, reached in
    // floor-sized batches with the pauses at their longest.
    let slow = deleted_tenant(&app, "slow").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut command = sweeper(&app);
    command.env("TENANTRY__RETENTION__TARGET_BATCH_LATENCY", "1us");
    let started = Instant::now();
    let report = run(command);
    let took = started.elapsed();
    let pacing = &report["pacing"];
    assert_eq!(receipt(&report, slow)["rows_removed"]["events"], EVENTS);
    assert_eq!(count_as(&app.db, slow, "events").await, 0);
    let batches = pacing["batches"].as_u64().unwrap();
    assert!(batches >= 30, "{pacing}");
    assert_eq!(pacing["max_batch"], 100, "never grew: {pacing}");
    assert_eq!(pacing["min_batch"], 100, "{pacing}");
    assert!(
        pacing["backoffs"]["batch_latency"].as_u64().unwrap() >= batches - 1,
        "{pacing}"
    );
    assert_eq!(pacing["longest_pause_seconds"], 0.04, "{pacing}");
    let paused = pacing["paused_seconds"].as_f64().unwrap();
    assert!(paused >= 0.03 * 30.0, "{pacing}");
    assert!(took >= Duration::from_secs_f64(paused), "{took:?} {pacing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_off_keeps_fixed_batches_whatever_the_load() {
    let app = TestApp::spawn().await;
    let tenant = deleted_tenant(&app, "fixed").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Every batch over its latency target, and busy sessions about: a
    // fixed pace moves for neither.
    let mut command = sweeper(&app);
    command
        .env("TENANTRY__RETENTION__ADAPTIVE", "false")
        .env("TENANTRY__RETENTION__TARGET_BATCH_LATENCY", "1us");
    let report = run_beside_busy_sessions(&app, 4, command).await;
    let pacing = &report["pacing"];
    assert_eq!(receipt(&report, tenant)["rows_removed"]["events"], EVENTS);
    assert_eq!(pacing["adaptive"], false, "{pacing}");
    assert_eq!(pacing["batches"], EVENTS / 200, "{pacing}");
    assert_eq!(
        (&pacing["min_batch"], &pacing["max_batch"]),
        (&json!(200), &json!(200)),
        "{pacing}"
    );
    assert_eq!(pacing["paused_seconds"], 0.0, "{pacing}");
}

/// Inside `serve` the pacer also reads the service's own request latency:
/// fed a latency that has risen against its baseline, the purge backs off
/// on that signal alone; without it, the same purge never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_in_serve_backs_off_when_the_services_requests_slow_down() {
    let app = TestApp::spawn().await;
    let mut settings = test_retention(Duration::from_secs(1));
    settings.batch_size = 200;
    settings.max_batch_pause = Duration::from_millis(20);
    settings.target_batch_latency = Duration::from_secs(30);
    let (_raise, stop) = tenantry_sweeper::Stop::new();

    let calm = deleted_tenant(&app, "calm").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let load = tenantry_sweeper::RequestLoad::new();
    for _ in 0..1000 {
        load.record(0.002);
    }
    let report =
        tenantry_sweeper::sweep_paced(&app.db, &settings, "t", false, &stop, Some(&load), |_| {})
            .await
            .unwrap();
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].tenant_id, calm);
    assert_eq!(report.rows_removed, EVENTS);
    assert_eq!(report.pacing.backoffs_requests, 0, "{:?}", report.pacing);
    assert_eq!(report.pacing.max_batch, 200, "{:?}", report.pacing);
    let (_, baseline) = load.means();
    assert!((baseline - 0.002).abs() < 1e-9, "{baseline}");

    let slowed = deleted_tenant(&app, "slowed").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    {
        // Requests at five times their baseline (the baseline frozen as a
        // purge in this process would freeze it).
        let _purge = load.purging();
        for _ in 0..200 {
            load.record(0.010);
        }
    }
    assert!(load.slowed());
    let report =
        tenantry_sweeper::sweep_paced(&app.db, &settings, "t", false, &stop, Some(&load), |_| {})
            .await
            .unwrap();
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].tenant_id, slowed);
    assert_eq!(
        report.purged[0].rows_removed["events"],
        json!(EVENTS),
        "the same receipt"
    );
    let pacing = report.pacing;
    assert!(pacing.backoffs_requests >= pacing.batches - 1, "{pacing:?}");
    assert_eq!(
        (pacing.min_batch, pacing.max_batch),
        (100, 100),
        "{pacing:?}"
    );
    assert_eq!(
        pacing.longest_pause,
        Duration::from_millis(20),
        "{pacing:?}"
    );
    assert_eq!(count_as(&app.db, slowed, "events").await, 0);
}

/// The lowest id still in `tenant`'s events (`None`: none left).
async fn lowest_event(app: &TestApp, tenant: TenantId) -> Option<uuid::Uuid> {
    #[derive(QueryableByName)]
    struct Lowest {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
        id: Option<uuid::Uuid>,
    }
    app.db
        .platform()
        .provision(tenant, |conn| {
            async move {
                let row: Lowest =
                    sql_query("SELECT id FROM events WHERE tenant_id = $1 ORDER BY id LIMIT 1")
                        .bind::<diesel::sql_types::Uuid, _>(tenant)
                        .get_result(conn)
                        .await?;
                Ok::<_, DbError>(row.id)
            }
            .scope_boxed()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_goes_on_after_the_last_id_deleted_and_a_pass_from_the_start_finds_latecomers() {
    let app = TestApp::spawn().await;
    let tenant = deleted_tenant(&app, "keyset").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut session = app.db.purge_session(tenant).await.unwrap().unwrap();
    let run = session
        .claim(Duration::from_secs(1), "test")
        .await
        .unwrap()
        .unwrap();
    let lock = Duration::from_secs(2);

    // The 1,000 lowest ids go, and the batch names the highest of them.
    let first = session
        .delete_batch(run.id, "events", 1000, lock, None)
        .await
        .unwrap();
    assert_eq!(first.rows, 1000);
    let last = first.last.unwrap();
    assert!(lowest_event(&app, tenant).await.unwrap() > last);

    // A row arriving below that id is not what the next batch sees…
    let late = uuid::Uuid::from_u128(1);
    app.db
        .platform()
        .provision(tenant, |conn| {
            async move {
                sql_query(
                    "INSERT INTO events (tenant_id, id, kind, actor) VALUES ($1, $2, 'late', 't')",
                )
                .bind::<diesel::sql_types::Uuid, _>(tenant)
                .bind::<diesel::sql_types::Uuid, _>(late)
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let rest = session
        .delete_batch(run.id, "events", 5000, lock, Some(last))
        .await
        .unwrap();
    assert_eq!(rest.rows, EVENTS - 1000);
    assert!(rest.last.unwrap() > last);
    let past_the_end = session
        .delete_batch(run.id, "events", 5000, lock, rest.last)
        .await
        .unwrap();
    assert_eq!((past_the_end.rows, past_the_end.last), (0, None));
    assert_eq!(lowest_event(&app, tenant).await, Some(late));

    // …but a batch from the start is: the sweeper ends a table with one.
    let from_start = session
        .delete_batch(run.id, "events", 5000, lock, None)
        .await
        .unwrap();
    assert_eq!((from_start.rows, from_start.last), (1, Some(late)));
    assert_eq!(count_as(&app.db, tenant, "events").await, 0);
}
