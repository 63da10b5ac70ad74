//! The tenancy model (issue #15) end to end, through the real HTTP server:
//! an account with two tenants, one person with a different role in each
//! and one token, a tenant of another account that stays invisible, a plan
//! whose limits both tenants take on, and a custom domain verified against a
//! fake nameserver that routes the person's same token to the first tenant.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_api::DomainSettings;
use tenantry_core::TenantId;
use tenantry_tests::fake_dns::{Zone, fake_dns};
use tenantry_tests::{TestApp, free_port};

/// `POST /v1/admin/accounts`; the account's id.
async fn account(app: &TestApp, slug: &str) -> String {
    let (status, body) = app
        .admin_call(
            Method::POST,
            "/v1/admin/accounts",
            Some(json!({"slug": slug, "name": slug})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `POST /v1/admin/tenants` in `account` (no quotas of its own, so none
/// overridden); the tenant's id.
async fn tenant_in(app: &TestApp, slug: &str, account: &str, owner: Option<&str>) -> TenantId {
    let mut body = json!({"slug": slug, "name": slug, "account": account});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let (status, tenant) = app
        .admin_call(Method::POST, "/v1/admin/tenants", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    assert_eq!(tenant["account_id"], account, "{tenant}");
    tenant["id"].as_str().unwrap().parse().unwrap()
}

/// Adds `subject` with `role` through the admin plane.
async fn add_member(app: &TestApp, tenant: TenantId, subject: &str, role: &str) {
    let (status, member) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/members"),
            Some(json!({"subject": subject, "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(
        (member["subject"].as_str(), member["role"].as_str()),
        (Some(subject), Some(role))
    );
}

/// `method path` with `token` and this `Host`; status and JSON body.
async fn at_host(
    app: &TestApp,
    token: &str,
    host: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.with_token(method, path, token).header("host", host);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn cluster(name: &str) -> Option<Value> {
    Some(json!({"name": name, "region": "eu-west"}))
}

#[tokio::test]
async fn a_new_user_runs_an_account_with_two_tenants_one_person_and_a_custom_domain() {
    let zone = Zone::default();
    let dns = fake_dns(Arc::clone(&zone)).await;
    let app = TestApp::builder()
        .domains(DomainSettings {
            dns_resolver: dns.to_string(),
            // Nothing listens there: the HTTP proof fails at once, and only
            // the TXT record can verify.
            http_port: free_port(),
            http_connect_to: "127.0.0.1".to_owned(),
            check_timeout: Duration::from_secs(2),
            // Long: only the invalidation on verify can make the domain
            // route in time.
            cache_ttl: Duration::from_secs(600),
        })
        .spawn()
        .await;

    // --- An account with two tenants, another account with a third. ------
    let acme = account(&app, "acme").await;
    let globex = account(&app, "globex").await;
    let t1 = tenant_in(&app, "acme-eu", &acme, None).await;
    let t2 = tenant_in(&app, "acme-us", &acme, None).await;
    let t3 = tenant_in(&app, "globex-hq", &globex, Some("gordon")).await;
    let (status, listed) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/accounts/{acme}/tenants"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut slugs: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    slugs.sort_unstable();
    assert_eq!(slugs, ["acme-eu", "acme-us"], "{listed}");
    let (_, acme_view) = app
        .admin_call(Method::GET, "/v1/admin/accounts/acme", None)
        .await;
    assert_eq!(acme_view["usage"]["tenants"], 2, "{acme_view}");

    // --- One person: admin of the first, viewer of the second. ------------
    add_member(&app, t1, "alice", "admin").await;
    add_member(&app, t2, "alice", "viewer").await;
    // Someone who is only a viewer of the second tenant.
    add_member(&app, t2, "victor", "viewer").await;
    // ONE token: no tenant claim, no tenant-plane scope.
    let alice = app.token("alice", None, &[]);
    let victor = app.token("victor", None, &[]);

    // Writes in the first, by path; a retry with the same Idempotency-Key
    // answers the first response again and creates (and charges) nothing.
    let mut first = None;
    for attempt in 0..2 {
        let response = app
            .with_token(Method::POST, "/t/acme-eu/v1/clusters", &alice)
            .header("idempotency-key", "alice-first-cluster")
            .json(&cluster("eu-main"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "attempt {attempt}");
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            replayed.as_deref(),
            (attempt == 1).then_some("true"),
            "attempt {attempt}"
        );
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["name"], "eu-main", "{created}");
        match &first {
            None => first = Some(created["id"].clone()),
            Some(id) => assert_eq!(&created["id"], id, "the same cluster"),
        }
    }
    let (status, members) = app
        .call(&alice, Method::GET, "/t/acme-eu/v1/members", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    assert_eq!(members["items"][0]["subject"], "alice", "{members}");
    assert_eq!(members["items"][0]["role"], "admin", "{members}");

    // Reads the second, and is refused writes there; nothing is created.
    let (status, list) = app
        .call(&alice, Method::GET, "/t/acme-us/v1/clusters", None)
        .await;
    assert_eq!(status, StatusCode::OK, "viewer reads t2: {list}");
    assert!(names(&list).is_empty(), "t2 sees nothing of t1: {list}");
    for (method, path, body) in [
        (Method::POST, "/t/acme-us/v1/clusters", cluster("us-main")),
        (
            Method::POST,
            "/t/acme-us/v1/members",
            Some(json!({"subject": "mallory", "role": "viewer"})),
        ),
        (
            Method::POST,
            "/t/acme-us/v1/domains",
            Some(json!({"hostname": "us.example.test"})),
        ),
    ] {
        let (status, problem) = app.call(&alice, method.clone(), path, body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "viewer {method} {path}: {problem}"
        );
    }
    let (_, list) = app
        .call(&alice, Method::GET, "/t/acme-us/v1/clusters", None)
        .await;
    assert!(
        names(&list).is_empty(),
        "the refused write left nothing: {list}"
    );

    // The third tenant, of another account, is exactly a tenant that does
    // not exist: the same status and body, whatever the route or method.
    for (method, route, body) in [
        (Method::GET, "/v1/clusters", None),
        (Method::POST, "/v1/clusters", cluster("intruder")),
        (Method::GET, "/v1/tenant", None),
        (Method::GET, "/v1/quotas", None),
        (Method::GET, "/v1/members", None),
        (Method::GET, "/v1/domains", None),
    ] {
        let (nowhere_status, nowhere) = app
            .call(
                &alice,
                method.clone(),
                &format!("/t/does-not-exist{route}"),
                body.clone(),
            )
            .await;
        assert_eq!(nowhere_status, StatusCode::FORBIDDEN, "{route}: {nowhere}");
        let (status, seen) = app
            .call(
                &alice,
                method.clone(),
                &format!("/t/globex-hq{route}"),
                body.clone(),
            )
            .await;
        assert_eq!(
            (status, &seen),
            (nowhere_status, &nowhere),
            "{method} /t/globex-hq{route} leaks the tenant"
        );
        // The same by subdomain.
        let (nowhere_status, nowhere) = at_host(
            &app,
            &alice,
            "does-not-exist.tenants.test",
            method.clone(),
            route,
            body.clone(),
        )
        .await;
        let (status, seen) = at_host(
            &app,
            &alice,
            "globex-hq.tenants.test",
            method.clone(),
            route,
            body,
        )
        .await;
        assert_eq!(
            (status, &seen),
            (nowhere_status, &nowhere),
            "{method} {route} at globex-hq.tenants.test leaks the tenant"
        );
    }
    let text = serde_json::to_string(
        &app.call(&alice, Method::GET, "/t/globex-hq/v1/clusters", None)
            .await
            .1,
    )
    .unwrap();
    assert!(
        !text.contains(&t3.to_string()) && !text.contains("globex"),
        "{text}"
    );
    let (status, gordon_sees) = app
        .call(
            &app.token("gordon", None, &[]),
            Method::GET,
            "/t/globex-hq/v1/clusters",
            None,
        )
        .await;
    assert_eq!(
        (status, names(&gordon_sees)),
        (StatusCode::OK, Vec::<String>::new()),
        "t3's own owner gets in, and nothing of t1 is there: {gordon_sees}"
    );

    // --- A plan: both tenants move onto it, and their limits change. ------
    for slug in ["acme-eu", "acme-us"] {
        let (status, q) = app
            .call(&alice, Method::GET, &format!("/t/{slug}/v1/quotas"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert_eq!(q["plan"], Value::Null, "{slug}: {q}");
        assert_eq!(q["limits"]["max_clusters"], 1000, "{slug}: {q}");
        assert_eq!(
            q["sources"]["max_clusters"],
            json!({"source": "default"}),
            "{slug}: {q}"
        );
    }
    let team_limits = json!({
        "max_users": 17, "max_clusters": 2, "max_instances": 9,
        "requests_per_second": 333, "burst": 444,
    });
    let (status, team) = app
        .admin_call(
            Method::POST,
            "/v1/admin/plans",
            Some(json!({"name": "team", "limits": team_limits})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    for (tenant, plan) in [(t1, json!("team")), (t2, team["id"].clone())] {
        let (status, moved) = app
            .admin_call(
                Method::PUT,
                &format!("/v1/admin/tenants/{tenant}/plan"),
                Some(json!({ "plan": plan })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{moved}");
        assert_eq!(moved["plan_id"], team["id"], "{moved}");
    }
    let (_, plan) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(plan["tenants"], 2, "{plan}");
    for slug in ["acme-eu", "acme-us"] {
        let (status, q) = app
            .call(&alice, Method::GET, &format!("/t/{slug}/v1/quotas"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert_eq!(q["plan"], "team", "{slug}: {q}");
        for (limit, value) in team_limits.as_object().unwrap() {
            assert_eq!(&q["limits"][limit], value, "{slug} {limit}: {q}");
            assert_eq!(
                q["sources"][limit],
                json!({"source": "plan", "plan": "team"}),
                "{slug} {limit}: {q}"
            );
        }
    }
    // The new limit holds: t1 has one cluster, may have two, not three.
    let (status, body) = app
        .call(
            &alice,
            Method::POST,
            "/t/acme-eu/v1/clusters",
            cluster("eu-second"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, problem) = app
        .call(
            &alice,
            Method::POST,
            "/t/acme-eu/v1/clusters",
            cluster("eu-third"),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("quota_exceeded")),
        "{problem}"
    );
    assert_eq!(problem["limit"], 2, "{problem}");

    // --- A custom domain for the first tenant, verified by DNS. -----------
    let (status, domain) = app
        .call(
            &alice,
            Method::POST,
            "/t/acme-eu/v1/domains",
            Some(json!({"hostname": "shop.example.test"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "admin of t1 registers: {domain}"
    );
    assert_eq!(domain["status"], "pending", "{domain}");
    let id = domain["id"].as_str().unwrap().to_owned();
    let record = domain["verification"]["dns"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(record, "_tenantry-challenge.shop.example.test");
    let value = domain["verification"]["dns"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = format!("/t/acme-eu/v1/domains/{id}/verify");

    // Pending, the name routes nothing: at that host alice addresses no
    // tenant (her token names none), so she reaches nothing.
    let (status, problem) = at_host(
        &app,
        &alice,
        "shop.example.test",
        Method::GET,
        "/v1/clusters",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("addresses none")),
        "a pending domain routes nothing: {problem}"
    );
    let (status, problem) = app.call(&alice, Method::POST, &verify, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("domain_not_verified")
        ),
        "nothing published yet: {problem}"
    );

    zone.lock().unwrap().insert(record, vec![value]);
    let (status, verified) = app.call(&alice, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["verified_by"], "dns", "{verified}");

    // Alice's same token at the domain, on the plain routes, is in t1.
    let (status, list) = at_host(
        &app,
        &alice,
        "shop.example.test",
        Method::GET,
        "/v1/clusters",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["eu-main", "eu-second"], "{list}");
    let (status, own) = at_host(
        &app,
        &alice,
        "Shop.Example.Test.",
        Method::GET,
        "/v1/tenant",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["id"], t1.to_string(), "{own}");
    // As t1's admin there: she writes (within the plan's limit: refused
    // exactly as by path) and manages members.
    let (status, problem) = at_host(
        &app,
        &alice,
        "shop.example.test",
        Method::POST,
        "/v1/clusters",
        cluster("by-domain"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("quota_exceeded")),
        "{problem}"
    );
    let (status, added) = at_host(
        &app,
        &alice,
        "shop.example.test",
        Method::POST,
        "/v1/members",
        Some(json!({"subject": "carol", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");

    // A viewer of t2 only, at t1's domain: refused as a tenant that does not
    // exist (t1 is not hers to learn of).
    let (nowhere_status, nowhere) = app
        .call(&victor, Method::GET, "/t/does-not-exist/v1/clusters", None)
        .await;
    let (status, seen) = at_host(
        &app,
        &victor,
        "shop.example.test",
        Method::GET,
        "/v1/clusters",
        None,
    )
    .await;
    assert_eq!((status, &seen), (nowhere_status, &nowhere), "{seen}");
    let (status, _) = app
        .call(&victor, Method::GET, "/t/acme-us/v1/clusters", None)
        .await;
    assert_eq!(status, StatusCode::OK, "victor does read t2");
    // A token naming t2 (alice's viewer role there) at t1's domain: the
    // addresses disagree.
    let alice_in_t2 = app.token("alice", Some(t2), &[]);
    let (status, problem) = at_host(
        &app,
        &alice_in_t2,
        "shop.example.test",
        Method::GET,
        "/v1/clusters",
        None,
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_mismatch")),
        "{problem}"
    );
    // Nor does the domain and a path to t2 together reach t2.
    let (status, problem) = at_host(
        &app,
        &alice,
        "shop.example.test",
        Method::GET,
        "/t/acme-us/v1/clusters",
        None,
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_mismatch")),
        "{problem}"
    );

    // --- The audit log of t1 recorded the member, plan and domain steps. --
    let (status, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={t1}&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["tenant_id"], t1.to_string(), "only t1's: {e}");
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (action, actor) in [
        ("member.added", "test-admin"),
        ("member.added", "alice"),
        ("tenant.plan_changed", "test-admin"),
        ("quota.updated", "test-admin"),
        ("domain.added", "alice"),
        ("domain.verified", "alice"),
    ] {
        assert!(
            entries.contains(&(action.to_owned(), actor.to_owned())),
            "{action} by {actor} in {entries:?}"
        );
    }
    // t2's log has its own member and plan steps, and none of t1's domain.
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={t2}&limit=100"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "member.added").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"tenant.plan_changed"), "{actions:?}");
    assert!(
        !actions.iter().any(|a| a.starts_with("domain.")),
        "{actions:?}"
    );
}
