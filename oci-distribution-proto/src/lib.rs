//! The OCI distribution protocol, sans-IO.
//!
//! Second layer of the workspace: `oci-spec-types` <- **`oci-distribution-proto`** <- `acr-auth`
//! <- `acr-client` <- `acr-cli`. It builds `http::Request`s and interprets `http::Response`s;
//! it never opens a socket, sleeps or reads the clock, so any HTTP client can drive it, and
//! its tests run against canned responses and an in-memory registry.
//!
//! - [`Registry`] builds the request for every endpoint of the distribution spec (and the
//!   Docker catalog extension) and interprets each answer: `…_request` and
//!   `handle_…_response` pairs. Each request carries a [`RequestInfo`] in its extensions: the
//!   [`Operation`] and the token [`Scope`]s it needs.
//! - [`UploadSession`] is the state machine of a blob upload (`POST`, `PATCH`…, `PUT`).
//! - [`BlobVerifier`] checks streamed content against its digest and size.
//! - [`Transport`] is the one async trait the I/O layers implement; [`Body`] is its body type.
//! - Challenges, scopes, `Link` pagination, registry error envelopes and the referrers
//!   tag-schema fallback have their own modules, re-exported here.
//!
//! A registry error answer is an [`Error::Registry`] holding a [`RegistryError`]; everything
//! else that can go wrong is another variant of the one [`Error`] enum.
//!
//! ```
//! use oci_distribution_proto::{Operation, Registry, RequestInfo, Scheme};
//! use oci_distribution_proto::types::{MediaType, Reference};
//!
//! let reference: Reference = "localhost:5000/demo:v1".parse()?;
//! let registry = Registry::for_reference(&reference, Scheme::Http)?;
//!
//! // The request: URL, method, Accept list, and the scope a token needs.
//! let request = registry.manifest_get_request(&reference)?;
//! assert_eq!(request.method(), "GET");
//! assert_eq!(request.uri(), "http://localhost:5000/v2/demo/manifests/v1");
//! assert!(request.headers()["accept"].to_str()?.contains("application/vnd.oci.image.manifest.v1+json"));
//! let info = RequestInfo::of(&request).unwrap();
//! assert_eq!(info.operation, Operation::GetManifest);
//! assert_eq!(info.scopes[0].to_string(), "repository:demo:pull");
//!
//! // A canned answer, as docker-registry sends it; the digest is checked over the exact bytes.
//! let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
//! let digest = oci_distribution_proto::types::Digest::sha256_of(body);
//! let response = http::Response::builder()
//!     .status(200)
//!     .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
//!     .header("Docker-Content-Digest", digest.as_str())
//!     .body(body.to_vec())?;
//! let manifest = registry.handle_manifest_get_response(&reference, &response)?;
//! assert_eq!(manifest.digest(), &digest);
//! assert_eq!(manifest.media_type(), MediaType::ImageManifest);
//!
//! // An error answer becomes a typed error.
//! let missing = http::Response::builder()
//!     .status(404)
//!     .body(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec())?;
//! let error = registry.handle_manifest_get_response(&reference, &missing).unwrap_err();
//! assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use bytes;
pub use http;
pub use oci_spec_types as types;
pub use url;

mod blob;
mod challenge;
mod error;
mod headers;
mod listing;
mod manifest;
mod pagination;
mod referrers;
mod registry;
mod registry_error;
mod scope;
mod transport;
mod upload;

pub use blob::{BlobDownload, BlobInfo, BlobVerifier, ContentRange};
pub use challenge::*;
pub use error::Error;
pub use listing::{Catalog, ReferrersPage, TagList};
pub use manifest::{ERROR_BODY_LIMIT, PushedManifest, check_manifest_size};
pub use pagination::*;
pub use referrers::*;
pub use registry::{ByteRange, Operation, Registry, RequestInfo, Scheme};
pub use registry_error::*;
pub use scope::*;
pub use transport::{Body, ByteStream, Transport, TransportError};
pub use upload::{ChunkPolicy, DEFAULT_CHUNK_SIZE, UploadOutcome, UploadSession, UploadState};
