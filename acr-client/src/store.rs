//! [`ContentStore`]: what registries and OCI layouts have in common, so every high-level
//! operation works on both.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use oci_spec_types::{Descriptor, Digest, ManifestBytes, MediaType};

use crate::repository::hash_file;
use crate::{Error, OciLayout, Repository};

/// A place content lives: a registry repository or an OCI image layout.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// A name for messages: a reference or a folder.
    fn describe(&self) -> String;
    /// Whether the blob is there.
    async fn has_blob(&self, digest: &Digest) -> Result<bool, Error>;
    /// Stores a file as a blob; returns its descriptor.
    async fn push_file(&self, media_type: MediaType, path: &Path) -> Result<Descriptor, Error>;
    /// Stores bytes as a blob; returns the descriptor.
    async fn push_bytes(&self, media_type: MediaType, bytes: Bytes) -> Result<Descriptor, Error>;
    /// Writes a blob to `path`, verified, atomically.
    async fn fetch_to_file(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error>;
    /// Reads a small blob, verified.
    async fn fetch_bytes(&self, descriptor: &Descriptor) -> Result<Bytes, Error>;
    /// The manifest a tag or digest points at.
    async fn get_manifest(&self, target: &str) -> Result<ManifestBytes, Error>;
    /// Stores a manifest and tags it (by digest only when `tags` is empty).
    async fn put_manifest(&self, manifest: &ManifestBytes, tags: &[String]) -> Result<(), Error>;
    /// Every tag.
    async fn tags(&self) -> Result<Vec<String>, Error>;
}

#[async_trait]
impl ContentStore for Repository {
    fn describe(&self) -> String {
        self.reference().to_string()
    }
    async fn has_blob(&self, digest: &Digest) -> Result<bool, Error> {
        Ok(self.blob_exists(digest).await?.is_some())
    }
    async fn push_file(&self, media_type: MediaType, path: &Path) -> Result<Descriptor, Error> {
        Self::push_file(self, media_type, path).await
    }
    async fn push_bytes(&self, media_type: MediaType, bytes: Bytes) -> Result<Descriptor, Error> {
        Self::push_bytes(self, media_type, bytes).await
    }
    async fn fetch_to_file(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error> {
        Self::fetch_to_file(self, descriptor, path).await
    }
    async fn fetch_bytes(&self, descriptor: &Descriptor) -> Result<Bytes, Error> {
        Self::fetch_bytes(self, descriptor).await
    }
    async fn get_manifest(&self, target: &str) -> Result<ManifestBytes, Error> {
        Self::get_manifest(self, target).await
    }
    async fn put_manifest(&self, manifest: &ManifestBytes, tags: &[String]) -> Result<(), Error> {
        if tags.is_empty() {
            Self::put_manifest(self, manifest, None).await?;
        }
        for tag in tags {
            Self::put_manifest(self, manifest, Some(tag)).await?;
        }
        Ok(())
    }
    async fn tags(&self) -> Result<Vec<String>, Error> {
        Self::tags(self).await
    }
}

#[async_trait]
impl ContentStore for OciLayout {
    fn describe(&self) -> String {
        format!("OCI layout {}", self.root().display())
    }
    async fn has_blob(&self, digest: &Digest) -> Result<bool, Error> {
        Ok(self.exists(digest).await)
    }
    async fn push_file(&self, media_type: MediaType, path: &Path) -> Result<Descriptor, Error> {
        let (digest, size) = hash_file(path).await?;
        let descriptor = Descriptor::new(media_type, digest, size);
        let file = tokio::fs::File::open(path).await.map_err(|e| Error::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        // The copy is verified against the first hash: a file that changed fails here.
        self.write(&descriptor, file).await.map_err(|e| match e {
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => {
                Error::ChangedWhileReading {
                    path: path.to_owned(),
                }
            }
            other => other,
        })?;
        Ok(descriptor)
    }
    async fn push_bytes(&self, media_type: MediaType, bytes: Bytes) -> Result<Descriptor, Error> {
        self.write_bytes(media_type, &bytes).await
    }
    async fn fetch_to_file(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error> {
        let source = self.open_blob(&descriptor.digest).await?;
        crate::layout::copy_verified(source, descriptor, path).await
    }
    async fn fetch_bytes(&self, descriptor: &Descriptor) -> Result<Bytes, Error> {
        Ok(self.read(&descriptor.digest).await?.into())
    }
    async fn get_manifest(&self, target: &str) -> Result<ManifestBytes, Error> {
        let descriptor = self.resolve(target).await?;
        let bytes = self.read(&descriptor.digest).await?;
        ManifestBytes::parse(bytes, Some(&descriptor.media_type)).map_err(|e| Error::Layout {
            path: self.root().to_owned(),
            message: format!("manifest {}: {e}", descriptor.digest),
        })
    }
    async fn put_manifest(&self, manifest: &ManifestBytes, tags: &[String]) -> Result<(), Error> {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Self::put_manifest(self, manifest, &tags).await.map(|_| ())
    }
    async fn tags(&self) -> Result<Vec<String>, Error> {
        Self::tags(self).await
    }
}
