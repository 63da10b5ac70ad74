//! The console's tenant pages over plain HTTP against the real server: the
//! list (status filter, search, paging), creating a tenant with quotas, the
//! detail page's lifecycle actions, legal hold and export.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_tests::TestApp;
use tenantry_tests::console::{ConsoleClient, Page};

/// The tenants the list page shows, by slug, in order.
fn listed(page: &Page) -> Vec<String> {
    let marker = r#"<td><a href="/console/tenants/"#;
    page.body
        .match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &page.body[at + marker.len()..];
            let start = rest.find('>')? + 1;
            let end = rest[start..].find('<')?;
            Some(rest[start..start + end].to_owned())
        })
        .collect()
}

/// Where the page's "Next page" link points, if it has one.
fn next_page(page: &Page) -> Option<String> {
    let marker = r#"<a rel="next" href=""#;
    let start = page.body.find(marker)? + marker.len();
    let end = page.body[start..].find('"')?;
    Some(page.body[start..start + end].replace("&amp;", "&"))
}

/// Every page of the list from `path`, following the pager.
async fn all_pages(console: &mut ConsoleClient, path: &str) -> (Vec<String>, usize) {
    let mut slugs = Vec::new();
    let mut pages = 0;
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let page = console.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_eq!(page.body.matches("<h1>").count(), 1);
        slugs.extend(listed(&page));
        pages += 1;
        assert!(pages < 10, "the pager never ends");
        next = next_page(&page);
        if let Some(n) = &next {
            assert!(n.contains("cursor="), "{n}");
        }
    }
    (slugs, pages)
}

