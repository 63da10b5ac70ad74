//! Console sessions: the cookie, the session it names, CSRF, and the
//! checks every posted form passes.
//!
//! - The session token is 32 random bytes in the `tenantry_console` cookie
//!   (HttpOnly, SameSite=Strict, Path=/console, Secure over TLS); the
//!   database keeps its SHA-256 only (`console_sessions`).
//! - The CSRF token is derived from the session token (a hash of it under
//!   its own label), so it is known only to the page the session rendered
//!   and changes with every session. Every posted form carries it in the
//!   `csrf` field ([`Posted`]).
//! - A posted form is also refused when the browser says it came from
//!   another site (`Sec-Fetch-Site`) or another origin (`Origin`).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tenantry_ops::Actor;

use super::{ConsoleError, SecureCookie};
use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "tenantry_console";

/// A signed-in platform admin, as every console handler receives them.
#[derive(Debug, Clone)]
pub struct Session {
    /// The subject of the token they signed in with: the actor of every
    /// audit entry their actions leave.
    pub subject: String,
    /// The token every form they post must carry (`csrf`).
    pub csrf: String,
    pub signed_in_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor::subject(self.subject.clone())
    }
}

/// A fresh session token (32 bytes from the OS's generator).
pub(super) fn new_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)
        .map_err(|e| ConsoleError::Api(crate::ApiError::internal(format!("no randomness: {e}"))))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database knows a session token by.
pub(super) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of the session with this token.
pub(super) fn csrf_for(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tenantry console csrf\0");
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The session cookie for `token` (`max_age`: until the session's
/// absolute expiry).
pub(super) fn cookie(
    req: &HttpRequest,
    state: &AppState,
    token: String,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, token)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req, state))
        .finish();
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
    ));
    c
}

/// A cookie that removes the session cookie.
pub(super) fn removal(req: &HttpRequest, state: &AppState) -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "")
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req, state))
        .finish();
    c.make_removal();
    c
}

/// Whether cookies get `Secure` on this request (`[console] secure_cookie`).
pub(super) fn secure(req: &HttpRequest, state: &AppState) -> bool {
    match state.console.settings.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => req.connection_info().scheme() == "https",
    }
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ConsoleError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ConsoleError::Api(crate::ApiError::internal("AppState is not registered")))
}

/// The live session the request's cookie names, if any.
async fn live(req: &HttpRequest, state: &AppState) -> Result<Option<Session>, ConsoleError> {
    let Some(token) = req.cookie(COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    // Not one we could have issued: no database lookup.
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let idle = state.console.settings.idle_timeout;
    let found = tenantry_ops::console::session(&state.ops, token_hash(&token), idle).await?;
    Ok(found.map(|s| Session {
        subject: s.subject,
        csrf: csrf_for(&token),
        signed_in_at: s.created_at,
        expires_at: s.expires_at,
    }))
}

/// The path and query to come back to after signing in (this console's
/// own paths only).
fn back_here(req: &HttpRequest) -> String {
    let uri = req.uri();
    uri.path_and_query()
        .map_or_else(|| "/console".to_owned(), ToString::to_string)
}

impl FromRequest for Session {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            match live(&req, &state).await? {
                Some(session) => Ok(session),
                None if req.method() == Method::GET || req.method() == Method::HEAD => {
                    Err(ConsoleError::SignIn {
                        next: back_here(&req),
                    })
                }
                None => Err(ConsoleError::SessionEnded),
            }
        })
    }
}

/// Refuses a form the browser says came from another site or origin.
pub(super) fn same_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    if let Some(site) = req.headers().get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(ConsoleError::Refused(
            "this form was sent from another site; nothing was changed",
        ));
    }
    // With `Referrer-Policy: no-referrer` (ours), Chromium sends
    // `Origin: null` on a same-origin form; `Sec-Fetch-Site`, which no page
    // can set, says whether it was.
    let same_origin_fetch = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|s| s.as_bytes() == b"same-origin");
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !(origin.as_bytes() == b"null" && same_origin_fetch)
    {
        let info = req.connection_info();
        let ours = format!("{}://{}", info.scheme(), info.host());
        if origin.as_bytes() != ours.as_bytes() {
            return Err(ConsoleError::Refused(
                "this form was sent from another origin; nothing was changed",
            ));
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form posted by a signed-in admin from one of the console's own pages:
/// same origin, a live session, and that session's CSRF token in `csrf`.
/// `T` is the form's other fields (unknown fields, `csrf` among them, are
/// ignored).
#[derive(Debug)]
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
}

/// The largest form the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            same_origin(&req)?;
            let state = app_state(&req)?;
            let body = body.await.map_err(|_| {
                ConsoleError::Api(crate::ApiError::BadRequest(
                    "the form could not be read".into(),
                ))
            })?;
            if body.len() > MAX_FORM_BYTES {
                return Err(ConsoleError::Api(crate::ApiError::PayloadTooLarge(
                    MAX_FORM_BYTES,
                )));
            }
            let session = live(&req, &state)
                .await?
                .ok_or(ConsoleError::SessionEnded)?;
            let sent: CsrfField = serde_urlencoded::from_bytes(&body).map_err(|_| {
                ConsoleError::Refused("the form's security token is missing; nothing was changed")
            })?;
            if !constant_time_eq(sent.csrf.as_bytes(), session.csrf.as_bytes()) {
                return Err(ConsoleError::Refused(
                    "the form's security token does not match your session; reload the page and \
                     try again",
                ));
            }
            let form: T = serde_urlencoded::from_bytes(&body).map_err(|e| {
                ConsoleError::Api(crate::ApiError::BadRequest(format!(
                    "the form could not be read: {e}"
                )))
            })?;
            Ok(Self { session, form })
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_token_is_43_url_safe_characters_and_never_repeats() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session_and_is_not_its_stored_hash() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert_eq!(csrf_for(&a), csrf_for(&a));
        assert_ne!(csrf_for(&a), URL_SAFE_NO_PAD.encode(token_hash(&a)));
    }

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
