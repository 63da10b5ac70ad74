//! Key material: the service's own Ed25519 key (signing and verifying),
//! extra verification keys from a JWKS file or URL, an optional HS256
//! secret, and the API-key hashing secret.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::AuthSettings;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Missing(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Where a verification key comes from, which decides the issuers it may
/// vouch for: the service's own key only for the service's `iss`, keys from
/// a JWKS only for `auth.trusted_issuers`, the shared HS256 secret for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Service,
    Jwks,
    SharedSecret,
}

/// A key that can verify tokens, pinned to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    pub origin: KeyOrigin,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The service's own Ed25519 key pair.
pub struct ServiceKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub public: [u8; 32],
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ServiceKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            KeyError::Invalid(format!("signing key is not an Ed25519 PKCS#8 PEM key: {e}"))
        })?;
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::Invalid(format!("cannot encode the signing key: {e}")))?;
        let public = signing.verifying_key().to_bytes();
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public,
        })
    }

    #[must_use]
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey {
            kid: Some(self.kid.clone()),
            alg: Algorithm::EdDSA,
            key: DecodingKey::from_ed_der(&self.public),
            origin: KeyOrigin::Service,
        }
    }

    /// The public half as a JWK, for `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// A fresh Ed25519 key as PKCS#8 PEM.
pub fn generate_signing_key_pem() -> Result<SecretString, KeyError> {
    let key = SigningKey::generate(&mut OsRng);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| KeyError::Invalid(format!("cannot encode a new signing key: {e}")))?;
    Ok(SecretString::from(pem.to_string()))
}

/// 32 random bytes, base64url.
#[must_use]
pub fn generate_secret() -> SecretString {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

/// Inline value, else the file, else (if allowed) a new file.
fn resolve(
    inline: Option<&SecretString>,
    file: Option<&Path>,
    generate: bool,
    what: &str,
    make: impl FnOnce() -> Result<SecretString, KeyError>,
) -> Result<SecretString, KeyError> {
    if let Some(value) = inline {
        return Ok(value.clone());
    }
    let Some(path) = file else {
        return Err(KeyError::Missing(format!(
            "no {what}: set auth.{what} or auth.{what}_file"
        )));
    };
    match fs::read_to_string(path) {
        Ok(text) => return Ok(SecretString::from(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && generate => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::Missing(format!(
                "no {what}: {} does not exist, and keys are not generated here \
                 (environment = \"production\", or auth.generate_missing_keys = false): \
                 provide that file, or set {what} itself, from your secret store",
                path.display()
            )));
        }
        Err(source) => {
            return Err(KeyError::Io {
                what: format!("cannot read {what} file {}", path.display()),
                source,
            });
        }
    }
    let value = SecretString::from(make()?.expose_secret().trim().to_owned());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| KeyError::Io {
            what: format!("cannot create {}", dir.display()),
            source,
        })?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(value.expose_secret().as_bytes())
                .map_err(|source| KeyError::Io {
                    what: format!("cannot write {}", path.display()),
                    source,
                })?;
            tracing::info!(path = %path.display(), "generated a new {what}");
            Ok(value)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fs::read_to_string(path)
            .map(|t| SecretString::from(t.trim().to_owned()))
            .map_err(|source| KeyError::Io {
                what: format!("cannot read {what} file {}", path.display()),
                source,
            }),
        Err(source) => Err(KeyError::Io {
            what: format!("cannot create {}", path.display()),
            source,
        }),
    }
}

/// The database context key (`database.context_key`, else
/// `database.context_key_file`), generated into the file in development
/// like the auth keys (`auth.generate_missing_keys`).
pub fn load_context_key(
    inline: Option<&SecretString>,
    file: Option<&Path>,
    generate: bool,
) -> Result<SecretString, KeyError> {
    if inline.is_none() && file.is_none() {
        return Err(KeyError::Missing(
            "no context key: set database.context_key or database.context_key_file".to_owned(),
        ));
    }
    resolve(inline, file, generate, "context_key", || {
        Ok(generate_secret())
    })
}

