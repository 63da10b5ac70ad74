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
    /// The `aud` of the tokens this service signs; always accepted.
    pub audience: String,
    /// Further accepted audiences: a token is accepted when its `aud` (a
    /// string or an array) names `audience` or any of these.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The claim holding the tenant id (e.g. `https://example.com/tenant_id`).
    /// Looked up as an exact key first, then as a dotted path into nested
    /// objects (`tenant.id`).
    pub tenant_claim: String,
    /// The claim holding the account id a token is confined to.
    #[serde(default = "default_account_claim")]
    pub account_claim: String,
    /// The claim holding the role a token claims: a role name, or an array
    /// of names (the highest known one counts, unknown ones are ignored).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
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
    /// Extra verification keys: a JWKS URL, refetched in the background
    /// every `jwks_refresh` (or as its `Cache-Control: max-age` says, within
    /// bounds) and on an unknown `kid` (at most once per 30 s).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the JWKS URL is refetched when its answer carries no
    /// `max-age`; also the shortest period a `max-age` may ask for when it
    /// is under 30 s.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// The longest period a `max-age` may stretch the refetch to: a key
    /// removed at the identity provider stops verifying within it.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh_max: Duration,
    /// How long keys from the JWKS URL are trusted after the last fetch
    /// that confirmed them, while the URL cannot be reached; then they are
    /// dropped and tokens signed with them get 401 until a fetch succeeds.
    #[serde(with = "humantime_serde")]
    pub jwks_max_stale: Duration,
    /// How long a verified token is remembered at most (never past its
    /// `exp`); `0s` turns the cache off.
    #[serde(with = "humantime_serde")]
    pub token_cache_ttl: Duration,
    /// Verified tokens remembered at most; `0` turns the cache off.
    pub token_cache_capacity: u64,
    /// Accept HS256 tokens signed with this shared secret (off when unset).
    #[serde(default)]
    pub hs256_secret: Option<SecretString>,
}

fn default_account_claim() -> String {
    super::ACCOUNT_CLAIM.to_owned()
}

fn default_role_claim() -> String {
    super::ROLE_CLAIM.to_owned()
}
