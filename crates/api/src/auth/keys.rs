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
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
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

/// The shortest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The longest RSA modulus the verifier handles, in bits.
pub const MAX_RSA_BITS: usize = 4096;

/// The algorithms an RSA JWK may pin with `alg`; one without `alg` is
/// pinned to RS256 (what identity providers that omit `alg` sign with).
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Why a JWK verifies nothing here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unusable {
    /// Not a signature key of a kind verified here (symmetric, for
    /// encryption, of an unsupported type or curve, or with an `alg` that
    /// does not fit its type): skipped with a warning.
    Skipped(String),
    /// A signature key that must not be trusted: an RSA modulus under
    /// [`MIN_RSA_BITS`] (or over [`MAX_RSA_BITS`]), or key material that is
    /// not a valid key of its type. An error in a JWKS file; skipped, with
    /// an error logged, from a JWKS URL.
    Refused(String),
}

/// Keys from a JWKS file (`auth.jwks_file`), each pinned to one algorithm
/// from its JWK: `alg` when present (it must fit the key type), else
/// derived from `kty`/`crv` (OKP Ed25519: EdDSA; EC P-256: ES256; EC P-384:
/// ES384; RSA: RS256). Keys of other kinds are skipped with a warning; a
/// weak or malformed key fails the load.
pub fn parse_jwks(text: &str) -> Result<Vec<VerifyKey>, KeyError> {
    let mut keys = Vec::new();
    for entry in parse_entries(text)? {
        match entry.key {
            Ok(key) => keys.push(key),
            Err(Unusable::Skipped(why)) => {
                tracing::warn!(key = %entry.label, "skipping a JWK: {why}");
            }
            Err(Unusable::Refused(why)) => {
                return Err(KeyError::Invalid(format!("JWK {}: {why}", entry.label)));
            }
        }
    }
    Ok(keys)
}

/// A key as a JWKS URL published it: the key, and its JWK as serialised
/// (kid, algorithm and material), which tells a key that is still published
/// from one that was removed or replaced under the same `kid`.
#[derive(Debug, Clone)]
struct Published {
    fingerprint: String,
    key: VerifyKey,
}

/// The keys of a JWKS document fetched from the URL: like [`parse_jwks`],
/// but a weak or malformed key is skipped (logged as an error) rather than
/// failing the whole document.
fn parse_published(text: &str) -> Result<Vec<Published>, KeyError> {
    let mut published = Vec::new();
    for entry in parse_entries(text)? {
        match entry.key {
            Ok(key) => published.push(Published {
                fingerprint: entry.fingerprint,
                key,
            }),
            Err(Unusable::Skipped(why)) => {
                tracing::warn!(key = %entry.label, "skipping a JWK: {why}");
            }
            Err(Unusable::Refused(why)) => {
                tracing::error!(key = %entry.label, "refusing a JWK from the JWKS URL: {why}");
            }
        }
    }
    Ok(published)
}

/// One entry of a JWKS document.
struct Entry {
    /// `kid "..."`, or its position when it has none.
    label: String,
    fingerprint: String,
    key: Result<VerifyKey, Unusable>,
}

/// Each entry of `keys` on its own, so that one entry this library cannot
/// read does not hide the others.
fn parse_entries(text: &str) -> Result<Vec<Entry>, KeyError> {
    let document: Value = serde_json::from_str(text)
        .map_err(|e| KeyError::Invalid(format!("not a JWKS document: {e}")))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(KeyError::Invalid(
            "not a JWKS document: no \"keys\" array".to_owned(),
        ));
    };
    Ok(entries
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let label = match value.get("kid").and_then(Value::as_str) {
                Some(kid) => format!("kid {kid:?}"),
                None => format!("#{i} (no kid)"),
            };
            let key = serde_json::from_value::<Jwk>(value.clone())
                .map_err(|e| Unusable::Skipped(format!("not a JWK this service reads: {e}")))
                .and_then(|jwk| verify_key_from_jwk(&jwk));
            Entry {
                label,
                fingerprint: value.to_string(),
                key,
            }
        })
        .collect())
}

