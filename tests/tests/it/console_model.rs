//! The console's quotas, members, accounts and plans pages over plain HTTP
//! against the real server: each action goes through the admin plane's
//! operations (checked afterwards through the admin API), leaves an audit
//! entry whose actor is the signed-in admin, shows a refusal beside the
//! field or action it is about, and is refused without the CSRF token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_tests::TestApp;
use tenantry_tests::console::{ConsoleClient, Page};

const LIMITS: [&str; 9] = [
    "max_users",
    "max_api_keys",
    "max_clusters",
    "max_instances",
    "max_cpu_cores",
    "max_memory_gb",
    "max_storage_gb",
    "requests_per_second",
    "burst",
];

async fn admin_get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.admin_call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn quotas(app: &TestApp, tenant: TenantId) -> Value {
    admin_get(app, &format!("/v1/admin/tenants/{tenant}/quotas")).await
}

/// Every audit entry, newest first: `(action, actor)`.
async fn audit(app: &TestApp) -> Vec<(String, String)> {
    admin_get(app, "/v1/admin/audit?limit=100").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn audited(entries: &[(String, String)], action: &str) -> usize {
    entries
        .iter()
        .filter(|(a, actor)| a == action && actor == "test-admin")
        .count()
}

async fn add_clusters(app: &TestApp, tenant: TenantId, n: usize) {
    let token = app.tenant_token(tenant);
    for i in 0..n {
        let (status, body) = app
            .call(
                &token,
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": format!("c{i}"), "region": "eu"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// The form's fields for `limits` (a JSON object of the nine limits), with
/// `changes` applied.
fn limit_fields(limits: &Value, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    LIMITS
        .iter()
        .map(|name| {
            let value = changes
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(|| limits[*name].to_string(), |(_, v)| (*v).to_owned());
            ((*name).to_owned(), value)
        })
        .collect()
}

fn borrowed(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn one_h1(page: &Page) {
    assert_eq!(page.body.matches("<h1").count(), 1, "{}", page.body);
}

#[tokio::test]
async fn the_quotas_page_shows_every_limit_prefilled_beside_its_usage_plan_and_source() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({"max_clusters": 7})).await;
    add_clusters(&app, tenant, 2).await;
    let mut console = ConsoleClient::signed_in(&app).await;

    let page = console
        .get(&format!("/console/tenants/{tenant}/quotas"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    one_h1(&page);
    for name in LIMITS {
        assert!(
            page.body.contains(&format!(r#"name="{name}""#)),
            "{name}: {}",
            page.body
        );
    }
    assert!(
        page.body
            .contains(r#"id="max_clusters" name="max_clusters" value="7""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"<meter min="0" max="7" value="2""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("2 of 7"), "{}", page.body);
    assert!(page.body.contains("Override"), "{}", page.body);
    assert!(page.body.contains("On no plan"), "{}", page.body);
    assert!(page.body.contains("<caption>"), "{}", page.body);
}

#[tokio::test]
async fn a_quota_preview_lists_the_resource_that_would_be_over_its_limit_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    add_clusters(&app, tenant, 3).await;
    let before = quotas(&app, tenant).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let audit_before = audit(&app).await;
    console
        .get(&format!("/console/tenants/{tenant}/quotas"))
        .await;

    let mut fields = limit_fields(
        &before["limits"],
        &[("max_clusters", "2"), ("max_instances", "0")],
    );
    fields.push(("preview".to_owned(), "1".to_owned()));
    let preview = console
        .post(
            &format!("/console/tenants/{tenant}/quotas"),
            &borrowed(&fields),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    one_h1(&preview);
    assert!(
        preview
            .body
            .contains("<strong>Clusters</strong>: 3 used, new limit 2"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("over the limit"), "{}", preview.body);
    // Instances: 0 used of a new limit of 0 — at it, not over.
    assert!(
        preview
            .body
            .contains("<strong>Instances</strong>: 0 used, new limit 0"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("at the limit"), "{}", preview.body);
    assert!(!preview.body.contains("<strong>Users</strong>"));
    // The Apply form carries the same values.
    assert!(
        preview
            .body
            .contains(r#"type="hidden" name="max_clusters" value="2""#),
        "{}",
        preview.body
    );
    assert!(preview.body.contains(">Apply</button>"), "{}", preview.body);

    // Nothing written, nothing audited.
    let after = quotas(&app, tenant).await;
    assert_eq!(after["limits"], before["limits"]);
    assert_eq!(after["sources"], before["sources"]);
    assert_eq!(audit(&app).await, audit_before);

    // The admin API rehearses the same way.
    let (status, rehearsal) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{tenant}/quotas?dry_run=true"),
            Some(json!({"limits": {"max_clusters": 2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rehearsal}");
    assert_eq!(rehearsal["limits"]["max_clusters"], 2);
    assert_eq!(rehearsal["over_limit"], json!(["clusters"]));
    assert_eq!(quotas(&app, tenant).await["limits"], before["limits"]);
    assert_eq!(audit(&app).await, audit_before);
}

#[tokio::test]
async fn applying_a_quota_change_writes_it_as_an_override_audited_as_the_signed_in_admin() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    add_clusters(&app, tenant, 3).await;
    let before = quotas(&app, tenant).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    console
        .get(&format!("/console/tenants/{tenant}/quotas"))
        .await;

    let fields = limit_fields(&before["limits"], &[("max_clusters", "2")]);
    let applied = console
        .post(
            &format!("/console/tenants/{tenant}/quotas"),
            &borrowed(&fields),
        )
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    assert_eq!(
        applied.location(),
        Some(format!("/console/tenants/{tenant}?notice=quotas_saved").as_str())
    );
    let after = quotas(&app, tenant).await;
    assert_eq!(after["limits"]["max_clusters"], 2);
    assert_eq!(after["limits"]["max_users"], before["limits"]["max_users"]);
    assert_eq!(after["over_limit"], json!(["clusters"]));
    assert_eq!(after["sources"]["max_clusters"]["source"], "override");
    assert_eq!(audited(&audit(&app).await, "quota.updated"), 1);

    let page = console
        .get(&format!(
            "/console/tenants/{tenant}/quotas?notice=quotas_saved"
        ))
        .await;
    assert!(page.body.contains("Quotas saved."), "{}", page.body);
    assert!(
        page.body.contains("Over a limit now: Clusters"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn an_invalid_quota_value_is_refused_beside_its_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    let before = quotas(&app, tenant).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    console
        .get(&format!("/console/tenants/{tenant}/quotas"))
        .await;
    let path = format!("/console/tenants/{tenant}/quotas");

    for preview in [true, false] {
        // Not a number: the console's own reading of the form.
        let mut fields = limit_fields(&before["limits"], &[("max_users", "lots")]);
        if preview {
            fields.push(("preview".to_owned(), "1".to_owned()));
        }
        let page = console.post(&path, &borrowed(&fields)).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        one_h1(&page);
        assert!(
            page.body
                .contains(r#"id="max_users" name="max_users" value="lots""#),
            "what was typed stays: {}",
            page.body
        );
        assert!(page.body.contains(r#"aria-describedby="max_users-error""#));
        assert!(
            page.body
                .contains(r#"<p class="field-error" id="max_users-error">must be a whole number"#),
            "{}",
            page.body
        );

        // Negative: the operation's rule, beside the field it names.
        let mut fields = limit_fields(&before["limits"], &[("max_clusters", "-1")]);
        if preview {
            fields.push(("preview".to_owned(), "1".to_owned()));
        }
        let page = console.post(&path, &borrowed(&fields)).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        assert!(
            page.body.contains(
                r#"<p class="field-error" id="max_clusters-error">max_clusters: must be 0 or more</p>"#
            ),
            "{}",
            page.body
        );
    }
    let after = quotas(&app, tenant).await;
    assert_eq!(after["limits"], before["limits"]);
    assert_eq!(audited(&audit(&app).await, "quota.updated"), 0);
}

async fn members(app: &TestApp, tenant: TenantId) -> Vec<(String, String, String)> {
    admin_get(
        app,
        &format!("/v1/admin/tenants/{tenant}/members?limit=100"),
    )
    .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["subject"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn id_of(members: &[(String, String, String)], subject: &str) -> String {
    members
        .iter()
        .find(|(_, s, _)| s == subject)
        .map(|(id, _, _)| id.clone())
        .unwrap()
}

#[tokio::test]
async fn members_are_added_their_roles_changed_and_removed_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let base = format!("/console/tenants/{tenant}/members");
    let page = console.get(&base).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("No members yet."), "{}", page.body);

    // Add: a platform admin may name an owner.
    for (subject, role) in [
        ("alice@example.com", "owner"),
        ("bob@example.com", "member"),
    ] {
        let added = console
            .post(&base, &[("subject", subject), ("role", role)])
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        assert_eq!(
            added.location(),
            Some(format!("{base}?notice=member_added").as_str())
        );
    }
    let now = members(&app, tenant).await;
    assert_eq!(now.len(), 2);
    assert!(
        now.iter()
            .any(|(_, s, r)| s == "alice@example.com" && r == "owner")
    );
    let page = console.get(&format!("{base}?notice=member_added")).await;
    assert!(page.body.contains("Member added."), "{}", page.body);
    assert!(page.body.contains("bob@example.com"), "{}", page.body);
    one_h1(&page);

    // A duplicate and a bad role: refused beside the add form, nothing added.
    let dup = console
        .post(&base, &[("subject", "bob@example.com"), ("role", "viewer")])
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    assert!(dup.body.contains("already a member"), "{}", dup.body);
    let bad = console
        .post(
            &base,
            &[("subject", "carol@example.com"), ("role", "emperor")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains(r#"id="role-error""#), "{}", bad.body);
    assert!(
        bad.body.contains(r#"value="carol@example.com""#),
        "{}",
        bad.body
    );
    assert_eq!(members(&app, tenant).await.len(), 2);

    // Change a role.
    let bob = id_of(&now, "bob@example.com");
    let changed = console
        .post(&format!("{base}/{bob}/role"), &[("role", "admin")])
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert!(
        members(&app, tenant)
            .await
            .iter()
            .any(|(id, _, r)| *id == bob && r == "admin")
    );

    // The last owner stays: the 409's detail beside the action.
    let alice = id_of(&now, "alice@example.com");
    let refused = console
        .post(&format!("{base}/{alice}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains(
            r#"<div class="problem" role="alert"><p>the tenant's last owner cannot be removed or demoted"#
        ) || refused.body.contains("the tenant&#39;s last owner cannot be removed")
            || refused.body.contains("the tenant&#x27;s last owner cannot be removed"),
        "{}",
        refused.body
    );
    let demoted = console
        .post(&format!("{base}/{alice}/role"), &[("role", "viewer")])
        .await;
    assert_eq!(demoted.status, StatusCode::CONFLICT, "{}", demoted.body);
    assert!(demoted.body.contains("last owner"), "{}", demoted.body);
    assert!(
        members(&app, tenant)
            .await
            .iter()
            .any(|(id, _, r)| *id == alice && r == "owner")
    );

    // Removing needs the confirmation; with it, the member is gone.
    let unconfirmed = console.post(&format!("{base}/{bob}/remove"), &[]).await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unconfirmed.body
    );
    assert!(
        unconfirmed
            .body
            .contains(&format!(r#"id="confirm-{bob}-error""#)),
        "{}",
        unconfirmed.body
    );
    assert_eq!(members(&app, tenant).await.len(), 2);
    let removed = console
        .post(&format!("{base}/{bob}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let left = members(&app, tenant).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, "alice@example.com");

    let entries = audit(&app).await;
    assert_eq!(audited(&entries, "member.added"), 2);
    assert_eq!(audited(&entries, "member.role_changed"), 1);
    assert_eq!(audited(&entries, "member.removed"), 1);
}

#[tokio::test]
async fn an_account_is_created_from_the_console_and_its_page_lists_its_tenants_and_limits() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get("/console/accounts").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    one_h1(&page);

    // Refused: a bad slug and a limit that is not a number, beside them.
    let bad = console
        .post(
            "/console/accounts",
            &[("slug", "Not A Slug"), ("name", "Globex")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains(r#"id="slug-error""#), "{}", bad.body);
    let bad = console
        .post(
            "/console/accounts",
            &[("slug", "globex"), ("name", "Globex"), ("max_tenants", "x")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="max_tenants-error""#),
        "{}",
        bad.body
    );

    let created = console
        .post(
            "/console/accounts",
            &[
                ("slug", "globex"),
                ("name", "Globex Corp"),
                ("max_tenants", "5"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let location = created.location().unwrap().to_owned();
    assert!(location.ends_with("?notice=account_created"), "{location}");
    let account = admin_get(&app, "/v1/admin/accounts/globex").await;
    assert_eq!(account["name"], "Globex Corp");
    assert_eq!(account["limits"]["max_tenants"], 5);
    assert!(location.starts_with(&format!(
        "/console/accounts/{}",
        account["id"].as_str().unwrap()
    )));
    assert_eq!(audited(&audit(&app).await, "account.created"), 1);

    // Two tenants in it, one outside.
    for slug in ["globex-eu", "globex-us"] {
        let (status, body) = app
            .admin_call(
                Method::POST,
                "/v1/admin/tenants",
                Some(json!({"slug": slug, "name": slug, "account": account["id"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    app.tenant_with("outsider", json!({})).await;

    let page = console.get(&location).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    one_h1(&page);
    assert!(page.body.contains("Account created."), "{}", page.body);
    assert!(page.body.contains("globex-eu") && page.body.contains("globex-us"));
    assert!(!page.body.contains("outsider"), "{}", page.body);
    assert!(page.body.contains("2 of 5"), "{}", page.body);
    assert!(
        page.body.contains(r#"<meter min="0" max="5" value="2""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("status-active"), "{}", page.body);

    let list = console.get("/console/accounts").await;
    assert!(list.body.contains("globex"), "{}", list.body);
    assert!(list.body.contains("2 of 5"), "{}", list.body);
}

async fn plan(app: &TestApp, name: &str) -> Value {
    admin_get(app, &format!("/v1/admin/plans/{name}")).await
}

/// A plan `team` with two tenants on it, `busy` with 3 clusters and `idle`
/// with none; its id.
async fn team_plan(app: &TestApp, console: &mut ConsoleClient) -> (String, TenantId) {
    let created = console.post("/console/plans", &[("name", "team")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let team = plan(app, "team").await;
    let id = team["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.location(),
        Some(format!("/console/plans/{id}?notice=plan_created").as_str())
    );
    let mut busy = None;
    for (slug, clusters) in [("busy", 3), ("idle", 0)] {
        let (tenant, _) = app.tenant_with(slug, json!({})).await;
        let (status, body) = app
            .admin_call(
                Method::PUT,
                &format!("/v1/admin/tenants/{tenant}/plan"),
                Some(json!({"plan": "team"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        add_clusters(app, tenant, clusters).await;
        if clusters > 0 {
            busy = Some(tenant);
        }
    }
    (id, busy.unwrap())
}

#[tokio::test]
async fn a_plan_change_preview_lists_the_tenant_that_would_be_over_a_limit_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    console.get("/console/plans").await;
    let (id, busy) = team_plan(&app, &mut console).await;
    let before = plan(&app, "team").await;
    let quotas_before = quotas(&app, busy).await;
    let audit_before = audit(&app).await;

    let list = console.get("/console/plans").await;
    assert!(list.body.contains(r#">team</a>"#), "{}", list.body);
    one_h1(&list);
    let page = console.get(&format!("/console/plans/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    one_h1(&page);
    assert!(
        page.body.contains("Tenants on this plan (2)"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">busy</a>") && page.body.contains(">idle</a>"));

    let mut fields = limit_fields(&before["limits"], &[("max_clusters", "2")]);
    fields.push(("preview".to_owned(), "1".to_owned()));
    let preview = console
        .post(&format!("/console/plans/{id}"), &borrowed(&fields))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    one_h1(&preview);
    assert!(
        preview.body.contains(&format!(
            r#"<td><a href="/console/tenants/{busy}">busy</a></td><td>Clusters</td><td class="num">3</td><td class="num">2</td>"#
        )),
        "{}",
        preview.body
    );
    assert!(!preview.body.contains(">idle</a>"), "{}", preview.body);
    assert!(preview.body.contains(">Apply</button>"), "{}", preview.body);
    assert!(
        preview
            .body
            .contains(r#"type="hidden" name="max_clusters" value="2""#)
    );

    assert_eq!(plan(&app, "team").await["limits"], before["limits"]);
    assert_eq!(quotas(&app, busy).await["limits"], quotas_before["limits"]);
    assert_eq!(audit(&app).await, audit_before);

    // A value that is not a number: beside its field, nothing changed.
    let mut fields = limit_fields(&before["limits"], &[("burst", "")]);
    fields.push(("preview".to_owned(), "1".to_owned()));
    let bad = console
        .post(&format!("/console/plans/{id}"), &borrowed(&fields))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains(r#"id="burst-error""#), "{}", bad.body);
    assert_eq!(plan(&app, "team").await["limits"], before["limits"]);
}

#[tokio::test]
async fn applying_a_plan_change_gives_its_tenants_the_new_limits_audited_as_the_signed_in_admin() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    console.get("/console/plans").await;
    let (id, busy) = team_plan(&app, &mut console).await;
    let before = plan(&app, "team").await;

    let fields = limit_fields(&before["limits"], &[("max_clusters", "2")]);
    let applied = console
        .post(&format!("/console/plans/{id}"), &borrowed(&fields))
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    assert_eq!(
        applied.location(),
        Some(format!("/console/plans/{id}?notice=plan_saved").as_str())
    );
    let after = plan(&app, "team").await;
    assert_eq!(after["limits"]["max_clusters"], 2);
    assert_eq!(after["limits"]["max_users"], before["limits"]["max_users"]);
    let busy_quotas = quotas(&app, busy).await;
    assert_eq!(busy_quotas["limits"]["max_clusters"], 2);
    assert_eq!(busy_quotas["over_limit"], json!(["clusters"]));
    let entries = audit(&app).await;
    assert_eq!(audited(&entries, "plan.created"), 1);
    assert_eq!(audited(&entries, "plan.updated"), 1);

    // The admin API lists the tenants on the plan too.
    let on = admin_get(&app, &format!("/v1/admin/plans/{id}/tenants")).await;
    let slugs: Vec<&str> = on["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["busy", "idle"]);

    let page = console
        .get(&format!("/console/plans/{id}?notice=plan_saved"))
        .await;
    assert!(page.body.contains("Plan changed"), "{}", page.body);
    assert!(
        page.body
            .contains(r#"id="max_clusters" name="max_clusters" value="2""#),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    let before = quotas(&app, tenant).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let (plan_id, _) = {
        console.get("/console/plans").await;
        team_plan(&app, &mut console).await
    };
    let plan_before = plan(&app, "team").await;
    let audit_before = audit(&app).await;

    let quota_fields = limit_fields(&before["limits"], &[("max_clusters", "1")]);
    let plan_fields = limit_fields(&plan_before["limits"], &[("max_clusters", "1")]);
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/console/tenants/{tenant}/quotas"),
            borrowed(&quota_fields),
        ),
        (
            format!("/console/tenants/{tenant}/members"),
            vec![("subject", "mallory@example.com"), ("role", "owner")],
        ),
        (
            "/console/accounts".to_owned(),
            vec![("slug", "evil"), ("name", "Evil")],
        ),
        ("/console/plans".to_owned(), vec![("name", "evil")]),
        (format!("/console/plans/{plan_id}"), borrowed(&plan_fields)),
    ];
    for (path, fields) in &posts {
        let refused = console.post_raw(path, fields, &[]).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert!(refused.body.contains("Request refused"), "{}", refused.body);
        // A wrong token is refused the same way.
        let mut forged = vec![("csrf", "forged")];
        forged.extend_from_slice(fields);
        let refused = console.post_raw(path, &forged, &[]).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
    }
    assert_eq!(quotas(&app, tenant).await["limits"], before["limits"]);
    assert!(members(&app, tenant).await.is_empty());
    assert_eq!(plan(&app, "team").await["limits"], plan_before["limits"]);
    assert_eq!(audit(&app).await, audit_before);
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/accounts/evil", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn putting_a_tenant_on_a_plan_is_previewed_then_applied_and_audited() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    console.get("/console/plans").await;
    let created = console.post("/console/plans", &[("name", "tiny")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let tiny = plan(&app, "tiny").await;
    let id = tiny["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            "/v1/admin/plans/tiny",
            Some(json!({"limits": {"max_clusters": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (tenant, _) = app.tenant_with("acme", json!({})).await;
    add_clusters(&app, tenant, 2).await;
    let before = quotas(&app, tenant).await;
    let path = format!("/console/plans/{id}/tenants");

    let unknown = console
        .post(&path, &[("tenant", "nobody"), ("preview", "1")])
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert!(
        unknown.body.contains(r#"id="tenant-error""#),
        "{}",
        unknown.body
    );

    let preview = console
        .post(&path, &[("tenant", "acme"), ("preview", "1")])
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    one_h1(&preview);
    assert!(
        preview
            .body
            .contains("<strong>Clusters</strong>: 2 used, limit 1"),
        "{}",
        preview.body
    );
    assert_eq!(quotas(&app, tenant).await["plan"], Value::Null);
    assert_eq!(quotas(&app, tenant).await["limits"], before["limits"]);

    let applied = console
        .post(&path, &[("tenant", &tenant.to_string())])
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    let after = quotas(&app, tenant).await;
    assert_eq!(after["plan"], "tiny");
    assert_eq!(after["limits"]["max_clusters"], 1);
    assert_eq!(audited(&audit(&app).await, "tenant.plan_changed"), 1);
    let page = console
        .get(&format!("/console/plans/{id}?notice=tenant_moved"))
        .await;
    assert!(
        page.body.contains("Tenant moved onto this plan."),
        "{}",
        page.body
    );
    assert!(page.body.contains(">acme</a>"), "{}", page.body);
}
