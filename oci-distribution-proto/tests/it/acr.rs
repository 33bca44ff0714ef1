//! Replays of real Azure Container Registry answers (`tests/fixtures/acr`, converted from the
//! Azure SDKs' recorded sessions; see its README for which recording each comes from).

use oci_distribution_proto::http::{Method, Request, Response, StatusCode};
use oci_distribution_proto::types::{Digest, Reference};
use oci_distribution_proto::url::Url;
use oci_distribution_proto::{
    BlobVerifier, Body, ByteRange, Error, ErrorCode, Registry, RequestInfo, Scheme, UploadOutcome,
    UploadState, parse_challenges_from,
};

use crate::support::{fixture, fixture_bytes, header};

const DIR: &str = "acr";
const HOST: &str = "https://azacrlivetest.azurecr.io";
/// The 1472-byte blob of the recorded chunked upload and ranged reads.
const BLOB: &str = "sha256:042a816809aac8d0f7d7cacac7965782ee2ecac3f21bcf9f24b1de1a7387b769";

fn registry() -> Registry {
    Registry::new(Scheme::Https, "azacrlivetest.azurecr.io").unwrap()
}

fn repo(name: &str) -> Reference {
    format!("azacrlivetest.azurecr.io/{name}").parse().unwrap()
}

fn blob() -> Digest {
    BLOB.parse().unwrap()
}

/// The scopes a 401 challenge asks for, as strings, sorted.
fn challenged_scopes(response: &Response<Vec<u8>>) -> Vec<String> {
    let challenges = parse_challenges_from(response.headers()).unwrap();
    let bearer = challenges[0].as_bearer().unwrap();
    let mut scopes: Vec<String> = bearer.scopes().iter().map(ToString::to_string).collect();
    scopes.sort();
    scopes
}

fn declared_scopes<B>(request: &Request<B>) -> Vec<String> {
    let mut scopes: Vec<String> = RequestInfo::of(request)
        .unwrap()
        .scopes
        .iter()
        .map(ToString::to_string)
        .collect();
    scopes.sort();
    scopes
}

#[test]
fn recorded_chunked_upload_is_reproduced_request_by_request() {
    let hello = repo("hello-world");
    let request = registry().upload_start_request(&hello).unwrap();
    assert_eq!(
        request.uri().to_string(),
        format!("{HOST}/v2/hello-world/blobs/uploads/")
    );
    let started = fixture(DIR, "chunk-start-202");
    let mut session = registry()
        .handle_upload_start_response(&hello, &started)
        .unwrap();
    // ACR's Location is relative, with `_nouploadcache` and `_state` to keep.
    assert_eq!(
        session.location().as_str(),
        format!("{HOST}{}", header(&started, "location"))
    );

    let chunks = [
        fixture_bytes(DIR, "chunk-1.bin"),
        fixture_bytes(DIR, "chunk-2.bin"),
    ];
    let mut previous = started;
    for (chunk, (range, name, offset)) in chunks.iter().zip([
        ("0-735", "chunk-patch1-202", 736),
        ("736-1471", "chunk-patch2-202", 1472),
    ]) {
        let request = session.chunk_request(Body::from(chunk.clone())).unwrap();
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(
            request.uri().to_string(),
            format!("{HOST}{}", header(&previous, "location"))
        );
        assert_eq!(request.headers()["content-range"], range);
        assert_eq!(
            request.headers()["content-length"],
            chunk.len().to_string().as_str()
        );
        let response = fixture(DIR, name);
        assert_eq!(session.handle_chunk_response(&response).unwrap(), offset);
        previous = response;
    }

    let digest = Digest::sha256_of(&chunks.concat());
    assert_eq!(digest, blob());
    let request = session.finish_request(&digest, Body::Empty).unwrap();
    // Exactly the URL the Go SDK sent: the last Location with `&digest=sha256%3A…` appended.
    assert_eq!(
        request.uri().to_string(),
        format!(
            "{HOST}{}&digest=sha256%3A{}",
            header(&previous, "location"),
            digest.encoded()
        )
    );
    let done = session
        .handle_finish_response(&fixture(DIR, "chunk-put-201"))
        .unwrap();
    assert_eq!(done, blob());
}

#[test]
fn upload_status_and_cancel_need_the_delete_scope() {
    let hello = repo("hello-world");
    let mut session = registry()
        .handle_upload_start_response(&hello, &fixture(DIR, "status-start-202"))
        .unwrap();
    session.status_request().unwrap();
    let status = fixture(DIR, "status-204");
    assert_eq!(session.handle_status_response(&status).unwrap(), 0);
    assert_eq!(
        session.location().as_str(),
        format!("{HOST}{}", header(&status, "location"))
    );

    let request = session.cancel_request().unwrap();
    let refused = fixture(DIR, "cancel-401-insufficient-scope");
    // The scope the request declares is the one ACR asks for.
    assert_eq!(declared_scopes(&request), challenged_scopes(&refused));
    let error = session.handle_cancel_response(&refused).unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(
        error.registry_error().and_then(|e| e.code()),
        Some(&ErrorCode::Unauthorized)
    );
    assert_eq!(session.state(), UploadState::Interrupted);

    // With a token, the same cancel goes through.
    session.cancel_request().unwrap();
    session
        .handle_cancel_response(&fixture(DIR, "cancel-204"))
        .unwrap();
    assert_eq!(session.state(), UploadState::Cancelled);
}

