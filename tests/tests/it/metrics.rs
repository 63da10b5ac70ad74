//! Per-tenant metrics against the real server and PostgreSQL: request and
//! latency series by tenant, route template and status class; rejections
//! by tenant; usage and lifecycle gauges from the refresher; pool gauges;
//! and the bound on the `tenant` label with 10,000 tenants sending traffic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::sql_types::{Array, Integer, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenantry_api::MetricsSettings;
use tenantry_core::TenantId;
use tenantry_tests::TestApp;

/// One sample line: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        // Label values here never hold `",`.
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
            map.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels: map,
            value: value.parse().expect("a number"),
        });
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn sum(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && keep(s))
        .map(|s| s.value)
        .sum()
}

/// The per-tenant families and their sample names.
const PER_TENANT: [&str; 7] = [
    "tenantry_http_requests_total",
    "tenantry_http_request_duration_seconds_count",
    "tenantry_http_request_duration_seconds_bucket",
    "tenantry_quota_rejections_total",
    "tenantry_rate_limited_total",
    "tenantry_tenant_quota_used",
    "tenantry_tenant_quota_limit",
];

fn tenant_values(samples: &[Sample], name: &str) -> HashSet<String> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| s.labels.get("tenant").cloned())
        .collect()
}

fn quick_refresh() -> MetricsSettings {
    MetricsSettings {
        refresh_interval: Duration::from_millis(100),
        ..MetricsSettings::default()
    }
}

