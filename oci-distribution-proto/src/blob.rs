//! Interpreting blob responses, and [`BlobVerifier`] to check a streamed blob against its
//! descriptor.

use http::{Response, StatusCode};
use oci_spec_types::{Descriptor, Digest, Digester};

use crate::manifest::{deleted, unexpected};
use crate::{ByteRange, Error, Operation, Registry, headers};

/// What a blob `HEAD` reported: the blob exists, with this size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// The `Content-Range` of a partial (`206`) response: `bytes start-end/total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte sent.
    pub start: u64,
    /// The last byte sent, inclusive.
    pub end: u64,
    /// The blob's whole size, when the registry said (`*` otherwise).
    pub total: Option<u64>,
}

/// The head of a blob download, checked: where the body starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDownload {
    /// The body's length (`Content-Length`), when given. Read no more than this.
    pub len: Option<u64>,
    /// For a `206 Partial Content`: which part of the blob the body is.
    pub range: Option<ContentRange>,
}

impl BlobDownload {
    /// The blob offset of the body's first byte: 0 unless the registry sent a part. A registry
    /// may ignore `Range` and send the whole blob (`200`): then this is 0 even if a range was
    /// asked for, and the caller must skip what it already has.
    pub fn offset(&self) -> u64 {
        self.range.map_or(0, |r| r.start)
    }
}

impl Registry {
    /// Interprets the answer to [`Registry::blob_head_request`]: `Some` with the size when the
    /// blob exists, `None` on `404`.
    pub fn handle_blob_head_response<B>(
        &self,
        digest: &Digest,
        response: &Response<B>,
    ) -> Result<Option<BlobInfo>, Error> {
        let operation = Operation::HeadBlob;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::from_parts(
                operation,
                status,
                response.headers(),
                &[],
            ));
        }
        if status != StatusCode::OK {
            return Err(unexpected(operation, status, "200 OK or 404 Not Found"));
        }
        check_announced(operation, digest, response)?;
        let size = headers::number(operation, response.headers(), headers::CONTENT_LENGTH)?.ok_or(
            Error::MissingHeader {
                operation,
                header: "Content-Length",
            },
        )?;
        Ok(Some(BlobInfo {
            digest: digest.clone(),
            size,
        }))
    }

    /// Checks the head of the answer to [`Registry::blob_get_request`] before its body is
    /// streamed. `range` is what the request asked for.
    ///
    /// An error status gives [`Error::Registry`] from the head alone; to include the error
    /// envelope, read the body (up to [`crate::ERROR_BODY_LIMIT`]) and use
    /// [`Error::from_response`] instead. The body must still be checked with a
    /// [`BlobVerifier`]: the digest header cannot be trusted (after a redirect to storage it is
    /// absent).
    pub fn handle_blob_get_response<B>(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
        response: &Response<B>,
    ) -> Result<BlobDownload, Error> {
        let operation = Operation::GetBlob;
        let status = response.status();
        if !status.is_success() {
            if status.is_redirection() {
                return Err(unexpected(
                    operation,
                    status,
                    "200 or 206: the transport must follow redirects to the blob's storage",
                ));
            }
            return Err(Error::from_parts(
                operation,
                status,
                response.headers(),
                &[],
            ));
        }
        check_announced(operation, digest, response)?;
        let len = headers::number(operation, response.headers(), headers::CONTENT_LENGTH)?;
        match status {
            StatusCode::OK => Ok(BlobDownload { len, range: None }),
            StatusCode::PARTIAL_CONTENT => {
                let content_range = headers::content_range(operation, response.headers())?.ok_or(
                    Error::MissingHeader {
                        operation,
                        header: "Content-Range",
                    },
                )?;
                if let Some(range) = range
                    && content_range.start != range.start
                {
                    return Err(headers::invalid(
                        operation,
                        "Content-Range",
                        format!("bytes {}-{}", content_range.start, content_range.end).as_bytes(),
                        &format!("the request asked for bytes from {}", range.start),
                    ));
                }
                // `end >= start` holds (the parser checks it); the sum can still overflow.
                let part_len = (content_range.end - content_range.start).checked_add(1);
                if let Some(len) = len
                    && Some(len) != part_len
                {
                    return Err(headers::invalid(
                        operation,
                        "Content-Length",
                        len.to_string().as_bytes(),
                        "it disagrees with Content-Range",
                    ));
                }
                Ok(BlobDownload {
                    len,
                    range: Some(content_range),
                })
            }
            other => Err(unexpected(
                operation,
                other,
                "200 OK or 206 Partial Content",
            )),
        }
    }

    /// Interprets the answer to [`Registry::blob_delete_request`] (`202 Accepted`).
    pub fn handle_blob_delete_response<B: AsRef<[u8]>>(
        &self,
        response: &Response<B>,
    ) -> Result<(), Error> {
        deleted(Operation::DeleteBlob, response)
    }
}

