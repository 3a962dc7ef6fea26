//! A client's request body as the host receives it: hyper's own from wasmount's listener (no
//! boxing on the hot path), or any `http_body::Body` an embedding server hands over (axum's,
//! tower's), boxed once. Everything past the listener reads this one type.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};
use sync_wrapper::SyncWrapper;

/// The error of a body an embedder handed over.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body from a client.
pub(crate) enum ClientBody {
    /// From wasmount's own listener.
    Hyper(Incoming),
    /// From an embedding server; made `Sync` (guest bodies must be) by giving only
    /// exclusive access to it, so its end and size are noted as it goes.
    Embedded {
        /// The body.
        body: SyncWrapper<UnsyncBoxBody<Bytes, BoxError>>,
        /// Its size hint when it was handed over.
        hint: SizeHint,
        /// Whether its last frame was read.
        ended: bool,
    },
}

/// Why a request body failed.
#[derive(Debug)]
pub(crate) enum ClientBodyError {
    /// hyper's, from the connection.
    Hyper(hyper::Error),
    /// An embedder's body's.
    Embedded(BoxError),
}

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hyper(error) => error.fmt(f),
            Self::Embedded(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ClientBodyError {}

impl ClientBody {
    /// Any body an embedder has, boxed once.
    pub(crate) fn embedded<B>(body: B) -> Self
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let hint = body.size_hint();
        let ended = body.is_end_stream();
        let body = SyncWrapper::new(body.map_err(Into::into).boxed_unsync());
        Self::Embedded { body, hint, ended }
    }
}

impl HttpBody for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match self.get_mut() {
            Self::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(ClientBodyError::Hyper),
            Self::Embedded { body, ended, .. } => {
                let polled = Pin::new(body.get_mut()).poll_frame(cx);
                if let Poll::Ready(None) = polled {
                    *ended = true;
                }
                polled.map_err(ClientBodyError::Embedded)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::Embedded { ended, .. } => *ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            Self::Embedded { hint, .. } => *hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn an_embedded_body_reads_to_its_end() {
        let mut body = ClientBody::embedded(Full::new(Bytes::from_static(b"hello")));
        assert_eq!(body.size_hint().exact(), Some(5));
        let collected = (&mut body).collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
        assert!(body.is_end_stream());
    }
}
