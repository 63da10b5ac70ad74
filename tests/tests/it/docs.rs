//! `/docs`: the interactive API reference, served from the binary's own
//! assets (no CDN), over the same `/openapi.json`.

use tenantry_tests::TestApp;

#[tokio::test]
async fn docs_serve_the_api_reference_from_the_binary_without_a_cdn() {
    let app = TestApp::spawn().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let bare = no_redirects
        .get(app.url("/docs"))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and stylesheet is the service's own: relative paths only.
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let target = &html[i + attr.len()..];
            assert!(
                !target.starts_with("http") && !target.starts_with("//"),
                "an external asset: {}",
                &target[..target.find('"').unwrap_or(target.len())]
            );
        }
    }
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.expect("asset");
        assert!(body.len() > 100, "{asset} is empty");
        if asset.ends_with("initializer.js") {
            // It reads the service's own document.
            assert!(body.contains("/openapi.json"), "{body}");
        }
    }
}

#[tokio::test]
async fn every_documented_body_is_a_named_schema() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = app
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("the document");
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            let bodies = responses
                .iter()
                .map(|(status, r)| (format!("response {status}"), &r["content"]))
                .chain(std::iter::once((
                    "request".to_owned(),
                    &op["requestBody"]["content"],
                )));
            for (what, content) in bodies {
                let Some(content) = content.as_object() else {
                    continue;
                };
                for (media, body) in content {
                    let schema = &body["schema"];
                    let named = schema.get("$ref").is_some()
                        || schema["items"].get("$ref").is_some()
                        // NDJSON export: a stream of lines, documented as text.
                        || media == "application/x-ndjson"
                        // `Option<T>` request bodies: oneOf [null, $ref].
                        || schema["oneOf"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|s| s.get("$ref").is_some()));
                    if !named {
                        untyped.push(format!("{method} {path} {what} {media}: {schema}"));
                    }
                }
            }
        }
    }
    assert!(
        untyped.is_empty(),
        "bodies without a named schema:\n{}",
        untyped.join("\n")
    );
    // The responses every route shares are declared once, in the document.
    let created = &doc["paths"]["/v1/clusters"]["post"]["responses"];
    assert!(
        created.get("4XX").is_some() && created.get("503").is_some(),
        "{created}"
    );
}
