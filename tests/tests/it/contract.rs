//! The API contract: the `/openapi.json` the real app serves is, byte for
//! byte, the committed `crates/client/openapi.json` that the typed client
//! (crates/client) and the TypeScript check (scripts/ts-client.sh) are
//! generated from. A route, parameter or schema change therefore shows up in
//! review as a diff of that file.
//!
//! After an intended change, regenerate the file and commit it with the
//! change. With no database (the unit test in crates/api/src/openapi.rs,
//! from `tenantry_api::openapi_document`):
//!
//! ```text
//! UPDATE_OPENAPI=1 cargo test -p tenantry-api openapi
//! ```
//!
//! or with this test, against the running app (`UPDATE_OPENAPI=1` makes it
//! rewrite the file instead of failing):
//!
//! ```text
//! UPDATE_OPENAPI=1 scripts/test.sh -E 'test(openapi_document)'
//! ```

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;
use tenantry_tests::TestApp;

/// How many differing places the failure message lists.
const SHOWN: usize = 20;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/client/openapi.json")
}

/// The committed form: pretty-printed, keys in the document's order, one
/// trailing newline.
fn pretty(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap();
    text.push('\n');
    text
}

/// JSON pointers (RFC 6901) where `committed` and `served` differ, each with
/// what differs; at most `limit`.
fn differences(committed: &Value, served: &Value, at: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
    match (committed, served) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(v, w, &key(k), out, limit),
                    None if out.len() < limit => {
                        out.push(format!("{}: only in the committed file", key(k)));
                    }
                    None => return,
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                if out.len() >= limit {
                    return;
                }
                out.push(format!("{}: only in the served document", key(k)));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(v, w, &format!("{at}/{i}"), out, limit);
            }
        }
        (a, b) if a != b => {
            let short = |v: &Value| {
                let text = v.to_string();
                if text.chars().count() > 120 {
                    format!("{}…", text.chars().take(120).collect::<String>())
                } else {
                    text
                }
            };
            out.push(format!(
                "{}: committed {} / served {}",
                if at.is_empty() { "/" } else { at },
                short(a),
                short(b)
            ));
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_snapshot() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0", "the document's version moved");

    // The builder that needs no server (tenantry_api::openapi_document) makes
    // the same document from the same registrations.
    let built = serde_json::to_value(tenantry_api::openapi_document(&tenantry_api::Addressing {
        path_prefix: true,
        base_domain: None,
    }))
    .unwrap();
    assert!(
        built == served,
        "tenantry_api::openapi_document differs from the served /openapi.json"
    );

    let path = snapshot_path();
    let expected = pretty(&served);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == expected {
        return;
    }
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &expected).unwrap();
        eprintln!("UPDATE_OPENAPI=1: rewrote {}", path.display());
        return;
    }
    let mut diff = Vec::new();
    match serde_json::from_str::<Value>(&committed) {
        Ok(old) => differences(&old, &served, "", &mut diff, SHOWN),
        Err(e) => diff.push(format!("the committed file is not JSON: {e}")),
    }
    if diff.is_empty() {
        diff.push("same JSON, different formatting (the file is written by this test)".to_owned());
    }
    panic!(
        "/openapi.json differs from {} (the API contract the client is generated from).\n\
         First differences (JSON pointers):\n  {}\n\
         If the change is intended, regenerate the file and commit it with the change:\n  \
         UPDATE_OPENAPI=1 cargo test -p tenantry-api openapi\n  git diff crates/client/openapi.json",
        path.display(),
        diff.join("\n  ")
    );
}
