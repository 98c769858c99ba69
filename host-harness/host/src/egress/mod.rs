//! The egress hook: the only way a guest reaches the network.
//!
//! Every request is checked against the tenant's allowed origins before anything else, refused
//! if the guest set its own `Authorization`; the host then resolves the name itself and refuses
//! private, loopback and link-local addresses unless the tenant allows them, connects to the
//! address it vetted, injects the tenant's credentials for that origin, clamps the timeouts,
//! bounds the tenant's concurrent requests, caps the response body (and hands it to the guest in
//! as few pieces as it can), and records the request (never the credential). Redirects are not
//! followed: a guest that follows one sends a new request, which passes the same checks.

mod address;
mod coalesce;
mod send;

pub use address::non_public;
use coalesce::Coalesced;
pub use send::ConnectionPool;
use send::SendError;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::tenant::Tenant;

/// `scheme://host:port`, lowercase, with the port made explicit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, lowercase, IPv6 without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl Origin {
    /// Parses an origin as written in a tenant file; a path, query or credentials are refused.
    pub fn parse(raw: &str) -> Result<Origin, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{raw:?} must use http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{raw:?} must not contain credentials"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{raw:?} must be an origin only (scheme://host[:port]), without a path"
            ));
        }
        let host = url.host_str().ok_or_else(|| format!("{raw:?} has no host"))?;
        let port = url.port_or_known_default().ok_or_else(|| format!("{raw:?} has no port"))?;
        Ok(Origin {
            scheme: url.scheme().to_string(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port,
        })
    }

    /// The origin a request is addressed to.
    pub fn of_uri(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some(Origin { scheme, host, port })
    }
}

/// Why the host refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Denial {
    /// The origin is not in the tenant's allowed origins.
    OriginNotAllowed {
        /// The origin asked for.
        origin: String,
    },
    /// The guest set a credential header itself.
    GuestCredential {
        /// The header.
        header: String,
    },
    /// The URL could not be understood.
    BadUrl {
        /// The URL.
        url: String,
    },
    /// The path has `.` or `..` segments, which could steer a request out of the path a
    /// credential is limited to.
    DotSegment {
        /// The path.
        path: String,
    },
    /// The host name resolved to an address the tenant may not reach.
    PrivateAddress {
        /// The host name.
        host: String,
        /// The address it resolved to.
        address: String,
        /// What kind of address it is.
        kind: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::OriginNotAllowed { origin } => {
                write!(f, "origin {origin} is not in the tenant's allowed origins")
            }
            Denial::GuestCredential { header } => write!(
                f,
                "the connector set its own `{header}` header; credentials are injected by the host"
            ),
            Denial::BadUrl { url } => write!(f, "request URL {url:?} has no scheme, host or port"),
            Denial::DotSegment { path } => write!(
                f,
                "request path {path:?} has `.` or `..` segments; the host refuses them so path-limited credentials cannot be steered"
            ),
            Denial::PrivateAddress { host, address, kind } if host == address => write!(
                f,
                "{address} is a {kind} address, which the tenant does not allow (allow-private-addresses)"
            ),
            Denial::PrivateAddress { host, address, kind } => write!(
                f,
                "{host} resolves to {address}, a {kind} address, which the tenant does not allow (allow-private-addresses)"
            ),
        }
    }
}

/// How far a request got. The host records a request before it leaves, so a call cut off while
/// a request is in flight still has it on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Refused by the tenant's policy: it never left the host.
    Refused,
    /// Not handed to a connection (waiting for a request slot, the name did not resolve, no
    /// connection could be opened): the service never saw it.
    NotSent,
    /// Handed to a connection, but no answer came (the exchange failed, or the call was cut off
    /// first): the service may have acted on it.
    Unanswered,
    /// The service answered (see `status`).
    Answered,
}

/// The most bytes of a write's request body the host keeps on its record.
pub const MAX_RECORDED_BODY_BYTES: usize = 16 << 10;

