//! What every handler can reach: [`AppState`], built once per process.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tenantry_db::Db;
use tenantry_ops::{Operations, Tenancy};

use crate::auth::{AuthSettings, Authenticator, Issuer, KeyError};
use crate::{ServerSettings, auth, host, metrics, ratelimit};

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
    /// Raised at shutdown: sweeps stop at their next batch boundary.
    pub stop: tenantry_sweeper::Stop,
    stop_sender: Arc<tokio::sync::watch::Sender<bool>>,
    /// Set once shutdown began: `/readyz` answers 503 `shutting_down`.
    draining: Arc<std::sync::atomic::AtomicBool>,
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
            metrics: Arc::new(metrics::Metrics::new(server.per_tenant_metrics)),
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
            stop,
            stop_sender: Arc::new(stop_sender),
            draining: Arc::default(),
        })
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
