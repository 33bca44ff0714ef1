//! The seam to the I/O layers: the [`Body`] of requests and responses and the [`Transport`]
//! trait that sends one request and returns its response.
//!
//! Nothing here does I/O. `acr-client` implements [`Transport`] over hyper; `acr-auth` uses it to
//! reach token endpoints; tests implement it with an in-memory registry.

use std::error::Error as StdError;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::Error;

/// A boxed stream of body chunks, as the layers above produce them from files or sockets.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// The body of a request or response: nothing, bytes in memory, or a stream.
///
/// Only [`Body::Empty`] and [`Body::Bytes`] can be sent twice (see [`Body::try_clone`]), so only
/// requests with those bodies can be replayed after an authentication challenge or a redirect.
///
/// ```
/// use oci_distribution_proto::Body;
/// let body = Body::from("hello");
/// assert_eq!(body.len(), Some(5));
/// assert!(body.try_clone().is_some());
/// ```
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory.
    Bytes(Bytes),
    /// A streamed body.
    Stream {
        /// The chunks.
        stream: ByteStream,
        /// The total length, when known in advance (it becomes `Content-Length`).
        len: Option<u64>,
    },
}

impl Body {
    /// A streamed body; `len` is its total length when known.
    pub fn from_stream(
        stream: impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
        len: Option<u64>,
    ) -> Self {
        Self::Stream {
            stream: Box::pin(stream),
            len,
        }
    }

    /// The length in bytes, when known.
    pub fn len(&self) -> Option<u64> {
        match self {
            Self::Empty => Some(0),
            Self::Bytes(b) => Some(b.len() as u64),
            Self::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The bytes of an in-memory body (`Some(empty)` for [`Body::Empty`], `None` for a stream).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Empty => Some(&[]),
            Self::Bytes(b) => Some(b),
            Self::Stream { .. } => None,
        }
    }

    /// A copy of the body if it can be sent again; `None` for a stream.
    pub fn try_clone(&self) -> Option<Self> {
        match self {
            Self::Empty => Some(Self::Empty),
            Self::Bytes(b) => Some(Self::Bytes(b.clone())),
            Self::Stream { .. } => None,
        }
    }

    /// Reads the whole body into memory, refusing more than `limit` bytes.
    ///
    /// Use it for small bodies only (manifests, error envelopes, tag lists); stream blobs.
    pub async fn collect(self, limit: u64) -> Result<Bytes, Error> {
        match self {
            Self::Empty => Ok(Bytes::new()),
            Self::Bytes(b) if b.len() as u64 > limit => Err(Error::BodyTooLarge { limit }),
            Self::Bytes(b) => Ok(b),
            Self::Stream { mut stream, len } => {
                if len.is_some_and(|len| len > limit) {
                    return Err(Error::BodyTooLarge { limit });
                }
                let mut buf = BytesMut::new();
                while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                    let chunk = chunk.map_err(Error::BodyRead)?;
                    if (buf.len() + chunk.len()) as u64 > limit {
                        return Err(Error::BodyTooLarge { limit });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(buf.freeze())
            }
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut *self {
            Self::Empty => Poll::Ready(None),
            Self::Bytes(_) => match std::mem::take(&mut *self) {
                Self::Bytes(b) if !b.is_empty() => Poll::Ready(Some(Ok(b))),
                _ => Poll::Ready(None),
            },
            Self::Stream { stream, .. } => stream.as_mut().poll_next(cx),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Empty => (0, Some(0)),
            Self::Bytes(b) if b.is_empty() => (0, Some(0)),
            Self::Bytes(_) => (1, Some(1)),
            Self::Stream { stream, .. } => stream.size_hint(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Body::Empty"),
            Self::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Self::Stream { len: Some(len), .. } => write!(f, "Body::Stream({len} bytes)"),
            Self::Stream { len: None, .. } => f.write_str("Body::Stream(unknown length)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::Bytes(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::Bytes(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::Bytes(text.into())
    }
}

/// A failure to exchange a request and response: connecting, TLS, a timeout, a broken stream.
///
/// It is what a [`Transport`] reports; a registry's error answer is a response, not this.
#[derive(Debug)]
pub struct TransportError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl TransportError {
    /// An error with a message saying what failed and the underlying cause.
    pub fn new(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Sends one HTTP request and returns the response: the only I/O the protocol needs.
///
/// Implementations decide about connection pooling, TLS, timeouts, redirects and retries; the
/// builders in this crate put a [`crate::RequestInfo`] (the operation and the token scopes it
/// needs) into each request's extensions for an authenticating transport to read.
///
/// ```
/// use oci_distribution_proto::{Body, Transport, TransportError};
/// use oci_distribution_proto::http::{Request, Response};
///
/// /// Answers every request with 200 and an empty JSON object.
/// struct AlwaysOk;
///
/// #[async_trait::async_trait]
/// impl Transport for AlwaysOk {
///     async fn send(&self, _request: Request<Body>) -> Result<Response<Body>, TransportError> {
///         Ok(Response::new(Body::from("{}")))
///     }
/// }
/// let _object_safe: Box<dyn Transport> = Box::new(AlwaysOk);
/// ```
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the response head with its (possibly streamed) body.
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError>;
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for &T {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        (**self).send(request).await
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        (**self).send(request).await
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        (**self).send(request).await
    }
}
