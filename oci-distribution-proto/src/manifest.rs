//! Interpreting manifest responses: size limit before reading, digest verification over the
//! exact bytes, media type from `Content-Type`.

use http::{Response, StatusCode};
use oci_spec_types::{Descriptor, Digest, MAX_MANIFEST_SIZE, ManifestBytes, MediaType, Reference};

use crate::{Error, Operation, Registry, headers};

/// The most bytes of an error body worth reading: error envelopes are small, and a registry or
/// proxy that sends a huge one should not make the client buffer it.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Checks a manifest response's head before its body is read, and returns how many bytes of
/// body to read at most (the limit for [`crate::Body::collect`]).
///
/// A success whose `Content-Length` exceeds [`MAX_MANIFEST_SIZE`] is refused here, so a hostile
/// or broken registry cannot make the client buffer an arbitrary amount. An error response
/// gets [`ERROR_BODY_LIMIT`], enough for its error envelope.
///
/// ```
/// use oci_distribution_proto::check_manifest_size;
/// let huge = http::Response::builder().status(200).header("Content-Length", "4194305").body(())?;
/// assert!(check_manifest_size(&huge).is_err());
/// let fine = http::Response::builder().status(200).header("Content-Length", "512").body(())?;
/// assert_eq!(check_manifest_size(&fine)?, 512);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_manifest_size<B>(response: &Response<B>) -> Result<u64, Error> {
    if !response.status().is_success() {
        return Ok(ERROR_BODY_LIMIT);
    }
    let operation = Operation::GetManifest;
    match headers::number(operation, response.headers(), headers::CONTENT_LENGTH)? {
        Some(size) if size > MAX_MANIFEST_SIZE => Err(Error::ManifestTooLarge {
            size,
            limit: MAX_MANIFEST_SIZE,
        }),
        Some(size) => Ok(size),
        None => Ok(MAX_MANIFEST_SIZE),
    }
}

/// What a manifest `PUT` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// The manifest's digest (checked against `Docker-Content-Digest` when the registry sent one).
    pub digest: Digest,
    /// The `OCI-Subject` header: the registry indexed the manifest's `subject` for the referrers
    /// API, so the tag-schema fallback need not be updated. `None` from registries without the
    /// referrers API (docker-registry 2.8).
    pub subject: Option<Digest>,
}