/// Every `id` on the page is unique (several forms share field names).
fn assert_unique_ids(page: &Page) {
    let mut ids: Vec<&str> = page
        .body
        .match_indices(r#" id=""#)
        .filter_map(|(at, m)| {
            let rest = &page.body[at + m.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "duplicate ids: {}", page.body);
}

async fn tenant(app: &TestApp, key: &str) -> Value {
    let (status, body) = app
        .admin_call(Method::GET, &format!("/v1/admin/tenants/{key}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The audit entries of `tenant`: (action, actor, reason).
async fn audit(app: &TestApp, tenant: &str) -> Vec<(String, String, Option<String>)> {
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
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn entry(action: &str, reason: &str) -> (String, String, Option<String>) {
    (
        action.to_owned(),
        "test-admin".to_owned(),
        Some(reason.to_owned()),
    )
}

#[tokio::test]
async fn the_tenant_list_filters_by_status_searches_slug_or_name_and_pages_with_the_filters_kept() {
    let app = TestApp::spawn().await;
    for i in 1..=23 {
        app.create_tenant(&format!("shop-{i:02}")).await;
    }
    app.create_tenant("other").await;
    let (status, _) = app
        .admin_call(Method::POST, "/v1/admin/tenants/shop-05/suspend", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut console = ConsoleClient::signed_in(&app).await;

    let first = console.get("/console/tenants").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body.contains(r#"href="/console/tenants/new""#));
    assert!(first.body.contains("<caption>Tenants</caption>"));
    assert_unique_ids(&first);
    assert_eq!(listed(&first).len(), 20, "20 to a page");
    let (everyone, pages) = all_pages(&mut console, "/console/tenants").await;
    assert_eq!((everyone.len(), pages), (24, 2));

    // Case-insensitive, on the slug or the name; the next page keeps it.
    let (shops, pages) = all_pages(&mut console, "/console/tenants?q=SHOP").await;
    assert_eq!(pages, 2);
    let expected: Vec<String> = (1..=23).map(|i| format!("shop-{i:02}")).collect();
    let mut sorted = shops.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let second = console.get("/console/tenants?q=SHOP").await;
    assert!(
        next_page(&second)
            .unwrap()
            .starts_with("/console/tenants?q=SHOP&cursor=")
    );

    // LIKE's wildcards are taken literally.
    for q in ["%25", "_", "shop%25"] {
        let page = console.get(&format!("/console/tenants?q={q}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(listed(&page).is_empty(), "{q}: {:?}", listed(&page));
        assert!(page.body.contains("No tenant matches these filters."));
    }

    let suspended = console.get("/console/tenants?status=suspended").await;
    assert_eq!(listed(&suspended), ["shop-05"]);
    assert!(
        suspended
            .body
            .contains(r#"<option value="suspended" selected>"#)
    );
    assert!(
        suspended
            .body
            .contains(r#"<span class="status status-suspended">suspended</span>"#)
    );
    let both = console.get("/console/tenants?status=active&q=shop-0").await;
    assert_eq!(listed(&both).len(), 8, "shop-01..09 but shop-05");

    let bad = console.get("/console/tenants?status=gone").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains(r#"<p class="field-error" id="status-error">"#),
        "{}",
        bad.body
    );
    let bad = console.get("/console/tenants?cursor=nonsense").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains(r#"role="alert""#));

    // The admin API searches the same way.
    let (status, body) = app
        .admin_call(Method::GET, "/v1/admin/tenants?q=Shop-0&limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 9);
    let (_, body) = app
        .admin_call(Method::GET, "/v1/admin/tenants?q=_&limit=100", None)
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    let (status, _) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants?q={}", "x".repeat(101)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn creating_a_tenant_with_initial_quotas_applies_them_and_refuses_bad_input_beside_its_field()
{
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let form = console.get("/console/tenants/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.body.matches("<h1>").count(), 1);
    assert_unique_ids(&form);
    for field in ["slug", "name", "account", "max_users", "burst"] {
        assert!(
            form.body.contains(&format!(r#"<label for="{field}">"#)),
            "{field}"
        );
    }

    let created = console
        .post(
            "/console/tenants",
            &[
                ("slug", "new-shop"),
                ("name", "New Shop"),
                ("account", ""),
                ("max_users", "7"),
                ("max_instances", "3"),
                ("max_api_keys", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let shown = tenant(&app, "new-shop").await;
    let id = shown["id"].as_str().unwrap().to_owned();
    assert_eq!(shown["name"], "New Shop");
    assert_eq!(
        created.location(),
        Some(format!("/console/tenants/{id}?notice=created").as_str())
    );
    let detail = console.get(created.location().unwrap()).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Tenant created."));

    let (status, quotas) = app
        .admin_call(Method::GET, "/v1/admin/tenants/new-shop/quotas", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{quotas}");
    assert_eq!(quotas["limits"]["max_users"], 7);
    assert_eq!(quotas["limits"]["max_instances"], 3);
    assert_eq!(quotas["sources"]["max_users"]["source"], "override");
    assert_eq!(quotas["sources"]["max_api_keys"]["source"], "default");
    let entries = audit(&app, &id).await;
    assert!(
        entries
            .iter()
            .any(|(a, actor, _)| a == "tenant.created" && actor == "test-admin"),
        "{entries:?}"
    );

    // Refused, re-rendered with what was typed and the error beside its
    // field; nothing created.
    for (fields, status, field, detail) in [
        (
            vec![("slug", "Bad Slug"), ("name", "Kept name")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "slug",
            "",
        ),
        (
            vec![("slug", "new-shop"), ("name", "Kept name")],
            StatusCode::CONFLICT,
            "slug",
            "taken",
        ),
        (
            vec![
                ("slug", "fresh"),
                ("name", "Kept name"),
                ("max_users", "-1"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_users",
            "0 or more",
        ),
        (
            vec![("slug", "fresh"), ("name", "Kept name"), ("burst", "lots")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "burst",
            "whole number",
        ),
        (
            vec![
                ("slug", "fresh"),
                ("name", "Kept name"),
                ("account", "acct"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "account",
            "account id",
        ),
        (
            vec![
                ("slug", "fresh"),
                ("name", "Kept name"),
                ("account", "0190a000-0000-7000-8000-000000000000"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "account",
            "no such account",
        ),
    ] {
        let refused = console.post("/console/tenants", &fields).await;
        assert_eq!(refused.status, status, "{fields:?}: {}", refused.body);
        let marker = format!(r#"<p class="field-error" id="{field}-error">"#);
        let at = refused
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("{fields:?}: no error at {field}: {}", refused.body));
        assert!(refused.body[at..].contains(detail), "{fields:?}");
        assert!(refused.body.contains(r#"value="Kept name""#));
        assert_eq!(refused.body.matches("<h1>").count(), 1);
    }
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/fresh", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
}

#[tokio::test]
async fn suspend_activate_delete_and_restore_on_the_detail_page_each_leave_an_audit_entry_with_the_reason()
 {
    let app = TestApp::spawn().await;
    let id = app.create_tenant("acme").await.to_string();
    let mut console = ConsoleClient::signed_in(&app).await;
    let lifecycle = format!("/console/tenants/{id}/lifecycle");

    let page = console.get("/console/tenants/acme").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body.matches("<h1>").count(), 1);
    assert!(
        page.body
            .contains(r#"<span class="status status-active">active</span>"#)
    );
    for (action, shown) in [
        ("suspend", true),
        ("archive", true),
        ("delete", true),
        ("activate", false),
        ("restore", false),
    ] {
        assert_eq!(
            page.body
                .contains(&format!(r#"name="action" value="{action}""#)),
            shown,
            "{action}"
        );
    }
    assert_unique_ids(&page);
    assert!(page.body.contains(r#"id="delete-confirm""#));
    assert!(!page.body.contains(r#"id="suspend-confirm""#));
    assert!(page.body.contains(r#"href="/console/tenants/"#));
    assert!(page.body.contains("Edit quotas"));
    assert!(page.body.contains("<meter"));

    let done = console
        .post(
            &lifecycle,
            &[
                ("action", "suspend"),
                ("reason", "billing overdue"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        done.location(),
        Some(format!("/console/tenants/{id}?notice=suspend").as_str())
    );
    assert_eq!(tenant(&app, &id).await["status"], "suspended");
    let page = console.get(done.location().unwrap()).await;
    assert!(page.body.contains("Tenant suspended."));
    assert!(page.body.contains(r#"name="action" value="activate""#));

    // No reason, no "I understand": refused beside the field, unchanged.
    for (fields, field) in [
        (
            [
                ("action", "activate"),
                ("reason", " "),
                ("confirm_action", "yes"),
            ],
            "activate-reason",
        ),
        (
            [
                ("action", "activate"),
                ("reason", "paid"),
                ("confirm_action", ""),
            ],
            "activate-confirm_action",
        ),
    ] {
        let refused = console.post(&lifecycle, &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            refused
                .body
                .contains(&format!(r#"<p class="field-error" id="{field}-error">"#)),
            "{field}: {}",
            refused.body
        );
        assert_eq!(tenant(&app, &id).await["status"], "suspended");
    }

    let done = console
        .post(
            &lifecycle,
            &[
                ("action", "activate"),
                ("reason", "paid"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(tenant(&app, &id).await["status"], "active");

    // Delete repeats the slug: a wrong one is refused and nothing changes.
    for wrong in ["", "acm", "other"] {
        let refused = console
            .post(
                &lifecycle,
                &[
                    ("action", "delete"),
                    ("reason", "closed"),
                    ("confirm", wrong),
                    ("confirm_action", "yes"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        assert!(
            refused
                .body
                .contains(r#"<p class="field-error" id="delete-confirm-error">"#),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains(r#"value="closed""#),
            "what was typed is kept"
        );
        assert_unique_ids(&refused);
        let now = tenant(&app, &id).await;
        assert_eq!(
            (now["status"].as_str(), &now["deleted_at"]),
            (Some("active"), &Value::Null)
        );
    }
    let done = console
        .post(
            &lifecycle,
            &[
                ("action", "delete"),
                ("reason", "closed"),
                ("confirm", "acme"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let deleted = tenant(&app, &id).await;
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted_at"].is_string());
    let page = console.get(done.location().unwrap()).await;
    assert!(page.body.contains("Purge after"), "{}", page.body);
    assert!(page.body.contains(r#"name="action" value="restore""#));

    // A stale form (an action not allowed from here): the API's answer at
    // the top of the lifecycle actions.
    let stale = console
        .post(
            &lifecycle,
            &[
                ("action", "suspend"),
                ("reason", "stale"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body.contains(
            r#"<div class="problem" role="alert"><p>cannot go from deleted to suspended</p></div>"#
        ),
        "{}",
        stale.body
    );

    let done = console
        .post(
            &lifecycle,
            &[
                ("action", "restore"),
                ("reason", "closed by mistake"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let restored = tenant(&app, &id).await;
    assert_eq!(restored["status"], "archived");
    assert_eq!(restored["deleted_at"], Value::Null);

    let entries = audit(&app, &id).await;
    for expected in [
        entry("tenant.suspend", "billing overdue"),
        entry("tenant.activate", "paid"),
        entry("tenant.delete", "closed"),
        entry("tenant.restore", "closed by mistake"),
    ] {
        assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
    }
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.0.starts_with("tenant."))
            .count(),
        4,
        "the refused ones left none: {entries:?}"
    );
    let page = console.get(&format!("/console/tenants/{id}")).await;
    assert!(
        page.body.contains("closed by mistake"),
        "the recent audit entries are shown"
    );
}

#[tokio::test]
async fn a_legal_hold_is_placed_and_lifted_with_a_reason_in_the_audit_log() {
    let app = TestApp::spawn().await;
    let id = app.create_tenant("acme").await.to_string();
    let mut console = ConsoleClient::signed_in(&app).await;
    let hold = format!("/console/tenants/{id}/legal-hold");
    let page = console.get(&format!("/console/tenants/{id}")).await;
    assert!(page.body.contains("Place legal hold"));

    for (fields, field) in [
        ([("hold", "on"), ("reason", "")], "hold-reason"),
        ([("hold", "maybe"), ("reason", "x")], ""),
    ] {
        let refused = console.post(&hold, &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        if field.is_empty() {
            assert!(refused.body.contains("must be on or off"));
        } else {
            assert!(refused.body.contains(&format!(r#"id="{field}-error""#)));
        }
        assert_eq!(tenant(&app, &id).await["legal_hold"], false);
    }

    let done = console
        .post(&hold, &[("hold", "on"), ("reason", "litigation")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(tenant(&app, &id).await["legal_hold"], true);
    let page = console.get(done.location().unwrap()).await;
    assert!(page.body.contains("Legal hold placed"));
    assert!(page.body.contains("Lift legal hold"));

    let done = console
        .post(&hold, &[("hold", "off"), ("reason", "settled")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(tenant(&app, &id).await["legal_hold"], false);

    let entries = audit(&app, &id).await;
    assert!(
        entries.contains(&entry("tenant.updated", "litigation")),
        "{entries:?}"
    );
    assert!(
        entries.contains(&entry("tenant.updated", "settled")),
        "{entries:?}"
    );

    // The admin API's PATCH takes the reason too.
    let (status, _) = app
        .admin_call(
            Method::PATCH,
            &format!("/v1/admin/tenants/{id}"),
            Some(json!({"legal_hold": true, "reason": "by the API"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit(&app, &id)
            .await
            .iter()
            .any(|e| e.2.as_deref() == Some("by the API"))
    );
}

#[tokio::test]
async fn the_export_downloads_the_tenants_ndjson_as_an_attachment_named_after_its_slug() {
    let app = TestApp::spawn().await;
    let id = app.create_tenant("acme").await;
    let (status, _) = app
        .call(
            &app.tenant_token(id),
            Method::POST,
            "/v1/users",
            Some(json!({"email": "a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get(&format!("/console/tenants/{id}")).await;
    assert!(
        page.body
            .contains(&format!(r#"href="/console/tenants/{id}/export""#))
    );

    let file = console.get("/console/tenants/acme/export").await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["content-type"], "application/x-ndjson");
    assert_eq!(
        file.headers["content-disposition"],
        r#"attachment; filename="tenant-acme.ndjson""#
    );
    let lines: Vec<Value> = file
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (trailer, rows) = lines.split_last().unwrap();
    assert_eq!(trailer["end"], true);
    assert_eq!(trailer["rows"], rows.len());
    assert!(
        rows.iter()
            .any(|r| r["table"] == "users" && r["row"]["email"] == "a@example.com"),
        "{rows:?}"
    );

    // No session: no export.
    let mut stranger = ConsoleClient::new(&app);
    let refused = stranger.get("/console/tenants/acme/export").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_tenant_that_does_not_exist_is_a_404_page_in_the_console() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    for path in [
        "/console/tenants/nope".to_owned(),
        format!("/console/tenants/{}", uuid::Uuid::now_v7()),
        "/console/tenants/nope/export".to_owned(),
    ] {
        let page = console.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.body.contains(r#"<nav aria-label="Console">"#),
            "{path}"
        );
        assert!(page.body.contains("<h1>Not found</h1>"), "{path}");
    }
    let posted = console
        .post(
            "/console/tenants/nope/lifecycle",
            &[
                ("action", "suspend"),
                ("reason", "x"),
                ("confirm_action", "yes"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenant_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_tenant("acme").await.to_string();
    let mut console = ConsoleClient::signed_in(&app).await;
    for (path, fields) in [
        (
            format!("/console/tenants/{id}/lifecycle"),
            vec![
                ("action", "suspend"),
                ("reason", "x"),
                ("confirm_action", "yes"),
            ],
        ),
        (
            format!("/console/tenants/{id}/legal-hold"),
            vec![("hold", "on"), ("reason", "x")],
        ),
        (
            "/console/tenants".to_owned(),
            vec![("slug", "sneaky"), ("name", "Sneaky")],
        ),
    ] {
        let refused = console.post_raw(&path, &fields, &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        let mut forged = vec![("csrf", "forged")];
        forged.extend(fields.iter().copied());
        let refused = console.post_raw(&path, &forged, &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    let now = tenant(&app, &id).await;
    assert_eq!(
        (now["status"].as_str(), &now["legal_hold"]),
        (Some("active"), &json!(false))
    );
    let (status, _) = app
        .admin_call(Method::GET, "/v1/admin/tenants/sneaky", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(audit(&app, &id).await.is_empty());
}
