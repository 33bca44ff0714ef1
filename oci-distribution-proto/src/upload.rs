//! Blob uploads: [`UploadSession`], the state machine of a chunked (or monolithic) upload.
//!
//! ```text
//!  POST …/uploads/ ─202─▶ Ready ─chunk_request─▶ SendingChunk ─202─▶ Ready
//!                          │ ▲                        │ error, or no answer
//!                          │ └─204─ CheckingStatus ◀─status_request─ Interrupted
//!                          ├─finish_request─▶ Finishing ─201─▶ Complete
//!                          └─cancel_request─▶ Cancelling ─204─▶ Cancelled
//! ```
//!
//! Every response carries a **new** `Location` that must be used for the next request
//! (docker-registry signs the offset into its `_state` parameter, and a stale one gets
//! `404 BLOB_UPLOAD_INVALID`). The session counts the bytes itself: docker-registry reports
//! `Range: 0-0` both for an empty session and after exactly one byte.

use std::fmt;

use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderValue, Request, Response, StatusCode};
use oci_spec_types::{Digest, Reference};
use url::Url;

use crate::headers::{self, UploadRange};
use crate::manifest::unexpected;
use crate::registry::{OCTET_STREAM, build_request, delete, pull_push};
use crate::{Body, Error, Operation, Registry};

/// The default chunk size: what the Azure SDKs use, and safely below the request size limits
/// of registries that refuse large bodies (ACR answers `413` above about 20 MB).
pub const DEFAULT_CHUNK_SIZE: u64 = 4 * 1024 * 1024;

/// How large the chunks of a chunked upload are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPolicy {
    /// The preferred chunk size in bytes. The registry's `OCI-Chunk-Min-Length` wins when it is
    /// larger; 0 counts as 1.
    pub chunk_size: u64,
}

impl Default for ChunkPolicy {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Where an [`UploadSession`] is; what it allows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UploadState {
    /// Waiting for the next chunk, a status check, the finishing `PUT` or a cancel.
    Ready,
    /// A chunk `PATCH` was built; its response is awaited.
    SendingChunk,
    /// A status `GET` was built; its response is awaited.
    CheckingStatus,
    /// The finishing `PUT` was built; its response is awaited.
    Finishing,
    /// A cancelling `DELETE` was built; its response is awaited.
    Cancelling,
    /// A request failed or got an error answer: ask for the status to learn the registry's
    /// offset and resume, or cancel.
    Interrupted,
    /// The blob is stored.
    Complete,
    /// The session was cancelled.
    Cancelled,
    /// The registry no longer knows the session (or refused its content): start a new upload.
    Failed,
}

impl fmt::Display for UploadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ready => "ready",
            Self::SendingChunk => "waiting for a chunk's response",
            Self::CheckingStatus => "waiting for the status response",
            Self::Finishing => "waiting for the finishing response",
            Self::Cancelling => "waiting for the cancel response",
            Self::Interrupted => "interrupted (check its status to resume)",
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed (start a new upload)",
        })
    }
}

/// The state with what the awaited response must be checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Ready,
    Chunk { start: u64, len: u64 },
    Status,
    Finish { digest: Digest },
    Cancel,
    Interrupted,
    Complete,
    Cancelled,
    Failed,
}

