//! Lacuna's cryptography, built only from maintained RustCrypto primitives.
//!
//! Key hierarchy: the master key (from the environment or a key file, never from the database)
//! derives, with HKDF-SHA256, a key-encryption key that wraps each tenant's own data key
//! (AES-256-GCM, tenant id bound as associated data). Secrets live in types that zeroize on drop
//! and never print.
//!
//! Nothing here logs a secret or puts one in an error message.

mod keys;
mod password;
mod stream;
mod token;
mod totp;

pub use keys::{
    AuditKey, DataKey, DataKeyRing, KeyError, MasterKey, MasterKeySource, MasterKeys, PreparedMac, self_test,
};
pub use password::{PasswordError, PasswordHasher};
pub use stream::{STREAM_NONCE_PREFIX, StreamError, decrypt_stream, encrypt_stream};
pub use token::{constant_time_eq, random_token, sha256};
pub use totp::{
    TotpError, new_totp_secret, qr_svg, totp_check, totp_code, totp_secret_base32, totp_secret_from_base32, totp_uri,
};
