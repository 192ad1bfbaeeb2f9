//! Master key loading, tenant data keys and key wrapping.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const NONCE_LEN: usize = 12;
const WRAP_INFO: &[u8] = b"lacuna/v1/tenant-key-wrap";
/// Version byte in front of every wrapped key and ciphertext, so formats can change.
const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("LACUNA_MASTER_KEY must be base64 of exactly 32 bytes")]
    BadMasterKeyEncoding,
    #[error("master key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("wrapped key or ciphertext is malformed")]
    Malformed,
    #[error("decryption failed: wrong key, wrong context or tampered data")]
    Decrypt,
}

/// Where the master key came from; reported at start so an operator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeySource {
    Environment,
    ExistingFile,
    GeneratedFile,
}

/// The server's master secret. Wraps tenant keys; never stored in the database.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    kek: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Builds the key from 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"lacuna master key v1"), secret);
        let mut kek = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        hk.expand(WRAP_INFO, &mut kek).unwrap_or_else(|_| unreachable!("32-byte HKDF output"));
        Self { kek }
    }

    /// Parses `LACUNA_MASTER_KEY` (base64 of 32 bytes).
    pub fn from_base64(value: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(STANDARD.decode(value.trim()).map_err(|_| KeyError::BadMasterKeyEncoding)?);
        let arr: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::BadMasterKeyEncoding)?;
        Ok(Self::from_bytes(arr))
    }

    /// The environment value if given, otherwise the key file, created (mode 0600) if missing.
    pub fn load(env_value: Option<&str>, key_file: &Path) -> Result<(Self, MasterKeySource), KeyError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            return Ok((Self::from_base64(v)?, MasterKeySource::Environment));
        }
        let err = |reason: String| KeyError::KeyFile { path: key_file.display().to_string(), reason };
        match std::fs::read_to_string(key_file) {
            Ok(text) => {
                check_private(key_file).map_err(err)?;
                let text = Zeroizing::new(text);
                Ok((Self::from_base64(&text)?, MasterKeySource::ExistingFile))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(secret.as_mut());
                let encoded = Zeroizing::new(STANDARD.encode(secret.as_ref()));
                write_private(key_file, encoded.as_bytes()).map_err(|e| err(e.to_string()))?;
                Ok((Self::from_bytes(&secret), MasterKeySource::GeneratedFile))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Wraps a tenant data key; the tenant id is bound so a wrapped key cannot be moved.
    pub fn wrap(&self, tenant: &str, key: &DataKey) -> Vec<u8> {
        seal(&self.kek, &wrap_aad(tenant), &key.bytes)
    }

    pub fn unwrap_key(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let plain = Zeroizing::new(open(&self.kek, &wrap_aad(tenant), wrapped)?);
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Malformed)?;
        Ok(DataKey { bytes })
    }
}

