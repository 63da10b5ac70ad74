//! Who is calling. Bearer JWTs are verified here, against keys this service
//! chose; the token never chooses its key or algorithm. `jku`, `x5u` and
//! embedded `jwk` headers are never read.

pub mod api_key;
mod extract;
pub mod keys;
pub mod resolve;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header, encode};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tenantry_core::{AccountId, ApiKeyId, Role, Scopes, TenantId};

pub use extract::{PlatformAdmin, TenantPrincipal};
pub use keys::{KeyError, ServiceKey, generate_secret, generate_signing_key_pem};
pub use settings::AuthSettings;

use keys::{JwksSchedule, KeyOrigin, RemoteJwks, VerifyKey};

/// Longest token accepted; anything larger is refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest leeway the configuration may ask for.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub tenant: Option<TenantId>,
    /// The account the token is confined to: it reaches only that
    /// account's tenants.
    pub account: Option<AccountId>,
    /// The role the token claims; it can only lower what the member's
    /// role in the tenant allows, never raise it.
    pub role: Option<Role>,
    pub scopes: Scopes,
    /// `api_key_id`: the API key a token was exchanged for (the service's
    /// own exchange tokens carry it); the tenant gate refuses the token once
    /// that key is revoked.
    pub api_key: Option<ApiKeyId>,
}

/// The claim naming the API key a token was exchanged for.
pub const API_KEY_CLAIM: &str = "api_key_id";
/// The claim naming the account a token is confined to, unless
/// `auth.account_claim` names another.
pub const ACCOUNT_CLAIM: &str = "account_id";
/// The claim naming the role a token claims, unless `auth.role_claim`
/// names another.
pub const ROLE_CLAIM: &str = "role";

/// A claim by its configured name: the key itself when the token has it
/// (Auth0's and Okta's namespaced claims are flat keys, dots and all:
/// `https://example.com/tenant_id`), else the name as a dotted path into
/// nested objects (Keycloak: `realm_access.roles`, or a mapper's
/// `tenant.id` that it writes as `{"tenant": {"id": ...}}`). `Ok(None)`:
/// absent. A path that runs into something other than an object on the
/// way is malformed, not absent.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Value>, ()> {
    if let Some(value) = claims.get(name) {
        return Ok(Some(value));
    }
    let Some((first, rest)) = name.split_once('.') else {
        return Ok(None);
    };
    let Some(mut value) = claims.get(first) else {
        return Ok(None);
    };
    for segment in rest.split('.') {
        match value {
            Value::Object(object) => match object.get(segment) {
                Some(next) => value = next,
                None => return Ok(None),
            },
            Value::Null => return Ok(None),
            _ => return Err(()),
        }
    }
    Ok(Some(value))
}

/// The role a role claim names: one role name, or an array of names
/// (Keycloak's `realm_access.roles`) of which the highest known role
/// counts and names that are not roles are ignored (an array of none:
/// no role). A single name that is not a role, or an array item that is
/// not a string, is malformed.
fn role_of(value: Option<&Value>) -> Result<Option<Role>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| ()),
        Some(Value::Array(items)) => items.iter().try_fold(None, |highest, item| {
            let name = item.as_str().ok_or(())?;
            Ok(highest.max(name.parse::<Role>().ok()))
        }),
        Some(_) => Err(()),
    }
}

/// Claims with a meaning of their own: no configured claim name may be one.
const RESERVED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scopes",
    "scp",
    API_KEY_CLAIM,
];

/// The claim names of `[auth]` must name something, each its own claim.
fn check_claim_names(settings: &AuthSettings) -> Result<(), KeyError> {
    let names = [
        ("tenant_claim", &settings.tenant_claim),
        ("account_claim", &settings.account_claim),
        ("role_claim", &settings.role_claim),
    ];
    for (i, (setting, name)) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(KeyError::Invalid(format!(
                "auth.{setting} is empty: a claim name, or a dotted path like \"tenant.id\", is required"
            )));
        }
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(KeyError::Invalid(format!(
                "auth.{setting} is {name:?}, a claim with a meaning of its own: name another"
            )));
        }
        if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == name) {
            return Err(KeyError::Invalid(format!(
                "auth.{setting} and auth.{other} are both {name:?}: each needs its own claim"
            )));
        }
    }
    Ok(())
}

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