/// An open blob upload session and what the registry has received so far.
///
/// Each `…_request` method builds the next request and each `handle_…` method takes its
/// response; calling them out of order is an [`Error::UploadState`], never a panic. After an
/// error the session is [`UploadState::Interrupted`]: [`UploadSession::status_request`] asks
/// the registry for its offset, and the upload resumes from [`UploadSession::offset`].
///
/// ```
/// use oci_distribution_proto::{Body, Registry, Scheme, UploadState};
/// use oci_distribution_proto::types::{Digest, Reference};
///
/// let reference: Reference = "localhost:5000/demo".parse()?;
/// let registry = Registry::new(Scheme::Http, "localhost:5000")?;
/// let started = http::Response::builder()
///     .status(202)
///     .header("Location", "/v2/demo/blobs/uploads/u1?_state=s0")
///     .header("Range", "0-0")
///     .body(Vec::new())?;
/// let mut session = registry.handle_upload_start_response(&reference, &started)?;
///
/// let request = session.chunk_request(Body::from("hello"))?;
/// assert_eq!(request.headers()["content-range"], "0-4");
/// let accepted = http::Response::builder()
///     .status(202)
///     .header("Location", "/v2/demo/blobs/uploads/u1?_state=s5")
///     .header("Range", "0-4")
///     .body(Vec::new())?;
/// assert_eq!(session.handle_chunk_response(&accepted)?, 5);
///
/// let digest = Digest::sha256_of(b"hello");
/// let request = session.finish_request(&digest, Body::Empty)?;
/// assert_eq!(
///     request.uri().to_string(),
///     format!("http://localhost:5000/v2/demo/blobs/uploads/u1?_state=s5&digest={}", digest.as_str().replace(':', "%3A")),
/// );
/// let created = http::Response::builder().status(201).body(Vec::new())?;
/// assert_eq!(session.handle_finish_response(&created)?, digest);
/// assert_eq!(session.state(), UploadState::Complete);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct UploadSession {
    repository: Reference,
    location: Url,
    uuid: Option<String>,
    offset: u64,
    min_chunk_len: Option<u64>,
    policy: ChunkPolicy,
    phase: Phase,
}

/// How a `POST` that may complete an upload by itself ended.
#[derive(Debug, Clone)]
pub enum UploadOutcome {
    /// The blob is in the repository (`201`): mounted, or uploaded in one request.
    Complete(Digest),
    /// The registry opened an upload session instead (`202`): upload the blob through it.
    /// After a monolithic `POST` this means the body was ignored (docker-registry does so):
    /// send it again with [`UploadSession::finish_request`].
    Session(Box<UploadSession>),
}

impl UploadSession {
    /// A session from a start (`202`) response; `request_url` resolves a relative `Location`.
    fn started<B>(
        operation: Operation,
        reference: &Reference,
        request_url: &Url,
        response: &Response<B>,
    ) -> Result<Self, Error> {
        let location = headers::location(operation, response.headers(), request_url)?.ok_or(
            Error::MissingHeader {
                operation,
                header: "Location",
            },
        )?;
        let mut session = Self::resume(reference, location);
        session.phase = Phase::Ready;
        session.read_common(operation, response)?;
        session.offset = match headers::upload_range(operation, response.headers())? {
            Some(UploadRange::Exact(len)) => len,
            Some(UploadRange::ZeroOrOne) | None => 0,
        };
        Ok(session)
    }

