//! Key material: the service's own Ed25519 key (signing and verifying),
//! extra verification keys from a JWKS file or URL, an optional HS256
//! secret, and the API-key hashing secret.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::RwLock;
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
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| KeyError::Invalid(format!("not a JWKS document: {e}")))?;
    Ok(set.keys.iter().filter_map(verify_key_from_jwk).collect())
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

/// Refetch at most this often, however many unknown `kid`s arrive.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);

/// A JWKS URL and its cached keys. A failed fetch keeps the cached set.
/// Lookups of cached keys never wait for a fetch in progress.
#[derive(Debug)]
pub struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Vec<VerifyKey>>,
    /// When the last fetch started; held across a fetch, so refetches are
    /// serialised and rate-limited.
    last_fetch: Mutex<Option<Instant>>,
}

impl RemoteJwks {
    pub fn new(url: String) -> Result<Self, KeyError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeyError::Invalid(format!("cannot build the JWKS client: {e}")))?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Vec::new()),
            last_fetch: Mutex::new(None),
        })
    }

    fn cached(&self, kid: &str) -> Vec<VerifyKey> {
        self.keys
            .read()
            .map(|keys| matching(&keys, kid))
            .unwrap_or_default()
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
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(fresh) => {
                if let Ok(mut keys) = self.keys.write() {
                    *keys = fresh;
                }
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; keeping the cached keys")
            }
        }
        self.cached(kid)
    }

    async fn fetch(&self) -> Result<Vec<VerifyKey>, KeyError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let text = response
            .text()
            .await
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        parse_jwks(&text)
    }
}

fn matching(keys: &[VerifyKey], kid: &str) -> Vec<VerifyKey> {
    keys.iter()
        .filter(|k| k.kid.as_deref() == Some(kid))
        .cloned()
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

    fn unreachable_key() -> Result<SecretString, KeyError> {
        Err(KeyError::Invalid("must not generate again".into()))
    }
}
