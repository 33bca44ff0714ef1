//! A whole push and pull of an artifact, driven only through this crate's API over its
//! [`Transport`] trait, against an in-memory registry (quinn-proto style: the registry is a
//! function from `http::Request` to `http::Response` over hash maps, with faults injected in
//! the transport). It behaves like docker-registry 2.8 where it matters: every upload response
//! has a new `Location` and a stale one is refused, `Range: 0-0` after one byte, a monolithic
//! `POST` ignores its body, OCI manifests need an `Accept` that lists them, no referrers API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Mutex;

use async_trait::async_trait;
use oci_distribution_proto::bytes::Bytes;
use oci_distribution_proto::http::{Method, Request, Response, StatusCode, response};
use oci_distribution_proto::types::{
    Descriptor, Digest, EMPTY_JSON, ImageManifest, Manifest, ManifestBytes, MediaType, Reference,
    annotations,
};
use oci_distribution_proto::url::form_urlencoded;
use oci_distribution_proto::{
    BlobVerifier, Body, ByteRange, ChunkPolicy, Error, PageRequest, ReferrersResponse, Registry,
    Scheme, Transport, TransportError, UploadOutcome, UploadState, add_referrer,
    check_manifest_size, referrer_descriptor, referrers_tag,
};

use crate::support::block_on;

// ---------------------------------------------------------------- the registry

#[derive(Default)]
struct State {
    blobs: HashMap<Digest, Bytes>,
    /// Which repositories link which blobs.
    links: BTreeSet<(String, Digest)>,
    uploads: HashMap<String, Upload>,
    /// (repository, digest) -> (media type, exact bytes)
    manifests: HashMap<(String, Digest), (String, Bytes)>,
    tags: BTreeMap<(String, String), Digest>,
    next_id: u64,
    /// `METHOD path` of every request, for assertions on the protocol's shape.
    log: Vec<String>,
}

struct Upload {
    repository: String,
    data: Vec<u8>,
    /// Bumped by every response; a request with an older `_state` is stale.
    generation: u64,
}

/// Fault injection: cut the `patch`-th PATCH (1-based) after `keep` of its bytes, without an
/// answer, as a dropped connection would.
#[derive(Default, Clone, Copy)]
struct Faults {
    cut_patch: Option<(usize, usize)>,
}

#[derive(Default)]
struct FakeRegistry {
    state: Mutex<State>,
    faults: Faults,
}

fn text(status: StatusCode, body: &str) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Bytes::copy_from_slice(body.as_bytes()))
        .unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#);
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(Bytes::from(body))
        .unwrap()
}

fn empty(status: StatusCode) -> response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-Api-Version", "registry/2.0")
}

