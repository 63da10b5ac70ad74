//! Tenantry's HTTP surface. Only this crate knows HTTP.

pub mod auth;
mod error;
mod host;
pub mod json;
pub mod metrics;
mod openapi;
pub mod ratelimit;
mod routes;
mod settings;
mod telemetry;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use secrecy::SecretString;
use tenantry_db::Db;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi as _;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt as _, scope};

pub use error::ApiError;
pub use openapi::document as openapi_document;
pub use settings::{MetricsSettings, ServerSettings};

use auth::{AuthSettings, Authenticator, Issuer, KeyError};

/// How requests may name their tenant besides the token.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub path_prefix: bool,
    pub base_domain: Option<String>,
}

/// How long a tenant's rate-limiter state outlives its last request.
pub const RATE_LIMIT_IDLE: Duration = Duration::from_secs(300);

/// Tenancy rules the admin plane applies.
#[derive(Debug, Clone)]
pub struct Tenancy {
    /// Limits a new tenant starts with (`[quotas.default]`).
    pub default_limits: tenantry_db::models::Limits,
    /// Retention: how long a deleted tenant's data is kept, and how the
    /// sweeper runs (`[retention]`).
    pub retention: tenantry_sweeper::RetentionSettings,
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub auth: Arc<Authenticator>,
    pub issuer: Arc<Issuer>,
    pub api_key_secret: SecretString,
    pub exchange_ttl: Duration,
    pub addressing: Addressing,
    pub max_body_bytes: usize,
    pub tenancy: Tenancy,
    pub metrics: Arc<metrics::Metrics>,
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// Per API key at `POST /v1/auth/token`.
    pub exchange_limits: Arc<ratelimit::KeyedLimits<tenantry_core::ApiKeyId>>,
    /// Per client address on the routes that need no token.
    pub client_limits: Arc<ratelimit::KeyedLimits<std::net::IpAddr>>,
    /// Raised at shutdown: sweeps stop at their next batch boundary.
    pub stop: tenantry_sweeper::Stop,
    stop_sender: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Loads (or, in development, generates) the keys and builds the state.
    pub fn new(
        db: Db,
        auth_settings: &AuthSettings,
        server: &ServerSettings,
        tenancy: Tenancy,
    ) -> Result<Self, KeyError> {
        let service_key = auth::keys::load_service_key(auth_settings)?;
        let auth = Authenticator::new(auth_settings, &service_key)?;
        let issuer = Issuer::new(auth_settings, service_key);
        let (stop_sender, stop) = tenantry_sweeper::Stop::new();
        let default_rate = ratelimit::Rate::from_columns(
            tenancy.default_limits.requests_per_second,
            tenancy.default_limits.burst,
        );
        Ok(Self {
            db,
            auth: Arc::new(auth),
            issuer: Arc::new(issuer),
            api_key_secret: auth::keys::load_api_key_secret(auth_settings)?,
            exchange_ttl: auth_settings.exchange_ttl,
            addressing: Addressing {
                path_prefix: server.tenant_path_prefix,
                // Normalised, and refused if invalid, when the settings
                // were read (`ServerSettings`).
                base_domain: host::base_domain(&server.tenant_base_domain).ok().flatten(),
            },
            max_body_bytes: server.max_body_bytes,
            tenancy,
            metrics: Arc::new(metrics::Metrics::new(server.per_tenant_metrics)),
            rate_limits: Arc::new(ratelimit::RateLimits::new(RATE_LIMIT_IDLE, default_rate)),
            exchange_limits: Arc::new(ratelimit::KeyedLimits::new(
                RATE_LIMIT_IDLE,
                ratelimit::Rate {
                    per_second: server.token_exchange_per_second,
                    burst: server.token_exchange_burst,
                },
            )),
            client_limits: Arc::new(ratelimit::KeyedLimits::new(
                RATE_LIMIT_IDLE,
                ratelimit::Rate {
                    per_second: server.client_requests_per_second,
                    burst: server.client_burst,
                },
            )),
            stop,
            stop_sender: Arc::new(stop_sender),
        })
    }

    /// Asks background work (sweeps) to stop at its next batch boundary.
    pub fn raise_stop(&self) {
        self.stop_sender.send_replace(true);
    }
}

