//! Well-known annotation keys of the OCI image spec, and the ones ORAS uses.

/// Date and time the content was created (RFC 3339).
pub const CREATED: &str = "org.opencontainers.image.created";
/// Contact details of the people or organisation responsible.
pub const AUTHORS: &str = "org.opencontainers.image.authors";
/// URL to find more information.
pub const URL: &str = "org.opencontainers.image.url";
/// URL to documentation.
pub const DOCUMENTATION: &str = "org.opencontainers.image.documentation";
/// URL to the source code.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// Version of the packaged software.
pub const VERSION: &str = "org.opencontainers.image.version";
/// Source control revision.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// Name of the distributing entity.
pub const VENDOR: &str = "org.opencontainers.image.vendor";
/// License(s) as an SPDX expression.
pub const LICENSES: &str = "org.opencontainers.image.licenses";
/// Name of the reference (a tag) in an OCI image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Human-readable title; for artifacts, the file name of a layer.
pub const TITLE: &str = "org.opencontainers.image.title";
/// Human-readable description.
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// Digest of the base image.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// Reference of the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// ORAS: digest of a directory's tar before compression.
pub const ORAS_CONTENT_DIGEST: &str = "io.deis.oras.content.digest";
/// ORAS: `"true"` when a layer is a directory packed as tar+gzip, to be unpacked on pull.
pub const ORAS_CONTENT_UNPACK: &str = "io.deis.oras.content.unpack";
