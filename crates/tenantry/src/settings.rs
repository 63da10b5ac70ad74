//! Configuration: the built-in config/default.toml, then
//! `$TENANTRY_CONFIG_DIR/$TENANTRY_ENV.toml` (when TENANTRY_ENV is set; the
//! directory defaults to `config`), then `TENANTRY__SECTION__KEY` variables.

use anyhow::Context as _;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use tenantry_api::auth::AuthSettings;
use tenantry_api::{DomainSettings, MetricsSettings, ServerSettings};
use tenantry_db::DatabaseSettings;
use tenantry_ops::views::LimitsView as Limits;

const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where this process runs: `development` (the default) or
    /// `production`, which never generates key material (see
    /// [`Settings::apply_environment`]).
    pub environment: RunEnvironment,
    pub server: ServerSettings,
    pub metrics: MetricsSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub quotas: QuotaSettings,
    pub retention: tenantry_sweeper::RetentionSettings,
    #[serde(default)]
    pub tenancy: TenancySettings,
    pub log: LogSettings,
    /// Custom domains' verification and routing cache (`[domains]`).
    #[serde(default)]
    pub domains: DomainSettings,
    /// The operator console at `/console` (`[console]`).
    #[serde(default)]
    pub console: tenantry_api::console::ConsoleSettings,
    /// The usage history for billing (`[usage]`).
    #[serde(default)]
    pub usage: tenantry_ops::usage::UsageSettings,
    /// Webhook delivery (`[webhooks]`).
    #[serde(default)]
    pub webhooks: tenantry_ops::webhooks::WebhookSettings,
    /// OpenTelemetry traces over OTLP/HTTP (`[traces]`), off by default.
    #[serde(default)]
    pub traces: TraceSettings,
}

/// `[traces]`: where `serve` sends its spans, if anywhere.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// Off: no exporter, no tracing layer.
    pub enabled: bool,
    /// The collector's OTLP/HTTP traces URL, `/v1/traces` included.
    pub endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of root traces sampled, 0.0..=1.0 (a remote parent's
    /// decision is followed).
    pub sample_ratio: f64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4318/v1/traces".to_owned(),
            service_name: "tenantry".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

/// `[tenancy]`: what a tenant's settings document must be, and how large
/// an import through the API may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenancySettings {
    /// A JSON Schema file every tenant's settings document must satisfy;
    /// empty = any JSON object. Read and compiled at startup: an unreadable
    /// or invalid schema refuses to start.
    #[serde(default)]
    pub settings_schema_file: String,
    /// The same schema given inline, as JSON text (for environments that
    /// pass configuration as variables); at most one of the two.
    #[serde(default)]
    pub settings_schema: String,
    /// The largest settings document, serialized.
    #[serde(default = "default_settings_max_bytes")]
    pub settings_max_bytes: usize,
    /// The largest body of `POST /v1/admin/tenants/{id}/import` (413 beyond).
    #[serde(default = "default_import_max_bytes")]
    pub import_max_bytes: u64,
}

fn default_settings_max_bytes() -> usize {
    tenantry_ops::settings::DEFAULT_MAX_BYTES
}

fn default_import_max_bytes() -> u64 {
    1024 * 1024 * 1024
}

impl Default for TenancySettings {
    fn default() -> Self {
        Self {
            settings_schema_file: String::new(),
            settings_schema: String::new(),
            settings_max_bytes: default_settings_max_bytes(),
            import_max_bytes: default_import_max_bytes(),
        }
    }
}

impl TenancySettings {
    /// The settings rules: the schema read, parsed and compiled, or why not.
    pub fn rules(&self) -> anyhow::Result<tenantry_ops::settings::SettingsRules> {
        let (file, inline) = (
            self.settings_schema_file.trim(),
            self.settings_schema.trim(),
        );
        let text = match (file, inline) {
            ("", "") => None,
            (file, "") => Some((
                format!("tenancy.settings_schema_file {file}"),
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read tenancy.settings_schema_file {file}"))?,
            )),
            ("", inline) => Some(("tenancy.settings_schema".to_owned(), inline.to_owned())),
            _ => anyhow::bail!(
                "tenancy.settings_schema_file and tenancy.settings_schema are both set; give one"
            ),
        };
        let schema = text
            .map(|(what, text)| {
                serde_json::from_str::<serde_json::Value>(&text)
                    .with_context(|| format!("{what} is not JSON"))
                    .map(|schema| (what, schema))
            })
            .transpose()?;
        match schema {
            None => tenantry_ops::settings::SettingsRules::new(None, self.settings_max_bytes),
            Some((what, schema)) => {
                tenantry_ops::settings::SettingsRules::new(Some(&schema), self.settings_max_bytes)
                    .map_err(|e| format!("{what}: {e}"))
            }
        }
        .map_err(|e| anyhow::anyhow!("invalid [tenancy] configuration: {e}"))
    }
}

