//! The HTTP surface of the foundation: liveness, readiness, errors.

use diesel_async::SimpleAsyncConnection;
use secrecy::SecretString;
use tenantry_db::migrate;
use tenantry_tests::{TestApp, TestDb};

async fn problem(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn healthz_answers_200() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_is_reachable_and_current() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn readyz_answers_503_when_a_migration_is_pending() {
    let test_db = TestDb::new().await;
    if tenantry_tests::citus() {
        // No reverting on Citus: the latest migration's record goes instead,
        // which is what readiness reads.
        let last = migrate::embedded_versions().pop().unwrap();
        test_db
            .owner_conn()
            .await
            .batch_execute(&format!(
                "DELETE FROM tenantry_migrations WHERE version = '{last}'"
            ))
            .await
            .unwrap();
    } else {
        migrate::revert_last(&SecretString::from(test_db.owner_url()))
            .await
            .unwrap();
    }
    let app = TestApp::spawn_on(test_db).await;
    let (status, body) = problem(app.get("/readyz").await).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "unavailable");
    assert!(body["detail"].as_str().unwrap().contains("migrate"));
}

#[tokio::test]
async fn readyz_answers_503_without_leaking_anything_when_the_database_is_down() {
    // The app starts as in production (its guard passes), then the database
    // goes away under it.
    let test_db = TestDb::new().await;
    let proxy = tenantry_tests::proxy::Proxy::start(test_db.server_address()).await;
    let mut settings = test_db.settings_via(&proxy, 2);
    settings.connect_timeout = std::time::Duration::from_millis(500);
    let app = TestApp::spawn_with(test_db, &settings, tenantry_tests::test_auth_settings()).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    proxy.cut().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    let (status, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "database_unavailable");
    let text = body.to_string();
    for secret in ["s3cret", "127.0.0.1", "nowhere", "tenantry_app", "postgres"] {
        assert!(!text.contains(secret), "leaked {secret}: {text}");
    }
}

#[tokio::test]
async fn unknown_routes_answer_a_problem_json_404() {
    let app = TestApp::spawn().await;
    let (status, body) = problem(app.get("/no/such/route").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
    assert!(body["type"].is_string() && body["title"].is_string());
}

/// Metric families every `/metrics` answer carries (labelled families
/// appear with their first series).
const FAMILIES: [&str; 14] = [
    "# TYPE tenantry_rate_limited counter",
    "# TYPE tenantry_quota_rejections counter",
    "# TYPE tenantry_http_requests counter",
    "# TYPE tenantry_http_request_duration_seconds histogram",
    "# TYPE tenantry_quota_drift_found counter",
    "# TYPE tenantry_rate_limiter_tenants gauge",
    "# TYPE tenantry_quota_drift gauge",
    "# TYPE tenantry_tenants_purged counter",
    "# TYPE tenantry_sweep_last_success_timestamp_seconds gauge",
    "# TYPE tenantry_sweep_duration_seconds gauge",
    "# TYPE tenantry_tenants gauge",
    "# TYPE tenantry_db_pool_connections gauge",
    "# TYPE tenantry_db_pool_timeouts counter",
    "# TYPE tenantry_build_info gauge",
];

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_not_on_the_public_port() {
    let app = TestApp::spawn().await;
    let (status, body) = problem(app.get("/metrics").await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let text = app.metrics().await;
    for family in FAMILIES {
        assert!(text.contains(family), "{family} missing: {text}");
    }
    // Only metrics there: none of the API.
    let tenant = app.create_tenant("acme").await;
    for path in ["/healthz", "/openapi.json", "/v1/tenant"] {
        let response = app
            .client
            .get(format!("{}{path}", app.metrics_address))
            .bearer_auth(app.tenant_token(tenant))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_served_binary_answers_metrics_only_on_the_metrics_listener() {
    let db = tenantry_tests::TestDb::new().await;
    let metrics = format!("127.0.0.1:{}", tenantry_tests::free_port());
    let server =
        tenantry_tests::process::Server::start(&db, &[("TENANTRY__METRICS__LISTEN", &metrics)])
            .await;
    let public = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
    let response = server
        .client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for family in FAMILIES {
        assert!(text.contains(family), "{family} missing: {text}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_answers() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    // 41 tenant-plane operations mounted twice (/v1 and /t/{tenant_slug}/v1),
    // the API-key exchange, healthz, readyz, jwks, and 57 admin operations.
    // Not /metrics: it is not served on this port.
    assert_eq!(operations.len(), 41 * 2 + 4 + 57, "{operations:#?}");
    assert!(doc["paths"].get("/metrics").is_none());
    assert_eq!(
        doc["paths"]["/v1/admin/tenants/{id_or_slug}/export"]["get"]["responses"]["410"]["content"]
            ["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem",
        "the export documents its 410 for a purged tenant"
    );
    for expected in [
        ("GET", "/v1/instances"),
        ("PATCH", "/v1/instances/{id}"),
        ("POST", "/v1/auth/token"),
        ("GET", "/t/{tenant_slug}/v1/tenant"),
        ("GET", "/.well-known/jwks.json"),
        ("POST", "/v1/admin/tenants/{id_or_slug}/suspend"),
        ("GET", "/v1/admin/audit"),
    ] {
        assert!(
            operations
                .iter()
                .any(|(m, p)| m == expected.0 && p == expected.1),
            "{expected:?} is not documented"
        );
    }
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids must be unique");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if path.starts_with("/v1/") || path.starts_with("/t/") {
                assert_eq!(
                    op["responses"]["503"]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} does not document its 503"
                );
            }
            for name in ["id", "id_or_slug", "tenant_slug"] {
                if path.contains(&format!("{{{name}}}")) {
                    let declared = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["name"] == name && p["in"] == "path")
                    });
                    assert!(declared, "{method} {path} does not declare {name}");
                }
            }
        }
    }
    // Every documented operation is routed: unauthenticated, it answers
    // anything but the router's 404/405.
    for (method, path) in &operations {
        let concrete = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{id_or_slug}", "acme")
            .replace("{tenant_slug}", "acme");
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{method} {path} answered {status}: not routed"
        );
    }
}

