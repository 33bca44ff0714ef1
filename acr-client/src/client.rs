//! [`Client`]: authenticated requests to any number of registries over one connection pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use acr_auth::{Authenticator, Credential, DockerConfig, Secret};
use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use oci_distribution_proto::{
    Body, ERROR_BODY_LIMIT, Operation, Registry, RequestInfo, Scheme, Transport,
    parse_challenges_from,
};
use oci_spec_types::Reference;

use crate::{Error, HyperTransport, PlainHttp, Repository, TransportConfig};

/// How a [`Client`] behaves. Plain data; build it with `..Default::default()`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Connections, TLS, retries.
    pub transport: TransportConfig,
    /// Blobs transferred at once by operations that move many (push 5 and pull 3 in ORAS).
    pub concurrency: usize,
    /// Blobs up to this size are uploaded in one request; larger ones in chunks.
    pub monolithic_limit: u64,
    /// Chunk size of chunked uploads (raised to a registry's `OCI-Chunk-Min-Length`).
    pub chunk_size: u64,
    /// Extra headers sent with every request to a registry's own origin (never to redirect
    /// targets such as blob storage, nor to token realms).
    pub headers: http::HeaderMap,
    /// Where chunked uploads of files save their position after every chunk, so a push that
    /// was killed resumes where the registry is instead of starting over. `None`: not saved.
    pub upload_state_dir: Option<std::path::PathBuf>,
    /// Requests in flight to one host at once (a download counts until its body is read).
    pub per_host_limit: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            transport: TransportConfig::default(),
            concurrency: 5,
            // ACR refuses monolithic bodies above about 20 MB with 413.
            monolithic_limit: 16 << 20,
            chunk_size: 64 << 20,
            headers: http::HeaderMap::new(),
            upload_state_dir: None,
            per_host_limit: 16,
        }
    }
}