/// The algorithm a JWK is pinned to: its `alg` if it states one (which must
/// be one of `allowed`), else `implied`. Never the token's header.
fn pinned(
    stated: Option<KeyAlgorithm>,
    allowed: &[Algorithm],
    implied: Algorithm,
) -> Result<Algorithm, Unusable> {
    let Some(stated) = stated else {
        return Ok(implied);
    };
    let alg = Algorithm::try_from(stated)
        .map_err(|_| Unusable::Skipped(format!("unsupported alg {stated:?}")))?;
    if allowed.contains(&alg) {
        Ok(alg)
    } else {
        Err(Unusable::Skipped(format!(
            "its alg {alg:?} does not fit its key type"
        )))
    }
}

fn base64url(what: &str, value: &str) -> Result<Vec<u8>, Unusable> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| Unusable::Refused(format!("{what} is not base64url: {e}")))
}

fn verify_key_from_jwk(jwk: &Jwk) -> Result<VerifyKey, Unusable> {
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(Unusable::Skipped(format!(
            "its use is {usage:?}, not \"sig\""
        )));
    }
    if let Some(operations) = &jwk.common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return Err(Unusable::Skipped(
            "its key_ops do not include \"verify\"".to_owned(),
        ));
    }
    let stated = jwk.common.key_algorithm;
    let (alg, key) = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let alg = pinned(stated, &[Algorithm::EdDSA], Algorithm::EdDSA)?;
            (alg, ed25519_key(&p.x)?)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            let alg = pinned(stated, &[Algorithm::ES256], Algorithm::ES256)?;
            let point = ec_point(&p.x, &p.y, 32)?;
            p256::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| Unusable::Refused("x, y is not a point on P-256".to_owned()))?;
            (alg, DecodingKey::from_ec_components(&p.x, &p.y))
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
            let alg = pinned(stated, &[Algorithm::ES384], Algorithm::ES384)?;
            let point = ec_point(&p.x, &p.y, 48)?;
            p384::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| Unusable::Refused("x, y is not a point on P-384".to_owned()))?;
            (alg, DecodingKey::from_ec_components(&p.x, &p.y))
        }
        AlgorithmParameters::RSA(p) => {
            let alg = pinned(stated, &RSA_ALGORITHMS, Algorithm::RS256)?;
            check_rsa(&p.n, &p.e)?;
            (alg, DecodingKey::from_rsa_components(&p.n, &p.e))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(Unusable::Skipped(
                "symmetric keys are not taken from a JWKS (HS256 uses auth.hs256_secret)"
                    .to_owned(),
            ));
        }
        _ => {
            return Err(Unusable::Skipped(
                "unsupported key type or curve (supported: RSA, EC P-256 and P-384, OKP Ed25519)"
                    .to_owned(),
            ));
        }
    };
    let key = key.map_err(|e| Unusable::Refused(format!("unreadable key material: {e}")))?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
        origin: KeyOrigin::Jwks,
    })
}

fn ed25519_key(x: &str) -> Result<Result<DecodingKey, jsonwebtoken::errors::Error>, Unusable> {
    let bytes: [u8; 32] = base64url("x", x)?
        .try_into()
        .map_err(|_| Unusable::Refused("an Ed25519 x must be 32 bytes".to_owned()))?;
    let public = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Unusable::Refused("x is not an Ed25519 public key".to_owned()))?;
    if public.is_weak() {
        return Err(Unusable::Refused(
            "x is a weak (small-order) Ed25519 key".to_owned(),
        ));
    }
    Ok(DecodingKey::from_ed_components(x))
}

