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
}
