//! Tenantry's database layer. Only this crate knows SQL.
//!
//! Tenant-plane code gets a connection one way: [`TenantScope::run`], which
//! opens a transaction whose first statement sets the tenant context
//! (`SET LOCAL app.tenant_id` and its proof, through
//! `set_tenant_context($1, $2)`), so row-level security confines every
//! statement in it to that tenant. Control-plane code
//! uses [`PlatformScope::run`]. The pool itself is private to this crate.

pub mod citus;
mod context;
#[cfg(test)]
mod contract;
pub mod doctor;
mod error;
pub mod guard;
pub mod migrate;
pub mod models;
mod pool;
pub mod purge;
pub mod queries;
pub mod reconcile;
pub mod schema;
mod scope;
mod settings;

pub use context::{ContextKey, ContextKeyTooShort};
pub use diesel_async::AsyncPgConnection;
/// The connection a unit of work is handed: shared, so the scope can
/// pipeline its own statements (BEGIN, the context) with the work's.
pub type Conn<'c> = &'c AsyncPgConnection;
pub use error::DbError;
pub use guard::Violation;
pub use migrate::{Compatibility, MigrateError, MigrateOptions, MigrationReport, SchemaState};
pub use pool::{Db, PoolStatus};
pub use scope::{PlatformScope, TenantScope};
pub use scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
pub use settings::{CitusSettings, DatabaseSettings, MultiShardLevel, default_usage_interval};