#[test]
fn mount_declares_both_scopes_and_falls_back_to_a_session() {
    let hello = repo("hello-world");
    let alpine = repo("alpine");
    let request = registry().mount_request(&hello, &blob(), &alpine).unwrap();
    assert_eq!(
        declared_scopes(&request),
        challenged_scopes(&fixture(DIR, "mount-401-two-scopes"))
    );
    let outcome = registry()
        .handle_mount_response(&hello, &blob(), &fixture(DIR, "mount-fallback-202"))
        .unwrap();
    let UploadOutcome::Session(session) = outcome else {
        panic!("the recorded mount fell back to an upload session");
    };
    assert_eq!(session.offset(), 0);
    assert_eq!(session.uuid(), Some("00000000-0000-0000-0000-000000000000"));
}

#[test]
fn blob_redirect_is_left_to_the_transport() {
    let response = fixture(DIR, "blob-get-307");
    let digest: Digest = "sha256:654b93f61054e4ce90ed203bb8d556a6200d5f906cf3eca0620738d6dc18cbed"
        .parse()
        .unwrap();
    let error = registry()
        .handle_blob_get_response(&digest, None, &response)
        .unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedStatus { status, .. } if status == StatusCode::TEMPORARY_REDIRECT)
    );
    // The storage URL is another origin: the registry's token must not follow the redirect.
    let storage = Url::parse(header(&response, "location")).unwrap();
    assert!(!registry().is_same_origin(&storage));
    let acr = Registry::new(Scheme::Https, "annelocontainerregistry.azurecr.io").unwrap();
    acr.handle_blob_delete_response(&fixture(DIR, "blob-delete-202"))
        .unwrap();
}

#[test]
fn blob_head_and_ranged_reads() {
    let info = registry()
        .handle_blob_head_response(&blob(), &fixture(DIR, "blob-head-200"))
        .unwrap()
        .unwrap();
    assert_eq!(info.size, 1472);

    let mut verifier = BlobVerifier::new(&blob(), Some(info.size)).unwrap();
    for (range, name, expected) in [
        (ByteRange::inclusive(0, 999), "blob-range1-206", (0, 999)),
        // The end past the blob is clamped by the server: 1000-1471.
        (
            ByteRange::inclusive(1000, 1999),
            "blob-range2-206",
            (1000, 1471),
        ),
    ] {
        let request = registry()
            .blob_get_request(&repo("alpine"), &blob(), range)
            .unwrap();
        assert_eq!(
            request.headers()["range"],
            format!("bytes={}-{}", expected.0, range.unwrap().end.unwrap()).as_str()
        );
        let response = fixture(DIR, name);
        let download = registry()
            .handle_blob_get_response(&blob(), range, &response)
            .unwrap();
        let content_range = download.range.unwrap();
        assert_eq!((content_range.start, content_range.end), expected);
        assert_eq!(content_range.total, Some(1472));
        assert_eq!(download.len, Some(response.body().len() as u64));
        verifier.update(response.body()).unwrap();
    }
    assert_eq!(verifier.finish().unwrap(), blob());
}

#[test]
fn errors_as_acr_sends_them() {
    let tagged = repo("hello-world:wrong-tag");
    let error = registry()
        .handle_manifest_get_response(&tagged, &fixture(DIR, "manifest-wrong-tag-404"))
        .unwrap_err();
    assert_eq!(
        error.registry_error().and_then(|e| e.code()),
        Some(&ErrorCode::ManifestUnknown)
    );

    // A path the router does not know: plain text, no envelope.
    let error = registry()
        .handle_blob_delete_response(&fixture(DIR, "blob-bad-digest-404"))
        .unwrap_err();
    let registry_error = error.registry_error().unwrap();
    assert_eq!(registry_error.code(), None);
    assert_eq!(registry_error.body_excerpt(), Some("404 page not found"));
}

#[test]
fn reserialized_manifest_fails_the_digest_check() {
    // The recorder re-serialised the JSON, so the bytes no longer hash to the header's digest:
    // exactly what a tampering proxy would produce.
    let latest = repo("hello-world:latest");
    let error = registry()
        .handle_manifest_get_response(&latest, &fixture(DIR, "manifest-reserialized-200"))
        .unwrap_err();
    match error {
        Error::DigestMismatch { expected, .. } => assert_eq!(
            expected.as_str(),
            "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"
        ),
        other => panic!("expected a digest mismatch, got {other}"),
    }
}
