//! API keys: `tnry_` + base64url(key id ‖ tenant id ‖ 32 random bytes).
//! The key says which tenant it belongs to (so the exchange can open that
//! tenant's scope, where RLS lets it find the key) but proves nothing until
//! its secret matches the stored HMAC-SHA256, compared in constant time.
//!
//! The hash binds the tenant (version 2): a stored row copied into another
//! tenant, with the key re-addressed to it, does not verify there. Keys
//! minted before migration 0006 carry version 1 (key id and secret only)
//! and still verify that way; see `api_keys.hash_version`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tenantry_core::{ApiKeyId, TenantId};
use tenantry_db::queries::api_keys::StoredHash;

const SCHEME: &str = "tnry_";
const SECRET_BYTES: usize = 32;
const RAW_BYTES: usize = 16 + 16 + SECRET_BYTES;
/// Characters of the key shown in listings: the scheme and 12 characters
/// derived from the key id alone.
const PREFIX_CHARS: usize = SCHEME.len() + 12;

/// `api_keys.hash_version` 1: HMAC(key id ‖ secret). Every key minted before
/// migration 0006; not bound to its tenant. Verified, never minted.
pub const HASH_V1_UNBOUND: i16 = 1;
/// `api_keys.hash_version` 2: HMAC(domain ‖ tenant id ‖ key id ‖ secret).
/// Every key minted now.
pub const HASH_V2_TENANT_BOUND: i16 = 2;
/// Separates version-2 inputs from any other use of the same HMAC key.
const V2_DOMAIN: &[u8] = b"tenantry api key v2\0";

/// A key as presented by a client.
pub struct PresentedKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    secret: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedKey")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// A newly minted key: `secret` is shown to the client once; `hash` and
/// `prefix` are stored.
pub struct NewKey {
    pub id: ApiKeyId,
    pub secret: SecretString,
    pub prefix: String,
    pub hash: Vec<u8>,
    /// Always [`HASH_V2_TENANT_BOUND`].
    pub hash_version: i16,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn keyed(key: &SecretString) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable_hmac())
}

/// Version 1: the key id and the secret. Kept only to verify old rows.
fn mac_v1(key: &SecretString, id: ApiKeyId, secret: &[u8]) -> Hmac<Sha256> {
    let mut mac = keyed(key);
    mac.update(id.as_uuid().as_bytes());
    mac.update(secret);
    mac
}

/// Version 2: the tenant id too (every field has a fixed length, so the
/// concatenation is unambiguous).
fn mac_v2(key: &SecretString, tenant: TenantId, id: ApiKeyId, secret: &[u8]) -> Hmac<Sha256> {
    let mut mac = keyed(key);
    mac.update(V2_DOMAIN);
    mac.update(tenant.as_uuid().as_bytes());
    mac.update(id.as_uuid().as_bytes());
    mac.update(secret);
    mac
}

#[expect(
    clippy::panic,
    reason = "HMAC-SHA256 takes keys of any length; Mac::new_from_slice never fails"
)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC rejected its key")
}

