//! Accounts above tenants (#15): the default account, the admin routes, the
//! account's limits over the sum of its tenants under concurrency, lifecycle
//! actions on all of an account's tenants at once (all or nothing), account
//! tokens confined to their account's tenants (the gate, in SQL), and the
//! account's usage given back on purge.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt;
use tenantry_tests::{
    TEST_AUDIENCE, TEST_ISSUER, TestApp, platform_context_sql, run_tenantry, tenant_context_sql,
    test_auth_settings,
};

const DEFAULT_ACCOUNT: &str = "00000000-0000-0000-0000-00000000acc0";
const SHARED_SECRET: &str = "an-account-test-secret-of-32-bytes!!";

async fn account(app: &TestApp, slug: &str, limits: Value) -> String {
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/accounts",
            Some(json!({"slug": slug, "name": format!("{slug} Inc."), "limits": limits})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A tenant of `account` with generous quotas of its own, and its token.
async fn tenant_in(app: &TestApp, slug: &str, account: &str) -> (TenantId, String) {
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug, "account": account,
                        "quotas": {"max_instances": 100, "max_cpu_cores": 1000, "max_memory_gb": 1000}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account_id"], account);
    let id: TenantId = body["id"].as_str().unwrap().parse().unwrap();
    (id, app.tenant_token(id))
}

async fn get_account(app: &TestApp, key: &str) -> Value {
    let (status, body) = app
        .admin_call(Method::GET, &format!("/v1/admin/accounts/{key}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Audit entries with this action (in the platform-admin context).
async fn audited(app: &TestApp, action: &str) -> i64 {
    audit_count(app, action, None).await
}

async fn audit_count(app: &TestApp, action: &str, reason: Option<&str>) -> i64 {
    let mut conn = app.test_db.app_conn().await;
    conn.begin_test_transaction().await.unwrap();
    conn.batch_execute(&platform_context_sql()).await.unwrap();
    sql_query(
        "SELECT count(*) AS n FROM audit_events WHERE action LIKE $1 AND ($2::text IS NULL OR reason = $2)",
    )
    .bind::<Text, _>(action)
    .bind::<diesel::sql_types::Nullable<Text>, _>(reason)
    .get_result::<N>(&mut conn)
    .await
    .unwrap()
    .n
}

async fn status_of(app: &TestApp, tenant: TenantId) -> String {
    let (_, body) = app
        .admin_call(Method::GET, &format!("/v1/admin/tenants/{tenant}"), None)
        .await;
    body["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_default_account_holds_every_tenant_that_names_none() {
    let app = TestApp::spawn().await;
    let default = get_account(&app, "default").await;
    assert_eq!(default["id"], DEFAULT_ACCOUNT);
    assert_eq!(default["slug"], "default");
    // Unmetered: no limits, no usage row.
    assert!(
        default["limits"].is_null() && default["usage"].is_null(),
        "{default}"
    );
    assert_eq!(get_account(&app, DEFAULT_ACCOUNT).await["slug"], "default");

    // Through the API without an account, and as an older binary inserts
    // (the column left out): both land in the default account.
    let (_, api) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "plain", "name": "Plain"})),
        )
        .await;
    assert_eq!(api["account_id"], DEFAULT_ACCOUNT, "{api}");
    let legacy = app.create_tenant("legacy").await;
    let (_, view) = app
        .admin_call(Method::GET, &format!("/v1/admin/tenants/{legacy}"), None)
        .await;
    assert_eq!(view["account_id"], DEFAULT_ACCOUNT);
    let (_, listed) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/accounts/{DEFAULT_ACCOUNT}/tenants"),
            None,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");

    // The default account takes no limits; nothing changes.
    let (status, problem) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/accounts/default",
            Some(json!({"limits": {"max_tenants": 1}})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation")),
        "{problem}"
    );
    assert!(get_account(&app, "default").await["limits"].is_null());
}

#[tokio::test]
async fn accounts_are_created_listed_changed_and_filter_the_tenant_list() {
    let app = TestApp::spawn().await;
    let acme = account(&app, "acme", json!({"max_tenants": 3})).await;
    let globex = account(&app, "globex", json!({})).await;

    // Refusals change nothing.
    for (body, status, code) in [
        (
            json!({"slug": "acme", "name": "Again"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"slug": "Not A Slug", "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"slug": "neg", "name": "x", "limits": {"max_instances": -1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"slug": "odd", "name": "x", "limits": {"max_planets": 1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
    ] {
        let (s, problem) = app
            .admin_call(Method::POST, "/v1/admin/accounts", Some(body.clone()))
            .await;
        assert_eq!(
            (s, problem["code"].as_str()),
            (status, Some(code)),
            "{body}: {problem}"
        );
    }

    let view = get_account(&app, "acme").await;
    assert_eq!(view["id"], acme.as_str());
    assert_eq!(view["limits"]["max_tenants"], 3);
    assert!(view["limits"]["max_instances"].is_null());
    assert_eq!(view["usage"]["tenants"], 0);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/accounts/nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cursor paging over default, acme, globex.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (_, page) = app
            .admin_call(
                Method::GET,
                &format!("/v1/admin/accounts?limit=1{cursor}"),
                None,
            )
            .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|a| a["slug"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["acme", "default", "globex"]);

    // PATCH: rename, set one limit, lift another, keep the rest.
    let (status, patched) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{acme}"),
            Some(json!({"name": "Acme Corp", "limits": {"max_instances": 5, "max_tenants": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme Corp");
    assert_eq!(patched["limits"]["max_instances"], 5);
    assert!(patched["limits"]["max_tenants"].is_null());
    let (status, _) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{acme}"),
            Some(json!({"limits": {"max_users": -2}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(get_account(&app, "acme").await["limits"]["max_users"].is_null());
    assert_eq!(audited(&app, "account.created").await, 2);
    assert_eq!(audited(&app, "account.updated").await, 1);

    // Tenants go into the named account; an unknown account is refused.
    let (a1, _) = tenant_in(&app, "acme-one", &acme).await;
    let (a2, _) = tenant_in(&app, "acme-two", &acme).await;
    let (g1, _) = tenant_in(&app, "globex-one", &globex).await;
    let (status, problem) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "orphan", "name": "x", "account": uuid::Uuid::now_v7()})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation")),
        "{problem}"
    );
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/orphan", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let ids = |page: &Value| {
        let mut ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut want = vec![a1.to_string(), a2.to_string()];
    want.sort();
    let (_, filtered) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants?account={acme}"),
            None,
        )
        .await;
    assert_eq!(ids(&filtered), want);
    let (_, of_account) = app
        .admin_call(Method::GET, "/v1/admin/accounts/acme/tenants", None)
        .await;
    assert_eq!(ids(&of_account), want);
    let (_, other) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants?account={globex}"),
            None,
        )
        .await;
    assert_eq!(ids(&other), [g1.to_string()]);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants?account=not-a-uuid", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(get_account(&app, "acme").await["usage"]["tenants"], 2);
}

/// Two tenants of an account limited to 5 instances, 20 creates at once
/// across both: exactly 5 land, the rest get the quota problem, and the
/// account's usage row says 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_limit_holds_across_its_tenants_under_concurrency() {
    let app = TestApp::spawn().await;
    let acme = account(&app, "acme", json!({"max_instances": 5})).await;
    let mut fleet = Vec::new();
    for slug in ["acme-one", "acme-two"] {
        let (id, token) = tenant_in(&app, slug, &acme).await;
        let (status, cluster) = app
            .call(
                &token,
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": "main", "region": "eu"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cluster}");
        fleet.push((id, token, cluster["id"].clone()));
    }
    let calls = (0..20).map(|i| {
        let (_, token, cluster) = &fleet[i % 2];
        app.call(
            token,
            Method::POST,
            "/v1/instances",
            Some(json!({"name": format!("vm{i}"), "cluster_id": cluster, "cpu_cores": 1, "memory_gb": 1})),
        )
    });
    let results = futures_util::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::FORBIDDEN && b["code"] == "quota_exceeded")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        (created, refused.len()),
        (5, 15),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(
        (
            refused[0]["resource"].as_str(),
            refused[0]["limit"].as_i64(),
            refused[0]["used"].as_i64()
        ),
        (Some("instances"), Some(5), Some(5))
    );
    let usage = get_account(&app, "acme").await["usage"].clone();
    assert_eq!(
        (
            usage["instances"].as_i64(),
            usage["cpu_cores"].as_i64(),
            usage["clusters"].as_i64()
        ),
        (Some(5), Some(5), Some(2)),
        "{usage}"
    );
    // Each tenant's own usage adds up to the account's.
    let mut sum = 0;
    for (_, token, _) in &fleet {
        sum += app.call(token, Method::GET, "/v1/quotas", None).await.1["usage"]["instances"]
            .as_i64()
            .unwrap();
    }
    assert_eq!(sum, 5);

    // Giving back is symmetrical: a delete frees room for the other tenant.
    let (_, token, _) = &fleet[0];
    let (_, page) = app.call(token, Method::GET, "/v1/instances", None).await;
    let one = page["items"][0]["id"]
        .as_str()
        .expect("tenant one has an instance")
        .to_owned();
    let (status, _) = app
        .call(token, Method::DELETE, &format!("/v1/instances/{one}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get_account(&app, "acme").await["usage"]["instances"], 4);
    let (_, other, cluster) = &fleet[1];
    let (status, body) = app
        .call(
            other,
            Method::POST,
            "/v1/instances",
            Some(json!({"name": "again", "cluster_id": cluster, "cpu_cores": 1, "memory_gb": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app
        .call(
            other,
            Method::POST,
            "/v1/instances",
            Some(json!({"name": "over", "cluster_id": cluster, "cpu_cores": 1, "memory_gb": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(get_account(&app, "acme").await["usage"]["instances"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_tenant_limit_holds_under_concurrent_creates() {
    let app = TestApp::spawn().await;
    let acme = account(&app, "acme", json!({"max_tenants": 3})).await;
    let calls = (0..12).map(|i| {
        app.admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": format!("acme-{i}"), "name": "x", "account": acme})),
        )
    });
    let results = futures_util::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::CONFLICT
                && b["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("tenant limit"))
        })
        .count();
    assert_eq!((created, refused), (3, 9), "{results:?}");
    assert_eq!(get_account(&app, "acme").await["usage"]["tenants"], 3);
    let (_, listed) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants?account={acme}"),
            None,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_lifecycle_action_on_an_account_moves_all_its_tenants_or_none() {
    let app = TestApp::spawn().await;
    let acme = account(&app, "acme", json!({})).await;
    let other = account(&app, "other", json!({})).await;
    let mut tenants = Vec::new();
    for slug in ["acme-a", "acme-b", "acme-c"] {
        tenants.push(tenant_in(&app, slug, &acme).await.0);
    }
    let (bystander, _) = tenant_in(&app, "bystander", &other).await;

    let (status, done) = app
        .admin_call(
            Method::POST,
            "/v1/admin/accounts/acme/suspend",
            Some(json!({"reason": "unpaid invoice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["changed"].as_array().unwrap().len(), 3);
    for t in &tenants {
        assert_eq!(status_of(&app, *t).await, "suspended");
    }
    assert_eq!(status_of(&app, bystander).await, "active");
    assert_eq!(audited(&app, "tenant.suspend").await, 3);
    assert_eq!(audited(&app, "account.suspend").await, 1);
    assert_eq!(
        audit_count(&app, "tenant.suspend", Some("unpaid invoice")).await
            + audit_count(&app, "account.suspend", Some("unpaid invoice")).await,
        4
    );

    // One tenant archived on its own: activating the account cannot move
    // it, so nothing moves, and the refusal names it.
    let (status, _) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{}/archive", tenants[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/accounts/{acme}/activate"),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 of") && detail.contains("acme-a"),
        "{detail}"
    );
    assert_eq!(status_of(&app, tenants[1]).await, "suspended");
    assert_eq!(status_of(&app, tenants[2]).await, "suspended");
    assert_eq!(audited(&app, "tenant.activate").await, 0);
    assert_eq!(audited(&app, "account.activate").await, 0);

    // Archive: the one already archived is left alone.
    let (status, done) = app
        .admin_call(Method::POST, "/v1/admin/accounts/acme/archive", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["changed"].as_array().unwrap().len(), 2);
    assert_eq!(done["unchanged"], json!([tenants[0].to_string()]));

    // Delete then restore the whole account.
    let (status, done) = app
        .admin_call(Method::POST, "/v1/admin/accounts/acme/delete", None)
        .await;
    assert_eq!(
        (status, done["changed"].as_array().unwrap().len()),
        (StatusCode::OK, 3),
        "{done}"
    );
    assert!(done["changed"][0]["deleted_at"].is_string());
    let (status, done) = app
        .admin_call(Method::POST, "/v1/admin/accounts/acme/restore", None)
        .await;
    assert_eq!(
        (status, done["changed"].as_array().unwrap().len()),
        (StatusCode::OK, 3),
        "{done}"
    );
    for t in &tenants {
        assert_eq!(status_of(&app, *t).await, "archived");
    }
    assert_eq!(status_of(&app, bystander).await, "active");
    let (status, _) = app
        .admin_call(Method::POST, "/v1/admin/accounts/nope/suspend", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .admin_call(
            Method::POST,
            "/v1/admin/accounts/acme/suspend",
            Some(json!({"reason": "x".repeat(1001)})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

fn account_token(tenant: TenantId, account: &str) -> String {
    let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
    let claims = json!({
        "iss": TEST_ISSUER, "aud": TEST_AUDIENCE, "sub": "account-admin",
        "iat": now, "nbf": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        "tenant_id": tenant.to_string(), "account_id": account,
        "scope": "tenant:read tenant:write",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SHARED_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn an_account_token_never_reaches_another_accounts_tenant() {
    let mut auth = test_auth_settings();
    auth.hs256_secret = Some(SecretString::from(SHARED_SECRET));
    let app = TestApp::builder().auth(auth).spawn().await;
    let a = account(&app, "alpha", json!({})).await;
    let b = account(&app, "beta", json!({})).await;
    let (mine, _) = tenant_in(&app, "alpha-one", &a).await;
    let (theirs, theirs_token) = tenant_in(&app, "beta-one", &b).await;

    // Account A's token for its own tenant works.
    let token = account_token(mine, &a);
    let (status, own) = app.call(&token, Method::GET, "/v1/tenant", None).await;
    assert_eq!(
        (status, own["id"].as_str()),
        (StatusCode::OK, Some(mine.to_string().as_str())),
        "{own}"
    );
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Naming account B's tenant: refused exactly as a tenant that does not
    // exist, and nothing is written.
    let crossing = account_token(theirs, &a);
    let missing = account_token(TenantId::new(), &a);
    for (method, path, body) in [
        (Method::GET, "/v1/tenant", None),
        (Method::GET, "/v1/users", None),
        (
            Method::POST,
            "/v1/users",
            Some(json!({"email": "intruder@example.com"})),
        ),
    ] {
        let refused = app
            .call(&crossing, method.clone(), path, body.clone())
            .await;
        let absent = app.call(&missing, method.clone(), path, body.clone()).await;
        assert_eq!(
            refused.0,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            refused.1
        );
        assert_eq!(
            (refused.0, &refused.1["code"], &refused.1["detail"]),
            (absent.0, &absent.1["code"], &absent.1["detail"]),
            "{method} {path}"
        );
    }
    let (_, users) = app
        .call(&theirs_token, Method::GET, "/v1/users", None)
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 0, "{users}");
    // The same tenant with its own account's token is served.
    let (status, _) = app
        .call(&account_token(theirs, &b), Method::GET, "/v1/users", None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    account_id: uuid::Uuid,
}

/// RLS: a tenant's context sees and updates its own account's quota rows
/// only, and no account at all.
#[tokio::test]
async fn a_tenant_context_reaches_only_its_own_accounts_rows() {
    let app = TestApp::spawn().await;
    let a = account(&app, "alpha", json!({"max_instances": 9})).await;
    let b = account(&app, "beta", json!({"max_instances": 9})).await;
    let (mine, _) = tenant_in(&app, "alpha-one", &a).await;
    let mut conn = app.test_db.app_conn().await;
    conn.begin_test_transaction().await.unwrap();
    conn.batch_execute(&tenant_context_sql(mine)).await.unwrap();
    for table in ["account_usage", "account_quotas"] {
        let rows: Vec<Row> = sql_query(format!("SELECT account_id FROM {table}"))
            .load(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.account_id.to_string())
                .collect::<Vec<_>>(),
            std::slice::from_ref(&a),
            "{table}"
        );
    }
    let accounts: Vec<Row> = sql_query("SELECT id AS account_id FROM accounts")
        .load(&mut conn)
        .await
        .unwrap();
    assert!(accounts.is_empty());
    let theirs = sql_query(format!(
        "UPDATE account_usage SET instances = 0 WHERE account_id = '{b}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(theirs, 0);
    let limits = sql_query(format!(
        "UPDATE account_quotas SET max_instances = 1000 WHERE account_id = '{a}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(limits, 0, "a tenant cannot raise its account's limits");
    let own = sql_query(format!(
        "UPDATE account_usage SET instances = instances WHERE account_id = '{a}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(own, 1);
}

#[tokio::test]
async fn a_purge_gives_the_tenants_usage_back_to_its_account() {
    let app = TestApp::spawn_with_retention(Duration::from_secs(2)).await;
    let acme = account(&app, "acme", json!({"max_tenants": 2, "max_instances": 3})).await;
    let (doomed, token) = tenant_in(&app, "acme-doomed", &acme).await;
    let (_, survivor) = tenant_in(&app, "acme-stays", &acme).await;
    let (_, cluster) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    for i in 0..3 {
        let (status, body) = app
            .call(&token, Method::POST, "/v1/instances", Some(json!({"name": format!("vm{i}"), "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let usage = get_account(&app, "acme").await["usage"].clone();
    assert_eq!(
        (usage["tenants"].as_i64(), usage["instances"].as_i64()),
        (Some(2), Some(3))
    );
    // Deleting alone gives nothing back: the data is still there.
    let (status, _) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{doomed}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get_account(&app, "acme").await["usage"]["instances"], 3);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, report) = app
        .admin_call(
            Method::POST,
            "/v1/admin/retention/sweep?dry_run=false",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["purged"].as_array().unwrap().len(), 1, "{report}");
    let usage = get_account(&app, "acme").await["usage"].clone();
    assert_eq!(
        (
            usage["tenants"].as_i64(),
            usage["instances"].as_i64(),
            usage["clusters"].as_i64(),
            usage["cpu_cores"].as_i64()
        ),
        (Some(1), Some(0), Some(0), Some(0)),
        "{usage}"
    );
    // The freed room is usable: another tenant and instances fit again.
    tenant_in(&app, "acme-new", &acme).await;
    let (_, cluster) = app
        .call(
            &survivor,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "main", "region": "eu"})),
        )
        .await;
    let (status, body) = app
        .call(
            &survivor,
            Method::POST,
            "/v1/instances",
            Some(
                json!({"name": "vm", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `tenantry quotas reconcile --fix` correcting a tenant's usage row moves
/// its account's sum by the same amounts.
#[tokio::test]
async fn reconciling_a_tenants_usage_corrects_its_accounts_sum() {
    let app = TestApp::spawn().await;
    let acme = account(&app, "acme", json!({"max_clusters": 10})).await;
    let (tenant, token) = tenant_in(&app, "acme-drifty", &acme).await;
    let (status, _) = app
        .call(
            &token,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "c1", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Drift on purpose, in both rows: usage says 4 clusters, the rows say 1.
    app.db
        .platform()
        .run(|conn| {
            let acme = acme.clone();
            async move {
                sql_query("UPDATE tenant_usage SET clusters = 4 WHERE tenant_id = $1")
                    .bind::<diesel::sql_types::Uuid, _>(tenant)
                    .execute(conn)
                    .await?;
                sql_query(format!(
                    "UPDATE account_usage SET clusters = 4 WHERE account_id = '{acme}'"
                ))
                .execute(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(get_account(&app, "acme").await["usage"]["clusters"], 4);
    let (ok, _, stderr) = run_tenantry(&app.test_db, &["quotas", "reconcile", "--fix"]);
    assert!(ok, "{stderr}");
    assert_eq!(get_account(&app, "acme").await["usage"]["clusters"], 1);
}
