//! One module per resource; handlers are named after what they do, and
//! each is parse → call one operation (`tenantry_ops`) → respond. The route
//! table is [`configure`].

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod clusters;
pub mod domains;
pub mod events;
pub mod health;
pub mod instances;
pub mod members;
pub mod settings;
pub mod tenant;
pub mod usage;
pub mod users;
pub mod webhooks;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use tenantry_ops::Page;
use tenantry_ops::views::{List, Rehearsal};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::ApiError;
use crate::state::Addressing;

/// The tenant plane's routes (mounted at `/v1` and, optionally, at
/// `/t/{tenant_slug}/v1`).
fn tenant_plane(cfg: &mut ServiceConfig<'_>) {
    cfg.service(tenant::get_own_tenant)
        .service(tenant::get_own_quotas)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::delete_user)
        .service(members::list_members)
        .service(members::add_member)
        .service(members::get_member)
        .service(members::change_member_role)
        .service(members::remove_member)
        .service(api_keys::list_api_keys)
        .service(api_keys::create_api_key)
        .service(api_keys::revoke_api_key)
        .service(clusters::list_clusters)
        .service(clusters::create_cluster)
        .service(clusters::get_cluster)
        .service(clusters::delete_cluster)
        .service(instances::list_instances)
        .service(instances::create_instance)
        .service(instances::get_instance)
        .service(instances::update_instance)
        .service(instances::delete_instance)
        .service(events::list_events)
        .service(domains::list_domains)
        .service(domains::create_domain)
        .service(domains::get_domain)
        .service(domains::verify_domain)
        .service(domains::delete_domain)
        .service(settings::get_own_settings)
        .service(settings::replace_own_settings)
        .service(webhooks::list_webhooks)
        .service(webhooks::create_webhook)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::rotate_webhook_secret)
        .service(webhooks::list_webhook_deliveries)
        .service(webhooks::replay_webhook_delivery)
        .service(usage::get_own_usage);
}

/// The route table: every route, each documented in the OpenAPI document.
pub fn configure(cfg: &mut ServiceConfig<'_>, addressing: &Addressing) {
    cfg.app_data(web::PathConfig::default().error_handler(|e, _| ApiError::from(e).into()))
        .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::from(e).into()))
        .service(health::healthz)
        .service(health::readyz)
        .service(auth::jwks)
        // Before "/v1": a scope that matches a prefix does not fall through.
        .service(
            scope::scope("/v1/admin")
                .service(admin::health::service_health)
                .service(admin::tenants::create_tenant)
                .service(admin::tenants::list_tenants)
                .service(admin::tenants::get_tenant)
                .service(admin::tenants::update_tenant)
                .service(admin::tenants::suspend_tenant)
                .service(admin::tenants::activate_tenant)
                .service(admin::tenants::archive_tenant)
                .service(admin::tenants::delete_tenant)
                .service(admin::tenants::restore_tenant)
                .service(admin::tenants::tenant_health)
                .service(admin::tenants::export_tenant)
                .service(admin::accounts::create_account)
                .service(admin::accounts::list_accounts)
                .service(admin::accounts::get_account)
                .service(admin::accounts::update_account)
                .service(admin::accounts::list_account_tenants)
                .service(admin::accounts::suspend_account)
                .service(admin::accounts::activate_account)
                .service(admin::accounts::archive_account)
                .service(admin::accounts::delete_account)
                .service(admin::accounts::restore_account)
                .service(admin::placement::get_placement)
                .service(admin::placement::place_tenant)
                .service(admin::members::list_tenant_members)
                .service(admin::members::add_tenant_member)
                .service(admin::members::change_tenant_member_role)
                .service(admin::members::remove_tenant_member)
                .service(admin::quotas::get_quotas)
                .service(admin::quotas::replace_quotas)
                .service(admin::quotas::merge_quotas)
                .service(admin::domains::list_tenant_domains)
                .service(admin::quotas::drop_override)
                .service(admin::plans::create_plan)
                .service(admin::plans::list_plans)
                .service(admin::plans::get_plan)
                .service(admin::plans::list_plan_tenants)
                .service(admin::plans::update_plan)
                .service(admin::plans::delete_plan)
                .service(admin::plans::set_tenant_plan)
                .service(admin::audit::list_audit)
                .service(admin::retention::sweep_now)
                .service(admin::retention::list_runs)
                .service(admin::settings::get_settings)
                .service(admin::settings::replace_settings)
                .service(admin::import::import_tenant)
                .service(admin::webhooks::list_platform_webhooks)
                .service(admin::webhooks::create_platform_webhook)
                .service(admin::webhooks::webhook_outbox)
                .service(admin::webhooks::get_platform_webhook)
                .service(admin::webhooks::update_platform_webhook)
                .service(admin::webhooks::delete_platform_webhook)
                .service(admin::webhooks::rotate_platform_webhook_secret)
                .service(admin::webhooks::list_platform_webhook_deliveries)
                .service(admin::webhooks::replay_platform_webhook_delivery)
                .service(admin::usage::get_tenant_usage)
                .service(admin::usage::export_usage),
        )
        .service(
            scope::scope("/v1")
                .service(auth::exchange_api_key)
                .configure(tenant_plane),
        );
    if addressing.path_prefix {
        cfg.service(scope::scope("/t/{tenant_slug}/v1").configure(tenant_plane));
    }
}

