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
}
