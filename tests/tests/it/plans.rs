//! Plans: named quota templates. A tenant on a plan has the plan's limits
//! except its own overrides; a plan's change reaches every tenant on it at
//! once (and every replica's rate limiter), a dry run says who would be over
//! a limit and changes nothing, and the quota view says where each limit
//! comes from.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt;
use tenantry_tests::TestApp;

async fn create_plan(app: &TestApp, name: &str, limits: Value) -> Value {
    let (status, plan) = app
        .admin_call(
            Method::POST,
            "/v1/admin/plans",
            Some(json!({"name": name, "limits": limits})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    plan
}

async fn put_on(app: &TestApp, tenant: TenantId, plan: Value) -> Value {
    let (status, body) = app
        .admin_call(
            Method::PUT,
            &format!("/v1/admin/tenants/{tenant}/plan"),
            Some(json!({ "plan": plan })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn quotas(app: &TestApp, tenant: TenantId) -> Value {
    let (status, body) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/quotas"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The tenant's limits, overrides and registry stamp as the database holds
/// them (read in the platform scope, not through the API).
async fn stored(app: &TestApp, tenant: TenantId) -> (Value, Vec<String>, i64) {
    app.db
        .platform()
        .run(|conn| {
            async move {
                let (limits, _) =
                    tenantry_db::queries::tenants::limits_and_usage(conn, tenant).await?;
                let origin = tenantry_db::queries::plans::origin(conn, tenant).await?;
                let row = tenantry_db::queries::tenants::get(conn, tenant).await?;
                let limits = tenantry_ops::views::LimitsView::from(limits.unwrap());
                Ok::<_, tenantry_db::DbError>((
                    serde_json::to_value(limits).unwrap(),
                    origin.unwrap().overrides,
                    row.updated_at.timestamp_micros(),
                ))
            }
            .scope_boxed()
        })
        .await
        .unwrap()
}

async fn audit(app: &TestApp, tenant: Option<TenantId>) -> Vec<Value> {
    let path = match tenant {
        Some(t) => format!("/v1/admin/audit?tenant_id={t}&limit=100"),
        None => "/v1/admin/audit?limit=100".to_owned(),
    };
    let (status, page) = app.admin_call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn actions(entries: &[Value], action: &str) -> usize {
    entries.iter().filter(|e| e["action"] == action).count()
}

async fn add_clusters(app: &TestApp, tenant: TenantId, n: usize) {
    let token = app.tenant_token(tenant);
    for i in 0..n {
        let (status, body) = app
            .call(
                &token,
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": format!("c{i}-{}", uuid::Uuid::now_v7().simple()), "region": "eu"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test]
async fn tenants_on_a_plan_follow_it_except_where_they_have_an_override() {
    let app = TestApp::spawn().await;
    create_plan(&app, "free", json!({"max_users": 2, "max_clusters": 1})).await;
    let team = create_plan(
        &app,
        "team",
        json!({"max_users": 10, "max_clusters": 5, "requests_per_second": 500, "burst": 600}),
    )
    .await;
    assert_eq!(team["limits"]["max_users"], 10);
    // Limits not given come from [quotas.default].
    assert_eq!(team["limits"]["max_api_keys"], 1000);
    assert_eq!(team["tenants"], 0);

    // One created on a plan by name, one moved onto it by id.
    let (a, a_token) = app.tenant_with("acme", json!({})).await;
    let (status, b) = app
        .admin_call(
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "bravo", "name": "Bravo", "plan": "free"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let b: TenantId = b["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(quotas(&app, b).await["limits"]["max_users"], 2);
    assert_eq!(quotas(&app, b).await["plan"], "free");

    let moved = put_on(&app, a, team["id"].clone()).await;
    assert_eq!(moved["dry_run"], false);
    assert_eq!(moved["plan_id"], team["id"]);
    put_on(&app, b, json!("team")).await;
    for t in [a, b] {
        let q = quotas(&app, t).await;
        assert_eq!(q["plan"], "team");
        assert_eq!(q["limits"]["max_users"], 10);
        assert_eq!(q["limits"]["max_clusters"], 5);
        assert_eq!(q["limits"]["requests_per_second"], 500);
        assert_eq!(
            q["sources"]["max_users"],
            json!({"source": "plan", "plan": "team"})
        );
    }
    let (_, got) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(got["tenants"], 2);

    // An admin's limit for acme is acme's own from now on.
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{a}/quotas"),
            Some(json!({"limits": {"max_users": 50}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sources"]["max_users"], json!({"source": "override"}));

    let (status, change) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/team",
            Some(json!({"limits": {"max_users": 20, "max_clusters": 8}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(change["dry_run"], false);
    assert_eq!(change["tenants_changed"], 2);
    assert_eq!(change["over_limit"], json!([]));
    assert_eq!(change["plan"]["limits"]["max_users"], 20);
    let (a_limits, a_overrides, _) = stored(&app, a).await;
    let (b_limits, b_overrides, _) = stored(&app, b).await;
    assert_eq!(
        (
            a_limits["max_users"].clone(),
            a_limits["max_clusters"].clone()
        ),
        (json!(50), json!(8))
    );
    assert_eq!(
        (
            b_limits["max_users"].clone(),
            b_limits["max_clusters"].clone()
        ),
        (json!(20), json!(8))
    );
    assert_eq!(a_overrides, vec!["max_users"]);
    assert!(b_overrides.is_empty());

    // The tenant's own view says where each limit comes from.
    let (status, own) = app.call(&a_token, Method::GET, "/v1/quotas", None).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["plan"], "team");
    assert_eq!(own["limits"]["max_users"], 50);
    assert_eq!(own["sources"]["max_users"]["source"], "override");
    assert_eq!(
        own["sources"]["max_clusters"],
        json!({"source": "plan", "plan": "team"})
    );
    assert!(own["usage"].is_object() && own["over_limit"].is_array());

    // Dropping the override: acme follows the plan again.
    let (status, body) = app
        .admin_call(
            Method::DELETE,
            &format!("/v1/admin/tenants/{a}/quotas/max_users"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"]["max_users"], 20);
    assert_eq!(body["sources"]["max_users"]["source"], "plan");

    // Off the plan: the service defaults, except its own overrides.
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{a}/quotas"),
            Some(json!({"limits": {"max_instances": 7}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let off = put_on(&app, a, Value::Null).await;
    assert_eq!(off["plan_id"], Value::Null);
    assert_eq!(off["quotas"]["plan"], Value::Null);
    assert_eq!(off["quotas"]["limits"]["max_users"], 1000);
    assert_eq!(off["quotas"]["limits"]["max_instances"], 7);
    assert_eq!(
        off["quotas"]["sources"]["max_users"],
        json!({"source": "default"})
    );
    assert_eq!(
        off["quotas"]["sources"]["max_instances"],
        json!({"source": "override"})
    );

    // Every step is in the audit log.
    let platform = audit(&app, None).await;
    assert_eq!(actions(&platform, "plan.created"), 2);
    let updated: Vec<&Value> = platform
        .iter()
        .filter(|e| e["action"] == "plan.updated")
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["before"]["limits"],
        json!({"max_users": 10, "max_clusters": 5})
    );
    assert_eq!(
        updated[0]["after"]["limits"],
        json!({"max_users": 20, "max_clusters": 8})
    );
    let of_a = audit(&app, Some(a)).await;
    assert_eq!(actions(&of_a, "tenant.plan_changed"), 2);
    // Onto team, the override, team's change, the drop, the override, off team.
    assert_eq!(actions(&of_a, "quota.updated"), 6);
}

#[tokio::test]
async fn a_dry_run_names_exactly_the_tenants_over_the_new_limit_and_changes_nothing() {
    let app = TestApp::spawn().await;
    create_plan(&app, "team", json!({"max_clusters": 5})).await;
    let mut on_team = Vec::new();
    for (slug, clusters) in [("alpha", 3), ("beta", 1), ("gamma", 0)] {
        let (id, _) = app.tenant_with(slug, json!({})).await;
        put_on(&app, id, json!("team")).await;
        add_clusters(&app, id, clusters).await;
        on_team.push(id);
    }
    // Not on the plan: never reported, never changed.
    let (outsider, _) = app.tenant_with("outsider", json!({})).await;
    add_clusters(&app, outsider, 3).await;
    let mut before = Vec::new();
    for t in on_team.iter().chain([&outsider]) {
        before.push(stored(&app, *t).await);
    }
    let audit_before = audit(&app, None).await.len();

    let (status, rehearsal) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/team?dry_run=true",
            Some(json!({"limits": {"max_clusters": 2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rehearsal}");
    assert_eq!(rehearsal["dry_run"], true);
    assert_eq!(rehearsal["plan"]["limits"]["max_clusters"], 2);
    assert_eq!(rehearsal["tenants_changed"], 3);
    let expected = json!([{
        "tenant_id": on_team[0], "slug": "alpha", "resource": "clusters", "usage": 3, "limit": 2
    }]);
    assert_eq!(rehearsal["over_limit"], expected);
    // Nothing changed: the plan, the tenants' limits, their stamps, the log.
    let (_, plan) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(plan["limits"]["max_clusters"], 5);
    for (t, was) in on_team.iter().chain([&outsider]).zip(&before) {
        assert_eq!(stored(&app, *t).await, *was);
    }
    assert_eq!(audit(&app, None).await.len(), audit_before);

    // For real: every tenant on the plan at once, the same report.
    let (status, applied) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/team",
            Some(json!({"limits": {"max_clusters": 2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["dry_run"], false);
    assert_eq!(applied["over_limit"], expected);
    for (t, was) in on_team.iter().zip(&before) {
        let now = stored(&app, *t).await;
        assert_eq!(now.0["max_clusters"], 2);
        assert_ne!(now.2, was.2, "the registry stamp moved");
    }
    assert_eq!(stored(&app, outsider).await, before[3]);
    // Over the limit: nothing deleted, growth refused; under it: allowed.
    let q = quotas(&app, on_team[0]).await;
    assert_eq!(q["usage"]["clusters"], 3);
    assert_eq!(q["over_limit"], json!(["clusters"]));
    let (status, refused) = app
        .call(
            &app.tenant_token(on_team[0]),
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "more", "region": "eu"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "quota_exceeded");
    add_clusters(&app, on_team[1], 1).await;
    for t in &on_team {
        assert_eq!(actions(&audit(&app, Some(*t)).await, "quota.updated"), 2);
    }
}

/// A plan's change moves every tenant's registry stamp, so a replica that
/// cached a tenant's rate reads the new one with its next request.
#[tokio::test]
async fn a_plan_change_reaches_the_rate_limit_on_every_replica() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_with(
        first.test_db.clone(),
        &first.test_db.settings(4),
        first.auth.clone(),
    )
    .await;
    create_plan(
        &first,
        "fast",
        json!({"requests_per_second": 1000, "burst": 1000}),
    )
    .await;
    let (tenant, token) = first.tenant_with("cached", json!({})).await;
    put_on(&first, tenant, json!("fast")).await;
    for _ in 0..3 {
        let (status, _) = second.call(&token, Method::GET, "/v1/tenant", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let stamp = stored(&first, tenant).await.2;
    let (status, body) = first
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/fast",
            Some(json!({"limits": {"requests_per_second": 1, "burst": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(stored(&first, tenant).await.2, stamp);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(second.call(&token, Method::GET, "/v1/tenant", None).await.0);
    }
    // The first request runs under the cached rate and learns the new one.
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        statuses[1..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "the other replica never learned the plan's new rate: {statuses:?}"
    );
}

#[tokio::test]
async fn a_plan_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    create_plan(&app, "team", json!({})).await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    put_on(&app, tenant, json!("team")).await;
    let (status, problem) = app
        .admin_call(Method::DELETE, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "conflict");
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(quotas(&app, tenant).await["plan"], "team");

    put_on(&app, tenant, Value::Null).await;
    let (status, _) = app
        .admin_call(Method::DELETE, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(actions(&audit(&app, None).await, "plan.deleted"), 1);
}

#[tokio::test]
async fn bad_input_about_plans_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    create_plan(&app, "team", json!({"max_users": 10})).await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    put_on(&app, tenant, json!("team")).await;
    let tenant_before = stored(&app, tenant).await;
    let (_, plan_before) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    let audit_before = audit(&app, None).await.len();

    for (method, path, body, status, code) in [
        (
            Method::POST,
            "/v1/admin/plans".to_owned(),
            json!({"name": "pro", "limits": {"max_users": -1}}),
            422,
            "validation",
        ),
        (
            Method::POST,
            "/v1/admin/plans".to_owned(),
            json!({"name": "Pro!"}),
            422,
            "validation",
        ),
        (
            Method::POST,
            "/v1/admin/plans".to_owned(),
            json!({"name": "default"}),
            422,
            "validation",
        ),
        (
            Method::POST,
            "/v1/admin/plans".to_owned(),
            json!({"name": "team"}),
            409,
            "conflict",
        ),
        (
            Method::POST,
            "/v1/admin/plans".to_owned(),
            json!({"name": "pro", "limits": {"max_seats": 1}}),
            422,
            "validation",
        ),
        (
            Method::PATCH,
            "/v1/admin/plans/team".to_owned(),
            json!({"limits": {"max_users": -5}}),
            422,
            "validation",
        ),
        (
            Method::PATCH,
            "/v1/admin/plans/team?dry_run=true".to_owned(),
            json!({"limits": {"burst": -1}}),
            422,
            "validation",
        ),
        (
            Method::PATCH,
            "/v1/admin/plans/nope".to_owned(),
            json!({"limits": {"max_users": 5}}),
            404,
            "not_found",
        ),
        (
            Method::PUT,
            format!("/v1/admin/tenants/{tenant}/plan"),
            json!({"plan": "nope"}),
            422,
            "validation",
        ),
        (
            Method::PUT,
            format!("/v1/admin/tenants/{tenant}/plan"),
            json!({"plan": uuid::Uuid::now_v7()}),
            422,
            "validation",
        ),
        (
            Method::PUT,
            format!("/v1/admin/tenants/{tenant}/plan"),
            json!({}),
            422,
            "validation",
        ),
        (
            Method::PUT,
            format!("/v1/admin/tenants/{}/plan", TenantId::new()),
            json!({"plan": "team"}),
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tenants/{tenant}/quotas/max_seats"),
            Value::Null,
            422,
            "validation",
        ),
        (
            Method::POST,
            "/v1/admin/tenants".to_owned(),
            json!({"slug": "newco", "name": "N", "plan": "nope"}),
            422,
            "validation",
        ),
        (
            Method::DELETE,
            "/v1/admin/plans/nope".to_owned(),
            Value::Null,
            404,
            "not_found",
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (got, problem) = app.admin_call(method.clone(), &path, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {problem}");
        assert_eq!(problem["code"], code, "{method} {path}: {problem}");
    }
    // A rename onto a taken name, with a real change beside it: all refused.
    create_plan(&app, "pro", json!({})).await;
    let (status, problem) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/team",
            Some(json!({"name": "pro", "limits": {"max_users": 3}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    let (_, plan_after) = app
        .admin_call(Method::GET, "/v1/admin/plans/team", None)
        .await;
    assert_eq!(plan_after, plan_before);
    assert_eq!(stored(&app, tenant).await, tenant_before);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/newco", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Only the second plan's creation was recorded.
    let after = audit(&app, None).await;
    assert_eq!(after.len(), audit_before + 1);
    let (_, plans) = app.admin_call(Method::GET, "/v1/admin/plans", None).await;
    let names: Vec<&str> = plans["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["team", "pro"]);
}

/// A database migrated by an earlier release (on Citus: already placed)
/// takes migration 0010 as it stands, the guard passes, and its tenants can
/// be put on plans.
#[tokio::test]
async fn the_plans_migration_applies_to_a_database_migrated_before_it() {
    use diesel_async::SimpleAsyncConnection;
    let test_db = tenantry_tests::TestDb::new().await;
    let existing = TenantId::new();
    test_db
        .db(1)
        .platform()
        .run(|conn| {
            async move {
                let limits = tenantry_tests::test_limits();
                tenantry_db::queries::tenants::create(conn, existing, "before", "B", &limits)
                    .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    // Back to the schema before 0010, by its own down.sql (a statement at a
    // time: Citus propagates DDL as the text it is sent).
    let mut owner = test_db.owner_conn().await;
    let down = include_str!("../../../sql/0010_plans/down.sql");
    for statement in down.split_inclusive(';').filter(|s| s.contains("DROP")) {
        owner.batch_execute(statement).await.unwrap();
    }
    owner
        .batch_execute("DELETE FROM tenantry_migrations WHERE version = '0010_plans'")
        .await
        .unwrap();
    drop(owner);
    let (ok, _stdout, stderr) = tenantry_tests::run_tenantry(&test_db, &["migrate"]);
    assert!(ok, "{stderr}");
    assert_eq!(test_db.db(1).check_isolation().await.unwrap(), vec![]);
    let app = TestApp::spawn_on(test_db).await;
    create_plan(&app, "team", json!({"max_users": 3})).await;
    let moved = put_on(&app, existing, json!("team")).await;
    assert_eq!(moved["quotas"]["limits"]["max_users"], 3);
}

/// A plan's change and an admin's override of another limit of a tenant on
/// it, at the same time: neither overwrites the other (both take the
/// tenant's registry row first), round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_racing_an_override_loses_neither() {
    let app = TestApp::spawn().await;
    create_plan(&app, "team", json!({"max_clusters": 1})).await;
    let (tenant, _) = app.tenant_with("racer", json!({})).await;
    put_on(&app, tenant, json!("team")).await;
    for round in 0..10_i64 {
        let plan = app.admin_call(
            Method::PATCH,
            "/v1/admin/plans/team",
            Some(json!({"limits": {"max_clusters": 100 + round}})),
        );
        let own_path = format!("/v1/admin/tenants/{tenant}/quotas");
        let own = app.admin_call(
            Method::PATCH,
            &own_path,
            Some(json!({"limits": {"max_users": 200 + round}})),
        );
        let ((s1, b1), (s2, b2)) = tokio::join!(plan, own);
        assert_eq!(s1, StatusCode::OK, "{b1}");
        assert_eq!(s2, StatusCode::OK, "{b2}");
        let (limits, overrides, _) = stored(&app, tenant).await;
        assert_eq!(
            limits["max_clusters"],
            100 + round,
            "round {round}: {limits}"
        );
        assert_eq!(limits["max_users"], 200 + round, "round {round}: {limits}");
        assert_eq!(overrides, vec!["max_users"]);
    }
}
