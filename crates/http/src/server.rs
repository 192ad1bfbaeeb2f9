//! Starting and stopping the HTTP(S) server.

use crate::tls::{TlsError, server_config};
use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub enum TlsMode {
    /// TLS with a certificate and key from files (PEM).
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP: only for tests or behind a TLS-terminating proxy on the same host.
    InsecureHttp,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub tls: TlsMode,
}

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub tls: bool,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `https://127.0.0.1:port` (or `http://` for an insecure server).
    pub fn base_url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace`), and waits.
    pub async fn shutdown(self, grace: Duration) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Waits until the server stops by itself (or fails).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("could not listen on {0}")]
    Bind(SocketAddr),
}

/// Binds and starts serving `router`; returns once the socket is listening.
pub async fn start(router: Router, config: ServeConfig) -> Result<RunningServer, ServeError> {
    let handle: Handle<SocketAddr> = Handle::new();
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    let (task, tls) = match &config.tls {
        TlsMode::Files { cert, key } => {
            let rustls = RustlsConfig::from_config(server_config(cert, key)?);
            let server = axum_server::bind_rustls(config.listen, rustls).handle(handle.clone());
            (tokio::spawn(async move { server.serve(make).await }), true)
        }
        TlsMode::InsecureHttp => {
            let server = axum_server::bind(config.listen).handle(handle.clone());
            (tokio::spawn(async move { server.serve(make).await }), false)
        }
    };
    match handle.listening().await {
        Some(addr) => Ok(RunningServer { addr, tls, handle, task }),
        None => {
            if let Ok(Err(e)) = task.await {
                tracing::error!(error = %e, "listen failed");
            }
            Err(ServeError::Bind(config.listen))
        }
    }
}