fn query(request: &Request<Bytes>) -> HashMap<String, String> {
    form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// docker-registry's `Range` for an upload of `len` bytes: `0-0` for both 0 and 1.
fn upload_range(len: usize) -> String {
    format!("0-{}", len.saturating_sub(1))
}

impl State {
    fn handle(&mut self, request: Request<Bytes>) -> Response<Bytes> {
        self.log
            .push(format!("{} {}", request.method(), request.uri().path()));
        let path = request.uri().path().to_owned();
        let Some(route) = path.strip_prefix("/v2/") else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        };
        let method = request.method().clone();
        if route.is_empty() {
            return empty(StatusCode::OK)
                .body(Bytes::from_static(b"{}"))
                .unwrap();
        }
        if route == "_catalog" {
            return self.catalog(&request);
        }
        if let Some(repository) = route.strip_suffix("/tags/list") {
            return self.tags(repository);
        }
        if let Some((repository, reference)) = route.rsplit_once("/manifests/") {
            return match method {
                Method::GET | Method::HEAD => self.get_manifest(&request, repository, reference),
                Method::PUT => self.put_manifest(&request, repository, reference),
                Method::DELETE => self.delete_manifest(repository, reference),
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            };
        }
        if let Some((repository, id)) = route.split_once("/blobs/uploads/") {
            return if id.is_empty() && method == Method::POST {
                self.post_upload(&request, repository)
            } else {
                self.upload(&request, repository, id)
            };
        }
        if let Some((repository, digest)) = route.rsplit_once("/blobs/") {
            let Ok(digest) = digest.parse::<Digest>() else {
                return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
            };
            return self.blob(&request, repository, &digest);
        }
        // Includes `/referrers/`: docker-registry 2.8 has no such route.
        text(StatusCode::NOT_FOUND, "404 page not found\n")
    }

    fn new_session(&mut self, repository: &str) -> Response<Bytes> {
        self.next_id += 1;
        let id = format!("u{}", self.next_id);
        self.uploads.insert(
            id.clone(),
            Upload {
                repository: repository.to_owned(),
                data: Vec::new(),
                generation: 0,
            },
        );
        empty(StatusCode::ACCEPTED)
            .header(
                "Location",
                format!("/v2/{repository}/blobs/uploads/{id}?_state=0"),
            )
            .header("Docker-Upload-UUID", &id)
            .header("Range", "0-0")
            .body(Bytes::new())
            .unwrap()
    }

    fn post_upload(&mut self, request: &Request<Bytes>, repository: &str) -> Response<Bytes> {
        let query = query(request);
        if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from"))
            && let Ok(digest) = mount.parse::<Digest>()
            && self.links.contains(&(from.clone(), digest.clone()))
        {
            self.links.insert((repository.to_owned(), digest.clone()));
            return empty(StatusCode::CREATED)
                .header("Location", format!("/v2/{repository}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest.as_str())
                .body(Bytes::new())
                .unwrap();
        }
        // A monolithic `?digest=` POST gets a session too: its body is ignored.
        self.new_session(repository)
    }

    fn upload(&mut self, request: &Request<Bytes>, repository: &str, id: &str) -> Response<Bytes> {
        let query = query(request);
        let Some(upload) = self.uploads.get_mut(id) else {
            return error(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown",
            );
        };
        if upload.repository != repository {
            return error(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown",
            );
        }
        let fresh =
            query.get("_state").and_then(|s| s.parse::<u64>().ok()) == Some(upload.generation);
        // Status and cancel look the session up by id; writes need the latest state.
        if !fresh && matches!(*request.method(), Method::PATCH | Method::PUT) {
            return error(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_INVALID",
                "blob upload invalid",
            );
        }
        match *request.method() {
            Method::DELETE => {
                self.uploads.remove(id);
                return empty(StatusCode::NO_CONTENT).body(Bytes::new()).unwrap();
            }
            Method::PATCH => {
                let content_type = request.headers().get("content-type");
                if content_type.is_some_and(|t| t != "application/octet-stream") {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "UNKNOWN",
                        "bad Content-Type",
                    );
                }
                upload.data.extend_from_slice(request.body());
            }
            Method::PUT => {
                upload.data.extend_from_slice(request.body());
                let data = Bytes::from(std::mem::take(&mut upload.data));
                self.uploads.remove(id);
                let Some(Ok(digest)) = query.get("digest").map(|d| d.parse::<Digest>()) else {
                    return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "no digest");
                };
                if !digest.matches(&data) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "DIGEST_INVALID",
                        "provided digest did not match uploaded content",
                    );
                }
                self.links.insert((repository.to_owned(), digest.clone()));
                self.blobs.insert(digest.clone(), data);
                return empty(StatusCode::CREATED)
                    .header("Location", format!("/v2/{repository}/blobs/{digest}"))
                    .header("Docker-Content-Digest", digest.as_str())
                    .body(Bytes::new())
                    .unwrap();
            }
            Method::GET => {}
            _ => return text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        }
        upload.generation += 1;
        let status = if *request.method() == Method::GET {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::ACCEPTED
        };
        empty(status)
            .header(
                "Location",
                format!(
                    "/v2/{repository}/blobs/uploads/{id}?_state={}",
                    upload.generation
                ),
            )
            .header("Docker-Upload-UUID", id)
            .header("Range", upload_range(upload.data.len()))
            .body(Bytes::new())
            .unwrap()
    }

    fn blob(
        &mut self,
        request: &Request<Bytes>,
        repository: &str,
        digest: &Digest,
    ) -> Response<Bytes> {
        let linked = self
            .links
            .contains(&(repository.to_owned(), digest.clone()));
        if *request.method() == Method::DELETE {
            if !self.links.remove(&(repository.to_owned(), digest.clone())) {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    "blob unknown to registry",
                );
            }
            return empty(StatusCode::ACCEPTED).body(Bytes::new()).unwrap();
        }
        let data = match self.blobs.get(digest) {
            Some(data) if linked => data.clone(),
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    "blob unknown to registry",
                );
            }
        };
        let range = request
            .headers()
            .get("range")
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(start, end)| {
                let start: usize = start.parse().ok()?;
                let end = if end.is_empty() {
                    data.len().checked_sub(1)?
                } else {
                    end.parse::<usize>().ok()?.min(data.len().checked_sub(1)?)
                };
                (start <= end).then_some((start, end))
            });
        let builder = empty(StatusCode::OK)
            .header("Content-Type", "application/octet-stream")
            .header("Docker-Content-Digest", digest.as_str());
        let (builder, body) = match range {
            Some((start, end)) => (
                builder.status(StatusCode::PARTIAL_CONTENT).header(
                    "Content-Range",
                    format!("bytes {start}-{end}/{}", data.len()),
                ),
                data.slice(start..=end),
            ),
            None => (builder, data),
        };
        let builder = builder.header("Content-Length", body.len());
        if *request.method() == Method::HEAD {
            builder.body(Bytes::new()).unwrap()
        } else {
            builder.body(body).unwrap()
        }
    }

    fn resolve(&self, repository: &str, reference: &str) -> Option<Digest> {
        match reference.parse::<Digest>() {
            Ok(digest) => Some(digest),
            Err(_) => self
                .tags
                .get(&(repository.to_owned(), reference.to_owned()))
                .cloned(),
        }
    }

    fn get_manifest(
        &mut self,
        request: &Request<Bytes>,
        repository: &str,
        reference: &str,
    ) -> Response<Bytes> {
        let unknown = || {
            error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            )
        };
        let Some(digest) = self.resolve(repository, reference) else {
            return unknown();
        };
        let Some((media_type, bytes)) =
            self.manifests.get(&(repository.to_owned(), digest.clone()))
        else {
            return unknown();
        };
        let accept = request
            .headers()
            .get_all("accept")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == media_type);
        if media_type.starts_with("application/vnd.oci") && !accept {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "OCI manifest found, but accept header does not support OCI manifests",
            );
        }
        let builder = empty(StatusCode::OK)
            .header("Content-Type", media_type.as_str())
            .header("Content-Length", bytes.len())
            .header("Docker-Content-Digest", digest.as_str());
        let body = if *request.method() == Method::HEAD {
            Bytes::new()
        } else {
            bytes.clone()
        };
        builder.body(body).unwrap()
    }

    fn put_manifest(
        &mut self,
        request: &Request<Bytes>,
        repository: &str,
        reference: &str,
    ) -> Response<Bytes> {
        let invalid = || {
            error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                "manifest invalid",
            )
        };
        let Some(content_type) = request
            .headers()
            .get("content-type")
            .and_then(|t| t.to_str().ok())
        else {
            return invalid();
        };
        let media_type = MediaType::from_content_type(content_type);
        let Ok(manifest) = Manifest::from_slice(request.body(), Some(&media_type)) else {
            return invalid();
        };
        for child in manifest.children() {
            let present = if matches!(manifest, Manifest::Index(_)) {
                self.manifests
                    .contains_key(&(repository.to_owned(), child.digest.clone()))
            } else {
                self.links
                    .contains(&(repository.to_owned(), child.digest.clone()))
            };
            if !present {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_BLOB_UNKNOWN",
                    "blob unknown to registry",
                );
            }
        }
        let digest = Digest::sha256_of(request.body());
        match reference.parse::<Digest>() {
            Ok(pinned) if pinned != digest => {
                return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "digest mismatch");
            }
            Ok(_) => {}
            Err(_) => {
                self.tags.insert(
                    (repository.to_owned(), reference.to_owned()),
                    digest.clone(),
                );
            }
        }
        self.manifests.insert(
            (repository.to_owned(), digest.clone()),
            (media_type.as_str().to_owned(), request.body().clone()),
        );
        empty(StatusCode::CREATED)
            .header("Location", format!("/v2/{repository}/manifests/{digest}"))
            .header("Docker-Content-Digest", digest.as_str())
            .body(Bytes::new())
            .unwrap()
    }

    fn delete_manifest(&mut self, repository: &str, reference: &str) -> Response<Bytes> {
        let Ok(digest) = reference.parse::<Digest>() else {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            );
        };
        if self
            .manifests
            .remove(&(repository.to_owned(), digest.clone()))
            .is_none()
        {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            );
        }
        self.tags
            .retain(|(repo, _), d| !(repo == repository && *d == digest));
        empty(StatusCode::ACCEPTED).body(Bytes::new()).unwrap()
    }

    fn tags(&self, repository: &str) -> Response<Bytes> {
        let tags: Vec<&str> = self
            .tags
            .keys()
            .filter(|(repo, _)| repo == repository)
            .map(|(_, tag)| tag.as_str())
            .collect();
        if tags.is_empty() && !self.links.iter().any(|(repo, _)| repo == repository) {
            return error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            );
        }
        let body = serde_json::json!({ "name": repository, "tags": tags });
        empty(StatusCode::OK)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(Bytes::from(body.to_string()))
            .unwrap()
    }

    fn catalog(&self, request: &Request<Bytes>) -> Response<Bytes> {
        let query = query(request);
        let n: usize = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(1000);
        let repositories: BTreeSet<&str> =
            self.links.iter().map(|(repo, _)| repo.as_str()).collect();
        let page: Vec<&str> = repositories
            .into_iter()
            .filter(|repo| query.get("last").is_none_or(|last| *repo > last.as_str()))
            .take(n + 1)
            .collect();
        let more = page.len() > n;
        let page = &page[..page.len().min(n)];
        let mut builder =
            empty(StatusCode::OK).header("Content-Type", "application/json; charset=utf-8");
        if more && let Some(last) = page.last() {
            let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
            builder = builder.header(
                "Link",
                format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\""),
            );
        }
        let body = serde_json::json!({ "repositories": page });
        builder.body(Bytes::from(body.to_string())).unwrap()
    }
}