/// The longest `auth.token_cache_ttl` allowed.
pub const MAX_TOKEN_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A verification remembered.
#[derive(Debug)]
struct Remembered {
    principal: Principal,
    /// The token's own `exp`: never served from the cache at or past it.
    exp: u64,
    /// For a token verified with a key from the JWKS URL: the keys'
    /// generation then ([`RemoteJwks::generation`]). Once a key is removed
    /// at the URL (or the keys go stale) the generation moves on, and the
    /// token is verified again — against the keys the URL publishes now.
    jwks_generation: Option<u64>,
}

/// Expires a remembered verification at the token's `exp` or after the
/// configured TTL, whichever comes first.
struct UntilExp {
    ttl: Duration,
}

impl UntilExp {
    fn lifetime(&self, remembered: &Remembered) -> Duration {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(u128::MAX, |d| d.as_millis());
        let exp_ms = u128::from(remembered.exp).saturating_mul(1000);
        let left = u64::try_from(exp_ms.saturating_sub(now_ms)).unwrap_or(u64::MAX);
        self.ttl.min(Duration::from_millis(left))
    }
}

impl moka::Expiry<[u8; 32], Arc<Remembered>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Remembered>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.lifetime(value))
    }

    fn expire_after_update(
        &self,
        _key: &[u8; 32],
        value: &Arc<Remembered>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.lifetime(value))
    }
}

/// Tokens already verified, by SHA-256 of the token: a client reuses its
/// token for many requests, and the signature check is the most expensive
/// step of a request. What a token grants can only come from a successful
/// verification of exactly that token string. Bounded (`auth.
/// token_cache_capacity` entries) and each entry expires at its token's
/// `exp` or after `auth.token_cache_ttl`, whichever comes first.
struct Verified {
    /// `None`: the cache is off.
    cache: Option<moka::sync::Cache<[u8; 32], Arc<Remembered>>>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field(
                "entries",
                &self.cache.as_ref().map(moka::sync::Cache::entry_count),
            )
            .finish()
    }
}

