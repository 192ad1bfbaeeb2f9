//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, ±1 step of clock skew) and the QR code
//! that carries its `otpauth://` URI to an authenticator app.

use totp_rs::{Builder, Secret, Totp};

/// Length of a new TOTP secret: 160 bits, as RFC 4226 recommends.
pub const TOTP_SECRET_BYTES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("TOTP setup failed")]
    Setup,
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|_| TotpError::Setup)
}

/// A fresh random secret.
pub fn new_totp_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; TOTP_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// Decodes a base32 secret (as shown to the user).
pub fn totp_secret_from_base32(s: &str) -> Option<Vec<u8>> {
    Secret::try_from_base32(s).ok().map(|s| s.as_ref().to_vec())
}

/// The secret in base32, for typing into an app by hand.
pub fn totp_secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=…` for the QR code.
pub fn totp_uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, TotpError> {
    totp(secret, issuer, account)?.to_url().map_err(|_| TotpError::Setup)
}

/// The time step a code is valid for at `unix_time`, if it is valid at all. Callers must accept
/// each step once (replay protection is theirs: see RFC 6238 §5.2).
pub fn totp_check(secret: &[u8], code: &str, unix_time: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "lacuna", "check").ok()?.check(code, unix_time)
}

/// The code an authenticator shows at `unix_time` (tests and tooling).
pub fn totp_code(secret: &[u8], unix_time: u64) -> String {
    totp(secret, "lacuna", "code").map(|t| t.generate(unix_time).to_string()).unwrap_or_default()
}

/// The data as a QR code in SVG (no script, no external references).
pub fn qr_svg(data: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(|_| TotpError::Setup)?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(220, 220).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", T = 59 → 94287082 (8 digits);
        // our 6-digit codes are its last six digits.
        let key = b"12345678901234567890";
        assert_eq!(totp_code(key, 59), "287082");
        assert_eq!(totp_code(key, 1111111109), "081804");
    }

    #[test]
    fn check_accepts_one_step_of_skew_and_nothing_else() {
        let s = new_totp_secret();
        let t = 1_800_000_000;
        let code = totp_code(&s, t);
        assert_eq!(totp_check(&s, &code, t), Some(t / 30));
        assert!(totp_check(&s, &code, t + 30).is_some());
        assert!(totp_check(&s, &code, t + 90).is_none());
        assert!(totp_check(&s, "12345", t).is_none());
        assert!(totp_check(&s, "abcdef", t).is_none());
    }

    #[test]
    fn uri_and_qr() {
        let s = new_totp_secret();
        let uri = totp_uri(&s, "Lacuna", "olive@example.com").expect("uri");
        assert!(uri.starts_with("otpauth://totp/Lacuna:olive%40example.com?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", totp_secret_base32(&s))));
        let svg = qr_svg(&uri).expect("svg");
        assert!(svg.contains("<svg") && !svg.contains("<script"));
    }
}
