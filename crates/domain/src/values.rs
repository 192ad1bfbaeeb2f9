//! Validated values: constructing one is the validation.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A syntactically plausible email address, trimmed and lowercased.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let v = raw.trim().to_lowercase();
        let bad = || ValidationError::new(field, "must be an email address like name@example.com");
        if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = v.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
        {
            return Err(bad());
        }
        Ok(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data: never printed in logs by accident.
        f.write_str("Email(<redacted>)")
    }
}

/// A password that meets the policy. It never prints.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(field: &str, raw: String) -> Result<Self, ValidationError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(ValidationError::new(field, format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if n > Self::MAX_CHARS {
            return Err(ValidationError::new(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A required, trimmed, non-empty text of bounded length.
pub fn required_text(field: &str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} characters")));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse("email", " Ann@Example.COM ").map(|e| e.0), Ok("ann@example.com".into()));
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@.com"] {
            let err = Email::parse("email", bad).expect_err(bad);
            assert_eq!(err.field, "email");
        }
    }

    #[test]
    fn short_password_names_the_field() {
        let err = Password::parse("password", "elevenchars".into()).expect_err("too short");
        assert_eq!(err.field, "password");
        assert!(Password::parse("password", "twelve chars".into()).is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let p = Password::parse("p", "correct horse battery".into()).expect("valid");
        assert!(!format!("{p:?}").contains("horse"));
        let e = Email::parse("e", "ann@example.com").expect("valid");
        assert!(!format!("{e:?}").contains("ann"));
    }
}
