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
const KEY_ID_LEN: usize = 8;
const WRAP_INFO: &[u8] = b"lacuna/v1/tenant-key-wrap";
/// Format byte in front of every sealed value: `2 || key id (8) || nonce (12) || ciphertext+tag`.
/// The key id says which key sealed it (a master key's fingerprint, or a data key's version), so
/// keys can rotate while old ciphertexts stay readable.
const FORMAT_V2: u8 = 2;

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
    #[error("sealed with a key that is not available (rotated away or destroyed)")]
    UnknownKey,
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
    #[zeroize(skip)]
    id: [u8; KEY_ID_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {})", self.fingerprint())
    }
}

impl MasterKey {
    /// Builds the key from 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"lacuna master key v1"), secret);
        let mut kek = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        hk.expand(WRAP_INFO, &mut kek).unwrap_or_else(|_| unreachable!("32-byte HKDF output"));
        let mut id = [0u8; KEY_ID_LEN];
        hk.expand(b"lacuna/v1/master-key-id", &mut id).unwrap_or_else(|_| unreachable!("8-byte HKDF output"));
        Self { kek, id }
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

    /// A public fingerprint (hex) that identifies this master key without revealing it.
    pub fn fingerprint(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The master key in use and, during a rotation, the one before it (read-only).
pub struct MasterKeys {
    current: MasterKey,
    previous: Option<MasterKey>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MasterKeys(current {}, previous {:?})",
            self.current.fingerprint(),
            self.previous.as_ref().map(|p| p.fingerprint())
        )
    }
}

impl MasterKeys {
    pub fn new(current: MasterKey, previous: Option<MasterKey>) -> Self {
        Self { current, previous }
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Wraps a 32-byte key under the current master; `scope` (e.g. `tenant:<id>`) is bound.
    pub fn wrap(&self, scope: &str, secret: &[u8; 32]) -> Vec<u8> {
        seal(&self.current.kek, self.current.id, &wrap_aad(scope), secret)
    }

    /// Unwraps with whichever master sealed it (current or previous).
    pub fn unwrap(&self, scope: &str, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let id = key_id(wrapped)?;
        let master = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|m| m.id == id)
            .ok_or(KeyError::UnknownKey)?;
        let plain = Zeroizing::new(open(&master.kek, &wrap_aad(scope), wrapped)?);
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Zeroizing::new(bytes))
    }

    /// True if `wrapped` is sealed under the current master (nothing to re-wrap).
    pub fn is_current(&self, wrapped: &[u8]) -> bool {
        key_id(wrapped).is_ok_and(|id| id == self.current.id)
    }

    pub fn wrap_data_key(&self, scope: &str, key: &DataKey) -> Vec<u8> {
        self.wrap(scope, &key.bytes)
    }

    pub fn unwrap_data_key(&self, scope: &str, version: u32, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let bytes = self.unwrap(scope, wrapped)?;
        Ok(DataKey { version, bytes: *bytes })
    }
}

fn wrap_aad(scope: &str) -> Vec<u8> {
    let mut aad = b"lacuna wrapped key v2|".to_vec();
    aad.extend_from_slice(scope.as_bytes());
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

/// One version of a tenant's AES-256-GCM data key.
#[derive(Zeroize, ZeroizeOnDrop, Clone)]
pub struct DataKey {
    #[zeroize(skip)]
    version: u32,
    bytes: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(v{})", self.version)
    }
}

impl DataKey {
    pub fn generate(version: u32) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { version, bytes }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    fn id(&self) -> [u8; KEY_ID_LEN] {
        u64::from(self.version).to_be_bytes()
    }

    /// Encrypts one value; `context` (tenant, table, column, row) is bound as associated data.
    pub fn encrypt(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.bytes, self.id(), context, plaintext)
    }

    pub fn decrypt(&self, context: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, KeyError> {
        if key_id(ciphertext)? != self.id() {
            return Err(KeyError::UnknownKey);
        }
        open(&self.bytes, context, ciphertext)
    }
}

