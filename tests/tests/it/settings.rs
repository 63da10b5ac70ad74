//! Per-tenant settings (issue #15): one JSON document per tenant, valid
//! against the operator's JSON Schema, read by the tenant, written by its
//! admins and by platform admins, versioned, each version in the audit log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry::settings::TenancySettings;
use tenantry_core::{Scope, TenantId};
use tenantry_tests::{TestApp, TestDb, test_auth_settings};

/// The operator's schema in these tests: branding with a colour, boolean
/// feature flags, nothing else.
fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "branding": {
                "type": "object",
                "properties": {"color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}},
                "additionalProperties": false
            },
            "features": {"type": "object", "additionalProperties": {"type": "boolean"}}
        },
        "additionalProperties": false
    })
}

fn tenancy() -> TenancySettings {
    TenancySettings {
        settings_schema: schema().to_string(),
        ..TenancySettings::default()
    }
}

async fn app() -> TestApp {
    TestApp::builder().tenancy(tenancy()).spawn().await
}

fn admin_of(app: &TestApp, tenant: TenantId) -> String {
    app.token(
        "tenant-admin",
        Some(tenant),
        &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
    )
}

async fn put(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    if_match: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = app.with_token(Method::PUT, path, token).json(&body);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, etag)
}

async fn audit(app: &TestApp, tenant: TenantId) -> Vec<Value> {
    let (status, body) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={tenant}&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "settings.updated")
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_write_bumps_the_version_and_the_audit_log_holds_every_version() {
    let app = app().await;
    let tenant = app.create_tenant("acme").await;
    let admin = admin_of(&app, tenant);
    let (status, unset) = app.call(&admin, Method::GET, "/v1/settings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&unset["version"], &unset["document"]),
        (&json!(0), &json!({}))
    );

    let first = json!({"branding": {"color": "#112233"}});
    let (status, v1, etag) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": first, "version": 0}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(
        (v1["version"].as_i64(), etag.as_deref()),
        (Some(1), Some("\"1\""))
    );
    assert_eq!(v1["document"], first);
    assert_eq!(v1["updated_by"], "tenant-admin");

    let second = json!({"branding": {"color": "#445566"}, "features": {"beta": true}});
    let (status, v2, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": second}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);

    // A writer that read version 1 is told it is stale, and changes nothing.
    let (status, stale, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": {}}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{stale}");
    assert_eq!(
        (&stale["code"], &stale["current_version"]),
        (&json!("version_mismatch"), &json!(2))
    );
    let (status, stale, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": {}, "version": 0}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{stale}");
    let (_, now) = app.call(&admin, Method::GET, "/v1/settings", None).await;
    assert_eq!((&now["version"], &now["document"]), (&json!(2), &second));

    // The history: every version, with the document before and after.
    let entries = audit(&app, tenant).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(
        entries[0]["after"],
        json!({"version": 1, "document": first})
    );
    assert_eq!(
        entries[1]["before"],
        json!({"version": 1, "document": first})
    );
    assert_eq!(
        entries[1]["after"],
        json!({"version": 2, "document": second})
    );
    assert_eq!(entries[1]["actor"], "tenant-admin");
    // The tenant reads the same history in its own activity log.
    let (_, events) = app.call(&admin, Method::GET, "/v1/events", None).await;
    let kinds: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(
        kinds,
        [&json!("settings.updated"), &json!("settings.updated")]
    );
}

