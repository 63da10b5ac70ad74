//! `POST /v1/admin/tenants/{id}/import` (issue #15): an export into an
//! existing empty tenant through the API — the same `ops::import` the CLI
//! runs: streamed, quota-checked, one source tenant, all or nothing,
//! audited. And the export carries the tenant's limits and settings, so
//! export → import is a faithful copy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry::settings::TenancySettings;
use tenantry_core::{Scope, TenantId};
use tenantry_db::ScopedFutureExt;
use tenantry_tests::TestApp;

async fn export_text(app: &TestApp, tenant: TenantId) -> String {
    let response = app
        .with_token(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/export"),
            &app.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn text_of(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Posts `body` as the import of `tenant` with `token`.
async fn import_as(
    app: &TestApp,
    token: Option<&str>,
    tenant: TenantId,
    query: &str,
    body: String,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/admin/tenants/{tenant}/import{query}")))
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn import(app: &TestApp, tenant: TenantId, query: &str, body: String) -> (StatusCode, Value) {
    import_as(app, Some(&app.admin_token()), tenant, query, body).await
}

/// What a tenant's export says, without what an import renews: ids (and
/// the links made of them), times, the tenant, who wrote the settings. An
/// imported event is compared by its original.
fn content(lines: &[Value]) -> Vec<String> {
    let mut rows: Vec<String> = lines
        .iter()
        .filter(|l| l.get("end").is_none())
        .map(|l| {
            let mut row = l["row"].clone();
            if l["table"] == "events" && row["kind"] == "event.imported" {
                row = row["data"]["original"].clone();
            }
            let row = row.as_object_mut().unwrap();
            for renewed in [
                "tenant_id",
                "id",
                "cluster_id",
                "subject",
                "at",
                "created_at",
                "updated_at",
                "updated_by",
            ] {
                row.remove(renewed);
            }
            format!("{} {}", l["table"], Value::Object(row.clone()))
        })
        .collect();
    rows.sort();
    rows
}

/// A tenant with rows in every table, custom limits and settings.
async fn populated(app: &TestApp, slug: &str) -> TenantId {
    let (tenant, token) = app
        .tenant_with(
            slug,
            json!({"max_users": 7, "max_clusters": 3, "burst": 42}),
        )
        .await;
    let (status, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu-west"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cluster}");
    for i in 0..2 {
        let (status, _) = app
            .call(
                &token,
                Method::POST,
                "/v1/instances",
                Some(json!({"name": format!("vm-{i}"), "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 4})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app
            .call(
                &token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com"), "name": "U"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, written) = app
        .admin_call(
            Method::PUT,
            &format!("/v1/admin/tenants/{tenant}/settings"),
            Some(
                json!({"document": {"branding": {"color": "#123456"}, "features": {"beta": true}}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    tenant
}

async fn empty_tenant(app: &TestApp, slug: &str) -> TenantId {
    app.tenant_with(slug, json!({})).await.0
}

/// The tenant has no rows and no usage: nothing of a refused import stayed.
async fn assert_empty(app: &TestApp, tenant: TenantId) {
    let exported = lines(&export_text(app, tenant).await);
    let tables: Vec<&Value> = exported
        .iter()
        .filter(|l| l.get("end").is_none())
        .map(|l| &l["table"])
        .collect();
    assert_eq!(
        tables,
        [&json!("tenant_quotas"), &json!("tenant_plan")],
        "only the limits and their origin: {exported:?}"
    );
    let (status, quotas) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/quotas"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        quotas["usage"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == &json!(0)),
        "{quotas}"
    );
}

async fn imported_audits(app: &TestApp, tenant: TenantId) -> Vec<Value> {
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={tenant}&limit=100"),
            None,
        )
        .await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenant.imported")
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_export_imported_into_an_empty_tenant_is_a_faithful_copy() {
    let app = TestApp::spawn().await;
    let source = populated(&app, "source").await;
    let exported = lines(&export_text(&app, source).await);
    let tables: Vec<&str> = exported
        .iter()
        .take(2)
        .map(|l| l["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["tenant_quotas", "tenant_settings"],
        "sections first"
    );
    assert_eq!(exported[0]["row"]["max_users"], 7);
    assert_eq!(exported[1]["row"]["version"], 1);

    let copy = empty_tenant(&app, "copy").await;
    let (status, report) = import(&app, copy, "?restore_limits=true", text_of(&exported)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let events = exported.iter().filter(|l| l["table"] == "events").count();
    assert!(events >= 6, "{exported:?}");
    assert_eq!(
        report["rows"],
        json!({"clusters": 1, "instances": 2, "users": 2, "events": events}),
        "{report}"
    );
    // The source's usage history (sql/0015) is checked and skipped too.
    let history = exported
        .iter()
        .filter(|l| l["table"] == "usage_history")
        .count();
    assert!(history >= 1, "{exported:?}");
    assert_eq!(
        report["skipped"],
        json!({"api_keys": 1, "usage_history": history})
    );
    assert_eq!(
        report["sections"],
        json!({"tenant_quotas": "restored", "tenant_settings": "restored", "tenant_plan": "restored"})
    );
    assert_eq!(report["tenant"]["slug"], "copy");

    // The copy's export says what the source's does, but for the API key
    // (a credential, never imported) and what an import renews.
    // Nor the usage history: the copy's is its own (its import's charges).
    let copied: Vec<Value> = lines(&export_text(&app, copy).await)
        .into_iter()
        .filter(|l| l["table"] != "usage_history")
        .collect();
    let without_keys: Vec<Value> = exported
        .iter()
        .filter(|l| l["table"] != "api_keys" && l["table"] != "usage_history")
        .cloned()
        .collect();
    assert_eq!(content(&copied), content(&without_keys));
    assert!(
        copied
            .iter()
            .filter(|l| l.get("end").is_none())
            .all(|l| l["row"]["tenant_id"] == json!(copy)),
        "every row is the copy's"
    );
    // Limits, usage and settings, as the copy's tenant plane sees them.
    let token = app.token("reader", Some(copy), &[Scope::TenantRead]);
    let (_, quotas) = app.call(&token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(
        (
            &quotas["limits"]["max_users"],
            &quotas["limits"]["burst"],
            &quotas["usage"]["cpu_cores"],
            &quotas["usage"]["users"]
        ),
        (&json!(7), &json!(42), &json!(4), &json!(2))
    );
    let (_, settings) = app.call(&token, Method::GET, "/v1/settings", None).await;
    assert_eq!(settings["version"], 1);
    assert_eq!(settings["document"]["branding"]["color"], "#123456");
    // Audited, with the actor and the counts.
    let audits = imported_audits(&app, copy).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0]["actor"], "test-admin");
    assert_eq!(audits[0]["after"]["rows"]["users"], 2);

    // Imported once, the copy is no longer empty: a second import is a
    // conflict and changes nothing.
    let (status, problem) = import(&app, copy, "", text_of(&exported)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("not empty"));
    let again: Vec<Value> = lines(&export_text(&app, copy).await)
        .into_iter()
        .filter(|l| l["table"] != "usage_history")
        .collect();
    assert_eq!(content(&again), content(&copied));
}

#[tokio::test]
async fn without_restore_limits_the_tenant_keeps_its_own_and_the_rows_are_charged_against_them() {
    let app = TestApp::spawn().await;
    let source = populated(&app, "source").await;
    let text = export_text(&app, source).await;
    // Room for one user: the second user's line is refused with the quota
    // problem, and nothing stays.
    let (small, _) = app.tenant_with("small", json!({"max_users": 1})).await;
    let (status, problem) = import(&app, small, "", text.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(
        (
            &problem["code"],
            &problem["resource"],
            &problem["limit"],
            &problem["requested"]
        ),
        (
            &json!("quota_exceeded"),
            &json!("users"),
            &json!(1),
            &json!(1)
        )
    );
    let users_line = lines(&text)
        .iter()
        .enumerate()
        .filter(|(_, l)| l["table"] == "users")
        .map(|(i, _)| i + 1)
        .nth(1)
        .unwrap();
    assert_eq!(problem["line"], json!(users_line), "{problem}");
    assert_empty(&app, small).await;
    assert!(imported_audits(&app, small).await.is_empty());
    // With room, the limits line is checked and skipped: the tenant keeps
    // its own limits.
    let roomy = empty_tenant(&app, "roomy").await;
    let (status, report) = import(&app, roomy, "", text).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["sections"]["tenant_quotas"], "skipped");
    let (_, quotas) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{roomy}/quotas"),
            None,
        )
        .await;
    assert_ne!(quotas["limits"]["max_users"], 7, "{quotas}");
}

#[tokio::test]
async fn restored_limits_are_what_the_rows_are_charged_against() {
    let app = TestApp::spawn().await;
    let source = populated(&app, "source").await;
    // Lowered below usage (allowed: it blocks growth, deletes nothing).
    let (status, _) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{source}/quotas"),
            Some(json!({"limits": {"max_instances": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let copy = empty_tenant(&app, "copy").await;
    let (status, problem) = import(
        &app,
        copy,
        "?restore_limits=true",
        export_text(&app, source).await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(
        (&problem["code"], &problem["resource"]),
        (&json!("quota_exceeded"), &json!("instances"))
    );
    assert_empty(&app, copy).await;
    let (_, quotas) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{copy}/quotas"),
            None,
        )
        .await;
    assert_ne!(
        quotas["limits"]["max_instances"], 1,
        "the restored limits rolled back with the rest"
    );
}

#[tokio::test]
async fn a_malformed_line_deep_in_the_file_is_refused_by_number_and_leaves_nothing() {
    let app = TestApp::spawn().await;
    let target = empty_tenant(&app, "target").await;
    let source = TenantId::new();
    let mut file = Vec::new();
    for i in 0..3000 {
        file.push(
            json!({"table": "events", "row": {"tenant_id": source, "id": uuid::Uuid::now_v7(),
                "kind": "cluster.created", "actor": "someone", "subject": null,
                "data": {"n": i}, "at": "2024-01-01T00:00:00Z"}})
            .to_string(),
        );
    }
    file[2499] = "{\"table\": \"events\", \"row\": ".to_owned();
    let mut text = file.join("\n");
    text.push_str(&format!("\n{}\n", json!({"end": true, "rows": 3000})));
    let (status, problem) = import(&app, target, "", text).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["line"], 2500, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 2500: not JSON"),
        "{problem}"
    );
    assert_empty(&app, target).await;

    // A bad value names its field; a truncated file is refused too.
    let bad = format!(
        "{}\n{}\n",
        json!({"table": "clusters", "row": {"id": uuid::Uuid::now_v7(), "name": "a\u{1b}[31m", "region": "eu"}}),
        json!({"end": true, "rows": 1})
    );
    let (status, problem) = import(&app, target, "", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        (&problem["line"], &problem["field"]),
        (&json!(1), &json!("clusters.name"))
    );
    let truncated = format!(
        "{}\n",
        json!({"table": "clusters", "row": {"id": uuid::Uuid::now_v7(), "name": "a", "region": "eu"}})
    );
    let (status, problem) = import(&app, target, "", truncated).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("truncated"));
    assert_empty(&app, target).await;
}

#[tokio::test]
async fn a_row_naming_another_tenant_than_the_export_is_refused() {
    let app = TestApp::spawn().await;
    let source = populated(&app, "source").await;
    let victim = empty_tenant(&app, "victim").await;
    let mut exported = lines(&export_text(&app, source).await);
    let at = exported
        .iter()
        .position(|l| l["table"] == "clusters")
        .unwrap();
    exported[at]["row"]["tenant_id"] = json!(victim);
    let target = empty_tenant(&app, "target").await;
    let (status, problem) = import(&app, target, "", text_of(&exported)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        (&problem["line"], &problem["field"]),
        (&json!(at + 1), &json!("clusters.tenant_id"))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("names another tenant than the file's own (line 1)"),
        "{problem}"
    );
    assert_empty(&app, target).await;
    assert_empty(&app, victim).await;
}

#[tokio::test]
async fn only_a_platform_admin_imports_and_only_into_a_tenant_that_exists() {
    let app = TestApp::spawn().await;
    let target = empty_tenant(&app, "target").await;
    let body = || format!("{}\n", json!({"end": true, "rows": 0}));
    let (status, _) = import_as(&app, None, target, "", body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let everything = app.token(
        "tenant-owner",
        Some(target),
        &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
    );
    let (status, problem) = import_as(&app, Some(&everything), target, "", body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, _) = import(&app, TenantId::new(), "", body()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(imported_audits(&app, target).await.is_empty());
    // An empty export imports into an empty tenant: nothing, audited.
    let (status, report) = import(&app, target, "", body()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(imported_audits(&app, target).await.len(), 1);
}

#[tokio::test]
async fn a_body_over_the_import_bound_is_413_and_leaves_nothing() {
    let app = TestApp::builder()
        .tenancy(TenancySettings {
            import_max_bytes: 4096,
            ..TenancySettings::default()
        })
        .spawn()
        .await;
    let target = empty_tenant(&app, "target").await;
    let rows: Vec<Value> = (0..100)
        .map(|i| json!({"table": "users", "row": {"id": uuid::Uuid::now_v7(), "email": format!("u{i}@example.com")}}))
        .collect();
    let mut text = text_of(&rows);
    text.push_str(&format!("{}\n", json!({"end": true, "rows": 100})));
    assert!(text.len() > 4096);
    let (status, problem) = import(&app, target, "", text).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "payload_too_large");
    assert_empty(&app, target).await;
}

/// `tenant`'s custom domains as the admin plane lists them.
async fn domains_of(app: &TestApp, tenant: TenantId) -> Vec<Value> {
    let (status, list) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/domains"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

async fn quotas_of(app: &TestApp, tenant: TenantId) -> Value {
    let (status, quotas) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/quotas"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    quotas
}

/// A tenant on plan `team` with one override (`max_users`), settings and
/// a verified custom domain `shop.example.com`.
async fn on_a_plan_with_a_domain(app: &TestApp) -> TenantId {
    let (status, plan) = app
        .admin_call(
            Method::POST,
            "/v1/admin/plans",
            Some(json!({"name": "team", "limits": {"max_users": 20, "max_clusters": 5, "burst": 77}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let source = empty_tenant(app, "source").await;
    let (status, body) = app
        .admin_call(
            Method::PUT,
            &format!("/v1/admin/tenants/{source}/plan"),
            Some(json!({"plan": "team"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{source}/quotas"),
            Some(json!({"limits": {"max_users": 9}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin_call(
            Method::PUT,
            &format!("/v1/admin/tenants/{source}/settings"),
            Some(json!({"document": {"branding": {"color": "#abcdef"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owner = app.token(
        "owner",
        Some(source),
        &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
    );
    let (status, domain) = app
        .call(
            &owner,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    // Verified as a DNS check would leave it (the check itself is
    // tests/it/domains.rs's subject).
    app.db
        .platform()
        .run(|conn| {
            async move {
                diesel_async::RunQueryDsl::execute(
                    diesel::sql_query(
                        "UPDATE domains SET verified_at = now(), verified_by = 'dns' \
                         WHERE hostname = 'shop.example.com'",
                    ),
                    conn,
                )
                .await
                .map_err(tenantry_db::DbError::from)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert!(domains_of(app, source).await[0]["verified_at"].is_string());
    source
}

#[tokio::test]
async fn the_plan_its_overrides_and_the_domains_travel_with_the_export() {
    let app = TestApp::spawn().await;
    let source = on_a_plan_with_a_domain(&app).await;
    let exported = lines(&export_text(&app, source).await);
    let sections: Vec<&str> = exported
        .iter()
        .take(4)
        .map(|l| l["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        ["tenant_quotas", "tenant_settings", "tenant_plan", "domains"]
    );
    assert_eq!(
        exported[2]["row"],
        json!({"tenant_id": source, "plan_name": "team", "overrides": ["max_users"]})
    );
    let domain = exported[3]["row"].as_object().unwrap();
    assert_eq!(domain["hostname"], "shop.example.com");
    assert!(domain["verified_at"].is_string());
    assert!(
        !domain.contains_key("token") && !exported[3].to_string().contains("token"),
        "the verification token is a secret: {domain:?}"
    );

    // The source still holds the name: the domain's line is refused with
    // its number, and nothing of the import stays.
    let copy = empty_tenant(&app, "copy").await;
    let was = quotas_of(&app, copy).await;
    let (status, problem) = import(&app, copy, "?restore_limits=true", text_of(&exported)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["line"], 4, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("already registered"),
        "{problem}"
    );
    assert_empty(&app, copy).await;
    assert!(domains_of(&app, copy).await.is_empty());
    let now = quotas_of(&app, copy).await;
    assert_eq!(
        (&now["limits"], &now["plan"], &now["sources"]),
        (&was["limits"], &was["plan"], &was["sources"]),
        "the plan and the limits rolled back with the rest"
    );
    assert!(imported_audits(&app, copy).await.is_empty());

    // The name freed, the same file imports.
    let owner = app.token(
        "owner",
        Some(source),
        &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
    );
    let id = domains_of(&app, source).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(&owner, Method::DELETE, &format!("/v1/domains/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, report) = import(&app, copy, "?restore_limits=true", text_of(&exported)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["sections"],
        json!({"tenant_quotas": "restored", "tenant_settings": "restored", "tenant_plan": "restored"})
    );
    assert_eq!(report["rows"]["domains"], 1, "{report}");

    // Same plan, same overrides, same limits: the quota view says so.
    let (source_quotas, copy_quotas) = (quotas_of(&app, source).await, quotas_of(&app, copy).await);
    assert_eq!(copy_quotas["plan"], "team", "{copy_quotas}");
    assert_eq!(copy_quotas["limits"], source_quotas["limits"]);
    assert_eq!(copy_quotas["sources"], source_quotas["sources"]);
    assert_eq!(
        (
            &copy_quotas["limits"]["max_users"],
            &copy_quotas["limits"]["burst"]
        ),
        (&json!(9), &json!(77))
    );
    assert_eq!(copy_quotas["sources"]["max_users"]["source"], "override");
    let (_, plan) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(plan["tenants"], 2, "{plan}");
    // Same settings.
    let reader = app.token("reader", Some(copy), &[Scope::TenantRead]);
    let (_, settings) = app.call(&reader, Method::GET, "/v1/settings", None).await;
    assert_eq!(settings["document"]["branding"]["color"], "#abcdef");
    // The domain, claimed again: pending, with a token of its own to prove.
    let domains = domains_of(&app, copy).await;
    assert_eq!(domains.len(), 1);
    assert_eq!(domains[0]["hostname"], "shop.example.com");
    assert!(domains[0]["verified_at"].is_null(), "{domains:?}");
    let copy_export = lines(&export_text(&app, copy).await);
    assert_eq!(
        copy_export[2]["row"],
        json!({"tenant_id": copy, "plan_name": "team", "overrides": ["max_users"]})
    );
}

#[tokio::test]
async fn a_plan_this_deployment_does_not_have_is_refused_by_line() {
    let app = TestApp::spawn().await;
    let source = on_a_plan_with_a_domain(&app).await;
    let mut exported = lines(&export_text(&app, source).await);
    exported[2]["row"]["plan_name"] = json!("enterprise");
    // Another host name, so the plan's line is the first refused.
    exported[3]["row"]["hostname"] = json!("elsewhere.example.com");
    let copy = empty_tenant(&app, "copy").await;
    let (status, problem) = import(&app, copy, "?restore_limits=true", text_of(&exported)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        (&problem["line"], &problem["field"]),
        (&json!(3), &json!("tenant_plan.plan_name")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no plan named enterprise"),
        "{problem}"
    );
    assert_empty(&app, copy).await;
    assert!(domains_of(&app, copy).await.is_empty());
    assert!(quotas_of(&app, copy).await["plan"].is_null());
    // Without restore_limits the plan's line is only checked: the target
    // keeps its own plan (none) and limits, and the rest imports.
    let (status, report) = import(&app, copy, "", text_of(&exported)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["sections"]["tenant_plan"], "skipped");
    assert!(quotas_of(&app, copy).await["plan"].is_null());
    assert_eq!(domains_of(&app, copy).await.len(), 1);
}
