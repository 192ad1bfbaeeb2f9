//! TLS: rustls with TLS 1.3 and 1.2 only (aws-lc-rs provider); a self-signed certificate for
//! local use is generated on first start unless the operator supplies one.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: reason.to_string() }
}

/// Returns (cert, key) paths in `dir`, generating a self-signed pair for localhost if absent.
pub fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let cert_path = dir.join("tls-cert.pem");
    let key_path = dir.join("tls-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path, false));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_file(&key_path, cert.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.cert.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path, true))
}

#[cfg(unix)]
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(data).map_err(|e| file_err(path, e))
}

#[cfg(not(unix))]
fn write_file(path: &Path, data: &[u8], _mode: u32) -> Result<(), TlsError> {
    std::fs::write(path, data).map_err(|e| file_err(path, e))
}

/// A rustls server configuration accepting only TLS 1.3 and TLS 1.2.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e))?;
    if certs.is_empty() {
        return Err(file_err(cert, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
