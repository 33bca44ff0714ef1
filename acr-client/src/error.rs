//! The client's error type.

use std::time::Duration;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// TLS could not be configured (bad CA file, ...).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The connection failed (refused, reset, DNS, TLS handshake).
    #[error("cannot reach {url}: {message}")]
    Connection {
        /// The request URL.
        url: String,
        /// The chain of causes.
        message: String,
    },
    /// No response head within the idle timeout.
    #[error("{url} did not answer within {after:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// More redirects than allowed.
    #[error("too many redirects from {url}")]
    TooManyRedirects {
        /// The first URL.
        url: String,
    },
    /// A redirect `Location` that is not an http(s) URL.
    #[error("invalid redirect from {from} to {location:?}")]
    InvalidRedirect {
        /// Where the redirect came from.
        from: String,
        /// The `Location` value.
        location: String,
    },
    /// A streamed body cannot be sent twice (after a redirect or for a retry).
    #[error("cannot resend the streamed body of a request to {url}")]
    BodyNotReplayable {
        /// The request URL.
        url: String,
    },
    /// A file operation failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
    /// An OCI image layout is missing, malformed or lacks some content.
    #[error("OCI layout {path}: {message}")]
    Layout {
        /// The layout (or the file in it).
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Content did not hash to the digest it was asked for.
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: oci_spec_types::Digest,
        /// The digest of what arrived.
        actual: oci_spec_types::Digest,
    },
    /// Content had another size than its descriptor says.
    #[error("{digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The content's digest.
        digest: oci_spec_types::Digest,
        /// The size the descriptor declares.
        expected: u64,
        /// The size seen (possibly cut short where reading stopped).
        actual: u64,
    },
    /// A digest algorithm this client cannot compute.
    #[error("cannot verify {digest}: only sha256 and sha512 digests are supported")]
    UnsupportedDigest {
        /// The digest.
        digest: oci_spec_types::Digest,
    },
    /// The registry refused the request even with fresh credentials.
    #[error("unauthorized: {registry} refused the {credential}{}; run `acr login {registry}` or check the permissions", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The kind of credential tried.
        credential: &'static str,
        /// The registry's last challenge.
        detail: Option<String>,
    },
    /// A credential that cannot be sent.
    #[error("invalid credential: {reason}")]
    InvalidCredential {
        /// Why.
        reason: &'static str,
    },
    /// A file changed between hashing and uploading.
    #[error("{path} changed while it was being uploaded; upload it again once it is stable")]
    ChangedWhileReading {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A protocol error: what the registry answered, or a request that could not be built.
    #[error(transparent)]
    Protocol(#[from] oci_distribution_proto::Error),
    /// Getting credentials failed.
    #[error(transparent)]
    Auth(#[from] acr_auth::AuthError),
    /// A bad reference.
    #[error(transparent)]
    Reference(#[from] oci_spec_types::ReferenceError),
    /// An artifact that cannot be pushed or pulled safely.
    #[error("{message}")]
    InvalidArtifact {
        /// What is wrong, naming the file.
        message: String,
    },
    /// The registry does not offer what was asked.
    #[error("{message}")]
    Unsupported {
        /// What is missing and what to do instead.
        message: String,
    },
    /// An ACR management request (`/acr/v1/…`: properties, changeable attributes, tag and
    /// repository deletes) failed; `reason` says why and what to do.
    #[error("{action} failed: {reason}")]
    Management {
        /// What was being done, naming the repository, tag or digest.
        action: String,
        /// The registry's answer (or what was wrong with it) and a hint.
        reason: String,
        /// The registry's error answer, when there was one (status and error codes).
        registry: Option<Box<oci_distribution_proto::RegistryError>>,
    },
}