impl Verified {
    fn new(capacity: u64, ttl: Duration) -> Self {
        let cache = (capacity > 0 && !ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp { ttl })
                .build()
        });
        Self { cache }
    }

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    /// The remembered principal, if its token has not reached `exp` by
    /// `now` and, for a JWKS key, its keys' generation is `jwks_generation()`.
    fn get(
        &self,
        key: &[u8; 32],
        now: u64,
        jwks_generation: impl FnOnce() -> u64,
    ) -> Option<Principal> {
        let cache = self.cache.as_ref()?;
        let remembered = cache.get(key)?;
        let current = remembered
            .jwks_generation
            .is_none_or(|g| g == jwks_generation());
        if now >= remembered.exp || !current {
            cache.invalidate(key);
            return None;
        }
        Some(remembered.principal.clone())
    }

    fn put(&self, key: [u8; 32], remembered: Remembered) {
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::new(remembered));
        }
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
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
    /// Accepted `aud` values: `auth.audience`, then `auth.audiences`.
    audiences: Vec<String>,
    tenant_claim: String,
    account_claim: String,
    role_claim: String,
    leeway: u64,
    /// The service's key, JWKS-file keys and the HS256 secret.
    local: Vec<VerifyKey>,
    remote: Option<Arc<RemoteJwks>>,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings, service_key: &ServiceKey) -> Result<Self, KeyError> {
        if settings.leeway > MAX_LEEWAY {
            return Err(KeyError::Invalid(format!(
                "auth.leeway is {:?}; at most {:?} is allowed",
                settings.leeway, MAX_LEEWAY
            )));
        }
        check_claim_names(settings)?;
        let mut audiences = vec![settings.audience.clone()];
        for audience in &settings.audiences {
            if !audiences.contains(audience) {
                audiences.push(audience.clone());
            }
        }
        if audiences.iter().any(String::is_empty) {
            return Err(KeyError::Invalid(
                "auth.audience and every auth.audiences entry must be non-empty".to_owned(),
            ));
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
            let keys = keys::parse_jwks(&text).map_err(|e| {
                KeyError::Invalid(format!("auth.jwks_file {}: {e}", path.display()))
            })?;
            local.extend(keys);
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
        if settings.token_cache_ttl > MAX_TOKEN_CACHE_TTL {
            return Err(KeyError::Invalid(format!(
                "auth.token_cache_ttl is {:?}; at most {:?} is allowed",
                settings.token_cache_ttl, MAX_TOKEN_CACHE_TTL
            )));
        }
        let schedule = JwksSchedule::from_settings(settings)?;
        let remote = match settings.jwks_url.as_deref() {
            Some(url) if !url.is_empty() => {
                Some(Arc::new(RemoteJwks::new(url.to_owned(), schedule)?))
            }
            _ => None,
        };
        Ok(Self {
            verified: Verified::new(settings.token_cache_capacity, settings.token_cache_ttl),
            own_issuer: settings.issuer.clone(),
            trusted_issuers: settings.trusted_issuers.clone(),
            audiences,
            tenant_claim: settings.tenant_claim.clone(),
            account_claim: settings.account_claim.clone(),
            role_claim: settings.role_claim.clone(),
            leeway: settings.leeway.as_secs(),
            local,
            remote,
        })
    }

    /// Starts refetching the JWKS URL on its schedule, in the background
    /// on the current tokio runtime (the server does, when it is built);
    /// without a JWKS URL, or when already started, does nothing.
    pub fn start_jwks_refresh(&self) {
        if let Some(remote) = &self.remote {
            remote.spawn_refresh();
        }
    }

    fn jwks_generation(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation())
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
        if let Some(principal) = self.verified.get(&key, now, || self.jwks_generation()) {
            return Ok(principal);
        }
        // Read before the keys are: a key removed from here on moves it.
        let generation = self.jwks_generation();
        let (principal, exp, origin) = self.verify_uncached(token).await?;
        self.verified.put(
            key,
            Remembered {
                principal: principal.clone(),
                exp,
                jwks_generation: (origin == KeyOrigin::Jwks).then_some(generation),
            },
        );
        Ok(principal)
    }

    /// As [`Authenticator::verify`], never from the cache, with the token's
    /// `exp` (seconds since the epoch): for the console's sign-in, whose
    /// session must not outlive the credential it was exchanged for.
    pub async fn verify_with_expiry(&self, token: &str) -> Result<(Principal, u64), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let (principal, exp, _) = self.verify_uncached(token).await?;
        Ok((principal, exp))
    }

    async fn verify_uncached(
        &self,
        token: &str,
    ) -> Result<(Principal, u64, KeyOrigin), TokenError> {
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
            validation.set_audience(&self.audiences);
            validation.set_issuer(&self.issuers_for(key.origin));
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = self.leeway;
            match decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    // Cached until `exp` itself, not `exp + leeway`.
                    let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
                    return Ok((self.principal(&data.claims)?, exp, key.origin));
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
        let named = |name: &str, what| claim(claims, name).map_err(|()| TokenError::Claim(what));
        // One tenant: an array of them is refused, never narrowed to one.
        let tenant = match named(&self.tenant_claim, "tenant")? {
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
        // Okta's access tokens carry their scopes as `scp`, an array.
        match claims.get("scp") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => words.push(s),
            Some(Value::Array(items)) => {
                for item in items {
                    words.push(item.as_str().ok_or(TokenError::Claim("scp"))?);
                }
            }
            Some(_) => return Err(TokenError::Claim("scp")),
        }
        let api_key = match claims.get(API_KEY_CLAIM) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse().map_err(|_| TokenError::Claim("api_key_id"))?),
            Some(_) => return Err(TokenError::Claim("api_key_id")),
        };
        let account = match named(&self.account_claim, "account")? {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse().map_err(|_| TokenError::Claim("account"))?),
            Some(_) => return Err(TokenError::Claim("account")),
        };
        let role =
            role_of(named(&self.role_claim, "role")?).map_err(|()| TokenError::Claim("role"))?;
        Ok(Principal {
            sub,
            tenant,
            account,
            role,
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
    account_claim: String,
    role_claim: String,
}

/// What a token the service signs names besides its subject and scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confinement {
    pub tenant: Option<TenantId>,
    pub account: Option<AccountId>,
    pub role: Option<Role>,
}