/// The tenant plane's routes (mounted at `/v1` and, optionally, at
/// `/t/{tenant_slug}/v1`).
fn tenant_plane(cfg: &mut ServiceConfig<'_>) {
    cfg.service(routes::tenant::get_own_tenant)
        .service(routes::tenant::get_own_quotas)
        .service(routes::users::list_users)
        .service(routes::users::create_user)
        .service(routes::users::get_user)
        .service(routes::users::update_user)
        .service(routes::users::delete_user)
        .service(routes::api_keys::list_api_keys)
        .service(routes::api_keys::create_api_key)
        .service(routes::api_keys::revoke_api_key)
        .service(routes::clusters::list_clusters)
        .service(routes::clusters::create_cluster)
        .service(routes::clusters::get_cluster)
        .service(routes::clusters::delete_cluster)
        .service(routes::instances::list_instances)
        .service(routes::instances::create_instance)
        .service(routes::instances::get_instance)
        .service(routes::instances::update_instance)
        .service(routes::instances::delete_instance)
        .service(routes::events::list_events);
}

/// Registers every route, documenting each in the OpenAPI document.
fn configure(cfg: &mut ServiceConfig<'_>, addressing: &Addressing) {
    cfg.app_data(web::PathConfig::default().error_handler(|e, _| ApiError::from(e).into()))
        .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::from(e).into()))
        .service(routes::health::healthz)
        .service(routes::health::readyz)
        .service(routes::auth::jwks)
        // Before "/v1": a scope that matches a prefix does not fall through.
        .service(
            scope::scope("/v1/admin")
                .service(routes::admin::tenants::create_tenant)
                .service(routes::admin::tenants::list_tenants)
                .service(routes::admin::tenants::get_tenant)
                .service(routes::admin::tenants::update_tenant)
                .service(routes::admin::tenants::suspend_tenant)
                .service(routes::admin::tenants::activate_tenant)
                .service(routes::admin::tenants::archive_tenant)
                .service(routes::admin::tenants::delete_tenant)
                .service(routes::admin::tenants::restore_tenant)
                .service(routes::admin::tenants::tenant_health)
                .service(routes::admin::tenants::export_tenant)
                .service(routes::admin::placement::get_placement)
                .service(routes::admin::placement::place_tenant)
                .service(routes::admin::quotas::get_quotas)
                .service(routes::admin::quotas::replace_quotas)
                .service(routes::admin::quotas::merge_quotas)
                .service(routes::admin::audit::list_audit)
                .service(routes::admin::retention::sweep_now)
                .service(routes::admin::retention::list_runs),
        )
        .service(
            scope::scope("/v1")
                .service(routes::auth::exchange_api_key)
                .configure(tenant_plane),
        );
    if addressing.path_prefix {
        cfg.service(scope::scope("/t/{tenant_slug}/v1").configure(tenant_plane));
    }
}

/// Builds the server on an already-bound listener (port 0 in tests).
/// The HTTP server. It does not handle signals itself: `serve` does, so that
/// one SIGTERM also stops the sweeper (see `Server::handle`).
pub fn server(
    listener: TcpListener,
    state: AppState,
    workers: usize,
    shutdown_timeout: Duration,
) -> std::io::Result<Server> {
    let addressing = state.addressing.clone();
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let addressing = addressing.clone();
        App::new()
            .into_utoipa_app()
            .openapi(openapi::ApiDoc::openapi())
            .app_data(state.clone())
            .configure(|cfg| configure(cfg, &addressing))
            .openapi_service(|mut api| {
                openapi::finish(&mut api);
                let body = api.to_json().unwrap_or_default();
                web::resource("/openapi.json").route(web::get().to(move || {
                    let body = body.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }))
            })
            .into_app()
            .wrap(actix_web::middleware::from_fn(telemetry::limit_clients))
            .wrap(actix_web::middleware::from_fn(telemetry::limit_head))
            .wrap(actix_web::middleware::from_fn(telemetry::echo_request_id))
            .wrap(TracingLogger::<telemetry::TenantrySpan>::new())
            .default_service(web::to(routes::not_found))
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(shutdown_timeout.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

/// `/metrics` on a listener of its own (`[metrics] listen`; loopback by
/// default), apart from the public API: nothing else is served there, and
/// the route is not in `/openapi.json`. Stopped with the main server.
pub fn metrics_server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(metrics::serve)
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}
