//! `Idempotency-Key` on creates: the header, the request's identity (its
//! operation and the hash of its canonical body) and the replay of a
//! stored response. The rules — claim the key in the create's own
//! transaction, store the response with it, replay or refuse a retry — are
//! `tenantry_ops::idempotency`'s; tenant-plane creates get them through
//! [`crate::routes::create_or_rehearse`], admin-plane creates through
//! [`admin_create`].
//!
//! A handler makes a create idempotent by taking an [`IdempotencyKey`]
//! argument (listed in its `params(...)`, which documents the header) and
//! passing it on:
//!
//! ```ignore
//! create_or_rehearse(&who, &state, &dry, &key, work, respond).await
//! admin_create(&state, &key, work, respond).await
//! ```

use std::future::{Ready, ready};
use tenantry_db::Conn;

use actix_web::body::MessageBody as _;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tenantry_db::ScopedBoxFuture;
use tenantry_ops::idempotency::{self, Outcome, Request, Response};

use crate::{ApiError, AppState};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header a replayed response carries.
pub const REPLAYED: &str = "Idempotent-Replayed";

/// The SHA-256 of a JSON body in canonical form (object keys sorted, no
/// insignificant whitespace): put in the request's extensions by
/// [`crate::json::Json`] when the request carries an `Idempotency-Key`, so
/// two bodies that mean the same are the same request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDigest(pub(crate) [u8; 32]);

impl BodyDigest {
    pub(crate) fn of(tree: &serde_json::Value) -> Self {
        let mut canonical = Vec::new();
        write_canonical(tree, &mut canonical);
        Self(Sha256::digest(&canonical).into())
    }
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&serde_json::Value::String(key.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &serde_json::Value, out: &mut Vec<u8>) {
    // Serialising a scalar Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Whether the request names an idempotency key at all (then the body
/// extractor records its digest).
pub(crate) fn wanted(req: &HttpRequest) -> bool {
    req.headers().contains_key(HEADER)
}

/// The `Idempotency-Key` of a create, if it has one. Extracting it never
/// fails: the header is judged by [`IdempotencyKey::request`], once the
/// principal is known (an unauthenticated request is refused as such
/// first).
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    req: HttpRequest,
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self { req: req.clone() }))
    }
}

impl IdempotencyKey {
    /// The idempotent request, or `None` when the header is absent. A key
    /// that is not 1 to 255 visible ASCII characters, or given twice, is
    /// 422 (`validation`, field `Idempotency-Key`).
    pub fn request(&self) -> Result<Option<Request>, ApiError> {
        let mut values = self.req.headers().get_all(HEADER);
        let value = match (values.next(), values.next()) {
            (None, _) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(HEADER, "must be given once"));
            }
            (Some(value), None) => value,
        };
        let key = value.to_str().map_err(|_| {
            ApiError::validation(HEADER, "must be 1 to 255 visible ASCII characters")
        })?;
        let operation = self.operation();
        let body = self
            .req
            .extensions()
            .get::<BodyDigest>()
            .map_or([0; 32], |d| d.0);
        let mut hash = Sha256::new();
        hash.update(operation.as_bytes());
        hash.update([0]);
        hash.update(body);
        Ok(Some(Request::new(key, operation, hash.finalize().into())?))
    }

    /// `POST /v1/users`: the method and the route's template, the same
    /// whether the tenant is addressed by path (`/t/{tenant_slug}/v1/…`) or
    /// not.
    fn operation(&self) -> String {
        let pattern = self
            .req
            .match_pattern()
            .unwrap_or_else(|| self.req.path().to_owned());
        let pattern = pattern.strip_prefix("/t/{tenant_slug}").unwrap_or(&pattern);
        format!("{} {pattern}", self.req.method())
    }
}

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        vec![
            ParameterBuilder::new()
                .name(HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes the create safe to retry: the same key with the same request within 24 \
                     hours answers the first response again (with `Idempotent-Replayed: true`) \
                     and creates nothing; the same key with another request is 422 \
                     `idempotency_key_reused`. Keys are per tenant (per platform for admin \
                     creates); 1 to 255 visible ASCII characters. Ignored with `dry_run=true`.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        // No `pattern`: generated clients would need a
                        // regex engine for it; the description says it.
                        .max_length(Some(255)),
                ))
                .build(),
        ]
    }
}

