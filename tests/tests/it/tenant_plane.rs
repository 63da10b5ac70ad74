//! The tenant plane over HTTP: isolation, scopes, the tenant gate, API keys,
//! addressing, pagination and error shapes — the real app, a real database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_client::types;
use tenantry_core::{Scope, TenantId};
use tenantry_tests::{TEST_BASE_DOMAIN, TestApp};

/// A tenant with a token, on one app.
struct Caller<'a> {
    app: &'a TestApp,
    id: TenantId,
    token: String,
}

impl<'a> Caller<'a> {
    async fn new(app: &'a TestApp, slug: &str) -> Self {
        let id = app.create_tenant(slug).await;
        Self {
            app,
            id,
            token: app.tenant_token(id),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app.call(&self.token, method, path, body).await
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.call(Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
        created
    }

    /// A cluster, an instance in it, a user and an API key.
    async fn provision(&self) -> (String, String, String, String) {
        let cluster = self
            .create("/v1/clusters", json!({"name": "main", "region": "eu-west"}))
            .await;
        let instance = self
            .create(
                "/v1/instances",
                json!({"name": "web", "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 4}),
            )
            .await;
        let user = self
            .create(
                "/v1/users",
                json!({"email": "ada@example.com", "name": "Ada"}),
            )
            .await;
        let key = self.create("/v1/api-keys", json!({"name": "ci"})).await;
        let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
        (id(&cluster), id(&instance), id(&user), id(&key))
    }

    async fn items(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body["items"].as_array().unwrap().clone()
    }
}

const LISTS: [&str; 5] = [
    "/v1/clusters",
    "/v1/instances",
    "/v1/users",
    "/v1/api-keys",
    "/v1/events",
];

#[tokio::test]
async fn a_tenant_sees_none_of_another_tenants_rows_in_any_list() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let b = Caller::new(&app, "tenant-b").await;
    b.provision().await;
    for path in LISTS {
        assert!(
            a.items(path).await.is_empty(),
            "{path} leaked B's rows to A"
        );
        assert!(!b.items(path).await.is_empty(), "{path} shows B nothing");
    }
}

#[tokio::test]
async fn another_tenants_ids_answer_404_exactly_like_missing_ones_and_stay_unchanged() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let b = Caller::new(&app, "tenant-b").await;
    let (cluster, instance, user, key) = b.provision().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let cases = [
        (
            Method::GET,
            format!("/v1/instances/{instance}"),
            format!("/v1/instances/{missing}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/instances/{instance}"),
            format!("/v1/instances/{missing}"),
            Some(json!({"cpu_cores": 64})),
        ),
        (
            Method::DELETE,
            format!("/v1/instances/{instance}"),
            format!("/v1/instances/{missing}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/users/{user}"),
            format!("/v1/users/{missing}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/users/{user}"),
            format!("/v1/users/{missing}"),
            Some(json!({"name": "Mallory"})),
        ),
        (
            Method::DELETE,
            format!("/v1/users/{user}"),
            format!("/v1/users/{missing}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/clusters/{cluster}"),
            format!("/v1/clusters/{missing}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/clusters/{cluster}"),
            format!("/v1/clusters/{missing}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/api-keys/{key}"),
            format!("/v1/api-keys/{missing}"),
            None,
        ),
    ];
    for (method, theirs, nobodys, body) in cases {
        let (s1, b1) = a.call(method.clone(), &theirs, body.clone()).await;
        let (s2, b2) = a.call(method.clone(), &nobodys, body).await;
        assert_eq!(s1, StatusCode::NOT_FOUND, "{method} {theirs}: {b1}");
        assert_eq!(
            (s1, &b1),
            (s2, &b2),
            "{method}: another tenant's id must look exactly like a missing one"
        );
    }
    // B's rows are untouched.
    let (_, inst) = b
        .call(Method::GET, &format!("/v1/instances/{instance}"), None)
        .await;
    assert_eq!(inst["cpu_cores"], 2);
    let (_, u) = b
        .call(Method::GET, &format!("/v1/users/{user}"), None)
        .await;
    assert_eq!(u["name"], "Ada");
    assert_eq!(b.items("/v1/api-keys").await.len(), 1);
    assert_eq!(b.items("/v1/clusters").await.len(), 1);
}

#[tokio::test]
async fn a_tenant_id_in_a_body_is_refused_and_puts_nothing_into_that_tenant() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let b = Caller::new(&app, "tenant-b").await;
    let (status, body) = a
        .call(
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "x", "region": "eu", "tenant_id": b.id})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(b.items("/v1/clusters").await.is_empty());
    assert!(a.items("/v1/clusters").await.is_empty());
}

