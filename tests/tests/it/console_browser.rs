//! The console in a real headless Chromium (tests/src/browser.rs, through
//! chromedriver) against the real server and database, and the browser's
//! own helpers on pages the tests write. Tests
//! named `console_browser*::` run in nextest's `browser` group (at most two
//! browsers at once, .config/nextest.toml); each saves its last page under
//! `$CARGO_TARGET_DIR/console-screenshots/`.

use futures_util::FutureExt as _;
use tenantry_tests::TestApp;
use tenantry_tests::browser::{Browser, PHONE, data_url, is_png};

/// An operator signs in by pasting a platform-admin token, lands on the
/// overview, and the session lives in a cookie the page's scripts cannot
/// read and no other site's request carries; the page passes axe-core at a
/// laptop's and a phone's width; the navigation works from the keyboard.
#[tokio::test]
async fn sign_in_lands_on_the_overview_in_a_strict_session() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;

    // No session: a page sends the browser to the sign-in form, which
    // brings it back there.
    browser.goto(&app.url("/console/overview")).await;
    assert_eq!(
        browser.path().await,
        "/console/sign-in?next=%2Fconsole%2Foverview"
    );
    assert_eq!(browser.h1().await, "Sign in");
    browser.assert_accessible().await;

    browser
        .fill("Platform-admin token", &app.admin_token())
        .await;
    browser.click_button("Sign in").await;
    browser
        .wait_for_path("the overview", |path| path == "/console/overview")
        .await;
    assert_eq!(browser.h1().await, "Overview");
    let text = browser.text().await;
    assert!(text.contains("Signed in as"), "{text}");
    assert!(text.contains("test-admin"), "{text}");

    let session = browser
        .cookie("tenantry_console")
        .await
        .expect("a session cookie");
    assert!(session.http_only, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"), "{session:?}");
    assert_eq!(session.path.as_deref(), Some("/console"), "{session:?}");
    assert!(!session.secure, "plain HTTP: {session:?}");
    assert_eq!(
        browser.execute("return document.cookie;", vec![]).await,
        "",
        "the page's scripts cannot read the session"
    );

    browser.assert_accessible().await;
    browser.phone().await;
    browser.assert_accessible().await;
    browser.screenshot("console_browser_overview_phone").await;
    browser.laptop().await;

    // Without a mouse: from the top of the page, Tab reaches the
    // navigation's Overview link and Enter follows it.
    browser.goto(&app.url("/console/overview")).await;
    browser.tab_to("a \"Overview\"", 10).await;
    browser.press_enter().await;
    browser
        .wait_for_path("the overview again", |path| path == "/console/overview")
        .await;
    assert_eq!(browser.h1().await, "Overview");
    browser.screenshot("console_browser_overview").await;
}

/// A page of the real server (the API reference, which renders itself with
/// its own script): the browser loads it, runs its JavaScript, holds the
/// cookies a test sets and removes, narrows to a phone's width, and saves
/// a screenshot.
#[tokio::test]
async fn the_browser_drives_a_page_of_the_real_server() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;

    browser.goto(&app.url("/docs/")).await;
    assert_eq!(browser.path().await, "/docs/");
    // Rendered by swagger-ui's script from /openapi.json: JavaScript ran.
    browser.wait_for(".swagger-ui .info .title").await;
    assert!(
        browser.text().await.contains("Tenantry"),
        "{}",
        browser.text().await
    );

    // Cookies: what a forged-session test needs (set, read back with its
    // attributes, delete).
    assert!(browser.cookie("tenantry_probe").await.is_none());
    browser.add_cookie("tenantry_probe", "forged", "/").await;
    let cookie = browser
        .cookie("tenantry_probe")
        .await
        .expect("the cookie just set");
    assert_eq!(cookie.value, "forged");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    assert_eq!(cookie.path.as_deref(), Some("/"), "{cookie:?}");
    // A cookie HttpOnly hides from the page's scripts, not from the driver.
    assert_eq!(browser.execute("return document.cookie;", vec![]).await, "");
    browser.delete_cookie("tenantry_probe").await;
    assert!(browser.cookie("tenantry_probe").await.is_none());

    // A phone's width: the page lays out in it.
    browser.phone().await;
    let width = browser.execute("return window.innerWidth;", vec![]).await;
    let width = width.as_u64().expect("a number");
    assert!(width > 300 && width <= u64::from(PHONE.0), "{width}");

    let shot = browser.screenshot("console_browser_docs").await;
    assert!(is_png(&shot), "{}", shot.display());
}