#[must_use]
pub fn mint(hash_key: &SecretString, tenant: TenantId) -> NewKey {
    // Random (v4), not time-ordered: the listed prefix is cut from the id's
    // first bytes, which a v7 id shares with every key minted that millisecond.
    let id = ApiKeyId::from_uuid(uuid::Uuid::new_v4());
    let mut secret = [0_u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    let mut raw = Vec::with_capacity(RAW_BYTES);
    raw.extend_from_slice(id.as_uuid().as_bytes());
    raw.extend_from_slice(tenant.as_uuid().as_bytes());
    raw.extend_from_slice(&secret);
    let text = format!("{SCHEME}{}", URL_SAFE_NO_PAD.encode(&raw));
    NewKey {
        id,
        prefix: text[..PREFIX_CHARS].to_owned(),
        hash: mac_v2(hash_key, tenant, id, &secret)
            .finalize()
            .into_bytes()
            .to_vec(),
        hash_version: HASH_V2_TENANT_BOUND,
        secret: SecretString::from(text),
    }
}

/// Parses the key's layout; `None` for anything that is not one.
#[must_use]
pub fn parse(text: &str) -> Option<PresentedKey> {
    let body = text.strip_prefix(SCHEME)?;
    if body.len() > 200 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    if raw.len() != RAW_BYTES {
        return None;
    }
    let id = uuid::Uuid::from_slice(&raw[..16]).ok()?;
    let tenant = uuid::Uuid::from_slice(&raw[16..32]).ok()?;
    let mut secret = [0_u8; SECRET_BYTES];
    secret.copy_from_slice(&raw[32..]);
    Some(PresentedKey {
        id: ApiKeyId::from_uuid(id),
        tenant: TenantId::from_uuid(tenant),
        secret,
    })
}

impl PresentedKey {
    /// Constant-time comparison with the stored hash, computed the way its
    /// version says; a version this code does not know never matches.
    #[must_use]
    pub fn matches(&self, hash_key: &SecretString, stored: &StoredHash) -> bool {
        let mac = match stored.version {
            HASH_V1_UNBOUND => mac_v1(hash_key, self.id, &self.secret),
            HASH_V2_TENANT_BOUND => mac_v2(hash_key, self.tenant, self.id, &self.secret),
            _ => return false,
        };
        mac.verify_slice(&stored.hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_key() -> SecretString {
        SecretString::from("test-hash-key".to_owned())
    }

    fn stored(key: &NewKey) -> StoredHash {
        StoredHash {
            hash: key.hash.clone(),
            version: key.hash_version,
        }
    }

    #[test]
    fn a_minted_key_parses_back_and_matches_its_hash() {
        let tenant = TenantId::new();
        let key = mint(&hash_key(), tenant);
        let parsed = parse(key.secret.expose_secret()).unwrap();
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.tenant, tenant);
        assert_eq!(key.hash_version, HASH_V2_TENANT_BOUND);
        assert!(parsed.matches(&hash_key(), &stored(&key)));
        assert!(key.secret.expose_secret().starts_with(&key.prefix));
    }

    #[test]
    fn a_different_hash_key_or_a_flipped_bit_does_not_match() {
        let key = mint(&hash_key(), TenantId::new());
        let parsed = parse(key.secret.expose_secret()).unwrap();
        assert!(!parsed.matches(&SecretString::from("other".to_owned()), &stored(&key)));
        let mut tampered = stored(&key);
        tampered.hash[0] ^= 1;
        assert!(!parsed.matches(&hash_key(), &tampered));
    }

    #[test]
    fn the_hash_binds_the_tenant_the_same_id_and_secret_for_another_tenant_do_not_match() {
        let key = mint(&hash_key(), TenantId::new());
        let mut parsed = parse(key.secret.expose_secret()).unwrap();
        parsed.tenant = TenantId::new();
        assert!(!parsed.matches(&hash_key(), &stored(&key)));
    }

    #[test]
    fn a_version_1_hash_verifies_as_version_1_only_and_unknown_versions_never() {
        let key = mint(&hash_key(), TenantId::new());
        let parsed = parse(key.secret.expose_secret()).unwrap();
        let v1 = StoredHash {
            hash: mac_v1(&hash_key(), parsed.id, &parsed.secret)
                .finalize()
                .into_bytes()
                .to_vec(),
            version: HASH_V1_UNBOUND,
        };
        assert!(parsed.matches(&hash_key(), &v1));
        // Relabelling cannot turn one version's hash into the other's.
        let relabelled = StoredHash {
            version: HASH_V2_TENANT_BOUND,
            ..v1
        };
        assert!(!parsed.matches(&hash_key(), &relabelled));
        let downgraded = StoredHash {
            version: HASH_V1_UNBOUND,
            ..stored(&key)
        };
        assert!(!parsed.matches(&hash_key(), &downgraded));
        for version in [0, 3, -1, i16::MAX] {
            assert!(
                !parsed.matches(
                    &hash_key(),
                    &StoredHash {
                        version,
                        ..stored(&key)
                    }
                ),
                "{version}"
            );
        }
    }

    #[test]
    fn prefixes_differ_between_keys_of_one_tenant() {
        let tenant = TenantId::new();
        assert_ne!(
            mint(&hash_key(), tenant).prefix,
            mint(&hash_key(), tenant).prefix
        );
    }

    #[test]
    fn garbage_is_not_a_key() {
        for text in [
            "",
            "tnry_",
            "tnry_!!!!",
            "sk_live_abc",
            &format!("tnry_{}", "A".repeat(85)),
            &"tnry_A".repeat(100),
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }
}
