//! `/v1/api-keys`: long-lived keys a tenant exchanges for short-lived tokens.
//! The secret is shown once, at creation; only its keyed hash is stored.
//! Managing keys needs `tenant:admin`; a key's scopes are never more than
//! its creator's.

use actix_web::{HttpResponse, delete, get, post, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tenantry_core::{ApiKeyId, Name, Scope};
use tenantry_db::ScopedFutureExt;
use tenantry_db::queries::api_keys::StoredHash;
use tenantry_ops::api_keys::{self, NewApiKey};
use tenantry_ops::field;
use tenantry_ops::views::{ApiKeyView, CreatedApiKey, List, Rehearsal};

use super::{ById, DryRun, PageQuery, create_or_rehearse_as, created, list};
use crate::auth::{TenantPrincipal, api_key};
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
    /// What the tokens it is exchanged for may do: tenant-plane scopes, no
    /// more than the creator's own. Default: `["tenant:read", "tenant:write"]`.
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(PageQuery), responses((status = 200, description = "Needs tenant:admin", body = List<ApiKeyView>)))]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read_as(&state, Scope::TenantAdmin, |conn, authority| {
            async move { Ok(api_keys::list(conn, tenant, &authority, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = CreateApiKey, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; no key is stored and no secret shown", body = Rehearsal<ApiKeyView>), (status = 201, description = "The key, with its secret: the only time it is shown. A replay (`Idempotency-Key`, `Idempotent-Replayed: true`) shows the key without its secret, which is never stored", body = CreatedApiKey), (status = 422, description = "validation: e.g. `scopes` more than the creator's own", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateApiKey>,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = field("name", Name::parse(&body.name))?;
    let scopes = body
        .scopes
        .as_ref()
        .map(|names| {
            field(
                "scopes",
                api_keys::parse_scopes(names.iter().map(String::as_str)),
            )
        })
        .transpose()?;
    let actor = who.actor();
    let minted = api_key::mint(&state.api_key_secret, who.tenant_id);
    let new = NewApiKey {
        id: minted.id,
        name,
        prefix: minted.prefix.clone(),
        hash: StoredHash {
            hash: minted.hash.clone(),
            version: minted.hash_version,
        },
        scopes,
    };
    // A rehearsed key is never stored, and its secret is never shown.
    create_or_rehearse_as(
        &who,
        &state,
        &dry,
        Scope::TenantAdmin,
        &key,
        |conn, authority| {
            async move { api_keys::create(conn, &actor, &authority, new).await }.scope_boxed()
        },
        |key| {
            let shown = CreatedApiKey {
                id: key.id,
                name: key.name,
                prefix: key.prefix,
                created_at: key.created_at,
                scopes: key.scopes,
                secret: minted.secret.expose_secret().to_owned(),
            };
            created(format!("/v1/api-keys/{}", shown.id), &shown)
        },
    )
    .await
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The key's id")), responses((status = 204, description = "Revoked")))]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<ApiKeyId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    who.write_as(&state, Scope::TenantAdmin, |conn, authority| {
        async move { Ok(api_keys::revoke(conn, &actor, &authority, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
