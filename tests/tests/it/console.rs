//! The operator console's sign-in, session and request checks, over plain
//! HTTP against the real server (the browser tests drive its pages:
//! `console_browser`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tenantry_api::console::ConsoleSettings;
use tenantry_core::Scope;
use tenantry_tests::TestApp;
use tenantry_tests::console::ConsoleClient;

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let (status, body) = app
        .admin_call(Method::GET, "/v1/admin/audit?limit=100", None)
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
            )
        })
        .collect()
}

#[tokio::test]
async fn signing_in_with_a_platform_admin_token_starts_a_session_in_an_http_only_strict_cookie() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    let answer = console.sign_in(&app.admin_token()).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some("/console/overview"));
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tenantry_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    // Plain HTTP here: not Secure (it would never come back).
    assert!(!cookie.contains("Secure"), "{cookie}");

    let overview = console.get("/console/overview").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("Signed in as"), "{}", overview.body);
    assert!(overview.body.contains("test-admin"));
    let csp = overview.headers["content-security-policy"]
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(overview.headers["referrer-policy"], "no-referrer");
    assert_eq!(overview.headers["x-frame-options"], "DENY");
    assert_eq!(overview.headers["cache-control"], "no-store");
    assert!(
        !overview.body.contains("<script>") && !overview.body.contains(" style="),
        "no inline scripts or styles: {}",
        overview.body
    );
    assert!(
        audit_actions(&app)
            .await
            .contains(&("console.signed_in".to_owned(), "test-admin".to_owned()))
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_console_is_reached_over_tls() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    let form = console.get("/console/sign-in").await;
    let pre = form
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tenantry_console_sign_in="))
        .unwrap();
    let pre_value = pre.split(';').next().unwrap().to_owned();
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/console/sign-in", app.address))
        .header("cookie", pre_value)
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf", form.hidden("csrf").unwrap().as_str()),
            ("credential", app.admin_token().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tenantry_console="))
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn pages_without_a_session_send_the_browser_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    let page = console.get("/console/tenants?status=active").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        Some("/console/sign-in?next=%2Fconsole%2Ftenants%3Fstatus%3Dactive")
    );
    let sign_in = console.get(page.location().unwrap()).await;
    assert_eq!(sign_in.status, StatusCode::OK);
    assert_eq!(
        sign_in.hidden("next").as_deref(),
        Some("/console/tenants?status=active")
    );
}

#[tokio::test]
async fn a_tenant_token_or_a_forged_one_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let mut console = ConsoleClient::new(&app);
    let refused = console.sign_in(&app.tenant_token(tenant)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("not a platform-admin token"));
    assert!(refused.body.contains(r#"id="credential-error""#));
    assert!(console.session.is_none());

    let forged = format!("{}x", app.admin_token());
    let refused = console.sign_in(&forged).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("not valid here"));
    assert!(console.session.is_none());

    let other_issuer = tenantry_tests::TestApp::spawn().await;
    let refused = console.sign_in(&other_issuer.admin_token()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        !audit_actions(&app)
            .await
            .iter()
            .any(|(a, _)| a == "console.signed_in")
    );
}

