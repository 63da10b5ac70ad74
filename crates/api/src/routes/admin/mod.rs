//! `/v1/admin/...`: the platform-admin plane. Every handler takes a
//! `PlatformAdmin` and calls one admin operation (`tenantry_ops`), which
//! opens the platform scope (or the tenant's own scope for its rows).

pub mod accounts;
pub mod audit;
pub mod domains;
pub mod health;
pub mod import;
pub mod members;
pub mod placement;
pub mod plans;
pub mod quotas;
pub mod retention;
pub mod settings;
pub mod tenants;
pub mod usage;
pub mod webhooks;