/// Response bodies go back as streams in small pieces, so the client's streaming paths run.
struct Pieces(Vec<Bytes>);

impl futures_core::Stream for Pieces {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(if self.0.is_empty() {
            None
        } else {
            Some(Ok(self.0.remove(0)))
        })
    }
}

fn streamed(bytes: Bytes, piece: usize) -> Body {
    let len = bytes.len() as u64;
    let pieces = (0..bytes.len())
        .step_by(piece)
        .map(|at| bytes.slice(at..bytes.len().min(at + piece)))
        .collect();
    Body::from_stream(Pieces(pieces), Some(len))
}

#[async_trait]
impl Transport for FakeRegistry {
    async fn send(&self, request: Request<Body>) -> Result<Response<Body>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect(64 << 20)
            .await
            .map_err(|e| TransportError::new("reading the request body", e))?;
        let mut state = self.state.lock().unwrap();
        if parts.method == Method::PATCH {
            let nth = state.log.iter().filter(|l| l.starts_with("PATCH")).count() + 1;
            if let Some((cut, keep)) = self.faults.cut_patch
                && cut == nth
            {
                // The registry got part of the chunk; the client never hears back.
                state.log.push(format!("PATCH {} (cut)", parts.uri.path()));
                let id = parts
                    .uri
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if let Some(upload) = state.uploads.get_mut(&id) {
                    upload.data.extend_from_slice(&body[..keep.min(body.len())]);
                    upload.generation += 1;
                }
                return Err(TransportError::msg("connection reset by peer"));
            }
        }
        let response = state.handle(Request::from_parts(parts, body));
        Ok(response.map(|body| streamed(body, 1000)))
    }
}

