//! Request spans: every log line of a request carries `request_id` and,
//! once the token is verified, `tenant_id`; responses echo `x-request-id`.
//! The request head is held to [`MAX_HEAD_BYTES`].
//!
//! With traces on ([`enable_traces`], `[traces] enabled`), the request's
//! span is also an OpenTelemetry server span: a W3C `traceparent` the
//! caller sent becomes its parent, its trace id is recorded as `trace_id`
//! (so every log line of the request carries it), it carries `tenant.id`
//! (set by the tenant extractor), `http.route` and
//! `http.response.status_code`, and the response echoes it as
//! `traceparent`. Off, none of this runs.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::ResponseError as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpan, RootSpanBuilder};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static TRACES: AtomicBool = AtomicBool::new(false);

/// Turns on the OpenTelemetry side of request spans, for the process:
/// called once by whoever installed the OpenTelemetry layer and the W3C
/// trace-context propagator (`tenantry::telemetry::init`).
pub fn enable_traces() {
    TRACES.store(true, Ordering::Relaxed);
}

pub(crate) fn traces() -> bool {
    TRACES.load(Ordering::Relaxed)
}

pub struct TenantrySpan;

impl RootSpanBuilder for TenantrySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let span = tracing_actix_web::root_span!(request, tenant_id = tracing::field::Empty);
        if traces() {
            follow_traceparent(request, &span);
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if traces() {
            let status = match outcome {
                Ok(response) => response.status(),
                Err(err) => err.as_response_error().status_code(),
            };
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The caller's `traceparent` (if any, and well formed) as the span's
/// parent, and the trace id the span ends up in as its `trace_id` field.
fn follow_traceparent(request: &ServiceRequest, span: &Span) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(request.headers()))
    });
    // Fails only without the OpenTelemetry layer: then there is no trace.
    if span.set_parent(parent).is_ok() {
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The W3C `traceparent` of the request's own span (`00-{trace}-{span}-
/// {flags}`), for the response: a caller can find its request's trace.
fn traceparent(span: &Span) -> Option<HeaderValue> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if !span_context.is_valid() {
        return None;
    }
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    ))
    .ok()
}

pub async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let span = if traces() {
        req.extensions().get::<RootSpan>().cloned()
    } else {
        None
    };
    let mut response = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    if let Some(value) = span.and_then(|span| traceparent(&span)) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("traceparent"), value);
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
