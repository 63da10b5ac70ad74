//! The console's pages, one module per page family; each has its own
//! `configure` with its routes.

mod overview;
mod tenant;
mod tenants;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(overview::configure);
    // `/tenants/new` before `/tenants/{id}`.
    cfg.configure(tenants::configure)
        .configure(tenant::configure);
}