/// axe-core, injected into the page, finds what a person with a screen
/// reader would miss, and `assert_accessible` refuses it listing the rules
/// and nodes; a page without such faults passes.
#[tokio::test]
async fn axe_reports_serious_violations_and_passes_a_clean_page() {
    let browser = Browser::start().await;

    browser
        .goto(&data_url(
            "<!doctype html><html><head><title>Faulty</title></head><body>\
             <img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\
             <input id=\"nameless\" type=\"text\">\
             </body></html>",
        ))
        .await;
    let violations = browser.axe().await;
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    for expected in ["image-alt", "label", "html-has-lang"] {
        assert!(ids.contains(&expected), "{expected} not in {violations:#?}");
    }
    let label = violations
        .iter()
        .find(|v| v.id == "label")
        .expect("the label rule");
    assert!(label.is_serious(), "{label}");
    assert_eq!(label.targets, ["#nameless"], "{label}");
    let refused = std::panic::AssertUnwindSafe(browser.assert_accessible())
        .catch_unwind()
        .await
        .expect_err("a page with an unlabelled field is refused");
    let message = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("image-alt") && message.contains("#nameless"),
        "{message}"
    );
    browser.screenshot("console_browser_axe_faulty").await;

    browser
        .goto(&data_url(
            "<!doctype html><html lang=\"en\"><head><title>Clean</title></head><body>\
             <main><h1>Clean</h1><form><label for=\"name\">Name</label>\
             <input id=\"name\" name=\"name\"><button>Save</button></form></main>\
             </body></html>",
        ))
        .await;
    let serious: Vec<_> = browser
        .axe()
        .await
        .into_iter()
        .filter(|v| v.is_serious())
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    browser.assert_accessible().await;
    browser.screenshot("console_browser_axe_clean").await;
}

/// The helpers a console test uses for forms, and the keyboard: fields
/// found by their labels, an option picked, a box ticked, a button clicked
/// by its text; Tab moves the focus in document order, typing fills the
/// focused field and Enter activates the focused link or button: no mouse
/// needed.
#[tokio::test]
async fn forms_and_the_keyboard_work_through_the_helpers() {
    let browser = Browser::start().await;
    browser
        .goto(&data_url(
            "<!doctype html><html lang=\"en\"><head><title>Form</title></head><body>\
             <nav><a href=\"#tenants\">Tenants</a> <a href=\"#audit\" onclick=\"event.preventDefault(); \
             document.querySelector('h1').textContent = 'Followed ' + this.textContent\">Audit log</a></nav>\
             <main><h1>Create</h1><form id=\"create\" onsubmit=\"event.preventDefault(); \
             document.querySelector('h1').textContent = 'Submitted ' + \
             new URLSearchParams(new FormData(this)).toString()\">\
             <label for=\"slug\">Slug</label><input id=\"slug\" name=\"slug\">\
             <label>Plan <select name=\"plan\"><option>free</option><option>pro</option>\
             </select></label>\
             <input type=\"checkbox\" id=\"hold\"><label for=\"hold\">Legal hold</label>\
             <button type=\"button\" onclick=\"document.querySelector('h1').textContent = \
             'Pressed ' + document.getElementById('slug').value\">Check slug</button>\
             <button>Create tenant</button></form></main></body></html>",
        ))
        .await;

    // The keyboard: on the fresh page, Tab reaches the nav's second link,
    // Enter activates it (its handler notes it in the <h1>).
    let presses = browser.tab_to("a \"Audit log\"", 5).await;
    assert_eq!(presses, 2, "the focus order starts with the nav's links");
    browser.press_enter().await;
    assert_eq!(browser.h1().await, "Followed Audit log");
    // Then into the form: type the slug, on past Plan, Legal hold and the
    // other button; Enter on "Create tenant" submits the form.
    assert_eq!(browser.tab_to("input \"Slug\"", 3).await, 1);
    browser.type_text("kbd").await;
    assert_eq!(browser.tab_to("button \"Create tenant\"", 6).await, 4);
    browser.press_enter().await;
    assert_eq!(browser.h1().await, "Submitted slug=kbd&plan=free");

    // The helpers a mouse user's test takes.
    browser.fill("Slug", "acme").await;
    browser.fill("Slug", "acme-corp").await;
    browser.select("Plan", "pro").await;
    browser.set_checked("Legal hold", true).await;
    let state = browser
        .execute(
            "return [document.getElementById('slug').value,
                     document.querySelector('select').value,
                     document.getElementById('hold').checked];",
            vec![],
        )
        .await;
    assert_eq!(state, serde_json::json!(["acme-corp", "pro", true]));
    browser.click_button("Check slug").await;
    assert_eq!(browser.h1().await, "Pressed acme-corp");

    // And submit() does the same with a click on the form's submit button.
    browser.fill("Slug", "beta").await;
    browser.submit("#create").await;
    assert_eq!(browser.h1().await, "Submitted slug=beta&plan=pro");
    browser.screenshot("console_browser_keyboard").await;
}
