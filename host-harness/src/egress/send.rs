//! Sends a request to an address the host resolved and vetted itself, so the guest cannot
//! steer the connection elsewhere between the check and the connect (DNS rebinding). TLS still
//! verifies the certificate against the origin's host name.
//!
//! Connections are kept alive and reused across the calls of one tenant: every call runs in a
//! fresh instance, so without reuse every page of a listing would pay a TCP (and TLS) handshake.
//! A pool belongs to one tenant and is keyed by origin and vetted address, so a connection never
//! carries another tenant's requests and never reaches an address this request did not vet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::Origin;

/// Timeouts of one request, already clamped to the tenant's limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To establish the connection (and TLS).
    pub connect: Duration,
    /// To the response head.
    pub first_byte: Duration,
}

/// How long an idle connection is kept; servers close idle keep-alive connections after a
/// while, and a request on a connection closed under it fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per origin and address.
const MAX_IDLE: usize = 16;

/// Idle connections by origin and vetted address, each with the time it went idle.
type IdleConnections = HashMap<(Origin, SocketAddr), Vec<(SendRequest<WasiBody>, Instant)>>;

/// Idle keep-alive connections of one tenant, by origin and vetted address.
#[derive(Default)]
pub struct ConnectionPool {
    idle: Mutex<IdleConnections>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle: usize = self.lock().values().map(Vec::len).sum();
        f.debug_struct("ConnectionPool").field("idle", &idle).finish()
    }
}

impl ConnectionPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleConnections> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used live connection to one of `addrs`, if any.
    fn take(
        &self,
        origin: &Origin,
        addrs: &[SocketAddr],
    ) -> Option<(SocketAddr, SendRequest<WasiBody>)> {
        let mut idle = self.lock();
        for addr in addrs {
            let Some(list) = idle.get_mut(&(origin.clone(), *addr)) else { continue };
            while let Some((sender, since)) = list.pop() {
                if since.elapsed() < IDLE_TIMEOUT && !sender.is_closed() {
                    return Some((*addr, sender));
                }
            }
        }
        None
    }

    fn put(&self, origin: Origin, addr: SocketAddr, sender: SendRequest<WasiBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry((origin, addr)).or_default();
        list.retain(|(s, since)| since.elapsed() < IDLE_TIMEOUT && !s.is_closed());
        if list.len() >= MAX_IDLE {
            list.remove(0);
        }
        list.push((sender, Instant::now()));
    }

    /// Idle connections held, for tests and diagnostics.
    pub fn idle_connections(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

/// A connection lent to one request. It goes back to the pool only once its response has been
/// read to the end; dropped earlier, the connection closes (HTTP/1.1 cannot reuse it).
pub struct Lease {
    pool: Arc<ConnectionPool>,
    origin: Origin,
    addr: SocketAddr,
    sender: SendRequest<WasiBody>,
}

impl Lease {
    /// Returns the connection to the pool.
    pub fn release(self) {
        self.pool.put(self.origin, self.addr, self.sender);
    }
}

/// Sends `request` over a pooled connection to one of `addrs` if one is idle, else over a new
/// one, and lends the connection to the response.
pub async fn send_pooled(
    pool: &Arc<ConnectionPool>,
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<(http::Response<Incoming>, Lease), HttpError> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let lease =
        |addr, sender| Lease { pool: Arc::clone(pool), origin: origin.clone(), addr, sender };
    while let Some((addr, mut sender)) = pool.take(origin, addrs) {
        // The previous exchange has ended; this only waits for the connection task to see it.
        match tokio::time::timeout(timeouts.connect, sender.ready()).await {
            Ok(Ok(())) => {}
            _ => continue,
        }
        match tokio::time::timeout(timeouts.first_byte, sender.try_send_request(request)).await {
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
            Ok(Ok(response)) => return Ok((response, lease(addr, sender))),
            // Not written before the connection failed: safe to send on another.
            Ok(Err(mut failed)) => match failed.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(HttpError::from(failed.into_error())),
            },
        }
    }
    let (addr, mut sender) = connect(origin, addrs, timeouts).await?;
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    Ok((response, lease(addr, sender)))
}

/// Opens a new HTTP/1.1 connection (with TLS for `https`) to the first of `addrs` that answers.
async fn connect(
    origin: &Origin,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<(SocketAddr, SendRequest<WasiBody>), HttpError> {
    let mut last_error = HttpError::ConnectionRefused;
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((*addr, s));
                break;
            }
            Ok(Err(e)) => last_error = HttpError::Connect(e),
            Err(_) => last_error = HttpError::ConnectionTimeout,
        }
    }
    let (addr, stream) = stream.ok_or(last_error)?;
    let sender = if origin.scheme == "https" {
        let stream = tokio::time::timeout(timeouts.connect, tls(stream, &origin.host))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        handshake(TokioIo::new(stream), timeouts).await?
    } else {
        handshake(TokioIo::new(stream), timeouts).await?
    };
    Ok((addr, sender))
}

async fn tls(
    stream: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    let config =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(HttpError::Tls)
}

async fn handshake<S>(
    io: TokioIo<S>,
    timeouts: Timeouts,
) -> Result<SendRequest<WasiBody>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = tokio::time::timeout(
        timeouts.connect,
        hyper::client::conn::http1::Builder::new().handshake(io),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // The connection is driven by its own task; it ends when its last sender is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("egress connection ended: {e}");
        }
    });
    Ok(sender)
}
