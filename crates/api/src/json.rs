//! `Json<T>`: the request-body extractor. Wrong content type → 415, over
//! the body limit → 413, not JSON → 400, not an object or of the wrong
//! shape → 422 naming the field (through serde_path_to_error).

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState};

/// Default body limit when no `AppState` says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Json<T>(pub T);

/// A body that may be absent (no `Content-Length` or zero, no
/// `Content-Type`): `None`. A body that is present is held to every rule of
/// [`Json`] — a malformed one is an error, never silently `None`.
#[derive(Debug)]
pub struct MaybeJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for MaybeJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let absent = length == Some(0)
            || (length.is_none()
                && req.headers().get(CONTENT_TYPE).is_none()
                && req.headers().get("transfer-encoding").is_none());
        if absent {
            return Box::pin(async { Ok(MaybeJson(None)) });
        }
        let body = Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(MaybeJson(Some(body.await?.0))) })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(DEFAULT_BODY_LIMIT, |s| s.max_body_bytes);
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let json = is_json(req);
        // An idempotent create is identified by its body's canonical digest.
        let digest_for = crate::idempotency::wanted(req).then(|| req.clone());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                if declared.is_some_and(|n| n <= DRAIN_CAP) {
                    drain(&mut payload).await;
                }
                return Err(ApiError::PayloadTooLarge(limit));
            }
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    drain(&mut payload).await;
                    return Err(ApiError::PayloadTooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            // Syntax first (400), then shape (422, naming the field).
            let tree: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::BadRequest(format!("malformed JSON: {}", first_clause(&e.to_string())))
            })?;
            // Every body of this API is an object. (serde would also read a
            // struct from a JSON array, positionally: `[null, null]` must not
            // pass for `{}`.)
            if !tree.is_object() {
                return Err(ApiError::validation("body", "must be a JSON object"));
            }
            if let Some(req) = digest_for {
                req.extensions_mut()
                    .insert(crate::idempotency::BodyDigest::of(&tree));
            }
            let value = serde_path_to_error::deserialize(tree).map_err(|e| {
                let path = e.path().to_string();
                let detail = first_clause(&e.into_inner().to_string());
                let field = match path.as_str() {
                    "." => missing_field(&detail).unwrap_or_else(|| "body".to_owned()),
                    _ => path,
                };
                ApiError::Operation(tenantry_ops::Error::Validation {
                    field: field.into(),
                    detail,
                })
            })?;
            Ok(Json(value))
        })
    }
}

/// A body over the limit but under this is read and discarded before the
/// 413 goes out: closing on unread bytes makes the kernel reset the
/// connection, and the client would see a broken pipe instead of the 413.
const DRAIN_CAP: usize = 8 * 1024 * 1024;

/// Reads and discards what is left of the body, at most [`DRAIN_CAP`] bytes
/// and two seconds.
pub(crate) async fn drain(payload: &mut Payload) {
    let mut seen = 0;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len();
            if seen > DRAIN_CAP {
                break;
            }
        }
    })
    .await;
}

/// `missing field `name`` → `name`.
fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// serde's message without its " at line L column C" suffix.
fn first_clause(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    message.chars().take(200).collect()
}
