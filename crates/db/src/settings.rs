use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// `[database]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The service's connection: a role that owns nothing, is not superuser
    /// and has NOBYPASSRLS. `tenantry policies check` verifies that.
    pub url: SecretString,
    /// The owner role's connection, used only by `tenantry migrate`;
    /// `tenantry serve` refuses to start when it is set.
    #[serde(default)]
    pub owner_url: Option<SecretString>,
    /// The context key (at least 32 bytes): what makes the tenant context
    /// unforgeable by SQL running as the service's role (see
    /// [`crate::ContextKey`]). The same key must be installed in the
    /// database by `tenantry migrate`. Inline, else read from
    /// `context_key_file`.
    #[serde(default)]
    pub context_key: Option<SecretString>,
    #[serde(default)]
    pub context_key_file: Option<PathBuf>,
    /// Pool size.
    pub max_connections: usize,
    /// Connections kept apart for the platform scope (the admin plane, the
    /// sweeper's bookkeeping), on top of `max_connections`: a tenant's flood
    /// cannot delay a suspension by exhausting the pool.
    #[serde(default = "default_admin_connections")]
    pub admin_connections: usize,
    /// How long a request waits for a free connection before 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long opening a new connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long checking a returned connection may take.
    #[serde(with = "humantime_serde")]
    pub recycle_timeout: Duration,
    /// `statement_timeout` set on every new connection.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` set on every new connection.
    #[serde(with = "humantime_serde")]
    pub idle_in_transaction_timeout: Duration,
    /// `application_name` set on every new connection (shows in
    /// `pg_stat_activity`).
    pub application_name: String,
    /// Used only when the database has the citus extension.
    #[serde(default)]
    pub citus: CitusSettings,
    /// The usage history's period (`[usage] interval`, not a `[database]`
    /// key): every connection carries it as `tenantry.usage_interval`, so a
    /// quota charge adds to the counters of the period it falls in.
    #[serde(skip, default = "default_usage_interval")]
    pub usage_interval: Duration,
}

/// One hour, `[usage] interval`'s default.
#[must_use]
pub const fn default_usage_interval() -> Duration {
    Duration::from_secs(3600)
}

const fn default_admin_connections() -> usize {
    2
}

/// `[database.citus]`: how the service uses a Citus cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CitusSettings {
    /// Shards of the tenant tables' co-location group, when `migrate`
    /// distributes them the first time.
    pub shard_count: u32,
    /// What a tenant-plane statement that would touch more than one shard
    /// does (Citus's `multi_task_query_log_level` on the tenant pool's
    /// connections): every tenant-plane statement names its tenant, so one
    /// that fans out is a bug. `error` refuses it (the tests run so).
    pub tenant_multi_shard: MultiShardLevel,
    /// How long one dedicated placement (`POST
    /// /v1/admin/tenants/{id}/placement`) may run: its transaction's
    /// `statement_timeout`, instead of `database.statement_timeout`, since
    /// the copy of a shard group takes as long as its data does.
    #[serde(with = "humantime_serde")]
    pub placement_timeout: Duration,
}

impl Default for CitusSettings {
    fn default() -> Self {
        Self {
            shard_count: 32,
            tenant_multi_shard: MultiShardLevel::Warning,
            placement_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// A Citus log level for multi-shard statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiShardLevel {
    Off,
    Log,
    Warning,
    Error,
}

impl MultiShardLevel {
    #[must_use]
    pub fn as_guc(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Log => "log",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}
