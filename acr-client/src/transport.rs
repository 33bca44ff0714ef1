//! The protocol crate's [`Transport`] over the hyper engine.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use oci_distribution_proto::{Body, ByteStream, Transport, TransportError};

use crate::http::{Engine, Outgoing};
use crate::{Error, TransportConfig};

/// Sends protocol requests over hyper: pooled connections, TLS, redirects, retries, timeouts.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct HyperTransport {
    engine: Engine,
}

impl HyperTransport {
    /// A transport with `config`.
    pub fn new(config: TransportConfig) -> Result<Self, Error> {
        Ok(Self {
            engine: Engine::new(config)?,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &TransportConfig {
        self.engine.config()
    }
}

#[async_trait]
impl Transport for HyperTransport {
    async fn send(&self, request: Request<Body>) -> Result<Response<Body>, TransportError> {
        let (mut parts, body) = request.into_parts();
        let is_head = parts.method == http::Method::HEAD;
        let outgoing = match body {
            Body::Empty => Outgoing::Empty,
            Body::Bytes(bytes) => Outgoing::Bytes(bytes),
            Body::Stream { stream, len } => {
                // Registries expect Content-Length on uploads; without it hyper would send chunked.
                if let Some(len) = len {
                    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
                }
                Outgoing::Stream(StreamBody { stream, len }.boxed_unsync())
            }
        };
        let response = self
            .engine
            .send(Request::from_parts(parts, ()), outgoing)
            .await
            .map_err(|e| TransportError::new(e.to_string(), e))?;
        let len = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // A HEAD answer's Content-Length describes the resource, not a body.
        if is_head || matches!(response.status().as_u16(), 204 | 304) {
            return Ok(response.map(|_| Body::Empty));
        }
        Ok(response.map(|body| {
            let stream: ByteStream = Box::pin(DataStream(body));
            Body::Stream { stream, len }
        }))
    }
}

/// A protocol byte stream as a hyper request body.
struct StreamBody {
    stream: ByteStream,
    len: Option<u64>,
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.stream
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.len.map(SizeHint::with_exact).unwrap_or_default()
    }
}

/// A hyper response body as a protocol byte stream (data frames only; trailers are dropped).
struct DataStream<B>(B);

impl<B> Stream for DataStream<B>
where
    B: http_body::Body<Data = Bytes, Error = io::Error> + Unpin,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match Pin::new(&mut self.0).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
