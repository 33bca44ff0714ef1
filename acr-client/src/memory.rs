//! [`MemoryStore`]: a content store in memory, for tests and for embedding (build an artifact,
//! then `copy` it to a registry or a layout).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use oci_distribution_proto::{ByteStream, ReferrersResponse};
use oci_spec_types::{Descriptor, Digest, ManifestBytes, MediaType};
use tokio::io::AsyncReadExt;

use crate::{ContentStore, Error};

/// Blobs and manifests by digest, tags to digests, all in memory. Every write is verified.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use acr_client::{ContentStore, MemoryStore};
/// use oci_spec_types::MediaType;
/// let store = MemoryStore::new();
/// let d = store.push_bytes(MediaType::ImageLayer, "hello".into()).await?;
/// assert_eq!(&store.fetch_bytes(&d).await?[..], b"hello");
/// # Ok::<(), acr_client::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    blobs: Mutex<HashMap<Digest, Bytes>>,
    manifests: Mutex<HashMap<Digest, ManifestBytes>>,
    tags: Mutex<BTreeMap<String, Digest>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn verified(descriptor: &Descriptor, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() as u64 != descriptor.size {
            return Err(Error::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: bytes.len() as u64,
            });
        }
        if !descriptor.digest.matches(bytes) {
            let actual = Digest::sha256_of(bytes);
            return Err(Error::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn not_found(what: &str) -> Error {
        Error::Layout {
            path: "<memory>".into(),
            message: format!("no manifest tagged {what:?} in the memory store"),
        }
    }
}

#[async_trait]
impl ContentStore for MemoryStore {
    fn describe(&self) -> String {
        "memory store".to_owned()
    }
    async fn has_blob(&self, digest: &Digest) -> Result<bool, Error> {
        Ok(lock(&self.blobs).contains_key(digest) || lock(&self.manifests).contains_key(digest))
    }
    async fn push_file(&self, media_type: MediaType, path: &Path) -> Result<Descriptor, Error> {
        let bytes = tokio::fs::read(path).await.map_err(|e| Error::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        self.push_bytes(media_type, bytes.into()).await
    }
    async fn push_bytes(&self, media_type: MediaType, bytes: Bytes) -> Result<Descriptor, Error> {
        let descriptor = Descriptor::for_bytes(media_type, &bytes);
        lock(&self.blobs).insert(descriptor.digest.clone(), bytes);
        Ok(descriptor)
    }
    async fn fetch_to_file(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error> {
        let bytes = self.fetch_bytes(descriptor).await?;
        crate::layout::copy_verified(&bytes[..], descriptor, path).await
    }
    async fn fetch_bytes(&self, descriptor: &Descriptor) -> Result<Bytes, Error> {
        let bytes = lock(&self.blobs)
            .get(&descriptor.digest)
            .cloned()
            .or_else(|| {
                lock(&self.manifests)
                    .get(&descriptor.digest)
                    .map(|m| Bytes::copy_from_slice(m.bytes()))
            })
            .ok_or_else(|| Self::not_found(descriptor.digest.as_str()))?;
        Self::verified(descriptor, &bytes)?;
        Ok(bytes)
    }
    async fn get_manifest(&self, target: &str) -> Result<ManifestBytes, Error> {
        let digest = match Digest::parse(target) {
            Ok(digest) => digest,
            Err(_) => lock(&self.tags)
                .get(target)
                .cloned()
                .ok_or_else(|| Self::not_found(target))?,
        };
        lock(&self.manifests)
            .get(&digest)
            .cloned()
            .ok_or_else(|| Self::not_found(target))
    }
    async fn put_manifest(&self, manifest: &ManifestBytes, tags: &[String]) -> Result<(), Error> {
        lock(&self.manifests).insert(manifest.digest().clone(), manifest.clone());
        let mut all = lock(&self.tags);
        for tag in tags {
            all.insert(tag.clone(), manifest.digest().clone());
        }
        Ok(())
    }
    async fn tags(&self) -> Result<Vec<String>, Error> {
        Ok(lock(&self.tags).keys().cloned().collect())
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
    async fn mount_from(&self, _: &dyn ContentStore, _: &Digest) -> Result<bool, Error> {
        Ok(false)
    }
    async fn open_blob_stream(&self, descriptor: &Descriptor) -> Result<ByteStream, Error> {
        let bytes = self.fetch_bytes(descriptor).await?;
        Ok(Box::pin(Once(Some(bytes))))
    }
    async fn push_stream(&self, descriptor: &Descriptor, stream: ByteStream) -> Result<(), Error> {
        let mut reader = crate::repository::StreamReader::new(stream);
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::Io {
                path: "<stream>".into(),
                message: e.to_string(),
            })?;
        Self::verified(descriptor, &bytes)?;
        lock(&self.blobs).insert(descriptor.digest.clone(), bytes.into());
        Ok(())
    }
    async fn push_unknown(
        &self,
        media_type: MediaType,
        mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    ) -> Result<Descriptor, Error> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::Io {
                path: "<stdin>".into(),
                message: e.to_string(),
            })?;
        self.push_bytes(media_type, bytes.into()).await
    }
}

/// A stream of one chunk.
struct Once(Option<Bytes>);

impl futures_core::Stream for Once {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.take().map(Ok))
    }
}
