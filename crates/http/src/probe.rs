//! The TLS self-probe: real handshakes against our own listener at each protocol version, so the
//! trust page reports what the server actually accepts, not what its configuration claims.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the probe found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsProbe {
    pub accepted: Vec<&'static str>,
    pub refused: Vec<&'static str>,
    pub probed_at: i64,
}

/// Checks handshake signatures for real but accepts any certificate: the probe asks which
/// protocol versions our own listener speaks, not who it is.
#[derive(Debug)]
struct ProbeVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for ProbeVerifier {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn handshake(addr: SocketAddr, version: &'static rustls::SupportedProtocolVersion) -> bool {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let Ok(builder) = rustls::ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&[version])
    else {
        return false;
    };
    let config =
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ProbeVerifier(provider))).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let name = ServerName::try_from("localhost").ok()?;
        connector.connect(name, tcp).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), attempt).await, Ok(Some(_)))
}

/// A ClientHello offering only the legacy `version` (TLS 1.0 = [3,1], TLS 1.1 = [3,2]); true if
/// the server answers with a ServerHello instead of an alert or a closed connection.
async fn legacy_hello_accepted(addr: SocketAddr, version: [u8; 2]) -> bool {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[0x42; 32]);
    body.push(0);
    let suites: [u16; 4] = [0xc009, 0xc013, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    suites.iter().for_each(|s| body.extend_from_slice(&s.to_be_bytes()));
    body.extend_from_slice(&[1, 0]);
    let ext = [0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00];
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(&rec).await.ok()?;
        let mut head = [0u8; 6];
        s.read_exact(&mut head).await.ok()?;
        Some(head[0] == 0x16 && head[5] == 0x02)
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), attempt).await, Ok(Some(true)))
}

/// Probes TLS 1.3, 1.2, 1.1 and 1.0 against `addr`.
pub async fn probe(addr: SocketAddr) -> TlsProbe {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (name, ok) in [
        ("TLS 1.3", handshake(addr, &rustls::version::TLS13).await),
        ("TLS 1.2", handshake(addr, &rustls::version::TLS12).await),
        ("TLS 1.1", legacy_hello_accepted(addr, [3, 2]).await),
        ("TLS 1.0", legacy_hello_accepted(addr, [3, 1]).await),
    ] {
        if ok { accepted.push(name) } else { refused.push(name) }
    }
    TlsProbe { accepted, refused, probed_at: lacuna_storage::now_unix() }
}