/// Anything no route matches: a problem+json 404, like every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NOT_FOUND)
}

/// `{id}`, read by name: under `/t/{tenant_slug}/v1` the path has two
/// parameters, and a bare `Path<Id>` would refuse it (as a 404).
#[derive(Debug, Deserialize)]
pub struct ById<T> {
    pub id: T,
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn new(limit: Option<i64>, cursor: Option<String>) -> Self {
        Self { limit, cursor }
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation("limit", "must be between 1 and 100"));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(
                tenantry_core::Cursor::parse(cursor)
                    .ok_or_else(|| {
                        ApiError::validation("cursor", "is not a cursor this API returned")
                    })?
                    .id(),
            ),
        };
        Ok(Page { limit, after })
    }
}

/// `200 OK` with a JSON body.
pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// `200 OK` with a page of a list.
pub fn list<T: Serialize>(page: &List<T>) -> HttpResponse {
    HttpResponse::Ok().json(page)
}

/// `201 Created` with `Location`.
pub fn created<T: Serialize>(location: String, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header(("Location", location))
        .json(body)
}

/// `?dry_run=true` on creates: validate, check uniqueness and quota, write
/// nothing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    /// Rehearse: answer 200 with what would be created and used.
    dry_run: Option<bool>,
}

impl DryRun {
    pub fn wanted(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

/// A create that honours `?dry_run=true` and `Idempotency-Key`. `work` is
/// the operation (insert, charge the quota, record the event, in one unit
/// of work); for real it commits and `respond` answers (201); rehearsed, it
/// runs to the end, reads the usage it would leave, rolls back, and answers
/// 200 with both. With a key (never on a rehearsal) the key is claimed
/// first in the same transaction and the response stored with the create
/// (`crate::idempotency`): a retry replays it and creates nothing.
pub async fn create_or_rehearse<'a, T, F>(
    who: &crate::auth::TenantPrincipal,
    state: &crate::AppState,
    dry: &DryRun,
    key: &crate::idempotency::IdempotencyKey,
    work: F,
    respond: impl FnOnce(T) -> HttpResponse + Send + 'a,
) -> Result<HttpResponse, ApiError>
where
    F: for<'r> FnOnce(
            &'r mut tenantry_db::Conn<'r>,
        )
            -> tenantry_db::ScopedBoxFuture<'a, 'r, Result<T, tenantry_ops::Error>>
        + Send
        + 'a,
    T: Serialize + Send + 'a,
{
    create_or_rehearse_as(
        who,
        state,
        dry,
        tenantry_core::Scope::TenantWrite,
        key,
        move |conn, _| work(conn),
        respond,
    )
    .await
}

/// [`create_or_rehearse`] of a create that needs `scope` and is told what
/// its caller may do.
pub async fn create_or_rehearse_as<'a, T, F>(
    who: &crate::auth::TenantPrincipal,
    state: &crate::AppState,
    dry: &DryRun,
    scope: tenantry_core::Scope,
    key: &crate::idempotency::IdempotencyKey,
    work: F,
    respond: impl FnOnce(T) -> HttpResponse + Send + 'a,
) -> Result<HttpResponse, ApiError>
where
    F: for<'r> FnOnce(
            &'r mut tenantry_db::Conn<'r>,
            tenantry_ops::Authority,
        )
            -> tenantry_db::ScopedBoxFuture<'a, 'r, Result<T, tenantry_ops::Error>>
        + Send
        + 'a,
    T: Serialize + Send + 'a,
{
    use tenantry_db::ScopedFutureExt as _;
    use tenantry_db::queries::idempotency::Plane;
    let (tenant, dry_run) = (who.tenant_id, dry.wanted());
    if !dry_run {
        let req = key.request()?;
        let outcome = who
            .write_as(state, scope, move |conn, authority| {
                async move {
                    Ok(tenantry_ops::idempotency::run(
                        conn,
                        Plane::Tenant(tenant),
                        req.as_ref(),
                        move |c| work(c, authority),
                        move |item| crate::idempotency::present(item, respond),
                    )
                    .await?)
                }
                .scope_boxed()
            })
            .await?;
        return crate::idempotency::finish(outcome);
    }
    // A rehearsal's key is judged like any other, and never claimed.
    key.request()?;
    let (item, usage_after) = who
        .write_or_rehearse_as(state, true, scope, move |conn, authority| {
            async move {
                let item = work(&mut &**conn, authority).await?;
                let usage = tenantry_ops::quotas::usage(conn, tenant).await?;
                Ok((item, usage))
            }
            .scope_boxed()
        })
        .await?;
    Ok(ok(&Rehearsal {
        dry_run: true,
        would_create: item,
        usage_after,
    }))
}
