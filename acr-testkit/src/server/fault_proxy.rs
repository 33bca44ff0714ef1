//! A fault-injecting reverse proxy in front of a real registry: the network and registry
//! misbehaviour a client must survive (cut connections, 5xx and 429, stalls, short, corrupt or
//! lying answers, a redirect to a storage host), on demand and counted.
//!
//! Two listeners: the proxy itself, and a "storage" origin (another port, so another origin for
//! clients) that redirected blob downloads go to. The storage origin serves the blob with the
//! proxy's own upstream credentials, as a signed storage URL would, and records whether a
//! client sent it an `Authorization` header (it never should).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::http;
use crate::registry::{Error, io_err};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
type ProxyResp = Response<ProxyBody>;

/// Most request-body bytes read (and discarded) before an injected status is answered.
const DRAIN_LIMIT: u64 = 256 << 20;

/// What the proxy does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer this status without forwarding (the request body is read and discarded first),
    /// with `Retry-After: <secs>` when given. 413 imitates ACR's answer to large bodies.
    Status {
        /// The HTTP status (500, 502, 503, 429, 413, ...).
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Read the request body without forwarding it, then answer nothing for this long (then
    /// 504): a network that swallowed the request, so the registry never saw it.
    Hang(Duration),
    /// Forward, then cut the connection after this many bytes of the response body.
    DropResponseAfter(u64),
    /// Read this many bytes of the request body, then cut the connection. With
    /// `forward_partial` the bytes were streamed to the registry first (which sees an aborted
    /// request); without, the registry never sees the request.
    DropRequestAfter {
        /// Bytes of the request body read before the cut.
        bytes: u64,
        /// Whether the registry got those bytes.
        forward_partial: bool,
    },
    /// Forward; after `after` bytes of the response body, send nothing for `duration`, then
    /// go on.
    Stall {
        /// Bytes sent before the stall.
        after: u64,
        /// How long nothing is sent.
        duration: Duration,
    },
    /// Forward; end the response body cleanly after this many bytes (`Content-Length` is
    /// removed, so the message is well formed but short).
    Truncate(u64),
    /// Forward; flip every bit of the response-body byte at this offset.
    Corrupt {
        /// Offset in the response body.
        offset: u64,
    },
    /// Forward with this `Content-Length` instead of the real one (the body is unchanged).
    ContentLength(u64),
    /// Forward with this `Docker-Content-Digest` instead of the registry's.
    DockerContentDigest(String),
    /// Forward and append this many bytes of padding to the response body (`Content-Length`
    /// removed).
    Pad(u64),
    /// `GET`: answer `307 Temporary Redirect` to the storage origin, which serves the same
    /// content. Other methods are forwarded unchanged.
    RedirectToStorage,
    /// Forward without the request's `Range` header: a server that ignores ranges and
    /// answers `200` with the whole body.
    IgnoreRange,
}

/// One programmed fault: an action, which requests it applies to, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    action: FaultAction,
    method: Option<String>,
    path_contains: Option<String>,
    skip: u32,
    times: Option<u32>,
}

impl Fault {
    /// `action` for the next request (any method, any path), once.
    pub fn new(action: FaultAction) -> Self {
        Self {
            action,
            method: None,
            path_contains: None,
            skip: 0,
            times: Some(1),
        }
    }

    /// Answer `status` (with `Retry-After: retry_after` seconds when given).
    pub fn status(status: u16, retry_after: Option<u64>) -> Self {
        Self::new(FaultAction::Status {
            status,
            retry_after,
        })
    }

    /// Only requests with this method (`"GET"`, `"PATCH"`, ...; case-insensitive).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path and query contain `text` (such as `"/blobs/"`).
    pub fn path(mut self, text: &str) -> Self {
        self.path_contains = Some(text.to_owned());
        self
    }

    /// [`Fault::method`] and [`Fault::path`] together.
    pub fn on(self, method: &str, path_contains: &str) -> Self {
        self.method(method).path(path_contains)
    }

    /// Let the first `n` matching requests through untouched.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Apply to `n` matching requests (after the skipped ones).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Apply to every matching request until the plan is cleared.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Which listener saw a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listener {
    /// The proxy in front of the registry.
    Proxy,
    /// The storage origin redirected downloads go to.
    Storage,
}

