//! How the client connects: TLS trust, plain HTTP, timeouts, retries.

use std::path::PathBuf;
use std::time::Duration;

/// When plain HTTP (no TLS) may be used for a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlainHttp {
    /// Always HTTPS.
    Never,
    /// HTTP for `localhost`, `127.0.0.0/8` and `[::1]`, HTTPS elsewhere (what ORAS does).
    #[default]
    LoopbackOnly,
    /// Always HTTP (`--plain-http`).
    Always,
}

/// Retry policy for idempotent requests: exponential backoff with jitter, bounded in count and
/// in total time.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Cap on one delay (also caps a registry's `Retry-After`).
    pub max_delay: Duration,
    /// Cap on the time spent waiting across all retries of one request.
    pub max_total_delay: Duration,
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped, with
    /// "equal jitter" (half fixed, half random) so that many clients do not retry in step.
    /// `jitter` is a number in `[0, 1)`, passed in so the policy stays deterministic to test.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_total_delay: Duration::from_secs(30),
        }
    }
}

/// How the client talks to registries. Plain data; build it with `..Default::default()`.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// When plain HTTP is allowed.
    pub plain_http: PlainHttp,
    /// Skip TLS certificate verification (`--insecure`): only when explicitly asked.
    pub insecure_skip_verify: bool,
    /// A PEM file of extra CA certificates trusted besides the platform and Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed to wait for response headers, and between two body frames.
    pub idle_timeout: Duration,
    /// Retries of idempotent requests.
    pub retry: RetryPolicy,
    /// Most redirects followed for one request.
    pub max_redirects: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            plain_http: PlainHttp::default(),
            insecure_skip_verify: false,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_redirects: 10,
            user_agent: concat!("acr-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        // With jitter 0 the delay is half the exponential step; with jitter ~1 the whole step.
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(policy.delay(2, 0.0), Duration::from_millis(100));
        assert_eq!(policy.delay(3, 0.0), Duration::from_millis(200));
        assert_eq!(policy.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(policy.delay(10, 1.0), Duration::from_millis(1000));
        assert_eq!(policy.delay(40, 0.5), Duration::from_millis(750));
    }
}