pub fn load_service_key(settings: &AuthSettings) -> Result<ServiceKey, KeyError> {
    let pem = resolve(
        settings.signing_key.as_ref(),
        settings.signing_key_file.as_deref(),
        settings.generate_missing_keys,
        "signing_key",
        generate_signing_key_pem,
    )?;
    ServiceKey::from_pem(pem.expose_secret())
}

pub fn load_api_key_secret(settings: &AuthSettings) -> Result<SecretString, KeyError> {
    resolve(
        settings.api_key_secret.as_ref(),
        settings.api_key_secret_file.as_deref(),
        settings.generate_missing_keys,
        "api_key_secret",
        || Ok(generate_secret()),
    )
}

/// Keys from a JWKS document: only EdDSA, ES256 and RS256 keys that say
/// (or imply) their algorithm; others are skipped with a warning.
pub fn parse_jwks(text: &str) -> Result<Vec<VerifyKey>, KeyError> {
    Ok(parse_published(text)?.into_iter().map(|p| p.key).collect())
}

/// A key as a JWKS URL published it: the key, and its JWK as serialised
/// (kid, algorithm and material), which tells a key that is still published
/// from one that was removed or replaced under the same `kid`.
#[derive(Debug, Clone)]
struct Published {
    fingerprint: String,
    key: VerifyKey,
}

fn parse_published(text: &str) -> Result<Vec<Published>, KeyError> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| KeyError::Invalid(format!("not a JWKS document: {e}")))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let key = verify_key_from_jwk(jwk)?;
            let fingerprint = serde_json::to_string(jwk).ok()?;
            Some(Published { fingerprint, key })
        })
        .collect())
}

fn verify_key_from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => {
            tracing::warn!(kid = ?jwk.common.key_id, "skipping a JWK of an unsupported type");
            return None;
        }
    };
    let stated = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(other) => {
            tracing::warn!(kid = ?jwk.common.key_id, ?other, "skipping a JWK with an unsupported alg");
            return None;
        }
    };
    if stated != implied {
        tracing::warn!(kid = ?jwk.common.key_id, "skipping a JWK whose alg does not match its key type");
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg: stated,
        key,
        origin: KeyOrigin::Jwks,
    })
}

/// Refetch at most this often on unknown `kid`s, however many arrive; also
/// the shortest refresh period a `Cache-Control` header can ask for (unless
/// `auth.jwks_refresh` is shorter still), and the retry period after a
/// failed fetch.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
/// How long one JWKS fetch may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `auth.jwks_refresh_max` allowed.
pub const JWKS_MAX_REFRESH_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The longest `auth.jwks_max_stale` allowed.
pub const JWKS_MAX_STALE_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// When a JWKS URL is refetched, and how long its keys are trusted without
/// a successful fetch (`auth.jwks_refresh`, `auth.jwks_refresh_max`,
/// `auth.jwks_max_stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSchedule {
    /// The period when the answer carries no `max-age`.
    pub refresh: Duration,
    /// The longest period a `max-age` may ask for.
    pub refresh_max: Duration,
    /// Keys not confirmed by a fetch for this long are dropped.
    pub max_stale: Duration,
}