/// Scrapes until `done` holds (the refresher runs on its own schedule).
async fn scrape_until(app: &TestApp, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let samples = parse(&app.metrics().await);
        if done(&samples) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting: {}",
            app.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_tenants_requests_show_by_tenant_route_and_status_class() {
    let app = TestApp::spawn().await;
    let (a, b) = (
        app.create_tenant("acme").await,
        app.create_tenant("globex").await,
    );
    let (ta, tb) = (app.tenant_token(a), app.tenant_token(b));
    for _ in 0..3 {
        assert_eq!(app.call(&ta, Method::GET, "/v1/users", None).await.0, 200);
    }
    let missing = format!("/v1/users/{}", uuid::Uuid::now_v7());
    assert_eq!(app.call(&ta, Method::GET, &missing, None).await.0, 404);
    for _ in 0..2 {
        assert_eq!(app.call(&tb, Method::GET, "/v1/users", None).await.0, 200);
    }
    // No tenant principal: `none`.
    assert_eq!(app.get("/v1/users").await.status(), 401);
    assert_eq!(app.get("/no/such/route").await.status(), 404);

    let text = app.metrics().await;
    let samples = parse(&text);
    let (a, b) = (a.to_string(), b.to_string());
    let requests = "tenantry_http_requests_total";
    for (tenant, route, class, n) in [
        (a.as_str(), "/v1/users", "2xx", 3.0),
        (a.as_str(), "/v1/users/{id}", "4xx", 1.0),
        (b.as_str(), "/v1/users", "2xx", 2.0),
        ("none", "/v1/users", "4xx", 1.0),
        ("none", "unmatched", "4xx", 1.0),
    ] {
        assert_eq!(
            value(
                &samples,
                requests,
                &[
                    ("tenant", tenant),
                    ("route", route),
                    ("status_class", class)
                ]
            ),
            Some(n),
            "{tenant} {route} {class}: {text}"
        );
    }
    // The route is the template, never the path.
    assert!(!text.contains(&missing), "{text}");
    let count = "tenantry_http_request_duration_seconds_count";
    assert_eq!(value(&samples, count, &[("tenant", &a)]), Some(4.0));
    assert_eq!(value(&samples, count, &[("tenant", &b)]), Some(2.0));
    let inf = "tenantry_http_request_duration_seconds_bucket";
    assert_eq!(
        value(&samples, inf, &[("tenant", &a), ("le", "+Inf")]),
        Some(4.0)
    );
    let sum_a = value(
        &samples,
        "tenantry_http_request_duration_seconds_sum",
        &[("tenant", &a)],
    )
    .unwrap();
    assert!(sum_a > 0.0 && sum_a < 40.0, "{sum_a}");
    // The retired names are gone.
    assert!(!text.contains("rate_limited_by_tenant"), "{text}");
    assert!(!text.contains("sweep_duration_ms"), "{text}");
    assert!(text.contains("# TYPE tenantry_sweep_duration_seconds gauge"));
}

#[tokio::test]
async fn quota_and_rate_limit_rejections_are_counted_by_tenant() {
    let app = TestApp::spawn().await;
    let (full, full_token) = app.tenant_with("full", json!({"max_users": 0})).await;
    let (noisy, noisy_token) = app
        .tenant_with("noisy", json!({"requests_per_second": 1, "burst": 2}))
        .await;
    for i in 0..3 {
        let (status, _) = app
            .call(
                &full_token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com")})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let mut limited = 0;
    for _ in 0..10 {
        let (status, _) = app.call(&noisy_token, Method::GET, "/v1/users", None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 5, "{limited}");
    let text = app.metrics().await;
    let samples = parse(&text);
    assert_eq!(
        value(
            &samples,
            "tenantry_quota_rejections_total",
            &[("tenant", &full.to_string()), ("resource", "users")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "tenantry_rate_limited_total",
            &[("tenant", &noisy.to_string())]
        ),
        Some(f64::from(limited)),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "tenantry_http_requests_total",
            &[
                ("tenant", &noisy.to_string()),
                ("route", "/v1/users"),
                ("status_class", "4xx")
            ]
        ),
        Some(f64::from(limited)),
        "{text}"
    );
}

#[tokio::test]
async fn usage_gauges_follow_the_tenants_real_usage() {
    let app = TestApp::builder().metrics(quick_refresh()).spawn().await;
    let (tenant, token) = app
        .tenant_with("acme", json!({"max_users": 7, "max_memory_gb": 64}))
        .await;
    for i in 0..2 {
        let (status, body) = app
            .call(
                &token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cluster}");
    let (status, body) = app
        .call(
            &token,
            Method::POST,
            "/v1/instances",
            Some(
                json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 3, "memory_gb": 5}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, quotas) = app.call(&token, Method::GET, "/v1/quotas", None).await;
    let t = tenant.to_string();
    let gib = 1024.0 * 1024.0 * 1024.0;
    let used = "tenantry_tenant_quota_used";
    let samples = scrape_until(&app, |s| {
        value(s, used, &[("tenant", &t), ("resource", "instances")]) == Some(1.0)
    })
    .await;
    for (resource, n) in [
        ("users", 2.0),
        ("clusters", 1.0),
        ("instances", 1.0),
        ("cpu_cores", 3.0),
        ("memory_bytes", 5.0 * gib),
        ("storage_bytes", 0.0),
    ] {
        assert_eq!(
            value(&samples, used, &[("tenant", &t), ("resource", resource)]),
            Some(n),
            "{resource}"
        );
    }
    // The API's own account of the usage agrees.
    assert_eq!(quotas["usage"]["users"], 2);
    assert_eq!(quotas["usage"]["cpu_cores"], 3);
    let limit = "tenantry_tenant_quota_limit";
    assert_eq!(
        value(&samples, limit, &[("tenant", &t), ("resource", "users")]),
        Some(7.0)
    );
    assert_eq!(
        value(
            &samples,
            limit,
            &[("tenant", &t), ("resource", "memory_bytes")]
        ),
        Some(64.0 * gib)
    );
    // Never for other/none.
    assert_eq!(tenant_values(&samples, used), HashSet::from([t]));
}

#[tokio::test]
async fn global_gauges_count_tenants_by_status_pending_purges_and_pools() {
    let app = TestApp::builder().metrics(quick_refresh()).spawn().await;
    let mut ids = Vec::new();
    for slug in ["one", "two", "three"] {
        let (id, _) = app.tenant_with(slug, json!({})).await;
        ids.push(id);
    }
    for (id, action) in [(ids[1], "suspend"), (ids[2], "delete")] {
        let (status, body) = app
            .admin_call(
                Method::POST,
                &format!("/v1/admin/tenants/{id}/{action}"),
                Some(json!({"reason": "test"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let samples = scrape_until(&app, |s| {
        value(s, "tenantry_tenants_awaiting_purge", &[]) == Some(1.0)
    })
    .await;
    for (status, n) in [
        ("active", 1.0),
        ("suspended", 1.0),
        ("archived", 0.0),
        ("deleted", 1.0),
    ] {
        assert_eq!(
            value(&samples, "tenantry_tenants", &[("status", status)]),
            Some(n),
            "{status}"
        );
    }
    let age = value(&samples, "tenantry_oldest_pending_purge_age_seconds", &[]).unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    for (name, n) in [
        ("tenantry_tenants_on_legal_hold", 0.0),
        ("tenantry_purge_overdue_tenants", 0.0),
        ("tenantry_quota_over_limit", 0.0),
        ("tenantry_retention_period_seconds", 90.0 * 24.0 * 3600.0),
        // The test app's retention settings: no scheduled sweeper.
        ("tenantry_sweeper_enabled", 0.0),
        ("tenantry_sweep_interval_seconds", 3600.0),
    ] {
        assert_eq!(value(&samples, name, &[]), Some(n), "{name}");
    }
    assert!(value(&samples, "tenantry_start_time_seconds", &[]).unwrap() > 1.7e9);
    assert_eq!(
        value(
            &samples,
            "tenantry_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // The test app's pools: 4 connections, and the admin pool.
    assert_eq!(
        value(
            &samples,
            "tenantry_db_pool_max_connections",
            &[("pool", "tenant")]
        ),
        Some(4.0)
    );
    for pool in ["tenant", "admin"] {
        assert!(
            value(
                &samples,
                "tenantry_db_pool_max_connections",
                &[("pool", pool)]
            )
            .unwrap()
                >= 1.0
        );
        for state in ["in_use", "idle"] {
            assert!(
                value(
                    &samples,
                    "tenantry_db_pool_connections",
                    &[("pool", pool), ("state", state)]
                )
                .is_some(),
                "{pool} {state}"
            );
        }
        assert_eq!(
            value(&samples, "tenantry_db_pool_waiting", &[("pool", pool)]),
            Some(0.0)
        );
        assert_eq!(
            value(
                &samples,
                "tenantry_db_pool_timeouts_total",
                &[("pool", pool)]
            ),
            Some(0.0)
        );
    }
    // The admin pool has served the refresher.
    let admin_open: f64 = sum(&samples, "tenantry_db_pool_connections", |s| {
        s.labels.get("pool").map(String::as_str) == Some("admin")
    });
    assert!(admin_open >= 1.0, "{admin_open}");
}

#[tokio::test]
async fn per_tenant_off_counts_every_tenant_as_other() {
    let app = TestApp::builder()
        .metrics(MetricsSettings {
            per_tenant: false,
            ..MetricsSettings::default()
        })
        .spawn()
        .await;
    for slug in ["one", "two"] {
        let tenant = app.create_tenant(slug).await;
        let token = app.tenant_token(tenant);
        assert_eq!(
            app.call(&token, Method::GET, "/v1/users", None).await.0,
            200
        );
    }
    let samples = parse(&app.metrics().await);
    let requests = "tenantry_http_requests_total";
    assert_eq!(
        tenant_values(&samples, requests),
        HashSet::from(["other".to_owned()])
    );
    assert_eq!(
        value(
            &samples,
            requests,
            &[("tenant", "other"), ("route", "/v1/users")]
        ),
        Some(2.0)
    );
}

/// Inserts `n` active tenants in bulk (the service's own rows: tenant,
/// quotas, usage) as the superuser (setup only: on Citus an INSERT ...
/// SELECT travels as COPY, which row-level security refuses); their ids.
async fn bulk_tenants(app: &TestApp, n: i32) -> Vec<TenantId> {
    use diesel_async::AsyncConnection as _;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: TenantId,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.test_db.superuser_url())
        .await
        .expect("connect as the superuser");
    let ids: Vec<Id> = diesel::sql_query(
        "INSERT INTO tenants (id, slug, name)
         SELECT gen_random_uuid(), 'bulk-' || i, 'bulk ' || i
           FROM generate_series(1, $1) AS i
         RETURNING id",
    )
    .bind::<Integer, _>(n)
    .load(&mut conn)
    .await
    .expect("bulk tenants");
    let ids: Vec<uuid::Uuid> = ids.into_iter().map(|i| *i.id.as_uuid()).collect();
    diesel::sql_query(
        "INSERT INTO tenant_quotas (tenant_id, max_users, max_api_keys, max_clusters,
             max_instances, max_cpu_cores, max_memory_gb, max_storage_gb,
             requests_per_second, burst)
         SELECT id, 10, 10, 10, 10, 10, 10, 10, 10000, 10000 FROM unnest($1) AS id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .execute(&mut conn)
    .await
    .expect("bulk quotas");
    diesel::sql_query("INSERT INTO tenant_usage (tenant_id) SELECT id FROM unnest($1) AS id")
        .bind::<Array<SqlUuid>, _>(&ids)
        .execute(&mut conn)
        .await
        .expect("bulk usage");
    ids.into_iter().map(TenantId::from).collect()
}

#[tokio::test]
async fn ten_thousand_tenants_stay_within_the_bound() {
    const TENANTS: i32 = 10_000;
    const K: usize = 20;
    const HOT: usize = 5;
    const HOT_REQUESTS: usize = 80;
    let allowed = TenantId::new();
    let mut server = tenantry_tests::test_server_settings();
    server.workers = 2;
    let app = TestApp::builder()
        .server(server)
        .pool(8)
        .metrics(MetricsSettings {
            tenant_series: K,
            tenant_allow_list: vec![allowed],
            refresh_interval: Duration::from_millis(500),
            ..MetricsSettings::default()
        })
        .spawn()
        .await;
    let started = Instant::now();
    let mut tenants = bulk_tenants(&app, TENANTS).await;
    let hot: Vec<TenantId> = tenants.drain(..HOT).collect();
    eprintln!("{TENANTS} tenants in {:?}", started.elapsed());
    let tokens: HashMap<TenantId, String> = hot
        .iter()
        .chain(&tenants)
        .map(|t| (*t, app.tenant_token(*t)))
        .collect();
    let send = |tenant: TenantId| {
        let request = app
            .client
            .get(app.url("/v1/tenant"))
            .bearer_auth(&tokens[&tenant]);
        async move { request.send().await.map(|r| r.status()) }
    };
    // Phase 1: the hot tenants' first half.
    let mut sent: HashMap<TenantId, usize> = HashMap::new();
    let first: Vec<TenantId> = (0..HOT_REQUESTS / 2).flat_map(|_| hot.clone()).collect();
    // Phase 2: every other tenant once, with the hot tenants' second half
    // interleaved.
    let mut second: Vec<TenantId> = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        second.push(*t);
        if i % (tenants.len() / (HOT_REQUESTS / 2)) == 0 {
            second.extend(hot.iter().copied());
        }
    }
    // Generous: on Citus every gate goes through the coordinator.
    let deadline = Instant::now() + Duration::from_secs(420);
    for phase in [first, second] {
        let mut results = futures_util::stream::iter(phase.into_iter().map(|t| {
            let f = send(t);
            async move { (t, f.await) }
        }))
        .buffer_unordered(16);
        while let Some((t, status)) = results.next().await {
            assert_eq!(status.expect("a response"), StatusCode::OK);
            *sent.entry(t).or_default() += 1;
            assert!(Instant::now() < deadline, "traffic took too long");
        }
    }
    let total: usize = sent.values().sum();
    eprintln!("{total} requests in {:?}", started.elapsed());
    assert_eq!(sent.len(), TENANTS as usize);
    // The refresher sets the tracked tenants' usage gauges.
    let hot_ids: Vec<String> = hot.iter().map(ToString::to_string).collect();
    let samples = scrape_until(&app, |s| {
        hot_ids.iter().all(|t| {
            value(
                s,
                "tenantry_tenant_quota_used",
                &[("tenant", t), ("resource", "users")],
            )
            .is_some()
        })
    })
    .await;
    for family in PER_TENANT {
        let values = tenant_values(&samples, family);
        assert!(
            values.len() <= K + 1 + 2,
            "{family}: {} tenant values",
            values.len()
        );
    }
    let requests = "tenantry_http_requests_total";
    let values = tenant_values(&samples, requests);
    assert!(values.contains("other"), "nobody counted as other");
    // The hot tenants have exact series of their own.
    for t in &hot {
        let t = t.to_string();
        assert!(values.contains(&t), "hot tenant {t} untracked");
        assert_eq!(
            value(
                &samples,
                requests,
                &[
                    ("tenant", &t),
                    ("route", "/v1/tenant"),
                    ("status_class", "2xx")
                ]
            ),
            Some(sent[&t.parse::<TenantId>().unwrap()] as f64),
            "hot tenant {t}"
        );
        assert!(
            value(
                &samples,
                "tenantry_tenant_quota_used",
                &[("tenant", &t), ("resource", "users")]
            )
            .is_some()
        );
    }
    // Nothing lost: every request is in exactly one series.
    let counted = sum(&samples, requests, |s| {
        s.labels.get("tenant").map(String::as_str) != Some("none")
    });
    assert_eq!(counted, total as f64);
    let latency = sum(
        &samples,
        "tenantry_http_request_duration_seconds_count",
        |s| s.labels.get("tenant").map(String::as_str) != Some("none"),
    );
    assert_eq!(latency, total as f64);
}
