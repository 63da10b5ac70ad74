use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// `[auth]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of the tokens this service signs; always accepted.
    pub issuer: String,
    /// Further accepted issuers (an external identity provider's `iss`).
    #[serde(default)]
    pub trusted_issuers: Vec<String>,
    /// The `aud` every token must carry.
    pub audience: String,
    /// The claim holding the tenant id (e.g. `https://example.com/tenant_id`).
    pub tenant_claim: String,
    /// Clock skew allowed on `exp`/`nbf`; at most 30 s.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Lifetime of tokens from `POST /v1/auth/token`.
    #[serde(with = "humantime_serde")]
    pub exchange_ttl: Duration,
    /// The service's Ed25519 signing key, PKCS#8 PEM. Wins over the file.
    #[serde(default)]
    pub signing_key: Option<SecretString>,
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// The key API-key hashes are keyed with (HMAC-SHA256). Wins over the file.
    #[serde(default)]
    pub api_key_secret: Option<SecretString>,
    #[serde(default)]
    pub api_key_secret_file: Option<PathBuf>,
    /// Create missing key files (development); production provides them.
    pub generate_missing_keys: bool,
    /// Extra verification keys: a JWKS document on disk.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Extra verification keys: a JWKS URL, cached and refetched on an
    /// unknown `kid` (at most once per 30 s).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accept HS256 tokens signed with this shared secret (off when unset).
    #[serde(default)]
    pub hs256_secret: Option<SecretString>,
}