#[tokio::test]
async fn a_document_the_schema_refuses_is_422_with_its_pointers_and_changes_nothing() {
    let app = app().await;
    let tenant = app.create_tenant("acme").await;
    let admin = admin_of(&app, tenant);
    let good = json!({"features": {"beta": false}});
    let (status, _, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": good}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let bad = json!({"branding": {"color": "red"}, "features": {"beta": "yes"}});
    let (status, problem, _) =
        put(&app, &admin, "/v1/settings", json!({"document": bad}), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "invalid_settings");
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/branding/color"), "{problem}");
    assert!(pointers.contains(&"/features/beta"), "{problem}");
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["message"].as_str().unwrap().is_empty())
    );
    // Not an object, and too large: refused the same way.
    for document in [json!([1, 2]), json!({"x": "y".repeat(70 * 1024)})] {
        let (status, problem, _) = put(
            &app,
            &admin,
            "/v1/settings",
            json!({"document": document}),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["code"], "invalid_settings");
    }
    // The platform admin gets the same answer.
    let (status, problem, _) = put(
        &app,
        &app.admin_token(),
        &format!("/v1/admin/tenants/{tenant}/settings"),
        json!({"document": bad}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (_, now) = app.call(&admin, Method::GET, "/v1/settings", None).await;
    assert_eq!((&now["version"], &now["document"]), (&json!(1), &good));
    assert_eq!(audit(&app, tenant).await.len(), 1, "nothing audited");
}

#[tokio::test]
async fn only_the_tenants_admins_and_platform_admins_write_and_nobody_sees_another_tenants() {
    let app = app().await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let document = json!({"branding": {"color": "#000000"}});
    // Readers and ordinary writers read, and cannot write.
    let reader = app.token("viewer", Some(acme), &[Scope::TenantRead]);
    let writer = app.token(
        "writer",
        Some(acme),
        &[Scope::TenantRead, Scope::TenantWrite],
    );
    for token in [reader.clone(), writer] {
        let (status, problem, _) = put(
            &app,
            &token,
            "/v1/settings",
            json!({"document": document}),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert_eq!(problem["detail"], "requires scope tenant:admin");
    }
    // A platform admin writes any tenant's, by id or slug.
    let (status, written, _) = put(
        &app,
        &app.admin_token(),
        "/v1/admin/tenants/acme/settings",
        json!({"document": document}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["updated_by"], "test-admin");
    let (status, read) = app.call(&reader, Method::GET, "/v1/settings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&read["version"], &read["document"]),
        (&json!(1), &document)
    );
    let (status, read) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{acme}/settings"),
            None,
        )
        .await;
    assert_eq!((status, &read["version"]), (StatusCode::OK, &json!(1)));

    // The other tenant's admin sees only its own (none), and writing its
    // own leaves acme's alone.
    let theirs = admin_of(&app, other);
    let (_, read) = app.call(&theirs, Method::GET, "/v1/settings", None).await;
    assert_eq!(
        (&read["version"], &read["document"]),
        (&json!(0), &json!({}))
    );
    let (status, _, _) = put(
        &app,
        &theirs,
        "/v1/settings",
        json!({"document": {"features": {"x": true}}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, read) = app.call(&reader, Method::GET, "/v1/settings", None).await;
    assert_eq!(read["document"], document);

    // The planes stay apart: no tenant token on the admin route, no
    // platform token on the tenant plane, no token at all nowhere.
    let (status, _) = app
        .call(
            &theirs,
            Method::GET,
            &format!("/v1/admin/tenants/{acme}/settings"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(&app.admin_token(), Method::GET, "/v1/settings", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = app.get("/v1/settings").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{}/settings", TenantId::new()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_schema_any_object_is_accepted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let admin = admin_of(&app, tenant);
    let (status, written, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": {"anything": [1, {"goes": null}]}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    let (status, problem, _) = put(
        &app,
        &admin,
        "/v1/settings",
        json!({"document": "text"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn an_unusable_schema_refuses_to_start_saying_why() {
    let test_db = TestDb::new().await;
    for (tenancy, expected) in [
        (
            TenancySettings {
                settings_schema: "{\"type\": \"no-such-type\"}".to_owned(),
                ..TenancySettings::default()
            },
            "not a usable JSON Schema",
        ),
        (
            TenancySettings {
                settings_schema: "{not json".to_owned(),
                ..TenancySettings::default()
            },
            "tenancy.settings_schema is not JSON",
        ),
        (
            TenancySettings {
                settings_schema_file: "/nonexistent/schema.json".to_owned(),
                ..TenancySettings::default()
            },
            "cannot read tenancy.settings_schema_file",
        ),
        (
            TenancySettings {
                settings_schema: json!({"$ref": "https://example.com/s.json"}).to_string(),
                ..TenancySettings::default()
            },
            "not a usable JSON Schema",
        ),
    ] {
        let mut settings = tenantry::settings::Settings::defaults().unwrap();
        settings.database = test_db.settings(2);
        settings.auth = test_auth_settings();
        settings.server.port = 0;
        settings.metrics.listen = String::new();
        settings.tenancy = tenancy;
        let refused = tenantry::Application::build(settings).await.err().unwrap();
        let message = format!("{:#}", anyhow::Error::from(refused));
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
}

/// Found by the API fuzz: PostgreSQL's `jsonb` cannot hold U+0000, and a
/// document with one answered 500. It is the document's fault: a 422 that
/// points at it, and nothing written.
#[tokio::test]
async fn a_document_holding_u0000_is_422_with_its_pointer_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant_with("nul-settings", json!({})).await;
    let (status, problem, _) = put(
        &app,
        &token,
        "/v1/settings",
        json!({"document": {"branding": {"title": "a\u{0}b"}}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["errors"][0]["pointer"], "/branding/title",
        "{problem}"
    );
    let (status, settings) = app.call(&token, Method::GET, "/v1/settings", None).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["version"], 0, "{settings}");
}
