use serde::Deserialize;

/// `[server]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// Largest accepted JSON body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Also serve the tenant plane at `/t/{slug}/v1/...`.
    #[serde(default)]
    pub tenant_path_prefix: bool,
    /// Also address tenants by host `{slug}.{tenant_base_domain}`; empty = off.
    #[serde(default)]
    pub tenant_base_domain: String,
    /// Label rate-limit metrics by tenant (cardinality grows with tenants).
    #[serde(default)]
    pub per_tenant_metrics: bool,
    /// On SIGTERM/SIGINT: stop accepting, then give in-flight requests at
    /// most this long to finish.
    #[serde(with = "humantime_serde", default = "default_shutdown_timeout")]
    pub shutdown_timeout: std::time::Duration,
}

const fn default_shutdown_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}