/// One outgoing request of a call, as recorded by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRecord {
    /// Tenant id.
    pub tenant: String,
    /// The call's id.
    pub call_id: u64,
    /// HTTP method.
    pub method: String,
    /// Origin addressed.
    pub origin: String,
    /// URL path (no query: queries can carry personal data).
    pub path: String,
    /// Response status, if a response came.
    pub status: Option<u16>,
    /// Time to the response head, or to the failure.
    pub duration_ms: u64,
    /// Response body bytes the guest read.
    pub response_bytes: u64,
    /// Why the host refused it, if it did.
    pub denied: Option<Denial>,
    /// Transport failure, if any.
    pub error: Option<String>,
    /// The response body went past the tenant's cap and was cut off.
    pub body_limit_exceeded: bool,
    /// How far the request got.
    pub delivery: Delivery,
    /// The body of a write (any method but `GET`, `HEAD` and `OPTIONS`), as sent, up to
    /// [`MAX_RECORDED_BODY_BYTES`]: what a write asked for is part of the record of what a call
    /// changed. Reads' bodies are not kept.
    pub request_body: Option<String>,
    /// The write's body was longer than what `request_body` keeps.
    pub request_body_truncated: bool,
}

impl EgressRecord {
    /// Whether the request may change something: any method but `GET`, `HEAD` and `OPTIONS`.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    /// Whether the request may have reached the service: handed to a connection, answered or not.
    pub fn may_have_reached_service(&self) -> bool {
        matches!(self.delivery, Delivery::Unanswered | Delivery::Answered)
    }

    /// Whether it is a write that may have changed something: a write that may have reached
    /// the service. These are the records every report of changes must show.
    pub fn may_have_written(&self) -> bool {
        self.is_write() && self.may_have_reached_service()
    }
}

/// The shared list of a call's egress records.
pub type EgressLog = Arc<Mutex<Vec<EgressRecord>>>;

/// The `wasi:http` hooks of one call.
pub struct EgressHooks {
    tenant: Arc<Tenant>,
    call_id: u64,
    log: EgressLog,
    connections: Arc<ConnectionPool>,
    /// The tenant registration, as the pool keys its connections.
    owner: Arc<str>,
}

