//! Query functions. Each takes `&mut Conn<'_>` from a scope and
//! never opens its own transaction. Tenant-plane queries name `tenant_id`
//! in their WHERE clause (so a Citus deployment routes them to one shard)
//! even though RLS would confine them anyway.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod clusters;
pub mod console_sessions;
pub mod domains;
pub mod events;
pub mod export;
pub(crate) mod fixed;
pub mod idempotency;
pub mod instances;
pub mod members;
pub mod metrics;
pub mod overview;
pub mod placement;
pub mod plans;
pub mod quotas;
pub mod retention;
pub mod settings;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;
