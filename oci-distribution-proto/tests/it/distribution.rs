//! Replays of exchanges captured from docker-registry 2.8.2 (`tests/fixtures/distribution`,
//! made by its `capture.sh`): each built request must match what the registry was sent, and
//! each interpreter must read what it answered.

use oci_distribution_proto::http::{Method, StatusCode};
use oci_distribution_proto::types::{Digest, ManifestBytes, MediaType, Reference};
use oci_distribution_proto::{
    BlobVerifier, Body, ByteRange, Error, ErrorCode, Operation, PageRequest, Registry, Scheme,
    UploadOutcome, UploadSession, UploadState, check_manifest_size,
};

use crate::support::{fixture, fixture_bytes, header};

const DIR: &str = "distribution";
const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const EMPTY: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const MANIFEST: &str = "sha256:93313e2f7f3bd6d6d07731453fb757f36ae2a17a7ccb950e00889ae75220c694";

fn registry() -> Registry {
    Registry::new(Scheme::Http, "127.0.0.1:5055").unwrap()
}

fn repo() -> Reference {
    "127.0.0.1:5055/fixtures/demo".parse().unwrap()
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

fn registry_code(error: &Error) -> ErrorCode {
    error
        .registry_error()
        .and_then(|e| e.code().cloned())
        .unwrap_or_else(|| panic!("not a registry error with a code: {error}"))
}

fn start(name: &str) -> UploadSession {
    registry()
        .handle_upload_start_response(&repo(), &fixture(DIR, name))
        .unwrap()
}

#[test]
fn version_check() {
    registry()
        .handle_version_response(&fixture(DIR, "version-200"))
        .unwrap();
}

#[test]
fn chunked_upload_follows_every_new_location() {
    let started = fixture(DIR, "upload-start-202");
    let mut session = start("upload-start-202");
    assert_eq!(session.location().as_str(), header(&started, "location"));
    assert_eq!(session.uuid(), Some(header(&started, "docker-upload-uuid")));
    assert_eq!(session.offset(), 0);

    let request = session.chunk_request(Body::from("hel")).unwrap();
    assert_eq!(request.method(), Method::PATCH);
    assert_eq!(request.uri().to_string(), header(&started, "location"));
    assert_eq!(request.headers()["content-range"], "0-2");
    assert_eq!(
        request.headers()["content-type"],
        "application/octet-stream"
    );
    let patched = fixture(DIR, "upload-patch-202");
    assert_eq!(session.handle_chunk_response(&patched).unwrap(), 3);
    assert_eq!(session.location().as_str(), header(&patched, "location"));

    let request = session.status_request().unwrap();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().to_string(), header(&patched, "location"));
    let status = fixture(DIR, "upload-status-204");
    assert_eq!(session.handle_status_response(&status).unwrap(), 3);

    let request = session.chunk_request(Body::from("lo")).unwrap();
    assert_eq!(request.uri().to_string(), header(&status, "location"));
    assert_eq!(request.headers()["content-range"], "3-4");
    let patched = fixture(DIR, "upload-patch2-202");
    assert_eq!(session.handle_chunk_response(&patched).unwrap(), 5);

    let request = session.finish_request(&digest(HELLO), Body::Empty).unwrap();
    assert_eq!(request.method(), Method::PUT);
    // The `_state` query is kept and the digest appended (form-encoded, as the url crate does).
    assert_eq!(
        request.uri().to_string(),
        format!(
            "{}&digest={}",
            header(&patched, "location"),
            HELLO.replace(':', "%3A")
        )
    );
    let done = session
        .handle_finish_response(&fixture(DIR, "upload-put-201"))
        .unwrap();
    assert_eq!(done, digest(HELLO));
    assert_eq!(session.state(), UploadState::Complete);
}

#[test]
fn one_byte_gives_zero_zero_range() {
    let mut session = start("quirk-start-202");
    session.chunk_request(Body::from("x")).unwrap();
    let response = fixture(DIR, "quirk-patch-1-byte-202");
    assert_eq!(header(&response, "range"), "0-0");
    assert_eq!(session.handle_chunk_response(&response).unwrap(), 1);
}