#[tokio::test]
async fn a_forged_session_cookie_is_no_session() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    console.session = Some("A".repeat(43));
    let page = console.get("/console/overview").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    console.csrf = Some("whatever".to_owned());
    let posted = console.post("/console/sign-out", &[]).await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(posted.body.contains("session has ended"), "{}", posted.body);
    assert!(
        posted.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn an_idle_session_ends_and_so_does_one_past_its_absolute_expiry() {
    let app = TestApp::builder()
        .console(ConsoleSettings {
            idle_timeout: Duration::from_secs(1),
            ..ConsoleSettings::default()
        })
        .spawn()
        .await;
    let mut idle = ConsoleClient::signed_in(&app).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        idle.get("/console/overview").await.status,
        StatusCode::SEE_OTHER
    );

    let app = TestApp::builder()
        .console(ConsoleSettings {
            absolute_timeout: Duration::from_secs(2),
            ..ConsoleSettings::default()
        })
        .spawn()
        .await;
    let mut busy = ConsoleClient::signed_in(&app).await;
    // Used all along, it still ends at its absolute expiry.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = busy.get("/console/overview").await;
    }
    assert_eq!(
        busy.get("/console/overview").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_session_never_outlives_the_token_it_was_exchanged_for() {
    let app = TestApp::spawn().await;
    let short = app
        .issuer
        .sign(
            "short-lived",
            None,
            &[Scope::PlatformAdmin].into_iter().collect(),
            Duration::from_secs(4),
        )
        .unwrap();
    let mut console = ConsoleClient::new(&app);
    assert_eq!(console.sign_in(&short).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        console.get("/console/overview").await.status,
        StatusCode::OK
    );
    // `exp` is whole seconds: the session has 3 to 4 s.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(
        console.get("/console/overview").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let csrf = console.csrf.clone().unwrap();
    for headers in [
        &[("origin", "http://evil.example")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("origin", "null")][..],
    ] {
        let posted = console
            .post_raw("/console/sign-out", &[("csrf", &csrf)], headers)
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            posted.body.contains("nothing was changed"),
            "{}",
            posted.body
        );
    }
    // Still signed in: the sign-out never ran.
    assert_eq!(
        console.get("/console/overview").await.status,
        StatusCode::OK
    );
    // What Chromium sends for the console's own form under
    // `Referrer-Policy: no-referrer`: `Origin: null`, but same-origin.
    let posted = console
        .post_raw(
            "/console/sign-out",
            &[("csrf", &csrf)],
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
}

#[tokio::test]
async fn a_form_without_its_sessions_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    for fields in [&[][..], &[("csrf", "forged")][..]] {
        let posted = console.post_raw("/console/sign-out", fields, &[]).await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN);
    }
    // Another session's token does not do either.
    let other = ConsoleClient::signed_in(&app).await;
    let posted = console
        .post_raw(
            "/console/sign-out",
            &[("csrf", other.csrf.as_deref().unwrap())],
            &[],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert_eq!(
        console.get("/console/overview").await.status,
        StatusCode::OK
    );

    // The sign-in form has its own: posting it without is refused.
    let mut fresh = ConsoleClient::new(&app);
    let posted = fresh
        .post_raw(
            "/console/sign-in",
            &[("credential", &app.admin_token())],
            &[],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(fresh.session.is_none());
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let stolen = console.session.clone();
    let out = console.post("/console/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/console/sign-in?signed_out=1"));
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("tenantry_console=;") && c.contains("Max-Age=0"))
    );
    // A copy of the cookie kept from before is worth nothing now.
    console.session = stolen;
    assert_eq!(
        console.get("/console/overview").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(
        audit_actions(&app)
            .await
            .contains(&("console.signed_out".to_owned(), "test-admin".to_owned()))
    );
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_client_address() {
    let app = TestApp::builder()
        .console(ConsoleSettings {
            sign_in_per_minute: 3,
            ..ConsoleSettings::default()
        })
        .spawn()
        .await;
    let mut console = ConsoleClient::new(&app);
    for _ in 0..3 {
        assert_eq!(
            console.sign_in("not-a-token").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = console.sign_in(&app.admin_token()).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.body.contains("too many sign-in attempts"));
    assert!(console.session.is_none());
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let app = TestApp::builder()
        .console(ConsoleSettings {
            enabled: false,
            ..ConsoleSettings::default()
        })
        .spawn()
        .await;
    let mut console = ConsoleClient::new(&app);
    let page = console.get("/console/sign-in").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
}

#[tokio::test]
async fn unknown_console_pages_are_an_html_404_in_the_shell() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let page = console.get("/console/no-such-page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("<h1>Not found</h1>"), "{}", page.body);
    assert!(page.body.contains(r#"aria-label="Console""#));
}

/// Hostile values for every field and query parameter the console reads.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "-1",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "\u{0}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%",
    "_",
    "../../etc/passwd",
    "\u{202e}evil",
    "on",
    "yes",
    "owner",
];

const FIELDS: &[&str] = &[
    "action",
    "reason",
    "confirm",
    "confirm_action",
    "hold",
    "preview",
    "dry_run",
    "slug",
    "name",
    "account",
    "plan",
    "subject",
    "role",
    "tenant",
    "max_users",
    "max_api_keys",
    "max_clusters",
    "max_instances",
    "max_cpu_cores",
    "max_memory_gb",
    "max_storage_gb",
    "requests_per_second",
    "burst",
    "next",
    "credential",
];

fn assert_a_console_answer(page: &tenantry_tests::console::Page, what: &str) {
    assert!(
        page.status.is_success() || page.status.is_redirection() || page.status.is_client_error(),
        "{what}: {} {}",
        page.status,
        page.body
    );
    let content_type = page
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        page.status.is_redirection()
            || content_type.starts_with("text/html")
            || content_type.starts_with("application/x-ndjson"),
        "{what}: {content_type}"
    );
    for leak in [
        "SQL",
        "syntax error",
        "panicked",
        "diesel",
        "postgres",
        "<script>alert",
    ] {
        assert!(
            !page.body.contains(leak),
            "{what} leaks {leak}: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn no_console_form_or_query_answers_5xx_or_leaks_whatever_it_is_sent() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("hostile").await;
    let mut console = ConsoleClient::signed_in(&app).await;
    let id = tenant.to_string();
    let gets = [
        "/console/overview".to_owned(),
        "/console/tenants".to_owned(),
        "/console/tenants/new".to_owned(),
        format!("/console/tenants/{id}"),
        format!("/console/tenants/{id}/quotas"),
        format!("/console/tenants/{id}/members"),
        format!("/console/tenants/{id}/export"),
        "/console/accounts".to_owned(),
        "/console/plans".to_owned(),
        "/console/retention".to_owned(),
        "/console/audit".to_owned(),
    ];
    let params = [
        "status",
        "q",
        "cursor",
        "deleted_cursor",
        "tenant",
        "actor",
        "action",
        "from",
        "to",
        "notice",
    ];
    for path in &gets {
        for value in HOSTILE {
            let query: String = params
                .iter()
                .map(|p| {
                    format!(
                        "{p}={}&",
                        tenantry_api::console::layout::query_escape(value)
                    )
                })
                .collect();
            let page = console.get(&format!("{path}?{query}")).await;
            assert_a_console_answer(&page, &format!("GET {path} with {value:?}"));
        }
        // A parameter twice, and an unreadable escape.
        let page = console
            .get(&format!("{path}?status=a&status=b&q=%ZZ"))
            .await;
        assert_a_console_answer(&page, &format!("GET {path} with repeated parameters"));
    }
    for key in [
        "nope",
        "00000000-0000-0000-0000-000000000000",
        "%00",
        &"x".repeat(3000),
    ] {
        let page = console.get(&format!("/console/tenants/{key}")).await;
        assert_a_console_answer(&page, &format!("tenant page {key:?}"));
    }
    let posts = [
        "/console/tenants".to_owned(),
        format!("/console/tenants/{id}/lifecycle"),
        format!("/console/tenants/{id}/legal-hold"),
        format!("/console/tenants/{id}/quotas"),
        format!("/console/tenants/{id}/members"),
        format!("/console/tenants/{id}/members/nope/role"),
        format!("/console/tenants/{id}/members/nope/remove"),
        "/console/accounts".to_owned(),
        "/console/plans".to_owned(),
        "/console/plans/nope".to_owned(),
        "/console/plans/nope/tenants".to_owned(),
        "/console/retention/sweep".to_owned(),
    ];
    for path in &posts {
        for value in HOSTILE {
            let fields: Vec<(&str, &str)> = FIELDS.iter().map(|f| (*f, *value)).collect();
            let page = console.post(path, &fields).await;
            assert_a_console_answer(&page, &format!("POST {path} with {value:?}"));
        }
    }
    // Whatever was sent, the tenant is still there and active.
    let (status, body) = app
        .admin_call(Method::GET, &format!("/v1/admin/tenants/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "active", "{body}");
}
