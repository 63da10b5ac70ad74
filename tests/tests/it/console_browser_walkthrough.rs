//! The console end to end, as people use it: a real headless Chromium
//! (tests/src/browser.rs) against the real server and database. An
//! operator signs in by pasting `app.admin_token()` into the sign-in page,
//! then walks the README's lifecycle section without a terminal; a
//! keyboard user on a phone suspends a tenant; and every way in that must
//! not work (a tenant token, no session, a forged or expired session, a
//! form posted from another site) is refused.
//!
//! axe-core runs on every page these tests visit; each test saves its last
//! page as `$CARGO_TARGET_DIR/console-screenshots/<test name>.png`, and the
//! walk-through also `console-overview.png` and `console-tenant.png` (the
//! README's two pictures, copied into docs/).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use diesel::sql_types::Uuid as SqlUuid;
use fantoccini::elements::{Element, ElementRef};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_api::console::ConsoleSettings;
use tenantry_core::TenantId;
use tenantry_db::ScopedFutureExt as _;
use tenantry_tests::TestApp;
use tenantry_tests::browser::{Browser, PHONE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The bounded waits of this file (page loads, dialogs).
const WAIT: Duration = Duration::from_secs(15);
const STEP: Duration = Duration::from_millis(100);
/// The W3C key of an element reference in a script's result.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

// --- Pages ----------------------------------------------------------------

/// The page the browser is on has this `<h1>` and passes axe-core (no
/// serious or critical violation): what every page visited is checked for.
async fn on_page(browser: &Browser, h1: &str) {
    assert_eq!(browser.h1().await, h1, "on {}", browser.url().await);
    browser.assert_accessible().await;
}

/// Marks the current document, so that [`wait_for_new_page`] can tell when
/// the browser has moved on to the next one.
async fn mark_page(browser: &Browser) {
    browser
        .execute("window.__walkthroughSeen = true; return true;", vec![])
        .await;
}

/// Waits (bounded) until the marked document is replaced by a new,
/// completely loaded one.
async fn wait_for_new_page(browser: &Browser, what: &str) {
    let deadline = Instant::now() + WAIT;
    for _ in 0..(WAIT.as_millis() / STEP.as_millis()) {
        let loaded = browser
            .client()
            .execute(
                "return window.__walkthroughSeen === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            return;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(STEP).await;
    }
    panic!(
        "waited {WAIT:?} for {what}; still on {}:\n{}",
        browser.url().await,
        browser.text().await
    );
}

/// Clicks the one visible button reading `text` in `scope` and waits for
/// the page it leads to.
async fn press_in(browser: &Browser, scope: &str, text: &str) {
    mark_page(browser).await;
    browser
        .button_in(scope, text)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {text:?} in {scope}: {e}"));
    wait_for_new_page(browser, &format!("the page after {text:?}")).await;
}

/// Like [`press_in`], for a destructive form: the console's script asks
/// "Are you sure?" natively first (`data-confirm`); the dialog reads
/// `question` and is accepted.
async fn press_and_confirm(browser: &Browser, scope: &str, text: &str, question: &str) {
    mark_page(browser).await;
    browser
        .button_in(scope, text)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {text:?} in {scope}: {e}"));
    let deadline = Instant::now() + WAIT;
    let mut asked = None;
    for _ in 0..(WAIT.as_millis() / STEP.as_millis()) {
        // Only prompt commands until it is answered: any other command
        // would dismiss the dialog (chromedriver's default).
        if let Ok(text) = browser.client().get_alert_text().await {
            asked = Some(text);
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(STEP).await;
    }
    let asked = asked.unwrap_or_else(|| panic!("{text:?} asked for no confirmation"));
    assert_eq!(asked, question);
    browser
        .client()
        .accept_alert()
        .await
        .unwrap_or_else(|e| panic!("accept the confirmation {question:?}: {e}"));
    wait_for_new_page(browser, &format!("the page after {text:?}")).await;
}

/// Follows the one link reading `text` and waits for its page.
async fn follow(browser: &Browser, text: &str) {
    mark_page(browser).await;
    browser.click_link(text).await;
    wait_for_new_page(browser, &format!("the page of the link {text:?}")).await;
}

/// Opens `url` (typed into the address bar).
async fn open(browser: &Browser, url: &str) {
    browser.goto(url).await;
}

/// The form control labelled `label` inside the element `scope` matches
/// (pages repeat labels such as "Reason" in every action's form).
async fn field_in(browser: &Browser, scope: &str, label: &str) -> Element {
    let found = browser
        .execute(
            "const [scopeCss, want] = arguments;
             const scope = document.querySelector(scopeCss);
             if (!scope) return { error: 'no element matches ' + scopeCss };
             const norm = s => s.replace(/\\s+/g, ' ').trim();
             const labels = Array.from(scope.querySelectorAll('label'));
             const hits = labels.filter(l => norm(l.textContent) === want && l.control);
             if (hits.length === 1) return hits[0].control;
             return { count: hits.length, labels: labels.map(l => norm(l.textContent)) };",
            vec![json!(scope), json!(label)],
        )
        .await;
    match found.get(ELEMENT_KEY).and_then(Value::as_str) {
        Some(id) => {
            Element::from_element_id(browser.client().clone(), ElementRef::from(id.to_owned()))
        }
        None => panic!(
            "not exactly one control labelled {label:?} in {scope} on {}: {found}",
            browser.url().await
        ),
    }
}

/// Clears the control labelled `label` in `scope` and types `value`.
async fn fill_in(browser: &Browser, scope: &str, label: &str, value: &str) {
    let field = field_in(browser, scope, label).await;
    field
        .clear()
        .await
        .unwrap_or_else(|e| panic!("clear {label:?}: {e}"));
    field
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {label:?}: {e}"));
}

/// Ticks the checkbox labelled `label` in `scope` (when it is not ticked).
async fn tick_in(browser: &Browser, scope: &str, label: &str) {
    let field = field_in(browser, scope, label).await;
    if !field
        .is_selected()
        .await
        .unwrap_or_else(|e| panic!("read {label:?}: {e}"))
    {
        field
            .click()
            .await
            .unwrap_or_else(|e| panic!("tick {label:?}: {e}"));
    }
}

/// The tenant page's form for a lifecycle action (`suspend`, ...).
fn lifecycle_form(action: &str) -> String {
    format!("form[action$=\"/lifecycle\"]:has(input[name=\"action\"][value=\"{action}\"])")
}

/// What the `<dd>` beside the `<dt>` reading `term` says (the first such).
async fn described(browser: &Browser, term: &str) -> Option<String> {
    let found = browser
        .execute(
            "const want = arguments[0];
             const dt = Array.from(document.querySelectorAll('dt'))
                 .find(d => d.innerText.trim() === want);
             const dd = dt && dt.nextElementSibling;
             return dd ? dd.innerText.trim() : null;",
            vec![json!(term)],
        )
        .await;
    found.as_str().map(str::to_owned)
}

/// The page's confirmation of what the last action did (`role="status"`).
async fn notice(browser: &Browser) -> Option<String> {
    browser
        .execute(
            "const n = document.querySelector('main [role=status]');
             return n ? n.innerText.trim() : null;",
            vec![],
        )
        .await
        .as_str()
        .map(str::to_owned)
}

/// The rows of the table captioned `caption`, each as column header →
/// the cell's text (`None`: no such table on the page).
async fn table(browser: &Browser, caption: &str) -> Option<Vec<BTreeMap<String, String>>> {
    let rows = browser
        .execute(
            "const want = arguments[0];
             const norm = s => s.replace(/\\s+/g, ' ').trim();
             const t = Array.from(document.querySelectorAll('table'))
                 .find(t => t.caption && norm(t.caption.innerText) === want);
             if (!t) return null;
             const heads = Array.from(t.querySelectorAll('thead th')).map(h => norm(h.innerText));
             return Array.from(t.querySelectorAll('tbody tr')).map(tr => {
                 const row = {};
                 Array.from(tr.children).forEach((c, i) => { row[heads[i] || String(i)] = norm(c.innerText); });
                 return row;
             });",
            vec![json!(caption)],
        )
        .await;
    if rows.is_null() {
        return None;
    }
    Some(serde_json::from_value(rows).expect("rows of strings"))
}

/// The tenant id at the end of the current URL's path
/// (`/console/tenants/<id>...`).
async fn tenant_in_path(browser: &Browser) -> TenantId {
    let path = browser.path().await;
    path.strip_prefix("/console/tenants/")
        .and_then(|rest| rest.split(['?', '/']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a tenant's page: {path}"))
}

/// Signs in as a person does: the sign-in page, the token pasted into
/// "Platform-admin token", "Sign in"; lands on the overview.
async fn sign_in(browser: &Browser, app: &TestApp) {
    open(browser, &app.url("/console/sign-in")).await;
    on_page(browser, "Sign in").await;
    browser
        .fill("Platform-admin token", &app.admin_token())
        .await;
    press_in(browser, "form.sign-in", "Sign in").await;
    assert_eq!(browser.path().await, "/console/overview");
    on_page(browser, "Overview").await;
    let text = browser.text().await;
    assert!(text.contains("Signed in as test-admin"), "{text}");
}

// --- The admin API, to check what the pages did -------------------------------

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, value) = app.admin_call(method.clone(), path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

async fn tenant(app: &TestApp, id: TenantId) -> Value {
    admin(app, Method::GET, &format!("/v1/admin/tenants/{id}"), None).await
}

async fn status_of(app: &TestApp, id: TenantId) -> String {
    tenant(app, id).await["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

async fn act(app: &TestApp, id: TenantId, action: &str, reason: &str) {
    admin(
        app,
        Method::POST,
        &format!("/v1/admin/tenants/{id}/{action}"),
        Some(json!({ "reason": reason })),
    )
    .await;
}

async fn add_clusters(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        let (status, body) = app
            .call(
                token,
                Method::POST,
                "/v1/clusters",
                Some(json!({ "name": format!("cluster-{i}"), "region": "eu-west-1" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Moves a deleted tenant's deletion `days` into the past (past its
/// retention period, due for the sweeper).
async fn deleted_days_ago(app: &TestApp, id: TenantId, days: i32) {
    use diesel_async::RunQueryDsl as _;
    app.db
        .platform()
        .run(|conn| {
            async move {
                diesel::sql_query(format!(
                    "UPDATE tenants SET deleted_at = now() - interval '{days} days' \
                     WHERE id = $1 AND status = 'deleted'"
                ))
                .bind::<SqlUuid, _>(id)
                .execute(conn)
                .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
        .expect("backdate the deletion");
}

/// A platform with some history, for the overview: an active tenant over
/// its cluster quota, a suspended one, one deleted long ago (due for the
/// sweeper) and one deleted today.
struct Platform {
    over_quota: TenantId,
    aged: TenantId,
    recent: TenantId,
}

async fn seed_platform(app: &TestApp) -> Platform {
    let (over_quota, token) = app
        .tenant_with("umbrella", json!({"max_clusters": 2}))
        .await;
    add_clusters(app, &token, 2).await;
    admin(
        app,
        Method::PATCH,
        &format!("/v1/admin/tenants/{over_quota}/quotas"),
        Some(json!({"limits": {"max_clusters": 1}})),
    )
    .await;
    let (suspended, _) = app.tenant_with("initech", json!({})).await;
    act(app, suspended, "suspend", "billing hold").await;
    let (aged, token) = app.tenant_with("globex", json!({})).await;
    add_clusters(app, &token, 1).await;
    act(app, aged, "delete", "contract ended").await;
    deleted_days_ago(app, aged, 100).await;
    let (recent, _) = app.tenant_with("hooli", json!({})).await;
    act(app, recent, "delete", "moved away").await;
    Platform {
        over_quota,
        aged,
        recent,
    }
}

/// Edit quotas: one cluster. The preview says clusters would be over the
/// limit, and nothing has changed yet; Apply saves it, and the tenant's
/// page shows clusters over their limit.
async fn lower_the_cluster_quota(app: &TestApp, browser: &Browser, acme: TenantId) {
    follow(browser, "Edit quotas").await;
    assert_eq!(
        browser.path().await,
        format!("/console/tenants/{acme}/quotas")
    );
    on_page(browser, "Quotas of acme").await;
    browser.fill("Clusters", "1").await;
    press_in(browser, "main", "Preview change").await;
    on_page(browser, "Preview: quotas of acme").await;
    let reached = browser
        .find("ul.reached")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        reached.contains("Clusters: 2 used, new limit 1") && reached.contains("over the limit"),
        "{reached}"
    );
    assert!(!reached.contains("Instances"), "{reached}");
    let quotas = admin(
        app,
        Method::GET,
        &format!("/v1/admin/tenants/{acme}/quotas"),
        None,
    )
    .await;
    assert_eq!(
        quotas["limits"]["max_clusters"], 2,
        "a preview changes nothing: {quotas}"
    );
    press_in(browser, "main", "Apply").await;
    assert_eq!(tenant_in_path(browser).await, acme);
    on_page(browser, "Tenant acme").await;
    let saved = notice(browser).await;
    assert!(
        saved.as_deref().is_some_and(|n| n.starts_with("Quotas")),
        "the page confirms the change: {saved:?}"
    );
    let quotas = admin(
        app,
        Method::GET,
        &format!("/v1/admin/tenants/{acme}/quotas"),
        None,
    )
    .await;
    assert_eq!(quotas["limits"]["max_clusters"], 1, "{quotas}");
    assert_eq!(quotas["over_limit"], json!(["clusters"]), "{quotas}");
    let limits = table(browser, "Limits beside usage")
        .await
        .expect("the quotas table");
    let clusters = limits
        .iter()
        .find(|r| r.get("Resource").map(String::as_str) == Some("Clusters"))
        .expect("a clusters row");
    assert_eq!(
        clusters.get("State").map(String::as_str),
        Some("over limit"),
        "{limits:?}"
    );
}

// --- 1. The README's walk-through -----------------------------------------------------

/// The README's lifecycle walk-through, in the browser, as a new operator
/// does it: sign in, create a tenant with an initial quota, lower a quota
/// after a preview of what becomes over-limit, suspend (the tenant's API
/// answers 403 tenant_suspended) and activate it, delete it (a mistyped
/// slug is refused beside the field and changes nothing) and restore it,
/// preview a sweep (nothing is removed), and read every action back in
/// the audit log with the signed-in admin as the actor and the reasons
/// given. Every page passes axe-core.
#[tokio::test]
async fn an_operator_walks_the_readme_lifecycle_in_the_browser() {
    let app = TestApp::spawn().await;
    let platform = seed_platform(&app).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;

    // Tenants → New tenant: slug, name, an initial quota.
    follow(&browser, "Tenants").await;
    on_page(&browser, "Tenants").await;
    follow(&browser, "New tenant").await;
    assert_eq!(browser.path().await, "/console/tenants/new");
    on_page(&browser, "New tenant").await;
    browser.fill("Slug", "acme").await;
    browser.fill("Name", "Acme Corp").await;
    browser.fill("Instances", "50").await;
    browser.fill("Clusters", "2").await;
    press_in(&browser, "main", "Create tenant").await;
    let acme = tenant_in_path(&browser).await;
    on_page(&browser, "Tenant acme").await;
    assert_eq!(notice(&browser).await.as_deref(), Some("Tenant created."));
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("active")
    );
    let created = tenant(&app, acme).await;
    assert_eq!(created["slug"], "acme");
    assert_eq!(created["name"], "Acme Corp");
    let quotas = admin(
        &app,
        Method::GET,
        &format!("/v1/admin/tenants/{acme}/quotas"),
        None,
    )
    .await;
    assert_eq!(quotas["limits"]["max_instances"], 50, "{quotas}");
    assert_eq!(quotas["limits"]["max_clusters"], 2, "{quotas}");

    // Its people use it: two clusters.
    let token = app.tenant_token(acme);
    add_clusters(&app, &token, 2).await;

    lower_the_cluster_quota(&app, &browser, acme).await;

    // Suspend: a reason and the confirmation. The tenant's API refuses it.
    let suspend = lifecycle_form("suspend");
    fill_in(&browser, &suspend, "Reason", "billing hold").await;
    tick_in(&browser, &suspend, "I understand").await;
    press_in(&browser, &suspend, "Suspend tenant").await;
    on_page(&browser, "Tenant acme").await;
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("suspended")
    );
    assert_eq!(notice(&browser).await.as_deref(), Some("Tenant suspended."));
    assert_eq!(status_of(&app, acme).await, "suspended");
    let (status, problem) = app.call(&token, Method::GET, "/v1/clusters", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "tenant_suspended", "{problem}");

    // Activate: it answers again, its data untouched.
    let activate = lifecycle_form("activate");
    fill_in(&browser, &activate, "Reason", "paid up").await;
    tick_in(&browser, &activate, "I understand").await;
    press_in(&browser, &activate, "Activate tenant").await;
    on_page(&browser, "Tenant acme").await;
    assert_eq!(notice(&browser).await.as_deref(), Some("Tenant activated."));
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("active")
    );
    assert_eq!(status_of(&app, acme).await, "active");
    let (status, clusters) = app.call(&token, Method::GET, "/v1/clusters", None).await;
    assert_eq!(status, StatusCode::OK, "{clusters}");
    assert_eq!(
        clusters["items"].as_array().map(Vec::len),
        Some(2),
        "{clusters}"
    );
    browser.screenshot("console-tenant").await;

    // Delete, with the slug mistyped: refused beside the field, nothing
    // changed.
    let delete = lifecycle_form("delete");
    fill_in(&browser, &delete, "Reason", "offboarding").await;
    fill_in(
        &browser,
        &delete,
        "Type the slug (acme) to confirm",
        "acme-corp",
    )
    .await;
    tick_in(&browser, &delete, "I understand").await;
    press_and_confirm(&browser, &delete, "Delete tenant", "Delete tenant acme?").await;
    on_page(&browser, "Tenant acme").await;
    assert_eq!(notice(&browser).await, None, "nothing was done");
    let confirm = field_in(&browser, &delete, "Type the slug (acme) to confirm").await;
    assert_eq!(
        confirm.attr("aria-invalid").await.ok().flatten().as_deref(),
        Some("true")
    );
    let error_id = confirm
        .attr("aria-describedby")
        .await
        .ok()
        .flatten()
        .expect("the field points at its error");
    let error = browser
        .find(&format!("{delete} #{error_id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        error.contains("acme"),
        "the error beside the field: {error}"
    );
    assert_eq!(status_of(&app, acme).await, "active");
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("active")
    );

    // Delete, with the slug: deleted, with its purge date.
    fill_in(&browser, &delete, "Type the slug (acme) to confirm", "acme").await;
    tick_in(&browser, &delete, "I understand").await;
    press_and_confirm(&browser, &delete, "Delete tenant", "Delete tenant acme?").await;
    on_page(&browser, "Tenant acme").await;
    let deleted = notice(&browser).await;
    assert!(
        deleted
            .as_deref()
            .is_some_and(|n| n.starts_with("Tenant deleted.")),
        "{deleted:?}"
    );
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("deleted")
    );
    let purge = described(&browser, "Purge after")
        .await
        .expect("the purge date");
    assert!(
        purge.contains("UTC") && purge.contains("in 90 days"),
        "{purge}"
    );
    let deleted = tenant(&app, acme).await;
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["purge_after"].is_string(), "{deleted}");

    // Restore: back, as archived.
    let restore = lifecycle_form("restore");
    fill_in(&browser, &restore, "Reason", "signed again").await;
    tick_in(&browser, &restore, "I understand").await;
    press_in(&browser, &restore, "Restore tenant").await;
    on_page(&browser, "Tenant acme").await;
    let restored = notice(&browser).await;
    assert!(
        restored
            .as_deref()
            .is_some_and(|n| n.starts_with("Tenant restored")),
        "{restored:?}"
    );
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("archived")
    );
    assert_eq!(status_of(&app, acme).await, "archived");

    // Retention → Sweep now: the dry run lists the tenant past its period
    // (and not the restored one, nor the one deleted today) and removes
    // nothing.
    follow(&browser, "Retention").await;
    on_page(&browser, "Retention").await;
    let waiting = table(
        &browser,
        "Deleted tenants awaiting their purge, the first to go first",
    )
    .await
    .expect("the deleted tenants");
    let slugs: Vec<&str> = waiting
        .iter()
        .filter_map(|r| r.get("Tenant"))
        .map(String::as_str)
        .collect();
    assert_eq!(slugs, ["globex", "hooli"], "{waiting:?}");
    press_in(&browser, "main", "Sweep now (preview)").await;
    on_page(&browser, "Sweep preview").await;
    assert!(
        browser
            .text()
            .await
            .contains("A dry run: nothing was removed.")
    );
    let would = table(&browser, "Tenants a sweep now would purge")
        .await
        .expect("what a sweep would purge");
    let slugs: Vec<&str> = would
        .iter()
        .filter_map(|r| r.get("Tenant"))
        .map(String::as_str)
        .collect();
    assert_eq!(slugs, ["globex"], "{would:?}");
    let globex = tenant(&app, platform.aged).await;
    assert!(
        globex["purged_at"].is_null(),
        "a dry run purges nothing: {globex}"
    );
    let runs = admin(&app, Method::GET, "/v1/admin/retention/runs", None).await;
    assert_eq!(runs["items"], json!([]), "{runs}");

    // Audit log, filtered by the tenant: each action, by test-admin, with
    // its reason; the refused delete left nothing.
    follow(&browser, "Audit log").await;
    on_page(&browser, "Audit log").await;
    browser.fill("Tenant", "acme").await;
    press_in(&browser, "form.filters", "Filter").await;
    assert!(
        browser
            .path()
            .await
            .starts_with("/console/audit?tenant=acme")
    );
    on_page(&browser, "Audit log").await;
    let entries = table(&browser, "Audit entries, newest first")
        .await
        .expect("audit entries");
    for entry in &entries {
        assert_eq!(entry.get("Tenant"), Some(&acme.to_string()), "{entries:#?}");
        assert_eq!(
            entry.get("Actor").map(String::as_str),
            Some("test-admin"),
            "{entries:#?}"
        );
    }
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e.get("Action").map_or("", String::as_str),
                e.get("Reason").map_or("", String::as_str),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("tenant.created", ""),
            ("quota.updated", ""),
            ("tenant.suspend", "billing hold"),
            ("tenant.activate", "paid up"),
            ("tenant.delete", "offboarding"),
            ("tenant.restore", "signed again"),
        ],
        "{entries:#?}"
    );

    // The overview: tenants in every status, the one over its quota, the
    // pending purges.
    follow(&browser, "Overview").await;
    on_page(&browser, "Overview").await;
    let over = table(
        &browser,
        "Tenants at or over a quota, highest usage/limit first",
    )
    .await
    .expect("the tenants over quota");
    let over: Vec<&str> = over
        .iter()
        .filter_map(|r| r.get("Tenant"))
        .map(String::as_str)
        .collect();
    // Each with the status it has now (acme: archived, after its
    // restore).
    assert!(
        over.contains(&"umbrella active") && over.contains(&"acme archived"),
        "{over:?}"
    );
    let pending = table(&browser, "The next tenants to be purged")
        .await
        .expect("pending purges");
    assert_eq!(pending.len(), 2, "{pending:?}");
    let by_status = browser
        .execute(
            "return Array.from(document.querySelectorAll('ul.cards li'))
                 .map(li => li.innerText.replace(/\\s+/g, ' ').trim());",
            vec![],
        )
        .await;
    assert_eq!(
        by_status,
        json!(["1 active", "1 suspended", "1 archived", "2 deleted"]),
        "tenants by status"
    );
    assert_eq!(status_of(&app, platform.over_quota).await, "active");
    assert_eq!(status_of(&app, platform.recent).await, "deleted");
    browser.screenshot("console-overview").await;
    browser
        .screenshot("an_operator_walks_the_readme_lifecycle_in_the_browser")
        .await;
}

// --- 2. Keyboard only, at a phone's width ---------------------------------------------------

/// What has the focus, and in which form (its `action` field's value).
async fn focused_form_action(browser: &Browser) -> Option<String> {
    browser
        .execute(
            "const f = document.activeElement && document.activeElement.form;
             const a = f && f.querySelector('input[name=action]');
             return a ? a.value : null;",
            vec![],
        )
        .await
        .as_str()
        .map(str::to_owned)
}

/// The page is no wider than the window (tables scroll in their own box).
async fn fits_the_width(browser: &Browser) {
    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await;
    let (page, window) = (widths[0].as_u64(), widths[1].as_u64());
    assert!(
        page.is_some() && page <= window,
        "{} is wider than the window: {widths}",
        browser.url().await
    );
}

/// Presses Enter on the focused link or button and waits for the page it
/// opens.
async fn enter(browser: &Browser, what: &str) {
    mark_page(browser).await;
    browser.press_enter().await;
    wait_for_new_page(browser, what).await;
}

/// At a phone's width and with the keyboard only (Tab, typing, Enter and
/// the space bar on a checkbox, no click): sign in, open a tenant from the
/// list, suspend it. Every page passes axe-core and fits the width.
#[tokio::test]
async fn a_keyboard_user_on_a_phone_signs_in_and_suspends_a_tenant() {
    let app = TestApp::spawn().await;
    let (id, _) = app.tenant_with("kbd-co", json!({})).await;
    let browser = Browser::start().await;
    browser.phone().await;
    let width = browser.execute("return window.innerWidth;", vec![]).await;
    assert!(
        width.as_u64().is_some_and(|w| w <= u64::from(PHONE.0)),
        "{width}"
    );

    open(&browser, &app.url("/console/sign-in")).await;
    on_page(&browser, "Sign in").await;
    fits_the_width(&browser).await;
    browser
        .tab_to("textarea \"Platform-admin token\"", 10)
        .await;
    browser.type_text(&app.admin_token()).await;
    browser.tab_to("button \"Sign in\"", 3).await;
    enter(&browser, "the overview").await;
    assert_eq!(browser.path().await, "/console/overview");
    on_page(&browser, "Overview").await;
    fits_the_width(&browser).await;

    browser.tab_to("a \"Tenants\"", 15).await;
    enter(&browser, "the tenants").await;
    on_page(&browser, "Tenants").await;
    fits_the_width(&browser).await;
    browser.tab_to("a \"kbd-co\"", 30).await;
    enter(&browser, "the tenant's page").await;
    assert_eq!(tenant_in_path(&browser).await, id);
    on_page(&browser, "Tenant kbd-co").await;
    fits_the_width(&browser).await;

    // The first "Reason" on the page is the suspend form's.
    browser.tab_to("input \"Reason\"", 40).await;
    assert_eq!(
        focused_form_action(&browser).await.as_deref(),
        Some("suspend")
    );
    browser.type_text("keyboard hold").await;
    browser.tab_to("input \"I understand\"", 3).await;
    assert_eq!(
        focused_form_action(&browser).await.as_deref(),
        Some("suspend")
    );
    browser.type_text(" ").await;
    browser.tab_to("button \"Suspend tenant\"", 3).await;
    enter(&browser, "the suspended tenant").await;
    assert!(
        browser.path().await.ends_with("?notice=suspend"),
        "{}",
        browser.text().await
    );
    on_page(&browser, "Tenant kbd-co").await;
    fits_the_width(&browser).await;
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("suspended")
    );
    assert_eq!(status_of(&app, id).await, "suspended");
    browser
        .screenshot("a_keyboard_user_on_a_phone_signs_in_and_suspends_a_tenant")
        .await;
}

// --- 3. Refusals -----------------------------------------------------------------

/// A tenant's own token pasted at sign-in: refused with the reason beside
/// the field (`aria-invalid`, `aria-describedby`), and no session cookie.
#[tokio::test]
async fn a_tenant_token_is_refused_at_sign_in_beside_the_field() {
    let app = TestApp::spawn().await;
    let (id, token) = app.tenant_with("acme", json!({})).await;
    let browser = Browser::start().await;

    open(&browser, &app.url("/console/sign-in")).await;
    on_page(&browser, "Sign in").await;
    browser.fill("Platform-admin token", &token).await;
    press_in(&browser, "form.sign-in", "Sign in").await;
    on_page(&browser, "Sign in").await;
    let field = browser.field("Platform-admin token").await;
    assert_eq!(
        field.attr("aria-invalid").await.ok().flatten().as_deref(),
        Some("true")
    );
    let described_by = field
        .attr("aria-describedby")
        .await
        .ok()
        .flatten()
        .expect("the field points at its error");
    assert!(
        described_by.split(' ').any(|id| id == "credential-error"),
        "{described_by}"
    );
    let error = browser
        .find("#credential-error")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(error.contains("not a platform-admin token"), "{error}");
    assert!(browser.cookie("tenantry_console").await.is_none());

    // Still no way in, and the tenant is as it was.
    open(&browser, &app.url("/console/overview")).await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in?next=%2Fconsole%2Foverview"
    );
    on_page(&browser, "Sign in").await;
    assert_eq!(status_of(&app, id).await, "active");
    browser
        .screenshot("a_tenant_token_is_refused_at_sign_in_beside_the_field")
        .await;
}

/// 43 random URL-safe characters: the shape of a real session token.
fn forged_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// No session, or a forged session cookie of the right shape: every page
/// sends the browser to sign in (and back there after).
#[tokio::test]
async fn no_session_or_a_forged_one_lands_on_sign_in() {
    let app = TestApp::spawn().await;
    let (id, _) = app.tenant_with("acme", json!({})).await;
    let browser = Browser::start().await;

    open(&browser, &app.url("/console/overview")).await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in?next=%2Fconsole%2Foverview"
    );
    on_page(&browser, "Sign in").await;

    let forged = forged_token();
    assert_eq!(forged.len(), 43);
    browser
        .add_cookie("tenantry_console", &forged, "/console")
        .await;
    for page in [
        "/console/overview".to_owned(),
        format!("/console/tenants/{id}"),
    ] {
        open(&browser, &app.url(&page)).await;
        assert_eq!(
            browser.path().await,
            format!("/console/sign-in?next={}", page.replace('/', "%2F")),
            "{page} with a forged session"
        );
        on_page(&browser, "Sign in").await;
        let held = browser
            .cookie("tenantry_console")
            .await
            .expect("the forged cookie");
        assert_eq!(held.value, forged, "the browser sent the forged cookie");
    }
    assert!(!browser.text().await.contains("acme"));
    browser
        .screenshot("no_session_or_a_forged_one_lands_on_sign_in")
        .await;
}

/// A session unused for longer than `idle_timeout` has ended: the next
/// page is the sign-in page.
#[tokio::test]
async fn an_expired_session_lands_on_sign_in() {
    let app = TestApp::builder()
        .console(ConsoleSettings {
            idle_timeout: Duration::from_secs(1),
            ..ConsoleSettings::default()
        })
        .spawn()
        .await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;
    assert!(browser.cookie("tenantry_console").await.is_some());

    tokio::time::sleep(Duration::from_secs(2)).await;
    open(&browser, &app.url("/console/tenants")).await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in?next=%2Fconsole%2Ftenants"
    );
    on_page(&browser, "Sign in").await;
    browser
        .screenshot("an_expired_session_lands_on_sign_in")
        .await;
}

/// A tiny web server of another site: answers every request with `page`.
/// Stops when the test ends (the runtime goes), serving at most 50 requests.
async fn attacker_site(page: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the attacker's site");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        for _ in 0..50 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                // The request's head, bounded; its content does not matter.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await
                    {
                        Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// A page on another site that posts "suspend" to the console, with the
/// victim's real CSRF token even (say it leaked): while the browser holds
/// a live console session, the post is refused and the tenant stays
/// active. From `localhost` (another site: the SameSite=Strict cookie is
/// not even sent) and from `127.0.0.1` on another port (the same site,
/// another origin: the cookie is sent, `Sec-Fetch-Site`/`Origin` refuse
/// it).
#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (id, _) = app.tenant_with("acme", json!({})).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;
    open(&browser, &app.url(&format!("/console/tenants/{id}"))).await;
    on_page(&browser, "Tenant acme").await;
    let csrf = browser
        .find(&format!("{} input[name=csrf]", lifecycle_form("suspend")))
        .await
        .attr("value")
        .await
        .ok()
        .flatten()
        .expect("the form's CSRF token");

    let target = app.url(&format!("/console/tenants/{id}/lifecycle"));
    let attack = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Win a prize</title></head>\
         <body><main><h1>Win a prize</h1>\
         <form method=\"post\" action=\"{target}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"action\" value=\"suspend\">\
         <input type=\"hidden\" name=\"reason\" value=\"pwned\">\
         <input type=\"hidden\" name=\"confirm_action\" value=\"yes\">\
         <button type=\"submit\">Claim it</button></form></main></body></html>"
    );
    let port = attacker_site(attack).await;
    for site in [
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        open(&browser, &site).await;
        on_page(&browser, "Win a prize").await;
        press_in(&browser, "main", "Claim it").await;
        assert_eq!(browser.url().await, target, "from {site}");
        on_page(&browser, "Request refused").await;
        let text = browser.text().await;
        assert!(text.contains("nothing was changed"), "from {site}: {text}");
        assert_eq!(status_of(&app, id).await, "active", "from {site}");
    }
    let audit = admin(
        &app,
        Method::GET,
        &format!("/v1/admin/audit?tenant_id={id}"),
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(!actions.contains(&"tenant.suspend"), "{audit}");

    // The session itself is intact: the operator's own page still works.
    open(&browser, &app.url(&format!("/console/tenants/{id}"))).await;
    on_page(&browser, "Tenant acme").await;
    assert_eq!(
        described(&browser, "Status").await.as_deref(),
        Some("active")
    );
    browser
        .screenshot("a_cross_site_form_post_is_refused_and_changes_nothing")
        .await;
}