impl EgressHooks {
    /// Hooks for a call of `tenant`, recording into `log` and reusing the tenant's idle
    /// connections from `connections`.
    pub fn new(
        tenant: Arc<Tenant>,
        call_id: u64,
        log: EgressLog,
        connections: Arc<ConnectionPool>,
    ) -> Self {
        let owner = Arc::clone(&tenant.connection_owner);
        EgressHooks { tenant, call_id, log, connections, owner }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

fn push(log: &EgressLog, record: EgressRecord) -> usize {
    let mut records = log.lock().unwrap_or_else(|p| p.into_inner());
    records.push(record);
    records.len() - 1
}

/// Updates the record at `index` of `log`.
fn update(log: &EgressLog, index: usize, change: impl FnOnce(&mut EgressRecord)) {
    if let Some(record) = log.lock().unwrap_or_else(|p| p.into_inner()).get_mut(index) {
        change(record);
    }
}

fn clamp(asked: Option<Duration>, limit: Duration) -> Duration {
    asked.map_or(limit, |d| d.min(limit))
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let tenant = Arc::clone(&self.tenant);
        let log = Arc::clone(&self.log);
        let connections = Arc::clone(&self.connections);
        let owner = Arc::clone(&self.owner);
        let started = Instant::now();
        let mut record = EgressRecord {
            tenant: tenant.id.clone(),
            call_id: self.call_id,
            method: request.method().to_string(),
            origin: String::new(),
            path: request.uri().path().to_string(),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
            denied: None,
            error: None,
            body_limit_exceeded: false,
            delivery: Delivery::NotSent,
            request_body: None,
            request_body_truncated: false,
        };
        let checked = check(&tenant, &request);
        Box::new(async move {
            let refuse = |index: Option<usize>, mut record: EgressRecord, denial: Denial| {
                tracing::warn!(tenant = %record.tenant, call_id = record.call_id, method = %record.method, path = %record.path, %denial, "egress denied");
                let change = |r: &mut EgressRecord| {
                    r.denied = Some(denial);
                    r.delivery = Delivery::Refused;
                };
                match index {
                    Some(index) => update(&log, index, change),
                    None => {
                        change(&mut record);
                        push(&log, record);
                    }
                }
                Err(HttpError::HttpRequestDenied)
            };
            let origin = match checked {
                Ok(origin) => origin,
                Err(denial) => return refuse(None, record, denial),
            };
            record.origin = origin.to_string();
            // On the record before it can leave: a call cut off from here on still shows it.
            let index = push(&log, record.clone());
            if record.is_write() {
                let (parts, body) = request.into_parts();
                let body = RecordedBody { inner: body, log: Arc::clone(&log), index, kept: 0 };
                request = http::Request::from_parts(parts, body.boxed_unsync());
            }
            let permit = match Arc::clone(&tenant.request_slots).acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => return Err(HttpError::ConnectionLimitReached),
            };
            if let Some(creds) = tenant.credentials_for(&origin, request.uri().path()) {
                for (name, value) in &creds.headers {
                    match http::HeaderValue::from_str(value.expose()) {
                        Ok(mut value) => {
                            value.set_sensitive(true);
                            request.headers_mut().insert(name.clone(), value);
                        }
                        Err(_) => return Err(HttpError::HttpRequestDenied),
                    }
                }
            }
            let limits = tenant.limits;
            let asked =
                |pick: fn(&RequestOptions) -> Option<Duration>| options.as_ref().and_then(pick);
            let timeouts = send::Timeouts {
                connect: clamp(asked(|o| o.connect_timeout), limits.connect_timeout),
                first_byte: clamp(asked(|o| o.first_byte_timeout), limits.first_byte_timeout),
            };
            let between_bytes =
                clamp(asked(|o| o.between_bytes_timeout), limits.between_bytes_timeout);
            let allow_private = tenant.allow_private_addresses;
            let handed_over = || update(&log, index, |r| r.delivery = Delivery::Unanswered);
            let sent = send::send_pooled(
                &connections,
                &owner,
                request,
                &origin,
                || resolve(&origin, allow_private),
                timeouts,
                handed_over,
            )
            .await;
            let duration_ms = started.elapsed().as_millis() as u64;
            update(&log, index, |r| r.duration_ms = duration_ms);
            match sent {
                Ok((response, lease)) => {
                    let status = response.status().as_u16();
                    update(&log, index, |r| {
                        r.status = Some(status);
                        r.delivery = Delivery::Answered;
                    });
                    tracing::info!(tenant = %record.tenant, call_id = record.call_id, method = %record.method, path = %record.path, status, duration_ms, "egress");
                    let (parts, incoming) = response.into_parts();
                    let body = CappedBody {
                        inner: incoming.map_err(HttpError::from).boxed_unsync(),
                        limit: limits.max_response_bytes,
                        seen: 0,
                        between_bytes,
                        idle: Box::pin(tokio::time::sleep(between_bytes)),
                        log,
                        index,
                        lease: Some(lease),
                        _permit: permit,
                    };
                    Ok((
                        http::Response::from_parts(parts, Coalesced::new(body).boxed_unsync()),
                        Box::new(async { Ok(()) })
                            as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ))
                }
                Err(SendError::Resolve(Resolution::Denied(denial))) => {
                    refuse(Some(index), record, denial)
                }
                Err(SendError::Resolve(Resolution::Failed(error))) => {
                    let message = format!("resolving {}: {error}", origin.host);
                    update(&log, index, |r| r.error = Some(message));
                    Err(HttpError::DnsError { rcode: Some(error), info_code: None })
                }
                Err(SendError::Http(error)) => {
                    tracing::warn!(tenant = %record.tenant, call_id = record.call_id, method = %record.method, path = %record.path, %error, "egress failed");
                    update(&log, index, |r| r.error = Some(format!("{error}")));
                    Err(error)
                }
            }
        })
    }
}

/// Why a name could not be used.
enum Resolution {
    /// It resolved to an address the tenant may not reach.
    Denied(Denial),
    /// It did not resolve.
    Failed(String),
}

/// Resolves the origin's host and vets every address it resolves to.
async fn resolve(origin: &Origin, allow_private: bool) -> Result<Vec<SocketAddr>, Resolution> {
    let addrs: Vec<SocketAddr> = match origin.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, origin.port)],
        Err(_) => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| Resolution::Failed(e.to_string()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Resolution::Failed("no addresses".to_string()));
    }
    if !allow_private {
        for addr in &addrs {
            if let Some(kind) = non_public(addr.ip()) {
                return Err(Resolution::Denied(Denial::PrivateAddress {
                    host: origin.host.clone(),
                    address: addr.ip().to_string(),
                    kind: kind.to_string(),
                }));
            }
        }
    }
    Ok(addrs)
}

