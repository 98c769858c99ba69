//! [`Transport`] over `wasi:http/outgoing-handler`, called directly (only ever called in a
//! component: off wasm32 the imports are stubs).
//!
//! Each request costs host calls, so this makes only the ones a request needs: the two headers
//! the connector reads are looked up by name rather than every header being copied in, and the
//! body arrives in as few reads as the host allows.

use std::time::Duration;

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse,
    Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::wasi::io::poll::{Pollable, poll};
use crate::bindings::wasi::io::streams::StreamError;
use crate::transport::{
    HttpRequest, HttpResponse, Method, Transport, TransportError, UrlScheme, split_url,
};

/// How long the host may take to open a connection for one request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most one read of a response body asks for; the host hands over what it has.
const READ_LIMIT: u64 = 1 << 20;
/// The most `blocking-write-and-flush` accepts in one call.
const WRITE_LIMIT: usize = 4096;

/// Sends the connector's requests through the host, which adds the credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasiHttpTransport;

impl Transport for WasiHttpTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        logged(request, start(request).and_then(|future| finish(&future)))
    }

    /// Hands every request to the host before waiting for any, then reads the responses in the
    /// order they come. Reading one to its end frees its connection and the tenant's request
    /// slot, so requests the host holds back for lack of a slot still go out.
    fn send_all(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        let mut outcomes: Vec<Option<Result<HttpResponse, TransportError>>> =
            requests.iter().map(|_| None).collect();
        // Each future's pollable is taken once and kept until its response is read: a
        // pollable per future per wake-up would be two host calls each time.
        let mut waiting = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            match start(request) {
                Ok(future) => waiting.push(Waiting { pollable: future.subscribe(), future, index }),
                Err(e) => outcomes[index] = Some(Err(e)),
            }
        }
        while !waiting.is_empty() {
            let mut ready = poll(&waiting.iter().map(|w| &w.pollable).collect::<Vec<_>>());
            ready.sort_unstable();
            ready.dedup();
            // Highest first, so each removal leaves the lower positions in place.
            for at in ready.into_iter().rev().map(|at| at as usize) {
                if at < waiting.len() {
                    let Waiting { pollable, future, index } = waiting.swap_remove(at);
                    // The pollable is the future's child: it goes first.
                    drop(pollable);
                    outcomes[index] = Some(finish(&future));
                }
            }
        }
        requests
            .iter()
            .zip(outcomes)
            .map(|(request, outcome)| {
                let outcome = outcome.unwrap_or_else(|| {
                    Err(TransportError::failed("the host reported no outcome for the request"))
                });
                logged(request, outcome)
            })
            .collect()
    }
}

/// A request handed to the host whose response is still to be read.
struct Waiting {
    /// Ready when the response's head has come (or the exchange failed); declared before the
    /// future, so it is dropped first, as a child must be.
    pollable: Pollable,
    future: FutureIncomingResponse,
    /// The request's position in the caller's list.
    index: usize,
}

/// Passes `outcome` on; a failure is also written to stderr, which the host keeps with the
/// call's logs.
fn logged(
    request: &HttpRequest,
    outcome: Result<HttpResponse, TransportError>,
) -> Result<HttpResponse, TransportError> {
    outcome.inspect_err(|e| eprintln!("{} {}: {e}", request.method.as_str(), request.url))
}

/// Waits for the response to a started request and reads all of it.
fn finish(future: &FutureIncomingResponse) -> Result<HttpResponse, TransportError> {
    let response = wait(future)?;
    let status = response.status();
    // The headers are the response's child, so they are read and dropped before it is. Each
    // lookup is a host call, so `retry-after` is looked up only where it can matter.
    let (content_type, retry_after) = {
        let headers = response.headers();
        let first = |name: &str| {
            let values = headers.get(name);
            values.into_iter().next().and_then(|v| String::from_utf8(v).ok())
        };
        let retry_after = if (200..300).contains(&status) { None } else { first("retry-after") };
        (first("content-type"), retry_after)
    };
    let body = response.consume().map_err(|()| {
        TransportError::failed("the response's body could not be read (already taken)")
    })?;
    drop(response);
    let body = read_body(body)?;
    Ok(HttpResponse { status, content_type, retry_after, body })
}

