//! Webhooks over real HTTP against a local receiver on 127.0.0.1 that can
//! fail, time out and recover: signatures, retries with their attempts,
//! giving up and replaying, the outbox's transactional and durable
//! guarantees, tenant isolation, platform events, and the SSRF guard.

use std::time::Duration;

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt;
use tenantry_tests::webhook_receiver::{Answer, Received, Receiver};
use tenantry_tests::{TestApp, tenant_context_sql, test_retention, test_webhooks};

/// Long enough for a few attempts at the test backoff (200-400 ms), each
/// bounded by the 1 s test timeout.
const WAIT: Duration = Duration::from_secs(15);

async fn app() -> TestApp {
    TestApp::builder().webhooks(test_webhooks()).spawn().await
}

/// Registers a tenant webhook; returns (id, secret).
async fn register(app: &TestApp, token: &str, url: &str, types: Value) -> (String, String) {
    let (status, body) = app
        .call(
            token,
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": types})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn register_platform(app: &TestApp, url: &str) -> (String, String) {
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn create_user(app: &TestApp, token: &str, email: &str) -> StatusCode {
    app.call(
        token,
        Method::POST,
        "/v1/users",
        Some(json!({"email": email})),
    )
    .await
    .0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies `Tenantry-Signature` as a receiver would: the timestamp within
/// five minutes of now, and v1 the HMAC-SHA256 of "<t>.<body>".
fn verify(r: &Received, secret: &str) -> bool {
    let Some(header) = r.header("tenantry-signature") else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    hex(&mac.finalize().into_bytes()) == v1
}

fn of_type<'a>(got: &'a [Received], kind: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|r| r.header("tenantry-event-type") == Some(kind))
        .collect()
}

/// Polls the endpoint's deliveries until `pred` holds for the first one.
async fn wait_delivery(
    app: &TestApp,
    token: &str,
    path: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = app.call(token, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if let Some(first) = body["items"].as_array().and_then(|i| i.iter().next())
            && pred(first)
        {
            return first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery did not get there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_delivery_is_signed_with_the_secret_shown_at_creation_and_rotation_changes_it() {
    let app = app().await;
    let receiver = Receiver::start().await;
    let (tenant, token) = app.tenant_with("signed", json!({})).await;
    let (id, secret) = register(&app, &token, &receiver.url, json!(["user.created"])).await;
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );
    // The secret is never shown again.
    let (status, shown) = app
        .call(&token, Method::GET, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&secret));

    assert_eq!(
        create_user(&app, &token, "a@example.com").await,
        StatusCode::CREATED
    );
    let got = receiver.wait_for(WAIT, |r| !r.is_empty()).await;
    assert_eq!(got.len(), 1, "only the subscribed type");
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert!(
        verify(r, &secret),
        "the signature verifies: {:?}",
        r.headers
    );
    assert!(!verify(r, "whsec_wrong"), "and not with another secret");
    let body = r.json();
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["tenant_id"], tenant.to_string());
    assert_eq!(body["data"]["details"]["email"], "a@example.com", "{body}");
    assert!(body["occurred_at"].is_string());
    assert_eq!(r.header("tenantry-event-id"), body["id"].as_str());
    assert_eq!(r.header("tenantry-event-type"), Some("user.created"));
    let delivery_id = r.header("tenantry-delivery-id").unwrap().to_owned();
    let delivery = wait_delivery(
        &app,
        &token,
        &format!("/v1/webhooks/{id}/deliveries"),
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(delivery["id"], delivery_id);
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["attempt_log"][0]["status_code"], 200);

    // Rotation: a new secret, shown once; the old one no longer verifies.
    let (status, rotated) = app
        .call(
            &token,
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        create_user(&app, &token, "b@example.com").await,
        StatusCode::CREATED
    );
    let got = receiver.wait_for(WAIT, |r| r.len() >= 2).await;
    assert!(verify(&got[1], &new_secret));
    assert!(!verify(&got[1], &secret));

    // Every change is audited.
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant={tenant}&limit=100"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.contains(&"webhook.created"), "{audit}");
    assert!(actions.contains(&"webhook.secret_rotated"), "{audit}");
    assert!(!audit.to_string().contains(&new_secret));
}

#[tokio::test]
async fn a_failing_then_timing_out_endpoint_gets_the_delivery_once_it_recovers() {
    let app = app().await;
    let receiver = Receiver::start().await;
    // 500, then an answer only after the 1 s timeout, then 200.
    receiver.script([
        Answer::Status(500),
        Answer::SleepThenOk(Duration::from_millis(2500)),
    ]);
    let (_, token) = app.tenant_with("flaky", json!({})).await;
    let (id, secret) = register(&app, &token, &receiver.url, Value::Null).await;
    assert_eq!(
        create_user(&app, &token, "a@example.com").await,
        StatusCode::CREATED
    );

    let delivery = wait_delivery(
        &app,
        &token,
        &format!("/v1/webhooks/{id}/deliveries"),
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    let log = delivery["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{delivery}");
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["error"], "http_500");
    assert_eq!(log[1]["error"], "timeout", "a timeout is a failed attempt");
    assert!(log[1]["status_code"].is_null());
    assert!(log[1]["duration_ms"].as_i64().unwrap() >= 900, "{delivery}");
    assert_eq!(log[2]["status_code"], 200);
    assert!(log[2]["error"].is_null());
    assert!(delivery["delivered_at"].is_string());
    // The same event and delivery each time, each signed afresh.
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("tenantry-delivery-id"))
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    assert!(got.iter().all(|r| verify(r, &secret)));
}

