//! A blocking HTTP/1.1 client over kept-alive TCP connections: enough to talk to a loopback
//! service with the least overhead a native program could have.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection failed.
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The server's answer was not HTTP/1.1 as this client understands it.
    #[error("malformed response from {addr}: {message}")]
    Malformed {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The `content-type` header, if present.
    pub content_type: Option<String>,
    /// The `retry-after` header, if present.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// One keep-alive connection to `addr`, opened on first use and again if the server closed it.
/// A request is written by [`Connection::start`] and its response read by
/// [`Connection::finish`], so requests on several connections can be in flight at once.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    opened: u64,
    /// The request written and not yet answered, and whether it went on a kept connection.
    pending: Option<(Vec<u8>, bool)>,
}

/// What failed, and whether any of the response had arrived (then a retry could repeat a write).
struct Failure {
    error: HttpError,
    answered: bool,
}

impl Connection {
    /// A connection to `addr`; nothing is opened until the first request.
    pub fn new(addr: SocketAddr) -> Self {
        Connection { addr, stream: None, opened: 0, pending: None }
    }

    /// TCP connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Writes one request (`target` is the path and query); [`Connection::finish`] reads its
    /// response. A kept connection the server has closed is replaced once.
    pub fn start(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(), HttpError> {
        let addr = self.addr;
        let mut request = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\n");
        for (name, value) in headers {
            request.push_str(name);
            request.push_str(": ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        if let Some(body) = body {
            request.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        let reused = self.stream.is_some();
        let written = match self.write(&bytes) {
            Err(_) if reused => {
                self.stream = None;
                self.write(&bytes)
            }
            written => written,
        };
        written.map_err(|f| {
            self.stream = None;
            f.error
        })?;
        self.pending = Some((bytes, reused));
        Ok(())
    }

    /// Reads the response to the request [`Connection::start`] wrote. If a kept connection was
    /// closed before any of it came, the request is sent once more on a new one.
    pub fn finish(&mut self) -> Result<Response, HttpError> {
        let Some((bytes, reused)) = self.pending.take() else {
            return Err(HttpError::Malformed {
                addr: self.addr,
                message: "no request is waiting for a response".to_string(),
            });
        };
        match self.read() {
            Ok(response) => Ok(response),
            Err(failure) => {
                self.stream = None;
                if reused && !failure.answered {
                    self.write(&bytes).and_then(|()| self.read()).map_err(|f| {
                        self.stream = None;
                        f.error
                    })
                } else {
                    Err(failure.error)
                }
            }
        }
    }

    fn io(&self, answered: bool) -> impl FnOnce(std::io::Error) -> Failure + use<> {
        let addr = self.addr;
        move |source| Failure { error: HttpError::Io { addr, source }, answered }
    }

    /// Writes `bytes`, opening the connection first if there is none.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).map_err(self.io(false))?;
            stream.set_nodelay(true).map_err(self.io(false))?;
            self.opened += 1;
            self.stream = Some(BufReader::with_capacity(64 << 10, stream));
        }
        let failed = self.io(false);
        match self.stream.as_mut() {
            Some(stream) => stream.get_mut().write_all(bytes).map_err(failed),
            None => Err(Failure {
                error: HttpError::Malformed {
                    addr: self.addr,
                    message: "no connection".to_string(),
                },
                answered: false,
            }),
        }
    }

    /// Reads one response, dropping the connection when the server will not keep it.
    fn read(&mut self) -> Result<Response, Failure> {
        let addr = self.addr;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure {
                error: HttpError::Malformed { addr, message: "no connection".to_string() },
                answered: false,
            });
        };
        let (response, keep) = read_response(stream, addr)?;
        if !keep {
            self.stream = None;
        }
        Ok(response)
    }
}

/// Reads one response; also says whether the connection may be kept.
fn read_response<R: BufRead>(
    reader: &mut R,
    addr: SocketAddr,
) -> Result<(Response, bool), Failure> {
    let malformed = |message: &str, answered: bool| Failure {
        error: HttpError::Malformed { addr, message: message.to_string() },
        answered,
    };
    let io =
        |answered: bool| move |source| Failure { error: HttpError::Io { addr, source }, answered };
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(io(false))? == 0 {
        return Err(malformed("the connection closed before a response", false));
    }
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_string();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed(&format!("bad status line {line:?}"), true))?;
    let mut keep = version == "HTTP/1.1";
    let (mut length, mut chunked) = (None, false);
    let (mut content_type, mut retry_after) = (None, None);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io(true))? == 0 {
            return Err(malformed("the connection closed in the headers", true));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(malformed(&format!("bad header {header:?}"), true));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value.parse::<usize>().map_err(|_| malformed("bad content-length", true))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep &= !value.eq_ignore_ascii_case("close"),
            "content-type" => content_type = Some(value.to_string()),
            "retry-after" => retry_after = Some(value.to_string()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(io(true))?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| malformed("bad chunk size", true))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).map_err(io(true))? == 0 || line.trim().is_empty()
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(io(true))?;
            line.clear();
            reader.read_line(&mut line).map_err(io(true))?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(io(true))?;
    } else if status >= 200 && status != 204 && status != 304 {
        reader.read_to_end(&mut body).map_err(io(true))?;
        keep = false;
    }
    Ok((Response { status, content_type, retry_after, body }, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> (Response, bool) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        match read_response(&mut raw.as_bytes(), addr) {
            Ok(parsed) => parsed,
            Err(failure) => panic!("{}", failure.error),
        }
    }

    #[test]
    fn reads_a_sized_body_and_keeps_the_connection() {
        let (response, keep) = parse(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}extra",
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"{}");
        assert_eq!(response.content_type.as_deref(), Some("application/json"));
        assert!(keep);
    }

    #[test]
    fn reads_a_chunked_body_and_honours_close() {
        let (response, keep) = parse(
            "HTTP/1.1 429 Too Many Requests\r\ntransfer-encoding: chunked\r\nretry-after: 3\r\nconnection: close\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(response.status, 429);
        assert_eq!(response.body, b"abcde");
        assert_eq!(response.retry_after.as_deref(), Some("3"));
        assert!(!keep);
    }

    #[test]
    fn a_truncated_response_is_an_error() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let raw = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
        assert!(read_response(&mut raw.as_bytes(), addr).is_err());
    }
}
