//! The operator console over plain HTTP (no browser): sign in, read pages,
//! post forms as the console's own pages do. The browser tests use
//! [`crate::browser`]; these are for what a browser would hide (headers,
//! cookies, refusals).

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use crate::TestApp;

/// A client of the console at `app`, with its own cookies.
#[derive(Debug)]
pub struct ConsoleClient {
    pub base: String,
    client: reqwest::Client,
    /// The session token (the `tenantry_console` cookie), once signed in.
    pub session: Option<String>,
    /// The CSRF token the last page carried.
    pub csrf: Option<String>,
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    #[must_use]
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` headers.
    #[must_use]
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first `name="<field>" value="..."` in the page.
    #[must_use]
    pub fn hidden(&self, field: &str) -> Option<String> {
        let marker = format!(r#"name="{field}" value=""#);
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }
}

fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (n, v) = first.split_once('=')?;
        (n.trim() == name).then(|| v.trim().to_owned())
    })
}

impl ConsoleClient {
    /// Not signed in.
    #[must_use]
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("http client"),
            session: None,
            csrf: None,
        }
    }

    /// Signed in with `app.admin_token()` (subject `test-admin`).
    pub async fn signed_in(app: &TestApp) -> Self {
        let mut console = Self::new(app);
        let page = console.sign_in(&app.admin_token()).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "sign-in: {}", page.body);
        let overview = console.get("/console/overview").await;
        assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
        console
    }

    /// The sign-in form, then posting `credential` with it. Keeps the
    /// session cookie it answers with.
    pub async fn sign_in(&mut self, credential: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        let pre = cookie_value(&form.set_cookies(), "tenantry_console_sign_in")
            .expect("the sign-in form sets its CSRF cookie");
        let csrf = form
            .hidden("csrf")
            .expect("the sign-in form has a csrf field");
        let response = self
            .client
            .post(format!("{}/console/sign-in", self.base))
            .header(COOKIE, format!("tenantry_console_sign_in={pre}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("credential", credential),
                ("next", ""),
            ])
            .send()
            .await
            .expect("post the sign-in form");
        let page = Self::read(response).await;
        if let Some(token) = cookie_value(&page.set_cookies(), "tenantry_console")
            && !token.is_empty()
        {
            self.session = Some(token);
        }
        page
    }

    async fn read(response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("read the body");
        Page {
            status,
            headers,
            body,
        }
    }

    fn cookie_header(&self) -> Option<String> {
        self.session
            .as_ref()
            .map(|s| format!("tenantry_console={s}"))
    }

    /// GET `path` with the session cookie; remembers the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = self.cookie_header() {
            request = request.header(COOKIE, cookie);
        }
        let page = Self::read(request.send().await.expect("GET a console page")).await;
        if let Some(csrf) = page.hidden("csrf") {
            self.csrf = Some(csrf);
        }
        page
    }

    /// POST `fields` to `path` as the console's own forms do: the session
    /// cookie, the CSRF token of the last page, same origin.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[]).await
    }

    /// POST exactly `fields` (no CSRF token added) with extra `headers`.
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        if let Some(cookie) = self.cookie_header() {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let page = Self::read(request.send().await.expect("POST a console form")).await;
        if let Some(csrf) = page.hidden("csrf") {
            self.csrf = Some(csrf);
        }
        page
    }
}
