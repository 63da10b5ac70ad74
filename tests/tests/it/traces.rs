//! OpenTelemetry traces (`[traces]`), against the real `tenantry serve`
//! binary and a small OTLP/HTTP receiver (tests/src/otlp.rs): one server
//! span per request with its tenant, route and status, the database
//! transaction a child of it, a caller's `traceparent` followed (and its
//! trace id in the log lines), nothing at all while off, and requests
//! unaffected by a collector that is not there.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_tests::otlp::{Receiver, Span};
use tenantry_tests::process::Server;
use tenantry_tests::{TestDb, free_port};

/// Long enough for a batch (scheduled every 100 ms here) to arrive.
const ARRIVAL: Duration = Duration::from_secs(15);

/// The caller's trace context in the tests that send one.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn traced<'a>(endpoint: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("TENANTRY__TRACES__ENABLED", "true"),
        ("TENANTRY__TRACES__ENDPOINT", endpoint),
        // The batch processor's delay (the SDK reads it): 100 ms, not 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        // The request spans' access-log lines.
        ("RUST_LOG", "info"),
    ];
    env.extend_from_slice(extra);
    env
}

async fn tenant(server: &Server, slug: &str) -> TenantId {
    let response = server
        .client
        .post(server.url("/v1/admin/tenants"))
        .bearer_auth(server.admin_token())
        .json(&json!({"slug": slug, "name": slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn get(
    server: &Server,
    path: &str,
    token: &str,
    traceparent: Option<&str>,
) -> reqwest::Response {
    let mut request = server.client.get(server.url(path)).bearer_auth(token);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    request.send().await.unwrap()
}

fn request_span<'a>(spans: &'a [Span], route: &str, tenant: TenantId) -> Option<&'a Span> {
    let tenant = tenant.to_string();
    spans.iter().find(|s| {
        s.attribute("http.route") == Some(route) && s.attribute("tenant.id") == Some(&tenant)
    })
}

#[tokio::test]
async fn a_request_is_one_server_span_with_its_tenant_route_and_status_and_its_transaction_a_child()
{
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let server = Server::start(&db, &traced(&receiver.endpoint, &[])).await;
    let tenant = tenant(&server, "traced").await;
    let token = server.tenant_token(tenant);

    let response = get(&server, "/v1/users", &token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The response names the server span: the caller can find its trace.
    let echoed = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();

    let (request, children) = receiver
        .wait_for(ARRIVAL, |spans| {
            let request = request_span(spans, "/v1/users", tenant)?;
            let children: Vec<Span> = spans
                .iter()
                .filter(|s| s.parent_span_id == request.span_id && s.name == "db.transaction")
                .cloned()
                .collect();
            (!children.is_empty()).then(|| (request.clone(), children))
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no request span with a db.transaction child: {:#?}\n{}",
                receiver.spans(),
                server.log_text()
            )
        });
    assert_eq!(request.kind, 2, "a server span: {request:?}");
    assert_eq!(request.name, "GET /v1/users");
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    assert_eq!(request.service_name, "tenantry");
    assert!(
        request.parent_span_id.is_empty(),
        "no caller context: a root span"
    );
    assert_eq!(
        echoed,
        format!("00-{}-{}-01", request.trace_id, request.span_id)
    );
    for child in &children {
        assert_eq!(child.trace_id, request.trace_id);
        assert_eq!(child.kind, 3, "a client span: {child:?}");
        assert_eq!(child.attribute("db.system"), Some("postgresql"));
        // No SQL text, no parameters: the tenant id reaches SQL only as a
        // bind parameter, and nothing of it or any statement is exported.
        for (key, value) in &child.attributes {
            assert!(
                !key.starts_with("db.statement") && !key.starts_with("db.query"),
                "{key}"
            );
            assert!(!value.to_lowercase().contains("select"), "{key}={value}");
            assert!(!value.contains(&tenant.to_string()), "{key}={value}");
        }
    }

    // An error is a span too, with its status and its route template.
    let missing = uuid::Uuid::new_v4();
    let response = get(&server, &format!("/v1/users/{missing}"), &token, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let failed = receiver
        .wait_for(ARRIVAL, |spans| {
            request_span(spans, "/v1/users/{id}", tenant).cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no span for the 404: {:#?}", receiver.spans()));
    assert_eq!(failed.attribute("http.response.status_code"), Some("404"));
    assert_ne!(failed.trace_id, request.trace_id, "a new trace per request");
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
}

/// Lines of the server's log that mention `needle`.
fn log_lines_with(server: &Server, needle: &str) -> Vec<String> {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_callers_traceparent_is_the_parent_and_its_trace_id_is_in_the_text_log_lines() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let server = Server::start(&db, &traced(&receiver.endpoint, &[])).await;
    let tenant = tenant(&server, "followed").await;
    let token = server.tenant_token(tenant);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");

    let response = get(&server, "/v1/users", &token, Some(&traceparent)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();

    let request = receiver
        .wait_for(ARRIVAL, |spans| {
            request_span(spans, "/v1/users", tenant).cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no request span: {:#?}", receiver.spans()));
    assert_eq!(request.trace_id, TRACE_ID);
    assert_eq!(request.parent_span_id, PARENT_SPAN_ID);
    assert_eq!(echoed, format!("00-{TRACE_ID}-{}-01", request.span_id));
    let child = receiver
        .wait_for(ARRIVAL, |spans| {
            spans
                .iter()
                .find(|s| s.parent_span_id == request.span_id && s.name == "db.transaction")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no transaction span: {:#?}", receiver.spans()));
    assert_eq!(child.trace_id, TRACE_ID);

    // The request's access-log line carries the trace id (and its tenant),
    // so a trace leads to its logs and back.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines = log_lines_with(&server, &format!("trace_id={TRACE_ID}"));
        if !lines.is_empty() || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("tenant_id={tenant}")) && l.contains("close")),
        "no access-log line with the trace id: {}",
        server.log_text()
    );
    // A malformed traceparent is ignored, never an error: a trace of its own.
    let response = get(&server, "/v1/tenant", &token, Some("00-zz-not-a-context")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let own = receiver
        .wait_for(ARRIVAL, |spans| {
            request_span(spans, "/v1/tenant", tenant).cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no span for /v1/tenant: {:#?}", receiver.spans()));
    assert_ne!(own.trace_id, TRACE_ID);
    assert!(own.parent_span_id.is_empty());
}

#[tokio::test]
async fn the_trace_id_is_in_the_json_log_lines_too() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let server = Server::start(
        &db,
        &traced(&receiver.endpoint, &[("TENANTRY__LOG__FORMAT", "json")]),
    )
    .await;
    let tenant = tenant(&server, "jsonlog").await;
    let token = server.tenant_token(tenant);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let response = get(&server, "/v1/users", &token, Some(&traceparent)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(5);
    let found = loop {
        let found = server.log_text().lines().any(|line| {
            let Ok(line) = serde_json::from_str::<Value>(line) else {
                return false;
            };
            line["span"]["trace_id"] == TRACE_ID && line["span"]["tenant_id"] == tenant.to_string()
        });
        if found || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        found,
        "no JSON line with the trace id: {}",
        server.log_text()
    );
}

#[tokio::test]
async fn off_by_default_nothing_is_sent_and_requests_carry_no_trace() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    // The endpoint is configured, `enabled` is not: the default holds.
    let server = Server::start(
        &db,
        &[
            ("TENANTRY__TRACES__ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let tenant = tenant(&server, "untraced").await;
    let token = server.tenant_token(tenant);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    for _ in 0..5 {
        let response = get(&server, "/v1/users", &token, Some(&traceparent)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("traceparent").is_none());
    }
    // Twenty batch intervals: an exporter, if there were one, would have
    // sent by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests(), 0, "{:?}", receiver.spans());
    // The access log is as it always was: the requests are there, with
    // their tenant, and no trace id (not even an empty one).
    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("tenant_id={tenant}"))),
        "{log}"
    );
    assert!(!log.contains("trace_id"), "{log}");
    assert!(!log.contains("traces:"), "{log}");
}

#[tokio::test]
async fn a_collector_that_is_not_there_does_not_touch_requests() {
    let db = TestDb::new().await;
    let nobody = format!("http://127.0.0.1:{}/v1/traces", free_port());
    let mut server = Server::start(&db, &traced(&nobody, &[])).await;
    let tenant = tenant(&server, "unheard").await;
    let token = server.tenant_token(tenant);
    let started = Instant::now();
    for _ in 0..20 {
        let response = get(&server, "/v1/users", &token, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("traceparent").is_some());
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "requests slowed down: {:?}",
        started.elapsed()
    );
    // The operator hears of it, once, in the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_lines_with(&server, "traces: export failed").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        log_lines_with(&server, "traces: export failed").len(),
        1,
        "{}",
        server.log_text()
    );
    // And it still stops cleanly (the last flush gives up in bounded time).
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("did not exit: {}", server.log_text()));
    assert!(status.success(), "{status}: {}", server.log_text());
}

#[test]
fn a_malformed_endpoint_refuses_to_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDb::new());
    let (ok, _, stderr) = tenantry_tests::run_tenantry_with(
        &db,
        &["serve"],
        &[
            ("TENANTRY__TRACES__ENABLED", "true"),
            ("TENANTRY__TRACES__ENDPOINT", "collector:4318"),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("traces.endpoint"), "{stderr}");
}

#[tokio::test]
async fn sample_ratio_zero_keeps_no_new_trace_but_follows_a_sampled_caller() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let server = Server::start(
        &db,
        &traced(
            &receiver.endpoint,
            &[("TENANTRY__TRACES__SAMPLE_RATIO", "0.0")],
        ),
    )
    .await;
    let tenant = tenant(&server, "sampled").await;
    let token = server.tenant_token(tenant);
    // A new trace: not sampled, and the response says so (flags 00).
    let response = get(&server, "/v1/tenant", &token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let unsampled = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(unsampled.ends_with("-00"), "{unsampled}");
    // A caller that sampled its trace: followed.
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let response = get(&server, "/v1/users", &token, Some(&traceparent)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let followed = receiver
        .wait_for(ARRIVAL, |spans| {
            request_span(spans, "/v1/users", tenant).cloned()
        })
        .await
        .unwrap_or_else(|| panic!("the sampled caller's span: {:#?}", receiver.spans()));
    assert_eq!(followed.trace_id, TRACE_ID);
    // Sent before it, in the same process: had it been kept, it would be
    // there by now.
    assert!(
        receiver
            .spans()
            .iter()
            .all(|s| s.attribute("http.route") != Some("/v1/tenant")),
        "{:#?}",
        receiver.spans()
    );
}
