//! `/v1/admin/webhooks`: the platform's webhook endpoints, which hear
//! every tenant's lifecycle, quota and purge events (and tenant creation
//! and imports), and the outbox's counts.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use tenantry_core::WebhookId;
use tenantry_ops::views::{DeliveryView, List, OutboxView, WebhookSecretView, WebhookView};
use tenantry_ops::webhooks::{self, NewWebhook, WebhookPatch};

use crate::auth::PlatformAdmin;
use crate::json::Json;
use crate::routes::webhooks::{CreateWebhook, DeliveryPath, UpdateWebhook};
use crate::routes::{ById, PageQuery, created, list, ok};
use crate::{ApiError, AppState};

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<WebhookView>)))]
#[get("/webhooks")]
pub async fn list_platform_webhooks(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(list(
        &webhooks::admin_list(&state.ops, query.page()?).await?,
    ))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = CreateWebhook, responses((status = 201, description = "Registered; `secret` is shown this once", body = WebhookSecretView)))]
#[post("/webhooks")]
pub async fn create_platform_webhook(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    body: Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let view = webhooks::admin_create(
        &state.ops,
        &admin.actor(),
        &state.webhooks,
        NewWebhook::from(body.0),
    )
    .await?;
    Ok(created(
        format!("/v1/admin/webhooks/{}", view.webhook.id),
        &view,
    ))
}

/// The outbox: pending and failed deliveries (tenants' and the
/// platform's), and what this replica's worker has done since it started.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = OutboxView)))]
#[get("/webhooks/outbox")]
pub async fn webhook_outbox(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(
        &webhooks::outbox(&state.ops, &state.webhook_stats).await?
    ))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 200, body = WebhookView)))]
#[get("/webhooks/{id}")]
pub async fn get_platform_webhook(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(
        &webhooks::admin_get(&state.ops, id.into_inner().id).await?
    ))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), request_body = UpdateWebhook, responses((status = 200, body = WebhookView)))]
#[patch("/webhooks/{id}")]
pub async fn update_platform_webhook(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    id: web::Path<ById<WebhookId>>,
    body: Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let view = webhooks::admin_update(
        &state.ops,
        &admin.actor(),
        &state.webhooks,
        id.into_inner().id,
        WebhookPatch::from(body.0),
    )
    .await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 204, description = "Deleted, with its deliveries")))]
#[delete("/webhooks/{id}")]
pub async fn delete_platform_webhook(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    webhooks::admin_delete(&state.ops, &admin.actor(), id.into_inner().id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id")), responses((status = 200, description = "A new secret, shown this once", body = WebhookSecretView)))]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_platform_webhook_secret(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    id: web::Path<ById<WebhookId>>,
) -> Result<HttpResponse, ApiError> {
    let view =
        webhooks::admin_rotate_secret(&state.ops, &admin.actor(), id.into_inner().id).await?;
    Ok(ok(&view))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id"), PageQuery), responses((status = 200, description = "Newest first, each with its attempts", body = List<DeliveryView>)))]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_platform_webhook_deliveries(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    id: web::Path<ById<WebhookId>>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(list(
        &webhooks::admin_deliveries(&state.ops, id.into_inner().id, query.page()?).await?,
    ))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The webhook's id"), ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id")), responses((status = 200, description = "Pending again, due now, with a fresh attempt budget", body = DeliveryView)))]
#[post("/webhooks/{id}/deliveries/{delivery_id}/replay")]
pub async fn replay_platform_webhook_delivery(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    path: web::Path<DeliveryPath>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let view =
        webhooks::admin_replay(&state.ops, &admin.actor(), path.id, path.delivery_id).await?;
    Ok(ok(&view))
}
