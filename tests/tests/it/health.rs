//! `GET /v1/admin/health`: operators see the schema version the database
//! has against the one this build carries; `/readyz` keeps them to the log.

use diesel_async::SimpleAsyncConnection as _;
use reqwest::Method;
use tenantry_core::Scope;
use tenantry_db::migrate;
use tenantry_tests::{TestApp, TestDb};

#[tokio::test]
async fn admin_health_shows_the_schema_version_of_database_and_build() {
    let app = TestApp::spawn().await;
    let (status, body) = app.admin_call(Method::GET, "/v1/admin/health", None).await;
    assert_eq!(status, 200, "{body}");
    let last = migrate::embedded_versions().pop().unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["schema"]["compatibility"], "current");
    assert_eq!(body["schema"]["database_version"], last);
    assert_eq!(body["schema"]["build_version"], last);
    assert_eq!(body["schema"]["pending"], serde_json::json!([]));
}

#[tokio::test]
async fn admin_health_names_a_later_releases_migrations_and_stays_ok() {
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute(
            "INSERT INTO tenantry_migrations (version, checksum) VALUES ('9999_later_release', 'x')",
        )
        .await
        .unwrap();
    let app = TestApp::spawn_on(test_db).await;
    let (status, body) = app.admin_call(Method::GET, "/v1/admin/health", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["schema"]["compatibility"], "newer");
    assert_eq!(body["schema"]["database_version"], "9999_later_release");
    assert_eq!(
        body["schema"]["unknown"],
        serde_json::json!(["9999_later_release"])
    );
}

#[tokio::test]
async fn admin_health_is_for_platform_admins_only() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("health-probe").await;
    let tenant_token = app.token("t", Some(tenant), &[Scope::TenantRead, Scope::TenantWrite]);
    let (status, body) = app
        .call(&tenant_token, Method::GET, "/v1/admin/health", None)
        .await;
    assert_eq!(status, 403, "{body}");
    let anonymous = app.get("/v1/admin/health").await;
    assert_eq!(anonymous.status(), 401);
}
