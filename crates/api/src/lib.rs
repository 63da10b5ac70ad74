//! Tenantry's HTTP surface. Only this crate knows HTTP: it parses
//! requests, calls one operation (`tenantry_ops`) and answers with its view
//! or its error as problem+json.
//!
//! Where things are: the route table is [`routes::configure`], handlers are
//! `routes/<resource>.rs` (admin plane: `routes/admin/`), the state they
//! reach is [`AppState`] (`state.rs`), errors map to problem+json in
//! `error.rs`, the OpenAPI document is assembled in `openapi.rs`.

pub mod auth;
pub mod console;
mod docs;
pub mod domains;
mod error;
mod host;
pub mod idempotency;
pub mod json;
pub mod metrics;
mod openapi;
pub mod ratelimit;
mod routes;
mod settings;
mod state;
mod telemetry;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi as _;
use utoipa_actix_web::AppExt as _;

pub use domains::DomainSettings;
pub use error::ApiError;
pub use openapi::document as openapi_document;
pub use settings::{MetricsSettings, ServerSettings};
pub use state::{Addressing, AppState, RATE_LIMIT_IDLE};
pub use telemetry::enable_traces;
pub use tenantry_ops::Tenancy;

/// The HTTP server, on an already-bound listener (port 0 in tests). It does not handle signals itself: `serve` does, so that
/// one SIGTERM also stops the sweeper (see `Server::handle`).
pub fn server(
    listener: TcpListener,
    state: AppState,
    workers: usize,
    shutdown_timeout: Duration,
) -> std::io::Result<Server> {
    let addressing = state.addressing.clone();
    let console = state.console.settings.enabled;
    // The JWKS URL's scheduled refetch (once per state, however many servers).
    state.auth.start_jwks_refresh();
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let addressing = addressing.clone();
        App::new()
            .into_utoipa_app()
            .openapi(openapi::ApiDoc::openapi())
            .app_data(state.clone())
            .configure(|cfg| routes::configure(cfg, &addressing))
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
            .configure(docs::configure)
            .configure(|cfg| {
                if console {
                    console::configure(cfg);
                }
            })
            .wrap(actix_web::middleware::from_fn(telemetry::limit_clients))
            .wrap(actix_web::middleware::from_fn(telemetry::limit_head))
            .wrap(actix_web::middleware::from_fn(telemetry::echo_request_id))
            // Inside the root span: counts and times every request.
            .wrap(actix_web::middleware::from_fn(metrics::middleware::record))
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