#[tokio::test]
async fn an_instance_cannot_use_another_tenants_cluster() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let b = Caller::new(&app, "tenant-b").await;
    let (cluster_of_b, ..) = b.provision().await;
    let (status, body) = a
        .call(
            Method::POST,
            "/v1/instances",
            Some(json!({"name": "sneaky", "cluster_id": cluster_of_b, "cpu_cores": 1, "memory_gb": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "validation");
    assert_eq!(body["field"], "cluster_id");
    assert!(a.items("/v1/instances").await.is_empty());
}

#[tokio::test]
async fn instances_can_be_created_read_resized_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let cluster = a
        .create("/v1/clusters", json!({"name": "main", "region": "eu-west"}))
        .await;
    let response = app
        .with_token(Method::POST, "/v1/instances", &a.token)
        .json(&json!({"name": "web", "cluster_id": cluster["id"], "cpu_cores": 2, "memory_gb": 4, "storage_gb": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/instances/{}", created["id"].as_str().unwrap())
    );

    let (status, fetched) = a.call(Method::GET, &location, None).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &created));
    let (status, resized) = a
        .call(Method::PATCH, &location, Some(json!({"cpu_cores": 8})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (resized["cpu_cores"].clone(), resized["memory_gb"].clone()),
        (json!(8), json!(4))
    );
    assert_eq!(a.items("/v1/instances").await.len(), 1);

    let (status, _) = a.call(Method::DELETE, &location, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = a.call(Method::GET, &location, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let kinds: Vec<String> = a
        .items("/v1/events")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "cluster.created",
            "instance.created",
            "instance.updated",
            "instance.deleted"
        ]
    );
}

#[tokio::test]
async fn conflicts_are_409_with_no_database_text() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let cluster = a
        .create("/v1/clusters", json!({"name": "main", "region": "eu-west"}))
        .await;
    a.create("/v1/users", json!({"email": "ada@example.com"}))
        .await;
    a.create(
        "/v1/instances",
        json!({"name": "web", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1}),
    )
    .await;
    let cluster_path = format!("/v1/clusters/{}", cluster["id"].as_str().unwrap());
    let cases = [
        (
            Method::POST,
            "/v1/users".to_owned(),
            Some(json!({"email": "ADA@example.com"})),
        ),
        (
            Method::POST,
            "/v1/clusters".to_owned(),
            Some(json!({"name": "main", "region": "us-east"})),
        ),
        (Method::DELETE, cluster_path, None),
    ];
    for (method, path, body) in cases {
        let (status, problem) = a.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "conflict");
        let text = problem.to_string().to_lowercase();
        for leak in [
            "duplicate key",
            "violates",
            "constraint",
            "users_tenant_email",
            "sql",
            "postgres",
        ] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
    assert_eq!(a.items("/v1/users").await.len(), 1);
    assert_eq!(a.items("/v1/clusters").await.len(), 1);
}

#[tokio::test]
async fn pagination_walks_every_row_exactly_once() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    for i in 0..25 {
        a.create(
            "/v1/clusters",
            json!({"name": format!("c{i:02}"), "region": "eu"}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/clusters?limit=10&cursor={c}"),
            None => "/v1/clusters?limit=10".to_owned(),
        };
        let (status, page) = a.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(a.items("/v1/clusters").await.len(), 20, "default limit");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "query"),
        ("cursor=%%%", "cursor"),
        ("cursor=AAAA", "cursor"),
    ] {
        let (status, problem) = a
            .call(Method::GET, &format!("/v1/clusters?{query}"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(problem["field"], field, "{query}");
    }
}

#[tokio::test]
async fn an_api_key_is_shown_once_exchanges_for_a_token_and_stops_working_when_revoked() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let key = a.create("/v1/api-keys", json!({"name": "ci"})).await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    let listed = a.items("/v1/api-keys").await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("secret").is_none() && !listed[0].to_string().contains(&secret));

    let exchange = |api_key: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/auth/token"))
                .json(&json!({ "api_key": api_key }))
                .send()
                .await
                .unwrap()
        }
    };
    let response = exchange(secret.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 300);
    let access = token["access_token"].as_str().unwrap();
    let me = app
        .with_token(Method::GET, "/v1/tenant", access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["id"], json!(a.id));

    // Wrong secret, garbage, another tenant's id spliced in: all the same 401.
    let mut tampered = secret.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered, "tnry_garbage".to_owned(), String::new()] {
        let response = exchange(bad.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }

    let (status, _) = a
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{}", key["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(exchange(secret).await.status(), StatusCode::UNAUTHORIZED);
    assert!(a.items("/v1/api-keys").await.is_empty());
}