#[tokio::test]
async fn the_served_binary_logs_each_request_with_its_request_id_and_tenant_id() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    let app = TestApp::spawn().await; // for its database, keys and token minting
    let tenant = app.create_tenant("logged").await;
    let mut child = Command::new(tenantry_tests::tenantry_bin())
        .arg("serve")
        .envs(app.test_db.binary_env())
        .env("TENANTRY__SERVER__PORT", "0")
        .env("TENANTRY__LOG__FORMAT", "json")
        .env("TENANTRY__AUTH__ISSUER", tenantry_tests::TEST_ISSUER)
        .env("TENANTRY__AUTH__AUDIENCE", tenantry_tests::TEST_AUDIENCE)
        .env(
            "TENANTRY__AUTH__SIGNING_KEY",
            secrecy::ExposeSecret::expose_secret(app.auth.signing_key.as_ref().unwrap()),
        )
        .env(
            "TENANTRY__AUTH__API_KEY_SECRET",
            "a-test-api-key-hashing-secret",
        )
        .env("TENANTRY__AUTH__GENERATE_MISSING_KEYS", "false")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("tenantry: listening on ") {
                let _ = address_tx.send(address.to_owned());
            }
            collected.lock().unwrap().push(line);
        }
    });
    let Ok(address) = address_rx.recv_timeout(std::time::Duration::from_secs(30)) else {
        child.kill().unwrap();
        panic!("serve did not start: {:?}", lines.lock().unwrap());
    };
    let response = app
        .client
        .get(format!("{address}/v1/tenant"))
        .bearer_auth(app.tenant_token(tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let mut found = None;
    for _ in 0..50 {
        found = lines.lock().unwrap().iter().find_map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).ok()?;
            (entry["span"]["request_id"] == request_id.as_str()).then_some(entry)
        });
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    let entry = found
        .unwrap_or_else(|| panic!("no log line for {request_id}: {:?}", lines.lock().unwrap()));
    assert_eq!(entry["span"]["tenant_id"], tenant.to_string());
    assert_eq!(entry["span"]["http.status_code"], 200);
    assert_eq!(entry["span"]["http.route"], "/v1/tenant");
}
