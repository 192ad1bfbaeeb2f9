//! TLS: 1.2 and 1.3 are accepted; 1.0 and 1.1 handshakes fail. The old-protocol attempts use a
//! real ClientHello sent over TCP, because no maintained client will still offer TLS 1.0.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use lacuna::scratch::Backend;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal ClientHello record offering only `version` (legacy version field, no
/// supported_versions extension), with ECDHE-ECDSA/RSA AES-GCM and CBC suites.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version); // client_version
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc009, 0xc013, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    // supported_groups: x25519, secp256r1
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01]; // ClientHello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01]; // handshake record
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The first record the server answers with: (content type, first payload byte).
async fn first_record(addr: &str, hello: &[u8]) -> Option<(u8, u8)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut head = [0u8; 6];
    match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut head)).await {
        Ok(Ok(_)) => Some((head[0], head[5])),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_protocol_versions_are_refused_and_modern_ones_accepted() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("https://").to_string();
    // Control: the same hello with TLS 1.2 gets a ServerHello (handshake record, type 2).
    assert_eq!(first_record(&addr, &client_hello([3, 3])).await, Some((0x16, 0x02)), "TLS 1.2 ServerHello");
    // TLS 1.0 and 1.1: an alert record (21) or a closed connection, never a ServerHello.
    for (name, v) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let answer = first_record(&addr, &client_hello(v)).await;
        assert!(matches!(answer, None | Some((0x15, _))), "{name} was not refused: {answer:?}");
    }
    // A real client negotiates 1.3 by default and 1.2 when capped.
    let cert = app.app.certificate_pem().unwrap();
    for max in [reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_3] {
        let c = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&cert).unwrap()])
            .tls_version_max(max)
            .build()
            .unwrap();
        assert!(c.get(app.url("/healthz")).send().await.unwrap().status().is_success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_http_mode_sends_no_hsts() {
    let mut scratch = lacuna::scratch::Scratch::new(Backend::Sqlite).await.unwrap();
    scratch.config.tls = lacuna::TlsChoice::InsecureHttp;
    let app = lacuna::build(&scratch.config).await.unwrap();
    let server = app.start().await.unwrap();
    assert!(server.base_url().starts_with("http://"));
    let r = reqwest::get(format!("{}/healthz", server.base_url())).await.unwrap();
    assert!(r.status().is_success());
    assert!(!r.headers().contains_key("strict-transport-security"));
    assert!(r.headers().contains_key("content-security-policy"));
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