impl JwksSchedule {
    /// Checks the settings: `1 s <= jwks_refresh <= jwks_refresh_max <= 24 h`
    /// and `jwks_refresh_max < jwks_max_stale <= 30 d` (keys must not go
    /// stale between two scheduled fetches that succeed).
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeyError> {
        let schedule = Self {
            refresh: settings.jwks_refresh,
            refresh_max: settings.jwks_refresh_max,
            max_stale: settings.jwks_max_stale,
        };
        if schedule.refresh < Duration::from_secs(1) {
            return Err(KeyError::Invalid(format!(
                "auth.jwks_refresh is {:?}; at least 1s is required",
                schedule.refresh
            )));
        }
        if schedule.refresh_max < schedule.refresh || schedule.refresh_max > JWKS_MAX_REFRESH_LIMIT
        {
            return Err(KeyError::Invalid(format!(
                "auth.jwks_refresh_max is {:?}; it must be between auth.jwks_refresh ({:?}) and {:?}",
                schedule.refresh_max, schedule.refresh, JWKS_MAX_REFRESH_LIMIT
            )));
        }
        if schedule.max_stale <= schedule.refresh_max || schedule.max_stale > JWKS_MAX_STALE_LIMIT {
            return Err(KeyError::Invalid(format!(
                "auth.jwks_max_stale is {:?}; it must be longer than auth.jwks_refresh_max ({:?}) and at most {:?}",
                schedule.max_stale, schedule.refresh_max, JWKS_MAX_STALE_LIMIT
            )));
        }
        Ok(schedule)
    }

    /// The shortest refresh period: 30 s, or `refresh` if shorter.
    #[must_use]
    pub fn floor(&self) -> Duration {
        self.refresh.min(JWKS_MIN_REFETCH)
    }

    /// The wait until the next fetch after an answer fresh for `max_age`
    /// (`None`: it said nothing): `refresh` when it said nothing, else
    /// `max_age` clamped to [`JwksSchedule::floor`]..=`refresh_max`.
    #[must_use]
    pub fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        match max_age {
            None => self.refresh,
            Some(age) => age.clamp(self.floor(), self.refresh_max),
        }
    }
}

/// How long an HTTP answer stays fresh by its `Cache-Control` (RFC 9111
/// §5.2.2): `no-store` or `no-cache` is zero, `max-age=N` is N seconds less
/// its `Age`; `None` when it says nothing usable (then the configured
/// period applies). `s-maxage` is for shared caches, which this is not.
#[must_use]
pub fn freshness(cache_control: Option<&str>, age: Option<&str>) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control?.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            // A malformed max-age is stale (§4.2.1): as often as allowed.
            max_age = Some(value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0));
        }
    }
    let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
    max_age.map(|m| Duration::from_secs(m.saturating_sub(age)))
}

/// What a JWKS URL last said.
#[derive(Debug, Default)]
struct Snapshot {
    keys: Vec<Published>,
    /// The `ETag` of the answer these keys came from.
    etag: Option<String>,
    /// When a fetch last confirmed these keys (a 200, or a 304 to its ETag).
    confirmed: Option<Instant>,
}

/// How a fetch went.
enum Fetched {
    Keys {
        keys: Vec<Published>,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
    /// 304: the keys held are still the ones published.
    Unchanged { max_age: Option<Duration> },
}

/// A JWKS URL and its cached keys, refetched on a schedule
/// ([`RemoteJwks::spawn_refresh`]) and on an unknown `kid`. A failed fetch
/// keeps the cached keys, for at most `max_stale` after the last fetch that
/// confirmed them. Lookups of cached keys never wait for a fetch in progress.
#[derive(Debug)]
pub struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    schedule: JwksSchedule,
    snapshot: RwLock<Snapshot>,
    /// Moves whenever a key stops being trusted (removed or replaced at the
    /// URL, or dropped as stale): what was verified with the keys of an
    /// older generation is not remembered as verified any more.
    generation: AtomicU64,
    /// When the scheduled refresh is due.
    next_due: std::sync::Mutex<Instant>,
    /// When the last fetch started; held across a fetch, so fetches are
    /// serialised and the unknown-`kid` ones rate-limited.
    last_fetch: Mutex<Option<Instant>>,
    /// The refresh task was started.
    refreshing: AtomicBool,
}