/// Checks a request against the tenant's policy and returns its origin.
fn check(tenant: &Tenant, request: &http::Request<WasiBody>) -> Result<Origin, Denial> {
    let origin = Origin::of_uri(request.uri())
        .ok_or_else(|| Denial::BadUrl { url: request.uri().to_string() })?;
    if !tenant.allowed_origins.contains(&origin) {
        return Err(Denial::OriginNotAllowed { origin: origin.to_string() });
    }
    if has_dot_segment(request.uri().path()) {
        return Err(Denial::DotSegment { path: request.uri().path().to_string() });
    }
    for header in
        [http::header::AUTHORIZATION, http::header::PROXY_AUTHORIZATION, http::header::COOKIE]
    {
        if request.headers().contains_key(&header) {
            return Err(Denial::GuestCredential { header: header.to_string() });
        }
    }
    Ok(origin)
}

/// Whether a path has a `.` or `..` segment, spelled plainly or percent-encoded. Every request
/// is checked, so a segment is read in place rather than decoded into a copy.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let (mut rest, mut dots) = (segment.as_bytes(), 0);
        while !rest.is_empty() {
            rest = match rest {
                [b'.', tail @ ..] => tail,
                [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
                _ => return false,
            };
            dots += 1;
        }
        matches!(dots, 1 | 2)
    })
}

/// A response body that fails once more than `limit` bytes have come or when no byte comes for
/// `between_bytes`, and counts what came. It holds the tenant's request slot until dropped.
struct CappedBody {
    inner: WasiBody,
    limit: u64,
    seen: u64,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    log: EgressLog,
    index: usize,
    /// The connection, returned to the tenant's pool when the body has been read to the end.
    lease: Option<send::Lease>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl CappedBody {
    fn note(&self, change: impl FnOnce(&mut EgressRecord)) {
        update(&self.log, self.index, change);
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Pending if self.idle.as_mut().poll(cx).is_ready() => {
                let gap = self.between_bytes;
                self.note(|r| r.error = Some(format!("no response bytes for {gap:?}")));
                return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
            }
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.between_bytes;
                self.idle.as_mut().reset(deadline);
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    let (seen, limit) = (self.seen, self.limit);
                    self.note(|r| {
                        r.response_bytes = seen;
                        if seen > limit {
                            r.body_limit_exceeded = true;
                            r.error =
                                Some(format!("response body exceeded the limit of {limit} bytes"));
                        }
                    });
                    if seen > limit {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            limit,
                        )))));
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(lease) = self.lease.take() {
                    lease.release();
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A write's request body on its way out, copied onto the request's record as it is sent (up to
/// [`MAX_RECORDED_BODY_BYTES`]), so the record says what the write asked for even when no answer
/// comes. It streams: the host never holds more of a body than it keeps on the record.
struct RecordedBody {
    inner: WasiBody,
    log: EgressLog,
    index: usize,
    kept: usize,
}

impl Body for RecordedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let room = MAX_RECORDED_BODY_BYTES.saturating_sub(self.kept);
            let take = data.len().min(room);
            self.kept += take;
            let text = String::from_utf8_lossy(&data[..take]).into_owned();
            let truncated = take < data.len();
            update(&self.log, self.index, |r| {
                r.request_body.get_or_insert_with(String::new).push_str(&text);
                r.request_body_truncated |= truncated;
            });
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn a_dot_segment_is_found_however_spelled_and_only_as_a_whole_segment() {
        for path in ["/a/./b", "/a/../b", "/a/%2e/b", "/a/%2E%2e/b", "/a/.%2E", "..", "/%2e%2E/"] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "",
            "/",
            "//",
            "/a/b",
            "/a/.../b",
            "/a/.b",
            "/a/b./c",
            "/a/%2e%2e%2e/b",
            "/a/%2/b",
            "/a/%2ex",
            "/a/%2f/b",
            "/a/%25%2e",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}
