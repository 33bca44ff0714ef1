//! [`Registry`]: where requests go, and the request builders for every endpoint.
//!
//! The interpreters of the responses live next to their domain (`manifest`, `blob`, `upload`,
//! `tags`) as further `impl Registry` blocks, so each builder has its `handle_…` twin.

use std::fmt;

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use http::{HeaderName, HeaderValue, Method, Request};
use oci_spec_types::{Digest, ManifestBytes, MediaType, Reference};
use url::Url;

use crate::{Action, Body, Error, PageRequest, Scope};

/// Plain HTTP or HTTPS. There is no default: loopback registries usually speak HTTP and
/// everything else HTTPS, and that choice belongs to the caller (see
/// [`Reference::is_loopback_registry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`: only for registries on a trusted network, such as a local test registry.
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// What a request does; carried in [`RequestInfo`] and in errors, for context and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `GET /v2/`.
    VersionCheck,
    /// `GET /v2/<name>/manifests/<reference>`.
    GetManifest,
    /// `HEAD /v2/<name>/manifests/<reference>`.
    HeadManifest,
    /// `PUT /v2/<name>/manifests/<reference>`.
    PutManifest,
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest,
    /// `GET /v2/<name>/blobs/<digest>`.
    GetBlob,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    HeadBlob,
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob,
    /// `POST /v2/<name>/blobs/uploads/`.
    StartUpload,
    /// `POST /v2/<name>/blobs/uploads/?digest=<digest>` with the blob as body.
    MonolithicUpload,
    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`.
    MountBlob,
    /// `PATCH <location>` with a chunk.
    UploadChunk,
    /// `GET <location>`.
    UploadStatus,
    /// `PUT <location>&digest=<digest>`.
    FinishUpload,
    /// `DELETE <location>`.
    CancelUpload,
    /// `GET /v2/<name>/tags/list`.
    ListTags,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers,
}

impl Operation {
    /// The HTTP method of the request.
    pub fn method(self) -> Method {
        match self {
            Self::VersionCheck
            | Self::GetManifest
            | Self::GetBlob
            | Self::UploadStatus
            | Self::ListTags
            | Self::Catalog
            | Self::Referrers => Method::GET,
            Self::HeadManifest | Self::HeadBlob => Method::HEAD,
            Self::PutManifest | Self::FinishUpload => Method::PUT,
            Self::DeleteManifest | Self::DeleteBlob | Self::CancelUpload => Method::DELETE,
            Self::StartUpload | Self::MonolithicUpload | Self::MountBlob => Method::POST,
            Self::UploadChunk => Method::PATCH,
        }
    }

    /// Whether sending the request twice has the same effect as once, so a transport may
    /// retry it after a failure. A `PATCH` appends and a `POST` opens a new session: neither is.
    pub fn is_idempotent(self) -> bool {
        !matches!(
            self,
            Self::UploadChunk | Self::StartUpload | Self::MonolithicUpload | Self::MountBlob
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VersionCheck => "checking the registry API version",
            Self::GetManifest => "fetching the manifest",
            Self::HeadManifest => "checking the manifest",
            Self::PutManifest => "pushing the manifest",
            Self::DeleteManifest => "deleting the manifest",
            Self::GetBlob => "fetching the blob",
            Self::HeadBlob => "checking the blob",
            Self::DeleteBlob => "deleting the blob",
            Self::StartUpload => "starting the blob upload",
            Self::MonolithicUpload => "uploading the blob",
            Self::MountBlob => "mounting the blob",
            Self::UploadChunk => "uploading a blob chunk",
            Self::UploadStatus => "checking the upload status",
            Self::FinishUpload => "completing the blob upload",
            Self::CancelUpload => "cancelling the blob upload",
            Self::ListTags => "listing tags",
            Self::Catalog => "listing repositories",
            Self::Referrers => "listing referrers",
        })
    }
}

/// What every built request carries in its extensions: the operation and the token scopes the
/// registry will ask for, so an authenticating transport can fetch a token before sending.
///
/// ```
/// use oci_distribution_proto::{Operation, Registry, RequestInfo, Scheme};
/// let reference = "localhost:5000/demo:v1".parse()?;
/// let registry = Registry::for_reference(&reference, Scheme::Http)?;
/// let from = "localhost:5000/library/alpine".parse()?;
/// let digest = oci_distribution_proto::types::Digest::sha256_of(b"layer");
/// let request = registry.mount_request(&reference, &digest, &from)?;
/// let info = RequestInfo::of(&request).expect("every built request has one");
/// assert_eq!(info.operation, Operation::MountBlob);
/// let scopes: Vec<String> = info.scopes.iter().map(ToString::to_string).collect();
/// assert_eq!(scopes, ["repository:demo:pull,push", "repository:library/alpine:pull"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// What the request does.
    pub operation: Operation,
    /// The scopes a bearer token needs for it; empty for `GET /v2/`.
    pub scopes: Vec<Scope>,
}

