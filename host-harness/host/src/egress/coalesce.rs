//! A response body handed to the guest in as few pieces as it can be.
//!
//! A guest reads a body through `wasi:io` streams: every frame the host passes on is a wake-up
//! of the guest's poll, a `blocking-read` call into the host and a copy onto what the guest
//! already has. The connection delivers a body in as many frames as its reads return (TLS
//! records, TCP segments, the connection's read buffer), which says nothing about what the guest
//! needs: the connectors here parse a body only once all of it is there. So frames are joined
//! here, host side, and passed on when the body ends or [`MAX_JOINED_BYTES`] have gathered;
//! a body that arrives in one frame is passed on as it came, without a copy.
//!
//! Joining is also what lets each connection's read buffer stay small (`send.rs`): a body read
//! in several pieces costs the guest nothing more.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// Frames are joined until this many bytes have gathered (the SDK's largest read), so a guest
/// reading a long body still gets it about a mebibyte at a time rather than only at its end. A
/// joined frame exceeds it by at most the last frame joined.
pub const MAX_JOINED_BYTES: usize = 1 << 20;

/// `inner`'s data frames joined until `max` bytes have gathered; trailers and errors pass
/// through in order (data gathered before an error is dropped with it: the body failed).
pub struct Coalesced<B> {
    inner: B,
    max: usize,
    joined: BytesMut,
    /// Trailers that came while data was gathered, passed on after it.
    held: Option<Frame<Bytes>>,
    ended: bool,
}

impl<B> Coalesced<B> {
    /// Joins `inner`'s frames up to [`MAX_JOINED_BYTES`].
    pub fn new(inner: B) -> Self {
        Self::with_max(inner, MAX_JOINED_BYTES)
    }

    /// Joins `inner`'s frames until `max` bytes (at least one) have gathered.
    fn with_max(inner: B, max: usize) -> Self {
        Coalesced { inner, max: max.max(1), joined: BytesMut::new(), held: None, ended: false }
    }

    /// What has gathered, as one frame. Taken whole, not split off: a buffer nothing else
    /// shares becomes the guest's `Vec` without another copy.
    fn flush(&mut self) -> Frame<Bytes> {
        Frame::data(std::mem::take(&mut self.joined).freeze())
    }
}