// ---------------------------------------------------------------- the client side

/// Sends a request and reads the whole response body (bounded).
async fn exchange(
    transport: &dyn Transport,
    request: Request<Body>,
) -> Result<Response<Bytes>, Error> {
    let response = transport.send(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect(1 << 20).await?;
    Ok(Response::from_parts(parts, body))
}

/// Uploads a blob: monolithic (POST, then PUT with the body) up to one chunk, else chunked,
/// resuming from the registry's offset after a failed PATCH. Returns the digest and how many
/// times it resumed.
async fn push_blob(
    transport: &dyn Transport,
    registry: &Registry,
    repository: &Reference,
    data: &Bytes,
    chunk_size: u64,
) -> Result<(Digest, usize), Error> {
    let digest = Digest::sha256_of(data);
    let info = registry.handle_blob_head_response(
        &digest,
        &exchange(transport, registry.blob_head_request(repository, &digest)?).await?,
    )?;
    if info.is_some() {
        return Ok((digest, 0));
    }
    if data.len() as u64 <= chunk_size {
        let request =
            registry.upload_monolithic_request(repository, &digest, Body::from(data.clone()))?;
        let response = exchange(transport, request).await?;
        return match registry.handle_monolithic_response(repository, &digest, &response)? {
            UploadOutcome::Complete(done) => Ok((done, 0)),
            UploadOutcome::Session(mut session) => {
                // The registry ignored the POST body (as docker-registry does): PUT it.
                let request = session.finish_request(&digest, Body::from(data.clone()))?;
                let done = session.handle_finish_response(&exchange(transport, request).await?)?;
                Ok((done, 0))
            }
        };
    }
    let response = exchange(transport, registry.upload_start_request(repository)?).await?;
    let mut session = registry.handle_upload_start_response(repository, &response)?;
    session.set_chunk_policy(ChunkPolicy { chunk_size });
    let total = data.len() as u64;
    let mut resumed = 0;
    while session.offset() < total {
        let start = session.offset();
        let len = session.next_chunk_len(total - start);
        let chunk =
            data.slice(usize::try_from(start).unwrap()..usize::try_from(start + len).unwrap());
        let request = session.chunk_request(streamed(chunk, 4096))?;
        match exchange(transport, request).await {
            Ok(response) => {
                session.handle_chunk_response(&response)?;
            }
            Err(Error::Transport(_)) => {
                // No answer: ask the registry what it has, and go on from there.
                resumed += 1;
                let response = exchange(transport, session.status_request()?).await?;
                session.handle_status_response(&response)?;
            }
            Err(other) => return Err(other),
        }
    }
    let request = session.finish_request(&digest, Body::Empty)?;
    let done = session.handle_finish_response(&exchange(transport, request).await?)?;
    assert_eq!(session.state(), UploadState::Complete);
    Ok((done, resumed))
}

/// Streams a blob through a verifier, polling the body as a `Stream`.
async fn pull_blob(
    transport: &dyn Transport,
    registry: &Registry,
    repository: &Reference,
    layer: &Descriptor,
) -> Result<Vec<u8>, Error> {
    let response = transport
        .send(registry.blob_get_request(repository, &layer.digest, None)?)
        .await?;
    let download = registry.handle_blob_get_response(&layer.digest, None, &response)?;
    assert_eq!(download.len, Some(layer.size));
    let mut verifier = BlobVerifier::for_descriptor(layer)?;
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(piece) =
        poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut body), cx)).await
    {
        let piece = piece.map_err(Error::BodyRead)?;
        verifier.update(&piece)?;
        out.extend_from_slice(&piece);
    }
    verifier.finish()?;
    Ok(out)
}

