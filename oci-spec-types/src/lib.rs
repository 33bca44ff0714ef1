//! Pure data types of the OCI image and distribution specs.
//!
//! This is the lowest layer of the workspace: `oci-spec-types` <- `oci-distribution-proto` <-
//! `acr-auth` <- `acr-client` <- `acr-cli`. It does no I/O and has no async; it depends on
//! serde, serde_json and sha2 only. Values parse once at the edge into types that cannot hold
//! an invalid digest or reference.
//!
//! ```
//! use oci_spec_types::{annotations, Descriptor, ImageManifest, ManifestBytes, MediaType, Reference};
//!
//! let file = b"hello, registry";
//! let layer = Descriptor::for_bytes(MediaType::ImageLayer, file)
//!     .with_annotation(annotations::TITLE, "hello.txt");
//! let manifest = ImageManifest::artifact(MediaType::from("application/vnd.example.greeting"), vec![layer]);
//! let raw = ManifestBytes::from_manifest(manifest.into());
//!
//! let target: Reference = "localhost:5000/greetings:v1".parse()?;
//! let pinned = target.with_digest(raw.digest().clone());
//! assert_eq!(pinned.to_string(), format!("localhost:5000/greetings@{}", raw.digest()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod annotations;
mod base64;
mod descriptor;
mod digest;
mod error;
mod manifest;
mod media_type;
mod reference;

pub use descriptor::{Annotations, Descriptor, EMPTY_JSON, Extra, Platform};
pub use digest::{Algorithm, Digest, DigestError, Digester};
pub use error::Error;
pub use manifest::{
    ArtifactManifest, ImageIndex, ImageManifest, MAX_MANIFEST_SIZE, Manifest, ManifestBytes,
};
pub use media_type::MediaType;
pub use reference::{MAX_NAME_LEN, MAX_TAG_LEN, Reference, ReferenceError};

/// Docker schema 2 image manifest: the same shape as an OCI image manifest.
pub type DockerManifest = ImageManifest;
/// Docker schema 2 manifest list: the same shape as an OCI image index.
pub type DockerManifestList = ImageIndex;
