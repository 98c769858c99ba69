//! Sends a request to an address the host resolved and vetted itself, so the guest cannot
//! steer the connection elsewhere between the check and the connect (DNS rebinding). TLS still
//! verifies the certificate against the origin's host name.
//!
//! Connections are kept alive and reused across the calls of one tenant: every call runs in a
//! fresh instance, so without reuse every page of a listing would pay a TCP (and TLS) handshake.
//! Idle connections are keyed by tenant, origin and vetted address, so a connection never
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
/// Idle connections kept per tenant, origin and address.
const MAX_IDLE_PER_KEY: usize = 16;

/// Whose connection to where: a connection is only ever reused by the tenant that opened it,
/// for the origin and vetted address it was opened to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: Arc<str>,
    origin: Origin,
    addr: SocketAddr,
}

/// Idle connections by key, oldest first, each with the time it went idle.
type IdleConnections = HashMap<Key, Vec<(SendRequest<WasiBody>, Instant)>>;

/// Whether a connection idle since `since` may still carry a request.
fn reusable(sender: &SendRequest<WasiBody>, since: Instant) -> bool {
    since.elapsed() < IDLE_TIMEOUT && !sender.is_closed()
}

/// The host's idle keep-alive connections, kept per tenant and bounded in total: an idle
/// connection holds a socket and its buffers, and a host with thousands of tenants must not keep
/// one open for each of them.
pub struct ConnectionPool {
    idle: Mutex<IdleConnections>,
    max_idle: usize,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("idle", &self.idle_connections())
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

impl ConnectionPool {
    /// A pool keeping at most `max_idle` idle connections across all tenants; beyond that the
    /// one idle longest is closed. Zero disables reuse.
    pub fn new(max_idle: usize) -> Self {
        ConnectionPool { idle: Mutex::new(HashMap::new()), max_idle }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleConnections> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used live connection of `tenant` to one of `addrs`, if any.
    fn take(
        &self,
        tenant: &Arc<str>,
        origin: &Origin,
        addrs: &[SocketAddr],
    ) -> Option<(SocketAddr, SendRequest<WasiBody>)> {
        let mut idle = self.lock();
        for addr in addrs {
            let key = Key { tenant: Arc::clone(tenant), origin: origin.clone(), addr: *addr };
            let Some(list) = idle.get_mut(&key) else { continue };
            let mut found = None;
            while let Some((sender, since)) = list.pop() {
                if reusable(&sender, since) {
                    found = Some((*addr, sender));
                    break;
                }
            }
            if list.is_empty() {
                idle.remove(&key);
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn put(&self, key: Key, sender: SendRequest<WasiBody>) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain(|(s, since)| reusable(s, *since));
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push((sender, Instant::now()));
        // Every put keeps the bound, so at most the one just added is over it.
        if idle.values().map(Vec::len).sum::<usize>() > self.max_idle {
            let oldest = idle
                .iter()
                .filter_map(|(k, list)| list.first().map(|(_, since)| (*since, k.clone())))
                .min_by_key(|(since, _)| *since)
                .map(|(_, k)| k);
            if let Some(oldest) = oldest
                && let Some(list) = idle.get_mut(&oldest)
            {
                list.remove(0);
                if list.is_empty() {
                    idle.remove(&oldest);
                }
            }
        }
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
    key: Key,
    sender: SendRequest<WasiBody>,
}

impl Lease {
    /// Returns the connection to the pool.
    pub fn release(self) {
        self.pool.put(self.key, self.sender);
    }
}

/// Sends `request` for `tenant` over one of its pooled connections to one of `addrs` if one is
/// idle, else over a new one, and lends the connection to the response.
pub async fn send_pooled(
    pool: &Arc<ConnectionPool>,
    tenant: &Arc<str>,
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<(http::Response<Incoming>, Lease), HttpError> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let lease = |addr, sender| Lease {
        pool: Arc::clone(pool),
        key: Key { tenant: Arc::clone(tenant), origin: origin.clone(), addr },
        sender,
    };
    while let Some((addr, mut sender)) = pool.take(tenant, origin, addrs) {
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
    // Requests are written head then body; with Nagle's algorithm the body would wait for the
    // server's delayed acknowledgement of the head.
    stream.set_nodelay(true).map_err(HttpError::Connect)?;
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
