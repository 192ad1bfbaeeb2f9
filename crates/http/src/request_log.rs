//! The request log recorder. The outer middleware records one entry per request (route
//! template, status, latency, request id; tenant and actor once authentication has named them)
//! into a channel; a background task writes them in batches, so a request never waits for it.
//! Bodies, query strings, raw paths and personal data are never recorded.

use lacuna_domain::TenantId;
use lacuna_storage::Store;
use lacuna_storage::request_log::RequestLogEntry;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Filled in by authentication, read by the recorder after the response.
#[derive(Clone, Default)]
pub struct LogContext(Arc<Mutex<Option<(TenantId, String)>>>);

impl LogContext {
    pub fn set(&self, tenant: TenantId, actor: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((tenant, actor));
    }
    pub fn get(&self) -> Option<(TenantId, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

enum Msg {
    Entry(RequestLogEntry),
    Flush(oneshot::Sender<()>),
}

/// Handle to the background writer. Cheap to clone.
#[derive(Clone)]
pub struct RequestLogger {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

const BATCH: usize = 512;
const QUEUE: usize = 65_536;

impl RequestLogger {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let dropped_seen = dropped.clone();
        tokio::spawn(async move {
            let mut buf: Vec<Msg> = Vec::with_capacity(BATCH);
            loop {
                let n = rx.recv_many(&mut buf, BATCH).await;
                if n == 0 {
                    break; // every sender is gone
                }
                // Gather a little more for a fuller batch.
                let room = BATCH.saturating_sub(buf.len());
                if room > 0 {
                    let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv_many(&mut buf, room)).await;
                }
                let mut entries = Vec::with_capacity(buf.len());
                let mut waiters = Vec::new();
                for m in buf.drain(..) {
                    match m {
                        Msg::Entry(e) => entries.push(e),
                        Msg::Flush(w) => waiters.push(w),
                    }
                }
                if !entries.is_empty()
                    && let Err(e) = store.write_request_log(&entries).await
                {
                    tracing::error!(error = %e, lost = entries.len(), "request log write failed");
                }
                let lost = dropped_seen.swap(0, std::sync::atomic::Ordering::Relaxed);
                if lost > 0 {
                    tracing::error!(lost, "request log queue was full; entries were dropped");
                }
                for w in waiters {
                    let _ = w.send(());
                }
            }
        });
        Self { tx, dropped }
    }

    /// Records an entry; if the queue is full the entry is dropped and counted in the log.
    pub fn record(&self, e: RequestLogEntry) {
        if self.tx.try_send(Msg::Entry(e)).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (w, r) = oneshot::channel();
        if self.tx.send(Msg::Flush(w)).await.is_ok() {
            let _ = r.await;
        }
    }
}
