//! The context key: what makes a tenant (or platform-admin) context
//! unforgeable by SQL that runs as the service's role.
//!
//! Every transaction the service opens sets its context together with a
//! proof, `<key id>.<hex HMAC-SHA256(K, message)>`, where the message is
//! `tenant:<uuid>` or `platform`. The database holds its own copy of K
//! (`tenantry_private.context_keys`, out of the service role's reach) and
//! registers the SHA-256 of every context's proof in `context_proofs`; every
//! policy looks the presented proof up there, once per statement
//! (sql/0005). Only a process that holds K — the service, from its
//! configuration — can make a proof.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tenantry_core::TenantId;

/// SHA-256's block size: the length of the padded key (RFC 2104).
const BLOCK: usize = 64;
/// Shortest key accepted (bytes of the configured string).
pub const MIN_KEY_BYTES: usize = 32;

/// A loaded context key. Cheap to clone; never printed.
#[derive(Clone)]
pub struct ContextKey {
    id: String,
    mac: Hmac<Sha256>,
    padded: [u8; BLOCK],
}

impl std::fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("database.context_key must be at least {MIN_KEY_BYTES} bytes")]
pub struct ContextKeyTooShort;

impl ContextKey {
    pub fn new(secret: &SecretString) -> Result<Self, ContextKeyTooShort> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ContextKeyTooShort);
        }
        // RFC 2104: a key longer than a block is hashed first; then padded
        // with zeros to the block size. The database stores the two padded
        // forms, so both sides compute the same HMAC.
        let mut padded = [0_u8; BLOCK];
        if bytes.len() > BLOCK {
            padded[..32].copy_from_slice(&Sha256::digest(bytes));
        } else {
            padded[..bytes.len()].copy_from_slice(bytes);
        }
        let fingerprint = Sha256::new()
            .chain_update(b"tenantry context key id\0")
            .chain_update(padded)
            .finalize();
        let id = fingerprint[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&padded).map_err(|_| ContextKeyTooShort)?;
        Ok(Self { id, mac, padded })
    }

    /// The key's fingerprint: which key made a proof (not secret).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn proof(&self, message: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(message);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(self.id.len() + 1 + 64);
        out.push_str(&self.id);
        out.push('.');
        for b in tag {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// The proof for `tenant`'s context.
    #[must_use]
    pub fn tenant_proof(&self, tenant: TenantId) -> String {
        self.proof(format!("tenant:{tenant}").as_bytes())
    }

    /// The proof for the platform-admin context.
    #[must_use]
    pub fn platform_proof(&self) -> String {
        self.proof(b"platform")
    }

    /// `K xor ipad` and `K xor opad`, as `tenantry migrate` installs them.
    pub(crate) fn pads(&self) -> (Vec<u8>, Vec<u8>) {
        let inner = self.padded.iter().map(|b| b ^ 0x36).collect();
        let outer = self.padded.iter().map(|b| b ^ 0x5c).collect();
        (inner, outer)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ContextKey {
        ContextKey::new(&SecretString::from(s.to_owned())).unwrap()
    }

    /// The database computes sha256(outer || sha256(inner || m)); that must
    /// be exactly the HMAC the service sends.
    #[test]
    fn the_pads_reproduce_the_hmac() {
        for secret in ["k".repeat(32), "k".repeat(64), "long".repeat(40)] {
            let key = key(&secret);
            let (inner, outer) = key.pads();
            let message = b"tenant:0190a5e4-0000-7000-8000-000000000001";
            let inner_hash = Sha256::new()
                .chain_update(&inner)
                .chain_update(message)
                .finalize();
            let tag = Sha256::new()
                .chain_update(&outer)
                .chain_update(inner_hash)
                .finalize();
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(key.proof(message), format!("{}.{hex}", key.id()));
        }
    }

    #[test]
    fn proofs_differ_by_tenant_by_context_and_by_key() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let k = key(&"x".repeat(40));
        assert_ne!(k.tenant_proof(a), k.tenant_proof(b));
        assert_ne!(k.tenant_proof(a), k.platform_proof());
        assert_ne!(k.tenant_proof(a), key(&"y".repeat(40)).tenant_proof(a));
        assert_eq!(k.tenant_proof(a), k.tenant_proof(a));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(ContextKey::new(&SecretString::from("short".to_owned())).is_err());
    }

    #[test]
    fn the_id_is_sixteen_hex_digits_and_not_the_key() {
        let k = key(&"0123456789abcdef".repeat(4));
        assert_eq!(k.id().len(), 16);
        assert!(k.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!"0123456789abcdef".repeat(4).contains(k.id()));
    }
}