struct Pushed {
    manifest: ManifestBytes,
    resumed: usize,
}

/// Pushes `files` as an artifact tagged `reference`.
async fn push_artifact(
    transport: &dyn Transport,
    registry: &Registry,
    reference: &Reference,
    files: &[(&str, Bytes)],
    chunk_size: u64,
) -> Result<Pushed, Error> {
    let response = exchange(transport, registry.version_request()?).await?;
    registry.handle_version_response(&response)?;
    let config = Descriptor::empty();
    push_blob(
        transport,
        registry,
        reference,
        &Bytes::from_static(EMPTY_JSON),
        chunk_size,
    )
    .await?;
    let mut layers = Vec::new();
    let mut resumed = 0;
    for (name, data) in files {
        let (digest, times) = push_blob(transport, registry, reference, data, chunk_size).await?;
        resumed += times;
        layers.push(
            Descriptor::new(MediaType::ImageLayer, digest, data.len() as u64)
                .with_annotation(annotations::TITLE, *name),
        );
    }
    let mut manifest =
        ImageManifest::artifact(MediaType::from("application/vnd.acr.demo.v1"), layers);
    manifest.config = config;
    let manifest = ManifestBytes::from_manifest(manifest.into());
    let response = exchange(
        transport,
        registry.manifest_put_request(reference, &manifest)?,
    )
    .await?;
    let pushed = registry.handle_manifest_put_response(&manifest, &response)?;
    assert_eq!(&pushed.digest, manifest.digest());
    Ok(Pushed { manifest, resumed })
}