#[test]
fn stale_location_loses_the_session() {
    // The PATCH went to the start Location after a chunk had been accepted.
    let mut session = start("quirk-start-202");
    session.chunk_request(Body::from("y")).unwrap();
    let error = session
        .handle_chunk_response(&fixture(DIR, "quirk-patch-stale-404"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::BlobUploadInvalid);
    assert_eq!(session.state(), UploadState::Failed);
}

#[test]
fn cancel() {
    let started = fixture(DIR, "cancel-start-202");
    let mut session = start("cancel-start-202");
    let request = session.cancel_request().unwrap();
    assert_eq!(request.method(), Method::DELETE);
    assert_eq!(request.uri().to_string(), header(&started, "location"));
    session
        .handle_cancel_response(&fixture(DIR, "cancel-204"))
        .unwrap();
    assert_eq!(session.state(), UploadState::Cancelled);
}

#[test]
fn wrong_digest_is_refused_and_ends_the_session() {
    let mut session = start("wrong-start-202");
    session
        .finish_request(&digest(HELLO), Body::from("nope"))
        .unwrap();
    let error = session
        .handle_finish_response(&fixture(DIR, "wrong-put-400"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::DigestInvalid);
    assert!(
        error
            .to_string()
            .contains("completing the blob upload failed"),
        "{error}"
    );
    assert_eq!(session.state(), UploadState::Failed);
}

#[test]
fn monolithic_post_is_ignored_then_put_completes() {
    let empty = digest(EMPTY);
    let request = registry()
        .upload_monolithic_request(&repo(), &empty, Body::from("{}"))
        .unwrap();
    assert_eq!(request.method(), Method::POST);
    let outcome = registry()
        .handle_monolithic_response(&repo(), &empty, &fixture(DIR, "monolithic-post-202"))
        .unwrap();
    let UploadOutcome::Session(mut session) = outcome else {
        panic!("docker-registry answers a monolithic POST with a session");
    };
    let request = session.finish_request(&empty, Body::from("{}")).unwrap();
    assert_eq!(request.headers()["content-length"], "2");
    let done = session
        .handle_finish_response(&fixture(DIR, "monolithic-put-201"))
        .unwrap();
    assert_eq!(done, empty);
}

#[test]
fn mount_or_fallback_session() {
    let other: Reference = "127.0.0.1:5055/fixtures/other".parse().unwrap();
    let hello = digest(HELLO);
    let mounted = registry()
        .handle_mount_response(&other, &hello, &fixture(DIR, "mount-201"))
        .unwrap();
    assert!(matches!(mounted, UploadOutcome::Complete(d) if d == hello));

    let fallback = fixture(DIR, "mount-fallback-202");
    match registry()
        .handle_mount_response(&other, &hello, &fallback)
        .unwrap()
    {
        UploadOutcome::Session(session) => {
            assert_eq!(session.location().as_str(), header(&fallback, "location"));
            assert_eq!(session.state(), UploadState::Ready);
        }
        UploadOutcome::Complete(_) => panic!("202 is a session"),
    }
}

#[test]
fn blob_head() {
    let hello = digest(HELLO);
    let info = registry()
        .handle_blob_head_response(&hello, &fixture(DIR, "blob-head-200"))
        .unwrap()
        .unwrap();
    assert_eq!((info.digest, info.size), (hello.clone(), 5));
    let missing = registry()
        .handle_blob_head_response(&hello, &fixture(DIR, "blob-head-404"))
        .unwrap();
    assert_eq!(missing, None);
    // The registry naming another digest than asked for is an error, not an answer.
    let other = Digest::sha256_of(b"other");
    assert!(matches!(
        registry().handle_blob_head_response(&other, &fixture(DIR, "blob-head-200")),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn blob_get_whole_and_ranged() {
    let hello = digest(HELLO);
    let whole = fixture(DIR, "blob-get-200");
    let download = registry()
        .handle_blob_get_response(&hello, None, &whole)
        .unwrap();
    assert_eq!(
        (download.len, download.range, download.offset()),
        (Some(5), None, 0)
    );
    let mut verifier = BlobVerifier::new(&hello, download.len).unwrap();
    verifier.update(whole.body()).unwrap();
    assert_eq!(verifier.finish().unwrap(), hello);

    let range = ByteRange::inclusive(1, 3);
    let request = registry().blob_get_request(&repo(), &hello, range).unwrap();
    assert_eq!(request.headers()["range"], "bytes=1-3");
    let partial = fixture(DIR, "blob-get-206");
    let download = registry()
        .handle_blob_get_response(&hello, range, &partial)
        .unwrap();
    let content_range = download.range.unwrap();
    assert_eq!(
        (content_range.start, content_range.end, content_range.total),
        (1, 3, Some(5))
    );
    assert_eq!(download.offset(), 1);
    assert_eq!(partial.body(), b"ell");
    // A part that starts elsewhere than asked is refused.
    assert!(
        registry()
            .handle_blob_get_response(&hello, ByteRange::inclusive(2, 3), &partial)
            .is_err()
    );
}

fn pushed_manifest() -> ManifestBytes {
    let bytes = fixture_bytes(DIR, "manifest.json");
    ManifestBytes::parse(bytes, Some(&MediaType::ImageManifest)).unwrap()
}

#[test]
fn manifest_put() {
    let manifest = pushed_manifest();
    assert_eq!(manifest.digest().as_str(), MANIFEST);
    let tagged: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let request = registry().manifest_put_request(&tagged, &manifest).unwrap();
    assert_eq!(request.uri().path(), "/v2/fixtures/demo/manifests/v1");
    let pushed = registry()
        .handle_manifest_put_response(&manifest, &fixture(DIR, "manifest-put-201"))
        .unwrap();
    assert_eq!(pushed.digest.as_str(), MANIFEST);
    assert_eq!(pushed.subject, None);

    let error = registry()
        .handle_manifest_put_response(&manifest, &fixture(DIR, "manifest-put-blob-unknown-400"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::ManifestBlobUnknown);
}

#[test]
fn manifest_get_by_tag_and_by_digest() {
    let response = fixture(DIR, "manifest-get-200");
    assert_eq!(check_manifest_size(&response).unwrap(), 491);
    let tagged: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let manifest = registry()
        .handle_manifest_get_response(&tagged, &response)
        .unwrap();
    assert_eq!(manifest.digest().as_str(), MANIFEST);
    assert_eq!(manifest.media_type(), MediaType::ImageManifest);
    assert_eq!(
        manifest.manifest().artifact_type().map(MediaType::as_str),
        Some("application/vnd.acr.demo.v1")
    );
    assert_eq!(manifest.bytes(), pushed_manifest().bytes());

    let pinned = tagged.with_digest(digest(MANIFEST));
    registry()
        .handle_manifest_get_response(&pinned, &response)
        .unwrap();
    let wrong_pin = tagged.with_digest(digest(HELLO));
    assert!(matches!(
        registry().handle_manifest_get_response(&wrong_pin, &response),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn manifest_get_refuses_tampered_bytes() {
    let mut response = fixture(DIR, "manifest-get-200");
    let body = response.body_mut();
    let at = body.iter().position(|&b| b == b'5').unwrap();
    body[at] = b'6'; // Still a valid manifest, but other bytes.
    let tagged: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let error = registry()
        .handle_manifest_get_response(&tagged, &response)
        .unwrap_err();
    match error {
        Error::DigestMismatch { expected, .. } => assert_eq!(expected.as_str(), MANIFEST),
        other => panic!("expected a digest mismatch, got {other}"),
    }
}

#[test]
fn manifest_head() {
    let tagged: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let descriptor = registry()
        .handle_manifest_head_response(&tagged, &fixture(DIR, "manifest-head-200"))
        .unwrap();
    assert_eq!(descriptor.media_type, MediaType::ImageManifest);
    assert_eq!(descriptor.digest.as_str(), MANIFEST);
    assert_eq!(descriptor.size, 491);
}

#[test]
fn manifest_without_accept_is_unknown() {
    let tagged: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let error = registry()
        .handle_manifest_get_response(&tagged, &fixture(DIR, "manifest-get-no-accept-404"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::ManifestUnknown);
    assert!(error.to_string().contains("accept header"), "{error}");
    let error = registry()
        .handle_manifest_get_response(&tagged, &fixture(DIR, "manifest-get-unknown-404"))
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert!(matches!(
        error,
        Error::Registry {
            operation: Operation::GetManifest,
            ..
        }
    ));
}

#[test]
fn tags() {
    let request = registry()
        .tags_request(&repo(), &PageRequest::new())
        .unwrap();
    let tags = registry()
        .handle_tags_response(request.uri(), &fixture(DIR, "tags-200"))
        .unwrap();
    assert_eq!(tags.name, "fixtures/demo");
    assert_eq!(tags.tags, ["v1", "v2"]);
    assert_eq!(tags.next, None);
    let error = registry()
        .handle_tags_response(request.uri(), &fixture(DIR, "tags-unknown-404"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::NameUnknown);
}

#[test]
fn catalog_pages() {
    let request = registry()
        .catalog_request(&PageRequest::new().with_n(1))
        .unwrap();
    let page = registry()
        .handle_catalog_response(request.uri(), &fixture(DIR, "catalog-page-200"))
        .unwrap();
    assert_eq!(page.repositories, ["fixtures/demo"]);
    let next = page.next.unwrap();
    assert_eq!(
        next.as_str(),
        "http://127.0.0.1:5055/v2/_catalog?last=fixtures%2Fdemo&n=1"
    );
    let request = registry().catalog_next_request(&next).unwrap();
    let last = registry()
        .handle_catalog_response(request.uri(), &fixture(DIR, "catalog-last-200"))
        .unwrap();
    assert_eq!(last.repositories, ["fixtures/other"]);
    assert_eq!(last.next, None);
}

#[test]
fn referrers_api_is_absent() {
    let request = registry()
        .referrers_request(&repo(), &digest(MANIFEST), None)
        .unwrap();
    let page = registry()
        .handle_referrers_response(request.uri(), &fixture(DIR, "referrers-404"))
        .unwrap();
    assert_eq!(page, None);
}

#[test]
fn deletes() {
    let by_tag: Reference = "127.0.0.1:5055/fixtures/demo:v1".parse().unwrap();
    let error = registry()
        .handle_manifest_delete_response(&fixture(DIR, "manifest-delete-by-tag-400"))
        .unwrap_err();
    assert_eq!(registry_code(&error), ErrorCode::DigestInvalid);
    let request = registry()
        .manifest_delete_request(&by_tag.with_digest(digest(MANIFEST)))
        .unwrap();
    assert_eq!(
        request.uri().path(),
        format!("/v2/fixtures/demo/manifests/{MANIFEST}")
    );
    registry()
        .handle_manifest_delete_response(&fixture(DIR, "manifest-delete-202"))
        .unwrap();
    registry()
        .handle_blob_delete_response(&fixture(DIR, "blob-delete-202"))
        .unwrap();
}