impl RequestInfo {
    /// The info of a request built by this crate.
    pub fn of<B>(request: &Request<B>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }
}

/// A byte range of a blob, for a ranged `GET` (`Range: bytes=start-end`, `end` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte, inclusive; `None` for "to the end".
    pub end: Option<u64>,
}

impl ByteRange {
    /// From `start` to the end of the blob, to resume a download.
    pub fn from_offset(start: u64) -> Self {
        Self { start, end: None }
    }

    /// `start..=end`; `None` when `end < start`.
    pub fn inclusive(start: u64, end: u64) -> Option<Self> {
        (end >= start).then_some(Self {
            start,
            end: Some(end),
        })
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "bytes={}-{end}", self.start),
            None => write!(f, "bytes={}-", self.start),
        }
    }
}

/// A registry endpoint: scheme and host, the base of every request URL.
///
/// It builds the request for each endpoint of the distribution spec and interprets the
/// responses (`…_request` and `handle_…_response` pairs). Only the repository and the tag or
/// digest of the [`Reference`]s passed in are used; requests always go to this registry.
///
/// ```
/// use oci_distribution_proto::{Registry, Scheme};
/// let registry = Registry::new(Scheme::Https, "example.azurecr.io")?;
/// let request = registry.version_request()?;
/// assert_eq!(request.uri(), "https://example.azurecr.io/v2/");
/// # Ok::<(), oci_distribution_proto::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    base: Url,
}