/// A request the proxy saw, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeenRequest {
    /// Which listener.
    pub listener: Listener,
    /// The method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Content-Range` header, if any.
    pub content_range: Option<String>,
    /// Whether an `Authorization` header arrived.
    pub authorization: bool,
    /// The fault applied to it, if any.
    pub fault: Option<FaultAction>,
}

/// Counters of a [`FaultProxy`] (see [`FaultPlan::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Requests the proxy listener received.
    pub requests: u64,
    /// Requests forwarded to the registry (including ones whose answer was then altered).
    pub forwarded: u64,
    /// Requests a fault was applied to.
    pub injected: u64,
    /// Request-body bytes forwarded to the registry (what an upload really sent there).
    pub request_body_bytes: u64,
    /// Requests the storage origin received.
    pub storage_requests: u64,
    /// Of those, how many carried an `Authorization` header (a leak: should stay 0).
    pub storage_requests_with_authorization: u64,
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    skip_left: u32,
    times_left: Option<u32>,
}

#[derive(Debug, Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<SeenRequest>>,
    requests: AtomicU64,
    forwarded: AtomicU64,
    injected: AtomicU64,
    request_body_bytes: Arc<AtomicU64>,
    storage_requests: AtomicU64,
    storage_with_authorization: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the proxy down with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The fault for this request: the first rule that matches and has uses left.
    fn take(&self, method: &Method, path: &str) -> Option<FaultAction> {
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut() {
            if rule.times_left == Some(0) || !rule.fault.matches(method, path) {
                continue;
            }
            if rule.skip_left > 0 {
                rule.skip_left -= 1;
                continue;
            }
            if let Some(left) = &mut rule.times_left {
                *left -= 1;
            }
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(rule.fault.action.clone());
        }
        None
    }
}

/// A cloneable handle to a running [`FaultProxy`]'s plan, log and counters; changes apply to
/// the next request.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    shared: Arc<Shared>,
}

impl FaultPlan {
    /// Adds a fault after those already planned (the first matching one applies).
    pub fn add(&self, fault: Fault) {
        let rule = Rule {
            skip_left: fault.skip,
            times_left: fault.times,
            fault,
        };
        lock(&self.shared.rules).push(rule);
    }

    /// Removes every planned fault (the log and counters are kept).
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Whether every planned fault with a bounded count has been used up.
    pub fn exhausted(&self) -> bool {
        lock(&self.shared.rules)
            .iter()
            .all(|r| r.times_left.is_none_or(|n| n == 0))
    }

