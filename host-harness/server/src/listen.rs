//! Serving: HTTP/1.1 and HTTP/2 on one port, over TLS (rustls) when the configuration gives a
//! certificate, and a shutdown that stops accepting, lets calls in flight finish within the
//! configured bound, answers those still running 503 and reports them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use accessgov_host::Host;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::audit::AuditLog;
use crate::auth::Keys;
use crate::config::ServerConfig;
use crate::dispatch::Backend;
use crate::linger::Lingering;
use crate::routes::{AppState, router};

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A tenant of the configuration was refused.
    #[error("tenant `{tenant}` of the configuration: {message}")]
    Tenant {
        /// The tenant.
        tenant: String,
        /// Why.
        message: String,
    },
    /// The audit log could not be opened.
    #[error("audit log {path}: {message}")]
    AuditLog {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Listening failed.
    #[error("listening on {addr}: {message}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
}

/// How a shutdown went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Calls in flight when shutdown began.
    pub in_flight_at_start: usize,
    /// Calls cut off when the bound passed, each named.
    pub cut_off: Vec<String>,
}

/// A configured server, not yet serving.
pub struct Server {
    state: Arc<AppState>,
    cut_off: watch::Sender<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    drain: Duration,
}

impl Server {
    /// Opens the audit log, loads the TLS material and registers the configuration's tenants
    /// on `host`; calls run where `backend` says. Workers behind a queue take their tenants from
    /// the queue's store, so a queue's server registers its tenants through the API, never from
    /// its file.
    pub async fn new(
        config: &ServerConfig,
        host: Arc<Host>,
        backend: Backend,
    ) -> Result<Server, ServerError> {
        if let (Backend::Queue(_), Some(tenant)) = (&backend, config.tenants.first()) {
            return Err(ServerError::Tenant {
                tenant: tenant.id.clone(),
                message: "with a queue, tenants are registered through the API (PUT \
                          /v1/tenants/{id}), which shares them with every worker; remove \
                          `tenants` from the file"
                    .to_string(),
            });
        }
        let audit = AuditLog::open(&config.audit_log).map_err(|e| ServerError::AuditLog {
            path: config.audit_log.display().to_string(),
            message: e.to_string(),
        })?;
        for tenant in &config.tenants {
            host.add_tenant_checked(tenant, &config.base_dir).await.map_err(|e| {
                ServerError::Tenant { tenant: tenant.id.clone(), message: e.to_string() }
            })?;
        }
        let tls = match &config.tls {
            Some(tls) => Some(acceptor(&tls.certificate, &tls.private_key)?),
            None => None,
        };
        let (cut_off, watching) = watch::channel(false);
        let keys = Keys::new(&config.keys);
        let state =
            Arc::new(AppState::new(host, backend, keys, audit, config.limits.clone(), watching));
        Ok(Server {
            state,
            cut_off,
            tls,
            drain: Duration::from_millis(config.limits.drain_timeout_ms),
        })
    }

    /// The router, for serving it another way or calling it in tests.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<ShutdownReport, ServerError> {
        let app = self.router();
        let builder = Builder::new(TokioExecutor::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
            let app = app.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
            match &self.tls {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(Lingering::new(stream)),
                            service,
                        )
                        .into_owned();
                    let watched = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = watched.await {
                            tracing::debug!(%peer, "connection: {e}");
                        }
                    });
                }
                Some(acceptor) => {
                    // The handshake happens in the connection's task, so a slow client does
                    // not hold up the accept loop.
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        match acceptor.accept(Lingering::new(stream)).await {
                            Ok(tls) => {
                                let connection = builder
                                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                                    .into_owned();
                                if let Err(e) = watcher.watch(connection).await {
                                    tracing::debug!(%peer, "connection: {e}");
                                }
                            }
                            Err(e) => tracing::debug!(%peer, "TLS handshake: {e}"),
                        }
                    });
                }
            }
        }
        drop(listener);
        self.drain(graceful).await
    }

    /// Stops new work, waits for calls in flight up to the bound, then cuts off the rest.
    async fn drain(
        &self,
        graceful: hyper_util::server::graceful::GracefulShutdown,
    ) -> Result<ShutdownReport, ServerError> {
        self.state.draining.store(true, Ordering::SeqCst);
        let in_flight_at_start = self.state.running.lock().unwrap_or_else(|p| p.into_inner()).len();
        tracing::info!(in_flight = in_flight_at_start, "shutting down: no new calls, draining");
        // Jobs stop after their call under way; their records are written as they stop.
        self.state.jobs.cancel_all();
        let state = self.state.clone();
        let calls_done = async move {
            while !state.running.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
                || state.jobs.running() > 0
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(self.drain, calls_done).await.is_err() {
            let _ = self.cut_off.send(true);
            let jobs = self.state.jobs.running_described();
            self.state.cut.lock().unwrap_or_else(|p| p.into_inner()).extend(jobs);
        }
        // Answers (the 503s of calls cut off included) go out; connections then close.
        if tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await.is_err() {
            tracing::warn!("connections still open after the drain; closing them");
        }
        let cut_off = self.state.cut.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for call in &cut_off {
            tracing::error!(call = call.as_str(), "cut off by shutdown");
        }
        Ok(ShutdownReport { in_flight_at_start, cut_off })
    }
}

/// A TLS acceptor of the PEM certificate chain and key, offering HTTP/2 and HTTP/1.1.
fn acceptor(certificate: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", certificate.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!("{}: no certificate", certificate.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