impl RemoteJwks {
    pub fn new(url: String, schedule: JwksSchedule) -> Result<Self, KeyError> {
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeyError::Invalid(format!("cannot build the JWKS client: {e}")))?;
        Ok(Self {
            url,
            client,
            schedule,
            snapshot: RwLock::new(Snapshot::default()),
            generation: AtomicU64::new(0),
            next_due: std::sync::Mutex::new(Instant::now()),
            last_fetch: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        })
    }

    fn trusted(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .confirmed
            .is_some_and(|at| at.elapsed() <= self.schedule.max_stale)
    }

    fn cached(&self, kid: &str) -> Vec<VerifyKey> {
        self.snapshot
            .read()
            .ok()
            .filter(|s| self.trusted(s))
            .map(|s| matching(&s.keys, kid))
            .unwrap_or_default()
    }

    /// The current generation of the keys (see the field); drops the keys
    /// first if they went stale.
    pub fn generation(&self) -> u64 {
        self.drop_if_stale();
        self.generation.load(Ordering::SeqCst)
    }

    fn drop_if_stale(&self) {
        let stale = |s: &Snapshot| !s.keys.is_empty() && !self.trusted(s);
        if !self.snapshot.read().is_ok_and(|s| stale(&s)) {
            return;
        }
        if let Ok(mut snapshot) = self.snapshot.write()
            && stale(&snapshot)
        {
            tracing::warn!(
                url = %self.url,
                max_stale = ?self.schedule.max_stale,
                "no JWKS fetch succeeded for auth.jwks_max_stale: dropping its keys"
            );
            // Without its keys an ETag would let a 304 confirm nothing.
            *snapshot = Snapshot::default();
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The keys with this `kid`; refetches first when the kid is unknown
    /// and the last fetch is older than [`JWKS_MIN_REFETCH`].
    pub async fn find(&self, kid: &str) -> Vec<VerifyKey> {
        let cached = self.cached(kid);
        if !cached.is_empty() {
            return cached;
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refreshed the keys while this one waited.
        let cached = self.cached(kid);
        if !cached.is_empty() {
            return cached;
        }
        if last_fetch.is_some_and(|at| at.elapsed() < JWKS_MIN_REFETCH) {
            return Vec::new();
        }
        self.refresh_holding(&mut last_fetch).await;
        self.cached(kid)
    }

    /// Fetches now (after any fetch in progress) and schedules the next.
    pub async fn refresh(&self) {
        let mut last_fetch = self.last_fetch.lock().await;
        self.refresh_holding(&mut last_fetch).await;
    }

    async fn refresh_holding(&self, last_fetch: &mut Option<Instant>) {
        let started = Instant::now();
        *last_fetch = Some(started);
        let etag = self.snapshot.read().ok().and_then(|s| s.etag.clone());
        let wait = match self.fetch(etag).await {
            Ok(Fetched::Unchanged { max_age }) => {
                if let Ok(mut snapshot) = self.snapshot.write() {
                    snapshot.confirmed = Some(started);
                }
                self.schedule.next_refresh(max_age)
            }
            Ok(Fetched::Keys {
                keys,
                etag,
                max_age,
            }) => {
                if let Ok(mut snapshot) = self.snapshot.write() {
                    let removed = snapshot
                        .keys
                        .iter()
                        .filter(|old| !keys.iter().any(|k| k.fingerprint == old.fingerprint))
                        .count();
                    *snapshot = Snapshot {
                        keys,
                        etag,
                        confirmed: Some(started),
                    };
                    if removed > 0 {
                        tracing::info!(url = %self.url, removed, "JWKS keys were removed at the URL");
                        self.generation.fetch_add(1, Ordering::SeqCst);
                    }
                }
                self.schedule.next_refresh(max_age)
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; keeping the cached keys");
                self.schedule.floor()
            }
        };
        if let Ok(mut due) = self.next_due.lock() {
            *due = Instant::now().checked_add(wait).unwrap_or(*due);
        }
    }

    fn next_due(&self) -> Instant {
        self.next_due
            .lock()
            .map_or_else(|_| Instant::now(), |due| *due)
    }

    /// Starts the scheduled refresh on the current tokio runtime (once; a
    /// later call does nothing): a fetch at once, then whenever the last
    /// answer's freshness ([`JwksSchedule::next_refresh`]) runs out. The task
    /// ends once every other holder of `self` has dropped it.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: the JWKS URL is refetched on unknown kids only");
            return;
        };
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let wake = {
                    let Some(jwks) = weak.upgrade() else { return };
                    jwks.drop_if_stale();
                    if jwks.next_due() <= Instant::now() {
                        jwks.refresh().await;
                    }
                    // Wakes at least every floor(): a failed unknown-kid
                    // fetch may have brought the next one forward, and the
                    // task notices soon enough when it is no longer needed.
                    let soonest = Instant::now() + jwks.schedule.floor();
                    jwks.next_due().min(soonest)
                };
                tokio::time::sleep_until(wake.into()).await;
            }
        });
    }

    async fn fetch(&self, etag: Option<String>) -> Result<Fetched, KeyError> {
        let mut request = self.client.get(&self.url);
        if let Some(etag) = &etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let max_age = freshness(
            header(reqwest::header::CACHE_CONTROL).as_deref(),
            header(reqwest::header::AGE).as_deref(),
        );
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::Unchanged { max_age });
        }
        if status != reqwest::StatusCode::OK {
            return Err(KeyError::Invalid(format!("the JWKS URL answered {status}")));
        }
        let etag = header(reqwest::header::ETAG);
        let text = response
            .text()
            .await
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Fetched::Keys {
            keys: parse_published(&text)?,
            etag,
            max_age,
        })
    }
}