/// `environment` in the configuration (`TENANTRY__ENVIRONMENT`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunEnvironment {
    /// Missing key files are generated (`auth.generate_missing_keys`).
    Development,
    /// Every key comes from the deployment: a missing signing key, API-key
    /// secret or context key is a startup error, never a fresh key that
    /// would differ per replica and die with the container.
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// How often `serve` runs a report-only reconcile; zero = never.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: std::time::Duration,
    /// Limits a new tenant starts with.
    pub default: Limits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// The tenancy rules the admin plane applies, from `[quotas.default]`,
    /// `[retention]` and `[tenancy]`; refused when the settings schema is
    /// unusable.
    pub fn tenancy(&self) -> anyhow::Result<tenantry_ops::Tenancy> {
        Ok(tenantry_ops::Tenancy {
            default_limits: self.quotas.default.clone(),
            retention: self.retention.clone(),
            settings: self.tenancy.rules()?,
            import_max_bytes: self.tenancy.import_max_bytes,
            usage: self.usage.clone(),
        })
    }

    pub fn load() -> anyhow::Result<Self> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Ok(env) = std::env::var("TENANTRY_ENV") {
            let dir = std::env::var("TENANTRY_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
            let path = format!("{dir}/{env}.toml");
            builder = builder.add_source(File::new(&path, FileFormat::Toml).required(true));
        }
        builder
            .add_source(
                Environment::with_prefix("TENANTRY")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(Config::try_deserialize::<Self>)
            .context("invalid configuration")?
            .apply_environment()
            .with_context_key()
    }

    /// The built-in defaults alone (`config/default.toml`), ignoring the
    /// environment: the starting point of an embedding that sets every
    /// value itself (the tests' `TestApp`). Keys are not resolved.
    pub fn defaults() -> anyhow::Result<Self> {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Self>)
            .context("invalid built-in configuration")
            .map(Self::apply_environment)
    }

    /// Production never generates keys, whatever `auth.generate_missing_keys`
    /// says (its default is `true`, for development): a key generated inside
    /// a container would differ per replica and be lost on restart, so
    /// tokens and API keys would stop verifying.
    fn apply_environment(mut self) -> Self {
        if self.environment == RunEnvironment::Production {
            self.auth.generate_missing_keys = false;
        }
        // Every command's connections carry the usage history's period.
        self.database.usage_interval = self.usage.interval;
        self
    }

    /// Resolves `database.context_key_file` into `database.context_key`
    /// (generating the file in development), so every command that opens
    /// the database — and `migrate`, which installs the key — uses the same.
    fn with_context_key(mut self) -> anyhow::Result<Self> {
        let key = tenantry_api::auth::keys::load_context_key(
            self.database.context_key.as_ref(),
            self.database.context_key_file.as_deref(),
            self.auth.generate_missing_keys,
        )?;
        self.database.context_key = Some(key);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_parse() {
        let settings: Settings = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .unwrap();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.server.host, "127.0.0.1");
        // The service never holds the owner's credentials: only `migrate`
        // is given them.
        assert!(settings.database.owner_url.is_none());
        assert_eq!(settings.log.format, LogFormat::Text);
        // /metrics: its own listener, loopback only.
        assert_eq!(settings.metrics.listen, "127.0.0.1:9464");
        // Traces: off unless asked for, and the defaults say what the
        // section's absence means.
        assert!(!settings.traces.enabled);
        assert_eq!(settings.traces, TraceSettings::default());
        // Bounded per-tenant series, refreshed gauges.
        assert!(settings.metrics.per_tenant);
        assert_eq!(settings.metrics.tenant_series, 50);
        assert!(settings.metrics.tenant_allow_list.is_empty());
        assert_eq!(
            settings.metrics.refresh_interval,
            std::time::Duration::from_secs(15)
        );
        assert!(settings.server.per_tenant_metrics.is_none());
        // Development by default: `make run` generates its keys.
        assert_eq!(settings.environment, RunEnvironment::Development);
        assert!(settings.apply_environment().auth.generate_missing_keys);
    }

    #[test]
    fn production_never_generates_keys() {
        let production = DEFAULTS.replace(
            "environment = \"development\"",
            "environment = \"production\"",
        );
        assert_ne!(production, DEFAULTS);
        let settings: Settings = Config::builder()
            .add_source(File::from_str(&production, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .unwrap();
        assert_eq!(settings.environment, RunEnvironment::Production);
        // The defaults say true; production overrides it.
        assert!(settings.auth.generate_missing_keys);
        assert!(!settings.apply_environment().auth.generate_missing_keys);
    }

    #[test]
    fn an_unknown_environment_is_refused() {
        let bad = DEFAULTS.replace("environment = \"development\"", "environment = \"staging\"");
        assert_ne!(bad, DEFAULTS);
        let result = Config::builder()
            .add_source(File::from_str(&bad, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Settings>);
        assert!(result.is_err());
    }

    #[test]
    fn the_retired_per_tenant_metrics_key_is_still_accepted() {
        let old = DEFAULTS.replace("[server]\n", "[server]\nper_tenant_metrics = true\n");
        assert_ne!(old, DEFAULTS);
        let settings: Settings = Config::builder()
            .add_source(File::from_str(&old, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .unwrap();
        assert_eq!(settings.server.per_tenant_metrics, Some(true));
    }

    #[test]
    fn metrics_allow_list_holds_tenant_ids() {
        let id = tenantry_core::TenantId::new();
        let with = DEFAULTS.replace(
            "tenant_allow_list = []",
            &format!("tenant_allow_list = [\"{id}\"]"),
        );
        assert_ne!(with, DEFAULTS);
        let settings: Settings = Config::builder()
            .add_source(File::from_str(&with, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .unwrap();
        assert_eq!(settings.metrics.tenant_allow_list, vec![id]);
        let bad = DEFAULTS.replace("tenant_allow_list = []", "tenant_allow_list = [\"acme\"]");
        let result = Config::builder()
            .add_source(File::from_str(&bad, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Settings>);
        assert!(result.is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let bad = format!("{DEFAULTS}\n[surprise]\nkey = 1\n");
        let result = Config::builder()
            .add_source(File::from_str(&bad, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Settings>);
        assert!(result.is_err());
    }
}
