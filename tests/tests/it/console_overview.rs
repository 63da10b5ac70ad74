//! The console's overview, retention and audit log pages, over plain HTTP
//! against the real server: what they show is what the database holds, the
//! sweep they run is the admin API's, and their filters are the API's.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_core::{Scope, TenantId};
use tenantry_tests::TestApp;
use tenantry_tests::console::ConsoleClient;

async fn create(app: &TestApp, token: &str, slug: &str) -> TenantId {
    let (status, t) = app
        .call(
            token,
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": slug, "name": slug})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t["id"].as_str().unwrap().parse().unwrap()
}

async fn step(app: &TestApp, tenant: TenantId, action: &str) -> Value {
    let (status, t) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{tenant}/{action}"),
            Some(json!({"reason": format!("{action} for the test")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

async fn add_user(app: &TestApp, tenant: TenantId, email: &str) {
    let (status, body) = app
        .call(
            &app.tenant_token(tenant),
            Method::POST,
            "/v1/users",
            Some(json!({ "email": email })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn tenant(app: &TestApp, tenant: TenantId) -> Value {
    let (status, t) = app
        .admin_call(Method::GET, &format!("/v1/admin/tenants/{tenant}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

/// A time as `layout::time` writes it in `datetime`.
fn datetime_attr(json_time: &Value) -> String {
    let at: DateTime<Utc> = json_time.as_str().unwrap().parse().unwrap();
    format!(
        r#"datetime="{}""#,
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

async fn audit(app: &TestApp, query: &str) -> (StatusCode, Value) {
    app.admin_call(Method::GET, &format!("/v1/admin/audit?{query}"), None)
        .await
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().unwrap()
}

// ---------------------------------------------------------------- overview

#[tokio::test]
async fn the_overview_counts_tenants_by_status_each_linking_to_the_filtered_list() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    for slug in ["one", "two", "three"] {
        create(&app, &admin, slug).await;
    }
    let paused = create(&app, &admin, "paused").await;
    step(&app, paused, "suspend").await;
    let gone = create(&app, &admin, "gone").await;
    step(&app, gone, "delete").await;

    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get("/console/overview").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (status, n) in [
        ("active", 3),
        ("suspended", 1),
        ("archived", 0),
        ("deleted", 1),
    ] {
        let card = format!(
            r#"<a href="/console/tenants?status={status}"><span class="big">{n}</span> <span class="status status-{status}">{status}</span></a>"#
        );
        assert!(page.body.contains(&card), "{card} missing: {}", page.body);
    }
    assert_eq!(page.body.matches("<h1>").count(), 1);
    // The service's health is still there.
    assert!(page.body.contains("Database schema"), "{}", page.body);
}

#[tokio::test]
async fn the_overview_lists_a_tenant_over_a_quota_with_the_resource_usage_and_limit() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let crowded = create(&app, &admin, "crowded").await;
    let roomy = create(&app, &admin, "roomy").await;
    for i in 0..3 {
        add_user(&app, crowded, &format!("u{i}@example.com")).await;
    }
    add_user(&app, roomy, "solo@example.com").await;
    // Lowered below what it uses already (the API allows it: nothing is
    // removed, the tenant just cannot grow).
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{crowded}/quotas"),
            Some(json!({"limits": {"max_users": 2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get("/console/overview").await;
    assert_eq!(page.status, StatusCode::OK);
    let table_start = page
        .body
        .find("Tenants at or over a quota")
        .expect("the over-quota table");
    let table =
        &page.body[table_start..page.body[table_start..].find("</table>").unwrap() + table_start];
    assert!(
        table.contains(&format!(
            r#"<a href="/console/tenants/{crowded}">crowded</a>"#
        )),
        "{table}"
    );
    assert!(table.contains("<td>Users</td>"), "{table}");
    assert!(table.contains("3 of 2 (150 %)"), "{table}");
    assert!(
        table.contains(r#"<meter"#) && table.contains(r#"value="3""#),
        "{table}"
    );
    // Within its limits: not listed.
    assert!(!table.contains("roomy"), "{table}");
}

#[tokio::test]
async fn the_overview_shows_when_a_deleted_tenant_will_be_purged_and_the_latest_audit() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let gone = create(&app, &admin, "gone").await;
    let deleted = step(&app, gone, "delete").await;
    let held = create(&app, &admin, "held").await;
    step(&app, held, "delete").await;
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{held}"),
            Some(json!({"legal_hold": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get("/console/overview").await;
    let start = page.body.find("Pending purges").expect("pending purges");
    let purges = &page.body[start..page.body.find("Latest audit entries").unwrap()];
    assert!(purges.contains(">gone</a>"), "{purges}");
    assert!(
        purges.contains(&datetime_attr(&deleted["purge_after"])),
        "the purge date {} missing: {purges}",
        deleted["purge_after"]
    );
    // On legal hold: not pending.
    assert!(!purges.contains(">held</a>"), "{purges}");
    assert!(purges.contains("1 deleted tenant(s)"), "{purges}");
    assert!(purges.contains("retention period 90 days"), "{purges}");
    assert!(
        purges.contains("The sweeper has purged no tenant yet"),
        "{purges}"
    );

    let latest = &page.body[page.body.find("Latest audit entries").unwrap()..];
    assert!(latest.contains("tenant.updated"), "{latest}");
    assert!(latest.contains(r#"href="/console/audit""#));
    // Newest first: the legal hold before the first delete.
    assert!(latest.find("tenant.updated").unwrap() < latest.find("tenant.delete").unwrap());
}

// --------------------------------------------------------------- retention

#[tokio::test]
async fn a_dry_run_sweep_previews_the_tenants_past_retention_and_purges_nothing_until_confirmed() {
    let app = TestApp::spawn_with_retention(Duration::from_secs(1)).await;
    let admin = app.admin_token();
    let gone = create(&app, &admin, "gone").await;
    add_user(&app, gone, "left@example.com").await;
    step(&app, gone, "delete").await;
    let kept = create(&app, &admin, "kept").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut console = ConsoleClient::signed_in(&app).await;
    let retention = console.get("/console/retention").await;
    assert_eq!(retention.status, StatusCode::OK, "{}", retention.body);
    assert!(retention.body.contains(">gone</a>"), "{}", retention.body);
    assert!(retention.body.contains("No purges yet."));

    let preview = console
        .post("/console/retention/sweep", &[("dry_run", "1")])
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("Sweep preview"), "{}", preview.body);
    assert!(preview.body.contains(">gone</a>"), "{}", preview.body);
    assert!(!preview.body.contains(">kept</a>"), "{}", preview.body);
    assert!(
        preview.body.contains("<code>users</code> 1"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains(r#"name="confirm_action""#));
    assert!(preview.body.contains("Purge now"));
    assert!(preview.body.contains("data-confirm="));
    assert!(tenant(&app, gone).await["purged_at"].is_null());
    let (_, runs) = app
        .admin_call(Method::GET, "/v1/admin/retention/runs", None)
        .await;
    assert!(items(&runs).is_empty(), "{runs}");

    // Without the confirmation box: the preview again, nothing purged.
    let unconfirmed = console.post("/console/retention/sweep", &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unconfirmed
            .body
            .contains(r#"<p class="field-error" id="confirm_action-error">"#),
        "{}",
        unconfirmed.body
    );
    assert!(
        unconfirmed
            .body
            .contains(r#"aria-describedby="confirm_action-error""#)
    );
    assert!(tenant(&app, gone).await["purged_at"].is_null());

    let report = console
        .post("/console/retention/sweep", &[("confirm_action", "1")])
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert!(report.body.contains("Sweep report"), "{}", report.body);
    assert!(
        report.body.contains("1 tenant(s) purged"),
        "{}",
        report.body
    );
    assert!(!tenant(&app, gone).await["purged_at"].is_null());
    assert!(tenant(&app, kept).await["purged_at"].is_null());

    let (_, runs) = app
        .admin_call(Method::GET, "/v1/admin/retention/runs", None)
        .await;
    assert_eq!(items(&runs).len(), 1, "{runs}");
    assert!(
        items(&runs)[0]["sweeper"]
            .as_str()
            .unwrap()
            .ends_with("(by test-admin)"),
        "{runs}"
    );
    let (_, purged) = audit(&app, "action=tenant.purged").await;
    assert_eq!(items(&purged).len(), 1, "{purged}");
    assert!(
        items(&purged)[0]["actor"]
            .as_str()
            .unwrap()
            .ends_with("(by test-admin)")
    );

    let retention = console.get("/console/retention").await;
    let receipts = &retention.body[retention.body.find("Purge receipts").expect("receipts")..];
    assert!(receipts.contains(">gone</a>"), "{receipts}");
    assert!(receipts.contains("Purged "), "{receipts}");
    assert!(receipts.contains("<code>users</code> 1"), "{receipts}");

    let overview = console.get("/console/overview").await;
    let last = &overview.body[overview
        .body
        .find("The sweeper&#39;s last purge")
        .or_else(|| overview.body.find("The sweeper's last purge"))
        .unwrap()..];
    assert!(
        last.contains(">gone</a>") && last.contains("Purged "),
        "{last}"
    );
}

#[tokio::test]
async fn a_sweep_posted_without_the_csrf_token_is_refused_and_purges_nothing() {
    let app = TestApp::spawn_with_retention(Duration::from_secs(1)).await;
    let gone = create(&app, &app.admin_token(), "gone").await;
    step(&app, gone, "delete").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    for fields in [&[("dry_run", "1")][..], &[("confirm_action", "1")][..]] {
        let refused = console
            .post_raw("/console/retention/sweep", fields, &[])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(refused.body.contains("Request refused"));
    }
    let cross_site = console
        .post_raw(
            "/console/retention/sweep",
            &[
                ("csrf", console.csrf.clone().unwrap().as_str()),
                ("confirm_action", "1"),
            ],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(tenant(&app, gone).await["purged_at"].is_null());
}

// ------------------------------------------------------------------- audit

/// alpha (created, suspended) by test-admin, then — after `mid` — beta by
/// test-admin with a quota change, and gamma by other-admin.
struct History {
    alpha: TenantId,
    beta: TenantId,
    gamma: TenantId,
    mid: DateTime<Utc>,
}

async fn history(app: &TestApp) -> History {
    let admin = app.admin_token();
    let alpha = create(app, &admin, "alpha").await;
    step(app, alpha, "suspend").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mid = Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let beta = create(app, &admin, "beta").await;
    let (status, body) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{beta}/quotas"),
            Some(json!({"limits": {"max_users": 5}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other = app.token("other-admin", None, &[Scope::PlatformAdmin]);
    let gamma = create(app, &other, "gamma").await;
    History {
        alpha,
        beta,
        gamma,
        mid,
    }
}

#[tokio::test]
async fn the_admin_api_filters_the_audit_log_by_actor_action_tenant_and_time() {
    let app = TestApp::spawn().await;
    let h = history(&app).await;

    let (status, by_other) = audit(&app, "actor=other-admin").await;
    assert_eq!(status, StatusCode::OK, "{by_other}");
    assert!(!items(&by_other).is_empty());
    assert!(items(&by_other).iter().all(|e| e["actor"] == "other-admin"));
    assert!(
        items(&by_other)
            .iter()
            .all(|e| e["tenant_id"] == h.gamma.to_string())
    );

    let (_, tenant_actions) = audit(&app, "action=tenant.").await;
    let actions: Vec<&str> = items(&tenant_actions)
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().all(|a| a.starts_with("tenant.")),
        "{actions:?}"
    );
    assert!(actions.contains(&"tenant.suspend") && actions.contains(&"tenant.created"));
    let (_, quota) = audit(&app, "action=quota.updated").await;
    assert_eq!(items(&quota).len(), 1, "{quota}");
    assert_eq!(items(&quota)[0]["tenant_id"], h.beta.to_string());
    // An exact action is not a prefix.
    let (_, none) = audit(&app, "action=tenant").await;
    assert!(items(&none).is_empty(), "{none}");

    for key in [h.alpha.to_string(), "alpha".to_owned()] {
        let (status, alpha) = audit(&app, &format!("tenant={key}")).await;
        assert_eq!(status, StatusCode::OK, "{alpha}");
        assert_eq!(items(&alpha).len(), 2, "{alpha}");
        assert!(
            items(&alpha)
                .iter()
                .all(|e| e["tenant_id"] == h.alpha.to_string())
        );
    }

    let mid = h.mid.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (_, after) = audit(&app, &format!("from={mid}")).await;
    assert!(!items(&after).is_empty());
    assert!(
        items(&after)
            .iter()
            .all(|e| e["tenant_id"] != h.alpha.to_string()),
        "{after}"
    );
    let (_, before) = audit(&app, &format!("to={mid}")).await;
    assert_eq!(items(&before).len(), 2, "{before}");
    assert!(
        items(&before)
            .iter()
            .all(|e| e["tenant_id"] == h.alpha.to_string())
    );

    // Newest first, paged, the filter kept across pages.
    let (_, first) = audit(&app, "action=tenant.&order=desc&limit=1").await;
    assert_eq!(
        items(&first)[0]["tenant_id"],
        h.gamma.to_string(),
        "{first}"
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = audit(
        &app,
        &format!("action=tenant.&order=desc&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(
        items(&second)[0]["tenant_id"],
        h.beta.to_string(),
        "{second}"
    );
    assert_eq!(items(&second)[0]["action"], "tenant.created");

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("tenant=nobody", "tenant"),
        ("order=sideways", "order"),
        (&*format!("from={mid}&to=2020-01-01T00:00:00Z"), "to"),
    ] {
        let (status, problem) = audit(&app, query).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

#[tokio::test]
async fn the_audit_page_filters_by_actor_action_tenant_and_time_newest_first() {
    let app = TestApp::spawn().await;
    let h = history(&app).await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let link = |t: TenantId| format!(r#"<a href="/console/tenants/{t}">"#);

    let all = console.get("/console/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(
        all.body
            .contains("<caption>Audit entries, newest first</caption>")
    );
    // Newest first: gamma's creation before alpha's.
    assert!(all.body.find(&link(h.gamma)).unwrap() < all.body.find(&link(h.alpha)).unwrap());
    assert!(
        all.body
            .contains("<details><summary>Before and after</summary>"),
        "{}",
        all.body
    );
    assert!(
        all.body.contains("suspend for the test"),
        "the reason is shown"
    );

    let other = console.get("/console/audit?actor=other-admin").await;
    assert!(other.body.contains(&link(h.gamma)));
    assert!(!other.body.contains(&link(h.alpha)) && !other.body.contains(&link(h.beta)));
    assert!(
        other.body.contains(r#"value="other-admin""#),
        "the filter is kept in its field"
    );

    let tenant_actions = console.get("/console/audit?action=tenant.").await;
    assert!(tenant_actions.body.contains("<code>tenant.suspend</code>"));
    assert!(!tenant_actions.body.contains("<code>quota.updated</code>"));
    assert!(
        !tenant_actions
            .body
            .contains("<code>console.signed_in</code>")
    );

    let alpha = console.get("/console/audit?tenant=alpha").await;
    assert!(alpha.body.contains(&link(h.alpha)));
    assert!(!alpha.body.contains(&link(h.beta)) && !alpha.body.contains(&link(h.gamma)));

    let mid = h.mid.format("%Y-%m-%dT%H:%M:%S").to_string();
    let before = console.get(&format!("/console/audit?to={mid}")).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(before.body.contains(&link(h.alpha)));
    assert!(!before.body.contains(&link(h.beta)) && !before.body.contains(&link(h.gamma)));
    let after = console.get(&format!("/console/audit?from={mid}")).await;
    assert!(!after.body.contains(&link(h.alpha)));
    assert!(after.body.contains(&link(h.beta)) && after.body.contains(&link(h.gamma)));
}

#[tokio::test]
async fn a_bad_audit_filter_is_shown_beside_its_field_with_422() {
    let app = TestApp::spawn().await;
    create(&app, &app.admin_token(), "alpha").await;
    let mut console = ConsoleClient::signed_in(&app).await;

    let bad_from = console.get("/console/audit?from=yesterday&actor=x").await;
    assert_eq!(
        bad_from.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_from.body
    );
    assert!(
        bad_from
            .body
            .contains(r#"<p class="field-error" id="from-error">"#),
        "{}",
        bad_from.body
    );
    assert!(bad_from.body.contains(r#"aria-describedby="from-error""#));
    assert!(
        bad_from.body.contains(r#"value="yesterday""#),
        "what was typed is kept"
    );
    assert!(!bad_from.body.contains("<caption>Audit entries"));

    let unknown = console.get("/console/audit?tenant=nobody").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.body.contains(r#"id="tenant-error""#),
        "{}",
        unknown.body
    );

    let backwards = console
        .get("/console/audit?from=2026-02-01T00:00&to=2026-01-01T00:00")
        .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        backwards.body.contains(r#"id="to-error""#),
        "{}",
        backwards.body
    );
}

#[tokio::test]
async fn long_lists_are_paged_and_the_next_page_keeps_the_filters() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let mut deleted = Vec::new();
    for i in 0..26 {
        let t = create(&app, &admin, &format!("t{i:02}")).await;
        step(&app, t, "delete").await;
        deleted.push(t);
    }
    let mut console = ConsoleClient::signed_in(&app).await;

    // Deleted tenants, 20 a page, the first to be purged first.
    let first = console.get("/console/retention").await;
    let link = |t: &TenantId| format!(r#"<a href="/console/tenants/{t}">"#);
    assert!(deleted[..20].iter().all(|t| first.body.contains(&link(t))));
    assert!(!first.body.contains(&link(&deleted[20])));
    let next = first
        .body
        .split(r#"<a rel="next" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page")
        .replace("&amp;", "&");
    assert!(
        next.starts_with("/console/retention?deleted_cursor="),
        "{next}"
    );
    let second = console.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(deleted[20..].iter().all(|t| second.body.contains(&link(t))));
    assert!(!second.body.contains(&link(&deleted[19])));

    // 52 tenant.* entries, 50 a page: the second page has the oldest two,
    // and the filter still applies.
    let audit_page = console.get("/console/audit?action=tenant.").await;
    let next = audit_page
        .body
        .split(r#"<a rel="next" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page")
        .replace("&amp;", "&");
    assert!(
        next.starts_with("/console/audit?action=tenant.&cursor="),
        "{next}"
    );
    let older = console.get(&next).await;
    assert_eq!(older.status, StatusCode::OK, "{}", older.body);
    assert_eq!(
        older.body.matches("<code>tenant.").count(),
        2,
        "{}",
        older.body
    );
    assert!(older.body.contains("<code>tenant.created</code>"));
    assert!(older.body.contains(&link(&deleted[0])));
    assert!(!older.body.contains("console.signed_in"));
    assert!(!older.body.contains(r#"rel="next""#));
}