    /// The requests seen so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.log).clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyStats {
            requests: get(&s.requests),
            forwarded: get(&s.forwarded),
            injected: get(&s.injected),
            request_body_bytes: get(&s.request_body_bytes),
            storage_requests: get(&s.storage_requests),
            storage_requests_with_authorization: get(&s.storage_with_authorization),
        }
    }

    /// Forgets the log and sets every counter back to zero.
    pub fn reset_stats(&self) {
        let s = &self.shared;
        lock(&s.log).clear();
        for c in [
            &s.requests,
            &s.forwarded,
            &s.injected,
            &*s.request_body_bytes,
            &s.storage_requests,
            &s.storage_with_authorization,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

struct State {
    shared: Arc<Shared>,
    upstream: String,
    upstream_authorization: Option<HeaderValue>,
    url: String,
    storage_url: String,
    client: Client<HttpConnector, ProxyBody>,
}

/// A running fault proxy (stopped on drop). Point a client at [`FaultProxy::host`] instead of
/// the registry; program faults through [`FaultProxy::plan`].
///
/// ```no_run
/// use acr_testkit::{Fault, FaultAction, FaultProxy, Registry, RegistryOptions};
/// let registry = Registry::start(RegistryOptions::default())?;
/// let proxy = FaultProxy::start(&registry.base_url(), None)?;
/// proxy.plan().add(Fault::status(503, Some(1)).on("GET", "/manifests/").times(2));
/// proxy.plan().add(Fault::new(FaultAction::DropResponseAfter(1000)).on("GET", "/blobs/"));
/// println!("use {}", proxy.host());
/// # Ok::<(), acr_testkit::Error>(())
/// ```
pub struct FaultProxy {
    state: Arc<State>,
    addr: SocketAddr,
    storage_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.state.url)
            .field("storage_url", &self.state.storage_url)
            .field("upstream", &self.state.upstream)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a plain-HTTP proxy on a free loopback port in front of `upstream`
    /// (`http://host:port`, such as [`crate::Registry::base_url`]). `upstream_authorization`
    /// is the `Authorization` value the storage origin uses to fetch redirected blobs (for a
    /// registry that needs credentials; the client's own header is never forwarded there).
    pub fn start(upstream: &str, upstream_authorization: Option<&str>) -> Result<Self, Error> {
        let upstream = upstream.trim_end_matches('/').to_owned();
        if !upstream.starts_with("http://") {
            return Err(Error::Server(format!(
                "the fault proxy forwards to plain-HTTP registries only; got {upstream:?}"
            )));
        }
        let upstream_authorization = upstream_authorization
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|e| {
                Error::Server(format!(
                    "the upstream Authorization is not header text: {e}"
                ))
            })?;
        let (listener, addr) = http::bind(None)?;
        let (storage_listener, storage_addr) = http::bind(None)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build_http();
        let state = Arc::new(State {
            shared: Arc::new(Shared::default()),
            upstream,
            upstream_authorization,
            url: format!("http://{addr}"),
            storage_url: format!("http://{storage_addr}"),
            client,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("acr-testkit-fault-proxy")
            .enable_all()
            .build()
            .map_err(io_err("starting a tokio runtime for the fault proxy"))?;
        let (listener, storage_listener) = {
            let _guard = runtime.enter();
            let register = |l: std::net::TcpListener| {
                l.set_nonblocking(true)
                    .map_err(io_err("configuring the fault proxy's socket"))?;
                tokio::net::TcpListener::from_std(l)
                    .map_err(io_err("registering the fault proxy's socket with tokio"))
            };
            (register(listener)?, register(storage_listener)?)
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::Builder::new()
            .name("acr-testkit-fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = rx => {}
                        () = accept_loop(listener, serving.clone(), Listener::Proxy) => {}
                        () = accept_loop(storage_listener, serving, Listener::Storage) => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(io_err("spawning the fault proxy thread"))?;
        Ok(Self {
            state,
            addr,
            storage_addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// `127.0.0.1:<port>`: the registry host to put in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<other port>`: the storage origin of redirected downloads.
    pub fn storage_url(&self) -> &str {
        &self.state.storage_url
    }

    /// The storage origin's socket address.
    pub fn storage_addr(&self) -> SocketAddr {
        self.storage_addr
    }

    /// The plan, log and counters handle.
    pub fn plan(&self) -> FaultPlan {
        FaultPlan {
            shared: self.state.shared.clone(),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>, which: Listener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            // An `Err` from the service makes hyper drop the connection: that is how faults
            // cut requests.
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    match which {
                        Listener::Proxy => handle(state, req).await,
                        Listener::Storage => Ok::<_, Dropped>(storage(state, req).await),
                    }
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn header_text(headers: &HeaderMap, name: impl hyper::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn text_response(status: StatusCode, text: String) -> ProxyResp {
    let len = text.len();
    let mut resp = Response::new(full(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn boxed(e: hyper::Error) -> BoxError {
    Box::new(e)
}

fn full(bytes: Bytes) -> ProxyBody {
    http_body_util::Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// The service's error: hyper drops the connection.
#[derive(Debug)]
struct Dropped(String);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Dropped {}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<ProxyResp, Dropped> {
    let shared = &state.shared;
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let fault = shared.take(&method, &path);
    lock(&shared.log).push(SeenRequest {
        listener: Listener::Proxy,
        method: method.to_string(),
        path: path.clone(),
        range: header_text(req.headers(), hyper::header::RANGE),
        content_range: header_text(req.headers(), "content-range"),
        authorization: req.headers().contains_key(AUTHORIZATION),
        fault: fault.clone(),
    });
    match fault {
        Some(FaultAction::Hang(duration)) => {
            let mut body = req.into_body();
            while let Some(Ok(_)) = body.frame().await {}
            tokio::time::sleep(duration).await;
            Ok(text_response(
                StatusCode::GATEWAY_TIMEOUT,
                "acr-testkit fault proxy: the request was swallowed\n".to_owned(),
            ))
        }
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => {
            // Read the body first, so the client gets the answer and not a broken pipe.
            let mut body = req.into_body();
            let mut read = 0u64;
            while read < DRAIN_LIMIT {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    Some(Err(_)) | None => break,
                }
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = text_response(
                status,
                format!("acr-testkit fault proxy: injected {status}\n"),
            );
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(resp)
        }
        Some(FaultAction::DropRequestAfter {
            bytes,
            forward_partial: false,
        }) => {
            let mut body = req.into_body();
            let mut read = 0u64;
            while read < bytes {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    Some(Err(_)) | None => break,
                }
            }
            Err(Dropped(format!(
                "fault: connection dropped after {read} request-body bytes"
            )))
        }
        Some(FaultAction::DropRequestAfter {
            bytes,
            forward_partial: true,
        }) => {
            let cut = Shaping {
                cut: Some((bytes, Cut::Fail)),
                ..Shaping::default()
            };
            // The registry sees an aborted request; the client sees its connection dropped.
            let _ = forward(&state, req, cut).await;
            Err(Dropped(format!(
                "fault: connection dropped after {bytes} request-body bytes"
            )))
        }
        Some(FaultAction::RedirectToStorage) if method == Method::GET => {
            let mut resp = text_response(StatusCode::TEMPORARY_REDIRECT, String::new());
            let location = format!(
                "{}/storage{path}{}sig=acr-testkit-signature",
                state.storage_url,
                if path.contains('?') { '&' } else { '?' }
            );
            if let Ok(value) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(hyper::header::LOCATION, value);
            }
            Ok(resp)
        }
        Some(FaultAction::IgnoreRange) => {
            let mut req = req;
            req.headers_mut().remove(hyper::header::RANGE);
            match forward(&state, req, Shaping::default()).await {
                Ok(resp) => Ok(alter(&state, resp, None)),
                Err(resp) => Ok(resp),
            }
        }
        other => {
            let resp = match forward(&state, req, Shaping::default()).await {
                Ok(resp) => resp,
                Err(resp) => return Ok(resp),
            };
            Ok(alter(&state, resp, other.as_ref()))
        }
    }
}

/// Forwards `req` to the registry, streaming both bodies (the request body shaped by
/// `request_shaping` and counted). `Err` is a ready 502 answer.
async fn forward(
    state: &State,
    mut req: Request<Incoming>,
    request_shaping: Shaping,
) -> Result<Response<Incoming>, ProxyResp> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: Uri = format!("{}{path}", state.upstream).parse().map_err(|e| {
        text_response(
            StatusCode::BAD_REQUEST,
            format!("acr-testkit fault proxy: unusable path {path:?}: {e}\n"),
        )
    })?;
    http::strip_hop_by_hop(req.headers_mut());
    // hyper sets the upstream's Host from the URI; Locations are rewritten on the way back.
    req.headers_mut().remove(HOST);
    *req.uri_mut() = uri;
    *req.version_mut() = hyper::Version::HTTP_11;
    let (parts, body) = req.into_parts();
    let body = Shaped::new(
        body.map_err(boxed).boxed_unsync(),
        Shaping {
            counter: Some(state.shared.request_body_bytes.clone()),
            ..request_shaping
        },
    )
    .boxed_unsync();
    state.shared.forwarded.fetch_add(1, Ordering::SeqCst);
    state
        .client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|e| {
            text_response(
                StatusCode::BAD_GATEWAY,
                format!(
                    "acr-testkit fault proxy: forwarding to {} failed: {e}\n",
                    state.upstream
                ),
            )
        })
}

/// Applies a response fault and rewrites `Location` to point at the proxy.
fn alter(state: &State, resp: Response<Incoming>, fault: Option<&FaultAction>) -> ProxyResp {
    let (mut parts, body) = resp.into_parts();
    http::strip_hop_by_hop(&mut parts.headers);
    if let Some(location) = parts.headers.get(hyper::header::LOCATION)
        && let Ok(text) = location.to_str()
        && let Some(rest) = text.strip_prefix(&state.upstream)
        && let Ok(value) = HeaderValue::from_str(&format!("{}{rest}", state.url))
    {
        parts.headers.insert(hyper::header::LOCATION, value);
    }
    let mut shaping = Shaping::default();
    match fault {
        Some(FaultAction::DropResponseAfter(n)) => shaping.cut = Some((*n, Cut::Fail)),
        Some(FaultAction::Stall { after, duration }) => {
            shaping.cut = Some((*after, Cut::Stall(*duration)));
        }
        Some(FaultAction::Truncate(n)) => {
            parts.headers.remove(CONTENT_LENGTH);
            shaping.cut = Some((*n, Cut::End));
        }
        Some(FaultAction::Corrupt { offset }) => shaping.corrupt = Some(*offset),
        Some(FaultAction::ContentLength(n)) => {
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(*n));
            // hyper drops a response that ends short of its Content-Length unsent: hold the
            // end back so the client gets the lie, and sees the connection drop later.
            shaping.linger = Some(Duration::from_secs(30));
        }
        Some(FaultAction::DockerContentDigest(digest)) => {
            if let Ok(value) = HeaderValue::from_str(digest) {
                parts
                    .headers
                    .insert(HeaderName::from_static("docker-content-digest"), value);
            }
        }
        Some(FaultAction::Pad(n)) => {
            parts.headers.remove(CONTENT_LENGTH);
            shaping.pad = *n;
        }
        _ => {}
    }
    let body = Shaped::new(body.map_err(boxed).boxed_unsync(), shaping);
    Response::from_parts(parts, body.boxed_unsync())
}

/// The storage origin: `GET /storage/<registry path>?...` serves that registry path with the
/// proxy's own credentials, like a signed storage URL.
async fn storage(state: Arc<State>, req: Request<Incoming>) -> ProxyResp {
    let shared = &state.shared;
    shared.storage_requests.fetch_add(1, Ordering::SeqCst);
    let authorization = req.headers().contains_key(AUTHORIZATION);
    if authorization {
        shared
            .storage_with_authorization
            .fetch_add(1, Ordering::SeqCst);
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    lock(&shared.log).push(SeenRequest {
        listener: Listener::Storage,
        method: req.method().to_string(),
        path: path.clone(),
        range: header_text(req.headers(), hyper::header::RANGE),
        content_range: None,
        authorization,
        fault: None,
    });
    let Some(registry_path) = path
        .strip_prefix("/storage")
        .filter(|_| path.contains("sig=acr-testkit-signature"))
    else {
        return text_response(
            StatusCode::FORBIDDEN,
            "acr-testkit storage: unsigned or unknown URL\n".into(),
        );
    };
    // Drop the signature from the registry path.
    let registry_path = registry_path
        .replace("?sig=acr-testkit-signature", "")
        .replace("&sig=acr-testkit-signature", "");
    let Ok(uri) = format!("{}{registry_path}", state.upstream).parse::<Uri>() else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "acr-testkit storage: unusable path\n".into(),
        );
    };
    let mut upstream = Request::builder().method(req.method()).uri(uri);
    if let Some(range) = req.headers().get(hyper::header::RANGE) {
        upstream = upstream.header(hyper::header::RANGE, range);
    }
    if let Some(auth) = &state.upstream_authorization {
        upstream = upstream.header(AUTHORIZATION, auth);
    }
    let Ok(upstream) = upstream.body(full(Bytes::new())) else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "acr-testkit storage: unusable request\n".into(),
        );
    };
    match state.client.request(upstream).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            http::strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.map_err(boxed).boxed_unsync())
        }
        Err(e) => text_response(
            StatusCode::BAD_GATEWAY,
            format!("acr-testkit storage: fetching from the registry failed: {e}\n"),
        ),
    }
}

/// What happens when a shaped body reaches its cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Fail the body: the connection is dropped.
    Fail,
    /// End the body cleanly.
    End,
    /// Send nothing for a while, then go on.
    Stall(Duration),
}

#[derive(Debug, Default)]
struct Shaping {
    cut: Option<(u64, Cut)>,
    corrupt: Option<u64>,
    pad: u64,
    /// Wait this long at the end of the body, then fail it.
    linger: Option<Duration>,
    counter: Option<Arc<AtomicU64>>,
}

/// A body passed through with a fault applied at a byte offset.
struct Shaped {
    inner: ProxyBody,
    shaping: Shaping,
    pos: u64,
    /// Bytes held back at a stall.
    held: Option<Bytes>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    inner_done: bool,
    done: bool,
}

impl Shaped {
    fn new(inner: ProxyBody, shaping: Shaping) -> Self {
        Self {
            inner,
            shaping,
            pos: 0,
            held: None,
            sleep: None,
            inner_done: false,
            done: false,
        }
    }

    /// Counts, corrupts and cuts one chunk; what is past the cut is held back.
    fn emit(&mut self, mut data: Bytes) -> Bytes {
        if let Some((at, _)) = self.shaping.cut
            && self.pos < at
            && self.pos + data.len() as u64 > at
        {
            let keep = (at - self.pos) as usize;
            let rest = data.split_off(keep);
            self.held = Some(rest);
        }
        if let Some(offset) = self.shaping.corrupt
            && offset >= self.pos
            && offset < self.pos + data.len() as u64
        {
            let mut copy = BytesMut::from(&data[..]);
            let i = (offset - self.pos) as usize;
            if let Some(byte) = copy.get_mut(i) {
                *byte ^= 0xFF;
            }
            data = copy.freeze();
        }
        self.pos += data.len() as u64;
        if let Some(counter) = &self.shaping.counter {
            counter.fetch_add(data.len() as u64, Ordering::SeqCst);
        }
        data
    }
}

impl hyper::body::Body for Shaped {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some((at, cut)) = this.shaping.cut
                && this.pos >= at
            {
                match cut {
                    Cut::Fail => {
                        this.done = true;
                        return Poll::Ready(Some(Err(format!(
                            "fault: connection dropped after {at} body bytes"
                        )
                        .into())));
                    }
                    Cut::End => {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                    Cut::Stall(duration) => {
                        let sleep = this
                            .sleep
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep(duration)));
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        this.shaping.cut = None;
                        continue;
                    }
                }
            }
            if let Some(held) = this.held.take() {
                let data = this.emit(held);
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.inner_done {
                if this.shaping.pad > 0 {
                    let n = this.shaping.pad.min(64 * 1024);
                    this.shaping.pad -= n;
                    let data = this.emit(Bytes::from(vec![b' '; n as usize]));
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if let Some(linger) = this.shaping.linger {
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(linger)));
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.done = true;
                    return Poll::Ready(Some(Err(
                        "fault: the body ended before its Content-Length".into(),
                    )));
                }
                this.done = true;
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.inner_done = true,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let data = this.emit(data);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // Trailers: passed on as they are.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown on purpose: hyper then frames the body by the (possibly altered)
        // Content-Length header, or chunked without one.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_skip_count_and_match() {
        let shared = Shared::default();
        let plan = FaultPlan {
            shared: Arc::new(shared),
        };
        plan.add(
            Fault::status(503, None)
                .on("patch", "/blobs/")
                .skip(1)
                .times(2),
        );
        let s = &plan.shared;
        assert_eq!(s.take(&Method::GET, "/v2/a/blobs/x"), None);
        assert_eq!(s.take(&Method::PATCH, "/v2/a/blobs/uploads/1"), None);
        assert!(s.take(&Method::PATCH, "/v2/a/blobs/uploads/1").is_some());
        assert!(!plan.exhausted());
        assert!(s.take(&Method::PATCH, "/v2/a/blobs/uploads/1").is_some());
        assert_eq!(s.take(&Method::PATCH, "/v2/a/blobs/uploads/1"), None);
        assert!(plan.exhausted());
        assert_eq!(plan.stats().injected, 2);
    }
}
