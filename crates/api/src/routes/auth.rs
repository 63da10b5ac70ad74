//! `POST /v1/auth/token` (API key → short-lived tenant token) and
//! `GET /.well-known/jwks.json` (the service's public signing key).

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use tenantry_core::TenantStatus;
use tenantry_db::{DbError, ScopedFutureExt, queries};

use crate::auth::api_key;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    api_key: String,
}

/// A short-lived tenant token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until it expires.
    expires_in: u64,
}

/// The service's public signing keys (RFC 7517).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    /// One JWK per key (`kty`, `kid`, `alg`, `use`, and the key itself).
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

#[utoipa::path(tag = "auth", request_body = Exchange, responses((status = 200, body = AccessToken), (status = 429, description = "rate_limited: per API key and per client address", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/auth/token")]
pub async fn exchange_api_key(
    state: web::Data<AppState>,
    body: Json<Exchange>,
) -> Result<HttpResponse, ApiError> {
    // Every failure below is the same 401: a caller learns nothing about
    // which tenants or key ids exist.
    let presented = api_key::parse(&body.0.api_key).ok_or(ApiError::Unauthorized)?;
    let (tenant, id) = (presented.tenant, presented.id);
    // Guessing one key's secret is throttled per key, before any database
    // work (the client's address has its own limit in front of this route).
    state
        .exchange_limits
        .check(&id)
        .map_err(ApiError::RateLimited)?;
    let hash_key = state.api_key_secret.clone();
    // A writing scope: `last_used_at` is a write of the tenant's, so it
    // holds the lifecycle lock like any other and never lands after a
    // suspension.
    let found = state
        .db
        .tenant(tenant)
        .writing()
        .run(|conn| {
            async move {
                let Some(gate) = queries::tenants::gate(conn, tenant, None, None).await? else {
                    return Ok::<_, DbError>(None);
                };
                let Some(key) = queries::api_keys::hash_for_exchange(conn, tenant, id).await?
                else {
                    return Ok(None);
                };
                if !presented.matches(&hash_key, &key.hash) {
                    return Ok(None);
                }
                // The status before the write: a suspended tenant's key is
                // refused and its last use is not recorded.
                if gate.status == TenantStatus::Active {
                    queries::api_keys::touch(conn, tenant, id).await?;
                }
                Ok(Some((gate.status, key.scopes)))
            }
            .scope_boxed()
        })
        .await?;
    // The key's own scopes (never more than its creator's); a key from
    // before they were stored reads and writes.
    let scopes = match found {
        None => return Err(ApiError::Unauthorized),
        Some((TenantStatus::Active, scopes)) => {
            tenantry_ops::api_keys::stored_scopes(scopes.as_deref())
        }
        Some((status, _)) => return Err(ApiError::TenantInactive(status)),
    };
    let token = state
        .issuer
        .sign_for_api_key(id, tenant, &scopes, state.exchange_ttl)
        .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))?;
    Ok(HttpResponse::Ok().json(AccessToken {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.exchange_ttl.as_secs(),
    }))
}

#[utoipa::path(tag = "auth", responses((status = 200, body = JwkSet), (status = 429, description = "rate_limited: too many requests from this client address", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(JwkSet {
            keys: state.issuer.public_jwks(),
        })
}