fn wrap_aad(tenant: &str) -> Vec<u8> {
    let mut aad = b"lacuna tenant data key v1|".to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!("is readable by group or others (mode {:o}); chmod 600 it", mode & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

/// A tenant's own AES-256-GCM data key.
#[derive(Zeroize, ZeroizeOnDrop, Clone)]
pub struct DataKey {
    bytes: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// Encrypts one value; `context` (tenant, table, column, row) is bound as associated data.
    pub fn encrypt(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.bytes, context, plaintext)
    }

    pub fn decrypt(&self, context: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, KeyError> {
        open(&self.bytes, context, ciphertext)
    }
}

/// `FORMAT_V1 || nonce(12) || AES-256-GCM(ciphertext || tag)` with a fresh random nonce.
fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        // AES-GCM encryption fails only for inputs beyond 64 GiB.
        .unwrap_or_else(|_| unreachable!("AES-GCM input within limits"));
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, KeyError> {
    if data.len() < 1 + NONCE_LEN + 16 || data[0] != FORMAT_V1 {
        return Err(KeyError::Malformed);
    }
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(&data[1..1 + NONCE_LEN]), Payload { msg: &data[1 + NONCE_LEN..], aad })
        .map_err(|_| KeyError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_bound_to_tenant_and_master() {
        let mk = MasterKey::from_bytes(&[7u8; 32]);
        let dk = DataKey::generate();
        let w = mk.wrap("tenant-a", &dk);
        let back = mk.unwrap_key("tenant-a", &w).expect("unwraps");
        assert_eq!(back.bytes, dk.bytes);
        assert!(matches!(mk.unwrap_key("tenant-b", &w), Err(KeyError::Decrypt)));
        let other = MasterKey::from_bytes(&[8u8; 32]);
        assert!(matches!(other.unwrap_key("tenant-a", &w), Err(KeyError::Decrypt)));
        let mut tampered = w.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(mk.unwrap_key("tenant-a", &tampered).is_err());
        assert!(matches!(mk.unwrap_key("tenant-a", &w[..10]), Err(KeyError::Malformed)));
    }

    #[test]
    fn fresh_nonce_per_value() {
        let dk = DataKey::generate();
        let a = dk.encrypt(b"ctx", b"Ann Example");
        let b = dk.encrypt(b"ctx", b"Ann Example");
        assert_ne!(a, b);
        assert_eq!(dk.decrypt(b"ctx", &a).expect("decrypts"), b"Ann Example");
        assert!(dk.decrypt(b"other row", &a).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("lacuna-key-{}", std::process::id()));
        let path = dir.join("master.key");
        let _ = std::fs::remove_dir_all(&dir);
        let (k1, s1) = MasterKey::load(None, &path).expect("generates");
        assert_eq!(s1, MasterKeySource::GeneratedFile);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("exists").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, s2) = MasterKey::load(Some("  "), &path).expect("reloads");
        assert_eq!(s2, MasterKeySource::ExistingFile);
        assert_eq!(k1.kek, k2.kek);
        let env = STANDARD.encode([1u8; 32]);
        let (_, s3) = MasterKey::load(Some(&env), &path).expect("env wins");
        assert_eq!(s3, MasterKeySource::Environment);
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The key of the audit chain's HMAC. Derived from the master key, so whoever can write the
/// database but lacks the master key cannot forge, append or re-chain audit events.
#[derive(Zeroize, ZeroizeOnDrop, Clone)]
pub struct AuditKey {
    key: [u8; 32],
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// HMAC-SHA256 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"));
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// A fixed key for unit tests of code that chains events.
    pub fn for_tests() -> Self {
        Self { key: [0x5a; 32] }
    }
}

impl MasterKey {
    pub fn audit_key(&self) -> AuditKey {
        let hk = Hkdf::<Sha256>::from_prk(&self.kek).unwrap_or_else(|_| unreachable!("32-byte PRK"));
        let mut key = [0u8; 32];
        hk.expand(b"lacuna/v1/audit-chain", &mut key).unwrap_or_else(|_| unreachable!("32-byte HKDF output"));
        AuditKey { key }
    }
}

/// Known-answer style self-test run at start: encryption round trips, key wrapping round trips,
/// and tampering and wrong contexts are detected. The trust page reports its outcome.
pub fn self_test(master: &MasterKey) -> bool {
    let dk = DataKey::generate();
    let ct = dk.encrypt(b"self-test|ctx", b"lacuna self-test value");
    let round_trip = dk.decrypt(b"self-test|ctx", &ct).is_ok_and(|p| p == b"lacuna self-test value");
    let wrong_context = dk.decrypt(b"self-test|other", &ct).is_err();
    let mut tampered = ct.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 0x01;
    }
    let tamper_detected = dk.decrypt(b"self-test|ctx", &tampered).is_err();
    let wrapped = master.wrap("self-test-tenant", &dk);
    let unwrap_ok = master.unwrap_key("self-test-tenant", &wrapped).is_ok_and(|k| k.bytes == dk.bytes);
    let wrong_tenant = master.unwrap_key("another-tenant", &wrapped).is_err();
    round_trip && wrong_context && tamper_detected && unwrap_ok && wrong_tenant && ct != b"lacuna self-test value"
}
