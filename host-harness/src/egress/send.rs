//! Sends a request to an address the host resolved and vetted itself, so the guest cannot
//! steer the connection elsewhere between the check and the connect (DNS rebinding). TLS still
//! verifies the certificate against the origin's host name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
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

/// Connects to the first of `addrs` that answers and sends `request` over HTTP/1.1.
pub async fn send_pinned(
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<http::Response<Incoming>, HttpError> {
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

    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let response = if origin.scheme == "https" {
        let stream = tokio::time::timeout(timeouts.connect, tls(stream, &origin.host))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        exchange(TokioIo::new(stream), request, timeouts).await?
    } else {
        exchange(TokioIo::new(stream), request, timeouts).await?
    };
    Ok(response)
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

async fn exchange<S>(
    io: TokioIo<S>,
    request: http::Request<WasiBody>,
    timeouts: Timeouts,
) -> Result<http::Response<Incoming>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = tokio::time::timeout(
        timeouts.connect,
        hyper::client::conn::http1::Builder::new().handshake(io),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // The connection is driven by its own task; it ends when the response body is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("egress connection ended: {e}");
        }
    });
    tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)
}