/// The uncompressed SEC1 point `04 || x || y`, each coordinate `len` bytes.
fn ec_point(x: &str, y: &str, len: usize) -> Result<Vec<u8>, Unusable> {
    let (x, y) = (base64url("x", x)?, base64url("y", y)?);
    if x.len() != len || y.len() != len {
        return Err(Unusable::Refused(format!(
            "x and y must be {len} bytes each on this curve, not {} and {}",
            x.len(),
            y.len()
        )));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// An RSA public key the verifier takes: [`MIN_RSA_BITS`] to
/// [`MAX_RSA_BITS`] bits, an exponent it accepts.
fn check_rsa(n: &str, e: &str) -> Result<(), Unusable> {
    let modulus = base64url("n", n)?;
    let exponent = base64url("e", e)?;
    let significant = modulus
        .iter()
        .position(|b| *b != 0)
        .map_or(&[][..], |i| &modulus[i..]);
    let bits = significant.first().map_or(0, |first| {
        significant.len() * 8 - usize::try_from(first.leading_zeros()).unwrap_or(0)
    });
    if bits < MIN_RSA_BITS {
        return Err(Unusable::Refused(format!(
            "an RSA key of {bits} bits is too weak: at least {MIN_RSA_BITS} are required"
        )));
    }
    if bits > MAX_RSA_BITS {
        return Err(Unusable::Refused(format!(
            "an RSA key of {bits} bits is longer than the {MAX_RSA_BITS} bits supported"
        )));
    }
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&modulus),
        rsa::BigUint::from_bytes_be(&exponent),
    )
    .map_err(|e| Unusable::Refused(format!("not a usable RSA public key: {e}")))?;
    Ok(())
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

    /// A 2048-bit modulus (any odd number of that length passes the load
    /// checks; only verification needs a real key).
    fn modulus(bits: usize) -> String {
        let mut n = vec![0xff_u8; bits / 8];
        n[0] = 0xc5;
        URL_SAFE_NO_PAD.encode(n)
    }

    fn rsa_jwk(bits: usize, alg: Option<&str>) -> serde_json::Value {
        let mut jwk = serde_json::json!({"kty": "RSA", "n": modulus(bits), "e": "AQAB", "kid": format!("rsa-{bits}")});
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        jwk
    }

    fn ec_jwk(curve: &str, alg: Option<&str>) -> serde_json::Value {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let (x, y) = if curve == "P-256" {
            let point = p256::SecretKey::random(&mut OsRng)
                .public_key()
                .to_encoded_point(false);
            (point.x().unwrap().to_vec(), point.y().unwrap().to_vec())
        } else {
            let point = p384::SecretKey::random(&mut OsRng)
                .public_key()
                .to_encoded_point(false);
            (point.x().unwrap().to_vec(), point.y().unwrap().to_vec())
        };
        let mut jwk = serde_json::json!({"kty": "EC", "crv": curve, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y), "kid": curve});
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        jwk
    }

    fn algs(doc: &serde_json::Value) -> Vec<(Option<String>, Algorithm)> {
        parse_jwks(&doc.to_string())
            .unwrap()
            .into_iter()
            .map(|k| (k.kid, k.alg))
            .collect()
    }

    #[test]
    fn an_rsa_key_is_pinned_to_its_alg_or_to_rs256_without_one() {
        for (alg, expected) in [
            (None, Algorithm::RS256),
            (Some("RS256"), Algorithm::RS256),
            (Some("RS384"), Algorithm::RS384),
            (Some("RS512"), Algorithm::RS512),
            (Some("PS256"), Algorithm::PS256),
            (Some("PS384"), Algorithm::PS384),
            (Some("PS512"), Algorithm::PS512),
        ] {
            let doc = serde_json::json!({"keys": [rsa_jwk(2048, alg)]});
            assert_eq!(
                algs(&doc),
                vec![(Some("rsa-2048".into()), expected)],
                "{alg:?}"
            );
        }
        for alg in ["ES256", "EdDSA", "HS256", "RSA-OAEP", "none"] {
            let doc = serde_json::json!({"keys": [rsa_jwk(2048, Some(alg))]});
            assert_eq!(algs(&doc), vec![], "an RSA key with alg {alg} is skipped");
        }
    }

    #[test]
    fn a_weak_or_oversized_rsa_key_fails_the_load_with_a_clear_error() {
        for bits in [512, 1024, 2040] {
            let doc = serde_json::json!({"keys": [rsa_jwk(bits, Some("RS256"))]});
            let error = parse_jwks(&doc.to_string()).unwrap_err().to_string();
            assert!(
                error.contains(&format!("rsa-{bits}")) && error.contains("at least 2048"),
                "{error}"
            );
        }
        let doc = serde_json::json!({"keys": [rsa_jwk(8192, None)]});
        let error = parse_jwks(&doc.to_string()).unwrap_err().to_string();
        assert!(error.contains("4096"), "{error}");
        let mut exponent_one = rsa_jwk(2048, None);
        exponent_one["e"] = "AQ".into(); // 1
        assert!(parse_jwks(&serde_json::json!({"keys": [exponent_one]}).to_string()).is_err());
        assert_eq!(
            algs(&serde_json::json!({"keys": [rsa_jwk(4096, None), rsa_jwk(3072, None)]})).len(),
            2
        );
    }

    #[test]
    fn a_weak_key_from_the_url_is_skipped_and_the_others_kept() {
        let doc = serde_json::json!({"keys": [rsa_jwk(1024, None), rsa_jwk(2048, None)]});
        let keys = parse_published(&doc.to_string()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.kid.as_deref(), Some("rsa-2048"));
    }

    #[test]
    fn an_ec_key_is_pinned_by_its_curve_and_must_be_a_point_on_it() {
        let doc = serde_json::json!({"keys": [
            ec_jwk("P-256", None),
            ec_jwk("P-384", Some("ES384")),
        ]});
        assert_eq!(
            algs(&doc),
            vec![
                (Some("P-256".into()), Algorithm::ES256),
                (Some("P-384".into()), Algorithm::ES384)
            ]
        );
        // An alg that does not fit the curve: skipped.
        let doc = serde_json::json!({"keys": [ec_jwk("P-256", Some("ES384")), ec_jwk("P-384", Some("ES256"))]});
        assert_eq!(algs(&doc), vec![]);
        // Coordinates of the other curve, or off the curve: refused.
        let mut swapped = ec_jwk("P-384", None);
        swapped["crv"] = "P-256".into();
        assert!(parse_jwks(&serde_json::json!({"keys": [swapped]}).to_string()).is_err());
        let mut off = ec_jwk("P-256", None);
        off["y"] = URL_SAFE_NO_PAD.encode([7_u8; 32]).into();
        let error = parse_jwks(&serde_json::json!({"keys": [off]}).to_string())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a point on P-256"), "{error}");
    }

    #[test]
    fn keys_not_for_signatures_or_of_other_kinds_are_skipped_without_hiding_the_rest() {
        let pem = generate_signing_key_pem().unwrap();
        let key = ServiceKey::from_pem(pem.expose_secret()).unwrap();
        let mut enc = rsa_jwk(2048, Some("RSA-OAEP"));
        enc["use"] = "enc".into();
        let mut enc_rs = rsa_jwk(2048, Some("RS256"));
        enc_rs["use"] = "enc".into();
        let mut sign_only = rsa_jwk(2048, Some("RS256"));
        sign_only["key_ops"] = serde_json::json!(["sign"]);
        let doc = serde_json::json!({"keys": [
            enc,
            enc_rs,
            sign_only,
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
            {"kty": "OKP", "crv": "Ed448", "x": "AA", "kid": "ed448"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "RSA", "kid": "no-modulus"},
            "not even an object",
            key.jwk(),
        ]});
        assert_eq!(algs(&doc), vec![(Some(key.kid.clone()), Algorithm::EdDSA)]);
        assert!(parse_jwks("{\"keys\": {}}").is_err());
        assert!(parse_jwks("[]").is_err());
    }

    #[test]
    fn a_small_order_or_malformed_ed25519_key_is_refused() {
        // The identity point: small order.
        let mut identity = [0_u8; 32];
        identity[0] = 1;
        for x in [
            URL_SAFE_NO_PAD.encode(identity),
            URL_SAFE_NO_PAD.encode([1_u8; 16]),
        ] {
            let doc = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "weak"}]});
            assert!(parse_jwks(&doc.to_string()).is_err(), "{doc}");
        }
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
            audiences: Vec::new(),
            tenant_claim: "tenant_id".into(),
            account_claim: "account_id".into(),
            role_claim: "role".into(),
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
