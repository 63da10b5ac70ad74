//! The console's pages, one module per page family; each has its own
//! `configure` with its routes.

mod accounts;
mod members;
mod overview;
mod plans;
mod quotas;
mod tenant;
mod tenants;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(overview::configure);
    cfg.configure(quotas::configure);
    cfg.configure(members::configure);
    cfg.configure(accounts::configure);
    cfg.configure(plans::configure);
    // `/tenants/new` before `/tenants/{id}`.
    cfg.configure(tenants::configure)
        .configure(tenant::configure);
}
