//! What every handler can reach: [`AppState`], built once per process.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tenantry_db::Db;
use tenantry_ops::{Operations, Tenancy};

use crate::auth::{AuthSettings, Authenticator, Issuer, KeyError};
use crate::domains::{DomainSettings, DomainSettingsError, NetworkVerifier};
use crate::{ApiError, ServerSettings, auth, host, metrics, ratelimit};

/// How requests may name their tenant besides the token.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub path_prefix: bool,
    pub base_domain: Option<String>,
}

/// How long a tenant's rate-limiter state outlives its last request.
pub const RATE_LIMIT_IDLE: Duration = Duration::from_secs(300);

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// Every use case (the same functions the CLI and the console call).
    pub ops: Operations,
    pub auth: Arc<Authenticator>,
    pub issuer: Arc<Issuer>,
    pub api_key_secret: SecretString,
    pub exchange_ttl: Duration,
    pub addressing: Addressing,
    pub max_body_bytes: usize,
    pub metrics: Arc<metrics::Metrics>,
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// Slugs to tenants, for member tokens that name no tenant
    /// (`auth::resolve`).
    pub addressed_tenants: Arc<auth::resolve::AddressedTenants>,
    /// Per API key at `POST /v1/auth/token`.
    pub exchange_limits: Arc<ratelimit::KeyedLimits<tenantry_core::ApiKeyId>>,
    /// Per client address on the routes that need no token.
    pub client_limits: Arc<ratelimit::KeyedLimits<std::net::IpAddr>>,
    /// Where custom domains' proofs are looked for (`[domains]`).
    pub verifier: Arc<dyn tenantry_ops::domains::Verifier>,
    /// Custom domain → tenant (or none), for routing: see
    /// [`AppState::tenant_for_host`].
    hosts: moka::sync::Cache<String, Option<tenantry_core::TenantId>>,
    /// The operator console's settings and sign-in limiter (`[console]`).
    pub console: Arc<crate::console::ConsoleState>,
    /// `[webhooks]`: the SSRF guard at registration, the delivery worker.
    pub webhooks: Arc<tenantry_ops::webhooks::WebhookSettings>,
    /// What this process's webhook delivery worker has done.
    pub webhook_stats: Arc<tenantry_ops::webhooks::DeliveryStats>,
    /// Raised at shutdown: sweeps stop at their next batch boundary.
    pub stop: tenantry_sweeper::Stop,
    stop_sender: Arc<tokio::sync::watch::Sender<bool>>,
    /// Set once shutdown began: `/readyz` answers 503 `shutting_down`.
    draining: Arc<std::sync::atomic::AtomicBool>,
}

/// Bounded; entries live `ttl` at most.
fn host_cache(ttl: Duration) -> moka::sync::Cache<String, Option<tenantry_core::TenantId>> {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(ttl)
        .build()
}

impl AppState {
    /// Loads (or, in development, generates) the keys and builds the state.
    pub fn new(
        db: Db,
        auth_settings: &AuthSettings,
        server: &ServerSettings,
        tenancy: Tenancy,
    ) -> Result<Self, KeyError> {
        let service_key = auth::keys::load_service_key(auth_settings)?;
        let auth = Authenticator::new(auth_settings, &service_key)?;
        let issuer = Issuer::new(auth_settings, service_key);
        let (stop_sender, stop) = tenantry_sweeper::Stop::new();
        let default_rate = ratelimit::Rate::from_columns(
            tenancy.default_limits.requests_per_second,
            tenancy.default_limits.burst,
        );
        let configured = metrics::Configured {
            retention_period: tenancy.retention.period,
            sweep_interval: tenancy.retention.sweep_interval,
            sweeper_enabled: tenancy.retention.enabled,
        };
        let webhook_stats = Arc::<tenantry_ops::webhooks::DeliveryStats>::default();
        let metrics = metrics::Metrics::with_db(
            &crate::MetricsSettings::default(),
            &db,
            configured,
            Arc::clone(&webhook_stats),
        );
        Ok(Self {
            ops: Operations::new(db.clone(), tenancy),
            db,
            auth: Arc::new(auth),
            issuer: Arc::new(issuer),
            api_key_secret: auth::keys::load_api_key_secret(auth_settings)?,
            exchange_ttl: auth_settings.exchange_ttl,
            addressing: Addressing {
                path_prefix: server.tenant_path_prefix,
                // Normalised, and refused if invalid, when the settings
                // were read (`ServerSettings`).
                base_domain: host::base_domain(&server.tenant_base_domain).ok().flatten(),
            },
            max_body_bytes: server.max_body_bytes,
            metrics: Arc::new(metrics),
            rate_limits: Arc::new(ratelimit::RateLimits::new(RATE_LIMIT_IDLE, default_rate)),
            addressed_tenants: Arc::default(),
            exchange_limits: Arc::new(ratelimit::KeyedLimits::new(
                RATE_LIMIT_IDLE,
                ratelimit::Rate {
                    per_second: server.token_exchange_per_second,
                    burst: server.token_exchange_burst,
                },
            )),
            client_limits: Arc::new(ratelimit::KeyedLimits::new(
                RATE_LIMIT_IDLE,
                ratelimit::Rate {
                    per_second: server.client_requests_per_second,
                    burst: server.client_burst,
                },
            )),
            verifier: Arc::new(NetworkVerifier::default()),
            hosts: host_cache(DomainSettings::default().cache_ttl),
            console: Arc::new(crate::console::ConsoleState::new(
                crate::console::ConsoleSettings::default(),
            )),
            webhooks: Arc::default(),
            webhook_stats,
            stop,
            stop_sender: Arc::new(stop_sender),
            draining: Arc::default(),
        })
    }