#[tokio::test]
async fn after_max_attempts_a_delivery_fails_and_a_replay_delivers_it() {
    let app = app().await;
    let receiver = Receiver::start().await;
    receiver.script([
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(500),
    ]);
    let (_, token) = app.tenant_with("gives-up", json!({})).await;
    let (id, _) = register(&app, &token, &receiver.url, Value::Null).await;
    assert_eq!(
        create_user(&app, &token, "a@example.com").await,
        StatusCode::CREATED
    );
    let path = format!("/v1/webhooks/{id}/deliveries");
    let failed = wait_delivery(&app, &token, &path, |d| d["status"] == "failed").await;
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(failed["last_status_code"], 500);
    // Failed stays failed: no fourth attempt.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 3);

    let delivery = failed["id"].as_str().unwrap();
    let (status, replayed) = app
        .call(
            &token,
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/{delivery}/replay"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["status"], "pending");
    let done = wait_delivery(&app, &token, &path, |d| d["status"] == "delivered").await;
    assert_eq!(done["attempts"], 1, "a fresh budget: {done}");
    assert_eq!(done["attempt_log"].as_array().unwrap().len(), 4, "{done}");
    assert_eq!(receiver.received().len(), 4);
    // The worker's totals on /metrics: two failed attempts, one that gave
    // up (the third), one delivery (the replay).
    let metrics = app.metrics().await;
    for (outcome, n) in [("delivered", 1), ("failed_attempt", 2), ("gave_up", 1)] {
        let line = format!("tenantry_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}");
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} in:\n{}",
            metrics
                .lines()
                .filter(|l| l.contains("webhook"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // A delivery of another endpoint, or none at all: 404, nothing changes.
    let (other, _) = register(&app, &token, &receiver.url, Value::Null).await;
    for path in [
        format!("/v1/webhooks/{other}/deliveries/{delivery}/replay"),
        format!(
            "/v1/webhooks/{id}/deliveries/{}/replay",
            uuid::Uuid::now_v7()
        ),
        format!("/v1/webhooks/{id}/deliveries/not-a-uuid/replay"),
    ] {
        let (status, body) = app.call(&token, Method::POST, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_rolled_back_operation_sends_nothing() {
    let app = app().await;
    let tenant_receiver = Receiver::start().await;
    let platform_receiver = Receiver::start().await;
    register_platform(&app, &platform_receiver.url).await;
    let (tenant, token) = app.tenant_with("rollback", json!({"max_users": 1})).await;
    register(&app, &token, &tenant_receiver.url, Value::Null).await;

    assert_eq!(
        create_user(&app, &token, "a@example.com").await,
        StatusCode::CREATED
    );
    // Refused by the quota: its event (and delivery) roll back with it.
    let refused = create_user(&app, &token, "b@example.com").await;
    assert!(refused.is_client_error(), "{refused}");
    // A tenant create refused as a conflict: no tenant.created goes out.
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "rollback", "name": "again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    tenant_receiver.wait_for(WAIT, |r| !r.is_empty()).await;
    platform_receiver.wait_for(WAIT, |r| !r.is_empty()).await;
    // Several poll intervals more: nothing else arrives.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = tenant_receiver.received();
    assert_eq!(got.len(), 1, "only the committed create");
    assert_eq!(got[0].json()["data"]["details"]["email"], "a@example.com");
    let created = of_type(&platform_receiver.received(), "tenant.created")
        .into_iter()
        .map(Received::json)
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["tenant_id"], tenant.to_string());

    // And the outbox holds exactly one tenant delivery.
    let mut conn = app.test_db.app_conn().await;
    let n: i64 = conn
        .transaction(async |conn| {
            conn.batch_execute(&tenant_context_sql(tenant)).await?;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            let row: N = diesel::sql_query("SELECT count(*) AS n FROM webhook_deliveries")
                .get_result(conn)
                .await?;
            Ok::<_, diesel::result::Error>(row.n)
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn an_event_committed_while_the_worker_is_off_is_delivered_after_a_restart() {
    // The worker off (the harness's default): the outbox fills, nothing goes.
    let first = TestApp::builder().spawn().await;
    let receiver = Receiver::start().await;
    let (_, token) = first.tenant_with("durable", json!({})).await;
    let (id, secret) = register(&first, &token, &receiver.url, Value::Null).await;
    assert_eq!(
        create_user(&first, &token, "a@example.com").await,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
    let (_, pending) = first
        .call(
            &token,
            Method::GET,
            &format!("/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(pending["items"][0]["status"], "pending", "{pending}");
    assert_eq!(pending["items"][0]["attempts"], 0);

    // Another process on the same database, with the worker on.
    let _second = TestApp::builder()
        .on(first.test_db.clone())
        .webhooks(test_webhooks())
        .spawn()
        .await;
    let got = receiver.wait_for(WAIT, |r| !r.is_empty()).await;
    assert_eq!(got[0].header("tenantry-event-type"), Some("user.created"));
    assert!(verify(&got[0], &secret));
}

#[tokio::test]
async fn a_tenants_endpoint_never_hears_another_tenants_events() {
    let app = app().await;
    let (ra, rb) = (Receiver::start().await, Receiver::start().await);
    let (a, token_a) = app.tenant_with("tenant-a", json!({})).await;
    let (b, token_b) = app.tenant_with("tenant-b", json!({})).await;
    let (id_a, _) = register(&app, &token_a, &ra.url, Value::Null).await;
    let (id_b, _) = register(&app, &token_b, &rb.url, Value::Null).await;
    for i in 0..3 {
        assert_eq!(
            create_user(&app, &token_a, &format!("a{i}@example.com")).await,
            StatusCode::CREATED
        );
        assert_eq!(
            create_user(&app, &token_b, &format!("b{i}@example.com")).await,
            StatusCode::CREATED
        );
    }
    let got_a = ra.wait_for(WAIT, |r| r.len() >= 3).await;
    let got_b = rb.wait_for(WAIT, |r| r.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ra.received().len(), 3);
    assert_eq!(rb.received().len(), 3);
    assert!(got_a.iter().all(|r| r.json()["tenant_id"] == a.to_string()));
    assert!(got_b.iter().all(|r| r.json()["tenant_id"] == b.to_string()));

    // Through the API, B's endpoint does not exist for A.
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{id_b}")),
        (Method::GET, format!("/v1/webhooks/{id_b}/deliveries")),
        (Method::PATCH, format!("/v1/webhooks/{id_b}")),
        (Method::POST, format!("/v1/webhooks/{id_b}/rotate-secret")),
        (Method::DELETE, format!("/v1/webhooks/{id_b}")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let (status, _) = app.call(&token_a, method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, list_a) = app.call(&token_a, Method::GET, "/v1/webhooks", None).await;
    assert_eq!(list_a["items"].as_array().unwrap().len(), 1);
    assert_eq!(list_a["items"][0]["id"], id_a);

    // In SQL, under A's context: B's endpoints and deliveries are invisible,
    // even asked for by tenant id, and cannot be written.
    let mut conn = app.test_db.app_conn().await;
    conn.transaction(async |conn| {
        conn.batch_execute(&tenant_context_sql(a)).await?;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        for (sql, expected) in [
            ("SELECT count(*) AS n FROM webhook_endpoints", 1),
            (
                "SELECT count(*) AS n FROM webhook_endpoints WHERE tenant_id = $1",
                0,
            ),
            (
                "SELECT count(*) AS n FROM webhook_deliveries WHERE tenant_id = $1",
                0,
            ),
            (
                "SELECT count(*) AS n FROM platform_webhook_endpoints WHERE $1::uuid IS NOT NULL",
                0,
            ),
        ] {
            let row: N = diesel::sql_query(sql)
                .bind::<SqlUuid, _>(b)
                .get_result(conn)
                .await?;
            assert_eq!(row.n, expected, "{sql}");
        }
        let row: N = diesel::sql_query("SELECT count(*) AS n FROM webhook_deliveries")
            .get_result(conn)
            .await?;
        assert_eq!(row.n, 3);
        let updated = diesel::sql_query(
            "UPDATE webhook_endpoints SET url = 'http://x.example/' WHERE tenant_id = $1",
        )
        .bind::<SqlUuid, _>(b)
        .execute(conn)
        .await?;
        assert_eq!(updated, 0);
        Ok::<_, diesel::result::Error>(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn platform_endpoints_hear_lifecycle_quota_and_purge_events() {
    let app = TestApp::builder()
        .webhooks(test_webhooks())
        .retention(test_retention(Duration::from_secs(1)))
        .spawn()
        .await;
    let platform = Receiver::start().await;
    let own = Receiver::start().await;
    let (_, platform_secret) = register_platform(&app, &platform.url).await;
    let (tenant, token) = app.tenant_with("lifecycle", json!({})).await;
    register(&app, &token, &own.url, json!(["tenant.suspend"])).await;
    let admin_path = format!("/v1/admin/tenants/{tenant}");
    let (status, body) = app
        .admin_call(
            Method::POST,
            &format!("{admin_path}/suspend"),
            Some(json!({"reason": "unpaid"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("{admin_path}/quotas"),
            Some(json!({"limits": {"max_users": 7}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin_call(Method::POST, &format!("{admin_path}/delete"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, report) = app
        .admin_call(
            Method::POST,
            "/v1/admin/retention/sweep?dry_run=false",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");

    let kinds = [
        "tenant.created",
        "tenant.suspend",
        "quota.updated",
        "tenant.delete",
        "tenant.purged",
    ];
    let got = platform
        .wait_for(WAIT, |r| kinds.iter().all(|k| !of_type(r, k).is_empty()))
        .await;
    for kind in kinds {
        let r = of_type(&got, kind)[0];
        assert!(verify(r, &platform_secret), "{kind}");
        assert_eq!(r.json()["tenant_id"], tenant.to_string(), "{kind}");
    }
    let suspend = of_type(&got, "tenant.suspend")[0].json();
    assert_eq!(suspend["data"]["reason"], "unpaid", "{suspend}");
    assert_eq!(suspend["data"]["after"]["status"], "suspended", "{suspend}");

    // The tenant's own endpoint heard its suspension (and only that).
    let own_got = own.wait_for(WAIT, |r| !r.is_empty()).await;
    assert_eq!(
        own_got[0].header("tenantry-event-type"),
        Some("tenant.suspend")
    );
    assert_eq!(own_got[0].json()["tenant_id"], tenant.to_string());

    // The outbox's counts, through the admin API.
    let (status, outbox) = app
        .admin_call(Method::GET, "/v1/admin/webhooks/outbox", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{outbox}");
    assert!(outbox["delivered_total"].as_u64().unwrap() >= 6, "{outbox}");
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_targets_by_default() {
    let app = TestApp::builder()
        .webhooks(test_webhooks())
        .allow_private_targets(false)
        .spawn()
        .await;
    let receiver = Receiver::start().await;
    let (tenant, token) = app.tenant_with("guarded", json!({})).await;
    for url in [
        receiver.url.clone(),
        "http://localhost:8080/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        "http://10.0.0.5/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://0.0.0.0/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "ftp://example.com/hook".to_owned(),
        "file:///etc/passwd".to_owned(),
        "not a url".to_owned(),
    ] {
        for (call, path) in [(true, "/v1/webhooks"), (false, "/v1/admin/webhooks")] {
            let response = if call {
                app.with_token(Method::POST, path, &token)
            } else {
                app.with_token(Method::POST, path, &app.admin_token())
            }
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{url} {path}"
            );
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{url}"
            );
        }
    }
    // Other bad input: 4xx, and nothing is stored.
    for body in [
        json!({"url": "https://example.com/", "event_types": []}),
        json!({"url": "https://example.com/", "event_types": ["Not A Type!"]}),
        json!({"url": "https://example.com/", "surprise": 1}),
        json!({"url": "https://example.com/", "description": "x".repeat(501)}),
        json!({"event_types": ["user.created"]}),
    ] {
        let (status, problem) = app
            .call(&token, Method::POST, "/v1/webhooks", Some(body.clone()))
            .await;
        assert!(status.is_client_error(), "{body}: {status} {problem}");
    }
    let (_, list) = app.call(&token, Method::GET, "/v1/webhooks", None).await;
    assert_eq!(list["items"], json!([]));
    let (_, list) = app
        .admin_call(Method::GET, "/v1/admin/webhooks", None)
        .await;
    assert_eq!(list["items"], json!([]));
    // A PATCH to a private target is refused too, and changes nothing.
    let (id, _) = register(&app, &token, "https://hooks.example.com/x", Value::Null).await;
    let (status, _) = app
        .call(
            &token,
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(json!({"url": receiver.url, "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, shown) = app
        .call(&token, Method::GET, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(shown["url"], "https://hooks.example.com/x");
    assert_eq!(shown["enabled"], true);

    // At delivery too: an endpoint that points at 127.0.0.1 anyway (written
    // behind the API's back) is refused after resolving, never connected to.
    let (status, _) = app
        .call(&token, Method::DELETE, &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let endpoint = uuid::Uuid::now_v7();
    let url = receiver.url.clone();
    let mut conn = app.test_db.app_conn().await;
    conn.transaction(async |conn| {
        conn.batch_execute(&tenant_context_sql(tenant)).await?;
        diesel::sql_query(
            "INSERT INTO webhook_endpoints (tenant_id, id, url, secret) VALUES ($1, $2, $3, repeat('s', 40))",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(endpoint)
        .bind::<diesel::sql_types::Text, _>(&url)
        .execute(conn)
        .await?;
        Ok::<_, diesel::result::Error>(())
    })
    .await
    .unwrap();
    assert_eq!(
        create_user(&app, &token, "a@example.com").await,
        StatusCode::CREATED
    );
    let delivery = wait_delivery(
        &app,
        &token,
        &format!("/v1/webhooks/{endpoint}/deliveries"),
        |d| d["attempts"].as_i64() >= Some(1),
    )
    .await;
    assert_eq!(
        delivery["attempt_log"][0]["error"], "refused_address",
        "{delivery}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn webhook_routes_need_tenant_admin() {
    let app = app().await;
    let (tenant, _) = app.tenant_with("scoped", json!({})).await;
    let member = app.token(
        "member",
        Some(tenant),
        &[
            tenantry_core::Scope::TenantRead,
            tenantry_core::Scope::TenantWrite,
        ],
    );
    for (method, path) in [
        (Method::GET, "/v1/webhooks"),
        (Method::POST, "/v1/webhooks"),
    ] {
        let body = (method == Method::POST).then(|| json!({"url": "https://example.com/"}));
        let (status, _) = app.call(&member, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let _: TenantId = tenant;
}

#[tokio::test]
async fn events_recorded_together_keep_their_order_and_reach_each_subscribed_endpoint_once() {
    // The receivers outlive the app: 300 deliveries are still in flight
    // when the test ends, and with the receivers dropped first this test
    // took 60 s to stop instead of one.
    let (all, users_only) = (Receiver::start().await, Receiver::start().await);
    let app = app().await;
    let (tenant, token) = app.tenant_with("batched", json!({})).await;
    let (to_all, _) = register(&app, &token, &all.url, Value::Null).await;
    register(&app, &token, &users_only.url, json!(["user.created"])).await;

    // More than one insert's worth for the import (256), in one call.
    let items: Vec<(Option<uuid::Uuid>, Value)> =
        (0..300).map(|n| (None, json!({ "n": n }))).collect();
    app.db
        .tenant(tenant)
        .run(|conn| {
            async move {
                tenantry_db::queries::events::record_many(
                    conn,
                    tenant,
                    "event.imported",
                    "import:test",
                    items,
                )
                .await
                .map_err(tenantry_db::DbError::from)
            }
            .scope_boxed()
        })
        .await
        .unwrap();

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = BigInt)]
        deliveries: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        endpoint: String,
    }
    let mut conn = app.test_db.app_conn().await;
    let rows: Vec<Row> = conn
        .transaction(async |conn| {
            conn.batch_execute(&tenant_context_sql(tenant)).await?;
            diesel::sql_query(
                "SELECT (e.data->>'n')::bigint AS n, count(d.id) AS deliveries,
                        coalesce(min(d.endpoint_id::text), '') AS endpoint
                   FROM events e LEFT JOIN webhook_deliveries d
                     ON d.tenant_id = e.tenant_id AND d.event_id = e.id
                  WHERE e.kind = 'event.imported'
                  GROUP BY e.tenant_id, e.id, e.data ORDER BY e.id",
            )
            .load(conn)
            .await
        })
        .await
        .unwrap();
    let order: Vec<i64> = rows.iter().map(|r| r.n).collect();
    assert_eq!(
        order,
        (0..300).collect::<Vec<i64>>(),
        "ids follow the input"
    );
    assert!(
        rows.iter()
            .all(|r| r.deliveries == 1 && r.endpoint == to_all),
        "one delivery each, to the endpoint that takes every type"
    );
}
