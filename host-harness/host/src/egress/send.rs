//! Sends a request to an address the host resolved and vetted itself, so the guest cannot
//! steer the connection elsewhere between the check and the connect (DNS rebinding). TLS still
//! verifies the certificate against the origin's host name.
//!
//! Connections are kept alive and reused across the calls of one tenant: every call runs in a
//! fresh instance, so without reuse every page of a listing would pay a TCP (and TLS) handshake.
//! Idle connections are keyed by tenant and origin, so a connection never carries another
//! tenant's requests. An open connection stays with the address vetted when it was opened, so
//! reusing one needs no new lookup: the name is resolved only when a connection is opened.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
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
/// Idle connections kept per tenant and origin.
const MAX_IDLE_PER_KEY: usize = 16;

/// The most a connection's read buffer grows to. hyper's default lets it grow to about 400 KiB
/// for large reads, and a pooled connection keeps what it grew to while idle: tens of KiB for
/// each of the host's idle connections. The guest gets a body joined whatever the reads
/// (`coalesce.rs`), so smaller reads cost only system calls. A response's head must fit in it.
const READ_BUFFER_BYTES: usize = 16 << 10;

/// Whose connection to where: a connection is only ever reused by the tenant registration that
/// opened it (`Tenant::connection_owner`), for the origin it was opened to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    owner: Arc<str>,
    origin: Origin,
}

/// Idle connections by key, oldest first, each with the time it went idle.
type IdleConnections = HashMap<Key, Vec<(SendRequest<WasiBody>, Instant)>>;

/// Whether a connection idle since `since` may still carry a request at `now`.
fn reusable(sender: &SendRequest<WasiBody>, since: Instant, now: Instant) -> bool {
    now.saturating_duration_since(since) < IDLE_TIMEOUT && !sender.is_closed()
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

    /// The most recently used live connection of `key`, if any.
    fn take(&self, key: &Key) -> Option<SendRequest<WasiBody>> {
        let mut idle = self.lock();
        let list = idle.get_mut(key)?;
        let (mut found, now) = (None, Instant::now());
        while let Some((sender, since)) = list.pop() {
            if reusable(&sender, since, now) {
                found = Some(sender);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Closes the idle connections of `owner` (a tenant registration that was replaced).
    pub fn forget(&self, owner: &str) {
        self.lock().retain(|key, _| &*key.owner != owner);
    }

    fn put(&self, key: Key, sender: SendRequest<WasiBody>) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain(|(s, since)| reusable(s, *since, now));
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push((sender, now));
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

/// Why a request could not be sent.
#[derive(Debug)]
pub enum SendError<E> {
    /// No idle connection, and resolving the origin for a new one failed or was refused.
    Resolve(E),
    /// Connecting or the exchange failed.
    Http(HttpError),
}

impl<E> From<HttpError> for SendError<E> {
    fn from(error: HttpError) -> Self {
        SendError::Http(error)
    }
}

/// Sends `request` for `owner` over one of its idle connections to `origin` if one is live,
/// else over a new one to the first answering address of `resolve` (called only then), and
/// lends the connection to the response. `handed_over` is called when the request is first
/// handed to a connection: from then on the service may have seen it.
pub async fn send_pooled<R, F, E>(
    pool: &Arc<ConnectionPool>,
    owner: &Arc<str>,
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    resolve: R,
    timeouts: Timeouts,
    handed_over: impl Fn(),
) -> Result<(http::Response<Incoming>, Lease), SendError<E>>
where
    R: FnOnce() -> F,
    F: Future<Output = Result<Vec<SocketAddr>, E>>,
{
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let key = Key { owner: Arc::clone(owner), origin: origin.clone() };
    let lease = |key, sender| Lease { pool: Arc::clone(pool), key, sender };
    while let Some(mut sender) = pool.take(&key) {
        // The previous exchange has ended; this only waits for the connection task to see it.
        match tokio::time::timeout(timeouts.connect, sender.ready()).await {
            Ok(Ok(())) => {}
            _ => continue,
        }
        handed_over();
        match tokio::time::timeout(timeouts.first_byte, sender.try_send_request(request)).await {
            Err(_) => return Err(HttpError::ConnectionReadTimeout.into()),
            Ok(Ok(response)) => return Ok((response, lease(key, sender))),
            // Not written before the connection failed: safe to send on another.
            Ok(Err(mut failed)) => match failed.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(HttpError::from(failed.into_error()).into()),
            },
        }
    }
    let addrs = resolve().await.map_err(SendError::Resolve)?;
    let mut sender = connect(origin, &addrs, timeouts).await?;
    handed_over();
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    Ok((response, lease(key, sender)))
}

/// Opens a new HTTP/1.1 connection (with TLS for `https`) to the first of `addrs` that answers.
async fn connect(
    origin: &Origin,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<SendRequest<WasiBody>, HttpError> {
    let mut last_error = HttpError::ConnectionRefused;
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = HttpError::Connect(e),
            Err(_) => last_error = HttpError::ConnectionTimeout,
        }
    }
    let stream = stream.ok_or(last_error)?;
    // Requests are written head then body; with Nagle's algorithm the body would wait for the
    // server's delayed acknowledgement of the head.
    stream.set_nodelay(true).map_err(HttpError::Connect)?;
    if origin.scheme == "https" {
        let stream = tokio::time::timeout(timeouts.connect, tls(stream, &origin.host))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        handshake(TokioIo::new(stream), timeouts).await
    } else {
        handshake(TokioIo::new(stream), timeouts).await
    }
}

/// The TLS client configuration every connection shares: building it parses the whole root
/// store, which is worth doing once per process rather than once per connection.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        Arc::new(
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth(),
        )
    }))
}