#[tokio::test]
async fn a_non_active_tenants_existing_tokens_get_403_on_the_next_request() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let key = a.create("/v1/api-keys", json!({"name": "ci"})).await;
    let (status, _) = a.call(Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::OK);
    for (state, code) in [
        ("suspended", "tenant_suspended"),
        ("archived", "tenant_archived"),
        ("deleted", "tenant_deleted"),
    ] {
        app.set_status(a.id, state).await;
        for (method, path, body) in [
            (Method::GET, "/v1/tenant", None),
            (Method::GET, "/v1/instances", None),
            (
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": "x", "region": "eu"})),
            ),
        ] {
            let (status, problem) = a.call(method, path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{state} {path}");
            assert_eq!(problem["code"], code, "{state} {path}");
        }
        let exchanged = app
            .client
            .post(app.url("/v1/auth/token"))
            .json(&json!({"api_key": key["secret"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            exchanged.status(),
            StatusCode::FORBIDDEN,
            "{state}: exchange"
        );
    }
    app.set_status(a.id, "active").await;
    let (status, _) = a.call(Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        a.items("/v1/clusters").await.is_empty(),
        "nothing was written while inactive"
    );
}

#[tokio::test]
async fn a_read_only_token_cannot_write_and_a_token_for_no_tenant_cannot_enter() {
    let app = TestApp::spawn().await;
    let id = app.create_tenant("acme").await;
    let reader = app.token("reader", Some(id), &[Scope::TenantRead]);
    let ok = app
        .with_token(Method::GET, "/v1/clusters", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = app
        .with_token(Method::POST, "/v1/clusters", &reader)
        .json(&json!({"name": "x", "region": "eu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let writer_only = app.token("writer", Some(id), &[Scope::TenantWrite]);
    let refused = app
        .with_token(Method::GET, "/v1/clusters", &writer_only)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let ghost = app.tenant_token(TenantId::new());
    let refused = app
        .with_token(Method::GET, "/v1/tenant", &ghost)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let admin = app
        .with_token(Method::GET, "/v1/tenant", &app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn path_and_host_addressing_must_name_the_tokens_tenant() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let _b = Caller::new(&app, "tenant-b").await;
    let get = |path: &str, host: Option<String>| {
        let mut request = app.with_token(Method::GET, path, &a.token);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        get("/t/tenant-a/v1/tenant", None).await.status(),
        StatusCode::OK
    );
    let mismatch = get("/t/tenant-b/v1/tenant", None).await;
    assert_eq!(mismatch.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["code"],
        "tenant_mismatch"
    );
    let unknown = get("/t/nobody/v1/tenant", None).await;
    assert_eq!(
        unknown.status(),
        StatusCode::FORBIDDEN,
        "an unknown slug looks like anyone else's"
    );
    assert_eq!(
        get("/v1/tenant", Some(format!("tenant-a.{TEST_BASE_DOMAIN}")))
            .await
            .status(),
        StatusCode::OK
    );
    let mismatch = get(
        "/v1/tenant",
        Some(format!("tenant-b.{TEST_BASE_DOMAIN}:8080")),
    )
    .await;
    assert_eq!(mismatch.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["code"],
        "tenant_mismatch"
    );
}

#[tokio::test]
async fn host_addressing_normalises_the_name_and_refuses_what_it_cannot_read() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let _b = Caller::new(&app, "tenant-b").await;
    // "bücher" in its ASCII (punycode) form: the slug a Unicode host maps to.
    let idn = Caller::new(&app, "xn--bcher-kva").await;
    let get = |token: &str, hosts: &[&str]| {
        let mut request = app.with_token(Method::GET, "/v1/tenant", token);
        for host in hosts {
            // Raw bytes: a Unicode host travels as UTF-8.
            let value = reqwest::header::HeaderValue::from_bytes(host.as_bytes()).unwrap();
            request = request.header("host", value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let b = format!("tenant-b.{TEST_BASE_DOMAIN}");
    let own = format!("tenant-a.{TEST_BASE_DOMAIN}");
    // Another tenant's host in any spelling, a host that cannot be read,
    // one more than one label under the base domain, two Host headers.
    for hosts in [
        vec![format!("{b}.")],
        vec![b.to_uppercase() + ":443"],
        vec!["Tenant-B.Tenants.Test.:8443".to_owned()],
        vec![format!("bücher.{TEST_BASE_DOMAIN}")],
        vec![format!("x.{own}")],
        vec![format!("{own}:https")],
        vec![format!("{own}..")],
        vec![format!("tenant%2da.{TEST_BASE_DOMAIN}")],
        vec![format!("[::1.{own}")],
    ] {
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let (status, problem) = get(&a.token, &hosts).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("tenant_mismatch")),
            "{hosts:?}: {problem}"
        );
    }
    // Two Host headers: the HTTP layer refuses the request itself (RFC 9112
    // §3.2: 400), before any of the service's code runs.
    let (status, _) = get(&a.token, &[own.as_str(), b.as_str()]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Its own host in any spelling, and hosts that address no tenant.
    for host in [
        own.clone(),
        format!("{own}."),
        format!("{own}:"),
        own.to_uppercase() + ":443",
        "Tenant-A.Tenants.Test.:8080".to_owned(),
        TEST_BASE_DOMAIN.to_owned(),
        "127.0.0.1:8080".to_owned(),
        "[::1]:8080".to_owned(),
        "elsewhere.example".to_owned(),
    ] {
        let (status, body) = get(&a.token, &[&host]).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    for host in [
        format!("bücher.{TEST_BASE_DOMAIN}"),
        format!("BÜCHER.{}.", TEST_BASE_DOMAIN.to_uppercase()),
        format!("xn--bcher-kva.{TEST_BASE_DOMAIN}:443"),
    ] {
        let (status, body) = get(&idn.token, &[&host]).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(body["slug"], "xn--bcher-kva");
    }
}

#[tokio::test]
async fn an_absolute_request_target_is_checked_like_the_host_header() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "tenant-a").await;
    let _b = Caller::new(&app, "tenant-b").await;
    let b = format!("tenant-b.{TEST_BASE_DOMAIN}");
    let own = format!("tenant-a.{TEST_BASE_DOMAIN}");
    // The request target's authority names the host (RFC 9112 §3.2.2): it
    // is checked as well as the Host header, whichever one a proxy routed on.
    for (target, expected) in [(&b, "HTTP/1.1 403"), (&own, "HTTP/1.1 200")] {
        let head = format!(
            "GET http://{target}/v1/tenant HTTP/1.1\r\nHost: {own}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            a.token
        );
        let address = app.address.trim_start_matches("http://").to_owned();
        let response = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Write as _};
            let mut socket = std::net::TcpStream::connect(address).unwrap();
            socket.write_all(head.as_bytes()).unwrap();
            let mut response = String::new();
            socket.read_to_string(&mut response).unwrap();
            response
        })
        .await
        .unwrap();
        assert!(response.starts_with(expected), "{target}: {response}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let cluster = a
        .create("/v1/clusters", json!({"name": "main", "region": "eu"}))
        .await;
    let send = |content_type: &'static str, body: Vec<u8>| {
        let request = app
            .with_token(Method::POST, "/v1/instances", &a.token)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let ct = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                status,
                ct,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let valid = json!({"name": "web", "cluster_id": cluster["id"], "cpu_cores": 1, "memory_gb": 1});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        serde_json::to_vec(&body).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, StatusCode, Option<&str>)> = vec![
        (
            "text/plain",
            serde_json::to_vec(&valid).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "application/json",
            b"{\"name\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "application/json",
            b"{} trailing".to_vec(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "application/json",
            with("cpu_cores", json!("four")),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cpu_cores"),
        ),
        (
            "application/json",
            with("cpu_cores", json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cpu_cores"),
        ),
        (
            "application/json",
            with("memory_gb", json!(1e12)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("memory_gb"),
        ),
        (
            "application/json",
            with("name", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "application/json",
            with("cluster_id", json!("not-a-uuid")),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cluster_id"),
        ),
        (
            "application/json",
            with("surprise", json!(1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "application/json",
            b"{\"cluster_id\": \"x\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "application/json",
            b"[1, 2]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "application/json",
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    for (content_type, body, expected, field) in cases {
        let (status, ct, problem) = send(content_type, body).await;
        assert_eq!(status, expected, "{problem}");
        assert_eq!(ct.as_deref(), Some("application/problem+json"));
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{problem}");
        }
    }
    assert!(a.items("/v1/instances").await.is_empty());
}

#[tokio::test]
async fn responses_echo_a_request_id_and_quotas_are_readable() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    let response = app
        .with_token(Method::GET, "/v1/quotas", &a.token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("x-request-id").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["limits"]["max_users"], 1000);
    assert_eq!(body["usage"]["instances"], 0);
    let unauthenticated = app.get("/v1/quotas").await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(unauthenticated.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn when_the_tenant_status_cannot_be_read_the_gate_fails_closed_with_503() {
    // A valid token, but the database has gone away: never let it through.
    let test_db = tenantry_tests::TestDb::new().await;
    let proxy = tenantry_tests::proxy::Proxy::start(test_db.server_address()).await;
    let mut settings = test_db.settings_via(&proxy, 2);
    settings.connect_timeout = std::time::Duration::from_millis(500);
    let app = TestApp::spawn_with(test_db, &settings, tenantry_tests::test_auth_settings()).await;
    proxy.cut().await;
    let token = app.tenant_token(TenantId::new());
    for (method, path) in [
        (Method::GET, "/v1/tenant"),
        (Method::GET, "/v1/instances"),
        (
            Method::DELETE,
            "/v1/clusters/00000000-0000-7000-8000-000000000000",
        ),
    ] {
        let response = app
            .with_token(method.clone(), path, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "database_unavailable");
    }
}

#[tokio::test]
async fn a_json_array_never_passes_for_an_object_body() {
    // serde reads a struct from an array positionally; the API must not.
    // (Found by the schemathesis fuzz: PATCH with `[null, null]` answered 200.)
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "arrays").await;
    let cluster = a
        .create(
            "/v1/clusters",
            json!({"name": "main", "region": "eu-west-1"}),
        )
        .await;
    let user = a
        .create("/v1/users", json!({"email": "a@example.com"}))
        .await;
    let cases = [
        (
            Method::POST,
            "/v1/clusters".to_owned(),
            json!(["positional", "eu-west-1"]),
        ),
        (
            Method::POST,
            "/v1/instances".to_owned(),
            json!(["vm", cluster["id"], 1, 1, 0]),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", user["id"].as_str().unwrap()),
            json!([null, "renamed"]),
        ),
    ];
    for (method, path, body) in cases {
        let (status, problem) = a.call(method.clone(), &path, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {problem}"
        );
        assert_eq!(problem["field"], "body");
    }
    assert_eq!(a.items("/v1/clusters").await.len(), 1);
    assert!(a.items("/v1/instances").await.is_empty());
    let (_, user) = a
        .call(
            Method::GET,
            &format!("/v1/users/{}", user["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_ne!(user["name"], "renamed");
}

#[tokio::test]
async fn names_with_bidi_overrides_or_invisible_characters_get_422_and_create_nothing() {
    let app = TestApp::spawn().await;
    let a = Caller::new(&app, "acme").await;
    for (path, body) in [
        (
            "/v1/clusters",
            json!({"name": "main\u{202e}gpj.exe", "region": "eu"}),
        ),
        (
            "/v1/clusters",
            json!({"name": "ad\u{200b}min", "region": "eu"}),
        ),
        (
            "/v1/clusters",
            json!({"name": "\u{2066}main\u{2069}", "region": "eu"}),
        ),
        (
            "/v1/users",
            json!({"email": "ada@example.com", "name": "Ad\u{feff}a"}),
        ),
        ("/v1/users", json!({"email": "ada\u{200f}@example.com"})),
        ("/v1/api-keys", json!({"name": "ci\u{2060}"})),
    ] {
        let (status, problem) = a.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["code"], "validation", "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains("U+"),
            "the message names the character: {problem}"
        );
    }
    for path in ["/v1/clusters", "/v1/users", "/v1/api-keys"] {
        assert!(a.items(path).await.is_empty(), "{path}");
    }
    let (_, quotas) = a.call(Method::GET, "/v1/quotas", None).await;
    assert_eq!(quotas["usage"]["clusters"], 0);
    // Tenant names too, through the admin plane.
    let (status, problem) = app
        .call(
            &app.admin_token(),
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "evil", "name": "Acme\u{202e}"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "name");
}

// --- The same plane through the typed client ----------------------------------
// crates/client, generated from the committed OpenAPI document: these calls
// compile only while the document describes these operations, and pass only
// while the server answers what it describes.

/// A typed client for `app` that sends `token`.
fn typed(app: &TestApp, token: &str) -> tenantry_client::Client {
    let http = reqwest::Client::builder()
        .default_headers(tenantry_client::bearer_headers(token).unwrap())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    tenantry_client::Client::new_with_client(&app.address, http)
}

/// The problem+json a call failed with, and its status.
fn problem<T: std::fmt::Debug>(
    result: Result<T, tenantry_client::Error<types::Problem>>,
) -> (StatusCode, types::Problem) {
    match result {
        Err(tenantry_client::Error::ErrorResponse(response)) => {
            (response.status(), response.into_inner())
        }
        other => panic!("expected a problem+json answer, got {other:?}"),
    }
}

#[tokio::test]
async fn users_are_created_read_updated_listed_and_deleted_through_the_typed_client() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = typed(&app, &app.tenant_token(tenant));
    let ada = || types::CreateUser {
        email: "ada@example.com".to_owned(),
        name: Some("Ada".to_owned()),
    };

    let rehearsal = client
        .create_user()
        .dry_run(true)
        .body(ada())
        .send()
        .await
        .unwrap();
    assert_eq!(rehearsal.status(), StatusCode::OK);
    assert!(
        matches!(rehearsal.into_inner(), types::CreateUserSuccess::Ok(_)),
        "a dry run answers the rehearsal, not a user"
    );
    assert!(
        client.list_users().send().await.unwrap().items.is_empty(),
        "a dry run writes nothing"
    );

    let created = client.create_user().body(ada()).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let types::CreateUserSuccess::Created(user) = created.into_inner() else {
        panic!("201 is the created user");
    };
    assert_eq!(
        (user.email.as_str(), user.name.as_str()),
        ("ada@example.com", "Ada")
    );
    let id = user.id.0;

    let fetched = client.get_user().id(id).send().await.unwrap().into_inner();
    assert_eq!(fetched, user);

    let renamed = client
        .update_user()
        .id(id)
        .body(types::UpdateUser {
            email: None,
            name: Some("Ada Lovelace".to_owned()),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.id.0, renamed.name.as_str(), renamed.email.as_str()),
        (id, "Ada Lovelace", "ada@example.com")
    );
    assert!(renamed.updated_at >= user.updated_at);

    let page = client.list_users().send().await.unwrap().into_inner();
    let listed: Vec<_> = page
        .items
        .iter()
        .map(|u| (u.id.0, u.name.as_str()))
        .collect();
    assert_eq!(listed, [(id, "Ada Lovelace")]);
    assert_eq!(page.next_cursor, None);

    // The same list under the path-prefix mount.
    let by_slug = client
        .list_users_by_slug()
        .tenant_slug("acme")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_slug, page);

    let deleted = client.delete_user().id(id).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, gone) = problem(client.get_user().id(id).send().await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!((gone.code.as_str(), gone.status), ("not_found", 404));
}

#[tokio::test]
async fn clusters_and_instances_round_trip_through_the_typed_client() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = typed(&app, &app.tenant_token(tenant));

    let created = client
        .create_cluster()
        .body(types::CreateCluster {
            name: "main".to_owned(),
            region: "eu-west".to_owned(),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let types::CreateClusterSuccess::Created(cluster) = created else {
        panic!("201 is the created cluster: {created:?}");
    };
    assert_eq!(
        client
            .get_cluster()
            .id(cluster.id.0)
            .send()
            .await
            .unwrap()
            .into_inner(),
        cluster
    );

    let created = client
        .create_instance()
        .body(types::CreateInstance {
            name: "web".to_owned(),
            cluster_id: cluster.id.0.to_string(),
            cpu_cores: 2,
            memory_gb: 4,
            storage_gb: Some(20),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let types::CreateInstanceSuccess::Created(instance) = created else {
        panic!("201 is the created instance: {created:?}");
    };
    assert_eq!(instance.cluster_id, cluster.id);
    assert_eq!(
        (instance.cpu_cores, instance.memory_gb, instance.storage_gb),
        (2, 4, 20)
    );
    let id = instance.id.0;
    assert_eq!(
        client
            .get_instance()
            .id(id)
            .send()
            .await
            .unwrap()
            .into_inner(),
        instance
    );

    let resized = client
        .update_instance()
        .id(id)
        .body(types::UpdateInstance {
            cpu_cores: Some(8),
            ..Default::default()
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (resized.cpu_cores, resized.memory_gb, resized.name.as_str()),
        (8, 4, "web")
    );
    let listed = client.list_instances().send().await.unwrap().into_inner();
    assert_eq!(
        listed.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        [id]
    );

    // A cluster with an instance cannot go: a typed 409.
    let (status, conflict) = problem(client.delete_cluster().id(cluster.id.0).send().await);
    assert_eq!(
        (status, conflict.code.as_str()),
        (StatusCode::CONFLICT, "conflict")
    );

    assert_eq!(
        client
            .delete_instance()
            .id(id)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = problem(client.get_instance().id(id).send().await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        client
            .delete_cluster()
            .id(cluster.id.0)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        client
            .list_clusters()
            .send()
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn problems_arrive_as_typed_errors_with_their_status_and_code() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = typed(&app, &app.tenant_token(tenant));
    let user = |email: &str| types::CreateUser {
        email: email.to_owned(),
        name: None,
    };
    client
        .create_user()
        .body(user("ada@example.com"))
        .send()
        .await
        .unwrap();

    // Emails are unique case-insensitively: 409 conflict, no database text.
    let (status, conflict) = problem(
        client
            .create_user()
            .body(user("ADA@example.com"))
            .send()
            .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!((conflict.code.as_str(), conflict.status), ("conflict", 409));
    assert!(
        !conflict.detail.to_lowercase().contains("duplicate key"),
        "{}",
        conflict.detail
    );

    // A query parameter out of range: 422 validation naming the field.
    let (status, invalid) = problem(client.list_users().limit(0).send().await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (invalid.code.as_str(), invalid.field.as_deref()),
        ("validation", Some("limit"))
    );

    // Another tenant's slug in the path: 403 tenant_mismatch.
    app.create_tenant("other").await;
    let (status, mismatch) = problem(
        client
            .list_users_by_slug()
            .tenant_slug("other")
            .send()
            .await,
    );
    assert_eq!(
        (status, mismatch.code.as_str()),
        (StatusCode::FORBIDDEN, "tenant_mismatch")
    );

    // No valid token: 401.
    let (status, unauthorized) = problem(typed(&app, "not-a-token").list_users().send().await);
    assert_eq!(
        (status, unauthorized.code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
}

#[tokio::test]
async fn pages_follow_next_cursor_through_the_typed_client() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = typed(&app, &app.tenant_token(tenant));
    for i in 0..25 {
        client
            .create_cluster()
            .body(types::CreateCluster {
                name: format!("c{i:02}"),
                region: "eu".to_owned(),
            })
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut request = client.list_clusters().limit(10);
        if let Some(cursor) = cursor.take() {
            request = request.cursor(cursor);
        }
        let page = request.send().await.unwrap().into_inner();
        sizes.push(page.items.len());
        names.extend(page.items.into_iter().map(|c| c.name));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    let expected: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn an_api_key_exchanges_and_is_revoked_through_the_typed_client() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = typed(&app, &app.tenant_token(tenant));
    let created = client
        .create_api_key()
        .body(types::CreateApiKey {
            name: "ci".to_owned(),
            scopes: None,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let types::CreateApiKeySuccess::Created(key) = created.into_inner() else {
        panic!("a created key, not a rehearsal");
    };
    let secret = key.secret.clone();
    let key_id: uuid::Uuid = key.id.0;

    let listed = client.list_api_keys().send().await.unwrap().into_inner();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|k| (k.id.0, k.name.as_str(), k.revoked_at))
            .collect::<Vec<_>>(),
        [(key_id, "ci", None)]
    );
    assert!(secret.starts_with(&listed.items[0].prefix));

    // The exchange needs no token.
    let anonymous = tenantry_client::Client::new_with_client(&app.address, app.client.clone());
    let exchange = |api_key: String| {
        anonymous
            .exchange_api_key()
            .body(types::Exchange { api_key })
            .send()
    };
    let token = exchange(secret.clone()).await.unwrap().into_inner();
    assert_eq!(token.token_type, "Bearer");
    let access = token.access_token.as_str();
    let me = typed(&app, access)
        .get_own_tenant()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.id.0, *tenant.as_uuid());

    assert_eq!(
        client
            .revoke_api_key()
            .id(key_id)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let (status, refused) = problem(exchange(secret).await);
    assert_eq!(
        (status, refused.code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
}

#[tokio::test]
async fn every_route_with_an_id_answers_under_the_path_prefix_mount_too() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let token = app.tenant_token(tenant);
    let create = |path: &'static str, body: Value| {
        let (app, token) = (&app, &token);
        async move {
            let (status, created) = app.call(token, Method::POST, path, Some(body)).await;
            assert_eq!(status, 201, "{path}: {created}");
            created["id"].as_str().expect("id").to_owned()
        }
    };
    let user = create("/v1/users", json!({"email": "a@example.com"})).await;
    let cluster = create("/v1/clusters", json!({"name": "c", "region": "eu-west-1"})).await;
    let instance = create(
        "/v1/instances",
        json!({"name": "i", "cluster_id": cluster, "cpu_cores": 1, "memory_gb": 1}),
    )
    .await;
    let key = create("/v1/api-keys", json!({"name": "k"})).await;
    for (method, path, body, want) in [
        (Method::GET, format!("/t/acme/v1/users/{user}"), None, 200),
        (
            Method::PATCH,
            format!("/t/acme/v1/users/{user}"),
            Some(json!({"name": "A"})),
            200,
        ),
        (
            Method::GET,
            format!("/t/acme/v1/clusters/{cluster}"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/t/acme/v1/instances/{instance}"),
            None,
            200,
        ),
        (
            Method::PATCH,
            format!("/t/acme/v1/instances/{instance}"),
            Some(json!({"cpu_cores": 2})),
            200,
        ),
        (
            Method::DELETE,
            format!("/t/acme/v1/api-keys/{key}"),
            None,
            204,
        ),
        (
            Method::DELETE,
            format!("/t/acme/v1/instances/{instance}"),
            None,
            204,
        ),
        (
            Method::DELETE,
            format!("/t/acme/v1/clusters/{cluster}"),
            None,
            204,
        ),
        (
            Method::DELETE,
            format!("/t/acme/v1/users/{user}"),
            None,
            204,
        ),
        // And an id that does not parse is still a 404, under either mount.
        (
            Method::GET,
            "/t/acme/v1/users/not-a-uuid".to_owned(),
            None,
            404,
        ),
    ] {
        let (status, answer) = app.call(&token, method.clone(), &path, body).await;
        assert_eq!(status.as_u16(), want, "{method} {path}: {answer}");
    }
}
