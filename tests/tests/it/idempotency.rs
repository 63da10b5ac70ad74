//! `Idempotency-Key` on creates: a retried create replays the first
//! response and provisions (and charges) once — across replicas; a key
//! reused for another request is refused; keys are per tenant; expired keys
//! run anew and are deleted by the housekeeping.

use diesel::sql_types::{Integer, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt;
use tenantry_tests::{TestApp, count_as, count_as_platform};

/// What a create answered: status, `Location`, whether it was a replay,
/// and the body.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    replayed: bool,
    body: Value,
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value, key: Option<&str>) -> Answer {
    let mut request = app.with_token(Method::POST, path, token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    answer(request.send().await.expect("request")).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header("location");
    let replayed = header("idempotent-replayed").as_deref() == Some("true");
    let text = response.text().await.expect("body");
    Answer {
        status,
        location,
        replayed,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

async fn usage(app: &TestApp, token: &str) -> Value {
    let (status, quotas) = app.call(token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    quotas["usage"].clone()
}

async fn listed(app: &TestApp, token: &str, path: &str) -> usize {
    let (status, page) = app
        .call(token, Method::GET, &format!("{path}?limit=100"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").len()
}

async fn tenant(app: &TestApp, slug: &str) -> (TenantId, String) {
    app.tenant_with(slug, json!({"max_clusters": 50, "max_instances": 50}))
        .await
}

/// The replay is the first response: same status, `Location` and body,
/// marked as a replay; the first is not.
fn assert_replays(first: &Answer, again: &Answer) {
    assert!(!first.replayed, "{first:?}");
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.status, first.status);
    assert_eq!(again.location, first.location);
    assert_eq!(again.body, first.body);
}

/// Makes a tenant's keys `hours` old, in the tenant's own scope. (No
/// arithmetic on the column: Citus refuses a STABLE function of a column in
/// an UPDATE.)
async fn age_key(app: &TestApp, tenant: TenantId, hours: i32) {
    app.db
        .tenant(tenant)
        .run(|conn| {
            async move {
                diesel::sql_query(
                    "UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $2)
                      WHERE tenant_id = $1",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Integer, _>(hours)
                .execute(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("age the key");
}

#[tokio::test]
async fn a_retried_create_replays_the_first_response_and_provisions_and_charges_once() {
    let app = TestApp::spawn().await;
    let (id, token) = tenant(&app, "idem-replay").await;

    let cluster = json!({"name": "main", "region": "eu-west-1"});
    let first = post(&app, &token, "/v1/clusters", &cluster, Some("c-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert!(first.location.is_some());
    // The same request with whitespace and key order of its own is the same
    // request.
    let again = answer(
        app.with_token(Method::POST, "/v1/clusters", &token)
            .header("Idempotency-Key", "c-1")
            .header("content-type", "application/json")
            .body(r#"{ "region": "eu-west-1",  "name": "main" }"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_replays(&first, &again);
    let cluster_id = first.body["id"].as_str().unwrap().to_owned();

    let instance = json!({"name": "db-1", "cluster_id": cluster_id, "cpu_cores": 2, "memory_gb": 4, "storage_gb": 10});
    let first_instance = post(&app, &token, "/v1/instances", &instance, Some("i-1")).await;
    assert_eq!(
        first_instance.status,
        StatusCode::CREATED,
        "{first_instance:?}"
    );
    for _ in 0..2 {
        let again = post(&app, &token, "/v1/instances", &instance, Some("i-1")).await;
        assert_replays(&first_instance, &again);
    }

    let user = json!({"email": "ada@example.com", "name": "Ada"});
    let first_user = post(&app, &token, "/v1/users", &user, Some("u-1")).await;
    assert_eq!(first_user.status, StatusCode::CREATED, "{first_user:?}");
    assert_replays(
        &first_user,
        &post(&app, &token, "/v1/users", &user, Some("u-1")).await,
    );

    // An API key's secret is shown once: the replay is the same key, same
    // status and Location, without the secret (which is never stored).
    let key = json!({"name": "ci"});
    let first_key = post(&app, &token, "/v1/api-keys", &key, Some("k-1")).await;
    assert_eq!(first_key.status, StatusCode::CREATED, "{first_key:?}");
    let secret = first_key.body["secret"].as_str().unwrap().to_owned();
    let again_key = post(&app, &token, "/v1/api-keys", &key, Some("k-1")).await;
    assert!(again_key.replayed);
    assert_eq!(again_key.status, StatusCode::CREATED);
    assert_eq!(again_key.location, first_key.location);
    assert_eq!(again_key.body["id"], first_key.body["id"]);
    assert_eq!(again_key.body["prefix"], first_key.body["prefix"]);
    assert!(again_key.body.get("secret").is_none(), "{}", again_key.body);
    assert!(!again_key.body.to_string().contains(&secret));

    assert_eq!(listed(&app, &token, "/v1/clusters").await, 1);
    assert_eq!(listed(&app, &token, "/v1/instances").await, 1);
    assert_eq!(listed(&app, &token, "/v1/users").await, 1);
    assert_eq!(listed(&app, &token, "/v1/api-keys").await, 1);
    let used = usage(&app, &token).await;
    assert_eq!(used["clusters"], 1, "{used}");
    assert_eq!(used["instances"], 1, "{used}");
    assert_eq!(used["cpu_cores"], 2, "{used}");
    assert_eq!(used["memory_gb"], 4, "{used}");
    assert_eq!(used["storage_gb"], 10, "{used}");
    assert_eq!(used["users"], 1, "{used}");
    assert_eq!(used["api_keys"], 1, "{used}");
    // One row per key, and no secret in any of them.
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 4);
    assert_eq!(count_as(&app.db, id, "clusters").await, 1);
    let stored = app
        .db
        .tenant(id)
        .run(|conn| {
            async move {
                #[derive(diesel::QueryableByName)]
                struct Body {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    body: String,
                }
                let rows: Vec<Body> = diesel::sql_query(
                    "SELECT response_body::text AS body FROM idempotency_keys WHERE tenant_id = $1",
                )
                .bind::<SqlUuid, _>(id)
                .load(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(rows.into_iter().map(|r| r.body).collect::<Vec<_>>())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|b| !b.contains(&secret)), "{stored:?}");

    // Without a key, nothing changes: a second create is a second create.
    let plain = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "other", "region": "eu-west-1"}),
        None,
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert!(!plain.replayed);
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 4);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_and_does_nothing() {
    let app = TestApp::spawn().await;
    let (id, token) = tenant(&app, "idem-reuse").await;
    let first = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "a", "region": "eu"}),
        Some("k"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");

    // Another body, then another route, under the same key.
    let other_body = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "b", "region": "eu"}),
        Some("k"),
    )
    .await;
    let other_route = post(
        &app,
        &token,
        "/v1/users",
        &json!({"email": "b@example.com"}),
        Some("k"),
    )
    .await;
    for refused in [&other_body, &other_route] {
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused:?}"
        );
        assert_eq!(
            refused.body["code"], "idempotency_key_reused",
            "{refused:?}"
        );
        assert!(!refused.replayed);
    }
    assert_eq!(listed(&app, &token, "/v1/clusters").await, 1);
    assert_eq!(listed(&app, &token, "/v1/users").await, 0);
    let used = usage(&app, &token).await;
    assert_eq!(
        (used["clusters"].as_i64(), used["users"].as_i64()),
        (Some(1), Some(0)),
        "{used}"
    );
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 1);
    // The first request still replays.
    assert_replays(
        &first,
        &post(
            &app,
            &token,
            "/v1/clusters",
            &json!({"name": "a", "region": "eu"}),
            Some("k"),
        )
        .await,
    );
}

#[tokio::test]
async fn a_failed_create_stores_nothing_and_its_key_runs_again() {
    let app = TestApp::spawn().await;
    let (id, token) = tenant(&app, "idem-failed").await;
    let taken = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "a", "region": "eu"}),
        None,
    )
    .await;
    assert_eq!(taken.status, StatusCode::CREATED);

    let conflict = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "a", "region": "eu"}),
        Some("f"),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{conflict:?}");
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 0);
    // Fixed input, same key: runs anew.
    let fixed = post(
        &app,
        &token,
        "/v1/clusters",
        &json!({"name": "b", "region": "eu"}),
        Some("f"),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{fixed:?}");
    assert!(!fixed.replayed);
    assert_eq!(listed(&app, &token, "/v1/clusters").await, 2);
}

#[tokio::test]
async fn keys_are_per_tenant_and_no_tenant_sees_another_tenants_response() {
    let app = TestApp::spawn().await;
    let (a, token_a) = tenant(&app, "idem-a").await;
    let (b, token_b) = tenant(&app, "idem-b").await;
    let body = json!({"name": "same", "region": "eu"});
    let first_a = post(&app, &token_a, "/v1/clusters", &body, Some("shared")).await;
    let first_b = post(&app, &token_b, "/v1/clusters", &body, Some("shared")).await;
    for first in [&first_a, &first_b] {
        assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
        assert!(!first.replayed, "{first:?}");
    }
    assert_ne!(first_a.body["id"], first_b.body["id"]);
    assert_replays(
        &first_a,
        &post(&app, &token_a, "/v1/clusters", &body, Some("shared")).await,
    );
    assert_replays(
        &first_b,
        &post(&app, &token_b, "/v1/clusters", &body, Some("shared")).await,
    );
    // Another body under B's key is B's business only: A's stays A's.
    let reused = post(
        &app,
        &token_b,
        "/v1/clusters",
        &json!({"name": "x", "region": "eu"}),
        Some("shared"),
    )
    .await;
    assert_eq!(reused.body["code"], "idempotency_key_reused");
    for (tenant, token) in [(a, &token_a), (b, &token_b)] {
        assert_eq!(count_as(&app.db, tenant, "idempotency_keys").await, 1);
        assert_eq!(listed(&app, token, "/v1/clusters").await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_one_key_provision_once_and_answer_alike() {
    let first = TestApp::builder().pool(6).spawn().await;
    let second = TestApp::builder()
        .on(first.test_db.clone())
        .database(first.test_db.settings(6))
        .auth(first.auth.clone())
        .spawn()
        .await;
    let (id, token) = tenant(&first, "idem-race").await;
    let body = json!({"name": "raced", "region": "eu"});
    let calls = (0..20).map(|i| {
        let replica = if i % 2 == 0 { &first } else { &second };
        post(replica, &token, "/v1/clusters", &body, Some("race-1"))
    });
    let answers = futures_util::future::join_all(calls).await;
    let fresh: Vec<&Answer> = answers.iter().filter(|a| !a.replayed).collect();
    assert_eq!(fresh.len(), 1, "{answers:#?}");
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        assert_eq!(answer.location, fresh[0].location);
        assert_eq!(answer.body, fresh[0].body);
    }
    assert_eq!(count_as(&first.db, id, "clusters").await, 1);
    assert_eq!(count_as(&first.db, id, "idempotency_keys").await, 1);
    assert_eq!(usage(&second, &token).await["clusters"], 1);
}

#[tokio::test]
async fn a_key_older_than_a_day_runs_anew_and_the_housekeeping_deletes_it() {
    let app = TestApp::spawn().await;
    let (id, token) = tenant(&app, "idem-expired").await;
    let body = json!({"name": "old", "region": "eu"});
    let first = post(&app, &token, "/v1/clusters", &body, Some("e")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    age_key(&app, id, 23).await;
    assert!(
        post(&app, &token, "/v1/clusters", &body, Some("e"))
            .await
            .replayed
    );

    age_key(&app, id, 25).await;
    // Not replayed: it runs, and finds the name taken (rolled back: the
    // expired key stays as it was).
    let again = post(&app, &token, "/v1/clusters", &body, Some("e")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    // Another request under the expired key is not "reused": it runs.
    let other = json!({"name": "new", "region": "eu"});
    let renewed = post(&app, &token, "/v1/clusters", &other, Some("e")).await;
    assert_eq!(renewed.status, StatusCode::CREATED, "{renewed:?}");
    assert!(!renewed.replayed);
    assert_replays(
        &renewed,
        &post(&app, &token, "/v1/clusters", &other, Some("e")).await,
    );
    assert_eq!(listed(&app, &token, "/v1/clusters").await, 2);

    // Expiry: an old key goes, a young one stays (another tenant's too).
    let (b, token_b) = tenant(&app, "idem-expired-b").await;
    let young = post(&app, &token_b, "/v1/clusters", &body, Some("young")).await;
    assert_eq!(young.status, StatusCode::CREATED);
    age_key(&app, id, 25).await;
    let admin_key = format!("admin-{}", uuid::Uuid::new_v4());
    let admin = post(
        &app,
        &app.admin_token(),
        "/v1/admin/tenants",
        &json!({"slug": "idem-expired-c", "name": "c"}),
        Some(&admin_key),
    )
    .await;
    assert_eq!(admin.status, StatusCode::CREATED, "{admin:?}");
    let deleted = tenantry_ops::idempotency::expire(&app.db).await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 0);
    assert_eq!(count_as(&app.db, b, "idempotency_keys").await, 1);
    assert_eq!(
        count_as_platform(&app.db, "admin_idempotency_keys").await,
        1
    );
}

#[tokio::test]
async fn an_invalid_key_is_refused_and_a_rehearsal_stores_no_key() {
    let app = TestApp::spawn().await;
    let (id, token) = tenant(&app, "idem-invalid").await;
    let body = json!({"name": "a", "region": "eu"});
    let long = "k".repeat(256);
    let bad: Vec<HeaderValue> = vec![
        HeaderValue::from_static(""),
        HeaderValue::from_static("has space"),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    ];
    for value in bad {
        let refused = answer(
            app.with_token(Method::POST, "/v1/clusters", &token)
                .header("Idempotency-Key", value.clone())
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{value:?}: {refused:?}"
        );
        assert_eq!(refused.body["field"], "Idempotency-Key", "{refused:?}");
    }
    let twice = answer(
        app.with_token(Method::POST, "/v1/clusters", &token)
            .header("Idempotency-Key", "one")
            .header("Idempotency-Key", "two")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY, "{twice:?}");
    // No token: refused as such, whatever the key.
    let anonymous = answer(
        app.client
            .post(app.url("/v1/clusters"))
            .header("Idempotency-Key", "has space")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(listed(&app, &token, "/v1/clusters").await, 0);

    let bad_rehearsal = post(
        &app,
        &token,
        "/v1/clusters?dry_run=true",
        &body,
        Some("has space"),
    )
    .await;
    assert_eq!(
        bad_rehearsal.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{bad_rehearsal:?}"
    );
    // A rehearsal with a key stores nothing; the real create then runs.
    let rehearsed = post(&app, &token, "/v1/clusters?dry_run=true", &body, Some("d")).await;
    assert_eq!(rehearsed.status, StatusCode::OK, "{rehearsed:?}");
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 0);
    let real = post(&app, &token, "/v1/clusters", &body, Some("d")).await;
    assert_eq!(real.status, StatusCode::CREATED, "{real:?}");
    assert!(!real.replayed);
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 1);
}

#[tokio::test]
async fn an_admin_create_with_a_key_twice_creates_one_tenant() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let body = json!({"slug": "idem-admin", "name": "Idem"});
    let first = post(&app, &admin, "/v1/admin/tenants", &body, Some("t-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_replays(
        &first,
        &post(&app, &admin, "/v1/admin/tenants", &body, Some("t-1")).await,
    );
    let reused = post(
        &app,
        &admin,
        "/v1/admin/tenants",
        &json!({"slug": "idem-admin-2", "name": "Idem"}),
        Some("t-1"),
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{reused:?}"
    );
    assert_eq!(reused.body["code"], "idempotency_key_reused");

    let (status, page) = app
        .admin_call(Method::GET, "/v1/admin/tenants?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let slugs: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["slug"].as_str())
        .filter(|s| s.starts_with("idem-admin"))
        .collect();
    assert_eq!(slugs, ["idem-admin"]);
    assert_eq!(
        count_as_platform(&app.db, "admin_idempotency_keys").await,
        1
    );
    let (_, audit) = app
        .admin_call(Method::GET, "/v1/admin/audit?limit=100", None)
        .await;
    let created = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenant.created")
        .count();
    assert_eq!(created, 1, "{audit}");
    // A tenant's context sees none of the admin plane's keys.
    let id: TenantId = first.body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(count_as(&app.db, id, "admin_idempotency_keys").await, 0);
}

#[tokio::test]
async fn the_tenancy_models_creates_replay_too_and_make_one_row_each() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    // Admin plane: an account, a plan, a member of a tenant.
    let creates = [
        (
            "/v1/admin/accounts",
            json!({"slug": "idem-account", "name": "Idem account"}),
        ),
        ("/v1/admin/plans", json!({"name": "idem-plan"})),
    ];
    for (path, body) in &creates {
        let first = post(&app, &admin, path, body, Some(&format!("k{path}"))).await;
        assert_eq!(first.status, StatusCode::CREATED, "{path}: {first:?}");
        let again = post(&app, &admin, path, body, Some(&format!("k{path}"))).await;
        assert_replays(&first, &again);
    }
    let (status, accounts) = app
        .admin_call(Method::GET, "/v1/admin/accounts?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let named = |page: &Value, field: &str, value: &str| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i[field] == value)
            .count()
    };
    assert_eq!(named(&accounts, "slug", "idem-account"), 1);
    let (_, plans) = app
        .admin_call(Method::GET, "/v1/admin/plans?limit=100", None)
        .await;
    assert_eq!(named(&plans, "name", "idem-plan"), 1);

    let (id, token) = tenant(&app, "idem-people").await;
    let path = "/v1/admin/tenants/idem-people/members";
    let body = json!({"subject": "auth0|retry", "role": "viewer"});
    let first = post(&app, &admin, path, &body, Some("m-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_replays(&first, &post(&app, &admin, path, &body, Some("m-1")).await);

    // Tenant plane: a member and a custom domain, each keyed.
    let body = json!({"subject": "auth0|retry-2", "role": "member"});
    let first = post(&app, &token, "/v1/members", &body, Some("m-2")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_replays(
        &first,
        &post(&app, &token, "/v1/members", &body, Some("m-2")).await,
    );
    let body = json!({"hostname": "retry.example.test"});
    let first = post(&app, &token, "/v1/domains", &body, Some("d-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_replays(
        &first,
        &post(&app, &token, "/v1/domains", &body, Some("d-1")).await,
    );
    assert_eq!(count_as(&app.db, id, "members").await, 2);
    assert_eq!(listed(&app, &token, "/v1/domains").await, 1);
    assert_eq!(count_as(&app.db, id, "idempotency_keys").await, 2);
}
