//! [`ContentStore`]: what registries and OCI layouts have in common, so every high-level
//! operation works on both.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use oci_distribution_proto::{ByteStream, ReferrersResponse};
use oci_spec_types::{Descriptor, Digest, ManifestBytes, MediaType};

use crate::repository::{Hashing, file_body, hash_file};
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
    /// The referrers API's answer for `subject`; `None` when the store has no such API (use
    /// the tag-schema fallback then).
    async fn referrers_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
    ) -> Result<Option<ReferrersResponse>, Error>;
    /// Stores a manifest like [`ContentStore::put_manifest`]; returns whether the store
    /// indexed its `subject` itself (a registry with the referrers API answers `OCI-Subject`).
    async fn put_manifest_indexed(
        &self,
        manifest: &ManifestBytes,
        tags: &[String],
    ) -> Result<bool, Error>;
    /// Mounts a blob from `source` when both are repositories of one registry: no bytes move.
    /// `false` when that is not possible.
    async fn mount_from(&self, source: &dyn ContentStore, digest: &Digest) -> Result<bool, Error>;
    /// A blob's content as a stream (verified by whoever stores it).
    async fn open_blob_stream(&self, descriptor: &Descriptor) -> Result<ByteStream, Error>;
    /// Stores a blob from a stream, verified against `descriptor`.
    async fn push_stream(&self, descriptor: &Descriptor, stream: ByteStream) -> Result<(), Error>;
    /// Stores a stream of unknown length (standard input) as a blob; returns its descriptor.
    async fn push_unknown(
        &self,
        media_type: MediaType,
        reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    ) -> Result<Descriptor, Error>;
    /// Stores a manifest that another manifest points at (an index's child, a referrer): in a
    /// registry, by digest; in an OCI layout, as a blob only, so `index.json` lists only what
    /// was tagged and is written once per operation.
    async fn put_child_manifest(&self, manifest: &ManifestBytes) -> Result<bool, Error> {
        self.put_manifest_indexed(manifest, &[]).await
    }
    /// This store as a registry repository, when it is one.
    fn as_repository(&self) -> Option<&Repository> {
        None
    }
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
    async fn referrers_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
    ) -> Result<Option<ReferrersResponse>, Error> {
        Self::referrers_api(self, subject, artifact_type).await
    }
    async fn put_manifest_indexed(
        &self,
        manifest: &ManifestBytes,
        tags: &[String],
    ) -> Result<bool, Error> {
        let mut indexed = false;
        if tags.is_empty() {
            indexed = self
                .put_manifest_pushed(manifest, None)
                .await?
                .subject
                .is_some();
        }
        for tag in tags {
            indexed |= self
                .put_manifest_pushed(manifest, Some(tag))
                .await?
                .subject
                .is_some();
        }
        Ok(indexed)
    }
    async fn mount_from(&self, source: &dyn ContentStore, digest: &Digest) -> Result<bool, Error> {
        match source.as_repository() {
            Some(from) if from.registry().is_same_origin(self.registry().base_url()) => {
                self.mount(digest, from.reference()).await
            }
            _ => Ok(false),
        }
    }
    async fn open_blob_stream(&self, descriptor: &Descriptor) -> Result<ByteStream, Error> {
        self.open_stream(descriptor).await
    }
    async fn push_stream(&self, descriptor: &Descriptor, stream: ByteStream) -> Result<(), Error> {
        Self::push_stream(self, descriptor, stream).await
    }
    async fn push_unknown(
        &self,
        media_type: MediaType,
        reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    ) -> Result<Descriptor, Error> {
        self.push_reader(media_type, reader).await
    }
    fn as_repository(&self) -> Option<&Repository> {
        Some(self)
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
        // A manifest reached by digest (an index's child) may be a blob without an entry in
        // index.json: its own `mediaType` (or shape) tells what it is.
        let (digest, media_type) = match Digest::parse(target) {
            Ok(digest) if self.exists(&digest).await => {
                let listed = self.resolve(target).await.ok().map(|d| d.media_type);
                (digest, listed)
            }
            _ => {
                let descriptor = self.resolve(target).await?;
                (descriptor.digest, Some(descriptor.media_type))
            }
        };
        let bytes = self.read(&digest).await?;
        ManifestBytes::parse(bytes, media_type.as_ref()).map_err(|e| Error::Layout {
            path: self.root().to_owned(),
            message: format!("manifest {digest}: {e}"),
        })
    }
    async fn put_manifest(&self, manifest: &ManifestBytes, tags: &[String]) -> Result<(), Error> {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Self::put_manifest(self, manifest, &tags).await.map(|_| ())
    }
    async fn tags(&self) -> Result<Vec<String>, Error> {
        Self::tags(self).await
    }
    async fn referrers_api(
        &self,
        _: &Digest,
        _: Option<&MediaType>,
    ) -> Result<Option<ReferrersResponse>, Error> {
        Ok(None)
    }
    async fn put_manifest_indexed(
        &self,
        manifest: &ManifestBytes,
        tags: &[String],
    ) -> Result<bool, Error> {
        ContentStore::put_manifest(self, manifest, tags).await?;
        Ok(false)
    }
    async fn put_child_manifest(&self, manifest: &ManifestBytes) -> Result<bool, Error> {
        self.write(&manifest.descriptor(), manifest.bytes()).await?;
        Ok(false)
    }
    async fn mount_from(&self, _: &dyn ContentStore, _: &Digest) -> Result<bool, Error> {
        Ok(false)
    }
    async fn open_blob_stream(&self, descriptor: &Descriptor) -> Result<ByteStream, Error> {
        let path = self.blob_path(&descriptor.digest);
        // Verified on the way out too: a layout on disk can be damaged.
        match file_body(
            &path,
            0,
            descriptor.size,
            Hashing::Whole(descriptor.digest.clone()),
        )? {
            oci_distribution_proto::Body::Stream { stream, .. } => Ok(stream),
            _ => Err(Error::Io {
                path,
                message: "not a stream".into(),
            }),
        }
    }
    async fn push_stream(&self, descriptor: &Descriptor, stream: ByteStream) -> Result<(), Error> {
        self.write(descriptor, crate::repository::StreamReader::new(stream))
            .await
    }
    async fn push_unknown(
        &self,
        media_type: MediaType,
        reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    ) -> Result<Descriptor, Error> {
        self.write_unknown(media_type, reader).await
    }
}
