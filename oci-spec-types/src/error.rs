//! The crate's error type.

use std::fmt;

use crate::{DigestError, MediaType, ReferenceError};

/// Everything that can go wrong turning bytes or strings into this crate's types.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A malformed digest.
    Digest(DigestError),
    /// A malformed reference.
    Reference(ReferenceError),
    /// JSON that does not parse into the expected type.
    InvalidJson {
        /// What was being parsed, such as `manifest`.
        what: &'static str,
        /// serde_json's message, with line and column.
        message: String,
    },
    /// The body's `mediaType` and the `Content-Type` name different manifest kinds.
    MediaTypeMismatch {
        /// The body's `mediaType`.
        declared: MediaType,
        /// The `Content-Type` given.
        content_type: MediaType,
    },
    /// A manifest media type this crate cannot parse (or none could be told).
    UnknownManifestKind {
        /// The media type, when one was given.
        media_type: Option<MediaType>,
    },
    /// No media type in the body or `Content-Type`, and the body has both `config` (as an image
    /// manifest does) and `manifests` (as an index does), so its kind cannot be told.
    AmbiguousManifestKind,
    /// `schemaVersion` other than 2 (schema 1 is long deprecated), or a Docker schema 1 media
    /// type (`found` is then 1).
    UnsupportedSchemaVersion {
        /// The version found.
        found: u64,
    },
    /// A manifest over [`crate::MAX_MANIFEST_SIZE`].
    ManifestTooLarge {
        /// Its size.
        size: u64,
    },
    /// A malformed platform string.
    InvalidPlatform {
        /// The input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Digest(e) => e.fmt(f),
            Self::Reference(e) => e.fmt(f),
            Self::InvalidJson { what, message } => write!(f, "invalid {what} JSON: {message}"),
            Self::MediaTypeMismatch {
                declared,
                content_type,
            } => write!(
                f,
                "manifest says its mediaType is {declared} but it was served as {content_type}"
            ),
            Self::UnknownManifestKind {
                media_type: Some(t),
            } => write!(
                f,
                "{t} is not a manifest type; expected an OCI or Docker schema 2 manifest or index"
            ),
            Self::UnknownManifestKind { media_type: None } => write!(
                f,
                "cannot tell the manifest kind: no mediaType, no manifest Content-Type, and neither `config` nor `manifests`"
            ),
            Self::AmbiguousManifestKind => write!(
                f,
                "cannot tell the manifest kind: no mediaType, no manifest Content-Type, and both `config` (image manifest) and `manifests` (index); set `mediaType`"
            ),
            Self::UnsupportedSchemaVersion { found: 1 } => write!(
                f,
                "Docker schema 1 manifests are not supported; push the image again with a current client"
            ),
            Self::UnsupportedSchemaVersion { found } => {
                write!(f, "unsupported manifest schemaVersion {found}; expected 2")
            }
            Self::ManifestTooLarge { size } => write!(
                f,
                "manifest is {size} bytes; registries accept at most {} bytes",
                crate::MAX_MANIFEST_SIZE
            ),
            Self::InvalidPlatform { input, reason } => {
                write!(f, "invalid platform {input:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Digest(e) => Some(e),
            Self::Reference(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DigestError> for Error {
    fn from(e: DigestError) -> Self {
        Self::Digest(e)
    }
}

impl From<ReferenceError> for Error {
    fn from(e: ReferenceError) -> Self {
        Self::Reference(e)
    }
}