/// The registry client: cheap to clone, safe to share across tasks.
///
/// ```no_run
/// # async fn example() -> Result<(), acr_client::Error> {
/// use acr_client::{Client, ClientConfig};
/// use oci_spec_types::MediaType;
///
/// let client = Client::new(ClientConfig::default())?;
/// let repo = client.repository(&"localhost:5000/hello".parse()?)?;
/// let layer = repo.push_bytes(MediaType::ImageLayer, b"hello".to_vec().into()).await?;
/// let back = repo.fetch_bytes(&layer).await?;
/// assert_eq!(&back[..], b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn Transport>,
    config: ClientConfig,
    credentials: Mutex<HashMap<String, Credential>>,
    docker_config: Mutex<Option<DockerConfig>>,
    authenticators: Mutex<HashMap<String, Arc<Authenticator>>>,
    host_limits: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    /// A client over hyper with `config`.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let transport = Arc::new(HyperTransport::new(config.transport.clone())?);
        Ok(Self::with_transport(transport, config))
    }

    /// A client over any [`Transport`] (another HTTP stack, a test double).
    pub fn with_transport(transport: Arc<dyn Transport>, config: ClientConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                transport,
                config,
                credentials: Mutex::default(),
                docker_config: Mutex::default(),
                authenticators: Mutex::default(),
                host_limits: Mutex::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The transport requests go through.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// Uses `credential` for `registry` (`host[:port]`) from now on.
    pub fn set_credential(&self, registry: &str, credential: Credential) {
        lock(&self.inner.credentials).insert(registry.to_owned(), credential);
        lock(&self.inner.authenticators).remove(registry);
    }

    /// Looks up registries without an explicit credential in this docker configuration.
    pub fn use_docker_config(&self, config: DockerConfig) {
        *lock(&self.inner.docker_config) = Some(config);
    }

    /// The authenticator for `registry`, made on first use from its credential.
    pub fn authenticator(&self, registry: &str) -> Result<Arc<Authenticator>, Error> {
        if let Some(auth) = lock(&self.inner.authenticators).get(registry) {
            return Ok(auth.clone());
        }
        let credential = self.credential_for(registry)?;
        let auth = Arc::new(Authenticator::new(credential));
        Ok(lock(&self.inner.authenticators)
            .entry(registry.to_owned())
            .or_insert(auth)
            .clone())
    }

    fn credential_for(&self, registry: &str) -> Result<Credential, Error> {
        if let Some(credential) = lock(&self.inner.credentials).get(registry) {
            return Ok(credential.clone());
        }
        let docker = lock(&self.inner.docker_config).clone();
        let Some(docker) = docker else {
            return Ok(Credential::Anonymous);
        };
        match docker.lookup(registry) {
            Ok(found) => Ok(found.map_or(Credential::Anonymous, |(stored, _)| {
                Credential::from_stored(stored)
            })),
            // A broken helper (e.g. `credsStore: desktop` without Docker Desktop) must not
            // stop everything: say so and use what the file itself holds.
            Err(e) => {
                tracing::warn!(
                    "{e}; using the credentials in {} instead",
                    docker.path().display()
                );
                Ok(docker
                    .lookup_file(registry)?
                    .map_or(Credential::Anonymous, Credential::from_stored))
            }
        }
    }

    /// The scheme used for `registry` under the transport configuration.
    pub fn scheme_for(&self, reference: &Reference) -> Scheme {
        match self.inner.config.transport.plain_http {
            PlainHttp::Always => Scheme::Http,
            PlainHttp::LoopbackOnly if reference.is_loopback_registry() => Scheme::Http,
            _ => Scheme::Https,
        }
    }

    /// The content client of `reference`'s repository.
    pub fn repository(&self, reference: &Reference) -> Result<Repository, Error> {
        let registry = Registry::for_reference(reference, self.scheme_for(reference))?;
        Ok(Repository::new(
            self.clone(),
            registry,
            reference.repository_only(),
        ))
    }

    /// Every repository name of `registry` (a reference to any repository on it names it),
    /// following `Link` pagination of `/v2/_catalog`.
    pub async fn catalog(&self, registry: &Reference) -> Result<Vec<String>, Error> {
        self.catalog_paged(registry, None).await
    }

    /// [`Client::catalog`], asking for pages of `page_size` names.
    pub async fn catalog_paged(
        &self,
        registry: &Reference,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let proto = self.registry(registry)?;
        let page = oci_distribution_proto::PageRequest {
            n: page_size,
            last: None,
        };
        let mut request = proto.catalog_request(&page)?;
        let mut names = Vec::new();
        loop {
            let uri = request.uri().clone();
            let response = self.send_collect(&proto, request, 16 << 20).await?;
            let page = proto.handle_catalog_response(&uri, &response)?;
            names.extend(page.repositories);
            match page.next {
                Some(next) => request = proto.catalog_next_request(&next)?,
                None => return Ok(names),
            }
        }
    }

    /// The protocol view of `reference`'s registry.
    pub fn registry(&self, reference: &Reference) -> Result<Registry, Error> {
        Ok(Registry::for_reference(
            reference,
            self.scheme_for(reference),
        )?)
    }

    /// Sends a request built by the protocol crate, authenticating as the registry asks: a
    /// cached token up front, and after a 401 one more try with a fresh one. The
    /// `Authorization` header only ever goes to the registry's own origin.
    pub async fn send(
        &self,
        registry: &Registry,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, Error> {
        let info = RequestInfo::of(&request).cloned();
        let scopes = info.as_ref().map(|i| i.scopes.clone()).unwrap_or_default();
        let operation = info.as_ref().map(|i| i.operation);
        let host = registry_host(registry);
        let same_origin =
            url::Url::parse(&request.uri().to_string()).is_ok_and(|u| registry.is_same_origin(&u));
        let auth = self.authenticator(&host)?;
        if same_origin {
            for (name, value) in &self.inner.config.headers {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let mut sent_cached = false;
        if same_origin && let Some(value) = auth.cached(&host, &scopes).await {
            set_authorization(&mut request, &value)?;
            sent_cached = true;
        }
        let replay = replayable(&request);
        let mut response = self.transport_send(request).await?;
        if sent_cached
            && matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
            )
        {
            // Some registries answer an expired or revoked token with 400 or 403 instead of a
            // 401 challenge: drop the token and ask again without it, once.
            let (parts, body) = response.into_parts();
            let bytes = body.collect(ERROR_BODY_LIMIT).await.unwrap_or_default();
            if names_bad_token(&parts.headers, &bytes)
                && let Some(again) = replay.as_ref().and_then(replayable)
            {
                auth.invalidate(&host, &scopes).await;
                let mut again = again;
                again.headers_mut().remove(AUTHORIZATION);
                return Box::pin(self.send(registry, again)).await;
            }
            response = Response::from_parts(parts, Body::Bytes(bytes));
        }
        if response.status() != StatusCode::UNAUTHORIZED || !same_origin {
            return Ok(response);
        }
        let challenges = parse_challenges_from(response.headers()).unwrap_or_default();
        if sent_cached {
            auth.invalidate(&host, &scopes).await;
        }
        let Some(mut again) = replay else {
            // A streamed body is gone; callers authenticate first (the upload's POST does).
            return Err(Error::from_proto_response(operation, response).await);
        };
        let Some(value) = auth
            .authorize(&host, &challenges, &scopes, self.inner.transport.as_ref())
            .await?
        else {
            return Ok(response);
        };
        set_authorization(&mut again, &value)?;
        // The refused answer holds this host's request slot: give it back before resending.
        drop(response);
        let response = self.transport_send(again).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            auth.invalidate(&host, &scopes).await;
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return Err(Error::Unauthorized {
                registry: host,
                credential: auth.credential().kind(),
                detail: (!challenge.is_empty()).then_some(challenge),
            });
        }
        Ok(response)
    }

    async fn transport_send(&self, request: Request<Body>) -> Result<Response<Body>, Error> {
        let url = request.uri().to_string();
        // At most `per_host_limit` requests to one host at a time, counting a response until
        // its body has been read (downloads hold their slot while they stream).
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let semaphore = lock(&self.inner.host_limits)
            .entry(host)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    self.inner.config.per_host_limit.max(1),
                ))
            })
            .clone();
        let permit = semaphore
            .acquire_owned()
            .await
            .map_err(|_| Error::Connection {
                url: url.clone(),
                message: "client closed".into(),
            })?;
        let response = self
            .inner
            .transport
            .send(request)
            .await
            .map_err(|e| Error::Connection {
                url,
                message: e.to_string(),
            })?;
        Ok(response.map(|body| match body {
            Body::Stream { stream, len } => Body::Stream {
                stream: Box::pin(HoldPermit {
                    stream,
                    _permit: permit,
                }),
                len,
            },
            other => other,
        }))
    }

    /// Sends a request and reads the whole (small) answer: manifests, lists, errors.
    pub(crate) async fn send_collect(
        &self,
        registry: &Registry,
        request: Request<Body>,
        limit: u64,
    ) -> Result<Response<Bytes>, Error> {
        let response = self.send(registry, request).await?;
        let limit = if response.status().is_success() {
            limit
        } else {
            ERROR_BODY_LIMIT
        };
        let (parts, body) = response.into_parts();
        let bytes = body.collect(limit).await?;
        Ok(Response::from_parts(parts, bytes))
    }
}