/// A response taken apart inside the transaction (an `HttpResponse` cannot
/// cross it) and put together again after the commit.
#[derive(Debug)]
pub(crate) struct Parts {
    status: StatusCode,
    location: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Parts {
    fn of(response: HttpResponse) -> Result<Self, tenantry_ops::Error> {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (location, content_type) = (header(LOCATION), header(CONTENT_TYPE));
        let status = response.status();
        let body = response.into_body().try_into_bytes().map_err(|_| {
            tenantry_ops::Error::Internal("a create answered with a streamed body".to_owned())
        })?;
        Ok(Self {
            status,
            location,
            content_type,
            body,
        })
    }

    fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(location) = self.location {
            response.insert_header((LOCATION, location));
        }
        if let Some(content_type) = self.content_type {
            response.insert_header((CONTENT_TYPE, content_type));
        }
        response.body(self.body)
    }
}

/// What a create answers (`respond`, as for a create without a key) and
/// what is stored for its replays: the same status and `Location`, and the
/// operation's view as the body — which a create's response is, except an
/// API key's, whose one-time secret is never stored (a replay shows the
/// key without it).
pub(crate) fn present<T: Serialize>(
    item: T,
    respond: impl FnOnce(T) -> HttpResponse,
) -> Result<(Parts, Response), tenantry_ops::Error> {
    let body = serde_json::to_value(&item)
        .map_err(|e| tenantry_ops::Error::Internal(format!("a view did not serialise: {e}")))?;
    let parts = Parts::of(respond(item))?;
    let stored = Response {
        status: parts.status.as_u16(),
        location: parts.location.clone(),
        body,
    };
    Ok((parts, stored))
}

/// The answer to an idempotent request's outcome.
pub(crate) fn finish(outcome: Outcome<Parts>) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Done(parts) => Ok(parts.into_response()),
        Outcome::Reused => Err(ApiError::IdempotencyKeyReused),
        Outcome::Replay(stored) => {
            let status = StatusCode::from_u16(stored.status)
                .map_err(|_| ApiError::internal(format!("stored status {}", stored.status)))?;
            let body = serde_json::to_vec(&stored.body)
                .map_err(|e| ApiError::internal(format!("stored body: {e}")))?;
            let mut response = HttpResponse::build(status);
            if let Some(location) = stored.location {
                response.insert_header((LOCATION, location));
            }
            Ok(response
                .insert_header((CONTENT_TYPE, "application/json"))
                .insert_header((REPLAYED, "true"))
                .body(body))
        }
    }
}

/// An admin-plane create (no tenant: the keys are the platform's), made
/// idempotent by `key`: `work` runs in a platform scope of its own after
/// the key is claimed (with `provision`, the provisioning scope of that new
/// tenant), and `respond` answers as it would without a key.
pub async fn admin_create<'a, T, F>(
    state: &AppState,
    key: &IdempotencyKey,
    provision: Option<tenantry_core::TenantId>,
    work: F,
    respond: impl FnOnce(T) -> HttpResponse + Send + 'a,
) -> Result<HttpResponse, ApiError>
where
    F: for<'r> FnOnce(&'r mut Conn<'r>) -> ScopedBoxFuture<'a, 'r, Result<T, tenantry_ops::Error>>
        + Send
        + 'a,
    T: Serialize + Send + 'a,
{
    let req = key.request()?;
    let outcome = idempotency::platform(&state.ops, req, provision, work, move |item| {
        present(item, respond)
    })
    .await?;
    finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_digest_ignores_key_order_and_whitespace_only() {
        let a = serde_json::json!({"name": "x", "region": "eu", "nested": {"b": 1, "a": [1, 2]}});
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "region" : "eu", "nested": {"a": [1,2], "b": 1}, "name": "x" }"#,
        )
        .unwrap();
        assert_eq!(BodyDigest::of(&a).0, BodyDigest::of(&b).0);
        let c = serde_json::json!({"name": "x", "region": "us", "nested": {"b": 1, "a": [1, 2]}});
        assert_ne!(BodyDigest::of(&a).0, BodyDigest::of(&c).0);
        let d = serde_json::json!({"name": "x", "region": "eu", "nested": {"b": 1, "a": [2, 1]}});
        assert_ne!(BodyDigest::of(&a).0, BodyDigest::of(&d).0);
    }
}
