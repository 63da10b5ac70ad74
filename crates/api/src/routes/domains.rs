//! `/v1/domains`: a tenant's custom domains. Registering, verifying and
//! deleting need `tenant:admin`; reading, `tenant:read`. Each change drops
//! this replica's cached host → tenant answer for the name at once.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use tenantry_core::{DomainId, Hostname, Scope};
use tenantry_db::ScopedFutureExt;
use tenantry_ops::domains;
use tenantry_ops::views::{DomainView, List, Rehearsal};

use super::{ById, DryRun, PageQuery, create_or_rehearse_as, created, list, ok};
use crate::auth::TenantPrincipal;
use crate::idempotency::IdempotencyKey;
use crate::json::Json;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// A domain name (`shop.example.com`): no port, no IP address, not the
    /// service's own base domain nor under it. Stored normalised.
    hostname: String,
}

#[utoipa::path(tag = "domains", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<DomainView>)))]
#[get("/domains")]
pub async fn list_domains(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, tenant) = (query.page()?, who.tenant_id);
    let page = who
        .read(&state, |conn| {
            async move { Ok(domains::list(conn, tenant, page).await?) }.scope_boxed()
        })
        .await?;
    Ok(list(&page))
}

#[utoipa::path(tag = "domains", security(("bearer" = [])), params(DryRun, IdempotencyKey), request_body = CreateDomain, responses((status = 200, description = "`dry_run=true`: the claim that would be registered; nothing is stored", body = Rehearsal<DomainView>), (status = 201, description = "Registered, pending: publish the TXT record or serve the file it describes, then verify", body = DomainView)))]
#[post("/domains")]
pub async fn create_domain(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    dry: web::Query<DryRun>,
    key: IdempotencyKey,
    body: Json<CreateDomain>,
) -> Result<HttpResponse, ApiError> {
    let hostname = Hostname::parse(&body.0.hostname, state.addressing.base_domain.as_deref())
        .map_err(|e| ApiError::validation("hostname", e.to_string()))?;
    let actor = who.actor();
    let name = hostname.clone();
    let response = create_or_rehearse_as(
        &who,
        &state,
        &dry,
        Scope::TenantAdmin,
        &key,
        |conn, _| async move { domains::create(conn, &actor, &name).await }.scope_boxed(),
        |view| created(format!("/v1/domains/{}", view.id), &view),
    )
    .await?;
    state.forget_host(hostname.as_str());
    Ok(response)
}

#[utoipa::path(tag = "domains", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The domain's id")), responses((status = 200, body = DomainView)))]
#[get("/domains/{id}")]
pub async fn get_domain(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<DomainId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (who.tenant_id, id.into_inner().id);
    let view = who
        .read(&state, |conn| {
            async move { Ok(domains::get(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    Ok(ok(&view))
}

/// Looks for the domain's proof now (DNS TXT and HTTP). Neither found:
/// 422 `domain_not_verified`, whose `detail` says what each check found.
#[utoipa::path(tag = "domains", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The domain's id")), responses((status = 200, description = "Verified (now, or already): requests to the name address this tenant", body = DomainView)))]
#[post("/domains/{id}/verify")]
pub async fn verify_domain(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<DomainId>>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, actor) = (who.tenant_id, id.into_inner().id, who.actor());
    // Only an admin may make the service look (DNS, HTTP).
    let challenge = who
        .read_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(domains::challenge(conn, tenant, id).await?) }.scope_boxed()
        })
        .await?;
    // No transaction is open while the checks run.
    let proof = domains::check(state.verifier.as_ref(), &challenge).await?;
    let view = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(domains::verify(conn, &actor, proof).await?) }.scope_boxed()
        })
        .await?;
    state.forget_host(&view.hostname);
    Ok(ok(&view))
}

#[utoipa::path(tag = "domains", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "The domain's id")), responses((status = 204, description = "Deleted: the name addresses no tenant from now on")))]
#[delete("/domains/{id}")]
pub async fn delete_domain(
    state: web::Data<AppState>,
    who: TenantPrincipal,
    id: web::Path<ById<DomainId>>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (who.actor(), id.into_inner().id);
    let hostname = who
        .write_as(&state, Scope::TenantAdmin, |conn, _| {
            async move { Ok(domains::delete(conn, &actor, id).await?) }.scope_boxed()
        })
        .await?;
    state.forget_host(&hostname);
    Ok(HttpResponse::NoContent().finish())
}
