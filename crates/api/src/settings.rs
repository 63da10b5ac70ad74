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
    /// Normalised when read (lower case, no trailing dot, punycode); a port
    /// or an IP literal is refused.
    #[serde(default, deserialize_with = "base_domain")]
    pub tenant_base_domain: String,
    /// Retired (per-tenant series are `[metrics] per_tenant`, bounded by
    /// `[metrics] tenant_series`): still accepted so old configurations
    /// start; setting it only logs a deprecation warning.
    #[serde(default)]
    pub per_tenant_metrics: Option<bool>,
    /// Requests per second (and burst) from one client address to the
    /// routes that need no token (`/healthz`, `/readyz`, `/openapi.json`,
    /// the JWKS, `POST /v1/auth/token`) and to any request without an
    /// `Authorization` header; 0 = no limit. The address is the TCP peer's.
    #[serde(default = "default_client_rate")]
    pub client_requests_per_second: u32,
    #[serde(default = "default_client_burst")]
    pub client_burst: u32,
    /// Exchanges per second (and burst) of one API key at
    /// `POST /v1/auth/token`, decided before any database work; 0 = no limit.
    #[serde(default = "default_exchange_rate")]
    pub token_exchange_per_second: u32,
    #[serde(default = "default_exchange_burst")]
    pub token_exchange_burst: u32,
    /// On SIGTERM/SIGINT: stop accepting, then give in-flight requests at
    /// most this long to finish.
    #[serde(with = "humantime_serde", default = "default_shutdown_timeout")]
    pub shutdown_timeout: std::time::Duration,
    /// On SIGTERM: answer `/readyz` 503 `shutting_down` and go on serving
    /// every request, old and new, this long (for load balancers to take
    /// the replica out), then stop as `shutdown_timeout` says. SIGINT
    /// (Ctrl-C) skips it.
    #[serde(with = "humantime_serde", default = "default_shutdown_drain")]
    pub shutdown_drain: std::time::Duration,
}

/// `[metrics]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `host:port` where `serve` answers `GET /metrics`, apart from the
    /// API's port; empty = not served.
    #[serde(default)]
    pub listen: String,
    /// Per-tenant series for the tracked set; `false`: every tenant's
    /// requests are `tenant="other"`.
    #[serde(default = "default_per_tenant")]
    pub per_tenant: bool,
    /// K: how many of the busiest tenants (by requests since start) get
    /// series of their own, besides the allow list.
    #[serde(default = "default_tenant_series")]
    pub tenant_series: usize,
    /// Tenants that always get series of their own (not counted in K).
    #[serde(default)]
    pub tenant_allow_list: Vec<tenantry_core::TenantId>,
    /// How often the background refresher reads the lifecycle counts and
    /// the tracked tenants' usage (one transaction on the admin pool).
    #[serde(with = "humantime_serde", default = "default_refresh_interval")]
    pub refresh_interval: std::time::Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: String::new(),
            per_tenant: default_per_tenant(),
            tenant_series: default_tenant_series(),
            tenant_allow_list: Vec::new(),
            refresh_interval: default_refresh_interval(),
        }
    }
}

const fn default_per_tenant() -> bool {
    true
}

const fn default_tenant_series() -> usize {
    50
}

const fn default_refresh_interval() -> std::time::Duration {
    std::time::Duration::from_secs(15)
}

const fn default_shutdown_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

const fn default_shutdown_drain() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

const fn default_client_rate() -> u32 {
    100
}

const fn default_client_burst() -> u32 {
    200
}

const fn default_exchange_rate() -> u32 {
    1
}

const fn default_exchange_burst() -> u32 {
    10
}

fn base_domain<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    crate::host::base_domain(&raw)
        .map(Option::unwrap_or_default)
        .map_err(|e| serde::de::Error::custom(format!("server.tenant_base_domain {raw:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_base_domain(domain: &str) -> Result<ServerSettings, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "host": "127.0.0.1",
            "port": 8080,
            "max_body_bytes": 1024,
            "tenant_base_domain": domain,
        }))
    }

    #[test]
    fn the_base_domain_is_normalised_when_read() {
        for (raw, normal) in [
            ("Tenants.Example.COM.", "tenants.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("", ""),
        ] {
            assert_eq!(with_base_domain(raw).unwrap().tenant_base_domain, normal);
        }
    }

    #[test]
    fn a_base_domain_that_is_no_domain_is_refused() {
        for raw in ["tenants.example.com:443", "[::1]", "a..b", "a b.example"] {
            let err = with_base_domain(raw).unwrap_err().to_string();
            assert!(err.contains("tenant_base_domain"), "{raw}: {err}");
        }
    }
}
