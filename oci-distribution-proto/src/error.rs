//! The crate's error type.

use std::io;

use http::StatusCode;
use oci_spec_types::Digest;

use crate::{LinkError, Operation, RegistryError, UploadState};

/// Everything that can go wrong building a request or interpreting a response.
///
/// A registry's own error answer (a non-success status with its error envelope) is
/// [`Error::Registry`]; the other variants are this client's findings about what was sent or
/// received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry answered with an error status.
    #[error("{operation} failed: {source}")]
    Registry {
        /// What was being done.
        operation: Operation,
        /// The registry's answer: status, error codes, challenge.
        #[source]
        source: RegistryError,
    },

    /// The request could not be sent or its response could not be received.
    #[error("sending the request failed: {0}")]
    Transport(#[from] crate::TransportError),

    /// A registry host that cannot form a URL.
    #[error(
        "invalid registry host {host:?}: {reason}; give it as host[:port], such as localhost:5000"
    )]
    InvalidRegistry {
        /// The host given.
        host: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A request that cannot be built from the values given.
    #[error("cannot build the {operation} request: {reason}")]
    InvalidRequest {
        /// What was being built.
        operation: Operation,
        /// What is wrong.
        reason: String,
    },

    /// A manifest operation on a reference with neither tag nor digest.
    #[error("{operation} needs a tag or a digest: add `:tag` or `@sha256:…` to {reference}")]
    MissingTarget {
        /// What was being built.
        operation: Operation,
        /// The reference given.
        reference: String,
    },

    /// A status the protocol does not allow for this operation, such as a redirect the
    /// transport did not follow.
    #[error("{operation}: unexpected status {status}, expected {expected}")]
    UnexpectedStatus {
        /// What was being done.
        operation: Operation,
        /// The status received.
        status: StatusCode,
        /// The statuses the protocol allows, for the message.
        expected: &'static str,
    },

    /// A header the protocol requires is absent.
    #[error("{operation}: the registry's response has no `{header}` header")]
    MissingHeader {
        /// What was being done.
        operation: Operation,
        /// The header name.
        header: &'static str,
    },

    /// A header that does not parse.
    #[error("{operation}: invalid `{header}` header {value:?}: {reason}")]
    InvalidHeader {
        /// What was being done.
        operation: Operation,
        /// The header name.
        header: &'static str,
        /// The value received (lossily decoded).
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Content that does not hash to the digest it should have.
    #[error(
        "{what}: expected {expected} but got {actual}; the content was corrupted in transit or the registry is misbehaving, retry"
    )]
    DigestMismatch {
        /// What was checked, such as `manifest localhost:5000/demo:v1`.
        what: String,
        /// The digest required.
        expected: Digest,
        /// The digest found.
        actual: Digest,
    },

    /// A digest whose algorithm this crate cannot compute, so content cannot be verified.
    #[error(
        "cannot verify content against {digest}: unsupported digest algorithm, use sha256 or sha512"
    )]
    UnsupportedDigest {
        /// The digest.
        digest: Digest,
    },

    /// Content longer or shorter than its descriptor says.
    #[error(
        "{what}: expected {expected} bytes but got {actual}; the content was truncated or the registry is misbehaving, retry"
    )]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The size required.
        expected: u64,
        /// The size found (so far, when too long).
        actual: u64,
    },

    /// A manifest over [`oci_spec_types::MAX_MANIFEST_SIZE`], refused before or after reading.
    #[error(
        "manifest is {size} bytes, more than the {limit} bytes registries accept; refusing to read it"
    )]
    ManifestTooLarge {
        /// Its size (from `Content-Length` or as read).
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A manifest that does not parse or is not a kind this crate knows.
    #[error("{operation}: invalid manifest: {source}")]
    Manifest {
        /// What was being done.
        operation: Operation,
        /// What is wrong with it.
        #[source]
        source: oci_spec_types::Error,
    },

    /// A JSON body that does not have the expected shape.
    #[error("{operation}: invalid JSON response: {message}")]
    InvalidJson {
        /// What was being done.
        operation: Operation,
        /// serde_json's message, with line and column.
        message: String,
    },

    /// A pagination `Link` header that does not parse.
    #[error("{operation}: {source}")]
    Link {
        /// What was being done.
        operation: Operation,
        /// What is wrong with the header.
        #[source]
        source: LinkError,
    },

    /// A `WWW-Authenticate` header that does not parse.
    #[error(transparent)]
    Challenge(#[from] crate::ChallengeError),

    /// A referrers list that is not one (from the referrers API or the fallback tag).
    #[error(transparent)]
    Referrers(#[from] crate::ReferrersError),

    /// A scope string that does not parse.
    #[error(transparent)]
    Scope(#[from] crate::ScopeError),

    /// A next-page URL on another host than the registry's; following it could leak a token.
    #[error("refusing to follow the next-page link {url}: it leaves the registry {registry}")]
    ForeignLink {
        /// The URL.
        url: String,
        /// The registry's base URL.
        registry: String,
    },

    /// A body longer than the limit given to [`crate::Body::collect`].
    #[error("the body is longer than {limit} bytes; refusing to read it into memory")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },

    /// Reading a body stream failed.
    #[error("reading the body failed: {0}")]
    BodyRead(#[source] io::Error),

    /// An upload session method called in a state that does not allow it.
    #[error("cannot {action} while the upload is {state}")]
    UploadState {
        /// The session's state.
        state: UploadState,
        /// What was attempted, such as `send a chunk`.
        action: &'static str,
    },

    /// The registry's idea of how many bytes an upload holds differs from what was sent.
    #[error(
        "the registry holds {reported} bytes of the upload but {expected} were sent; ask for the upload status and resume from the registry's offset"
    )]
    UploadOffset {
        /// The offset this session expected.
        expected: u64,
        /// The offset the registry reported.
        reported: u64,
    },
}

impl Error {
    /// The registry's answer, when this is [`Error::Registry`].
    pub fn registry_error(&self) -> Option<&RegistryError> {
        match self {
            Self::Registry { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The HTTP status, when the registry answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Registry { source, .. } => Some(source.status()),
            Self::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Builds [`Error::Registry`] from an error response; the body is the error envelope.
    pub fn from_response<B: AsRef<[u8]>>(
        operation: Operation,
        response: &http::Response<B>,
    ) -> Self {
        Self::from_parts(
            operation,
            response.status(),
            response.headers(),
            response.body().as_ref(),
        )
    }

    pub(crate) fn from_parts(
        operation: Operation,
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Self {
        Self::Registry {
            operation,
            source: RegistryError::from_response_parts(status, headers, body),
        }
    }
}
