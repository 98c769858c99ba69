//! The HTTP seam between the connector's logic and whatever sends its requests.

/// HTTP methods the connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request to send. Credentials are never part of it: the host injects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Media type of the body (and of the answer accepted).
    pub content_type: &'static str,
    /// JSON body, if any.
    pub body: Option<String>,
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The `content-type` header, if present.
    pub content_type: Option<String>,
    /// The `retry-after` header, if present.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What happened.
    pub message: String,
    /// The host refused to send it (its egress policy): trying again cannot help.
    pub denied: bool,
}

impl TransportError {
    /// A failure that may be transient.
    pub fn failed(message: impl Into<String>) -> Self {
        TransportError { message: message.into(), denied: false }
    }
}

/// Sends HTTP requests on the connector's behalf.
pub trait Transport {
    /// Sends one request and returns the whole response.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
}
