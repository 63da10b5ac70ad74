//! The usage history for billing (issue #17): samples at each interval's
//! end that equal the live usage then, event-exact counters that reconcile
//! one sample with the next, the tenant's own view (RLS), the admin
//! plane's per-tenant report and finance export, CSV, bad input refused,
//! purged with the tenant, pruned past retention, sampled once however
//! many replicas try.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_ops::Operations;
use tenantry_ops::usage::UsageSettings;
use tenantry_tests::{
    TestApp, platform_context_sql, run_tenantry_with, tenant_context_sql, test_retention,
};

/// A short period, so a test crosses several boundaries.
const INTERVAL: Duration = Duration::from_secs(4);

fn usage_settings(enabled: bool) -> UsageSettings {
    UsageSettings {
        enabled,
        interval: INTERVAL,
        retention: Duration::from_secs(400 * 86_400),
    }
}

async fn spawn(enabled: bool) -> TestApp {
    TestApp::builder()
        .usage(usage_settings(enabled))
        .retention(test_retention(Duration::ZERO))
        .spawn()
        .await
}

/// The operations layer on the app's database, as another replica would
/// have it.
fn replica(app: &TestApp) -> Operations {
    let mut database = app.test_db.settings(4);
    database.usage_interval = INTERVAL;
    database.citus.tenant_multi_shard = tenantry_db::MultiShardLevel::Off;
    let mut tenancy = tenantry::settings::Settings::defaults()
        .unwrap()
        .tenancy()
        .unwrap();
    tenancy.usage = usage_settings(false);
    Operations::new(tenantry_db::Db::new(&database).unwrap(), tenancy)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap()
}

/// Sleeps until `offset` into the next period (local clock; the database
/// runs on this machine).
async fn into_next_period(offset: Duration) -> DateTime<Utc> {
    let now = Utc::now();
    let step = secs(INTERVAL);
    let start = now.timestamp() - now.timestamp().rem_euclid(step) + step;
    let target =
        DateTime::from_timestamp(start, 0).unwrap() + chrono::Duration::from_std(offset).unwrap();
    tokio::time::sleep((target - now).to_std().unwrap()).await;
    DateTime::from_timestamp(start, 0).unwrap()
}

