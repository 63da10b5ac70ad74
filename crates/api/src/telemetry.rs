//! Request spans: every log line of a request carries `request_id` and,
//! once the token is verified, `tenant_id`; responses echo `x-request-id`.
//! The request head is held to [`MAX_HEAD_BYTES`].

use actix_web::ResponseError as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

pub struct TenantrySpan;

impl RootSpanBuilder for TenantrySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request, tenant_id = tracing::field::Empty)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

pub async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let mut response = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

/// Largest request head (request line and headers) the API reads: beyond
/// it, 431 `headers_too_large` as problem+json. (The HTTP layer itself
/// refuses heads over 128 KiB or with more than 96 headers, with a bare
/// 431/400, before any of this code runs.)
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

pub async fn limit_head(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // Counted as on the wire: "name: value\r\n" per header.
    let head = req.method().as_str().len()
        + req.uri().path().len()
        + req.uri().query().map_or(0, |q| q.len() + 1)
        + req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD_BYTES {
        // Read what body came along first, as for a 413: closing on unread
        // bytes resets the connection, and the client sees a broken pipe
        // instead of the 431.
        let mut payload = req.take_payload();
        crate::json::drain(&mut payload).await;
        let response = crate::ApiError::HeadersTooLarge(MAX_HEAD_BYTES).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Paths that need no token (also under `/t/{slug}`): each client address
/// gets `server.client_requests_per_second` on them, and on any request
/// that carries no `Authorization` header, before any other work.
fn needs_no_token(raw_path: &str) -> bool {
    // As the router reads it: `/%72eadyz` is `/readyz`. (Most paths have no
    // escape: no copy for them.)
    let decoded;
    let path = if raw_path.contains('%') {
        decoded = percent_decoded(raw_path);
        decoded.as_str()
    } else {
        raw_path
    };
    matches!(
        path,
        "/healthz" | "/readyz" | "/openapi.json" | "/.well-known/jwks.json" | "/v1/auth/token"
    ) || (path.starts_with("/t/") && path.ends_with("/v1/auth/token"))
}

/// `%XX` escapes decoded (anything malformed kept as it is).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn limit_clients(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let anonymous = needs_no_token(req.path())
        || !req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION);
    let peer = req
        .peer_addr()
        .map(|a| crate::ratelimit::client_key(a.ip()));
    let state = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned();
    if anonymous
        && let (Some(peer), Some(state)) = (peer, state)
        && let Err(limited) = state.client_limits.check(&peer)
    {
        let mut payload = req.take_payload();
        crate::json::drain(&mut payload).await;
        let response = crate::ApiError::RateLimited(limited).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_path_is_the_path_the_router_sees() {
        for path in [
            "/readyz",
            "/%72eadyz",
            "/v1/auth/%74oken",
            "/t/acme/v1/auth/token",
            "/%68ealthz",
        ] {
            assert!(needs_no_token(path), "{path}");
        }
        for path in ["/v1/users", "/v1/auth/token/x", "/%zzreadyz", "/readyz%"] {
            assert!(!needs_no_token(path), "{path}");
        }
    }
}
