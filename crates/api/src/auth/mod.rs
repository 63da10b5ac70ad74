//! Who is calling. Bearer JWTs are verified here, against keys this service
//! chose; the token never chooses its key or algorithm. `jku`, `x5u` and
//! embedded `jwk` headers are never read.

pub mod api_key;
mod extract;
pub mod keys;
mod settings;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header, encode};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tenantry_core::{ApiKeyId, Scopes, TenantId};

pub use extract::{PlatformAdmin, TenantPrincipal};
pub use keys::{KeyError, ServiceKey, generate_secret, generate_signing_key_pem};
pub use settings::AuthSettings;

use keys::{KeyOrigin, RemoteJwks, VerifyKey};

/// Longest token accepted; anything larger is refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest leeway the configuration may ask for.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub tenant: Option<TenantId>,
    pub scopes: Scopes,
    /// `api_key_id`: the API key a token was exchanged for (the service's
    /// own exchange tokens carry it); the tenant gate refuses the token once
    /// that key is revoked.
    pub api_key: Option<ApiKeyId>,
}

/// The claim naming the API key a token was exchanged for.
pub const API_KEY_CLAIM: &str = "api_key_id";

/// Why a token was refused. Logged at debug; the client only ever sees 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("malformed token header: {0}")]
    Header(jsonwebtoken::errors::Error),
    #[error("no key for kid {kid:?} and alg {alg:?}")]
    NoKey { kid: Option<String>, alg: Algorithm },
    #[error("rejected: {0}")]
    Rejected(jsonwebtoken::errors::Error),
    #[error("claim {0} is missing or malformed")]
    Claim(&'static str),
    #[error("critical header extensions {0:?} are not understood")]
    Critical(Vec<String>),
}

/// Verifications remembered at most (then the cache starts over).
const VERIFIED_CACHE_CAPACITY: usize = 50_000;

/// Tokens already verified, by SHA-256 of the token, until their own `exp`:
/// a client reuses its token for many requests, and the signature check is
/// the most expensive step of a request. What a token grants can only come
/// from a successful verification of exactly that token string.
#[derive(Debug, Default)]
struct Verified {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, u64)>>,
}

impl Verified {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, key: &[u8; 32], now: u64) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, exp)| now < *exp)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, key: [u8; 32], principal: Principal, exp: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= VERIFIED_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, (principal, exp));
        }
    }
}