    /// With these `[domains]` settings (the defaults otherwise: the
    /// system's resolver, port 80, a 30 s host cache).
    pub fn with_domains(mut self, settings: &DomainSettings) -> Result<Self, DomainSettingsError> {
        self.verifier = Arc::new(NetworkVerifier::new(settings)?);
        self.hosts = host_cache(settings.cache_ttl);
        Ok(self)
    }

    /// With these `[webhooks]` settings (the defaults otherwise).
    #[must_use]
    pub fn with_webhooks(mut self, settings: tenantry_ops::webhooks::WebhookSettings) -> Self {
        self.webhooks = Arc::new(settings);
        self
    }

    /// With these `[metrics]` settings (the defaults otherwise): per-tenant
    /// series, K, the allow list. Call before serving (it starts the
    /// metrics afresh).
    #[must_use]
    pub fn with_metrics(mut self, settings: &crate::MetricsSettings) -> Self {
        let configured = metrics::Configured {
            retention_period: self.ops.tenancy.retention.period,
            sweep_interval: self.ops.tenancy.retention.sweep_interval,
            sweeper_enabled: self.ops.tenancy.retention.enabled,
        };
        self.metrics = Arc::new(metrics::Metrics::with_db(
            settings,
            &self.db,
            configured,
            Arc::clone(&self.webhook_stats),
        ));
        self
    }

    /// With these `[console]` settings (the defaults otherwise).
    #[must_use]
    pub fn with_console(mut self, settings: crate::console::ConsoleSettings) -> Self {
        self.console = Arc::new(crate::console::ConsoleState::new(settings));
        self
    }

    /// The tenant whose VERIFIED custom domain `host` is (`host` as a
    /// request names it: normalised here like every host). `None` for a
    /// name that is no tenant's verified domain, an IP literal, the base
    /// domain or a name under it (those address by slug), or a host that
    /// cannot be read. Answers, either way, are cached per replica for
    /// `domains.cache_ttl`; a change on this replica invalidates at once
    /// ([`AppState::forget_host`]).
    ///
    /// Detection order for a request that names its tenant several ways:
    /// custom domain, then subdomain (`{slug}.{base_domain}`), then path
    /// (`/t/{slug}/`). The tenant gate checks all of them against the
    /// token's tenant, in the tenant's own transaction.
    pub async fn tenant_for_host(
        &self,
        host: &str,
    ) -> Result<Option<tenantry_core::TenantId>, ApiError> {
        let Some(name) = self.custom_host(host.as_bytes()) else {
            return Ok(None);
        };
        if let Some(known) = self.hosts.get(&name) {
            return Ok(known);
        }
        let found = tenantry_ops::domains::tenant_for_host(&self.ops, &name).await?;
        self.hosts.insert(name, found);
        Ok(found)
    }

    /// `raw` normalised, if it could be a custom domain (a name, not an IP
    /// literal, not the base domain nor under it).
    pub(crate) fn custom_host(&self, raw: &[u8]) -> Option<String> {
        let name = host::normalise(raw).ok()?;
        if name.starts_with('[') || name.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        if let Some(base) = self.addressing.base_domain.as_deref()
            && (name == base || name.ends_with(&format!(".{base}")))
        {
            return None;
        }
        Some(name)
    }

    /// Drops this replica's cached answer for `hostname` (a domain was
    /// added, verified or deleted).
    pub fn forget_host(&self, hostname: &str) {
        self.hosts.invalidate(hostname);
    }

    /// Shutdown began: from now on `/readyz` answers 503, on every clone.
    pub fn begin_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks background work (sweeps) to stop at its next batch boundary.
    pub fn raise_stop(&self) {
        self.stop_sender.send_replace(true);
    }
}
