//! Tenantry's operations: each use case once, end to end — validate, write,
//! charge or release quota, record the event and the audit entry — in ONE
//! transaction, for every front door (the HTTP API, the CLI, the console).
//!
//! Front doors parse their input into the typed values these functions
//! take, call one function, and show the view it returns. They hold no rule
//! of their own.
//!
//! Two kinds of function:
//! - tenant plane (`users`, `members`, `api_keys`, `clusters`, `instances`, `events`,
//!   `tenant`): the unit of work of one request, run on the connection of
//!   the caller's [`TenantScope`](tenantry_db::TenantScope) transaction —
//!   the front door opened it, with the tenant gate as its first statement;
//! - admin plane (`accounts`, `tenants`, `quotas`, `plans`, `audit`, `retention`, `placement`):
//!   given [`Operations`], they open the platform scope (or the tenant's own
//!   scope, for its rows) themselves.

pub mod accounts;
mod actor;
pub mod api_keys;
pub mod audit;
pub mod clusters;
pub mod console;
pub mod doctor;
pub mod domains;
mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod import;
pub mod instances;
pub mod members;
pub mod metrics;
pub mod overview;
pub mod placement;
pub mod plans;
pub mod quotas;
pub mod retention;
pub mod settings;
pub mod tenant;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod views;
pub mod webhooks;

pub use actor::{Actor, TenantActor};
pub use error::{DocumentError, Error, field, violated_constraint};
pub use members::Authority;
pub use tenantry_db::models::Page;

use tenantry_db::Db;
use tenantry_sweeper::RetentionSettings;

/// Tenancy rules the admin plane applies.
#[derive(Debug, Clone)]
pub struct Tenancy {
    /// Limits a new tenant starts with (`[quotas.default]`).
    pub default_limits: views::LimitsView,
    /// Retention: how long a deleted tenant's data is kept, and how the
    /// sweeper runs (`[retention]`).
    pub retention: RetentionSettings,
    /// What a tenant's settings document must be (`[tenancy]`).
    pub settings: settings::SettingsRules,
    /// The largest import body the API reads (`tenancy.import_max_bytes`).
    pub import_max_bytes: u64,
    /// The usage history: its period and retention (`[usage]`).
    pub usage: usage::UsageSettings,
}

/// What admin-plane operations run against: the database and the rules.
#[derive(Debug, Clone)]
pub struct Operations {
    pub db: Db,
    pub tenancy: Tenancy,
}

impl Operations {
    #[must_use]
    pub fn new(db: Db, tenancy: Tenancy) -> Self {
        Self { db, tenancy }
    }
}

/// Whether `key` (a slug or name from a path) could name a row at all: not
/// longer than any name is, and free of U+0000, which PostgreSQL text cannot
/// hold (looking it up would be an error, not a miss).
fn could_name_a_row(key: &str) -> bool {
    key.len() <= 1000 && !key.contains('\0')
}

/// At most 1000 characters: why an operator did something, kept in the
/// audit log.
fn reason(reason: Option<String>) -> Result<Option<String>, Error> {
    match reason {
        Some(r) if r.chars().count() > 1000 => {
            Err(Error::validation("reason", "at most 1000 characters"))
        }
        other => Ok(other),
    }
}
