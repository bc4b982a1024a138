//! What one request may hold of the server: the size of its target and
//! headers, and the time it may take between two parts of its body.
//! Each refusal is the contract's `errors` envelope (code 3000).

use crate::error::error_response;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use nephele_common::{Error, ErrorCode};
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The longest request target (path and query) answered; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most bytes of header names and values a request may carry; more is
/// 431. (More than 100 fields the HTTP/1 parser refuses itself, with a
/// bare 431.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The first thing every request meets: its request id made sure of (an
/// unacceptable incoming one replaced) and echoed on the response, request
/// targets and headers over the limits refused, and the body given the
/// body read timeout. One layer rather than several: each layer costs
/// every request.
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = crate::middleware::ensure_request_id(req.headers_mut());
    let mut response = match oversized(&req) {
        Some(e) => error_response(&e),
        None => {
            // A body that is already whole (none, for most reads) needs no
            // timer.
            if !req.body().is_end_stream() {
                let timeout = state.options.body_read_timeout;
                req = req.map(|body| Body::new(TimedBody::new(body, timeout)));
            }
            next.run(req).await
        }
    };
    response
        .headers_mut()
        .entry(crate::middleware::X_REQUEST_ID)
        .or_insert(id);
    response
}

/// The refusal of a request target or headers over the limits.
fn oversized(req: &Request) -> Option<Error> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(Error::new(
            ErrorCode::UriTooLong,
            format!("The request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (bytes > MAX_HEADER_BYTES).then(|| {
        Error::new(
            ErrorCode::HeadersTooLarge,
            format!("The request headers exceed {MAX_HEADER_BYTES} bytes"),
        )
    })
}

/// The error of a body whose next part did not come in time.
#[derive(Debug)]
pub struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no part of the request body arrived for {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether an error (or one of its causes) is a body read timeout.
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The 408 for a body that stopped arriving.
pub fn body_timeout_error(e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::RequestTimeout,
        format!("The request body stopped arriving: {e}"),
    )
}

/// A body that fails once no frame has come for `timeout`. The timer is
/// made only when the body first has to wait, so a body already here (or
/// none at all) costs nothing.
struct TimedBody {
    inner: Body,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedBody {
    fn new(inner: Body, timeout: Duration) -> TimedBody {
        TimedBody {
            inner,
            timeout,
            timer: None,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_with_the_timeout() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = tokio_stream_from(rx);
        let mut body = TimedBody::new(
            Body::new(http_body_util::StreamBody::new(stream)),
            Duration::from_millis(50),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"first"));
        // Nothing more comes: after the timeout the body fails.
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(timed_out(&e), "{e}");
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_is_here_passes_untouched() {
        let mut body = TimedBody::new(Body::from("whole"), Duration::from_millis(1));
        assert_eq!(body.size_hint().exact(), Some(5));
        let all = (&mut body).collect().await.unwrap().to_bytes();
        assert_eq!(all, Bytes::from_static(b"whole"));
        assert!(body.is_end_stream());
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Send + 'static {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