async fn live_usage(app: &TestApp, token: &str) -> Value {
    let (status, quotas) = app.call(token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    quotas["usage"].clone()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `GET path?from=&to=&granularity=period` (urlencoded times).
fn report_path(path: &str, from: DateTime<Utc>, to: DateTime<Utc>, granularity: &str) -> String {
    let q = |t: DateTime<Utc>| rfc3339(t).replace('+', "%2B");
    format!(
        "{path}?from={}&to={}&granularity={granularity}",
        q(from),
        q(to)
    )
}

/// Polls `path` until it holds `n` items (the sampler runs a grace after
/// each boundary); at most 30 s.
async fn report_with(app: &TestApp, token: &str, path: &str, n: usize) -> Value {
    for _ in 0..300 {
        let (status, report) = app.call(token, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        if report["items"].as_array().unwrap().len() >= n {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path}: fewer than {n} periods within 30 s");
}

const RESOURCES: [&str; 7] = [
    "users",
    "api_keys",
    "clusters",
    "instances",
    "cpu_cores",
    "memory_gb",
    "storage_gb",
];

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = app.call(token, Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

async fn delete(app: &TestApp, token: &str, path: &str) {
    let (status, body) = app.call(token, Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
}

#[tokio::test]
async fn each_sample_is_the_live_usage_at_its_end_and_the_counters_reconcile_them() {
    let app = spawn(true).await;
    let tenant = app.create_tenant("metered").await;
    let token = app.tenant_token(tenant);

    // Period 1: a cluster, two instances, a user.
    let p1 = into_next_period(Duration::from_millis(300)).await;
    let cluster = create(
        &app,
        &token,
        "/v1/clusters",
        json!({"name": "main", "region": "eu"}),
    )
    .await;
    let vm = |name: &str, cpu: i32| json!({"name": name, "cluster_id": cluster["id"], "cpu_cores": cpu, "memory_gb": 2, "storage_gb": 10});
    let a = create(&app, &token, "/v1/instances", vm("a", 2)).await;
    create(&app, &token, "/v1/instances", vm("b", 1)).await;
    let user = create(
        &app,
        &token,
        "/v1/users",
        json!({"email": "one@example.com"}),
    )
    .await;
    let end1 = live_usage(&app, &token).await;

    // Period 2: one instance and the user go, a resize, a second user.
    let p2 = into_next_period(Duration::from_millis(300)).await;
    assert_eq!(
        p2.timestamp() - p1.timestamp(),
        secs(INTERVAL),
        "period 1 overran"
    );
    delete(
        &app,
        &token,
        &format!("/v1/instances/{}", a["id"].as_str().unwrap()),
    )
    .await;
    delete(
        &app,
        &token,
        &format!("/v1/users/{}", user["id"].as_str().unwrap()),
    )
    .await;
    create(
        &app,
        &token,
        "/v1/users",
        json!({"email": "two@example.com"}),
    )
    .await;
    let end2 = live_usage(&app, &token).await;

    // Period 3: nothing happens.
    let p3 = into_next_period(Duration::from_millis(300)).await;
    assert_eq!(
        p3.timestamp() - p2.timestamp(),
        secs(INTERVAL),
        "period 2 overran"
    );

    let path = report_path("/v1/usage", p1, p3 + chrono::Duration::seconds(1), "period");
    let report = report_with(&app, &token, &path, 3).await;
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{report}");
    assert_eq!(report["granularity"], "period");
    assert_eq!(report["interval_seconds"], secs(INTERVAL));
    let starts: Vec<&str> = items
        .iter()
        .map(|i| i["period_start"].as_str().unwrap())
        .collect();
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    assert_eq!(
        starts.iter().map(|s| parse(s)).collect::<Vec<_>>(),
        [p1, p2, p3]
    );
    for item in items {
        assert_eq!(item["tenant_id"], tenant.to_string());
        assert_eq!(item["tenant_slug"], "metered");
        assert_eq!(item["samples"], 1);
        assert_eq!(
            parse(item["period_end"].as_str().unwrap())
                - parse(item["period_start"].as_str().unwrap()),
            chrono::Duration::seconds(secs(INTERVAL))
        );
    }
    // Each sample is the usage at its period's end (nothing changed
    // between the read and the boundary).
    for r in RESOURCES {
        assert_eq!(
            items[0]["usage"][r], end1[r],
            "{r} at the end of period 1: {report}"
        );
        assert_eq!(
            items[1]["usage"][r], end2[r],
            "{r} at the end of period 2: {report}"
        );
        assert_eq!(
            items[2]["usage"][r], end2[r],
            "{r} at the end of period 3: {report}"
        );
    }
    // sample(prev) + provisioned − released = sample(next), for every
    // resource and every pair; the first against an empty start.
    for r in RESOURCES {
        let at = |i: usize, what: &str| items[i][what][r].as_i64().unwrap();
        assert_eq!(
            at(0, "provisioned") - at(0, "released"),
            at(0, "usage"),
            "{r}"
        );
        for i in 1..items.len() {
            assert_eq!(
                at(i - 1, "usage") + at(i, "provisioned") - at(i, "released"),
                at(i, "usage"),
                "{r}, period {i}: {report}"
            );
        }
    }
    // The counters are the events themselves.
    assert_eq!(
        items[0]["provisioned"],
        json!({"users": 1, "api_keys": 0, "clusters": 1, "instances": 2, "cpu_cores": 3, "memory_gb": 4, "storage_gb": 20})
    );
    assert_eq!(items[1]["provisioned"]["users"], 1);
    assert_eq!(
        items[1]["released"],
        json!({"users": 1, "api_keys": 0, "clusters": 0, "instances": 1, "cpu_cores": 2, "memory_gb": 2, "storage_gb": 10})
    );
    assert_eq!(
        items[2]["provisioned"],
        json!({"users": 0, "api_keys": 0, "clusters": 0, "instances": 0, "cpu_cores": 0, "memory_gb": 0, "storage_gb": 0})
    );

    // By hour: one bucket (or two, across an hour boundary) aggregating
    // the periods — the usage at its end, the peak, the counters summed.
    let hourly = report_path("/v1/usage", p1, p3 + chrono::Duration::seconds(1), "hour");
    let (status, by_hour) = app.call(&token, Method::GET, &hourly, None).await;
    assert_eq!(status, StatusCode::OK, "{by_hour}");
    let buckets = by_hour["items"].as_array().unwrap();
    let last = buckets.last().unwrap();
    assert_eq!(last["usage"], items[2]["usage"]);
    let sum = |what: &str, r: &str| {
        buckets
            .iter()
            .map(|b| b[what][r].as_i64().unwrap())
            .sum::<i64>()
    };
    for r in RESOURCES {
        let total = |what: &str| {
            items
                .iter()
                .map(|i| i[what][r].as_i64().unwrap())
                .sum::<i64>()
        };
        assert_eq!(sum("provisioned", r), total("provisioned"), "{r}");
        assert_eq!(sum("released", r), total("released"), "{r}");
        let peak = items
            .iter()
            .map(|i| i["usage"][r].as_i64().unwrap())
            .max()
            .unwrap();
        let got = buckets
            .iter()
            .map(|b| b["peak"][r].as_i64().unwrap())
            .max()
            .unwrap();
        assert_eq!(got, peak, "{r}");
    }
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["samples"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count_in(
    conn: &mut diesel_async::AsyncPgConnection,
    context: &str,
    tenant: TenantId,
) -> i64 {
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute(context).await.unwrap();
    let c: Count =
        diesel::sql_query("SELECT count(*) AS n FROM usage_history WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(tenant)
            .get_result(conn)
            .await
            .unwrap();
    conn.batch_execute("COMMIT").await.unwrap();
    c.n
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_history() {
    let app = spawn(false).await;
    let ops = replica(&app);
    let (a, b) = (
        app.create_tenant("own-a").await,
        app.create_tenant("own-b").await,
    );
    let (token_a, token_b) = (app.tenant_token(a), app.tenant_token(b));
    create(
        &app,
        &token_a,
        "/v1/users",
        json!({"email": "a@example.com"}),
    )
    .await;
    into_next_period(Duration::from_millis(600)).await;
    tenantry_ops::usage::sample(&ops, 1).await.unwrap();

    let path = "/v1/usage?granularity=period";
    let (_, mine) = app.call(&token_a, Method::GET, path, None).await;
    let (status, theirs) = app.call(&token_b, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!mine["items"].as_array().unwrap().is_empty(), "{mine}");
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tenant_id"] == b.to_string()),
        "{theirs}"
    );
    assert_eq!(mine["items"][0]["usage"]["users"], 1);

    // In SQL, as the service's role: B's context sees none of A's rows,
    // and cannot write one; A's own context sees them.
    let mut conn = app.test_db.app_conn().await;
    assert!(count_in(&mut conn, &tenant_context_sql(a), a).await >= 1);
    assert_eq!(count_in(&mut conn, &tenant_context_sql(b), a).await, 0);
    assert_eq!(
        count_in(&mut conn, "SELECT 1", a).await,
        0,
        "no context, no rows"
    );
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute(&tenant_context_sql(b)).await.unwrap();
    let forged = diesel::sql_query(
        "INSERT INTO usage_history (tenant_id, id, period_start) VALUES ($1, gen_random_uuid(), now())",
    )
    .bind::<SqlUuid, _>(a)
    .execute(&mut conn)
    .await;
    assert!(forged.is_err(), "B wrote a row of A's history");
    conn.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn admins_read_one_tenant_and_export_every_tenant_as_json_and_csv() {
    let app = spawn(false).await;
    let ops = replica(&app);
    let (a, b) = (
        app.create_tenant("fin-a").await,
        app.create_tenant("fin-b").await,
    );
    create(
        &app,
        &app.tenant_token(a),
        "/v1/users",
        json!({"email": "a@example.com"}),
    )
    .await;
    create(
        &app,
        &app.tenant_token(b),
        "/v1/clusters",
        json!({"name": "c", "region": "eu"}),
    )
    .await;
    into_next_period(Duration::from_millis(600)).await;
    tenantry_ops::usage::sample(&ops, 1).await.unwrap();
    let admin = app.admin_token();

    // One tenant, by slug.
    let (status, one) = app
        .call(
            &admin,
            Method::GET,
            "/v1/admin/tenants/fin-b/usage?granularity=period",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let items = one["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{one}");
    assert_eq!(items[0]["tenant_id"], b.to_string());
    assert_eq!(items[0]["usage"]["clusters"], 1);
    assert_eq!(items[0]["usage"]["users"], 0);
    let (status, _) = app
        .call(&admin, Method::GET, "/v1/admin/tenants/nobody/usage", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A tenant token never reaches the admin plane.
    let (status, _) = app
        .call(&app.tenant_token(a), Method::GET, "/v1/admin/usage", None)
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );

    // The finance export, a tenant a page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..5 {
        let (status, page) = app
            .call(
                &admin,
                Method::GET,
                &format!("/v1/admin/usage?granularity=day&limit=1&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["tenant_slug"].as_str().unwrap().to_owned());
            assert_eq!(item["samples"], 1, "{item}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["fin-a", "fin-b"]);

    // CSV: by Accept, or by format=csv; a header, then a record per tenant
    // and period, CRLF-terminated.
    let csv = app
        .with_token(Method::GET, "/v1/admin/usage?granularity=day", &admin)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{:?}",
        csv.headers()
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        header[..5],
        [
            "tenant_id",
            "tenant_slug",
            "period_start",
            "period_end",
            "samples"
        ]
    );
    assert_eq!(header.len(), 5 + 4 * 7);
    assert!(header.contains(&"cpu_cores_peak") && header.contains(&"storage_gb_released"));
    let row = |slug: &str| {
        lines[1..]
            .iter()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[1] == slug)
            .unwrap()
    };
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(row("fin-a")[col("users")], "1");
    assert_eq!(row("fin-a")[col("users_provisioned")], "1");
    assert_eq!(row("fin-b")[col("clusters")], "1");
    assert_eq!(row("fin-b")[0], b.to_string());
    for line in &lines {
        assert_eq!(line.split(',').count(), header.len(), "{line}");
    }
    // The tenant plane's CSV, by format=csv, with its own rows only.
    let own = app
        .with_token(
            Method::GET,
            "/v1/usage?format=csv&granularity=period",
            &app.tenant_token(a),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own = own.text().await.unwrap();
    assert_eq!(own.lines().count(), 2, "{own}");
    assert!(own.lines().nth(1).unwrap().contains(",fin-a,"), "{own}");
}

#[tokio::test]
async fn bad_ranges_and_granularities_are_400_and_change_nothing() {
    let app = spawn(false).await;
    let tenant = app.create_tenant("bad-input").await;
    let token = app.tenant_token(tenant);
    create(&app, &token, "/v1/users", json!({"email": "a@example.com"})).await;
    let before = tenantry_tests::count_as_platform(&app.db, "usage_history").await;
    for query in [
        "granularity=week",
        "granularity=",
        "from=yesterday",
        "to=2026-02-30T00:00:00Z",
        "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
        "from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        "from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&granularity=hour",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&granularity=period",
        "format=xml",
    ] {
        for path in [
            "/v1/usage",
            "/v1/admin/usage",
            "/v1/admin/tenants/bad-input/usage",
        ] {
            let who = if path.starts_with("/v1/admin") {
                app.admin_token()
            } else {
                token.clone()
            };
            let response = app
                .with_token(Method::GET, &format!("{path}?{query}"), &who)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if query == "granularity=" {
                // An empty parameter is the default.
                assert_eq!(status, StatusCode::OK, "{path}?{query}: {body}");
                continue;
            }
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}: {body}");
            assert_eq!(content_type, "application/problem+json", "{path}?{query}");
            assert_eq!(body["code"], "bad_request", "{body}");
            assert!(
                !body["detail"].as_str().unwrap().contains("SELECT"),
                "{body}"
            );
        }
    }
    assert_eq!(
        tenantry_tests::count_as_platform(&app.db, "usage_history").await,
        before
    );
}

#[tokio::test]
async fn replicas_sampling_the_same_period_write_it_once_and_old_history_is_pruned() {
    let app = spawn(false).await;
    let tenants = [
        app.create_tenant("rep-a").await,
        app.create_tenant("rep-b").await,
        app.create_tenant("rep-c").await,
    ];
    for t in tenants {
        create(
            &app,
            &app.tenant_token(t),
            "/v1/users",
            json!({"email": "x@example.com"}),
        )
        .await;
    }
    // A period long past the retention, to be pruned.
    let mut conn = app.test_db.app_conn().await;
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute(&platform_context_sql()).await.unwrap();
    diesel::sql_query(
        "INSERT INTO usage_history (tenant_id, id, period_start, users, sampled_at)
         VALUES ($1, gen_random_uuid(), now() - interval '401 days', 7, now() - interval '401 days')",
    )
    .bind::<SqlUuid, _>(tenants[0])
    .execute(&mut conn)
    .await
    .unwrap();
    conn.batch_execute("COMMIT").await.unwrap();

    let period = into_next_period(Duration::from_millis(600)).await
        - chrono::Duration::seconds(secs(INTERVAL));
    let replicas: Vec<Operations> = (0..4).map(|_| replica(&app)).collect();
    let reports = futures_util::future::join_all(
        replicas
            .iter()
            .map(|ops| tenantry_ops::usage::sample(ops, 1)),
    )
    .await;
    let mut sampled = 0;
    let mut pruned = 0;
    for report in reports {
        let report = report.unwrap();
        assert_eq!(report.periods.len(), 1);
        assert_eq!(report.periods[0].0, period, "{report:?}");
        sampled += report.periods[0].1;
        pruned += report.pruned;
    }
    assert_eq!(sampled, tenants.len(), "each tenant's period written once");
    assert_eq!(pruned, 1, "the period past retention, once");

    // One row per tenant and period, with the usage, whoever wrote it; the
    // CLI's run finds it done.
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = BigInt)]
        users: i64,
    }
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute(&platform_context_sql()).await.unwrap();
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT count(*) AS n, sum(users)::bigint AS users FROM usage_history
          WHERE period_start = $1 GROUP BY tenant_id",
    )
    .bind::<Timestamptz, _>(period)
    .load(&mut conn)
    .await
    .unwrap();
    let old: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM usage_history WHERE period_start < now() - interval '400 days'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    conn.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows.len(), tenants.len());
    assert!(rows.iter().all(|r| r.n == 1 && r.users == 1));
    assert_eq!(old.n, 0, "pruned");

    let interval = format!("{}s", secs(INTERVAL));
    let env = [("TENANTRY__USAGE__INTERVAL", interval.as_str())];
    let (ok, out, err) = run_tenantry_with(&app.test_db, &["usage", "sample"], &env);
    assert!(ok, "{err}");
    assert!(
        out.contains("sampled 0 tenant(s)") || out.contains("sampled 3 tenant(s)"),
        "{out}"
    );
    let (ok, out, err) = run_tenantry_with(
        &app.test_db,
        &[
            "usage",
            "export",
            "--granularity",
            "period",
            "--from",
            &rfc3339(period),
        ],
        &env,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.split_terminator("\r\n").collect();
    assert!(
        lines[0].starts_with("tenant_id,tenant_slug,period_start,"),
        "{out}"
    );
    assert!(lines.len() > tenants.len(), "{out}");
    for slug in ["rep-a", "rep-b", "rep-c"] {
        assert!(
            out.contains(&format!(",{slug},{}", rfc3339(period))),
            "{slug}: {out}"
        );
    }
}

#[tokio::test]
async fn the_history_is_purged_with_the_tenant() {
    let app = spawn(false).await;
    let ops = replica(&app);
    let (gone, kept) = (
        app.create_tenant("purged").await,
        app.create_tenant("kept").await,
    );
    for t in [gone, kept] {
        create(
            &app,
            &app.tenant_token(t),
            "/v1/users",
            json!({"email": "x@example.com"}),
        )
        .await;
    }
    into_next_period(Duration::from_millis(600)).await;
    tenantry_ops::usage::sample(&ops, 1).await.unwrap();
    let admin = app.admin_token();
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/v1/admin/tenants/{gone}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, report) = app
        .call(&admin, Method::POST, "/v1/admin/retention/sweep", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(
        report["purged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rows_removed"]["usage_history"].as_i64() >= Some(1)),
        "{report}"
    );
    assert_eq!(
        tenantry_tests::count_as(&app.db, gone, "usage_history").await,
        0
    );
    assert!(tenantry_tests::count_as(&app.db, kept, "usage_history").await >= 1);
    // And a purged tenant is sampled no more.
    into_next_period(Duration::from_millis(600)).await;
    let report = tenantry_ops::usage::sample(&ops, 1).await.unwrap();
    assert_eq!(report.periods[0].1, 1, "{report:?}");
    assert_eq!(
        tenantry_tests::count_as(&app.db, gone, "usage_history").await,
        0
    );
}
