//! A real headless Chromium for the console's tests, driven over WebDriver
//! (fantoccini) through Debian's chromedriver on a free 127.0.0.1 port.
//!
//! `scripts/test.sh` installs chromium, chromium-driver and axe-core
//! (scripts/browser-setup.sh) and exports where they are:
//! `TENANTRY_CHROMEDRIVER`, `TENANTRY_CHROMIUM`, `TENANTRY_AXE_JS` and
//! `TENANTRY_SCREENSHOTS`. Without them [`Browser::start`] fails the test
//! and says so: a browser test never passes without a browser.
//!
//! Like the rest of the harness, every helper panics on failure, with the
//! page's URL in the message. Every wait is bounded in tries and time.
//!
//! ```ignore
//! let app = TestApp::spawn().await;
//! let browser = Browser::start().await;
//! browser.goto(&app.url("/console/sign-in")).await;
//! browser.fill("Admin credential", &app.admin_token()).await;
//! browser.click_button("Sign in").await;
//! assert_eq!(browser.h1().await, "Overview");
//! browser.assert_accessible().await;
//! browser.screenshot("sign_in").await;
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::elements::{Element, ElementRef};
use fantoccini::key::Key;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::free_port;
use crate::process::Scratch;

/// The flags every test browser runs with. The machine's network is closed:
/// without the background-networking ones Chromium keeps retrying refused
/// connections (updates, sync, safe browsing) behind the test's back.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The default window: a laptop.
pub const LAPTOP: (u32, u32) = (1280, 800);
/// A phone's width (and height), for the layout checks.
pub const PHONE: (u32, u32) = (390, 844);

/// How long chromedriver may take to answer /status, and a session to open.
const DRIVER_READY: Duration = Duration::from_secs(20);
const SESSION_READY: Duration = Duration::from_secs(45);
/// Page loads and scripts (axe on a large page) end within this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The bounded waits of [`Browser::wait_until`] and friends.
const WAIT: Duration = Duration::from_secs(10);
const WAIT_STEP: Duration = Duration::from_millis(100);

/// The W3C key of an element reference in a script's result.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the browser tests need Chromium, chromedriver and axe-core, which \
             scripts/test.sh installs and points them at (`make test`; not with BROWSER=0)"
        ),
    }
}

/// A cookie as the browser holds it (what a test checks: HttpOnly,
/// SameSite, Secure, Path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub http_only: bool,
    pub secure: bool,
    /// "Strict", "Lax" or "None", as the browser reports it.
    pub same_site: Option<String>,
}

/// One violation axe-core reported on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxeViolation {
    /// The rule, e.g. "label", "color-contrast".
    pub id: String,
    /// "minor", "moderate", "serious" or "critical".
    pub impact: Option<String>,
    pub help: String,
    pub help_url: String,
    /// A CSS selector for each offending node.
    pub targets: Vec<String>,
}

impl AxeViolation {
    /// Serious or critical: what [`Browser::assert_accessible`] refuses.
    #[must_use]
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {} ({}) at {}",
            self.impact.as_deref().unwrap_or("?"),
            self.id,
            self.help,
            self.help_url,
            self.targets.join(", ")
        )
    }
}

/// `data:text/html;base64,...` for a page a test writes itself.
#[must_use]
pub fn data_url(html: &str) -> String {
    format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(html)
    )
}

/// chromedriver (in a process group of its own, so the Chromium it starts
/// goes with it) and the scratch directory holding the browser's profile.
/// Killed and removed on drop, also when the test panics.
#[derive(Debug)]
struct Driver {
    child: Child,
    scratch: Scratch,
}

impl Driver {
    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.scratch.0.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it
        // started (they stay in its group). `kill` the command: no libc.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The scratch directory (profile, log, pid file) goes with `scratch`.
    }
}

