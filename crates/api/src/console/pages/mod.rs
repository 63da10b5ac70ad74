//! The console's pages, one module per page family; each has its own
//! `configure` with its routes.

mod audit;
mod overview;
mod retention;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(overview::configure);
    cfg.configure(retention::configure);
    cfg.configure(audit::configure);
}
