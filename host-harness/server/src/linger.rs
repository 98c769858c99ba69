//! Closing a connection so that its last answer is read.
//!
//! A server may answer before it has read the whole request: a body over the limit is refused
//! with 413 as soon as its length is known. Closing the socket then, with the rest of the body
//! still arriving, makes the kernel reset the connection, and a client still writing (hyper's,
//! Python's) reports a broken pipe instead of the answer. So, as nginx's lingering close and
//! Go's `closeWriteAndWait` do, a connection hyper is done with is half-closed and what the
//! client still sends is read and dropped, until it closes its side, goes quiet, or the bound
//! passes. Hand-written: hyper and hyper-util close the socket as soon as they are done with it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The longest a closed connection is drained: enough for a client on a slow link to finish
/// sending a refused upload, short enough that a client that never stops costs little.
const LINGER_AT_MOST: Duration = Duration::from_secs(10);
/// A client that sends nothing for this long has stopped, and has had the answer.
const LINGER_QUIET: Duration = Duration::from_secs(1);
/// Bytes read (and dropped) at a time while draining.
const DRAIN_CHUNK: usize = 16 << 10;

/// A TCP connection that, when dropped, lingers as the module describes.
pub(crate) struct Lingering {
    /// Taken when the connection is dropped, to be drained.
    stream: Option<TcpStream>,
}

impl Lingering {
    /// Wraps an accepted connection.
    pub(crate) fn new(stream: TcpStream) -> Self {
        Lingering { stream: Some(stream) }
    }

    /// Polls the stream with `poll`; the stream is only ever gone once dropped.
    fn poll_stream<T>(
        &mut self,
        poll: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.stream.as_mut() {
            Some(stream) => poll(Pin::new(stream)),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        // Outside a runtime (never, when serving) the socket just closes.
        if let (Some(stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(drain(stream));
        }
    }
}

/// Half-closes `stream`, then reads and drops what still comes until the client closes its
/// side, goes quiet for [`LINGER_QUIET`], or [`LINGER_AT_MOST`] has passed.
async fn drain(mut stream: TcpStream) {
    // hyper has usually shut the write side already; a second shutdown changes nothing.
    let _ = stream.shutdown().await;
    let give_up = Instant::now() + LINGER_AT_MOST;
    // Most clients have closed already: the first read sees the end, and a connection that
    // needs no draining allocates no buffer. A larger one only once data does come.
    let mut first = [0u8; 64];
    let mut sink = Vec::new();
    loop {
        let wait = give_up.min(Instant::now() + LINGER_QUIET);
        let buffer = if sink.is_empty() { &mut first[..] } else { &mut sink[..] };
        match tokio::time::timeout_at(wait, stream.read(buffer)).await {
            Ok(Ok(read)) if read > 0 => {
                if sink.is_empty() {
                    sink = vec![0u8; DRAIN_CHUNK];
                }
            }
            _ => break,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_stream(|stream| stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_stream(|stream| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_stream(|stream| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_stream(|stream| stream.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_stream(|stream| stream.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client writes a body far larger than the socket buffers to a server that answers
    /// without reading it and closes: with lingering, every write succeeds and the answer is
    /// read; the closed socket's unread data would otherwise reset the connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_sent_before_the_body_was_read_reaches_a_client_still_writing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut connection = Lingering::new(stream);
                    let mut head = [0u8; 64];
                    let _ = connection.read(&mut head).await;
                    let _ = connection.write_all(b"refused").await;
                    let _ = connection.shutdown().await;
                });
            }
        });
        for _ in 0..5 {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let written = client.write_all(&vec![7u8; 8 << 20]).await;
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            assert!(written.is_ok(), "{written:?}");
            assert_eq!(answer, b"refused");
        }
    }

    #[tokio::test]
    async fn draining_ends_at_once_when_the_client_has_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        drop(client);
        let started = std::time::Instant::now();
        drain(stream).await;
        assert!(started.elapsed() < LINGER_QUIET, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn draining_stops_when_the_client_goes_quiet() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        client.write_all(b"more").await.unwrap();
        let started = std::time::Instant::now();
        drain(stream).await;
        // The client never closed: the drain ended on the quiet bound, not the overall one.
        let took = started.elapsed();
        assert!(took >= LINGER_QUIET && took < LINGER_AT_MOST, "{took:?}");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the server's side was closed without sending anything");
    }
}
