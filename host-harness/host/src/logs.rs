//! Bounded capture of a guest's stdout and stderr for one call.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A guest's captured output. Past the cap, output is dropped (never trapping the guest) and the
/// capture says it was truncated.
#[derive(Debug, Clone)]
pub struct LogCapture {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl LogCapture {
    /// A capture holding at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        LogCapture { inner: Arc::new(Mutex::new(Captured { cap, ..Captured::default() })) }
    }

    fn append(&self, data: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = captured.cap.saturating_sub(captured.bytes.len());
        let kept = room.min(data.len());
        captured.bytes.extend_from_slice(&data[..kept]);
        captured.dropped += (data.len() - kept) as u64;
    }

    /// The captured text, with a note when output was dropped.
    pub fn text(&self) -> String {
        let captured = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from_utf8_lossy(&captured.bytes).into_owned();
        if captured.dropped > 0 {
            text.push_str(&format!("\n[{} more bytes of guest output dropped]", captured.dropped));
        }
        text
    }
}

impl IsTerminal for LogCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogCapture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LogWriter(self.clone()))
    }
}

struct LogWriter(LogCapture);

impl AsyncWrite for LogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_output_past_the_cap_and_says_so() {
        let capture = LogCapture::new(5);
        capture.append(b"hello world");
        assert_eq!(capture.text(), "hello\n[6 more bytes of guest output dropped]");
    }
}