impl<B> Body for Coalesced<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(trailers) = this.held.take() {
            return Poll::Ready(Some(Ok(trailers)));
        }
        while !this.ended {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                // The inner body has registered the waker; what has gathered waits with it.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.ended = true;
                    break;
                }
                Poll::Ready(Some(Err(e))) => {
                    this.joined = BytesMut::new();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(trailers) if this.joined.is_empty() => return Poll::Ready(Some(Ok(trailers))),
                Err(trailers) => {
                    this.held = Some(trailers);
                    return Poll::Ready(Some(Ok(this.flush())));
                }
            };
            if this.joined.is_empty() {
                if data.len() >= this.max || this.inner.is_end_stream() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                // Room for the rest of the body when its length is known, so it is one buffer.
                let rest = this.inner.size_hint().exact().unwrap_or(0);
                let rest = usize::try_from(rest).unwrap_or(usize::MAX);
                this.joined.reserve(data.len().saturating_add(rest).min(this.max));
            }
            this.joined.extend_from_slice(&data);
            if this.joined.len() >= this.max || this.inner.is_end_stream() {
                return Poll::Ready(Some(Ok(this.flush())));
            }
        }
        if this.joined.is_empty() { Poll::Ready(None) } else { Poll::Ready(Some(Ok(this.flush()))) }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.joined.is_empty() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let gathered = self.joined.len() as u64;
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(gathered));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(gathered));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt;

    use super::*;

    /// What the scripted body does on one poll.
    enum Step {
        Data(&'static [u8]),
        Trailers,
        Fail,
        Wait,
    }

    /// A body playing `steps` in order, then ending; it knows its remaining length when `sized`.
    struct Scripted {
        steps: VecDeque<Step>,
        sized: bool,
    }

    impl Scripted {
        fn new(steps: Vec<Step>, sized: bool) -> Self {
            Scripted { steps: steps.into(), sized }
        }

        fn remaining(&self) -> u64 {
            self.steps
                .iter()
                .map(|s| match s {
                    Step::Data(d) => d.len() as u64,
                    _ => 0,
                })
                .sum()
        }
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            match self.steps.pop_front() {
                None => Poll::Ready(None),
                Some(Step::Data(d)) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(d))))),
                Some(Step::Trailers) => {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("x-done", http::HeaderValue::from_static("yes"));
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Some(Step::Fail) => Poll::Ready(Some(Err("connection reset"))),
                Some(Step::Wait) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }

        fn is_end_stream(&self) -> bool {
            self.steps.is_empty()
        }

        fn size_hint(&self) -> SizeHint {
            if self.sized { SizeHint::with_exact(self.remaining()) } else { SizeHint::default() }
        }
    }

    /// Every frame the guest would see: data as text, trailers as `[trailers]`, an error as
    /// `[error: ..]`.
    async fn frames(body: Coalesced<Scripted>) -> Vec<String> {
        let mut body = std::pin::pin!(body);
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            seen.push(match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => String::from_utf8(data.to_vec()).unwrap(),
                    Err(_) => "[trailers]".to_string(),
                },
                Err(e) => format!("[error: {e}]"),
            });
        }
        seen
    }

    #[tokio::test]
    async fn a_body_in_pieces_arrives_as_one_frame_with_or_without_a_known_length() {
        for sized in [true, false] {
            let steps = vec![
                Step::Data(b"{\"items\":"),
                Step::Wait,
                Step::Data(b"[1,2,"),
                Step::Wait,
                Step::Wait,
                Step::Data(b"3]}"),
            ];
            let seen = frames(Coalesced::new(Scripted::new(steps, sized))).await;
            assert_eq!(seen, ["{\"items\":[1,2,3]}"], "sized: {sized}");
        }
    }

    #[tokio::test]
    async fn a_body_in_one_frame_is_passed_on_without_a_copy() {
        static WHOLE: &[u8] = b"the whole body";
        let mut body = std::pin::pin!(Coalesced::new(Scripted::new(vec![Step::Data(WHOLE)], true)));
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame.as_ptr(), WHOLE.as_ptr(), "the frame that came, not a copy");
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn joined_frames_stop_at_the_bound_and_the_rest_follows() {
        let steps = vec![
            Step::Data(b"abcd"),
            Step::Data(b"efgh"),
            Step::Data(b"klmnopqrstu"),
            Step::Data(b"ij"),
            Step::Wait,
            Step::Data(b"klm"),
            Step::Data(b"nopqr"),
            Step::Data(b"s"),
        ];
        let seen = frames(Coalesced::with_max(Scripted::new(steps, false), 8)).await;
        // Joined until 8 have gathered; a frame of 8 or more on its own is passed on as it came;
        // a frame reaching the bound is joined whole; the tail when the body ends.
        assert_eq!(seen, ["abcdefgh", "klmnopqrstu", "ijklmnopqr", "s"]);
    }

    #[tokio::test]
    async fn trailers_follow_the_data_gathered_before_them() {
        let steps = vec![Step::Data(b"ab"), Step::Data(b"cd"), Step::Trailers];
        let seen = frames(Coalesced::new(Scripted::new(steps, false))).await;
        assert_eq!(seen, ["abcd", "[trailers]"]);
    }

    #[tokio::test]
    async fn an_error_ends_the_body_and_drops_what_had_gathered() {
        let steps = vec![Step::Data(b"ab"), Step::Wait, Step::Data(b"cd"), Step::Fail];
        let seen = frames(Coalesced::new(Scripted::new(steps, false))).await;
        assert_eq!(seen, ["[error: connection reset]"]);
    }

    #[tokio::test]
    async fn an_empty_body_ends_at_once() {
        let seen = frames(Coalesced::new(Scripted::new(Vec::new(), true))).await;
        assert!(seen.is_empty());
    }
}