impl Issuer {
    #[must_use]
    pub fn new(settings: &AuthSettings, key: ServiceKey) -> Self {
        Self {
            key,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            tenant_claim: settings.tenant_claim.clone(),
            account_claim: settings.account_claim.clone(),
            role_claim: settings.role_claim.clone(),
        }
    }

    pub fn sign(
        &self,
        sub: &str,
        tenant: Option<TenantId>,
        scopes: &Scopes,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let confinement = Confinement {
            tenant,
            ..Confinement::default()
        };
        self.sign_claims(sub, confinement, scopes, ttl, None)
    }

    /// A token that may also name an account and a role, each under its
    /// configured claim name (`auth.account_claim`, `auth.role_claim`),
    /// written as that exact key.
    pub fn sign_confined(
        &self,
        sub: &str,
        confinement: Confinement,
        scopes: &Scopes,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_claims(sub, confinement, scopes, ttl, None)
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
        let confinement = Confinement {
            tenant: Some(tenant),
            ..Confinement::default()
        };
        self.sign_claims(
            &format!("api-key:{key}"),
            confinement,
            scopes,
            ttl,
            Some(key),
        )
    }

    fn sign_claims(
        &self,
        sub: &str,
        confinement: Confinement,
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
        if let Some(tenant) = confinement.tenant {
            claims.insert(self.tenant_claim.clone(), tenant.to_string().into());
        }
        if let Some(account) = confinement.account {
            claims.insert(self.account_claim.clone(), account.to_string().into());
        }
        if let Some(role) = confinement.role {
            claims.insert(self.role_claim.clone(), role.as_str().into());
        }
        if let Some(key) = api_key {
            claims.insert(API_KEY_CLAIM.into(), key.to_string().into());
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        encode(&header, &claims, &self.key.encoding)
    }

    /// The public keys `/.well-known/jwks.json` publishes.
    #[must_use]
    pub fn public_jwks(&self) -> Vec<Value> {
        vec![self.key.jwk()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(sub: &str) -> Principal {
        Principal {
            sub: sub.to_owned(),
            tenant: None,
            account: None,
            role: None,
            scopes: Scopes::from_claims(["tenant:read"]),
            api_key: None,
        }
    }

    fn remembered(sub: &str, exp: u64, jwks_generation: Option<u64>) -> Remembered {
        Remembered {
            principal: principal(sub),
            exp,
            jwks_generation,
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_claim_is_an_exact_key_first_then_a_dotted_path() {
        let c = claims(serde_json::json!({
            "https://example.com/tenant_id": "flat",
            "https://example.com/tenant": {"id": "never: the flat key has dots"},
            "tenant": {"id": "nested", "name": "x"},
            "tenant.id": "flat wins over nested",
            "realm_access": {"roles": ["admin"]},
            "scalar": "s",
            "nothing": null,
        }));
        let get = |name| claim(&c, name);
        assert_eq!(
            get("https://example.com/tenant_id"),
            Ok(Some(&Value::from("flat")))
        );
        assert_eq!(
            get("tenant.id"),
            Ok(Some(&Value::from("flat wins over nested")))
        );
        assert_eq!(get("tenant.name"), Ok(Some(&Value::from("x"))));
        assert_eq!(
            get("realm_access.roles"),
            Ok(Some(&serde_json::json!(["admin"])))
        );
        assert_eq!(get("tenant.missing"), Ok(None));
        assert_eq!(get("absent.id"), Ok(None));
        assert_eq!(get("absent"), Ok(None));
        assert_eq!(get("nothing.id"), Ok(None));
        assert_eq!(
            get("scalar.id"),
            Err(()),
            "a path through a non-object is malformed"
        );
        assert_eq!(
            get("realm_access.roles.0"),
            Err(()),
            "arrays are not indexed"
        );
    }

    #[test]
    fn a_role_claim_is_a_role_or_the_highest_known_role_of_an_array() {
        let role = |v: Value| role_of(Some(&v));
        assert_eq!(role(Value::Null), Ok(None));
        assert_eq!(role_of(None), Ok(None));
        assert_eq!(role("admin".into()), Ok(Some(Role::Admin)));
        assert_eq!(
            role("editor".into()),
            Err(()),
            "one name that is not a role"
        );
        assert_eq!(role("Admin".into()), Err(()), "names are case-sensitive");
        assert_eq!(
            role(serde_json::json!([
                "offline_access",
                "viewer",
                "admin",
                "member",
                "uma_authorization"
            ])),
            Ok(Some(Role::Admin))
        );
        assert_eq!(
            role(serde_json::json!(["owner", "viewer"])),
            Ok(Some(Role::Owner))
        );
        assert_eq!(role(serde_json::json!(["offline_access"])), Ok(None));
        assert_eq!(role(serde_json::json!([])), Ok(None));
        assert_eq!(role(serde_json::json!(["admin", 1])), Err(()));
        assert_eq!(role(serde_json::json!({"name": "admin"})), Err(()));
        assert_eq!(role(serde_json::json!(3)), Err(()));
    }

    #[test]
    fn the_token_cache_holds_its_bound() {
        let verified = Verified::new(100, Duration::from_secs(3600));
        for i in 0..5_000 {
            let key = Verified::key(&format!("token-{i}"));
            verified.put(key, remembered("s", now() + 3600, None));
        }
        let len = verified.len();
        assert!(len <= 100, "{len} entries kept, over the bound of 100");
        assert!(len > 0);
    }

    #[test]
    fn an_entry_expires_after_the_ttl_even_before_its_exp() {
        let verified = Verified::new(100, Duration::from_millis(200));
        let key = Verified::key("t");
        verified.put(key, remembered("s", now() + 3600, None));
        assert_eq!(verified.get(&key, now(), || 0), Some(principal("s")));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(verified.get(&key, now(), || 0), None);
    }

    #[test]
    fn an_entry_is_never_served_at_or_past_its_exp() {
        let verified = Verified::new(100, Duration::from_secs(3600));
        let key = Verified::key("t");
        let exp = now() + 1;
        verified.put(key, remembered("s", exp, None));
        assert!(verified.get(&key, exp - 1, || 0).is_some());
        assert_eq!(verified.get(&key, exp, || 0), None, "exp is not inclusive");
        // And the cache expires it on its own once exp has passed.
        let key = Verified::key("u");
        let exp = now() + 1;
        verified.put(key, remembered("s", exp, None));
        while now() < exp {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(verified.get(&key, now(), || 0), None, "served at its exp");
        // Memory too: the cache drops it (its timer wheel ticks about once
        // a second).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while verified.len() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "still held past its exp"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn a_jwks_verification_of_an_older_key_generation_is_forgotten() {
        let verified = Verified::new(100, Duration::from_secs(3600));
        let (jwks, own) = (Verified::key("jwks"), Verified::key("own"));
        verified.put(jwks, remembered("j", now() + 3600, Some(1)));
        verified.put(own, remembered("o", now() + 3600, None));
        assert!(verified.get(&jwks, now(), || 1).is_some());
        assert_eq!(verified.get(&jwks, now(), || 2), None);
        assert_eq!(
            verified.get(&jwks, now(), || 1),
            None,
            "invalidated, not hidden"
        );
        assert!(
            verified.get(&own, now(), || 2).is_some(),
            "no JWKS key: kept"
        );
    }

    #[test]
    fn a_zero_ttl_or_capacity_turns_the_cache_off() {
        for verified in [
            Verified::new(0, Duration::from_secs(60)),
            Verified::new(10, Duration::ZERO),
        ] {
            let key = Verified::key("t");
            verified.put(key, remembered("s", now() + 60, None));
            assert_eq!(verified.get(&key, now(), || 0), None);
        }
    }
}