/// A `Docker-Content-Digest` on a blob response must name the blob asked for.
fn check_announced<B>(
    operation: Operation,
    digest: &Digest,
    response: &Response<B>,
) -> Result<(), Error> {
    match headers::digest(operation, response.headers())? {
        Some(announced) if announced != *digest => Err(Error::DigestMismatch {
            what: format!("the registry's digest of blob {digest}"),
            expected: digest.clone(),
            actual: announced,
        }),
        _ => Ok(()),
    }
}

/// Checks streamed content against its digest and size, as the bytes go by.
///
/// It refuses bytes beyond the expected size as soon as they arrive (so a hostile registry
/// cannot fill a disk), and [`BlobVerifier::finish`] checks the digest and that nothing is
/// missing. Keep the content away from its final name until `finish` succeeds.
///
/// ```
/// use oci_distribution_proto::BlobVerifier;
/// use oci_distribution_proto::types::{Descriptor, MediaType};
/// let descriptor = Descriptor::for_bytes(MediaType::ImageLayer, b"hello");
/// let mut verifier = BlobVerifier::for_descriptor(&descriptor)?;
/// verifier.update(b"hel")?;
/// verifier.update(b"lo")?;
/// assert_eq!(verifier.finish()?, descriptor.digest);
/// # Ok::<(), oci_distribution_proto::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BlobVerifier {
    expected: Digest,
    size: Option<u64>,
    digester: Digester,
}

impl BlobVerifier {
    /// A verifier for content that must hash to `digest` and, when given, be `size` bytes long.
    pub fn new(digest: &Digest, size: Option<u64>) -> Result<Self, Error> {
        let digester = digest.digester().ok_or_else(|| Error::UnsupportedDigest {
            digest: digest.clone(),
        })?;
        Ok(Self {
            expected: digest.clone(),
            size,
            digester,
        })
    }

    /// A verifier for the content a descriptor describes (its digest and size).
    pub fn for_descriptor(descriptor: &Descriptor) -> Result<Self, Error> {
        Self::new(&descriptor.digest, Some(descriptor.size))
    }

    /// Feeds the next bytes; fails as soon as there are more than the expected size.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let received = self.digester.bytes_hashed() + bytes.len() as u64;
        if let Some(size) = self.size
            && received > size
        {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", self.expected),
                expected: size,
                actual: received,
            });
        }
        self.digester.update(bytes);
        Ok(())
    }

    /// How many bytes were fed so far.
    pub fn received(&self) -> u64 {
        self.digester.bytes_hashed()
    }

    /// Checks the size and digest of everything fed; returns the digest.
    pub fn finish(self) -> Result<Digest, Error> {
        let received = self.received();
        if let Some(size) = self.size
            && received != size
        {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", self.expected),
                expected: size,
                actual: received,
            });
        }
        let actual = self.digester.finalize();
        if actual == self.expected {
            Ok(actual)
        } else {
            Err(Error::DigestMismatch {
                what: format!("blob of {received} bytes"),
                expected: self.expected,
                actual,
            })
        }
    }
}
