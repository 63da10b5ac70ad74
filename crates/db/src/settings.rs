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
    /// Pool size.
    pub max_connections: usize,
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
}