/// Pulls the artifact tagged `reference`: the manifest, checked, then every layer, verified.
async fn pull_artifact(
    transport: &dyn Transport,
    registry: &Registry,
    reference: &Reference,
) -> Result<(ManifestBytes, Vec<(String, Vec<u8>)>), Error> {
    let response = transport
        .send(registry.manifest_get_request(reference)?)
        .await?;
    let limit = check_manifest_size(&response)?;
    let (parts, body) = response.into_parts();
    let response = Response::from_parts(parts, body.collect(limit).await?);
    let manifest = registry.handle_manifest_get_response(reference, &response)?;
    let Manifest::Image(image) = manifest.manifest() else {
        panic!("pushed an image manifest");
    };
    let mut files = Vec::new();
    for layer in &image.layers {
        let data = pull_blob(transport, registry, reference, layer).await?;
        files.push((layer.title().unwrap_or_default().to_owned(), data));
    }
    Ok((manifest, files))
}

fn sample_files() -> Vec<(&'static str, Bytes)> {
    let big: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        (
            "hello.txt",
            Bytes::from_static(b"hello from the fake registry\n"),
        ),
        ("data.bin", Bytes::from(big)),
        ("one.byte", Bytes::from_static(b"x")),
        ("empty", Bytes::new()),
    ]
}

fn setup() -> (Registry, Reference) {
    let reference: Reference = "fake.test/demo/files:v1".parse().unwrap();
    let registry = Registry::for_reference(&reference, Scheme::Https).unwrap();
    (registry, reference)
}

#[test]
fn push_list_pull_round_trip() {
    let fake = FakeRegistry::default();
    let (registry, reference) = setup();
    let files = sample_files();
    let pushed = block_on(push_artifact(&fake, &registry, &reference, &files, 4096)).unwrap();
    assert_eq!(pushed.resumed, 0);

    // The big file went up in 4096-byte chunks (3 PATCHes); small ones by POST + PUT.
    let log = fake.state.lock().unwrap().log.clone();
    let patches = log.iter().filter(|l| l.starts_with("PATCH")).count();
    assert_eq!(patches, 3, "{log:#?}");

    let tags_request = registry
        .tags_request(&reference, &PageRequest::new())
        .unwrap();
    let uri = tags_request.uri().clone();
    let tags = registry
        .handle_tags_response(&uri, &block_on(exchange(&fake, tags_request)).unwrap())
        .unwrap();
    assert_eq!(tags.tags, ["v1"]);

    let (manifest, pulled) = block_on(pull_artifact(&fake, &registry, &reference)).unwrap();
    assert_eq!(manifest.digest(), pushed.manifest.digest());
    assert_eq!(manifest.bytes(), pushed.manifest.bytes());
    for ((name, original), (title, data)) in files.iter().zip(&pulled) {
        assert_eq!(name, title);
        assert_eq!(original.as_ref(), data.as_slice(), "{name}");
    }

    // Pushing again uploads nothing: every blob answers the HEAD.
    let before = fake.state.lock().unwrap().log.len();
    block_on(push_artifact(&fake, &registry, &reference, &files, 4096)).unwrap();
    let log = fake.state.lock().unwrap().log.clone();
    assert!(
        log[before..]
            .iter()
            .all(|l| !l.starts_with("PATCH") && !l.starts_with("POST")),
        "{log:#?}"
    );
}