/// `host[:port]` of a registry, as in references (the key for credentials and tokens).
pub(crate) fn registry_host(registry: &Registry) -> String {
    let url = registry.base_url();
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether a 400/403 answer says the token itself is the problem (expired, invalid), as
/// opposed to a real permission or request error.
fn names_bad_token(headers: &http::HeaderMap, body: &[u8]) -> bool {
    let challenge = headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    challenge.contains("invalid_token")
        || [
            "token expired",
            "token has expired",
            "expired token",
            "invalid token",
            "token is expired",
            "token is invalid",
        ]
        .iter()
        .any(|needle| text.contains(needle))
}

fn set_authorization(request: &mut Request<Body>, value: &Secret) -> Result<(), Error> {
    let mut header =
        HeaderValue::from_str(value.expose()).map_err(|_| Error::InvalidCredential {
            reason: "the credential holds characters that cannot go in an HTTP header",
        })?;
    header.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, header);
    Ok(())
}

/// A copy of the request to send again after a challenge, when its body can be sent twice.
fn replayable(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    if let Some(info) = RequestInfo::of(request) {
        copy.extensions_mut().insert(info.clone());
    }
    Some(copy)
}

impl Error {
    /// The registry's error for a failed response, body read up to the error limit.
    pub(crate) async fn from_proto_response(
        operation: Option<Operation>,
        response: Response<Body>,
    ) -> Self {
        let (parts, body) = response.into_parts();
        let bytes = body.collect(ERROR_BODY_LIMIT).await.unwrap_or_default();
        let response = Response::from_parts(parts, bytes);
        Self::Protocol(oci_distribution_proto::Error::from_response(
            operation.unwrap_or(Operation::VersionCheck),
            &response,
        ))
    }
}

/// A response body that keeps its host's request slot until it is read or dropped.
struct HoldPermit {
    stream: oci_distribution_proto::ByteStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl futures_core::Stream for HoldPermit {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}
