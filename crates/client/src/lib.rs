//! A typed client for Tenantry's HTTP API, generated at build time by
//! progenitor from `openapi.json` in this crate: the committed snapshot of
//! the served `/openapi.json` (see build.rs, and tests/tests/it/contract.rs
//! for how the snapshot is kept current).
//!
//! Builder style, one method per operation id:
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let http = reqwest::Client::builder()
//!     .default_headers(tenantry_client::bearer_headers(token)?)
//!     .timeout(std::time::Duration::from_secs(10))
//!     .build()?;
//! let client = tenantry_client::Client::new_with_client("https://tenantry.example.com", http);
//! let page = client.list_users().limit(50).send().await?.into_inner();
//! # let _ = page; Ok(()) }
//! ```
//!
//! Errors the API answers with problem+json arrive as
//! `Error::ErrorResponse(ResponseValue<types::Problem>)`: status, headers
//! and the problem's `code`.

#[expect(
    clippy::allow_attributes,
    reason = "progenitor's output allows lints on the modules it writes"
)]
#[expect(
    clippy::unwrap_used,
    reason = "progenitor's `Client::new` unwraps reqwest's client builder (it fails only \
              when no TLS backend can start); use `Client::new_with_client`, e.g. with `bearer_headers`"
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/tenantry_client.rs"));
}
pub use generated::*;

/// Headers that send `Authorization: Bearer <token>` with every request:
/// for `reqwest::ClientBuilder::default_headers`, and the client built from
/// it for [`Client::new_with_client`]. Fails when the token has characters
/// a header cannot carry.
pub fn bearer_headers(
    token: &str,
) -> Result<reqwest::header::HeaderMap, reqwest::header::InvalidHeaderValue> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(headers)
}
