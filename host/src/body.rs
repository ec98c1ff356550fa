//! Request bodies read whole under a size limit, for the ACME and the admin listener alike.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

/// How long the rest of an oversized body is read and thrown away after the refusal. Closing
/// a connection while the client still sends makes the kernel reset it, and the reset destroys
/// the 413 before the client reads it; a few seconds let the client hear the answer and stop
/// (curl does at once), without holding a connection open for a client that never stops.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The most of an oversized body read and thrown away: past this a client that keeps sending
/// is cut off even within [`DRAIN_TIME`]. 128 MiB takes well under a second on a local link.
const DRAIN_BYTES: usize = 128 << 20;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Over the listener's limit (`server.max_body_bytes`): the answer is 413.
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// Not all there within the client time limit (`server.client_timeout_seconds`): the
    /// answer is 408, so a client sending a byte at a time cannot hold a connection.
    #[error("request body not received within {seconds} s")]
    TooSlow { seconds: u64 },
    /// The client's stream broke or was malformed.
    #[error("failed to read the request body: {0}")]
    Read(String),
}

impl BodyError {
    /// The HTTP status that answers it: 413, 408, or 400 for a broken stream.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooSlow { .. } => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Read(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The whole body, at most `limit` bytes. An announced length (Content-Length) over the limit
/// is refused before a byte is read; a streamed (chunked) body as soon as it passes the limit.
/// Either way what the client still sends is drained in the background (see [`DRAIN_TIME`]).
/// A body still incomplete after `within` is refused as too slow.
pub async fn read_bounded<B>(body: B, limit: usize, within: Duration) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::time::timeout(within, read_limited(body, limit))
        .await
        .unwrap_or(Err(BodyError::TooSlow {
            seconds: within.as_secs(),
        }))
}

async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = Box::pin(body);
    if body.size_hint().lower() <= limit as u64 {
        let mut whole = BytesMut::new();
        loop {
            let Some(frame) = body.frame().await else {
                return Ok(whole.freeze());
            };
            let frame = frame.map_err(|e| BodyError::Read(e.into().to_string()))?;
            // Trailers carry no data; an ACME or admin request has no use for them.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if whole.len() + data.len() > limit {
                break;
            }
            whole.extend_from_slice(&data);
        }
    }
    // A client that announced a large body without waiting for 100 Continue sends it anyway.
    tokio::spawn(drain(body));
    Err(BodyError::TooLarge { limit })
}

/// Reads and discards what is left of `body`, within [`DRAIN_TIME`] and [`DRAIN_BYTES`].
async fn drain<B>(mut body: Pin<Box<B>>)
where
    B: Body<Data = Bytes> + Send,
{
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let size = frame.data_ref().map_or(0, Bytes::len);
            if size >= left {
                break;
            }
            left -= size;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use super::*;

    /// A body that streams its chunks without announcing a length, as chunked encoding does.
    struct Chunked(std::collections::VecDeque<&'static [u8]>);

    impl Body for Chunked {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            let next = self.0.pop_front();
            Poll::Ready(next.map(|c| Ok(hyper::body::Frame::data(Bytes::from_static(c)))))
        }
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_announced_or_streamed() {
        let full = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
        assert_eq!(
            read_bounded(full.clone(), 10, LONG).await.unwrap(),
            "0123456789"
        );
        assert!(matches!(
            read_bounded(full, 9, LONG).await,
            Err(BodyError::TooLarge { limit: 9 })
        ));
        let streamed = || Chunked([&b"01234"[..], b"56789"].into());
        assert_eq!(
            read_bounded(streamed(), 10, LONG).await.unwrap(),
            "0123456789"
        );
        assert_eq!(
            read_bounded(streamed(), 9, LONG)
                .await
                .unwrap_err()
                .to_string(),
            "request body exceeds 9 bytes"
        );
    }

    /// A body that never finishes: one chunk, then silence.
    struct Stalled(bool);

    impl Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"{")))))
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_refused_after_the_client_time_limit() {
        let refused = read_bounded(Stalled(false), 100, Duration::from_millis(100)).await;
        assert!(matches!(refused, Err(BodyError::TooSlow { .. })));
        assert_eq!(refused.unwrap_err().status(), 408);
    }
}
