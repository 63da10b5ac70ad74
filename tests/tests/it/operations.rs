//! The operations layer is the one implementation of each use case: the
//! API and the CLI reach the same function, so they leave the same trail.

use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};
use tenantry_db::ScopedFutureExt;
use tenantry_tests::{TestApp, run_tenantry};

/// The audit entries of one tenant, oldest first.
async fn audit_of(app: &TestApp, tenant: &str) -> Vec<Value> {
    let (status, body) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={tenant}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// An entry with what legitimately differs between two tenants blanked:
/// ids, names, times, the actor, and the limits' values (each process
/// applies its own `[quotas.default]`; the test app's are larger).
fn shape(entry: &Value) -> Value {
    let mut entry = entry.clone();
    if let Some(limits) = entry["after"]["limits"].as_object_mut() {
        for value in limits.values_mut() {
            *value = Value::Null;
        }
    }
    for key in ["id", "tenant_id", "at", "actor"] {
        entry[key] = Value::Null;
    }
    if let Some(tenant) = entry["after"]["tenant"].as_object_mut() {
        for key in ["id", "slug", "name", "created_at", "updated_at"] {
            tenant.insert(key.to_owned(), Value::Null);
        }
    }
    entry
}

#[tokio::test]
async fn cli_and_api_leave_the_same_audit_trail_for_a_tenant_they_create() {
    let app = TestApp::spawn().await;
    let (status, by_api) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "by-api", "name": "By API"})),
        )
        .await;
    assert_eq!(status, 201, "{by_api}");
    let (ok, stdout, stderr) = run_tenantry(
        &app.test_db,
        &["tenants", "create", "--slug", "by-cli", "--name", "By CLI"],
    );
    assert!(ok, "tenants create failed: {stderr}");
    let by_cli: Value = serde_json::from_str(&stdout).expect("the CLI prints the tenant as JSON");
    // The same view of the tenant, from both doors.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&by_cli), keys(&by_api));
    assert_eq!(by_cli["status"], "active");

    let api_trail = audit_of(&app, by_api["id"].as_str().expect("id")).await;
    let cli_trail = audit_of(&app, by_cli["id"].as_str().expect("id")).await;
    assert_eq!(api_trail.len(), 1, "{api_trail:?}");
    assert_eq!(cli_trail.len(), 1, "{cli_trail:?}");
    assert_eq!(cli_trail[0]["action"], "tenant.created");
    assert_eq!(shape(&cli_trail[0]), shape(&api_trail[0]));
    assert_eq!(cli_trail[0]["after"]["tenant"]["slug"], "by-cli");
    // Each names its own actor: the token's subject, the CLI's user.
    assert_eq!(api_trail[0]["actor"], "test-admin");
    let actor = cli_trail[0]["actor"].as_str().expect("actor");
    assert!(actor.starts_with("cli:") && actor.contains('@'), "{actor}");
}

#[tokio::test]
async fn a_slug_taken_is_refused_alike_by_cli_and_api_and_audits_nothing() {
    let app = TestApp::spawn().await;
    let (ok, _, stderr) = run_tenantry(
        &app.test_db,
        &["tenants", "create", "--slug", "taken", "--name", "First"],
    );
    assert!(ok, "{stderr}");
    let (status, problem) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "taken", "name": "Second"})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "conflict");
    let (ok, _, stderr) = run_tenantry(
        &app.test_db,
        &["tenants", "create", "--slug", "taken", "--name", "Third"],
    );
    assert!(!ok, "a second tenant with a taken slug was created");
    // The operation's own words (not a matched error string), and its code.
    assert!(
        stderr.contains(problem["detail"].as_str().expect("detail")) && stderr.contains("conflict"),
        "{stderr}"
    );
    let (status, page) = app
        .admin_call(Method::GET, "/v1/admin/audit?limit=100", None)
        .await;
    assert_eq!(status, 200);
    let created = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "tenant.created")
        .count();
    assert_eq!(created, 1, "only the first create is audited: {page}");
}

#[tokio::test]
async fn quota_reconcile_fix_from_the_cli_is_audited_with_the_cli_actor() {
    let app = TestApp::spawn().await;
    let (tenant, token) = app.tenant_with("drifty", json!({})).await;
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "c1", "region": "eu-west-1"})),
        )
        .await;
    assert_eq!(status, 201);
    // Drift on purpose: usage says 5 clusters, the rows say 1.
    app.db
        .platform()
        .run(|conn| {
            async move {
                diesel::sql_query("UPDATE tenant_usage SET clusters = 5 WHERE tenant_id = $1")
                    .bind::<diesel::sql_types::Uuid, _>(tenant)
                    .execute(conn)
                    .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("inject drift");
    let (ok, _, stderr) = run_tenantry(&app.test_db, &["quotas", "reconcile", "--fix"]);
    assert!(ok, "{stderr}");
    let trail = audit_of(&app, &tenant.to_string()).await;
    let entry = trail
        .iter()
        .find(|e| e["action"] == "quota.reconciled")
        .unwrap_or_else(|| panic!("no quota.reconciled entry: {trail:?}"));
    assert_eq!(entry["before"], json!({"clusters": 5}));
    assert_eq!(entry["after"], json!({"clusters": 1}));
    assert!(entry["actor"].as_str().expect("actor").starts_with("cli:"));
}

#[tokio::test]
async fn a_purge_run_from_the_cli_names_the_cli_user_on_its_receipt_and_audit_entry() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("doomed").await;
    let (status, body) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/delete"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry_with(
        &app.test_db,
        &["sweep", "--once"],
        &[("TENANTRY__RETENTION__PERIOD", "1s")],
    );
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("the report");
    let sweeper = report["purged"][0]["sweeper"].as_str().expect("a receipt");
    assert!(sweeper.contains("(by cli:"), "{sweeper}");
    let trail = audit_of(&app, &tenant.to_string()).await;
    let purged = trail
        .iter()
        .find(|e| e["action"] == "tenant.purged")
        .unwrap_or_else(|| panic!("no tenant.purged entry: {trail:?}"));
    assert!(
        purged["actor"]
            .as_str()
            .expect("actor")
            .contains("(by cli:"),
        "{purged}"
    );
}
