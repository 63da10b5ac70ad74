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
}