/// All live versions of a tenant's data key: encrypts with the newest, decrypts with whichever
/// version a ciphertext names.
#[derive(Debug, Clone)]
pub struct DataKeyRing {
    keys: Vec<DataKey>,
}

impl DataKeyRing {
    /// `keys` must not be empty.
    pub fn new(mut keys: Vec<DataKey>) -> Option<Self> {
        keys.sort_by_key(|k| k.version);
        (!keys.is_empty()).then_some(Self { keys })
    }

    pub fn newest(&self) -> &DataKey {
        // `new` refuses an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    pub fn encrypt(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.newest().encrypt(context, plaintext)
    }

    pub fn decrypt(&self, context: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let id = key_id(ciphertext)?;
        let key = self.keys.iter().find(|k| k.id() == id).ok_or(KeyError::UnknownKey)?;
        open(&key.bytes, context, ciphertext)
    }

    /// True if `ciphertext` was sealed with the newest version (nothing to re-encrypt).
    pub fn is_newest(&self, ciphertext: &[u8]) -> bool {
        key_id(ciphertext).is_ok_and(|id| id == self.newest().id())
    }
}

fn key_id(data: &[u8]) -> Result<[u8; KEY_ID_LEN], KeyError> {
    if data.len() < 1 + KEY_ID_LEN + NONCE_LEN + 16 || data[0] != FORMAT_V2 {
        return Err(KeyError::Malformed);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&data[1..1 + KEY_ID_LEN]);
    Ok(id)
}

/// Seals with a fresh random nonce; the key id is bound into the associated data too.
fn seal(key: &[u8; 32], id: [u8; KEY_ID_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut full_aad = id.to_vec();
    full_aad.extend_from_slice(aad);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &full_aad })
        // AES-GCM encryption fails only for inputs beyond 64 GiB.
        .unwrap_or_else(|_| unreachable!("AES-GCM input within limits"));
    let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ct.len());
    out.push(FORMAT_V2);
    out.extend_from_slice(&id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, KeyError> {
    let id = key_id(data)?;
    let cipher = Aes256Gcm::new(key.into());
    let mut full_aad = id.to_vec();
    full_aad.extend_from_slice(aad);
    let body = &data[1 + KEY_ID_LEN..];
    cipher
        .decrypt(Nonce::from_slice(&body[..NONCE_LEN]), Payload { msg: &body[NONCE_LEN..], aad: &full_aad })
        .map_err(|_| KeyError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_bound_to_scope_and_master() {
        let mk = MasterKeys::new(MasterKey::from_bytes(&[7u8; 32]), None);
        let dk = DataKey::generate(1);
        let w = mk.wrap_data_key("tenant:a", &dk);
        let back = mk.unwrap_data_key("tenant:a", 1, &w).expect("unwraps");
        assert_eq!(back.bytes, dk.bytes);
        assert!(matches!(mk.unwrap_data_key("tenant:b", 1, &w), Err(KeyError::Decrypt)));
        let other = MasterKeys::new(MasterKey::from_bytes(&[8u8; 32]), None);
        assert!(matches!(other.unwrap_data_key("tenant:a", 1, &w), Err(KeyError::UnknownKey)));
        let mut tampered = w.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(mk.unwrap_data_key("tenant:a", 1, &tampered).is_err());
        assert!(matches!(mk.unwrap_data_key("tenant:a", 1, &w[..10]), Err(KeyError::Malformed)));
    }

    #[test]
    fn previous_master_unwraps_during_rotation() {
        let old = MasterKey::from_bytes(&[1u8; 32]);
        let w = MasterKeys::new(MasterKey::from_bytes(&[1u8; 32]), None).wrap("audit", &[9u8; 32]);
        let rotating = MasterKeys::new(MasterKey::from_bytes(&[2u8; 32]), Some(old));
        assert!(!rotating.is_current(&w));
        assert_eq!(*rotating.unwrap("audit", &w).expect("previous master"), [9u8; 32]);
        let rewrapped = rotating.wrap("audit", &[9u8; 32]);
        assert!(rotating.is_current(&rewrapped));
        let after = MasterKeys::new(MasterKey::from_bytes(&[2u8; 32]), None);
        assert!(after.unwrap("audit", &rewrapped).is_ok());
        assert!(matches!(after.unwrap("audit", &w), Err(KeyError::UnknownKey)));
    }

    #[test]
    fn key_ring_reads_old_versions_and_writes_the_newest() {
        let v1 = DataKey::generate(1);
        let old_ct = v1.encrypt(b"ctx", b"Ann Example");
        let ring = DataKeyRing::new(vec![DataKey::generate(2), v1]).expect("non-empty");
        assert_eq!(ring.newest().version(), 2);
        assert!(!ring.is_newest(&old_ct));
        assert_eq!(ring.decrypt(b"ctx", &old_ct).expect("old version"), b"Ann Example");
        let new_ct = ring.encrypt(b"ctx", b"Ann Example");
        assert!(ring.is_newest(&new_ct));
        let only_new = DataKeyRing::new(vec![ring.newest().clone()]).expect("non-empty");
        assert!(matches!(only_new.decrypt(b"ctx", &old_ct), Err(KeyError::UnknownKey)));
        assert!(DataKeyRing::new(Vec::new()).is_none());
    }

    #[test]
    fn fresh_nonce_per_value() {
        let dk = DataKey::generate(1);
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
    /// A fresh HMAC-SHA256 state under this key.
    fn hmac(&self) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        // HMAC accepts keys of any length, so this cannot fail.
        <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"))
    }

    /// HMAC-SHA256 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut m = self.hmac();
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC-SHA256 of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac;
        let mut m = self.hmac();
        m.update(data);
        m.verify_slice(tag).is_ok()
    }

    /// A keyed HMAC state prepared once, for verifying many entries (each MAC clones it instead
    /// of re-deriving the inner and outer pads).
    pub fn prepared(&self) -> PreparedMac {
        PreparedMac(self.hmac())
    }

    /// A new random key (kept wrapped by the master key in the keystore).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.key
    }

    /// A fixed key for unit tests of code that chains events.
    pub fn for_tests() -> Self {
        Self { key: [0x5a; 32] }
    }
}