/// Hands `request` to the host and writes its body; the response is still to come.
fn start(request: &HttpRequest) -> Result<FutureIncomingResponse, TransportError> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let scheme = match scheme {
        UrlScheme::Http => Scheme::Http,
        UrlScheme::Https => Scheme::Https,
    };
    let mut fields = vec![("accept".to_string(), request.content_type.as_bytes().to_vec())];
    if request.body.is_some() {
        fields.push(("content-type".to_string(), request.content_type.as_bytes().to_vec()));
    }
    let headers = Fields::from_list(&fields).map_err(|e| {
        TransportError::failed(format!("the request's headers were refused: {e:?}"))
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let refused =
        |part: &str| TransportError::failed(format!("the host refused the request's {part}"));
    // A new request's method is GET (`wasi:http`), so a GET saves the host call that sets it.
    let method = match request.method {
        Method::Get => None,
        Method::Post => Some(WasiMethod::Post),
        Method::Put => Some(WasiMethod::Put),
        Method::Patch => Some(WasiMethod::Patch),
        Method::Delete => Some(WasiMethod::Delete),
    };
    if let Some(method) = method {
        outgoing.set_method(&method).map_err(|()| refused("method"))?;
    }
    outgoing.set_scheme(Some(&scheme)).map_err(|()| refused("scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|()| refused("authority"))?;
    outgoing.set_path_with_query(Some(path)).map_err(|()| refused("path"))?;
    // A request without a body takes no body resource: the host sends it with an empty one,
    // and the two host calls (taking the body and finishing it) are saved.
    let body = match request.body.as_deref() {
        Some(bytes) => Some((outgoing.body().map_err(|()| refused("body"))?, bytes)),
        None => None,
    };
    let options = RequestOptions::new();
    options
        .set_connect_timeout(Some(u64::try_from(CONNECT_TIMEOUT.as_nanos()).unwrap_or(u64::MAX)))
        .map_err(|()| refused("connect timeout"))?;
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(from_error_code)?;
    if let Some((body, bytes)) = body {
        write_body(&body, bytes.as_bytes())?;
        OutgoingBody::finish(body, None).map_err(from_error_code)?;
    }
    Ok(future)
}

/// Writes the request body, `WRITE_LIMIT` bytes at a time.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| TransportError::failed("the request's body could not be written"))?;
    for chunk in bytes.chunks(WRITE_LIMIT) {
        stream.blocking_write_and_flush(chunk).map_err(|e| {
            TransportError::failed(format!(
                "writing the request's body failed: {}",
                stream_error(e)
            ))
        })?;
    }
    Ok(())
}

/// Blocks until the response's head has come, or the exchange failed.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, TransportError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(from_error_code(code)),
            Some(Err(())) => {
                return Err(TransportError::failed("the response was already taken"));
            }
            None => future.subscribe().block(),
        }
    }
}

/// Reads the whole body; the first chunk becomes the buffer, so a body read at once is not copied.
fn read_body(body: IncomingBody) -> Result<Vec<u8>, TransportError> {
    let stream = body
        .stream()
        .map_err(|()| TransportError::failed("the response's body stream was already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_LIMIT) {
            Ok(chunk) if bytes.is_empty() => bytes = chunk,
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => {
                return Err(TransportError::failed(format!(
                    "reading the response body failed: {}",
                    stream_error(e)
                )));
            }
        }
    }
    // The stream is the body's child: it goes first. Trailers are not used.
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Why a stream failed, as the host tells it.
fn stream_error(error: StreamError) -> String {
    match error {
        StreamError::Closed => "the stream was closed".to_string(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// A `wasi:http` error code as a transport error; `http-request-denied` is the host's egress
/// policy saying no, which trying again cannot change.
fn from_error_code(code: ErrorCode) -> TransportError {
    let denied = matches!(code, ErrorCode::HttpRequestDenied);
    TransportError { message: format!("{code:?}"), denied }
}
