//! `/v1/api-keys`: long-lived keys a tenant exchanges for short-lived tokens.
//! The secret is shown once, at creation; only its keyed hash is stored.

use actix_web::{HttpResponse, delete, get, post, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use tenantry_core::{ApiKeyId, Name, Resource};
use tenantry_db::{ScopedFutureExt, queries};

use super::{DryRun, PageQuery, charge, create_or_rehearse, field, list, one};
use crate::auth::{TenantPrincipal, api_key};
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(super::PageQuery), responses((status = 200, body = super::List<tenantry_db::models::ApiKey>), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let tenant = who.tenant_id;
    let (items, more) = who
        .read(&state, |conn| {
            async move { Ok(queries::api_keys::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(items, more, |k| *k.id.as_uuid()))
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(super::DryRun), request_body = CreateApiKey, responses((status = 200, description = "`dry_run=true`: what would be created and the usage after it; nothing is written", body = Object), (status = 201, description = "The key; `secret` is shown only here", body = Object), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateApiKey>,
    dry: web::Query<DryRun>,
) -> Result<HttpResponse, ApiError> {
    let name = field("name", Name::parse(&body.0.name))?;
    let (tenant, actor) = (who.tenant_id, who.sub.clone());
    let minted = api_key::mint(&state.api_key_secret, tenant);
    let (id, prefix) = (minted.id, minted.prefix.clone());
    let hash = queries::api_keys::StoredHash {
        hash: minted.hash.clone(),
        version: minted.hash_version,
    };
    // A rehearsed key is never stored, and its secret is never shown.
    create_or_rehearse(
        &who,
        &state,
        &dry,
        |conn| {
            async move {
                let key =
                    queries::api_keys::create(conn, tenant, id, name.as_str(), &prefix, &hash)
                        .await?;
                charge(conn, tenant, one(Resource::ApiKeys)).await?;
                queries::events::record(
                    conn,
                    tenant,
                    "api_key.created",
                    &actor,
                    Some(*id.as_uuid()),
                    json!({"prefix": prefix}),
                )
                .await?;
                Ok(key)
            }
            .scope_boxed()
        },
        |key| {
            HttpResponse::Created()
                .insert_header(("Location", format!("/v1/api-keys/{}", key.id)))
                .json(json!({
                    "id": key.id,
                    "name": key.name,
                    "prefix": key.prefix,
                    "created_at": key.created_at,
                    "secret": minted.secret.expose_secret(),
                }))
        },
    )
    .await
}

#[utoipa::path(tag = "api-keys", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The resource id")), responses((status = 204, description = "Revoked"), (status = "4XX", description = "problem+json: unauthorized, forbidden, tenant_*, not_found, validation", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, actor) = (who.tenant_id, id.into_inner(), who.sub.clone());
    who.write(&state, |conn| {
        async move {
            if !queries::api_keys::revoke(conn, tenant, id).await? {
                return Err(ApiError::NotFound);
            }
            charge(conn, tenant, one(Resource::ApiKeys).negated()).await?;
            queries::events::record(
                conn,
                tenant,
                "api_key.revoked",
                &actor,
                Some(*id.as_uuid()),
                json!({}),
            )
            .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
