//! Members and roles (issue #15, item 2), over real HTTP: a person's token
//! (no tenant-plane scope) acts in a tenant only as one of its members, with
//! what the member's role allows; the tenant is the token's or the one the
//! request addresses, and the gate checks membership in SQL. The last owner
//! stays, also under concurrency. API keys are no larger than their creator.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, sql_query};
use diesel_async::{
    AnsiTransactionManager, RunQueryDsl, SimpleAsyncConnection, TransactionManager,
};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tenantry_core::{Scope, TenantId};
use tenantry_tests::{TEST_AUDIENCE, TEST_ISSUER, TestApp, citus, tenant_context_sql};

/// A person's token: their subject, optionally a tenant, no scope.
fn person(app: &TestApp, sub: &str, tenant: Option<TenantId>) -> String {
    app.token(sub, tenant, &[])
}

/// A person's token with a `role` claim, signed with the app's key.
async fn person_claiming(app: &TestApp, sub: &str, tenant: Option<TenantId>, role: &str) -> String {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = jwks["keys"][0]["kid"].as_str().map(str::to_owned);
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "iss": TEST_ISSUER, "aud": TEST_AUDIENCE, "sub": sub,
        "iat": now, "nbf": now, "exp": now + 300, "role": role,
    });
    if let Some(tenant) = tenant {
        claims["tenant_id"] = json!(tenant.to_string());
    }
    let pem = app.auth.signing_key.as_ref().unwrap().expose_secret();
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A tenant provisioned through the admin plane with `owner` as its first
/// owner.
async fn tenant_owned_by(app: &TestApp, slug: &str, owner: &str) -> TenantId {
    let (status, tenant) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug, "owner": owner})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    tenant["id"].as_str().unwrap().parse().unwrap()
}

/// Adds `subject` with `role` through the admin plane; its member id.
async fn seed(app: &TestApp, tenant: impl std::fmt::Display, subject: &str, role: &str) -> String {
    let (status, member) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/members"),
            Some(json!({"subject": subject, "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    member["id"].as_str().unwrap().to_owned()
}

async fn member_id(app: &TestApp, tenant: TenantId, subject: &str) -> String {
    let (status, list) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/members?limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"] == subject)
        .and_then(|m| m["id"].as_str())
        .unwrap_or_else(|| panic!("{subject} is not a member: {list}"))
        .to_owned()
}

async fn owners(app: &TestApp, tenant: TenantId) -> usize {
    let (_, list) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/members?limit=100"),
            None,
        )
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .count()
}

/// Every tenant-plane write a caller might try, with a body that would
/// succeed for someone allowed to.
async fn writes(
    app: &TestApp,
    token: &str,
    target_member: &str,
) -> Vec<(String, StatusCode, Value)> {
    let mut seen = Vec::new();
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/clusters".to_owned(),
            Some(json!({"name": "c", "region": "eu"})),
        ),
        (
            Method::POST,
            "/v1/users".to_owned(),
            Some(json!({"email": "u@example.com"})),
        ),
        (
            Method::POST,
            "/v1/api-keys".to_owned(),
            Some(json!({"name": "k"})),
        ),
        (
            Method::POST,
            "/v1/members".to_owned(),
            Some(json!({"subject": "new-person", "role": "viewer"})),
        ),
        (
            Method::PATCH,
            format!("/v1/members/{target_member}"),
            Some(json!({"role": "member"})),
        ),
        (Method::DELETE, format!("/v1/members/{target_member}"), None),
    ] {
        let (status, body) = app.call(token, method.clone(), &path, body).await;
        seen.push((format!("{method} {path}"), status, body));
    }
    seen
}