    /// A session known only by its last `Location`, such as one saved before a restart. It
    /// starts [`UploadState::Interrupted`]: call [`UploadSession::status_request`] first to learn
    /// the registry's offset.
    pub fn resume(reference: &Reference, location: Url) -> Self {
        Self {
            repository: reference.repository_only(),
            location,
            uuid: None,
            offset: 0,
            min_chunk_len: None,
            policy: ChunkPolicy::default(),
            phase: Phase::Interrupted,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> UploadState {
        match self.phase {
            Phase::Ready => UploadState::Ready,
            Phase::Chunk { .. } => UploadState::SendingChunk,
            Phase::Status => UploadState::CheckingStatus,
            Phase::Finish { .. } => UploadState::Finishing,
            Phase::Cancel => UploadState::Cancelling,
            Phase::Interrupted => UploadState::Interrupted,
            Phase::Complete => UploadState::Complete,
            Phase::Cancelled => UploadState::Cancelled,
            Phase::Failed => UploadState::Failed,
        }
    }

    /// The URL of the next request: the latest `Location` the registry sent.
    pub fn location(&self) -> &Url {
        &self.location
    }

    /// How many bytes the registry holds: where the next chunk starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The `Docker-Upload-UUID`, when the registry sent one.
    pub fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }

    /// The registry's `OCI-Chunk-Min-Length`: every chunk but the last must be at least this long.
    pub fn min_chunk_len(&self) -> Option<u64> {
        self.min_chunk_len
    }

    /// The chunk-size policy.
    pub fn chunk_policy(&self) -> ChunkPolicy {
        self.policy
    }

    /// Sets the chunk-size policy.
    pub fn set_chunk_policy(&mut self, policy: ChunkPolicy) {
        self.policy = policy;
    }

    /// How long the next chunk should be when `remaining` bytes are left to send: the policy's
    /// size, raised to the registry's minimum, capped at `remaining`.
    pub fn next_chunk_len(&self, remaining: u64) -> u64 {
        let preferred = self.policy.chunk_size.max(1);
        preferred
            .max(self.min_chunk_len.unwrap_or(0))
            .min(remaining)
    }

    /// `PATCH <location>` with the next chunk, which starts at [`UploadSession::offset`].
    /// The chunk's length must be known and non-zero.
    pub fn chunk_request(&mut self, chunk: Body) -> Result<Request<Body>, Error> {
        let operation = Operation::UploadChunk;
        self.expect(&[Phase::Ready], "send a chunk")?;
        let len = match chunk.len() {
            Some(0) => {
                return Err(Error::InvalidRequest {
                    operation,
                    reason: "a chunk may not be empty; finish the upload instead".to_owned(),
                });
            }
            Some(len) => len,
            None => {
                return Err(Error::InvalidRequest {
                    operation,
                    reason: "a chunk needs a known length for its Content-Range".to_owned(),
                });
            }
        };
        let start = self.offset;
        let end = start
            .checked_add(len - 1)
            .ok_or_else(|| Error::InvalidRequest {
                operation,
                reason: "the chunk would end beyond 2^64 bytes".to_owned(),
            })?;
        // `start-end` without the `bytes ` unit: the spec's form; ACR refuses the RFC 7233 one.
        let range = HeaderValue::from_str(&format!("{start}-{end}")).map_err(|e| {
            Error::InvalidRequest {
                operation,
                reason: e.to_string(),
            }
        })?;
        let request = build_request(
            operation,
            &self.location,
            pull_push(&self.repository),
            vec![
                (CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM)),
                (HeaderName::from_static("content-range"), range),
            ],
            chunk,
        )?;
        self.phase = Phase::Chunk { start, len };
        Ok(request)
    }

