//! Custom domains over real HTTP: registration, verification against a
//! fake nameserver and a fake web server on 127.0.0.1, routing by `Host`,
//! one name per tenant, and what another tenant can (not) see.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_api::DomainSettings;
use tenantry_core::{Scope, TenantId};
use tenantry_tests::TestApp;
use tenantry_tests::fake_dns::{Zone, fake_dns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// HTTP answers by path: (status, extra header lines, body).
type Site = Arc<Mutex<HashMap<String, (u16, String, String)>>>;

/// A web server on 127.0.0.1 answering from `site` (404 otherwise). At
/// most 200 connections, each read for at most 2 s.
async fn fake_http(site: Site) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..200 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let site = Arc::clone(&site);
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(2), stream.read(&mut head)).await
                else {
                    return;
                };
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let (status, headers, body) = site.lock().unwrap().get(&path).cloned().unwrap_or((
                    404,
                    String::new(),
                    "not here".to_owned(),
                ));
                let response = format!(
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    address
}

struct World {
    app: TestApp,
    zone: Zone,
    site: Site,
}

async fn world() -> World {
    world_with(tenantry_tests::test_retention(Duration::from_secs(
        90 * 24 * 3600,
    )))
    .await
}

async fn world_with(retention: tenantry_sweeper::RetentionSettings) -> World {
    let zone = Zone::default();
    let site = Site::default();
    let dns = fake_dns(Arc::clone(&zone)).await;
    let http = fake_http(Arc::clone(&site)).await;
    let app = TestApp::builder()
        .domains(DomainSettings {
            dns_resolver: dns.to_string(),
            http_port: http.port(),
            http_connect_to: "127.0.0.1".to_owned(),
            check_timeout: Duration::from_secs(2),
            // Long: only invalidation can make a change visible in time.
            cache_ttl: Duration::from_secs(600),
        })
        .retention(retention)
        .spawn()
        .await;
    World { app, zone, site }
}

fn admin_of(app: &TestApp, tenant: TenantId) -> String {
    app.token(
        "owner@example.com",
        Some(tenant),
        &[Scope::TenantRead, Scope::TenantWrite, Scope::TenantAdmin],
    )
}