/// Verifies bearer tokens.
#[derive(Debug)]
pub struct Authenticator {
    verified: Verified,
    /// `iss` of the service's own tokens.
    own_issuer: String,
    /// `iss` of tokens signed by JWKS keys.
    trusted_issuers: Vec<String>,
    audience: String,
    tenant_claim: String,
    leeway: u64,
    /// The service's key, JWKS-file keys and the HS256 secret.
    local: Vec<VerifyKey>,
    remote: Option<RemoteJwks>,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings, service_key: &ServiceKey) -> Result<Self, KeyError> {
        if settings.leeway > MAX_LEEWAY {
            return Err(KeyError::Invalid(format!(
                "auth.leeway is {:?}; at most {:?} is allowed",
                settings.leeway, MAX_LEEWAY
            )));
        }
        let jwks_configured = settings.jwks_file.is_some()
            || settings.jwks_url.as_deref().is_some_and(|u| !u.is_empty());
        if jwks_configured && settings.trusted_issuers.is_empty() {
            return Err(KeyError::Invalid(
                "auth.jwks_file/auth.jwks_url keys verify tokens only from auth.trusted_issuers; set it".to_owned(),
            ));
        }
        let mut local = vec![service_key.verify_key()];
        if let Some(path) = &settings.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                what: format!("cannot read auth.jwks_file {}", path.display()),
                source,
            })?;
            local.extend(keys::parse_jwks(&text)?);
        }
        if let Some(secret) = &settings.hs256_secret {
            if secret.expose_secret().len() < 32 {
                return Err(KeyError::Invalid(
                    "auth.hs256_secret must be at least 32 bytes".to_owned(),
                ));
            }
            local.push(VerifyKey {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                origin: KeyOrigin::SharedSecret,
            });
        }
        let remote = match settings.jwks_url.as_deref() {
            Some(url) if !url.is_empty() => Some(RemoteJwks::new(url.to_owned())?),
            _ => None,
        };
        Ok(Self {
            verified: Verified::default(),
            own_issuer: settings.issuer.clone(),
            trusted_issuers: settings.trusted_issuers.clone(),
            audience: settings.audience.clone(),
            tenant_claim: settings.tenant_claim.clone(),
            leeway: settings.leeway.as_secs(),
            local,
            remote,
        })
    }

    /// The keys that may verify a token with this header: same `kid` (or,
    /// for a token without `kid`, keys without one) and the key's own
    /// algorithm equal to the header's.
    async fn candidates(&self, header: &Header) -> Vec<VerifyKey> {
        let kid = header.kid.as_deref();
        let mut found: Vec<VerifyKey> = self
            .local
            .iter()
            .filter(|k| k.kid.as_deref() == kid)
            .cloned()
            .collect();
        if found.is_empty()
            && let (Some(remote), Some(kid)) = (&self.remote, kid)
        {
            found = remote.find(kid).await;
        }
        found.retain(|k| k.alg == header.alg);
        found
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let key = Verified::key(token);
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(principal) = self.verified.get(&key, now) {
            return Ok(principal);
        }
        let (principal, exp) = self.verify_uncached(token).await?;
        self.verified.put(key, principal.clone(), exp);
        Ok(principal)
    }

    async fn verify_uncached(&self, token: &str) -> Result<(Principal, u64), TokenError> {
        let header = decode_header(token).map_err(TokenError::Header)?;
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood;
        // this service understands none.
        if let Some(critical) = header.crit.clone().filter(|c| !c.is_empty()) {
            return Err(TokenError::Critical(critical));
        }
        let candidates = self.candidates(&header).await;
        if candidates.is_empty() {
            return Err(TokenError::NoKey {
                kid: header.kid,
                alg: header.alg,
            });
        }
        let mut last = None;
        for key in candidates {
            let mut validation = Validation::new(key.alg);
            validation.set_audience(&[&self.audience]);
            validation.set_issuer(&self.issuers_for(key.origin));
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = self.leeway;
            match decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    // Cached until `exp` itself, not `exp + leeway`.
                    let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
                    return Ok((self.principal(&data.claims)?, exp));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(TokenError::Rejected(last.unwrap_or_else(|| {
            jsonwebtoken::errors::ErrorKind::InvalidSignature.into()
        })))
    }

    fn issuers_for(&self, origin: KeyOrigin) -> Vec<&str> {
        let own = std::iter::once(self.own_issuer.as_str());
        let trusted = self.trusted_issuers.iter().map(String::as_str);
        match origin {
            KeyOrigin::Service => own.collect(),
            KeyOrigin::Jwks => trusted.collect(),
            KeyOrigin::SharedSecret => own.chain(trusted).collect(),
        }
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, TokenError> {
        // jsonwebtoken accepts an array `iss` if any element matches;
        // RFC 7519 §4.1.1 makes it one string.
        if !matches!(claims.get("iss"), Some(Value::String(_))) {
            return Err(TokenError::Claim("iss"));
        }
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            _ => return Err(TokenError::Claim("sub")),
        };
        let tenant = match claims.get(&self.tenant_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse().map_err(|_| TokenError::Claim("tenant"))?),
            Some(_) => return Err(TokenError::Claim("tenant")),
        };
        let mut words: Vec<&str> = Vec::new();
        match claims.get("scope") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => words.push(s),
            Some(_) => return Err(TokenError::Claim("scope")),
        }
        match claims.get("scopes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    words.push(item.as_str().ok_or(TokenError::Claim("scopes"))?);
                }
            }
            Some(_) => return Err(TokenError::Claim("scopes")),
        }
        let api_key = match claims.get(API_KEY_CLAIM) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse().map_err(|_| TokenError::Claim("api_key_id"))?),
            Some(_) => return Err(TokenError::Claim("api_key_id")),
        };
        Ok(Principal {
            sub,
            tenant,
            scopes: Scopes::from_claims(words),
            api_key,
        })
    }
}

/// Signs the service's own tokens (CLI, API-key exchange).
#[derive(Debug)]
pub struct Issuer {
    key: ServiceKey,
    issuer: String,
    audience: String,
    tenant_claim: String,
}

impl Issuer {
    #[must_use]
    pub fn new(settings: &AuthSettings, key: ServiceKey) -> Self {
        Self {
            key,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            tenant_claim: settings.tenant_claim.clone(),
        }
    }

    pub fn sign(
        &self,
        sub: &str,
        tenant: Option<TenantId>,
        scopes: &Scopes,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_claims(sub, tenant, scopes, ttl, None)
    }

    /// A tenant token for API key `key` (`POST /v1/auth/token`): it names
    /// the key, so revoking the key refuses the token at once.
    pub fn sign_for_api_key(
        &self,
        key: ApiKeyId,
        tenant: TenantId,
        scopes: &Scopes,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_claims(
            &format!("api-key:{key}"),
            Some(tenant),
            scopes,
            ttl,
            Some(key),
        )
    }

    fn sign_claims(
        &self,
        sub: &str,
        tenant: Option<TenantId>,
        scopes: &Scopes,
        ttl: Duration,
        api_key: Option<ApiKeyId>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("aud".into(), self.audience.clone().into());
        claims.insert("sub".into(), sub.into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), (now + ttl.as_secs().max(1)).into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        claims.insert("scope".into(), scopes.to_claim().into());
        if let Some(tenant) = tenant {
            claims.insert(self.tenant_claim.clone(), tenant.to_string().into());
        }
        if let Some(key) = api_key {
            claims.insert(API_KEY_CLAIM.into(), key.to_string().into());
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        encode(&header, &claims, &self.key.encoding)
    }

    /// `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.key.jwk()] })
    }
}
