//! Every documented input limit, tested on both sides of its boundary
//! against the real HTTP server (README, "Limits").

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_tests::TestApp;

/// The real app and a token for a fresh tenant of `slug`.
async fn app_with_tenant(slug: &str) -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant(slug).await;
    let token = app.tenant_token(tenant);
    (app, token)
}

async fn post_raw(app: &TestApp, token: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .with_token(Method::POST, path, token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_body_of_exactly_1_mib_is_read_and_one_byte_more_is_413() {
    let (app, token) = app_with_tenant("body").await;
    let padded = |size: usize, name: &str| {
        let mut body = json!({"name": name, "region": "eu-west-1"})
            .to_string()
            .into_bytes();
        body.resize(size, b' ');
        body
    };
    let (status, body) = post_raw(&app, &token, "/v1/clusters", padded(1024 * 1024, "at")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post_raw(
        &app,
        &token,
        "/v1/clusters",
        padded(1024 * 1024 + 1, "over"),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    let (status, page) = app.call(&token, Method::GET, "/v1/clusters", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}

/// Sends a raw request head and returns the status line and the body.
fn raw_head(address: &str, head: &str) -> (String, String) {
    exchange(address, head.to_owned(), Vec::new())
}

#[tokio::test]
async fn a_request_head_of_32_kib_is_read_and_one_byte_more_is_431_problem_json() {
    let app = TestApp::spawn().await;
    // As counted: method + URI + "name: value\r\n" per header.
    let fixed =
        "GET".len() + "/healthz".len() + ("host".len() + 1 + 4) + ("connection".len() + 5 + 4);
    let filler_name = "x-filler";
    let head = |size: usize| {
        let value = "v".repeat(size - fixed - filler_name.len() - 4);
        format!(
            "GET /healthz HTTP/1.1\r\nhost: h\r\nconnection: close\r\n{filler_name}: {value}\r\n\r\n"
        )
    };
    // Blocking sockets: off the runtime thread the in-process server runs on.
    let send = |size: usize| {
        let (address, head) = (app.address.clone(), head(size));
        tokio::task::spawn_blocking(move || raw_head(&address, &head))
    };
    let (status, _) = send(32 * 1024).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let (status, body) = send(32 * 1024 + 1).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "headers_too_large");
}

#[tokio::test]
async fn json_nested_127_deep_is_parsed_and_128_deep_is_400() {
    let (app, token) = app_with_tenant("deep").await;
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    // Parsed: then refused for its shape (not a cluster), naming no SQL.
    let (status, body) = post_raw(&app, &token, "/v1/clusters", nested(127)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post_raw(&app, &token, "/v1/clusters", nested(128)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request");
    // Far deeper is the same answer, never a stack overflow.
    let (status, _) = post_raw(&app, &token, "/v1/clusters", nested(100_000)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn page_limits_run_from_1_to_100_and_foreign_cursors_are_refused() {
    let (app, token) = app_with_tenant("pages").await;
    for limit in [1, 100] {
        let (status, body) = app
            .call(
                &token,
                Method::GET,
                &format!("/v1/clusters?limit={limit}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "limit={limit}: {body}");
    }
    for limit in ["0", "101", "-1", "99999999999999999999"] {
        let (status, body) = app
            .call(
                &token,
                Method::GET,
                &format!("/v1/clusters?limit={limit}"),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit={limit}: {body}"
        );
    }
    let (status, body) = app
        .call(
            &token,
            Method::GET,
            &format!("/v1/clusters?cursor={}", "A".repeat(65)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "cursor");
}

#[tokio::test]
async fn strings_are_held_to_their_documented_lengths() {
    let (app, token) = app_with_tenant("strings").await;
    let admin = app.admin_token();
    // (who, path, body at the limit, body one over, the field)
    let at_name = "é".repeat(200); // characters, not bytes
    let over_name = "é".repeat(201);
    let email = |len: usize| format!("{}@example.com", "u".repeat(len - "@example.com".len()));
    let cases = [
        (
            &token,
            "/v1/clusters",
            json!({"name": at_name, "region": "eu-west-1"}),
            json!({"name": over_name, "region": "eu-west-1"}),
            "name",
        ),
        (
            &token,
            "/v1/clusters",
            json!({"name": "r", "region": "r".repeat(64)}),
            json!({"name": "r2", "region": "r".repeat(65)}),
            "region",
        ),
        (
            &token,
            "/v1/users",
            json!({"email": email(320)}),
            json!({"email": email(321)}),
            "email",
        ),
        (
            &admin,
            "/v1/admin/tenants",
            json!({"slug": "s".repeat(63), "name": "S"}),
            json!({"slug": "t".repeat(64), "name": "T"}),
            "slug",
        ),
    ];
    for (who, path, at, over, field) in cases {
        let (status, body) = app.call(who, Method::POST, path, Some(at)).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{path} {field} at the limit: {body}"
        );
        let (status, body) = app.call(who, Method::POST, path, Some(over)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {field} over: {body}"
        );
        assert_eq!(body["field"], field, "{body}");
    }
}

/// Writes `head` and `body` on a fresh connection and reads the whole
/// answer: (status line, body). Panics on a reset.
fn exchange(address: &str, head: String, body: Vec<u8>) -> (String, String) {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let problem = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, problem)
}

#[tokio::test]
async fn a_client_sending_4_mib_reads_its_413_rather_than_a_reset() {
    let (app, token) = app_with_tenant("big-body").await;
    let body = vec![b' '; 4 * 1024 * 1024];
    let head = format!(
        "POST /v1/clusters HTTP/1.1\r\nhost: h\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let address = app.address.clone();
    let (status, problem) = tokio::task::spawn_blocking(move || exchange(&address, head, body))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(problem.contains("payload_too_large"), "{problem}");
}

#[tokio::test]
async fn a_too_large_head_with_a_body_still_gets_its_431_rather_than_a_reset() {
    let app = TestApp::spawn().await;
    let body = vec![b' '; 4 * 1024 * 1024];
    let head = format!(
        "POST /v1/clusters HTTP/1.1\r\nhost: h\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-filler: {}\r\n\r\n",
        body.len(),
        "v".repeat(40 * 1024)
    );
    let address = app.address.clone();
    let (status, problem) = tokio::task::spawn_blocking(move || exchange(&address, head, body))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert!(problem.contains("headers_too_large"), "{problem}");
}

/// The per-tenant rate limit is decided before the request asks the pool
/// for a connection: with the pool's only connection held by a long
/// transaction, the requests over their tenant's rate get their 429 at
/// once, and the pool sees no checkout for them; a request within its
/// rate, meanwhile, waits for the connection (and gets 503 when the wait
/// times out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_get_429_at_once_while_the_only_connection_is_held() {
    use tenantry_db::ScopedFutureExt as _;
    let test_db = tenantry_tests::TestDb::new().await;
    let mut settings = test_db.settings(1);
    let acquire_timeout = Duration::from_secs(1);
    settings.acquire_timeout = acquire_timeout;
    let app = TestApp::spawn_with(test_db, &settings, tenantry_tests::test_auth_settings()).await;
    let (_, limited) = app
        .tenant_with("limited", json!({"requests_per_second": 1, "burst": 1}))
        .await;
    let (_, free) = app
        .tenant_with("free", json!({"requests_per_second": 1000, "burst": 1000}))
        .await;
    // Both tenants' limits are learned.
    for token in [&limited, &free] {
        let (status, body) = app.call(token, Method::GET, "/v1/tenant", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The only pooled connection, held in a transaction until released.
    let (holding_tx, holding) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let db = app.db.clone();
    let holder = tokio::spawn(async move {
        db.tenant(tenantry_core::TenantId::new())
            .run(move |_conn| {
                async move {
                    let _ = holding_tx.send(());
                    let _ = released.await;
                    Ok::<_, tenantry_db::DbError>(())
                }
                .scope_boxed()
            })
            .await
    });
    holding.await.unwrap();
    assert_eq!(app.db.status().available, 0, "{:?}", app.db.status());

    // Ten at once at 1/s: one (two, on a slow machine) is admitted and
    // waits for the connection; the others are refused without waiting.
    let checkouts = app.db.checkouts();
    let answers = futures_util::future::join_all((0..10).map(|_| async {
        let started = std::time::Instant::now();
        let (status, body) = app.call(&limited, Method::GET, "/v1/tenant", None).await;
        (status, body, started.elapsed())
    }))
    .await;
    let mut refused = 0_u64;
    for (status, body, took) in &answers {
        if *status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            assert_eq!(body["code"], "rate_limited", "{body}");
            assert!(
                *took < acquire_timeout / 2,
                "a 429 took {took:?}: it waited for the pool"
            );
        } else {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert!(*took >= acquire_timeout, "{took:?}");
        }
    }
    assert!(refused >= 8, "{answers:?}");
    let admitted = 10 - refused;
    assert_eq!(
        app.db.checkouts() - checkouts,
        admitted,
        "only the admitted requests asked the pool"
    );
    assert!(!holder.is_finished(), "the connection was released early");

    // Within its rate, a request does wait for the pool.
    let started = std::time::Instant::now();
    let (status, body) = app.call(&free, Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        started.elapsed() >= acquire_timeout,
        "{:?}",
        started.elapsed()
    );

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let (status, body) = app.call(&free, Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
