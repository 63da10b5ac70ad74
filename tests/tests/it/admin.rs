//! The platform-admin plane: tenant registry, lifecycle, audit, health,
//! export/import — the real app (two replicas where it matters), real DB.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::{Action, TenantStatus, transition};
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::TestApp;

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(token, method, path, body).await
}

async fn create(app: &TestApp, slug: &str) -> Value {
    let (status, tenant) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    tenant
}

fn id(tenant: &Value) -> tenantry_core::TenantId {
    tenant["id"].as_str().unwrap().parse().unwrap()
}

async fn act(app: &TestApp, tenant: &Value, action: &str) -> (StatusCode, Value) {
    let path = format!(
        "/v1/admin/tenants/{}/{action}",
        tenant["id"].as_str().unwrap()
    );
    app.admin_call(
        Method::POST,
        &path,
        Some(json!({"reason": format!("test: {action}")})),
    )
    .await
}

#[tokio::test]
async fn admins_create_read_list_and_patch_tenants() {
    let app = TestApp::spawn().await;
    let response = app
        .with_token(Method::POST, "/v1/admin/tenants", &app.admin_token())
        .json(&json!({"slug": "acme", "name": "Acme Corp", "quotas": {"max_users": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let acme: Value = response.json().await.unwrap();
    assert_eq!(
        (acme["status"].as_str(), acme["legal_hold"].as_bool()),
        (Some("active"), Some(false))
    );
    assert!(acme["deleted_at"].is_null() && acme["purge_after"].is_null());
    assert_eq!(
        location,
        format!("/v1/admin/tenants/{}", acme["id"].as_str().unwrap())
    );

    for key in [acme["id"].as_str().unwrap(), "acme"] {
        let (status, got) = app
            .admin_call(Method::GET, &format!("/v1/admin/tenants/{key}"), None)
            .await;
        assert_eq!((status, &got["id"]), (StatusCode::OK, &acme["id"]));
    }
    // The tenant sees its quotas: the override and the defaults.
    let token = app.tenant_token(id(&acme));
    let (_, quotas) = call(&app, &token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quotas["limits"]["max_users"], 3);
    assert_eq!(quotas["limits"]["max_clusters"], 1000);
    assert_eq!(quotas["usage"]["users"], 0);

    let (status, patched) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/tenants/acme",
            Some(json!({"name": "ACME", "legal_hold": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (patched["name"].as_str(), patched["legal_hold"].as_bool()),
        (Some("ACME"), Some(true))
    );

    let globex = create(&app, "globex").await;
    act(&app, &globex, "suspend").await;
    let (_, suspended) = app
        .admin_call(Method::GET, "/v1/admin/tenants?status=suspended", None)
        .await;
    let ids: Vec<&Value> = suspended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, vec![&globex["id"]]);
    let (_, first) = app
        .admin_call(Method::GET, "/v1/admin/tenants?limit=1", None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants?status=gone", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/nobody", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn slugs_follow_the_rules_and_stay_taken_through_deletion() {
    let app = TestApp::spawn().await;
    for bad in [
        "A",
        "acme_corp",
        "-acme",
        "acme-",
        "admin",
        "www",
        "api",
        &"a".repeat(64),
    ] {
        let (status, problem) = app
            .admin_call(
                Method::POST,
                "/v1/admin/tenants",
                Some(json!({"slug": bad, "name": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        assert_eq!(problem["field"], "slug");
    }
    let acme = create(&app, "acme").await;
    let (status, problem) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "acme", "name": "again"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    act(&app, &acme, "delete").await;
    let (status, _) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "acme", "name": "again"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a deleted tenant keeps its slug until purged and released"
    );
}

#[tokio::test]
async fn a_slug_can_never_be_mistaken_for_another_tenants_id() {
    let app = TestApp::spawn().await;
    let a = create(&app, "tenant-a").await;
    let uuid = *id(&a).as_uuid();
    let forms = [
        uuid.hyphenated().to_string(),
        uuid.simple().to_string(),
        uuid.hyphenated().to_string().to_uppercase(),
        uuid.simple().to_string().to_uppercase(),
    ];
    for form in &forms {
        let (status, problem) = app
            .admin_call(
                Method::POST,
                "/v1/admin/tenants",
                Some(json!({"slug": form, "name": "impostor"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{form}: {problem}"
        );
        assert_eq!(problem["field"], "slug", "{form}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("UUID"),
            "{form}: {problem}"
        );
    }
    let (_, all) = app.admin_call(Method::GET, "/v1/admin/tenants", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    // Every form of an id names that tenant, and only by id: reads and
    // lifecycle actions alike.
    for form in &forms {
        let (status, got) = app
            .admin_call(Method::GET, &format!("/v1/admin/tenants/{form}"), None)
            .await;
        assert_eq!((status, &got["id"]), (StatusCode::OK, &a["id"]), "{form}");
    }
    let (status, suspended) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{}/suspend", forms[1]),
            None,
        )
        .await;
    assert_eq!((status, &suspended["id"]), (StatusCode::OK, &a["id"]));
    // An id that names no tenant is a 404, never a slug lookup.
    let (status, _) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{}", uuid::Uuid::now_v7().simple()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Drives a fresh tenant into `status` along allowed transitions.
async fn tenant_in(app: &TestApp, slug: &str, status: TenantStatus) -> Value {
    let tenant = create(app, slug).await;
    let path: &[&str] = match status {
        TenantStatus::Active => &[],
        TenantStatus::Suspended => &["suspend"],
        TenantStatus::Archived => &["archive"],
        TenantStatus::Deleted => &["delete"],
    };
    for action in path {
        assert_eq!(act(app, &tenant, action).await.0, StatusCode::OK);
    }
    tenant
}

#[tokio::test]
async fn every_status_and_action_pair_behaves_as_the_state_machine_says_over_http() {
    let app = TestApp::spawn().await;
    for (i, from) in TenantStatus::ALL.into_iter().enumerate() {
        for (j, action) in Action::ALL.into_iter().enumerate() {
            let tenant = tenant_in(&app, &format!("t-{i}-{j}"), from).await;
            let (status, body) = act(&app, &tenant, action.as_str()).await;
            match transition(from, action) {
                Ok(to) => {
                    assert_eq!(status, StatusCode::OK, "{from} --{action}--> {body}");
                    assert_eq!(body["status"], to.as_str());
                    assert_eq!(
                        body["deleted_at"].is_null(),
                        to != TenantStatus::Deleted,
                        "{from} --{action}-->"
                    );
                    if to == TenantStatus::Deleted {
                        let deleted: chrono::DateTime<chrono::Utc> =
                            body["deleted_at"].as_str().unwrap().parse().unwrap();
                        let purge: chrono::DateTime<chrono::Utc> =
                            body["purge_after"].as_str().unwrap().parse().unwrap();
                        assert_eq!(purge - deleted, chrono::Duration::days(90));
                    }
                }
                Err(_) => {
                    assert_eq!(status, StatusCode::CONFLICT, "{from} --{action}--> {body}");
                    assert_eq!(body["code"], "invalid_transition");
                    assert_eq!(
                        (body["from"].as_str(), body["to"].as_str()),
                        (Some(from.as_str()), Some(action.target().as_str()))
                    );
                }
            }
        }
    }
    // Double delete: the second is refused.
    let twice = create(&app, "twice").await;
    assert_eq!(act(&app, &twice, "delete").await.0, StatusCode::OK);
    let (status, body) = act(&app, &twice, "delete").await;
    assert_eq!(
        (status, body["from"].as_str()),
        (StatusCode::CONFLICT, Some("deleted"))
    );
    // A malformed body is refused, not ignored; no body at all is fine.
    let path = format!(
        "/v1/admin/tenants/{}/suspend",
        create(&app, "bodies").await["id"].as_str().unwrap()
    );
    let (status, _) = app
        .admin_call(Method::POST, &path, Some(json!({"reason": 7})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .with_token(Method::POST, &path, &app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Every tenant-plane operation the router serves, from its own OpenAPI
/// document (so a new route is covered without editing this test).
async fn tenant_plane_operations(app: &TestApp) -> Vec<(Method, String, Option<Value>)> {
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || path.starts_with("/v1/admin") || path == "/v1/auth/token" {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = well_formed_body(&method, path);
            operations.push((
                method,
                path.replace("{id}", &uuid::Uuid::now_v7().to_string())
                    .replace("{delivery_id}", &uuid::Uuid::now_v7().to_string()),
                body,
            ));
        }
    }
    assert!(operations.len() >= 20, "{operations:?}");
    operations
}

/// A valid body for each writing route, so the gate — not validation — is
/// what answers. A new writing route must be added here.
fn well_formed_body(method: &Method, path: &str) -> Option<Value> {
    let cluster = uuid::Uuid::now_v7();
    match (method.as_str(), path) {
        ("GET" | "DELETE", _) => None,
        ("POST", "/v1/users") => Some(json!({"email": "x@example.com"})),
        ("PATCH", "/v1/users/{id}") => Some(json!({"name": "x"})),
        ("POST", "/v1/api-keys") => Some(json!({"name": "k"})),
        ("POST", "/v1/clusters") => Some(json!({"name": "c", "region": "eu"})),
        ("POST", "/v1/instances") => {
            Some(json!({"name": "i", "cluster_id": cluster, "cpu_cores": 1, "memory_gb": 1}))
        }
        ("PATCH", "/v1/instances/{id}") => Some(json!({"cpu_cores": 2})),
        ("POST", "/v1/members") => Some(json!({"subject": "someone", "role": "viewer"})),
        ("PATCH", "/v1/members/{id}") => Some(json!({"role": "member"})),
        ("POST", "/v1/domains") => Some(json!({"hostname": "shop.example.test"})),
        ("POST", "/v1/domains/{id}/verify") => None,
        ("PUT", "/v1/settings") => Some(json!({"document": {}})),
        ("POST", "/v1/webhooks") => Some(json!({"url": "https://hooks.example.test/x"})),
        ("PATCH", "/v1/webhooks/{id}") => Some(json!({"enabled": false})),
        (
            "POST",
            "/v1/webhooks/{id}/rotate-secret" | "/v1/webhooks/{id}/deliveries/{delivery_id}/replay",
        ) => None,
        (m, p) => panic!("no well-formed body for {m} {p}: add one"),
    }
}

async fn snapshot_of(app: &TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in ["/v1/clusters", "/v1/instances", "/v1/users", "/v1/api-keys"] {
        all.push(call(app, token, Method::GET, path, None).await.1);
    }
    all
}

#[tokio::test]
async fn a_non_active_tenant_is_refused_on_every_tenant_plane_route_and_nobody_else_is() {
    let app = TestApp::spawn().await;
    let a = create(&app, "tenant-a").await;
    let b = create(&app, "tenant-b").await;
    let (ta, tb) = (app.tenant_token(id(&a)), app.tenant_token(id(&b)));
    let (_, cluster) = call(
        &app,
        &ta,
        Method::POST,
        "/v1/clusters",
        Some(json!({"name": "main", "region": "eu"})),
    )
    .await;
    call(
        &app,
        &ta,
        Method::POST,
        "/v1/instances",
        Some(json!({"name": "web", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1})),
    )
    .await;
    call(
        &app,
        &ta,
        Method::POST,
        "/v1/users",
        Some(json!({"email": "ada@example.com"})),
    )
    .await;
    let before = snapshot_of(&app, &ta).await;
    let operations = tenant_plane_operations(&app).await;

    for (action, code) in [
        ("suspend", "tenant_suspended"),
        ("archive", "tenant_archived"),
        ("delete", "tenant_deleted"),
    ] {
        assert_eq!(act(&app, &a, action).await.0, StatusCode::OK, "{action}");
        for (method, path, body) in &operations {
            let (status, problem) = call(&app, &ta, method.clone(), path, body.clone()).await;
            assert_eq!(
                (status, problem["code"].as_str()),
                (StatusCode::FORBIDDEN, Some(code)),
                "{action}: {method} {path}"
            );
        }
        let (status, _) = call(&app, &tb, Method::GET, "/v1/tenant", None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "B is unaffected while A is {action}ed"
        );
        if action == "suspend" {
            assert_eq!(act(&app, &a, "activate").await.0, StatusCode::OK);
            assert_eq!(
                snapshot_of(&app, &ta).await,
                before,
                "data identical after suspend + activate"
            );
            assert_eq!(act(&app, &a, "suspend").await.0, StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn a_suspension_through_one_replica_is_refused_by_the_other_on_the_next_request() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_with(
        first.test_db.clone(),
        &first.test_db.settings(4),
        first.auth.clone(),
    )
    .await;
    let tenant = create(&first, "acme").await;
    let token = first.tenant_token(id(&tenant));
    assert_eq!(
        call(&second, &token, Method::GET, "/v1/tenant", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(act(&first, &tenant, "suspend").await.0, StatusCode::OK);
    let (status, problem) = call(&second, &token, Method::GET, "/v1/tenant", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_suspended"))
    );
    assert_eq!(act(&second, &tenant, "activate").await.0, StatusCode::OK);
    assert_eq!(
        call(&first, &token, Method::GET, "/v1/tenant", None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn racing_admins_get_one_success_and_invalid_transitions() {
    let app = TestApp::spawn().await;
    let second = TestApp::spawn_with(
        app.test_db.clone(),
        &app.test_db.settings(4),
        app.auth.clone(),
    )
    .await;
    let tenant = create(&app, "acme").await;
    let mut racers = Vec::new();
    for i in 0..10 {
        let replica = if i % 2 == 0 { &app } else { &second };
        racers.push(act(replica, &tenant, "suspend"));
    }
    let results = futures_util::future::join_all(racers).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .map(|(_, b)| b)
        .collect();
    assert_eq!((ok, refused.len()), (1, 9), "{results:?}");
    assert!(
        refused
            .iter()
            .all(|b| b["code"] == "invalid_transition" && b["from"] == "suspended")
    );
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!(
                "/v1/admin/audit?tenant_id={}",
                tenant["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let suspensions = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenant.suspend")
        .count();
    assert_eq!(suspensions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_commits_before_the_suspension_never_after() {
    let app = TestApp::spawn().await;
    let tenant = create(&app, "acme").await;
    let tid = id(&tenant);
    // A write unit of work holding the tenant's lifecycle lock, as every
    // tenant-plane write does, that takes a while to commit.
    let db = app.db.clone();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let committed = db
            .tenant(tid)
            .writing()
            .run(|conn| {
                async move {
                    tenantry_db::queries::tenants::gate(conn, tid, None, None).await?;
                    tenantry_db::queries::clusters::create(conn, tid, "in-flight", "eu").await?;
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    Ok::<_, DbError>(())
                }
                .scope_boxed()
            })
            .await;
        (committed, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _) = act(&app, &tenant, "suspend").await;
    let suspended_at = Instant::now();
    assert_eq!(status, StatusCode::OK);
    let (committed, _committed_at) = writer.await.unwrap();
    committed.unwrap();
    // The write holds the lock for at least its 600 ms: a suspension that
    // waited for it cannot have answered sooner. (Not "the writer saw its
    // commit first": on a loaded machine the writer's task may be polled
    // after its COMMIT returned later than the suspension's client.)
    assert!(
        suspended_at >= started + Duration::from_millis(600),
        "the suspension completed while the write was still in flight ({:?} after it began)",
        suspended_at - started
    );
    // And a write that starts after the suspension is refused.
    let token = app.tenant_token(tid);
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        "/v1/clusters",
        Some(json!({"name": "late", "region": "eu"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(act(&app, &tenant, "activate").await.0, StatusCode::OK);
    let (_, clusters) = call(&app, &token, Method::GET, "/v1/clusters", None).await;
    let names: Vec<&str> = clusters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["in-flight"]);
}

async fn export(app: &TestApp, tenant: &Value) -> (Vec<Value>, Value) {
    let response = app
        .with_token(
            Method::GET,
            &format!(
                "/v1/admin/tenants/{}/export",
                tenant["id"].as_str().unwrap()
            ),
            &app.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let trailer = lines.pop().unwrap();
    (lines, trailer)
}

fn counts(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts
            .entry(line["table"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// What two tenants' rows say, sorted, without what an import renews: ids
/// (and the links made of them), times, the tenant. An imported event is
/// compared by its original (`data.original`).
fn content(lines: &[Value]) -> Vec<String> {
    let mut rows: Vec<String> = lines
        .iter()
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
            ] {
                row.remove(renewed);
            }
            format!("{} {}", l["table"], Value::Object(row.clone()))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn an_export_holds_exactly_the_tenants_rows_and_imports_into_a_new_tenant() {
    let app = TestApp::spawn().await;
    let a = create(&app, "tenant-a").await;
    let b = create(&app, "tenant-b").await;
    for (tenant, n) in [(&a, 3), (&b, 2)] {
        let token = app.tenant_token(id(tenant));
        let (_, cluster) = call(
            &app,
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
        for i in 0..n {
            call(&app, &token, Method::POST, "/v1/instances", Some(json!({"name": format!("vm{i}"), "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 3}))).await;
            call(
                &app,
                &token,
                Method::POST,
                "/v1/users",
                Some(json!({"email": format!("u{i}@example.com")})),
            )
            .await;
        }
        call(
            &app,
            &token,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    }
    // Deleted-but-not-purged tenants export too.
    assert_eq!(act(&app, &a, "delete").await.0, StatusCode::OK);
    let (lines, trailer) = export(&app, &a).await;
    assert_eq!(trailer, json!({"end": true, "rows": lines.len()}));
    let expected: BTreeMap<String, usize> = [
        ("api_keys", 1),
        ("clusters", 1),
        ("events", 1 + 3 + 3 + 1),
        ("instances", 3),
        ("users", 3),
        // The export's sections: the tenant's limits and where they come
        // from (no settings written, no domain).
        ("tenant_quotas", 1),
        ("tenant_plan", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    let mut got = counts(&lines);
    // The usage history's period(s) the charges fell in (sql/0015): one,
    // or two across an hour boundary.
    let history = got.remove("usage_history").unwrap_or(0);
    assert!((1..=2).contains(&history), "{got:?}");
    assert_eq!(got, expected);
    assert!(
        lines.iter().all(|l| l["row"]["tenant_id"] == a["id"]),
        "only A's rows"
    );

    let file =
        std::env::temp_dir().join(format!("tenantry-export-{}.ndjson", uuid::Uuid::new_v4()));
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str(&format!("{trailer}\n"));
    std::fs::write(&file, &text).unwrap();
    let (ok, stdout, stderr) = tenantry_tests::run_tenantry(
        &app.test_db,
        &[
            "tenants",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--slug",
            "tenant-a-copy",
            "--name",
            "Copy",
            // A faithful copy: the file's limits, not [quotas.default].
            "--restore-limits",
        ],
    );
    std::fs::remove_file(&file).unwrap();
    assert!(ok, "{stderr}");
    let imported: Value = serde_json::from_str(&stdout).unwrap();
    let copy = &imported["tenant"];
    // The copy's usage history is its own (its import's charges).
    let (copied, _) = export(&app, copy).await;
    let copied: Vec<Value> = copied
        .into_iter()
        .filter(|l| l["table"] != "usage_history")
        .collect();
    // Everything but the API key, which is a credential and never imported.
    let mut without_keys = expected.clone();
    without_keys.remove("api_keys");
    assert_eq!(counts(&copied), without_keys);
    assert_eq!(imported["skipped"]["api_keys"], 1, "{imported}");
    let source: Vec<Value> = lines
        .iter()
        .filter(|l| l["table"] != "api_keys" && l["table"] != "usage_history")
        .cloned()
        .collect();
    assert_eq!(
        content(&copied),
        content(&source),
        "same content, new tenant"
    );
    // The copy is a working tenant: its usage was recomputed from the rows.
    let token = app.tenant_token(id(copy));
    let (_, quotas) = call(&app, &token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(
        (
            quotas["usage"]["instances"].as_i64(),
            quotas["usage"]["cpu_cores"].as_i64()
        ),
        (Some(3), Some(6))
    );
    // A truncated file is refused and creates nothing.
    let truncated =
        std::env::temp_dir().join(format!("tenantry-export-{}.ndjson", uuid::Uuid::new_v4()));
    std::fs::write(
        &truncated,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let (ok, _, stderr) = tenantry_tests::run_tenantry(
        &app.test_db,
        &[
            "tenants",
            "import",
            "--file",
            truncated.to_str().unwrap(),
            "--slug",
            "tenant-a-partial",
            "--name",
            "Partial",
        ],
    );
    std::fs::remove_file(&truncated).unwrap();
    assert!(!ok && stderr.contains("truncated"), "{stderr}");
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/tenant-a-partial", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_reports_counts_usage_limits_and_last_activity() {
    let app = TestApp::spawn().await;
    let tenant = create(&app, "acme").await;
    let token = app.tenant_token(id(&tenant));
    call(
        &app,
        &token,
        Method::POST,
        "/v1/clusters",
        Some(json!({"name": "main", "region": "eu"})),
    )
    .await;
    let (status, health) = app
        .admin_call(Method::GET, "/v1/admin/tenants/acme/health", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "active");
    assert_eq!(health["counts"]["clusters"], 1);
    assert_eq!(health["counts"]["events"], 1);
    assert_eq!(health["counts"]["instances"], 0);
    assert_eq!(health["limits"]["max_clusters"], 1000);
    assert!(health["usage"].is_object());
    assert!(health["last_activity_at"].is_string());
    assert!(health["approx_bytes"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn the_audit_log_records_each_change_with_actor_reason_and_before_after() {
    let app = TestApp::spawn().await;
    let tenant = create(&app, "acme").await;
    act(&app, &tenant, "suspend").await;
    act(&app, &tenant, "activate").await;
    app.admin_call(
        Method::PATCH,
        "/v1/admin/tenants/acme",
        Some(json!({"legal_hold": true})),
    )
    .await;
    let other = create(&app, "other").await;
    let (_, log) = app
        .admin_call(
            Method::GET,
            &format!(
                "/v1/admin/audit?tenant_id={}",
                tenant["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let entries = log["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.created",
            "tenant.suspend",
            "tenant.activate",
            "tenant.updated"
        ]
    );
    let suspend = &entries[1];
    assert_eq!(suspend["actor"], "test-admin");
    assert_eq!(suspend["reason"], "test: suspend");
    assert_eq!(
        (
            suspend["before"]["status"].as_str(),
            suspend["after"]["status"].as_str()
        ),
        (Some("active"), Some("suspended"))
    );
    assert!(entries.iter().all(|e| e["tenant_id"] == tenant["id"]));
    let (_, everything) = app.admin_call(Method::GET, "/v1/admin/audit", None).await;
    assert!(
        everything["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["tenant_id"] == other["id"])
    );
    // The tenant sees what was done to it — and nothing about the other.
    let (_, events) = call(
        &app,
        &app.tenant_token(id(&tenant)),
        Method::GET,
        "/v1/events",
        None,
    )
    .await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "tenant.created",
            "tenant.suspend",
            "tenant.activate",
            "tenant.updated"
        ]
    );
    assert!(!events.to_string().contains(other["id"].as_str().unwrap()));
}

#[tokio::test]
async fn the_admin_plane_refuses_tenant_tokens_and_tokens_without_the_admin_scope() {
    let app = TestApp::spawn().await;
    let tenant = create(&app, "acme").await;
    let tenant_token = app.tenant_token(id(&tenant));
    let no_scope = app.token("someone", None, &[tenantry_core::Scope::TenantRead]);
    for (token, expected) in [
        (tenant_token.as_str(), StatusCode::FORBIDDEN),
        (no_scope.as_str(), StatusCode::FORBIDDEN),
        ("", StatusCode::UNAUTHORIZED),
    ] {
        for (method, path) in [
            (Method::GET, "/v1/admin/tenants"),
            (Method::POST, "/v1/admin/tenants/acme/suspend"),
            (Method::GET, "/v1/admin/audit"),
        ] {
            let (status, _) = call(&app, token, method.clone(), path, None).await;
            assert_eq!(status, expected, "{method} {path}");
        }
    }
    let (_, still) = app
        .admin_call(Method::GET, "/v1/admin/tenants/acme", None)
        .await;
    assert_eq!(still["status"], "active");
}

#[tokio::test]
async fn a_key_holding_u0000_is_a_404_not_a_database_error() {
    // PostgreSQL text cannot hold U+0000: looked up, it was a 500 (the
    // console's hostile-input test found it).
    let app = TestApp::spawn().await;
    for path in [
        "/v1/admin/tenants/a%00b",
        "/v1/admin/accounts/a%00b",
        "/v1/admin/plans/a%00b",
        "/v1/admin/tenants/a%00b/quotas",
    ] {
        let (status, body) = app.admin_call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }
}

#[tokio::test]
async fn every_lifecycle_step_reaches_every_nodes_copy_of_the_tenant() {
    // On Citus `tenants` is a reference table: a restore once changed only
    // the coordinator's copy (found by the console's browser walk-through),
    // and reads running on a worker saw the tenant still deleted.
    let app = TestApp::spawn().await;
    let tenant = create(&app, "every-node").await;
    let token = app.tenant_token(id(&tenant));
    let expect = [
        ("suspend", "tenant_suspended"),
        ("activate", ""),
        ("archive", "tenant_archived"),
        ("delete", "tenant_deleted"),
        ("restore", "tenant_archived"),
    ];
    for (action, code) in expect {
        let (status, body) = act(&app, &tenant, action).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        let now = body["status"].as_str().unwrap().to_owned();
        for on_node in tenantry_tests::tenant_status_on_every_node(&app.test_db, id(&tenant)).await
        {
            assert_eq!(on_node, now, "after {action}, a node's copy of tenants");
        }
        let (status, body) = app.call(&token, Method::GET, "/v1/tenant", None).await;
        if code.is_empty() {
            assert_eq!(status, StatusCode::OK, "after {action}: {body}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "after {action}: {body}");
            assert_eq!(body["code"], code, "after {action}: {body}");
        }
    }
}