impl Registry {
    /// A registry at `host` (`host[:port]`, as in a reference).
    pub fn new(scheme: Scheme, host: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidRegistry {
            host: host.to_owned(),
            reason: reason.to_owned(),
        };
        if host.is_empty() {
            return Err(invalid("it is empty"));
        }
        // Anything that would make the string more than an authority is refused up front,
        // so `user@host` or `host/path` cannot smuggle credentials or a path prefix in.
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c))
        {
            return Err(invalid(
                "it may not contain a path, query, user name, spaces or control characters",
            ));
        }
        let base = Url::parse(&format!("{}://{host}/", scheme.as_str()))
            .map_err(|e| invalid(&e.to_string()))?;
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host name"));
        }
        Ok(Self { base })
    }

    /// The registry of `reference`, reached with `scheme`.
    pub fn for_reference(reference: &Reference, scheme: Scheme) -> Result<Self, Error> {
        Self::new(scheme, reference.registry())
    }

    /// The base URL, such as `http://localhost:5000/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether `url` is on this registry (same scheme, host and port).
    pub fn is_same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// `GET /v2/`: whether the registry speaks the distribution API, and how it wants
    /// clients to authenticate (a `401` carries the challenge).
    pub fn version_request(&self) -> Result<Request<Body>, Error> {
        let url = self.url(Operation::VersionCheck, &[""])?;
        self.build(
            Operation::VersionCheck,
            url,
            Vec::new(),
            Vec::new(),
            Body::Empty,
        )
    }

    /// Interprets the answer to [`Registry::version_request`]: `Ok` on `200`. A `401` is an
    /// [`Error::Registry`] whose challenge says how to authenticate.
    pub fn handle_version_response<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
    ) -> Result<(), Error> {
        if response.status() == http::StatusCode::OK {
            Ok(())
        } else {
            Err(Error::from_response(Operation::VersionCheck, response))
        }
    }

    /// `GET` the manifest `reference` names (by digest when it has one, else by tag), with an
    /// `Accept` list of every manifest type this crate parses: registries refuse to serve a
    /// manifest whose type is not accepted (docker-registry answers `404 MANIFEST_UNKNOWN`).
    pub fn manifest_get_request(&self, reference: &Reference) -> Result<Request<Body>, Error> {
        self.manifest_read_request(Operation::GetManifest, reference)
    }

    /// `HEAD` the manifest `reference` names: its digest, media type and size, without the body.
    pub fn manifest_head_request(&self, reference: &Reference) -> Result<Request<Body>, Error> {
        self.manifest_read_request(Operation::HeadManifest, reference)
    }

    fn manifest_read_request(
        &self,
        operation: Operation,
        reference: &Reference,
    ) -> Result<Request<Body>, Error> {
        let target = target_of(operation, reference)?;
        let url = self.repo_url(operation, reference, &["manifests", target])?;
        let accept = MediaType::MANIFEST_TYPES
            .iter()
            .map(MediaType::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let accept = header_value(operation, &accept)?;
        self.build(
            operation,
            url,
            pull(reference),
            vec![(ACCEPT, accept)],
            Body::Empty,
        )
    }

    /// `PUT` a manifest under the tag of `reference`, or under its digest when it has no tag
    /// (the manifest's own digest when it has neither). The body is exactly
    /// [`ManifestBytes::bytes`] and `Content-Type` its media type.
    ///
    /// A digest in `reference` must be the manifest's own.
    pub fn manifest_put_request(
        &self,
        reference: &Reference,
        manifest: &ManifestBytes,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::PutManifest;
        if let Some(digest) = reference.digest()
            && digest != manifest.digest()
        {
            return Err(Error::InvalidRequest {
                operation,
                reason: format!(
                    "the reference pins {digest} but the manifest's digest is {}; drop the digest from the reference or push the matching manifest",
                    manifest.digest()
                ),
            });
        }
        let target = reference
            .tag()
            .unwrap_or_else(|| manifest.digest().as_str());
        let url = self.repo_url(operation, reference, &["manifests", target])?;
        let content_type = header_value(operation, manifest.media_type().as_str())?;
        self.build(
            operation,
            url,
            pull_push(reference),
            vec![(CONTENT_TYPE, content_type)],
            Body::from(manifest.bytes().to_vec()),
        )
    }

    /// `DELETE` the manifest `reference` names. Registries generally delete by digest only
    /// (docker-registry answers `400 DIGEST_INVALID` for a tag); deleting by digest also
    /// removes every tag pointing at it.
    pub fn manifest_delete_request(&self, reference: &Reference) -> Result<Request<Body>, Error> {
        let operation = Operation::DeleteManifest;
        let target = target_of(operation, reference)?;
        let url = self.repo_url(operation, reference, &["manifests", target])?;
        self.build(operation, url, delete(reference), Vec::new(), Body::Empty)
    }

    /// `GET` a blob of the repository of `reference`, optionally a byte range of it.
    ///
    /// Registries may answer `307` to a storage URL (ACR does); the transport follows it
    /// without the registry's `Authorization` header.
    pub fn blob_get_request(
        &self,
        reference: &Reference,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::GetBlob;
        let url = self.repo_url(operation, reference, &["blobs", digest.as_str()])?;
        let mut headers = Vec::new();
        if let Some(range) = range {
            headers.push((RANGE, header_value(operation, &range.to_string())?));
        }
        self.build(operation, url, pull(reference), headers, Body::Empty)
    }

    /// `HEAD` a blob: whether it exists in the repository, and its size.
    pub fn blob_head_request(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::HeadBlob;
        let url = self.repo_url(operation, reference, &["blobs", digest.as_str()])?;
        self.build(operation, url, pull(reference), Vec::new(), Body::Empty)
    }

    /// `DELETE` a blob from the repository (other repositories keep their link to it).
    pub fn blob_delete_request(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::DeleteBlob;
        let url = self.repo_url(operation, reference, &["blobs", digest.as_str()])?;
        self.build(operation, url, delete(reference), Vec::new(), Body::Empty)
    }

    /// `POST /v2/<name>/blobs/uploads/`: opens an upload session (see
    /// [`Registry::handle_upload_start_response`]).
    pub fn upload_start_request(&self, reference: &Reference) -> Result<Request<Body>, Error> {
        let operation = Operation::StartUpload;
        let url = self.uploads_url(operation, reference)?;
        self.build(
            operation,
            url,
            pull_push(reference),
            Vec::new(),
            Body::Empty,
        )
    }

    /// `POST /v2/<name>/blobs/uploads/?digest=<digest>` with the whole blob: a single-request
    /// upload. Registries may ignore the body and open a session instead (docker-registry
    /// does, answering `202`); [`Registry::handle_monolithic_response`] then returns the session,
    /// to be finished with a `PUT` of the body.
    pub fn upload_monolithic_request(
        &self,
        reference: &Reference,
        digest: &Digest,
        blob: Body,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::MonolithicUpload;
        let mut url = self.uploads_url(operation, reference)?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        self.build(
            operation,
            url,
            pull_push(reference),
            vec![(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
            blob,
        )
    }

    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`: links a blob of another
    /// repository on the same registry without uploading it. Needs `pull` on `from` too.
    /// When the registry cannot mount, it opens an upload session instead (`202`).
    pub fn mount_request(
        &self,
        reference: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::MountBlob;
        let mut url = self.uploads_url(operation, reference)?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from.repository());
        let mut scopes = pull_push(reference);
        scopes.push(Scope::repository(from.repository(), &[Action::Pull]));
        self.build(operation, url, scopes, Vec::new(), Body::Empty)
    }

    /// `GET /v2/<name>/tags/list`, optionally one page of it.
    pub fn tags_request(
        &self,
        reference: &Reference,
        page: &PageRequest,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::ListTags;
        let mut url = self.repo_url(operation, reference, &["tags", "list"])?;
        page.apply_to(&mut url);
        self.build(operation, url, pull(reference), Vec::new(), Body::Empty)
    }

    /// The next page of a tag listing, from the URL of [`crate::TagList::next`].
    pub fn tags_next_request(
        &self,
        reference: &Reference,
        next: &Url,
    ) -> Result<Request<Body>, Error> {
        let url = self.own_url(next)?;
        self.build(
            Operation::ListTags,
            url,
            pull(reference),
            Vec::new(),
            Body::Empty,
        )
    }

    /// `GET /v2/_catalog`, optionally one page of it. Needs the `registry:catalog:*` scope.
    pub fn catalog_request(&self, page: &PageRequest) -> Result<Request<Body>, Error> {
        let operation = Operation::Catalog;
        let mut url = self.url(operation, &["_catalog"])?;
        page.apply_to(&mut url);
        self.build(
            operation,
            url,
            vec![Scope::catalog()],
            Vec::new(),
            Body::Empty,
        )
    }

    /// The next page of a repository listing, from the URL of [`crate::Catalog::next`].
    pub fn catalog_next_request(&self, next: &Url) -> Result<Request<Body>, Error> {
        let url = self.own_url(next)?;
        self.build(
            Operation::Catalog,
            url,
            vec![Scope::catalog()],
            Vec::new(),
            Body::Empty,
        )
    }

    /// `GET /v2/<name>/referrers/<digest>`, optionally filtered by artifact type. Registries
    /// without the API answer `404` (docker-registry 2.8 does): then use the tag-schema
    /// fallback.
    pub fn referrers_request(
        &self,
        reference: &Reference,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
    ) -> Result<Request<Body>, Error> {
        let operation = Operation::Referrers;
        let mut url = self.repo_url(operation, reference, &["referrers", subject.as_str()])?;
        if let Some(artifact_type) = artifact_type {
            url.query_pairs_mut()
                .append_pair("artifactType", artifact_type.as_str());
        }
        self.build(
            operation,
            url,
            pull(reference),
            vec![(ACCEPT, HeaderValue::from_static(INDEX))],
            Body::Empty,
        )
    }

    /// The next page of [`Registry::referrers_request`], from the previous page's `Link`.
    /// Refuses a link to another host.
    pub fn referrers_next_request(
        &self,
        reference: &Reference,
        next: &Url,
    ) -> Result<Request<Body>, Error> {
        let url = self.own_url(next)?;
        self.build(
            Operation::Referrers,
            url,
            pull(reference),
            vec![(ACCEPT, HeaderValue::from_static(INDEX))],
            Body::Empty,
        )
    }

    /// `base/v2/<segments…>`.
    fn url(&self, operation: Operation, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidRequest {
                operation,
                reason: format!("{} cannot be a base URL", self.base),
            })?
            .pop_if_empty()
            .push("v2")
            .extend(segments);
        Ok(url)
    }

    /// `base/v2/<repository>/<segments…>`; the repository's `/`s stay path separators.
    pub(crate) fn repo_url(
        &self,
        operation: Operation,
        reference: &Reference,
        segments: &[&str],
    ) -> Result<Url, Error> {
        let path: Vec<&str> = reference
            .repository()
            .split('/')
            .chain(segments.iter().copied())
            .collect();
        self.url(operation, &path)
    }

    fn uploads_url(&self, operation: Operation, reference: &Reference) -> Result<Url, Error> {
        // The trailing slash is part of the route: `/blobs/uploads/`.
        self.repo_url(operation, reference, &["blobs", "uploads", ""])
    }

    /// A URL taken from a response, accepted only on this registry.
    fn own_url(&self, url: &Url) -> Result<Url, Error> {
        if self.is_same_origin(url) {
            Ok(url.clone())
        } else {
            Err(Error::ForeignLink {
                url: url.to_string(),
                registry: self.base.to_string(),
            })
        }
    }

    /// Assembles a request; every builder ends here.
    pub(crate) fn build(
        &self,
        operation: Operation,
        url: Url,
        scopes: Vec<Scope>,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Body,
    ) -> Result<Request<Body>, Error> {
        build_request(operation, &url, scopes, headers, body)
    }
}

pub(crate) const OCTET_STREAM: &str = "application/octet-stream";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Assembles a request with its [`RequestInfo`]; also used by the upload session, whose URLs
/// come from `Location` headers.
pub(crate) fn build_request(
    operation: Operation,
    url: &Url,
    scopes: Vec<Scope>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
) -> Result<Request<Body>, Error> {
    let method = operation.method();
    let sends_body = matches!(method, Method::PUT | Method::POST | Method::PATCH);
    let mut builder = Request::builder().method(method).uri(url.as_str());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    // An explicit length lets registries (and proxies) refuse oversized bodies early; a body
    // of unknown length is left to the transport (chunked encoding).
    if sends_body && let Some(len) = body.len() {
        builder = builder.header(CONTENT_LENGTH, len);
    }
    builder
        .extension(RequestInfo { operation, scopes })
        .body(body)
        .map_err(|e| Error::InvalidRequest {
            operation,
            reason: format!("{e} (URL {url})"),
        })
}

fn header_value(operation: Operation, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value).map_err(|_| Error::InvalidRequest {
        operation,
        reason: format!("{value:?} cannot be sent in a header: use visible ASCII only"),
    })
}

fn target_of(operation: Operation, reference: &Reference) -> Result<&str, Error> {
    reference.target().ok_or_else(|| Error::MissingTarget {
        operation,
        reference: reference.to_string(),
    })
}

pub(crate) fn pull(reference: &Reference) -> Vec<Scope> {
    vec![Scope::repository(reference.repository(), &[Action::Pull])]
}

pub(crate) fn pull_push(reference: &Reference) -> Vec<Scope> {
    vec![Scope::repository(
        reference.repository(),
        &[Action::Pull, Action::Push],
    )]
}

pub(crate) fn delete(reference: &Reference) -> Vec<Scope> {
    vec![Scope::repository(reference.repository(), &[Action::Delete])]
}

#[cfg(test)]
mod tests {
    use oci_spec_types::{ImageManifest, MediaType};

    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn reference(s: &str) -> Reference {
        s.parse().unwrap()
    }

    fn registry() -> Registry {
        Registry::new(Scheme::Http, "127.0.0.1:5055").unwrap()
    }

    fn digest() -> Digest {
        HELLO.parse().unwrap()
    }

    fn scopes<B>(request: &Request<B>) -> Vec<String> {
        RequestInfo::of(request)
            .unwrap()
            .scopes
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn operation<B>(request: &Request<B>) -> Operation {
        RequestInfo::of(request).unwrap().operation
    }

    fn header<'a, B>(request: &'a Request<B>, name: &str) -> Option<&'a str> {
        request.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn registry_hosts() {
        for (host, base) in [
            ("localhost:5000", "http://localhost:5000/"),
            ("127.0.0.1:5055", "http://127.0.0.1:5055/"),
            ("[::1]:5000", "http://[::1]:5000/"),
            ("example.azurecr.io", "http://example.azurecr.io/"),
        ] {
            assert_eq!(
                Registry::new(Scheme::Http, host)
                    .unwrap()
                    .base_url()
                    .as_str(),
                base
            );
        }
        let https = Registry::new(Scheme::Https, "r.example:443").unwrap();
        assert_eq!(https.base_url().as_str(), "https://r.example/");
        for bad in [
            "",
            "user@host",
            "host/path",
            "host?x",
            "host#x",
            "ho st",
            "host:port",
            "a\\b",
        ] {
            let err = Registry::new(Scheme::Https, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidRegistry { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn version_check() {
        let request = registry().version_request().unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "http://127.0.0.1:5055/v2/");
        assert!(scopes(&request).is_empty());
        assert_eq!(operation(&request), Operation::VersionCheck);
    }

    #[test]
    fn manifest_get_and_head_accept_every_manifest_type() {
        let r = reference("127.0.0.1:5055/fixtures/demo:v1");
        for (request, method) in [
            (registry().manifest_get_request(&r).unwrap(), Method::GET),
            (registry().manifest_head_request(&r).unwrap(), Method::HEAD),
        ] {
            assert_eq!(request.method(), method);
            assert_eq!(
                request.uri(),
                "http://127.0.0.1:5055/v2/fixtures/demo/manifests/v1"
            );
            let accept = header(&request, "accept").unwrap();
            for t in MediaType::MANIFEST_TYPES {
                assert!(accept.contains(t.as_str()), "{accept} lacks {t}");
            }
            assert_eq!(scopes(&request), ["repository:fixtures/demo:pull"]);
            assert!(request.body().is_empty());
            assert_eq!(header(&request, "content-length"), None);
        }
    }

    #[test]
    fn manifest_by_digest_wins_over_tag() {
        let r = reference(&format!("localhost:5000/demo:v1@{HELLO}"));
        let request = registry().manifest_get_request(&r).unwrap();
        assert_eq!(request.uri().path(), format!("/v2/demo/manifests/{HELLO}"));
    }

    #[test]
    fn manifest_needs_a_target() {
        let r = reference("localhost:5000/demo");
        let err = registry().manifest_get_request(&r).unwrap_err();
        assert!(matches!(
            err,
            Error::MissingTarget {
                operation: Operation::GetManifest,
                ..
            }
        ));
        assert!(registry().manifest_delete_request(&r).is_err());
    }

    fn artifact() -> ManifestBytes {
        ManifestBytes::from_manifest(
            ImageManifest::artifact(MediaType::from("application/vnd.acr.demo.v1"), vec![]).into(),
        )
    }

    #[test]
    fn manifest_put() {
        let manifest = artifact();
        let r = reference("localhost:5000/demo:v1");
        let request = registry().manifest_put_request(&r, &manifest).unwrap();
        assert_eq!(request.method(), Method::PUT);
        assert_eq!(request.uri().path(), "/v2/demo/manifests/v1");
        assert_eq!(
            header(&request, "content-type"),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        let len = manifest.bytes().len().to_string();
        assert_eq!(header(&request, "content-length"), Some(len.as_str()));
        assert_eq!(request.body().as_bytes(), Some(manifest.bytes()));
        assert_eq!(scopes(&request), ["repository:demo:pull,push"]);

        // No tag: by the manifest's own digest.
        let bare = reference("localhost:5000/demo");
        let request = registry().manifest_put_request(&bare, &manifest).unwrap();
        assert_eq!(
            request.uri().path(),
            format!("/v2/demo/manifests/{}", manifest.digest())
        );

        // A pinned digest must be the manifest's.
        let pinned = bare.with_digest(digest());
        let err = registry()
            .manifest_put_request(&pinned, &manifest)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidRequest {
                operation: Operation::PutManifest,
                ..
            }
        ));
    }

    #[test]
    fn manifest_put_refuses_a_media_type_that_is_not_a_header() {
        let mut manifest = ImageManifest::artifact(MediaType::from("x"), vec![]);
        manifest.media_type = Some(MediaType::from("application/x\nevil: 1"));
        let manifest = ManifestBytes::from_manifest(manifest.into());
        let err = registry()
            .manifest_put_request(&reference("localhost:5000/demo:v1"), &manifest)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    }

    #[test]
    fn manifest_delete_needs_delete_scope() {
        let r = reference("localhost:5000/a/b").with_digest(digest());
        let request = registry().manifest_delete_request(&r).unwrap();
        assert_eq!(request.method(), Method::DELETE);
        assert_eq!(request.uri().path(), format!("/v2/a/b/manifests/{HELLO}"));
        assert_eq!(scopes(&request), ["repository:a/b:delete"]);
    }

    #[test]
    fn blob_requests() {
        let r = reference("localhost:5000/a/b:v1");
        let get = registry().blob_get_request(&r, &digest(), None).unwrap();
        assert_eq!(get.method(), Method::GET);
        assert_eq!(get.uri().path(), format!("/v2/a/b/blobs/{HELLO}"));
        assert_eq!(header(&get, "range"), None);
        assert_eq!(scopes(&get), ["repository:a/b:pull"]);

        let ranged = registry()
            .blob_get_request(&r, &digest(), ByteRange::inclusive(10, 19))
            .unwrap();
        assert_eq!(header(&ranged, "range"), Some("bytes=10-19"));
        let resumed = registry()
            .blob_get_request(&r, &digest(), Some(ByteRange::from_offset(1000)))
            .unwrap();
        assert_eq!(header(&resumed, "range"), Some("bytes=1000-"));
        assert_eq!(ByteRange::inclusive(5, 4), None);

        let head = registry().blob_head_request(&r, &digest()).unwrap();
        assert_eq!(head.method(), Method::HEAD);
        assert_eq!(operation(&head), Operation::HeadBlob);

        let delete = registry().blob_delete_request(&r, &digest()).unwrap();
        assert_eq!(delete.method(), Method::DELETE);
        assert_eq!(scopes(&delete), ["repository:a/b:delete"]);
    }

    #[test]
    fn upload_requests() {
        let r = reference("localhost:5000/demo");
        let start = registry().upload_start_request(&r).unwrap();
        assert_eq!(start.method(), Method::POST);
        assert_eq!(start.uri(), "http://127.0.0.1:5055/v2/demo/blobs/uploads/");
        assert_eq!(header(&start, "content-length"), Some("0"));
        assert_eq!(scopes(&start), ["repository:demo:pull,push"]);

        let mono = registry()
            .upload_monolithic_request(&r, &digest(), Body::from("hello"))
            .unwrap();
        assert_eq!(mono.method(), Method::POST);
        assert_eq!(mono.uri().path(), "/v2/demo/blobs/uploads/");
        assert_eq!(
            mono.uri().query(),
            Some(format!("digest={}", HELLO.replace(':', "%3A")).as_str())
        );
        assert_eq!(
            header(&mono, "content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(header(&mono, "content-length"), Some("5"));

        let from = reference("localhost:5000/library/alpine:3");
        let mount = registry().mount_request(&r, &digest(), &from).unwrap();
        assert_eq!(mount.method(), Method::POST);
        assert_eq!(
            mount.uri().query(),
            Some(format!("mount={}&from=library%2Falpine", HELLO.replace(':', "%3A")).as_str())
        );
        assert_eq!(
            scopes(&mount),
            [
                "repository:demo:pull,push",
                "repository:library/alpine:pull"
            ]
        );
    }

    #[test]
    fn listing_requests() {
        let r = reference("localhost:5000/demo");
        let all = registry().tags_request(&r, &PageRequest::new()).unwrap();
        assert_eq!(all.uri(), "http://127.0.0.1:5055/v2/demo/tags/list");
        assert_eq!(scopes(&all), ["repository:demo:pull"]);
        let page = registry()
            .tags_request(&r, &PageRequest::new().with_n(10).with_last("v1"))
            .unwrap();
        assert_eq!(page.uri().query(), Some("n=10&last=v1"));

        let catalog = registry()
            .catalog_request(&PageRequest::new().with_n(2))
            .unwrap();
        assert_eq!(catalog.uri(), "http://127.0.0.1:5055/v2/_catalog?n=2");
        assert_eq!(scopes(&catalog), ["registry:catalog:*"]);

        let next = Url::parse("http://127.0.0.1:5055/v2/_catalog?last=a&n=2").unwrap();
        let request = registry().catalog_next_request(&next).unwrap();
        assert_eq!(request.uri(), next.as_str());
        let foreign = Url::parse("http://evil.example/v2/_catalog?last=a").unwrap();
        assert!(matches!(
            registry().catalog_next_request(&foreign),
            Err(Error::ForeignLink { .. })
        ));
        assert!(registry().tags_next_request(&r, &foreign).is_err());

        let referrers = registry()
            .referrers_request(
                &r,
                &digest(),
                Some(&MediaType::from("application/vnd.example.sbom")),
            )
            .unwrap();
        assert_eq!(
            referrers.uri().path(),
            format!("/v2/demo/referrers/{HELLO}")
        );
        assert_eq!(
            referrers.uri().query(),
            Some("artifactType=application%2Fvnd.example.sbom")
        );
        assert_eq!(
            header(&referrers, "accept"),
            Some("application/vnd.oci.image.index.v1+json")
        );
    }

    #[test]
    fn operations_know_their_method() {
        let r = reference("localhost:5000/demo:v1");
        let manifest = artifact();
        let reg = registry();
        let requests = [
            reg.version_request().unwrap(),
            reg.manifest_get_request(&r).unwrap(),
            reg.manifest_head_request(&r).unwrap(),
            reg.manifest_put_request(&r, &manifest).unwrap(),
            reg.manifest_delete_request(&r).unwrap(),
            reg.blob_get_request(&r, &digest(), None).unwrap(),
            reg.blob_head_request(&r, &digest()).unwrap(),
            reg.blob_delete_request(&r, &digest()).unwrap(),
            reg.upload_start_request(&r).unwrap(),
            reg.upload_monolithic_request(&r, &digest(), Body::Empty)
                .unwrap(),
            reg.mount_request(&r, &digest(), &r).unwrap(),
            reg.tags_request(&r, &PageRequest::new()).unwrap(),
            reg.catalog_request(&PageRequest::new()).unwrap(),
            reg.referrers_request(&r, &digest(), None).unwrap(),
        ];
        for request in &requests {
            assert_eq!(operation(request).method(), request.method());
        }
        assert!(!Operation::UploadChunk.is_idempotent());
        assert!(Operation::FinishUpload.is_idempotent());
    }
}