fn matching(keys: &[Published], kid: &str) -> Vec<VerifyKey> {
    keys.iter()
        .filter(|k| k.key.kid.as_deref() == Some(kid))
        .map(|k| k.key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_pem() {
        let pem = generate_signing_key_pem().unwrap();
        let a = ServiceKey::from_pem(pem.expose_secret()).unwrap();
        let b = ServiceKey::from_pem(pem.expose_secret()).unwrap();
        assert_eq!(a.public, b.public);
        assert_eq!(a.kid, b.kid);
    }

    #[test]
    fn a_non_ed25519_pem_is_refused() {
        assert!(
            ServiceKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }

    #[test]
    fn jwks_keeps_supported_keys_and_pins_their_algorithm() {
        let pem = generate_signing_key_pem().unwrap();
        let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
        let doc = serde_json::json!({"keys": [
            key.jwk(),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key.public), "kid": "liar", "alg": "RS256"},
        ]});
        let keys = parse_jwks(&doc.to_string()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, Algorithm::EdDSA);
        assert_eq!(keys[0].kid.as_deref(), Some(key.kid.as_str()));
    }

    #[test]
    fn a_key_file_is_generated_once_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("tenantry-keytest-{}", uuid::Uuid::new_v4()));
        let path = dir.join("signing-key.pem");
        let make = generate_signing_key_pem;
        let first = resolve(None, Some(&path), true, "signing_key", make).unwrap();
        let second = resolve(None, Some(&path), true, "signing_key", unreachable_key).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        let missing = resolve(
            None,
            Some(&dir.join("absent.pem")),
            false,
            "signing_key",
            make,
        );
        assert!(missing.is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    fn schedule(refresh: u64, refresh_max: u64) -> JwksSchedule {
        JwksSchedule {
            refresh: Duration::from_secs(refresh),
            refresh_max: Duration::from_secs(refresh_max),
            max_stale: Duration::from_secs(refresh_max + 1),
        }
    }

    #[test]
    fn freshness_reads_max_age_less_age_and_no_cache_as_zero() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(freshness(None, None), None);
        assert_eq!(freshness(Some("public"), None), None);
        assert_eq!(freshness(Some("max-age=600"), None), secs(600));
        assert_eq!(
            freshness(Some("public, MAX-AGE=600"), Some("100")),
            secs(500)
        );
        assert_eq!(freshness(Some("max-age=\"60\""), None), secs(60));
        assert_eq!(freshness(Some("max-age=60"), Some("600")), secs(0));
        assert_eq!(freshness(Some("no-cache, max-age=600"), None), secs(0));
        assert_eq!(freshness(Some("max-age=600, no-store"), None), secs(0));
        assert_eq!(freshness(Some("max-age=soon"), None), secs(0));
        assert_eq!(freshness(Some("s-maxage=600"), None), None);
    }

    #[test]
    fn max_age_is_clamped_between_the_floor_and_refresh_max() {
        let s = schedule(300, 900);
        let secs = Duration::from_secs;
        assert_eq!(s.next_refresh(None), secs(300), "no max-age: the period");
        assert_eq!(
            s.next_refresh(Some(secs(0))),
            secs(30),
            "at most every 30 s"
        );
        assert_eq!(s.next_refresh(Some(secs(10))), secs(30));
        assert_eq!(
            s.next_refresh(Some(secs(120))),
            secs(120),
            "shorter than the period"
        );
        assert_eq!(
            s.next_refresh(Some(secs(600))),
            secs(600),
            "longer, within the bound"
        );
        assert_eq!(
            s.next_refresh(Some(secs(86_400))),
            secs(900),
            "never past refresh_max"
        );
        // A period under 30 s is its own floor.
        let short = schedule(1, 2);
        assert_eq!(short.next_refresh(Some(secs(0))), secs(1));
        assert_eq!(short.next_refresh(Some(secs(86_400))), secs(2));
        assert_eq!(short.floor(), secs(1));
    }

    #[test]
    fn a_schedule_that_could_not_bound_a_removed_key_is_refused() {
        let pem = generate_signing_key_pem().unwrap();
        let base = AuthSettings {
            issuer: "i".into(),
            trusted_issuers: Vec::new(),
            audience: "a".into(),
            tenant_claim: "tenant_id".into(),
            leeway: Duration::ZERO,
            exchange_ttl: Duration::from_secs(60),
            signing_key: Some(pem),
            signing_key_file: None,
            api_key_secret: None,
            api_key_secret_file: None,
            generate_missing_keys: false,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(300),
            jwks_refresh_max: Duration::from_secs(900),
            jwks_max_stale: Duration::from_secs(86_400),
            token_cache_ttl: Duration::from_secs(300),
            token_cache_capacity: 10,
            hs256_secret: None,
        };
        assert!(JwksSchedule::from_settings(&base).is_ok());
        let with = |edit: &dyn Fn(&mut AuthSettings)| {
            let mut s = base.clone();
            edit(&mut s);
            JwksSchedule::from_settings(&s)
        };
        assert!(with(&|s| s.jwks_refresh = Duration::ZERO).is_err());
        assert!(with(&|s| s.jwks_refresh = Duration::from_millis(999)).is_err());
        assert!(with(&|s| s.jwks_refresh_max = Duration::from_secs(299)).is_err());
        assert!(with(&|s| s.jwks_refresh_max = Duration::from_secs(86_401)).is_err());
        assert!(with(&|s| s.jwks_max_stale = Duration::from_secs(900)).is_err());
        assert!(with(&|s| s.jwks_max_stale = Duration::from_secs(31 * 86_400)).is_err());
        assert!(
            with(&|s| {
                s.jwks_refresh = Duration::from_secs(1);
                s.jwks_refresh_max = Duration::from_secs(1);
                s.jwks_max_stale = Duration::from_secs(2);
            })
            .is_ok()
        );
    }

    fn unreachable_key() -> Result<SecretString, KeyError> {
        Err(KeyError::Invalid("must not generate again".into()))
    }
}