    /// Takes the answer to [`UploadSession::chunk_request`] (`202 Accepted`); returns the new
    /// offset.
    pub fn handle_chunk_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Response<B>,
    ) -> Result<u64, Error> {
        let operation = Operation::UploadChunk;
        let Phase::Chunk { start, len } = self.phase else {
            return Err(self.wrong_state("take a chunk response"));
        };
        self.fail_on_error(operation, response)?;
        // 202 per the spec; ECR answers 201, which is harmless to accept.
        self.read_common(operation, response)
            .inspect_err(|_| self.phase = Phase::Interrupted)?;
        let expected = start.saturating_add(len);
        let reported = headers::upload_range(operation, response.headers())
            .inspect_err(|_| self.phase = Phase::Interrupted)?;
        let consistent = match reported {
            None => true,
            Some(UploadRange::Exact(n)) => n == expected,
            Some(UploadRange::ZeroOrOne) => expected <= 1,
        };
        if !consistent {
            self.phase = Phase::Interrupted;
            let reported = match reported {
                Some(UploadRange::Exact(n)) => n,
                _ => 1,
            };
            return Err(Error::UploadOffset { expected, reported });
        }
        self.offset = expected;
        self.phase = Phase::Ready;
        Ok(self.offset)
    }

    /// `GET <location>`: how many bytes the registry holds. Allowed whenever the session is
    /// open, so that it can resume after a lost response or a failed request.
    pub fn status_request(&mut self) -> Result<Request<Body>, Error> {
        // A chunk or finish whose response never came counts as interrupted: asking for the
        // status is how to find out what the registry got.
        if !matches!(
            self.phase,
            Phase::Ready
                | Phase::Status
                | Phase::Interrupted
                | Phase::Chunk { .. }
                | Phase::Finish { .. }
        ) {
            return Err(self.wrong_state("check the status"));
        }
        let request = build_request(
            Operation::UploadStatus,
            &self.location,
            pull_push(&self.repository),
            Vec::new(),
            Body::Empty,
        )?;
        self.phase = Phase::Status;
        Ok(request)
    }

    /// Takes the answer to [`UploadSession::status_request`] (`204 No Content` with `Range`);
    /// the registry's offset becomes the session's, and the upload continues from there.
    pub fn handle_status_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Response<B>,
    ) -> Result<u64, Error> {
        let operation = Operation::UploadStatus;
        if self.phase != Phase::Status {
            return Err(self.wrong_state("take a status response"));
        }
        self.fail_on_error(operation, response)?;
        self.read_common(operation, response)
            .inspect_err(|_| self.phase = Phase::Interrupted)?;
        let reported = headers::upload_range(operation, response.headers())
            .inspect_err(|_| self.phase = Phase::Interrupted)?;
        let offset = match reported {
            Some(UploadRange::Exact(n)) => n,
            // `0-0` is zero or one byte; what this session counted settles it when it can.
            Some(UploadRange::ZeroOrOne) if self.offset <= 1 => self.offset,
            Some(UploadRange::ZeroOrOne) => {
                self.phase = Phase::Interrupted;
                return Err(Error::UploadOffset {
                    expected: self.offset,
                    reported: 1,
                });
            }
            None => {
                self.phase = Phase::Interrupted;
                return Err(Error::MissingHeader {
                    operation,
                    header: "Range",
                });
            }
        };
        self.offset = offset;
        self.phase = Phase::Ready;
        Ok(offset)
    }

    /// `PUT <location>&digest=<digest>` with the last bytes (or none): completes the upload.
    /// `digest` is that of the whole blob, known only now when the content was hashed while
    /// it was sent. The `Location`'s own query (such as `_state`) is kept.
    pub fn finish_request(
        &mut self,
        digest: &Digest,
        last_chunk: Body,
    ) -> Result<Request<Body>, Error> {
        self.expect(&[Phase::Ready], "finish the upload")?;
        let mut url = self.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let request = build_request(
            Operation::FinishUpload,
            &url,
            pull_push(&self.repository),
            vec![(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
            last_chunk,
        )?;
        self.phase = Phase::Finish {
            digest: digest.clone(),
        };
        Ok(request)
    }

    /// Takes the answer to [`UploadSession::finish_request`] (`201 Created`); returns the
    /// blob's digest, checked against `Docker-Content-Digest` when the registry sent one.
    pub fn handle_finish_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Response<B>,
    ) -> Result<Digest, Error> {
        let operation = Operation::FinishUpload;
        let Phase::Finish { digest } = &self.phase else {
            return Err(self.wrong_state("take a finishing response"));
        };
        let digest = digest.clone();
        if !response.status().is_success() {
            // A refused digest destroys the session on docker-registry; a 404 means it is gone.
            self.phase = match response.status() {
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => Phase::Failed,
                _ => Phase::Interrupted,
            };
            return Err(Error::from_response(operation, response));
        }
        if let Some(announced) = headers::digest(operation, response.headers())?
            && announced != digest
        {
            self.phase = Phase::Failed;
            return Err(Error::DigestMismatch {
                what: "the registry's digest of the uploaded blob".to_owned(),
                expected: digest,
                actual: announced,
            });
        }
        self.phase = Phase::Complete;
        Ok(digest)
    }

    /// `DELETE <location>`: abandons the upload. Needs the `delete` scope (ACR refuses a
    /// `pull,push` token for it).
    pub fn cancel_request(&mut self) -> Result<Request<Body>, Error> {
        if matches!(
            self.phase,
            Phase::Complete | Phase::Cancelled | Phase::Failed
        ) {
            return Err(self.wrong_state("cancel"));
        }
        let request = build_request(
            Operation::CancelUpload,
            &self.location,
            delete(&self.repository),
            Vec::new(),
            Body::Empty,
        )?;
        self.phase = Phase::Cancel;
        Ok(request)
    }

    /// Takes the answer to [`UploadSession::cancel_request`]. `404` counts as cancelled: the
    /// session is gone either way.
    pub fn handle_cancel_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Response<B>,
    ) -> Result<(), Error> {
        if self.phase != Phase::Cancel {
            return Err(self.wrong_state("take a cancel response"));
        }
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            self.phase = Phase::Cancelled;
            Ok(())
        } else {
            self.phase = Phase::Interrupted;
            Err(Error::from_response(Operation::CancelUpload, response))
        }
    }

    /// An error status: the session is lost on `404` (unknown or stale `Location`), and
    /// interrupted otherwise.
    fn fail_on_error<B: AsRef<[u8]>>(
        &mut self,
        operation: Operation,
        response: &Response<B>,
    ) -> Result<(), Error> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        self.phase = if status == StatusCode::NOT_FOUND {
            Phase::Failed
        } else {
            Phase::Interrupted
        };
        if status.is_redirection() {
            return Err(unexpected(operation, status, "a 2xx status"));
        }
        Err(Error::from_response(operation, response))
    }

    /// The headers every session response may carry: the next `Location`, the UUID and the
    /// minimum chunk length.
    fn read_common<B>(
        &mut self,
        operation: Operation,
        response: &Response<B>,
    ) -> Result<(), Error> {
        let headers = response.headers();
        // Registries must send a new Location; one that does not keeps the old one valid.
        if let Some(location) = headers::location(operation, headers, &self.location)? {
            self.location = location;
        }
        if let Some(uuid) = headers::text(operation, headers, headers::DOCKER_UPLOAD_UUID)?
            && !uuid.is_empty()
        {
            self.uuid = Some(uuid.to_owned());
        }
        if let Some(min) = headers::number(operation, headers, headers::OCI_CHUNK_MIN_LENGTH)? {
            self.min_chunk_len = Some(min);
        }
        Ok(())
    }

    fn expect(&self, allowed: &[Phase], action: &'static str) -> Result<(), Error> {
        if allowed.contains(&self.phase) {
            Ok(())
        } else {
            Err(self.wrong_state(action))
        }
    }

    fn wrong_state(&self, action: &'static str) -> Error {
        Error::UploadState {
            state: self.state(),
            action,
        }
    }
}