async fn tls(
    stream: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(tls_config())
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
        hyper::client::conn::http1::Builder::new().max_buf_size(READ_BUFFER_BYTES).handshake(io),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const TIMEOUTS: Timeouts =
        Timeouts { connect: Duration::from_secs(5), first_byte: Duration::from_secs(5) };

    /// A loopback HTTP/1.1 server answering every request on a connection with `ok`, keeping the
    /// connection open for `per_connection` requests; counts the connections it accepts.
    async fn server(per_connection: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    for _ in 0..per_connection {
                        if !read_head(&mut stream).await {
                            return;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// Reads a request's head (these tests send no body); false if the connection closed first.
    async fn read_head(stream: &mut tokio::net::TcpStream) -> bool {
        let (mut buf, mut head) = ([0; 4096], Vec::new());
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let Ok(n @ 1..) = stream.read(&mut buf).await else { return false };
            head.extend_from_slice(&buf[..n]);
        }
        true
    }

    /// A loopback server answering each connection's first request with `reply`.
    async fn answering(reply: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let reply = Arc::clone(&reply);
                tokio::spawn(async move {
                    if read_head(&mut stream).await {
                        let _ = stream.write_all(&reply).await;
                    }
                });
            }
        });
        addr
    }

    fn get(addr: SocketAddr) -> http::Request<WasiBody> {
        let body = Empty::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::get(format!("http://{addr}/page")).body(body).unwrap()
    }

    /// Sends one request, reads its body to the end and returns the connection to the pool.
    async fn exchange(
        pool: &Arc<ConnectionPool>,
        owner: &Arc<str>,
        addr: SocketAddr,
        lookups: &AtomicUsize,
    ) -> Result<(), SendError<String>> {
        let origin = Origin::of_uri(&format!("http://{addr}").parse().unwrap()).unwrap();
        let resolve = || async {
            lookups.fetch_add(1, Ordering::SeqCst);
            Ok(vec![addr])
        };
        let (response, lease) =
            send_pooled(pool, owner, get(addr), &origin, resolve, TIMEOUTS, || {}).await?;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        lease.release();
        Ok(())
    }

    #[tokio::test]
    async fn a_name_is_resolved_only_to_open_a_connection_not_to_reuse_one() {
        let (addr, accepted) = server(usize::MAX).await;
        let pool = Arc::new(ConnectionPool::new(8));
        let owner: Arc<str> = Arc::from("tenant#0");
        let lookups = AtomicUsize::new(0);
        for _ in 0..3 {
            exchange(&pool, &owner, addr, &lookups).await.unwrap();
        }
        assert_eq!((lookups.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst)), (1, 1));
        // Another registration of the same tenant opens (and so resolves) its own.
        let other: Arc<str> = Arc::from("tenant#1");
        exchange(&pool, &other, addr, &lookups).await.unwrap();
        assert_eq!((lookups.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst)), (2, 2));
        // Once forgotten, the first registration's connection is not reused.
        pool.forget(&owner);
        exchange(&pool, &owner, addr, &lookups).await.unwrap();
        assert_eq!((lookups.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst)), (3, 3));
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_by_a_newly_resolved_one() {
        let (addr, accepted) = server(1).await;
        let pool = Arc::new(ConnectionPool::new(8));
        let owner: Arc<str> = Arc::from("tenant#0");
        let lookups = AtomicUsize::new(0);
        exchange(&pool, &owner, addr, &lookups).await.unwrap();
        // Let the connection task see the server's close before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
        exchange(&pool, &owner, addr, &lookups).await.unwrap();
        assert_eq!((lookups.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst)), (2, 2));
    }

    #[tokio::test]
    async fn the_bounded_read_buffer_reads_any_body_and_a_head_that_fits_in_it() {
        let reply = |header: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nx-large: {header}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            [head.as_bytes(), body].concat()
        };
        let pool = Arc::new(ConnectionPool::new(8));
        let owner: Arc<str> = Arc::from("tenant#0");
        let send = |addr: SocketAddr| {
            let (pool, owner) = (Arc::clone(&pool), Arc::clone(&owner));
            async move {
                let origin = Origin::of_uri(&format!("http://{addr}").parse().unwrap()).unwrap();
                let resolve = || async { Ok::<_, String>(vec![addr]) };
                send_pooled(&pool, &owner, get(addr), &origin, resolve, TIMEOUTS, || {}).await
            }
        };
        // A head of 12 KiB and a body of ten buffers' worth.
        let (header, body) = ("h".repeat(12 << 10), vec![b'b'; 10 * READ_BUFFER_BYTES]);
        let (response, _lease) = send(answering(reply(&header, &body)).await).await.unwrap();
        assert_eq!(response.headers()["x-large"], header.as_str());
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), body);
        // A head larger than the buffer is a failed exchange, not a hang or a panic.
        let too_large = "h".repeat(READ_BUFFER_BYTES);
        match send(answering(reply(&too_large, b"ok")).await).await {
            Err(SendError::Http(_)) => {}
            Err(SendError::Resolve(e)) => panic!("expected a failed exchange, got {e}"),
            Ok(_) => panic!("expected a failed exchange, got a response"),
        }
    }

    #[tokio::test]
    async fn a_failed_lookup_is_its_own_error_and_opens_nothing() {
        let (addr, accepted) = server(1).await;
        let pool = Arc::new(ConnectionPool::new(8));
        let origin = Origin::of_uri(&format!("http://{addr}").parse().unwrap()).unwrap();
        let resolve = || async { Err("no such host".to_string()) };
        let owner: Arc<str> = Arc::from("tenant#0");
        match send_pooled(&pool, &owner, get(addr), &origin, resolve, TIMEOUTS, || {}).await {
            Err(SendError::Resolve(e)) => assert_eq!(e, "no such host"),
            Err(SendError::Http(e)) => panic!("expected the lookup's error, got {e}"),
            Ok(_) => panic!("expected the lookup's error, got a response"),
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }
}
