//! The HTTP surface of the foundation: liveness, readiness, errors.

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
    migrate::revert_last(&SecretString::from(test_db.owner_url()))
        .await
        .unwrap();
    let app = TestApp::spawn_on(test_db).await;
    let (status, body) = problem(app.get("/readyz").await).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "unavailable");
    assert!(body["detail"].as_str().unwrap().contains("migrate"));
}

#[tokio::test]
async fn readyz_answers_503_without_leaking_anything_when_the_database_is_down() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let test_db = TestDb::new().await;
    let mut settings = test_db.settings(2);
    settings.url = SecretString::from(format!(
        "postgres://tenantry_app:s3cret-pw@127.0.0.1:{port}/nowhere"
    ));
    settings.connect_timeout = std::time::Duration::from_millis(500);
    let app = TestApp::spawn_with(test_db, &settings, tenantry_tests::test_auth_settings()).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    let (status, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "unavailable");
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