/// A headless Chromium session for one test.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    // Dropped after `client` (field order): the session's last command may
    // still go out while chromedriver is alive.
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver on a free port, waits (bounded) until it answers,
    /// opens a headless Chromium session with [`CHROMIUM_FLAGS`] and a fresh
    /// profile, in a [`LAPTOP`] window.
    pub async fn start() -> Self {
        let started = Instant::now();
        let chromedriver = required_env("TENANTRY_CHROMEDRIVER");
        let chromium = required_env("TENANTRY_CHROMIUM");
        let scratch = Scratch::new("browser");
        let profile = scratch.0.join("profile");
        std::fs::create_dir_all(&profile).expect("create the browser profile directory");
        let port = free_port();

        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    scratch.0.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {chromedriver}: {e}"))
        };
        // scripts/test.sh kills what a killed test process left running.
        let _ = std::fs::write(scratch.0.join("chromedriver.pid"), child.id().to_string());
        let mut driver = Driver { child, scratch };
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&mut driver, &url).await;

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&f| f.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", LAPTOP.0, LAPTOP.1));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let session = tokio::time::timeout(
            SESSION_READY,
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&url),
        )
        .await;
        let client = match session {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "open a Chromium session on chromedriver: {e}\n{}",
                driver.log_tail()
            ),
            Err(_) => panic!(
                "no Chromium session within {SESSION_READY:?}\n{}",
                driver.log_tail()
            ),
        };
        let browser = Self { client, driver };
        browser
            .client
            .update_timeouts(TimeoutConfiguration::new(
                Some(COMMAND_TIMEOUT),
                Some(COMMAND_TIMEOUT),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set the session's timeouts");
        browser.set_window_size(LAPTOP.0, LAPTOP.1).await;
        eprintln!(
            "browser: chromedriver and Chromium ready in {:?}",
            started.elapsed()
        );
        browser
    }

    /// The fantoccini client, for what the helpers below do not cover.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resizes the window (outer size).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resize the window to {width}x{height}: {e}"));
    }

    /// A phone's width: [`PHONE`].
    pub async fn phone(&self) {
        self.set_window_size(PHONE.0, PHONE.1).await;
    }

    /// Back to the laptop window: [`LAPTOP`].
    pub async fn laptop(&self) {
        self.set_window_size(LAPTOP.0, LAPTOP.1).await;
    }

    // --- Navigation ---------------------------------------------------------

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("browser: open {}: {e}", shorten(url)));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(String::from)
            .unwrap_or_else(|e| panic!("browser: read the current URL: {e}"))
    }

    /// The current URL's path and query, e.g. `/console/tenants?status=active`.
    pub async fn path(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("browser: read the current URL: {e}"));
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> String {
        self.client
            .title()
            .await
            .unwrap_or_else(|e| panic!("browser: read the title: {e}"))
    }

    /// The text of the page's one `<h1>` (fails when there is none or more
    /// than one: every console page has exactly one).
    pub async fn h1(&self) -> String {
        let headings = self.find_all("h1").await;
        if headings.len() != 1 {
            panic!(
                "{} has {} <h1> elements, not one:\n{}",
                self.url().await,
                headings.len(),
                self.text().await
            );
        }
        headings[0]
            .text()
            .await
            .unwrap_or_else(|e| panic!("browser: read the <h1>: {e}"))
            .trim()
            .to_owned()
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&self) -> String {
        match self
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            Value::String(text) => text,
            other => panic!("browser: body text is not a string: {other}"),
        }
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|e| panic!("browser: read the page source: {e}"))
    }

    /// Waits (bounded: [`WAIT`]) until the path and query of the current URL
    /// satisfy `ready`; returns them. For navigations a click starts.
    pub async fn wait_for_path(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_for_url_where(what, ready, true).await
    }

    /// Like [`Self::wait_for_path`], on the whole URL (fragment included).
    pub async fn wait_for_url(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_for_url_where(what, ready, false).await
    }

    async fn wait_for_url_where(
        &self,
        what: &str,
        ready: impl Fn(&str) -> bool,
        path_only: bool,
    ) -> String {
        let read = async || {
            if path_only {
                self.path().await
            } else {
                self.url().await
            }
        };
        let deadline = Instant::now() + WAIT;
        let mut now = read().await;
        for _ in 0..(WAIT.as_millis() / WAIT_STEP.as_millis()) {
            if ready(&now) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(WAIT_STEP).await;
            now = read().await;
        }
        assert!(
            ready(&now),
            "browser: waited {WAIT:?} for {what}; still at {}:\n{}",
            shorten(&now),
            self.text().await
        );
        now
    }

    // --- Finding things -----------------------------------------------------

    /// The one element matching `css` (fails when none does).
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!(
                "browser: no element matches {css:?} on {}: {e}",
                self.url().await
            ),
        }
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.find_all(css).await.into_iter().next()
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("browser: find {css:?}: {e}"))
    }

    /// Waits (bounded: [`WAIT`]) until an element matches `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        for _ in 0..(WAIT.as_millis() / WAIT_STEP.as_millis()) {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
        panic!(
            "browser: waited {WAIT:?} for {css:?} on {}:\n{}",
            self.url().await,
            self.text().await
        )
    }

    /// The form control labelled `label` (the `<label>`'s own text, trimmed
    /// and with whitespace collapsed, compared exactly; its `for` or the
    /// control it wraps). Fails listing the page's labels when none matches, or when
    /// more than one does.
    pub async fn field(&self, label: &str) -> Element {
        let found = self
            .execute(
                "const want = arguments[0];
                 const norm = s => s.replace(/\\s+/g, ' ').trim();
                 // A label's own text: without the options of a <select> it wraps.
                 const own = l => {
                     const c = l.cloneNode(true);
                     c.querySelectorAll('select, textarea, datalist').forEach(x => x.remove());
                     return norm(c.textContent);
                 };
                 const labels = Array.from(document.querySelectorAll('label'));
                 const hits = labels.filter(l => own(l) === want && l.control);
                 if (hits.length === 1) return hits[0].control;
                 return { count: hits.length, labels: labels.map(own) };",
                vec![json!(label)],
            )
            .await;
        match self.element_from(&found) {
            Some(element) => element,
            None => panic!(
                "browser: not exactly one control labelled {label:?} on {}: {found}",
                self.url().await
            ),
        }
    }

    /// The one link whose text is `text` (exact, as displayed).
    pub async fn link(&self, text: &str) -> Element {
        let links = self
            .client
            .find_all(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("browser: find the link {text:?}: {e}"));
        if links.len() != 1 {
            panic!(
                "browser: {} links read {text:?} on {}, not one",
                links.len(),
                self.url().await
            );
        }
        links.into_iter().next().expect("one link")
    }

    /// The one visible button whose text (or an `<input type=submit>`'s
    /// value) is `text`, trimmed and with whitespace collapsed.
    pub async fn button(&self, text: &str) -> Element {
        self.button_in("body", text).await
    }

    /// Like [`Self::button`], within the element `scope` (CSS) matches, e.g.
    /// one form of a page with several.
    pub async fn button_in(&self, scope: &str, text: &str) -> Element {
        let found = self
            .execute(
                "const [scopeCss, want] = arguments;
                 const scope = document.querySelector(scopeCss);
                 if (!scope) return { error: 'no element matches ' + scopeCss };
                 const norm = s => s.replace(/\\s+/g, ' ').trim();
                 const all = Array.from(scope.querySelectorAll(
                     'button, input[type=submit], input[type=button], input[type=reset]'));
                 const name = b => norm(b.tagName === 'INPUT' ? b.value : b.textContent);
                 const visible = b => b.getClientRects().length > 0;
                 const hits = all.filter(b => name(b) === want && visible(b));
                 if (hits.length === 1) return hits[0];
                 return { count: hits.length, buttons: all.filter(visible).map(name) };",
                vec![json!(scope), json!(text)],
            )
            .await;
        match self.element_from(&found) {
            Some(element) => element,
            None => panic!(
                "browser: not exactly one visible button {text:?} in {scope} on {}: {found}",
                self.url().await
            ),
        }
    }

    fn element_from(&self, value: &Value) -> Option<Element> {
        let id = value.get(ELEMENT_KEY)?.as_str()?;
        Some(Element::from_element_id(
            self.client.clone(),
            ElementRef::from(id.to_owned()),
        ))
    }

    // --- Acting -------------------------------------------------------------

    /// Clears the control labelled `label` and types `value` into it.
    pub async fn fill(&self, label: &str, value: &str) {
        let field = self.field(label).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("browser: clear {label:?}: {e}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("browser: type into {label:?}: {e}"));
    }

    /// Picks the option whose text is `option` in the `<select>` labelled
    /// `label`.
    pub async fn select(&self, label: &str, option: &str) {
        self.field(label)
            .await
            .select_by_label(option)
            .await
            .unwrap_or_else(|e| panic!("browser: select {option:?} in {label:?}: {e}"));
    }

    /// Ticks or unticks the checkbox labelled `label`.
    pub async fn set_checked(&self, label: &str, checked: bool) {
        let field = self.field(label).await;
        let now = field
            .is_selected()
            .await
            .unwrap_or_else(|e| panic!("browser: read {label:?}: {e}"));
        if now != checked {
            field
                .click()
                .await
                .unwrap_or_else(|e| panic!("browser: click {label:?}: {e}"));
        }
    }

    /// Clicks the one visible button reading `text` (see [`Self::button`]).
    pub async fn click_button(&self, text: &str) {
        self.button(text)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("browser: click the button {text:?}: {e}"));
    }

    /// Clicks the one link reading `text` and waits for the page it opens.
    pub async fn click_link(&self, text: &str) {
        self.link(text)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("browser: click the link {text:?}: {e}"));
    }

    /// Submits the form `form_css` matches with its first submit button (a
    /// click, as a person would: the button's name and value are sent).
    pub async fn submit(&self, form_css: &str) {
        let form = self.find(form_css).await;
        let button = form
            .find(Locator::Css(
                "button:not([type]), button[type=submit], input[type=submit]",
            ))
            .await
            .unwrap_or_else(|e| panic!("browser: {form_css:?} has no submit button: {e}"));
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("browser: submit {form_css:?}: {e}"));
    }

    /// Presses `key` in the element that has the focus (the body when none
    /// does), as the keyboard would.
    pub async fn press(&self, key: Key) {
        let focused = self
            .client
            .active_element()
            .await
            .unwrap_or_else(|e| panic!("browser: find the focused element: {e}"));
        focused
            .send_keys(&key.to_string())
            .await
            .unwrap_or_else(|e| panic!("browser: press {key:?}: {e}"));
    }

    /// Types `text` into the element that has the focus.
    pub async fn type_text(&self, text: &str) {
        self.client
            .active_element()
            .await
            .unwrap_or_else(|e| panic!("browser: find the focused element: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("browser: type {text:?}: {e}"));
    }

    /// Tab: the focus moves to the next control.
    pub async fn press_tab(&self) {
        self.press(Key::Tab).await;
    }

    /// Enter: follows the focused link or presses the focused button.
    pub async fn press_enter(&self) {
        self.press(Key::Enter).await;
    }

    /// Presses Tab until the focused element's description (see
    /// [`Self::focused`]) contains `needle`, at most `max_tabs` times; the
    /// number of presses it took. A test of "works without a mouse".
    pub async fn tab_to(&self, needle: &str, max_tabs: usize) -> usize {
        let mut seen = Vec::new();
        for presses in 1..=max_tabs {
            self.press_tab().await;
            let focused = self.focused().await;
            if focused.contains(needle) {
                return presses;
            }
            seen.push(focused);
        }
        panic!(
            "browser: {max_tabs} Tab presses on {} never reached {needle:?}; the focus went: {seen:#?}",
            self.url().await
        )
    }

    /// A one-line description of the focused element: its tag, then its
    /// accessible text (label, aria-label, text or value), e.g.
    /// `button "Sign in"`, `a "Tenants"`, `input "Slug"`.
    pub async fn focused(&self) -> String {
        match self
            .execute(
                "const e = document.activeElement;
                 if (!e || e === document.body) return 'body';
                 const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
                 const label = e.labels && e.labels.length ? norm(e.labels[0].textContent) : '';
                 const name = norm(e.getAttribute('aria-label')) || label
                     || norm(e.tagName === 'INPUT' ? e.value : e.textContent);
                 return e.tagName.toLowerCase() + ' \"' + name + '\"';",
                vec![],
            )
            .await
        {
            Value::String(description) => description,
            other => panic!("browser: describe the focused element: {other}"),
        }
    }

    /// Runs `script` (a function body: `arguments`, `return`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("browser: run a script: {e}"))
    }

    // --- Cookies --------------------------------------------------------------

    /// The cookies the browser holds for the current page, HttpOnly ones
    /// included.
    pub async fn cookies(&self) -> Vec<BrowserCookie> {
        self.client
            .get_all_cookies()
            .await
            .unwrap_or_else(|e| panic!("browser: read the cookies: {e}"))
            .into_iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                path: c.path().map(str::to_owned),
                domain: c.domain().map(str::to_owned),
                http_only: c.http_only().unwrap_or(false),
                secure: c.secure().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
            })
            .collect()
    }

    /// The cookie called `name`, if the browser holds one for this page.
    pub async fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Forgets the cookie called `name` (no error when there is none).
    pub async fn delete_cookie(&self, name: &str) {
        self.client
            .delete_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("browser: delete the cookie {name}: {e}"));
    }

    /// Sets a cookie for the current page's host (a forged session, say):
    /// `path`, HttpOnly, SameSite=Strict.
    pub async fn add_cookie(&self, name: &str, value: &str, path: &str) {
        // chromedriver refuses a cookie without a domain on an IP host.
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("browser: read the current URL: {e}"));
        let host = url.host_str().unwrap_or_default();
        let cookie = fantoccini::cookies::Cookie::parse(format!(
            "{name}={value}; Domain={host}; Path={path}; HttpOnly; SameSite=Strict"
        ))
        .unwrap_or_else(|e| panic!("browser: the cookie {name}={value}: {e}"));
        self.client
            .add_cookie(cookie)
            .await
            .unwrap_or_else(|e| panic!("browser: add the cookie {name}: {e}"));
    }

    // --- Accessibility ------------------------------------------------------------

    /// Injects axe-core (`TENANTRY_AXE_JS`) into the page, runs `axe.run()`
    /// on the whole document and returns every violation it found.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        let path = required_env("TENANTRY_AXE_JS");
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read axe-core from {path}: {e}"));
        // Evaluated by the driver, not loaded by the page: the console's
        // Content-Security-Policy does not apply to it.
        self.execute(
            &format!("if (typeof window.axe === 'undefined') {{ {source}\n }} return true;"),
            vec![],
        )
        .await;
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.axe.run(document, { resultTypes: ['violations'] })
                     .then(r => done({ violations: r.violations.map(v => ({
                         id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                         targets: v.nodes.map(n => n.target.join(' ')) })) }))
                     .catch(e => done({ error: String(e) }));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("browser: run axe-core: {e}"));
        let Some(violations) = result.get("violations").and_then(Value::as_array) else {
            panic!("browser: axe-core failed on {}: {result}", self.url().await)
        };
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        violations
            .iter()
            .map(|v| AxeViolation {
                id: text(v, "id").unwrap_or_default(),
                impact: text(v, "impact"),
                help: text(v, "help").unwrap_or_default(),
                help_url: text(v, "helpUrl").unwrap_or_default(),
                targets: v
                    .get("targets")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Fails listing every serious or critical axe-core violation on the
    /// page (rule, help, nodes); minor and moderate ones are printed.
    pub async fn assert_accessible(&self) {
        let violations = self.axe().await;
        let (serious, lesser): (Vec<_>, Vec<_>) = violations.iter().partition(|v| v.is_serious());
        let url = self.url().await;
        for v in &lesser {
            eprintln!("axe on {}: {v}", shorten(&url));
        }
        if !serious.is_empty() {
            let list: Vec<String> = serious.iter().map(|v| format!("  {v}")).collect();
            panic!(
                "axe-core: {} serious or critical violation(s) on {}:\n{}",
                serious.len(),
                shorten(&url),
                list.join("\n")
            );
        }
    }

    // --- Screenshots ------------------------------------------------------------------

    /// Saves the visible page as `TENANTRY_SCREENSHOTS/<name>.png` (the
    /// directory is created); returns the file's path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(required_env("TENANTRY_SCREENSHOTS"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("browser: take a screenshot: {e}"));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Where chromedriver writes its log (for a failing test's message).
    #[must_use]
    pub fn driver_log(&self) -> PathBuf {
        self.driver.scratch.0.join("chromedriver.log")
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver is
    /// killed as on drop.
    pub async fn close(self) {
        let Self { client, driver } = self;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        drop(driver);
    }
}

/// Polls chromedriver's /status until it is ready: at most [`DRIVER_READY`]
/// and a bounded number of tries; fails early when the process has exited.
async fn wait_for_driver(driver: &mut Driver, url: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("build an HTTP client");
    let deadline = Instant::now() + DRIVER_READY;
    let step = Duration::from_millis(50);
    for _ in 0..(DRIVER_READY.as_millis() / step.as_millis()) {
        if let Ok(Some(status)) = driver.child.try_wait() {
            panic!(
                "chromedriver exited ({status}) before it was ready:\n{}",
                driver.log_tail()
            );
        }
        if let Ok(response) = http.get(format!("{url}/status")).send().await
            && let Ok(body) = response.json::<Value>().await
            && body.pointer("/value/ready") == Some(&Value::Bool(true))
        {
            return;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(step).await;
    }
    panic!(
        "chromedriver did not answer {url}/status within {DRIVER_READY:?}:\n{}",
        driver.log_tail()
    );
}

/// A data: URL is long; messages show its start.
fn shorten(url: &str) -> String {
    if url.len() > 100 {
        format!(
            "{}...",
            &url[..url.char_indices().nth(100).map_or(url.len(), |(i, _)| i)]
        )
    } else {
        url.to_owned()
    }
}

/// Whether `path` exists and is a PNG file (for the tests of screenshots).
#[must_use]
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}
