//! argon2id password hashing (PHC strings with their own parameters and salt).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed")]
    Hash,
}

/// Hashes and verifies passwords with argon2id (OWASP's 19 MiB, t=2, p=1 by default).
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified when an account does not exist so that a
    /// failed sign-in takes the same time either way.
    dummy: String,
}

impl PasswordHasher {
    pub fn new() -> Self {
        Self::with_params(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST)
    }

    /// Custom cost, e.g. for benchmarks; never below argon2's own minimums.
    pub fn with_params(m_cost_kib: u32, t_cost: u32) -> Self {
        let params = Params::new(m_cost_kib, t_cost, 1, None).unwrap_or_default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut h = Self { argon, dummy: String::new() };
        h.dummy = h.hash(&crate::random_token(24)).unwrap_or_default();
        h
    }

    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon.hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| PasswordError::Hash)
    }

    /// True only if `stored` is a valid PHC hash of `password`.
    pub fn verify(&self, stored: &str, password: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self.argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the same effort as a real verification and returns false.
    pub fn verify_nobody(&self, password: &str) -> bool {
        let _ = self.verify(&self.dummy, password);
        false
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h = PasswordHasher::new();
        let a = h.hash("correct horse battery").expect("hash");
        let b = h.hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(h.verify(&a, "correct horse battery"));
        assert!(!h.verify(&a, "correct horse batterY"));
        assert!(!h.verify("not a hash", "x"));
        assert!(!h.verify_nobody("correct horse battery"));
    }
}
