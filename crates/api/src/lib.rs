//! Tenantry's HTTP surface. Only this crate knows HTTP.

mod error;
mod routes;
mod settings;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tenantry_db::Db;
use tracing_actix_web::TracingLogger;

pub use error::ApiError;
pub use settings::ServerSettings;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

/// Registers every route. Shared by the server and the route-list test.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::health::healthz)
        .service(routes::health::readyz);
}

/// Builds the server on an already-bound listener (port 0 in tests).
pub fn server(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .configure(configure)
            .default_service(web::to(routes::not_found))
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}