impl Registry {
    /// Interprets the answer to [`Registry::upload_start_request`] (`202 Accepted` with a
    /// `Location`): the new session.
    pub fn handle_upload_start_response<B: AsRef<[u8]>>(
        &self,
        reference: &Reference,
        response: &Response<B>,
    ) -> Result<UploadSession, Error> {
        let operation = Operation::StartUpload;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::from_response(operation, response));
        }
        if status != StatusCode::ACCEPTED {
            return Err(unexpected(operation, status, "202 Accepted"));
        }
        let url = self.repo_url(operation, reference, &["blobs", "uploads", ""])?;
        UploadSession::started(operation, reference, &url, response)
    }

    /// Interprets the answer to [`Registry::upload_monolithic_request`]: complete (`201`), or a
    /// session that needs the body again (`202`).
    pub fn handle_monolithic_response<B: AsRef<[u8]>>(
        &self,
        reference: &Reference,
        digest: &Digest,
        response: &Response<B>,
    ) -> Result<UploadOutcome, Error> {
        self.outcome(Operation::MonolithicUpload, reference, digest, response)
    }

    /// Interprets the answer to [`Registry::mount_request`]: mounted (`201`), or a fresh upload
    /// session (`202`) when the registry could not mount (unknown blob or source repository).
    pub fn handle_mount_response<B: AsRef<[u8]>>(
        &self,
        reference: &Reference,
        digest: &Digest,
        response: &Response<B>,
    ) -> Result<UploadOutcome, Error> {
        self.outcome(Operation::MountBlob, reference, digest, response)
    }

    fn outcome<B: AsRef<[u8]>>(
        &self,
        operation: Operation,
        reference: &Reference,
        digest: &Digest,
        response: &Response<B>,
    ) -> Result<UploadOutcome, Error> {
        match response.status() {
            StatusCode::CREATED => match headers::digest(operation, response.headers())? {
                Some(announced) if announced != *digest => Err(Error::DigestMismatch {
                    what: format!("the registry's digest of blob {digest}"),
                    expected: digest.clone(),
                    actual: announced,
                }),
                _ => Ok(UploadOutcome::Complete(digest.clone())),
            },
            StatusCode::ACCEPTED => {
                let url = self.repo_url(operation, reference, &["blobs", "uploads", ""])?;
                UploadSession::started(operation, reference, &url, response)
                    .map(|session| UploadOutcome::Session(Box::new(session)))
            }
            status if status.is_success() => {
                Err(unexpected(operation, status, "201 Created or 202 Accepted"))
            }
            _ => Err(Error::from_response(operation, response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheme;

    fn reference() -> Reference {
        "localhost:5000/demo".parse().unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Vec::new()).unwrap()
    }

    fn session() -> UploadSession {
        let registry = Registry::new(Scheme::Http, "localhost:5000").unwrap();
        registry
            .handle_upload_start_response(
                &reference(),
                &response(
                    202,
                    &[
                        ("Location", "/v2/demo/blobs/uploads/u?_state=0"),
                        ("Range", "0-0"),
                        ("Docker-Upload-UUID", "u"),
                    ],
                ),
            )
            .unwrap()
    }

    fn accepted(state: &str, range: &str) -> Response<Vec<u8>> {
        let location = format!("/v2/demo/blobs/uploads/u?_state={state}");
        response(202, &[("Location", &location), ("Range", range)])
    }

    #[test]
    fn started_session_is_ready_and_uses_the_location() {
        let s = session();
        assert_eq!(s.state(), UploadState::Ready);
        assert_eq!(s.offset(), 0);
        assert_eq!(s.uuid(), Some("u"));
        assert_eq!(
            s.location().as_str(),
            "http://localhost:5000/v2/demo/blobs/uploads/u?_state=0"
        );
    }

    #[test]
    fn every_response_moves_the_location() {
        let mut s = session();
        let request = s.chunk_request(Body::from("abc")).unwrap();
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(request.uri().query(), Some("_state=0"));
        assert_eq!(request.headers()["content-range"], "0-2");
        assert_eq!(request.headers()["content-length"], "3");
        assert_eq!(
            request.headers()["content-type"],
            "application/octet-stream"
        );
        assert_eq!(s.state(), UploadState::SendingChunk);
        assert_eq!(s.handle_chunk_response(&accepted("3", "0-2")).unwrap(), 3);

        let request = s.chunk_request(Body::from("de")).unwrap();
        assert_eq!(request.uri().query(), Some("_state=3"));
        assert_eq!(request.headers()["content-range"], "3-4");
        assert_eq!(s.handle_chunk_response(&accepted("5", "0-4")).unwrap(), 5);

        let digest = Digest::sha256_of(b"abcde");
        let request = s.finish_request(&digest, Body::Empty).unwrap();
        assert_eq!(request.method(), http::Method::PUT);
        let expected_query = format!("_state=5&digest={}", digest.as_str().replace(':', "%3A"));
        assert_eq!(request.uri().query(), Some(expected_query.as_str()));
        assert_eq!(request.headers()["content-length"], "0");
        let created = response(201, &[("Docker-Content-Digest", digest.as_str())]);
        assert_eq!(s.handle_finish_response(&created).unwrap(), digest);
        assert_eq!(s.state(), UploadState::Complete);
    }

    #[test]
    fn zero_zero_range_is_settled_by_the_own_count() {
        let mut s = session();
        s.chunk_request(Body::from("x")).unwrap();
        // docker-registry: one byte held, yet `Range: 0-0`.
        assert_eq!(s.handle_chunk_response(&accepted("1", "0-0")).unwrap(), 1);
        s.chunk_request(Body::from("yz")).unwrap();
        assert!(matches!(
            s.handle_chunk_response(&accepted("3", "0-0")),
            Err(Error::UploadOffset { expected: 3, .. })
        ));
        assert_eq!(s.state(), UploadState::Interrupted);
    }

    #[test]
    fn offset_mismatch_interrupts_and_status_resumes() {
        let mut s = session();
        s.chunk_request(Body::from("abcdef")).unwrap();
        let err = s.handle_chunk_response(&accepted("4", "0-3")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UploadOffset {
                    expected: 6,
                    reported: 4
                }
            ),
            "{err}"
        );
        assert_eq!(s.state(), UploadState::Interrupted);
        assert!(matches!(
            s.chunk_request(Body::from("g")),
            Err(Error::UploadState { .. })
        ));

        let request = s.status_request().unwrap();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().query(), Some("_state=4"));
        let status = response(
            204,
            &[
                ("Location", "/v2/demo/blobs/uploads/u?_state=4b"),
                ("Range", "0-3"),
            ],
        );
        assert_eq!(s.handle_status_response(&status).unwrap(), 4);
        assert_eq!(s.offset(), 4);
        let request = s.chunk_request(Body::from("ef")).unwrap();
        assert_eq!(request.headers()["content-range"], "4-5");
        assert_eq!(request.uri().query(), Some("_state=4b"));
    }

    #[test]
    fn a_lost_chunk_response_is_recovered_by_a_status_check() {
        let mut s = session();
        s.chunk_request(Body::from("abc")).unwrap();
        // The transport failed: no response. The registry may or may not have the bytes.
        s.status_request().unwrap();
        let status = response(204, &[("Range", "0-2")]);
        assert_eq!(s.handle_status_response(&status).unwrap(), 3);
        assert_eq!(s.state(), UploadState::Ready);
    }

    #[test]
    fn status_without_range_is_an_error() {
        let mut s = session();
        s.status_request().unwrap();
        let err = s.handle_status_response(&response(204, &[])).unwrap_err();
        assert!(matches!(
            err,
            Error::MissingHeader {
                header: "Range",
                ..
            }
        ));
        assert_eq!(s.state(), UploadState::Interrupted);
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut s = session();
        assert!(matches!(
            s.handle_chunk_response(&accepted("1", "0-0")),
            Err(Error::UploadState {
                state: UploadState::Ready,
                ..
            })
        ));
        assert!(s.handle_status_response(&response(204, &[])).is_err());
        assert!(s.handle_finish_response(&response(201, &[])).is_err());
        assert!(s.handle_cancel_response(&response(204, &[])).is_err());
        s.chunk_request(Body::from("a")).unwrap();
        assert!(s.chunk_request(Body::from("b")).is_err());
        assert!(
            s.finish_request(&Digest::sha256_of(b"a"), Body::Empty)
                .is_err()
        );
        assert_eq!(s.state(), UploadState::SendingChunk);
    }

    #[test]
    fn chunks_need_a_known_nonzero_length() {
        let mut s = session();
        assert!(matches!(
            s.chunk_request(Body::Empty),
            Err(Error::InvalidRequest { .. })
        ));
        let stream = Body::from_stream(EmptyStream, None);
        assert!(matches!(
            s.chunk_request(stream),
            Err(Error::InvalidRequest { .. })
        ));
        assert_eq!(s.state(), UploadState::Ready);
    }

    struct EmptyStream;
    impl futures_core::Stream for EmptyStream {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(None)
        }
    }

    #[test]
    fn stale_location_fails_the_session() {
        let mut s = session();
        s.chunk_request(Body::from("a")).unwrap();
        let stale = Response::builder()
            .status(404)
            .body(
                br#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid"}]}"#
                    .to_vec(),
            )
            .unwrap();
        let err = s.handle_chunk_response(&stale).unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
        assert_eq!(s.state(), UploadState::Failed);
        assert!(s.status_request().is_err());
        assert!(s.cancel_request().is_err());
    }

    #[test]
    fn server_error_interrupts() {
        let mut s = session();
        s.chunk_request(Body::from("a")).unwrap();
        let err = s.handle_chunk_response(&response(503, &[])).unwrap_err();
        assert!(err.registry_error().is_some_and(|e| e.is_retryable()));
        assert_eq!(s.state(), UploadState::Interrupted);
        assert!(s.status_request().is_ok());
    }

    #[test]
    fn finish_checks_the_registry_digest() {
        let mut s = session();
        let digest = Digest::sha256_of(b"");
        s.finish_request(&digest, Body::Empty).unwrap();
        let other = Digest::sha256_of(b"other");
        let err = s
            .handle_finish_response(&response(201, &[("Docker-Content-Digest", other.as_str())]))
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert_eq!(s.state(), UploadState::Failed);
    }

    #[test]
    fn refused_digest_fails_the_session() {
        let mut s = session();
        s.finish_request(&Digest::sha256_of(b"x"), Body::from("y"))
            .unwrap();
        s.handle_finish_response(&response(400, &[])).unwrap_err();
        assert_eq!(s.state(), UploadState::Failed);
    }

    #[test]
    fn cancel_from_any_open_state() {
        let mut s = session();
        s.chunk_request(Body::from("a")).unwrap();
        let request = s.cancel_request().unwrap();
        assert_eq!(request.method(), http::Method::DELETE);
        let info = crate::RequestInfo::of(&request).unwrap();
        assert_eq!(info.scopes[0].to_string(), "repository:demo:delete");
        s.handle_cancel_response(&response(204, &[])).unwrap();
        assert_eq!(s.state(), UploadState::Cancelled);
        assert!(s.chunk_request(Body::from("b")).is_err());
    }

    #[test]
    fn chunk_policy_honours_the_registry_minimum() {
        let mut s = session();
        assert_eq!(s.next_chunk_len(10 << 20), DEFAULT_CHUNK_SIZE);
        assert_eq!(s.next_chunk_len(100), 100);
        s.set_chunk_policy(ChunkPolicy { chunk_size: 1000 });
        assert_eq!(s.next_chunk_len(5000), 1000);
        s.chunk_request(Body::from("a")).unwrap();
        let with_min = response(
            202,
            &[
                ("Range", "0-0"),
                ("OCI-Chunk-Min-Length", "2048"),
                ("Location", "/x"),
            ],
        );
        s.handle_chunk_response(&with_min).unwrap();
        assert_eq!(s.min_chunk_len(), Some(2048));
        assert_eq!(s.next_chunk_len(5000), 2048);
        s.set_chunk_policy(ChunkPolicy { chunk_size: 0 });
        assert_eq!(s.next_chunk_len(1), 1);
        assert_eq!(s.location().as_str(), "http://localhost:5000/x");
    }

    #[test]
    fn resumed_session_starts_with_a_status_check() {
        let location =
            Url::parse("http://localhost:5000/v2/demo/blobs/uploads/u?_state=9").unwrap();
        let mut s = UploadSession::resume(&reference(), location);
        assert_eq!(s.state(), UploadState::Interrupted);
        assert!(s.chunk_request(Body::from("a")).is_err());
        s.status_request().unwrap();
        let status = response(204, &[("Range", "0-99")]);
        assert_eq!(s.handle_status_response(&status).unwrap(), 100);
        assert_eq!(s.offset(), 100);
    }

    #[test]
    fn monolithic_and_mount_outcomes() {
        let registry = Registry::new(Scheme::Http, "localhost:5000").unwrap();
        let digest = Digest::sha256_of(b"{}");
        let done = response(201, &[("Docker-Content-Digest", digest.as_str())]);
        assert!(matches!(
            registry.handle_mount_response(&reference(), &digest, &done).unwrap(),
            UploadOutcome::Complete(d) if d == digest
        ));
        let wrong = response(
            201,
            &[("Docker-Content-Digest", Digest::sha256_of(b"").as_str())],
        );
        assert!(
            registry
                .handle_monolithic_response(&reference(), &digest, &wrong)
                .is_err()
        );
        let session = accepted("0", "0-0");
        match registry
            .handle_monolithic_response(&reference(), &digest, &session)
            .unwrap()
        {
            UploadOutcome::Session(s) => assert_eq!(s.state(), UploadState::Ready),
            other => panic!("expected a session, got {other:?}"),
        }
        assert!(matches!(
            registry.handle_mount_response(&reference(), &digest, &response(200, &[])),
            Err(Error::UnexpectedStatus { .. })
        ));
        let start_without_location = response(202, &[]);
        assert!(matches!(
            registry.handle_upload_start_response(&reference(), &start_without_location),
            Err(Error::MissingHeader {
                header: "Location",
                ..
            })
        ));
    }
}