#[tokio::test]
async fn roles_decide_what_a_member_may_do() {
    let app = TestApp::spawn().await;
    let tenant = tenant_owned_by(&app, "roles", "alice").await;
    seed(&app, tenant, "vera", "viewer").await;
    seed(&app, tenant, "mike", "member").await;
    seed(&app, tenant, "ada", "admin").await;
    let target = seed(&app, tenant, "target", "viewer").await;

    // A viewer reads, and every write is 403.
    let viewer = person(&app, "vera", Some(tenant));
    for path in ["/v1/tenant", "/v1/clusters", "/v1/members", "/v1/users"] {
        let (status, body) = app.call(&viewer, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "viewer GET {path}: {body}");
    }
    for (what, status, body) in writes(&app, &viewer, &target).await {
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer {what}: {body}");
        assert_eq!(body["code"], "forbidden", "{what}: {body}");
    }
    let (status, _) = app.call(&viewer, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer does not see API keys"
    );

    // A member writes resources but manages neither members nor API keys.
    let member = person(&app, "mike", Some(tenant));
    let (status, body) = app
        .call(
            &member,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "m", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (what, status, body) in writes(&app, &member, &target).await {
        if what.contains("members") || what.contains("api-keys") {
            assert_eq!(status, StatusCode::FORBIDDEN, "member {what}: {body}");
        }
    }
    let (status, _) = app.call(&member, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An admin manages members and API keys, but not owners.
    let admin = person(&app, "ada", Some(tenant));
    let (status, added) = app
        .call(
            &admin,
            Method::POST,
            "/v1/members",
            Some(json!({"subject": "newbie", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["role"], "member");
    let (status, body) = app
        .call(
            &admin,
            Method::PATCH,
            &format!("/v1/members/{target}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        (status, body["role"].clone()),
        (StatusCode::OK, json!("admin")),
        "{body}"
    );
    let (status, key) = app
        .call(
            &admin,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, _) = app.call(&admin, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let alice = member_id(&app, tenant, "alice").await;
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/members".to_owned(),
            Some(json!({"subject": "boss", "role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("/v1/members/{target}"),
            Some(json!({"role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("/v1/members/{alice}"),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("/v1/members/{alice}"), None),
    ] {
        let (status, answer) = app.call(&admin, method.clone(), &path, body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "admin {method} {path}: {answer}"
        );
    }
    let (status, body) = app
        .call(
            &admin,
            Method::DELETE,
            &format!("/v1/members/{target}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The first owner, named at provisioning, manages owners too.
    let owner = person(&app, "alice", Some(tenant));
    let (status, boss) = app
        .call(
            &owner,
            Method::POST,
            "/v1/members",
            Some(json!({"subject": "boss", "role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{boss}");
    // Bad input: 4xx, nothing changed.
    for (body, code) in [
        (json!({"subject": "x", "role": "root"}), "validation"),
        (json!({"subject": "", "role": "viewer"}), "validation"),
        (
            json!({"subject": "a\u{202E}b", "role": "viewer"}),
            "validation",
        ),
        (json!({"subject": "boss", "role": "viewer"}), "conflict"),
    ] {
        let (status, answer) = app
            .call(&owner, Method::POST, "/v1/members", Some(body.clone()))
            .await;
        assert!(status.is_client_error(), "{body}: {status} {answer}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
    }
    let (_, listed) = app
        .call(&owner, Method::GET, "/v1/members?limit=100", None)
        .await;
    let subjects: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 6, "{listed}");
    for s in ["alice", "vera", "mike", "ada", "newbie", "boss"] {
        assert!(subjects.contains(&s), "{s}: {listed}");
    }

    // Audited, with the actor, in the tenant's audit log.
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={tenant}&limit=100"),
            None,
        )
        .await;
    let actions: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("member.added", "test-admin"),
        ("member.added", "ada"),
        ("member.role_changed", "ada"),
        ("member.removed", "ada"),
        ("member.added", "alice"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn one_token_acts_in_each_tenant_by_address_as_that_tenants_member() {
    let app = TestApp::spawn().await;
    let t1 = app.create_tenant("first").await;
    let t2 = app.create_tenant("second").await;
    let t3 = app.create_tenant("third").await;
    seed(&app, t1, "pat", "admin").await;
    seed(&app, t2, "pat", "viewer").await;
    seed(&app, t3, "someone-else", "owner").await;
    let pat = person(&app, "pat", None);
    let cluster = || Some(json!({"name": "c", "region": "eu"}));

    let (status, body) = app
        .call(&pat, Method::POST, "/t/first/v1/clusters", cluster())
        .await;
    assert_eq!(status, StatusCode::CREATED, "admin in first: {body}");
    let (status, body) = app
        .call(
            &pat,
            Method::POST,
            "/t/first/v1/members",
            Some(json!({"subject": "pal", "role": "viewer"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "admin in first manages members: {body}"
    );
    let (status, body) = app
        .call(&pat, Method::GET, "/t/second/v1/clusters", None)
        .await;
    assert_eq!(status, StatusCode::OK, "viewer in second reads: {body}");
    let (status, body) = app
        .call(&pat, Method::POST, "/t/second/v1/clusters", cluster())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewer in second: {body}");
    assert_eq!(body["code"], "forbidden");
    // By host, the same.
    let response = app
        .with_token(Method::POST, "/v1/clusters", &pat)
        .header("host", "first.tenants.test")
        .json(&json!({"name": "by-host", "region": "eu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .with_token(Method::POST, "/v1/clusters", &pat)
        .header("host", "second.tenants.test")
        .json(&json!({"name": "by-host", "region": "eu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Not a member: refused exactly as a tenant that does not exist, whether
    // the tenant is active or not.
    let (nonexistent_status, nonexistent) = app
        .call(&pat, Method::GET, "/t/no-such-tenant/v1/clusters", None)
        .await;
    assert_eq!(nonexistent_status, StatusCode::FORBIDDEN, "{nonexistent}");
    let (status, body) = app
        .call(&pat, Method::GET, "/t/third/v1/clusters", None)
        .await;
    assert_eq!((status, &body), (nonexistent_status, &nonexistent));
    let (status, body) = app
        .call(&pat, Method::POST, "/t/third/v1/clusters", cluster())
        .await;
    assert_eq!((status, &body), (nonexistent_status, &nonexistent));
    app.set_status(t3, "suspended").await;
    let (status, body) = app
        .call(&pat, Method::GET, "/t/third/v1/clusters", None)
        .await;
    assert_eq!(
        (status, &body),
        (nonexistent_status, &nonexistent),
        "suspension shows nothing"
    );
    app.set_status(t3, "active").await;

    // The gate checks membership in SQL: a token that names the tenant
    // itself (no slug to resolve) gets the same refusal.
    let naming_third = person(&app, "pat", Some(t3));
    for (method, path) in [
        (Method::GET, "/v1/clusters"),
        (Method::GET, "/v1/tenant"),
        (Method::POST, "/v1/clusters"),
    ] {
        let body = (method == Method::POST).then(cluster).flatten();
        let (status, answer) = app.call(&naming_third, method, path, body).await;
        assert_eq!(
            (status, &answer),
            (nonexistent_status, &nonexistent),
            "{path}"
        );
    }
    let (status, answer) = app
        .call(
            &person(&app, "pat", Some(TenantId::new())),
            Method::GET,
            "/v1/tenant",
            None,
        )
        .await;
    assert_eq!(
        (status, &answer),
        (nonexistent_status, &nonexistent),
        "an unknown tenant id"
    );

    // A token naming its tenant may still address only that one.
    let naming_first = person(&app, "pat", Some(t1));
    let (status, body) = app
        .call(&naming_first, Method::GET, "/t/second/v1/clusters", None)
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("tenant_mismatch")),
        "{body}"
    );
    let (status, body) = app
        .call(
            &naming_first,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "own", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // No tenant named and none addressed: a clear refusal.
    let (status, body) = app.call(&pat, Method::GET, "/v1/clusters", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("addresses none"),
        "{body}"
    );

    // A role claim lowers what the member may do, never raises it.
    let as_viewer = person_claiming(&app, "pat", None, "viewer").await;
    let (status, _) = app
        .call(&as_viewer, Method::GET, "/t/first/v1/clusters", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(&as_viewer, Method::POST, "/t/first/v1/clusters", cluster())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let as_owner = person_claiming(&app, "pat", None, "owner").await;
    let (status, _) = app
        .call(&as_owner, Method::POST, "/t/second/v1/clusters", cluster())
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a claim does not raise a viewer"
    );

    // A platform token is not a person.
    let (status, _) = app
        .call(
            &app.admin_token(),
            Method::GET,
            "/t/first/v1/clusters",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Removed: the next request is refused.
    let id = member_id(&app, t1, "pat").await;
    let (status, _) = app
        .admin_call(
            Method::DELETE,
            &format!("/v1/admin/tenants/{t1}/members/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(&pat, Method::GET, "/t/first/v1/clusters", None)
        .await;
    assert_eq!((status, &body), (nonexistent_status, &nonexistent));
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let app = TestApp::spawn().await;
    let tenant = tenant_owned_by(&app, "solo", "alice").await;
    let alice_id = member_id(&app, tenant, "alice").await;
    let alice = person(&app, "alice", Some(tenant));
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "admin"}))),
        (Method::DELETE, None),
    ] {
        let (status, answer) = app
            .call(
                &alice,
                method.clone(),
                &format!("/v1/members/{alice_id}"),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{method}: {answer}");
        assert_eq!(answer["code"], "last_owner", "{answer}");
        let (status, answer) = app
            .admin_call(
                method.clone(),
                &format!("/v1/admin/tenants/solo/members/{alice_id}"),
                body,
            )
            .await;
        assert_eq!(
            (status, answer["code"].clone()),
            (StatusCode::CONFLICT, json!("last_owner")),
            "admin plane {method}: {answer}"
        );
    }
    assert_eq!(owners(&app, tenant).await, 1);
    // With a second owner, either may step down — and then the other is last.
    let (status, bob) = app
        .call(
            &alice,
            Method::POST,
            "/v1/members",
            Some(json!({"subject": "bob", "role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    let (status, body) = app
        .call(
            &alice,
            Method::PATCH,
            &format!("/v1/members/{alice_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob_id = bob["id"].as_str().unwrap();
    let bob_token = person(&app, "bob", Some(tenant));
    let (status, body) = app
        .call(
            &bob_token,
            Method::DELETE,
            &format!("/v1/members/{bob_id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("last_owner"))
    );
    assert_eq!(owners(&app, tenant).await, 1);
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Two admins take away the last two owners at the same moment: one wins,
/// the other is refused, and an owner remains. The test holds the owners'
/// rows locked until both requests are in, so both have read the tenant
/// before either changes it.
#[tokio::test]
async fn two_concurrent_demotions_never_leave_a_tenant_without_an_owner() {
    let app = TestApp::spawn().await;
    let tenant = tenant_owned_by(&app, "duo", "o1").await;
    let o1 = member_id(&app, tenant, "o1").await;
    let o2 = seed(&app, tenant, "o2", "owner").await;
    let mut conn = app.test_db.app_conn().await;
    let mut watcher = app.test_db.app_conn().await;
    // Who demotes o1 and o2: a platform admin (None) or the owner itself.
    for (round, (by1, by2)) in [(None, None), (Some("o1"), Some("o2")), (None, Some("o2"))]
        .into_iter()
        .enumerate()
    {
        AnsiTransactionManager::begin_transaction(&mut conn)
            .await
            .unwrap();
        conn.batch_execute(&tenant_context_sql(tenant))
            .await
            .unwrap();
        conn.batch_execute(&format!(
            "SELECT id FROM members WHERE tenant_id = '{tenant}' AND role = 'owner' FOR UPDATE"
        ))
        .await
        .unwrap();
        let release = async {
            // Until both requests wait on the test's lock (on Citus the wait
            // is on a worker, out of sight: a while).
            let deadline = Instant::now() + Duration::from_secs(if citus() { 2 } else { 10 });
            while Instant::now() < deadline {
                if !citus() {
                    let w: Waiting = sql_query(
                        "SELECT count(*) AS n FROM pg_stat_activity
                          WHERE wait_event_type = 'Lock' AND datname = current_database()",
                    )
                    .get_result(&mut watcher)
                    .await
                    .unwrap();
                    if w.n >= 2 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            AnsiTransactionManager::commit_transaction(&mut conn)
                .await
                .unwrap();
        };
        let ((s1, b1), (s2, b2), ()) = tokio::join!(
            demote(&app, tenant, &o1, by1),
            demote(&app, tenant, &o2, by2),
            release
        );
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {b1} {b2}"
        );
        let refused = if s1 == StatusCode::CONFLICT { &b1 } else { &b2 };
        assert_eq!(refused["code"], "last_owner", "{refused}");
        assert_eq!(owners(&app, tenant).await, 1, "round {round}");
        // Both owners again for the next round.
        for id in [&o1, &o2] {
            let (status, body) = app
                .admin_call(
                    Method::PATCH,
                    &format!("/v1/admin/tenants/{tenant}/members/{id}"),
                    Some(json!({"role": "owner"})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
}

async fn demote(
    app: &TestApp,
    tenant: TenantId,
    id: &str,
    by: Option<&str>,
) -> (StatusCode, Value) {
    let body = Some(json!({"role": "admin"}));
    match by {
        None => {
            app.admin_call(
                Method::PATCH,
                &format!("/v1/admin/tenants/{tenant}/members/{id}"),
                body,
            )
            .await
        }
        Some(sub) => {
            let token = person(app, sub, Some(tenant));
            app.call(&token, Method::PATCH, &format!("/v1/members/{id}"), body)
                .await
        }
    }
}

#[tokio::test]
async fn an_api_key_may_do_no_more_than_its_creator() {
    let app = TestApp::spawn().await;
    let tenant = tenant_owned_by(&app, "keys", "alice").await;
    // A machine credential that administers and reads, but does not write.
    let narrow = app.token(
        "ops-bot",
        Some(tenant),
        &[Scope::TenantRead, Scope::TenantAdmin],
    );
    for body in [
        json!({"name": "default-scopes"}),
        json!({"name": "asks-write", "scopes": ["tenant:read", "tenant:write"]}),
    ] {
        let (status, answer) = app
            .call(&narrow, Method::POST, "/v1/api-keys", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["field"], "scopes", "{answer}");
        let (status, answer) = app
            .call(
                &narrow,
                Method::POST,
                "/v1/api-keys?dry_run=true",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rehearsed {body}: {answer}"
        );
    }
    let (_, listed) = app.call(&narrow, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(listed["items"], json!([]), "nothing created");
    for scopes in [
        json!(["platform:admin"]),
        json!([]),
        json!(["tenant:everything"]),
    ] {
        let (status, answer) = app
            .call(
                &narrow,
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "x", "scopes": scopes})),
            )
            .await;
        assert_eq!(
            (status, answer["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("scopes")),
            "{answer}"
        );
    }

    // Within its own scopes it may; the key's tokens carry exactly those.
    let (status, key) = app
        .call(
            &narrow,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["tenant:read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["scopes"], json!(["tenant:read"]));
    let app = &app;
    let exchange = |secret: String| async move {
        let response = app
            .client
            .post(app.url("/v1/auth/token"))
            .json(&json!({"api_key": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    };
    let reader = exchange(key["secret"].as_str().unwrap().to_owned()).await;
    let (status, _) = app.call(&reader, Method::GET, "/v1/clusters", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            &reader,
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "c", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A member admin holds every tenant scope and may give a key all of them.
    seed(app, tenant, "ada", "admin").await;
    let ada = person(app, "ada", Some(tenant));
    let (status, key) = app
        .call(
            &ada,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "all", "scopes": ["tenant:read", "tenant:write", "tenant:admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let all = exchange(key["secret"].as_str().unwrap().to_owned()).await;
    let (status, listed) = app.call(&all, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    // A person lowered to member by a role claim manages no keys.
    let lowered = person_claiming(app, "ada", Some(tenant), "member").await;
    let (status, _) = app
        .call(
            &lowered,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admin_plane_seeds_members_and_exports_them() {
    let app = TestApp::spawn().await;
    let tenant = tenant_owned_by(&app, "seeded", "founder").await;
    let (status, list) = app
        .admin_call(Method::GET, "/v1/admin/tenants/seeded/members", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["subject"], "founder");
    assert_eq!(list["items"][0]["role"], "owner");
    let id = seed(&app, "seeded", "helper", "viewer").await;
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{tenant}/members/{id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(
        (status, body["role"].clone()),
        (StatusCode::OK, json!("owner")),
        "{body}"
    );
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants/seeded/members",
            Some(json!({"subject": "helper", "role": "viewer"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict")),
        "{body}"
    );
    let (status, _) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants/nope/members",
            Some(json!({"subject": "x", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "bad-owner", "name": "b", "owner": ""})),
        )
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("owner")),
        "{body}"
    );
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/bad-owner", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing created");
    // A tenant token cannot reach the admin plane's members.
    let (status, _) = app
        .call(
            &person(&app, "founder", Some(tenant)),
            Method::GET,
            "/v1/admin/tenants/seeded/members",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let export = app
        .with_token(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/export"),
            &app.admin_token(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let members: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["table"] == "members")
        .collect();
    assert_eq!(members.len(), 2, "{export}");
    assert!(
        members
            .iter()
            .any(|m| m["row"]["subject"] == "founder" && m["row"]["role"] == "owner")
    );
}
