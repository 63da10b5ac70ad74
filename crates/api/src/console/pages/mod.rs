//! The console's pages, one module per page family; each has its own
//! `configure` with its routes.

mod accounts;
mod audit;
mod members;
mod overview;
mod plans;
mod quotas;
mod retention;
mod tenant;
mod tenants;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/tenants/new` before `/tenants/{id}`.
    cfg.configure(overview::configure)
        .configure(tenants::configure)
        .configure(tenant::configure)
        .configure(quotas::configure)
        .configure(members::configure)
        .configure(accounts::configure)
        .configure(plans::configure)
        .configure(retention::configure)
        .configure(audit::configure);
}