/// `GET /v1/tenant` with this token and `Host`.
async fn own_tenant_at(app: &TestApp, token: &str, host: &str) -> (StatusCode, Value) {
    let response = app
        .with_token(Method::GET, "/v1/tenant", token)
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_domain_verified_by_dns_routes_its_tenant_and_only_its_tenant() {
    let World { app, zone, .. } = world().await;
    let t1 = app.create_tenant("shop-one").await;
    let t2 = app.create_tenant("shop-two").await;
    let (one, two) = (admin_of(&app, t1), admin_of(&app, t2));

    let (status, domain) = app
        .call(
            &one,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "Shop.Example.COM."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    assert_eq!(domain["hostname"], "shop.example.com");
    assert_eq!(domain["status"], "pending");
    let token = domain["verification"]["dns"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.len() >= 32, "{token}");
    assert_eq!(
        domain["verification"]["dns"]["name"],
        "_tenantry-challenge.shop.example.com"
    );
    assert_eq!(domain["verification"]["dns"]["record_type"], "TXT");
    assert_eq!(
        domain["verification"]["http"]["url"],
        format!("http://shop.example.com/.well-known/tenantry-challenge/{token}")
    );
    assert_eq!(domain["verification"]["http"]["body"], token.as_str());
    let id = domain["id"].as_str().unwrap().to_owned();
    let verify = format!("/v1/domains/{id}/verify");

    // Nothing published: not verified, and the problem says what was found.
    let (status, problem) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "domain_not_verified");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("no TXT record at _tenantry-challenge.shop.example.com"),
        "{detail}"
    );
    assert!(detail.contains("answered 404"), "{detail}");

    // A wrong value: still not verified.
    zone.lock().unwrap().insert(
        "_tenantry-challenge.shop.example.com".to_owned(),
        vec!["v=spf1 -all".to_owned(), "not-the-token".to_owned()],
    );
    let (status, problem) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("2 TXT value(s) at _tenantry-challenge.shop.example.com, none of them"),
        "{problem}"
    );

    // Unverified, the name routes nothing: another tenant's token at that
    // host simply reaches its own tenant.
    let (status, seen) = own_tenant_at(&app, &two, "shop.example.com").await;
    assert_eq!(
        (status, seen["id"].as_str()),
        (StatusCode::OK, Some(t2.to_string().as_str()))
    );

    zone.lock().unwrap().insert(
        "_tenantry-challenge.shop.example.com".to_owned(),
        vec!["v=spf1 -all".to_owned(), token.clone()],
    );
    let (status, verified) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["verified_by"], "dns");
    assert!(verified["verified_at"].is_string());
    // Again: still verified, nothing looked up twice matters.
    let (status, again) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (StatusCode::OK, Some("verified"))
    );

    // Routed: T1's token at its domain works (any spelling of the host) ...
    for host in ["shop.example.com", "SHOP.example.com.:443"] {
        let (status, seen) = own_tenant_at(&app, &one, host).await;
        assert_eq!(status, StatusCode::OK, "{host}: {seen}");
        assert_eq!(seen["id"], t1.to_string());
    }
    // ... T2's token at T1's domain is refused.
    let (status, problem) = own_tenant_at(&app, &two, "shop.example.com").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_mismatch"))
    );

    // One name, one tenant: T2 cannot claim it, and is not told whose it is.
    let (status, problem) = app
        .call(
            &two,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "conflict");
    let text = problem.to_string();
    assert!(
        !text.contains(&t1.to_string()) && !text.contains("shop-one"),
        "{text}"
    );
    // Nor can T1 register it twice.
    let (status, _) = app
        .call(
            &one,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // T2 sees nothing of T1's domains, and cannot verify or delete them.
    let (status, list) = app.call(&two, Method::GET, "/v1/domains", None).await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    for (method, path) in [
        (Method::GET, format!("/v1/domains/{id}")),
        (Method::POST, verify.clone()),
        (Method::DELETE, format!("/v1/domains/{id}")),
    ] {
        let (status, problem) = app.call(&two, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
    }
    let (status, list) = app.call(&one, Method::GET, "/v1/domains", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], id.as_str());
    // The admin plane lists them per tenant.
    let (status, list) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{t1}/domains"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["hostname"], "shop.example.com");
    let (_, list) = app
        .admin_call(Method::GET, "/v1/admin/tenants/shop-two/domains", None)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));

    // Deleted: the name stops routing at once on this replica (its cached
    // answer, good for ten minutes, was dropped) and is free again.
    let (status, _) = app
        .call(&one, Method::DELETE, &format!("/v1/domains/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, seen) = own_tenant_at(&app, &two, "shop.example.com").await;
    assert_eq!(
        (status, seen["id"].as_str()),
        (StatusCode::OK, Some(t2.to_string().as_str()))
    );
    let (status, _) = app
        .call(&one, Method::GET, &format!("/v1/domains/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            &two,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Each change is in the tenant's events and the audit log.
    let (_, events) = app.call(&one, Method::GET, "/v1/events", None).await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("domain."))
        .collect();
    for kind in ["domain.added", "domain.verified", "domain.removed"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let (_, audit) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/audit?tenant_id={t1}"),
            None,
        )
        .await;
    assert!(audit.to_string().contains("domain.verified"), "{audit}");
}

#[tokio::test]
async fn a_domain_verified_over_http_and_what_does_not_count() {
    let World { app, site, .. } = world().await;
    let t1 = app.create_tenant("web-one").await;
    let one = admin_of(&app, t1);
    let (status, domain) = app
        .call(
            &one,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "www.bücher.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    assert_eq!(domain["hostname"], "www.xn--bcher-kva.example");
    let token = domain["verification"]["http"]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/.well-known/tenantry-challenge/{token}");
    let verify = format!("/v1/domains/{}/verify", domain["id"].as_str().unwrap());

    // A redirect is not followed, even to the right answer.
    site.lock().unwrap().insert(
        path.clone(),
        (302, "Location: /elsewhere\r\n".to_owned(), String::new()),
    );
    site.lock()
        .unwrap()
        .insert("/elsewhere".to_owned(), (200, String::new(), token.clone()));
    let (status, problem) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("answered 302"),
        "{problem}"
    );

    // The wrong body: named as such, never echoed.
    site.lock().unwrap().insert(
        path.clone(),
        (200, String::new(), "secret-internal-page".to_owned()),
    );
    let (status, problem) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("a body that is not the token"), "{detail}");
    assert!(!detail.contains("secret-internal-page"), "{detail}");

    // Not yet verified: the domain routes nothing, so T1's own token at it
    // is just T1's token.
    site.lock()
        .unwrap()
        .insert(path, (200, String::new(), format!("{token}\n")));
    let (status, verified) = app.call(&one, Method::POST, &verify, None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["verified_by"], "http");
    let (status, seen) = own_tenant_at(&app, &one, "WWW.Bücher.example").await;
    assert_eq!(
        (status, seen["id"].as_str()),
        (StatusCode::OK, Some(t1.to_string().as_str()))
    );
}

#[tokio::test]
async fn bad_host_names_and_callers_without_tenant_admin_are_refused() {
    let World { app, .. } = world().await;
    let t1 = app.create_tenant("picky").await;
    let one = admin_of(&app, t1);
    let long = format!("{}example", "abcdefghi.".repeat(25));
    for bad in [
        "127.0.0.1",
        "[::1]",
        "::1",
        "shop.example.com:443",
        "picky.tenants.test",
        "tenants.test",
        "localhost",
        "a..example",
        "shop example.com",
        "_acme.example.com",
        "",
        long.as_str(),
    ] {
        let (status, problem) = app
            .call(
                &one,
                Method::POST,
                "/v1/domains",
                Some(json!({"hostname": bad})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {problem}"
        );
        assert_eq!(problem["field"], "hostname", "{bad:?}: {problem}");
    }
    let (status, _) = app
        .call(
            &one,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": 5})),
        )
        .await;
    assert!(status.is_client_error());
    // tenant:write is not enough to register a domain.
    let writer = app.token("writer", Some(t1), &[Scope::TenantRead, Scope::TenantWrite]);
    let (status, problem) = app
        .call(
            &writer,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "ok.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, list) = app.call(&one, Method::GET, "/v1/domains", None).await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

#[tokio::test]
async fn a_purged_tenant_leaves_its_names_free() {
    let World { app, zone, .. } =
        world_with(tenantry_tests::test_retention(Duration::from_secs(1))).await;
    let t1 = app.create_tenant("gone-soon").await;
    let t2 = app.create_tenant("next-owner").await;
    let (one, two) = (admin_of(&app, t1), admin_of(&app, t2));
    let (status, domain) = app
        .call(
            &one,
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": "old.example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    zone.lock().unwrap().insert(
        "_tenantry-challenge.old.example.org".to_owned(),
        vec![
            domain["verification"]["dns"]["value"]
                .as_str()
                .unwrap()
                .to_owned(),
        ],
    );
    let verify = format!("/v1/domains/{}/verify", domain["id"].as_str().unwrap());
    assert_eq!(
        app.call(&one, Method::POST, &verify, None).await.0,
        StatusCode::OK
    );
    let (status, _) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{t1}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Deleted, not yet purged: the name is still held.
    let body = Some(json!({"hostname": "old.example.org"}));
    assert_eq!(
        app.call(&two, Method::POST, "/v1/domains", body.clone())
            .await
            .0,
        StatusCode::CONFLICT
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, report) = app
        .admin_call(Method::POST, "/v1/admin/retention/sweep", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report.to_string().contains(&t1.to_string()), "{report}");
    let (_, list) = app
        .admin_call(
            Method::GET,
            &format!("/v1/admin/tenants/{t1}/domains"),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    let (status, again) = app.call(&two, Method::POST, "/v1/domains", body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
}
