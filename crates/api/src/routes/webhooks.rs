//! `/v1/webhooks`: a tenant's webhook endpoints, which hear the tenant's
//! events (its own activity and its lifecycle changes) signed with their
//! secret, and their deliveries. Everything here needs `tenant:admin`.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Deserializer};
use tenantry_core::{DeliveryId, Scope, WebhookId};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::views::{DeliveryView, List, WebhookSecretView, WebhookView};
use tenantry_ops::webhooks::{self, NewWebhook, WebhookPatch};

use super::{ById, PageQuery, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::json::Json;
use crate::{ApiError, AppState};

/// A new webhook endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http` or `https`. Loopback, private, link-local and metadata
    /// addresses are refused (422) unless the operator allows them; the
    /// address a name resolves to is checked again at every delivery.
    #[schema(example = "https://billing.example.com/hooks/tenantry")]
    pub url: String,
    /// The event types to deliver (`user.created`, `instance.deleted`,
    /// `tenant.suspend`, ...); absent or `null`: every event.
    pub event_types: Option<Vec<String>>,
    /// At most 500 characters.
    pub description: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

impl From<CreateWebhook> for NewWebhook {
    fn from(b: CreateWebhook) -> Self {
        Self {
            url: b.url,
            event_types: b.event_types,
            description: b.description,
            enabled: b.enabled,
        }
    }
}

/// Fields to change; absent ones stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    /// `null`: every event from now on.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A field that is present, `null` included (`Some(None)`); absent is
/// `None` (through `default`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl From<UpdateWebhook> for WebhookPatch {
    fn from(b: UpdateWebhook) -> Self {
        Self {
            url: b.url,
            event_types: b.event_types,
            description: b.description,
            enabled: b.enabled,
        }
    }
}

/// `{id}/deliveries/{delivery_id}`, read by name.
#[derive(Debug, Deserialize)]
pub struct DeliveryPath {
    pub id: WebhookId,
    pub delivery_id: DeliveryId,
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<WebhookView>)))]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), request_body = CreateWebhook, responses((status = 201, description = "Registered; `secret` is shown this once", body = WebhookSecretView)))]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    body: Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let new = NewWebhook::from(body.0);
    // Refused before any transaction (the gate included) begins.
    webhooks::check(&state.webhooks, &new)?;
    let (actor, settings) = (who.actor(), std::sync::Arc::clone(&state.webhooks));
    let view = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::create(conn, &actor, &settings, new).await?) }.scope_boxed()
        })
        .await?;
    Ok(created(format!("/v1/webhooks/{}", view.webhook.id), &view))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 200, body = WebhookView)))]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let view = who
        .read_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), request_body = UpdateWebhook, responses((status = 200, body = WebhookView)))]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<WebhookId>>,
    body: Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let (id, actor) = (id.into_inner().id, who.actor());
    let (patch, settings) = (
        WebhookPatch::from(body.0),
        std::sync::Arc::clone(&state.webhooks),
    );
    let view = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::update(conn, &actor, &settings, id, patch).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 204, description = "Deleted, with its deliveries")))]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    let (id, actor) = (id.into_inner().id, who.actor());
    who.write_as(&state, Scope::TenantAdmin, |conn, _| {
        async move { Ok(webhooks::delete(conn, &actor, id).await?) }.scope_boxed()
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 200, description = "A new secret, shown this once; the old one signs nothing from now on", body = WebhookSecretView)))]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    let (id, actor) = (id.into_inner().id, who.actor());
    let view = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::rotate_secret(conn, &actor, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id"), PageQuery), responses((status = 200, description = "Newest first, each with its attempts", body = List<DeliveryView>)))]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_webhook_deliveries(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<WebhookId>>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, page) = (who.tenant_id, id.into_inner().id, query.page()?);
    let page = who
        .read_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::deliveries(conn, tenant, id, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id"), ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id")), responses((status = 200, description = "Pending again, due now, with a fresh attempt budget", body = DeliveryView)))]
#[post("/webhooks/{id}/deliveries/{delivery_id}/replay")]
pub async fn replay_webhook_delivery(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    path: web::Path<DeliveryPath>,
) -> Result<HttpResponse, ApiError> {
    let (path, actor) = (path.into_inner(), who.actor());
    let view = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(webhooks::replay(conn, &actor, path.id, path.delivery_id).await?) }
                .scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}