#[test]
fn chunked_upload_resumes_after_an_interruption() {
    // The second PATCH is cut after 1000 of its 4096 bytes: the client gets no answer, asks
    // for the status (`Range: 0-5095`), and resumes at 5096 with the new Location.
    let fake = FakeRegistry {
        faults: Faults {
            cut_patch: Some((2, 1000)),
        },
        ..FakeRegistry::default()
    };
    let (registry, reference) = setup();
    let files = sample_files();
    let pushed = block_on(push_artifact(&fake, &registry, &reference, &files, 4096)).unwrap();
    assert_eq!(pushed.resumed, 1);

    let log = fake.state.lock().unwrap().log.clone();
    let upload_log: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("/blobs/uploads/u"))
        .collect();
    let kinds: Vec<&str> = upload_log
        .iter()
        .filter(|l| !l.starts_with("PUT") || l.contains("u2"))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert!(
        kinds.windows(3).any(|w| w == ["PATCH", "GET", "PATCH"]),
        "expected a status check between the cut PATCH and the resumed one: {log:#?}"
    );
    let (_, pulled) = block_on(pull_artifact(&fake, &registry, &reference)).unwrap();
    assert_eq!(pulled[1].1.as_slice(), files[1].1.as_ref());
}

#[test]
fn a_stale_location_is_refused_and_the_session_fails() {
    let fake = FakeRegistry::default();
    let (registry, reference) = setup();
    let response = block_on(exchange(
        &fake,
        registry.upload_start_request(&reference).unwrap(),
    ))
    .unwrap();
    let mut session = registry
        .handle_upload_start_response(&reference, &response)
        .unwrap();
    let stale = session.clone();
    let request = session.chunk_request(Body::from("abc")).unwrap();
    session
        .handle_chunk_response(&block_on(exchange(&fake, request)).unwrap())
        .unwrap();

    // A copy that kept the first Location writes with an old `_state`.
    let mut stale = stale;
    let request = stale.chunk_request(Body::from("def")).unwrap();
    let error = stale
        .handle_chunk_response(&block_on(exchange(&fake, request)).unwrap())
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(stale.state(), UploadState::Failed);

    // The live session is unharmed, and can be cancelled.
    let request = session.cancel_request().unwrap();
    session
        .handle_cancel_response(&block_on(exchange(&fake, request)).unwrap())
        .unwrap();
    assert_eq!(session.state(), UploadState::Cancelled);
}

#[test]
fn mount_and_catalog_pages() {
    let fake = FakeRegistry::default();
    let (registry, reference) = setup();
    let files = sample_files();
    block_on(push_artifact(&fake, &registry, &reference, &files, 4096)).unwrap();

    let copy: Reference = "fake.test/demo/copy".parse().unwrap();
    let digest = Digest::sha256_of(&files[0].1);
    let request = registry.mount_request(&copy, &digest, &reference).unwrap();
    let response = block_on(exchange(&fake, request)).unwrap();
    assert!(matches!(
        registry.handle_mount_response(&copy, &digest, &response).unwrap(),
        UploadOutcome::Complete(d) if d == digest
    ));
    let unknown = Digest::sha256_of(b"not there");
    let request = registry.mount_request(&copy, &unknown, &reference).unwrap();
    let response = block_on(exchange(&fake, request)).unwrap();
    assert!(matches!(
        registry
            .handle_mount_response(&copy, &unknown, &response)
            .unwrap(),
        UploadOutcome::Session(_)
    ));

    // Two repositories, one per page, following the relative `Link`.
    let mut request = registry
        .catalog_request(&PageRequest::new().with_n(1))
        .unwrap();
    let mut repositories = Vec::new();
    let mut pages = 0;
    loop {
        let uri = request.uri().clone();
        let page = registry
            .handle_catalog_response(&uri, &block_on(exchange(&fake, request)).unwrap())
            .unwrap();
        pages += 1;
        repositories.extend(page.repositories);
        match page.next {
            Some(next) => request = registry.catalog_next_request(&next).unwrap(),
            None => break,
        }
    }
    assert_eq!(repositories, ["demo/copy", "demo/files"]);
    assert_eq!(pages, 2);
}

