//! The HTTP engine: a pooled hyper client over rustls, with what hyper leaves out (redirects,
//! timeouts, retries) added here, where the I/O lives.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, LOCATION, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::{Error, TransportConfig};

/// A request body hyper can send.
pub(crate) type HyperBody = UnsyncBoxBody<Bytes, io::Error>;

/// What a request carries. Only `Empty` and `Bytes` can be sent twice, so only requests with
/// those bodies are retried or redirected.
pub(crate) enum Outgoing {
    Empty,
    Bytes(Bytes),
    Stream(HyperBody),
}

impl Outgoing {
    fn replayable(&self) -> Option<HyperBody> {
        match self {
            Self::Empty => Some(Empty::new().map_err(|never| match never {}).boxed_unsync()),
            Self::Bytes(b) => Some(
                Full::new(b.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            ),
            Self::Stream(_) => None,
        }
    }
}

/// The pooled HTTP client. Cheap to clone; share one per process.
#[derive(Clone)]
pub(crate) struct Engine {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, HyperBody>,
    config: Arc<TransportConfig>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub(crate) fn new(config: TransportConfig) -> Result<Self, Error> {
        let tls = crate::tls::client_config(&config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    pub(crate) fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Sends a request: follows redirects for GET and HEAD (dropping `Authorization` when a
    /// redirect leaves the origin), retries idempotent requests with replayable bodies on
    /// connection errors, 429 and 5xx, and bounds the wait for the response head.
    pub(crate) async fn send(
        &self,
        request: Request<()>,
        body: Outgoing,
    ) -> Result<Response<IdleTimeoutBody>, Error> {
        let (mut parts, ()) = request.into_parts();
        if !parts.headers.contains_key(USER_AGENT)
            && let Ok(ua) = HeaderValue::from_str(&self.config.user_agent)
        {
            parts.headers.insert(USER_AGENT, ua);
        }
        let retryable = is_idempotent(&parts.method) && !matches!(body, Outgoing::Stream(_));
        let follow_redirects = matches!(parts.method, Method::GET | Method::HEAD);
        let mut body = Some(body);
        let mut redirects = 0;
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            let this_body = match body.as_ref().and_then(Outgoing::replayable) {
                Some(b) => b,
                None => match body.take() {
                    Some(Outgoing::Stream(s)) => s,
                    _ => {
                        return Err(Error::BodyNotReplayable {
                            url: parts.uri.to_string(),
                        });
                    }
                },
            };
            let request = Request::from_parts(parts.clone(), this_body);
            let started = Instant::now();
            let outcome =
                tokio::time::timeout(self.config.idle_timeout, self.client.request(request)).await;
            let result = match outcome {
                Err(_) => Err(Error::Timeout {
                    url: parts.uri.to_string(),
                    after: self.config.idle_timeout,
                }),
                Ok(Err(e)) => Err(Error::Connection {
                    url: parts.uri.to_string(),
                    message: error_chain(&e),
                }),
                Ok(Ok(response)) => Ok(response),
            };
            tracing::debug!(
                method = %parts.method,
                url = %redact_query(&parts.uri),
                status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "http request"
            );
            // Retry decisions: only for requests that can be sent again unchanged.
            let retry_after = match &result {
                Err(Error::Connection { .. } | Error::Timeout { .. }) => Some(None),
                Ok(r)
                    if r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error() =>
                {
                    Some(parse_retry_after(r.headers().get(RETRY_AFTER)))
                }
                _ => None,
            };
            if let Some(hint) = retry_after
                && retryable
                && attempt < self.config.retry.max_retries
            {
                attempt += 1;
                let policy = &self.config.retry;
                let delay = hint
                    .unwrap_or_else(|| policy.delay(attempt, jitter()))
                    .min(policy.max_delay);
                if waited + delay <= policy.max_total_delay {
                    tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying");
                    waited += delay;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            let response = result?;
            if follow_redirects
                && response.status().is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                redirects += 1;
                if redirects > self.config.max_redirects {
                    return Err(Error::TooManyRedirects {
                        url: parts.uri.to_string(),
                    });
                }
                let next = resolve(&parts.uri, location)?;
                if !same_origin(&parts.uri, &next) {
                    // A signed storage URL carries its own authorization; our token must not follow.
                    parts.headers.remove(AUTHORIZATION);
                }
                parts.headers.remove(HOST);
                parts.uri = next;
                attempt = 0;
                continue;
            }
            let idle = self.config.idle_timeout;
            return Ok(response.map(|incoming| IdleTimeoutBody::new(incoming, idle)));
        }
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Seconds form of `Retry-After`; the date form is rare from registries and falls back to backoff.
fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    value?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A number in `[0, 1)` that differs between calls and processes, for backoff jitter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = e.source();
    }
    message
}

/// A URI for logs: the query (which may hold signatures or upload state) is left out.
pub(crate) fn redact_query(uri: &Uri) -> String {
    match uri.query() {
        Some(_) => format!(
            "{}://{}{}?<redacted>",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map(|a| a.as_str()).unwrap_or(""),
            uri.path()
        ),
        None => uri.to_string(),
    }
}

pub(crate) fn resolve(base: &Uri, location: &HeaderValue) -> Result<Uri, Error> {
    let bad = || Error::InvalidRedirect {
        from: base.to_string(),
        location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
    };
    let location = location.to_str().map_err(|_| bad())?;
    let base_url = url::Url::parse(&base.to_string()).map_err(|_| bad())?;
    let next = base_url.join(location).map_err(|_| bad())?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad());
    }
    next.as_str().parse().map_err(|_| bad())
}

/// Same scheme, host and port: where credentials for `a` may also go.
pub(crate) fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().or_else(|| match u.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
    };
    a.scheme() == b.scheme()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// A response body that fails when no frame arrives for the idle timeout, so a stalled
/// download ends with an error while a slow but moving one goes on.
pub(crate) struct IdleTimeoutBody {
    inner: hyper::body::Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeoutBody {
    fn new(inner: hyper::body::Incoming, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl http_body::Body for IdleTimeoutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let idle = this.idle;
                this.deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + idle);
                Poll::Ready(frame.map(|f| f.map_err(|e| io::Error::other(error_chain(&e)))))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data received for {:?}", this.idle),
                )))),
                Poll::Pending => Poll::Pending,
            },
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

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            &uri("https://r.io/v2/"),
            &uri("https://R.io:443/x")
        ));
        assert!(!same_origin(
            &uri("https://r.io/v2/"),
            &uri("https://storage.blob.core.windows.net/x")
        ));
        assert!(!same_origin(
            &uri("https://r.io/v2/"),
            &uri("http://r.io/v2/")
        ));
        assert!(!same_origin(
            &uri("http://127.0.0.1:5000/"),
            &uri("http://127.0.0.1:5001/")
        ));
    }

    #[test]
    fn redirects_resolve_relative_and_absolute() {
        let base = uri("https://r.io/v2/a/blobs/sha256:1");
        let rel = resolve(&base, &HeaderValue::from_static("/b/c?sig=1")).unwrap();
        assert_eq!(rel.to_string(), "https://r.io/b/c?sig=1");
        let abs = resolve(
            &base,
            &HeaderValue::from_static("https://s.blob.core.windows.net/x?sv=1"),
        )
        .unwrap();
        assert_eq!(abs.host(), Some("s.blob.core.windows.net"));
        assert!(resolve(&base, &HeaderValue::from_static("file:///etc/passwd")).is_err());
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn logs_never_show_the_query() {
        let u = uri("https://s.blob.core.windows.net/x?sig=SECRET");
        assert!(!redact_query(&u).contains("SECRET"));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
