//! The HTTP seam between the connector's logic and whatever sends its requests.

/// HTTP methods a connector sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
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
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The scheme of an absolute URL the connector sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlScheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
}

/// Splits an absolute `http` or `https` URL into scheme, authority and path with query (`/` when
/// the URL has none), as `wasi:http` takes a request's target.
pub fn split_url(url: &str) -> Result<(UrlScheme, &str, &str), TransportError> {
    let not_a_url =
        || TransportError::failed(format!("{url:?} is not an absolute http or https URL"));
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (UrlScheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (UrlScheme::Http, rest)
    } else {
        return Err(not_a_url());
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) if rest.as_bytes()[at] == b'/' => rest.split_at(at),
        Some(_) => return Err(not_a_url()),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(not_a_url());
    }
    Ok((scheme, authority, path))
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
    /// The `retry-after` header, if present; a transport may leave it unread on a success
    /// (2xx), where nothing uses it (the component's transport does, to save a host call).
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status`, a `content-type` and a text body (no `retry-after`).
    pub fn text(status: u16, content_type: &str, body: &str) -> Self {
        HttpResponse {
            status,
            content_type: Some(content_type.to_string()),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }
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

    /// Sends independent requests, as many at once as the transport can, and returns their
    /// outcomes in the order of `requests`. One failing does not stop the others. Without a way
    /// to overlap them, they are sent one after another.
    fn send_all(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        requests.iter().map(|request| self.send(request)).collect()
    }

    /// The time now, by which a client times its rounds of requests. A test's transport playing
    /// a distant service moves it on by the service's latency instead of sleeping.
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
}

/// A [`Transport`] for native unit tests: answers from a script, in order, and records every
/// request. Once the script is used up every request fails as a refused connection would, so a
/// test of a service that is down scripts nothing.
#[derive(Debug, Default)]
pub struct FakeTransport {
    answers: std::cell::RefCell<std::collections::VecDeque<Result<HttpResponse, TransportError>>>,
    requests: std::cell::RefCell<Vec<HttpRequest>>,
}

impl FakeTransport {
    /// A transport with nothing scripted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts the outcome of the next request not yet answered.
    pub fn answer(&self, outcome: Result<HttpResponse, TransportError>) {
        self.answers.borrow_mut().push_back(outcome);
    }

    /// Scripts a JSON answer with `status`.
    pub fn answer_json(&self, status: u16, body: &str) {
        self.answer(Ok(HttpResponse::text(status, "application/json", body)));
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.borrow().clone()
    }
}

impl Transport for FakeTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.requests.borrow_mut().push(request.clone());
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(TransportError::failed("connection refused (nothing scripted)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_absolute_urls_and_refuses_anything_else() {
        assert_eq!(
            split_url("https://chatgpt.com/backend-api/accounts/ws/users?offset=0&limit=100"),
            Ok((
                UrlScheme::Https,
                "chatgpt.com",
                "/backend-api/accounts/ws/users?offset=0&limit=100"
            ))
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080"),
            Ok((UrlScheme::Http, "127.0.0.1:8080", "/"))
        );
        for bad in ["ftp://x/y", "chatgpt.com/a", "https:///path", "https://x?q=1", "https://u@x/"]
        {
            let error = split_url(bad).unwrap_err();
            assert!(error.message.contains("is not an absolute http or https URL"), "{bad}");
            assert!(!error.denied);
        }
    }
}