/// A prepared HMAC-SHA256 state under the audit key (see [`AuditKey::prepared`]).
#[derive(Clone)]
pub struct PreparedMac(hmac::Hmac<Sha256>);

impl PreparedMac {
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut m = self.0.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for PreparedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedMac(<redacted>)")
    }
}

/// Known-answer style self-test run at start: encryption round trips, key wrapping round trips,
/// and tampering and wrong contexts are detected. The trust page reports its outcome.
pub fn self_test(master: &MasterKey) -> bool {
    let keys = MasterKeys::new(MasterKey { kek: master.kek, id: master.id }, None);
    let dk = DataKey::generate(1);
    let ct = dk.encrypt(b"self-test|ctx", b"lacuna self-test value");
    let round_trip = dk.decrypt(b"self-test|ctx", &ct).is_ok_and(|p| p == b"lacuna self-test value");
    let wrong_context = dk.decrypt(b"self-test|other", &ct).is_err();
    let mut tampered = ct.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 0x01;
    }
    let tamper_detected = dk.decrypt(b"self-test|ctx", &tampered).is_err();
    let wrapped = keys.wrap_data_key("self-test-tenant", &dk);
    let unwrap_ok = keys.unwrap_data_key("self-test-tenant", 1, &wrapped).is_ok_and(|k| k.bytes == dk.bytes);
    let wrong_scope = keys.unwrap_data_key("another-tenant", 1, &wrapped).is_err();
    round_trip && wrong_context && tamper_detected && unwrap_ok && wrong_scope && ct != b"lacuna self-test value"
}