#[test]
fn referrers_fall_back_to_the_tag_schema() {
    let fake = FakeRegistry::default();
    let (registry, reference) = setup();
    let pushed = block_on(push_artifact(
        &fake,
        &registry,
        &reference,
        &sample_files(),
        4096,
    ))
    .unwrap();
    let subject = pushed.manifest.descriptor();

    // A signature-like referrer: an artifact whose subject is the pushed manifest.
    let mut referrer =
        ImageManifest::artifact(MediaType::from("application/vnd.example.sig"), vec![]);
    referrer.subject = Some(subject.clone());
    let referrer = ManifestBytes::from_manifest(referrer.into());
    let by_digest = reference.with_digest(referrer.digest().clone());
    let response = block_on(exchange(
        &fake,
        registry
            .manifest_put_request(&by_digest, &referrer)
            .unwrap(),
    ))
    .unwrap();
    let put = registry
        .handle_manifest_put_response(&referrer, &response)
        .unwrap();
    assert_eq!(
        put.subject, None,
        "no OCI-Subject: the fallback tag must be maintained"
    );

    let request = registry
        .referrers_request(&reference, &subject.digest, None)
        .unwrap();
    let uri = request.uri().clone();
    let answer = registry
        .handle_referrers_response(&uri, &block_on(exchange(&fake, request)).unwrap())
        .unwrap();
    assert_eq!(answer, None);

    // Fallback: the index under `sha256-<hex>` is absent, so a new one is made and pushed.
    let tag = reference.with_tag(&referrers_tag(&subject.digest)).unwrap();
    let response = block_on(exchange(
        &fake,
        registry.manifest_get_request(&tag).unwrap(),
    ))
    .unwrap();
    let error = registry
        .handle_manifest_get_response(&tag, &response)
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    let index = add_referrer(None, referrer_descriptor(&referrer)).unwrap();
    let index = ManifestBytes::from_manifest(index.into());
    let response = block_on(exchange(
        &fake,
        registry.manifest_put_request(&tag, &index).unwrap(),
    ))
    .unwrap();
    registry
        .handle_manifest_put_response(&index, &response)
        .unwrap();

    let response = block_on(exchange(
        &fake,
        registry.manifest_get_request(&tag).unwrap(),
    ))
    .unwrap();
    let fetched = registry
        .handle_manifest_get_response(&tag, &response)
        .unwrap();
    let listed = ReferrersResponse::from_fallback(&fetched).unwrap();
    assert_eq!(listed.referrers().len(), 1);
    assert_eq!(&listed.referrers()[0].digest, referrer.digest());
}

#[test]
fn ranged_download_and_manifest_head() {
    let fake = FakeRegistry::default();
    let (registry, reference) = setup();
    let files = sample_files();
    let pushed = block_on(push_artifact(&fake, &registry, &reference, &files, 4096)).unwrap();

    let head = registry.manifest_head_request(&reference).unwrap();
    let descriptor = registry
        .handle_manifest_head_response(&reference, &block_on(exchange(&fake, head)).unwrap())
        .unwrap();
    assert_eq!(descriptor.digest, *pushed.manifest.digest());
    assert_eq!(descriptor.size, pushed.manifest.bytes().len() as u64);

    // Resume a download from byte 9000 of the 10000-byte layer.
    let digest = Digest::sha256_of(&files[1].1);
    let range = Some(ByteRange::from_offset(9000));
    let request = registry
        .blob_get_request(&reference, &digest, range)
        .unwrap();
    let response = block_on(exchange(&fake, request)).unwrap();
    let download = registry
        .handle_blob_get_response(&digest, range, &response)
        .unwrap();
    assert_eq!(download.offset(), 9000);
    assert_eq!(download.range.unwrap().total, Some(10_000));
    assert_eq!(response.body().as_ref(), &files[1].1[9000..]);

    // Delete the manifest by digest: its tag goes with it.
    let pinned = reference.with_digest(pushed.manifest.digest().clone());
    let response = block_on(exchange(
        &fake,
        registry.manifest_delete_request(&pinned).unwrap(),
    ))
    .unwrap();
    registry.handle_manifest_delete_response(&response).unwrap();
    let response = block_on(exchange(
        &fake,
        registry.manifest_get_request(&reference).unwrap(),
    ))
    .unwrap();
    assert!(
        registry
            .handle_manifest_get_response(&reference, &response)
            .is_err()
    );
}