impl Registry {
    /// Interprets the answer to [`Registry::manifest_get_request`]: the exact bytes, parsed,
    /// with their digest verified.
    ///
    /// When `reference` has a digest, the bytes must hash to it; otherwise (by tag) they must
    /// hash to `Docker-Content-Digest` when the registry sent one. The kind comes from the body's
    /// `mediaType` and `Content-Type`, which must agree.
    pub fn handle_manifest_get_response<B: AsRef<[u8]>>(
        &self,
        reference: &Reference,
        response: &Response<B>,
    ) -> Result<ManifestBytes, Error> {
        let operation = Operation::GetManifest;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::from_response(operation, response));
        }
        if status != StatusCode::OK {
            return Err(unexpected(operation, status, "200 OK"));
        }
        let body = response.body().as_ref();
        let size = body.len() as u64;
        if size > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                size,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let what = || format!("manifest {reference}");
        if let Some(expected) =
            headers::number(operation, response.headers(), headers::CONTENT_LENGTH)?
            && expected != size
        {
            return Err(Error::SizeMismatch {
                what: what(),
                expected,
                actual: size,
            });
        }
        let announced = headers::digest(operation, response.headers())?;
        if let Some(requested) = reference.digest() {
            verify(what(), requested, body)?;
        }
        if let Some(announced) = &announced {
            verify(what(), announced, body)?;
        }
        let content_type = content_type(operation, response)?;
        ManifestBytes::parse(body.to_vec(), content_type.as_ref())
            .map_err(|source| Error::Manifest { operation, source })
    }

    /// Interprets the answer to [`Registry::manifest_head_request`] as a descriptor: media type
    /// from `Content-Type`, size from `Content-Length`, digest from `Docker-Content-Digest`
    /// (which must equal the reference's digest when it has one).
    pub fn handle_manifest_head_response<B>(
        &self,
        reference: &Reference,
        response: &Response<B>,
    ) -> Result<Descriptor, Error> {
        let operation = Operation::HeadManifest;
        let status = response.status();
        if !status.is_success() {
            // A HEAD answer has no body: the status and headers are all there is.
            return Err(Error::from_parts(
                operation,
                status,
                response.headers(),
                &[],
            ));
        }
        if status != StatusCode::OK {
            return Err(unexpected(operation, status, "200 OK"));
        }
        let media_type = content_type(operation, response)?.ok_or(Error::MissingHeader {
            operation,
            header: "Content-Type",
        })?;
        let size = headers::number(operation, response.headers(), headers::CONTENT_LENGTH)?.ok_or(
            Error::MissingHeader {
                operation,
                header: "Content-Length",
            },
        )?;
        let announced = headers::digest(operation, response.headers())?;
        let digest = match (reference.digest(), announced) {
            (Some(requested), Some(announced)) if *requested != announced => {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {reference}"),
                    expected: requested.clone(),
                    actual: announced,
                });
            }
            (Some(requested), _) => requested.clone(),
            (None, Some(announced)) => announced,
            (None, None) => {
                return Err(Error::MissingHeader {
                    operation,
                    header: "Docker-Content-Digest",
                });
            }
        };
        Ok(Descriptor::new(media_type, digest, size))
    }

    /// Interprets the answer to [`Registry::manifest_put_request`] for `manifest`.
    pub fn handle_manifest_put_response<B: AsRef<[u8]>>(
        &self,
        manifest: &ManifestBytes,
        response: &Response<B>,
    ) -> Result<PushedManifest, Error> {
        let operation = Operation::PutManifest;
        if !response.status().is_success() {
            return Err(Error::from_response(operation, response));
        }
        if let Some(announced) = headers::digest(operation, response.headers())?
            && announced != *manifest.digest()
        {
            return Err(Error::DigestMismatch {
                what: "the registry's digest of the pushed manifest".to_owned(),
                expected: manifest.digest().clone(),
                actual: announced,
            });
        }
        let subject = match headers::text(operation, response.headers(), headers::OCI_SUBJECT)? {
            None | Some("") => None,
            Some(value) => Some(Digest::parse(value).map_err(|e| {
                headers::invalid(operation, "OCI-Subject", value.as_bytes(), &e.to_string())
            })?),
        };
        Ok(PushedManifest {
            digest: manifest.digest().clone(),
            subject,
        })
    }

    /// Interprets the answer to [`Registry::manifest_delete_request`] (`202 Accepted`).
    pub fn handle_manifest_delete_response<B: AsRef<[u8]>>(
        &self,
        response: &Response<B>,
    ) -> Result<(), Error> {
        deleted(Operation::DeleteManifest, response)
    }
}

/// A delete is done on any success status (`202` per the spec; some registries say `200`/`204`).
pub(crate) fn deleted<B: AsRef<[u8]>>(
    operation: Operation,
    response: &Response<B>,
) -> Result<(), Error> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(Error::from_response(operation, response))
    }
}

pub(crate) fn unexpected(
    operation: Operation,
    status: StatusCode,
    expected: &'static str,
) -> Error {
    Error::UnexpectedStatus {
        operation,
        status,
        expected,
    }
}

/// The `Content-Type` as a media type (parameters dropped); `None` when absent.
fn content_type<B>(
    operation: Operation,
    response: &Response<B>,
) -> Result<Option<MediaType>, Error> {
    Ok(
        headers::text(operation, response.headers(), headers::CONTENT_TYPE)?
            .filter(|t| !t.is_empty())
            .map(MediaType::from_content_type),
    )
}

/// Checks that `bytes` hash to `expected`.
pub(crate) fn verify(what: String, expected: &Digest, bytes: &[u8]) -> Result<(), Error> {
    let algorithm = expected
        .algorithm()
        .ok_or_else(|| Error::UnsupportedDigest {
            digest: expected.clone(),
        })?;
    let actual = Digest::compute(algorithm, bytes);
    if actual == *expected {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what,
            expected: expected.clone(),
            actual,
        })
    }
}
