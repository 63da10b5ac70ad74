//! A typed client for Tenantry's HTTP API, generated at build time by
//! progenitor from `openapi.json` in this crate: the committed snapshot of
//! the served `/openapi.json` (see build.rs, and tests/tests/it/contract.rs
//! for how the snapshot is kept current).
//!
//! Builder style, one method per operation id:
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let client = tenantry_client::Client::new_with_client(
//!     "https://tenantry.example.com",
//!     tenantry_client::bearer(token)?,
//! );
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
              when no TLS backend can start); use `Client::new_with_client`, e.g. with `bearer`"
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/tenantry_client.rs"));
}
pub use generated::*;

/// A `reqwest::Client` that sends `Authorization: Bearer <token>` with
/// every request, for [`Client::new_with_client`].
pub fn bearer(token: &str) -> Result<reqwest::Client, BearerError> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| BearerError::InvalidToken)?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(BearerError::Client)
}

/// Why [`bearer`] could not build a client.
#[derive(Debug)]
pub enum BearerError {
    /// The token has characters a header cannot carry.
    InvalidToken,
    /// reqwest could not build the client (TLS backend).
    Client(reqwest::Error),
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidToken => f.write_str("the token is not a valid header value"),
            Self::Client(e) => write!(f, "could not build the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for BearerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidToken => None,
            Self::Client(e) => Some(e),
        }
    }
}
