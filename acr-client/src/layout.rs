//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as a content
//! store: the embedded default that needs no registry, and a source or target for copies.
//!
//! Every blob is written to a temporary file in the layout, hashed while written, and renamed
//! into place only when its digest and size match, so a reader never sees a partial blob.
//! `index.json` is rewritten once per [`OciLayout::update_index`] call (not once per manifest)
//! under a lock file, so concurrent writers do not lose each other's tags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec_types::{Descriptor, Digest, ImageIndex, ManifestBytes, MediaType, annotations};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::Error;

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";

/// An OCI image layout on disk.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use acr_client::OciLayout;
/// use oci_spec_types::{Descriptor, ImageManifest, ManifestBytes, MediaType};
/// let dir = tempfile::tempdir()?;
/// let layout = OciLayout::create(dir.path()).await?;
/// let layer = layout.write_bytes(MediaType::ImageLayer, b"hello").await?;
/// let manifest = ManifestBytes::from_manifest(
///     ImageManifest::artifact(MediaType::from("application/vnd.example"), vec![layer]).into(),
/// );
/// layout.write_bytes(MediaType::EmptyJson, b"{}").await?;
/// layout.put_manifest(&manifest, &["v1"]).await?;
/// assert_eq!(layout.resolve("v1").await?.digest, *manifest.digest());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Opens a layout, creating the directory, `oci-layout` and an empty `index.json` when absent.
    pub async fn create(root: &Path) -> Result<Self, Error> {
        tokio::fs::create_dir_all(root.join("blobs"))
            .await
            .map_err(io(root, "creating the layout"))?;
        let layout_file = root.join(LAYOUT_FILE);
        if !tokio::fs::try_exists(&layout_file).await.unwrap_or(false) {
            write_atomic(&layout_file, LAYOUT_CONTENT).await?;
        }
        let index = root.join(INDEX_FILE);
        if !tokio::fs::try_exists(&index).await.unwrap_or(false) {
            let empty = serde_json::to_vec(&ImageIndex::new(Vec::new())).unwrap_or_default();
            write_atomic(&index, &empty).await?;
        }
        Self::open(root).await
    }

    /// Opens an existing layout; fails clearly when `root` is not one.
    pub async fn open(root: &Path) -> Result<Self, Error> {
        let text = tokio::fs::read(root.join(LAYOUT_FILE))
            .await
            .map_err(|_| Error::Layout {
                path: root.to_owned(),
                message: "not an OCI image layout (no `oci-layout` file)".into(),
            })?;
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        if value["imageLayoutVersion"] != "1.0.0" {
            return Err(Error::Layout {
                path: root.to_owned(),
                message: "`oci-layout` does not declare imageLayoutVersion 1.0.0".into(),
            });
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives. The digest type guarantees the path stays inside
    /// `blobs/` (its parts hold no `/` or `..`).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm_str())
            .join(digest.encoded())
    }

    /// Whether the blob is present.
    pub async fn exists(&self, digest: &Digest) -> bool {
        tokio::fs::try_exists(self.blob_path(digest))
            .await
            .unwrap_or(false)
    }

    /// Reads a whole blob, checking its digest (for manifests and configs: small content).
    pub async fn read(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = tokio::fs::read(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Layout {
                path: self.root.clone(),
                message: format!("blob {digest} is not in the layout"),
            },
            _ => Error::Io {
                path: path.clone(),
                message: e.to_string(),
            },
        })?;
        if !digest.matches(&bytes) {
            return Err(Error::Layout {
                path: path.clone(),
                message: format!(
                    "blob content does not match its name {digest}: the layout is corrupt"
                ),
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming.
    pub async fn open_blob(&self, digest: &Digest) -> Result<tokio::fs::File, Error> {
        let path = self.blob_path(digest);
        tokio::fs::File::open(&path)
            .await
            .map_err(io(&path, "opening blob"))
    }

    /// Writes `bytes` as a blob and returns its descriptor.
    pub async fn write_bytes(
        &self,
        media_type: MediaType,
        bytes: &[u8],
    ) -> Result<Descriptor, Error> {
        let descriptor = Descriptor::for_bytes(media_type, bytes);
        self.write(&descriptor, bytes).await?;
        Ok(descriptor)
    }

    /// Streams `reader` into the blob `expected`, verifying its size and digest before it
    /// becomes visible. A blob already present is not written again.
    pub async fn write(
        &self,
        expected: &Descriptor,
        reader: impl AsyncRead + Unpin,
    ) -> Result<(), Error> {
        if self.exists(&expected.digest).await {
            return Ok(());
        }
        let target = self.blob_path(&expected.digest);
        let dir = target.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io(&dir, "creating blob folder"))?;
        copy_verified(reader, expected, &target).await
    }

    /// Streams content of unknown length and digest into the layout: written to a temporary
    /// file while hashed, then renamed to its digest's name.
    pub async fn write_unknown(
        &self,
        media_type: MediaType,
        mut reader: impl AsyncRead + Unpin,
    ) -> Result<Descriptor, Error> {
        let dir = self.root.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io(&dir, "creating blob folder"))?;
        let temp = TempFile::new(&dir, "stdin").await?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, temp.file().await?);
        let mut digester = oci_spec_types::Digester::default();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buffer)
                .await
                .map_err(io(&dir, "reading"))?;
            if n == 0 {
                break;
            }
            let chunk = buffer.get(..n).unwrap_or_default();
            digester.update(chunk);
            file.write_all(chunk).await.map_err(io(&dir, "writing"))?;
        }
        file.flush().await.map_err(io(&dir, "writing"))?;
        let size = digester.bytes_hashed();
        let descriptor = Descriptor::new(media_type, digester.finalize(), size);
        temp.persist(&self.blob_path(&descriptor.digest)).await?;
        Ok(descriptor)
    }

    /// Stores a manifest (its exact bytes) and points each of `tags` at it in `index.json`.
    pub async fn put_manifest(
        &self,
        manifest: &ManifestBytes,
        tags: &[&str],
    ) -> Result<Descriptor, Error> {
        let descriptor = manifest.descriptor();
        self.write(&descriptor, manifest.bytes()).await?;
        self.update_index(|index| {
            for tag in tags {
                set_tag(index, &descriptor, tag);
            }
            if tags.is_empty()
                && !index
                    .manifests
                    .iter()
                    .any(|d| d.digest == descriptor.digest)
            {
                index.manifests.push(descriptor.clone());
            }
        })
        .await?;
        Ok(descriptor)
    }

    /// The descriptor tagged `tag` (`org.opencontainers.image.ref.name`), or the manifest with
    /// that digest when `tag` is a digest.
    pub async fn resolve(&self, tag: &str) -> Result<Descriptor, Error> {
        let index = self.index().await?;
        let by_digest = Digest::parse(tag).ok();
        index
            .manifests
            .into_iter()
            .find(|d| match &by_digest {
                Some(digest) => d.digest == *digest,
                None => d.annotations.get(annotations::REF_NAME).map(String::as_str) == Some(tag),
            })
            .ok_or_else(|| Error::Layout {
                path: self.root.clone(),
                message: format!("no manifest tagged {tag:?} in the layout"),
            })
    }

    /// Every tag in the layout, sorted.
    pub async fn tags(&self) -> Result<Vec<String>, Error> {
        let index = self.index().await?;
        let mut tags: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(annotations::REF_NAME).cloned())
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Reads `index.json`.
    pub async fn index(&self) -> Result<ImageIndex, Error> {
        let path = self.root.join(INDEX_FILE);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(io(&path, "reading index.json"))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Layout {
            path,
            message: format!("index.json is not an image index: {e}"),
        })
    }

    /// Changes `index.json` under a lock: read, apply `change`, write atomically, once.
    pub async fn update_index(&self, change: impl FnOnce(&mut ImageIndex)) -> Result<(), Error> {
        let _lock = IndexLock::acquire(&self.root).await?;
        let mut index = self.index().await?;
        change(&mut index);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::Layout {
            path: self.root.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.root.join(INDEX_FILE), &bytes).await
    }
}

/// Copies `source` to `target` through a temporary file beside it, verified against
/// `descriptor` before the rename.
pub(crate) async fn copy_verified(
    mut source: impl AsyncRead + Unpin,
    descriptor: &Descriptor,
    target: &Path,
) -> Result<(), Error> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let stem = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let temp = TempFile::new(dir, stem).await?;
    let mut digester = descriptor
        .digest
        .digester()
        .ok_or_else(|| Error::UnsupportedDigest {
            digest: descriptor.digest.clone(),
        })?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, temp.file().await?);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = source
            .read(&mut buffer)
            .await
            .map_err(io(target, "reading"))?;
        if n == 0 {
            break;
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        digester.update(chunk);
        if digester.bytes_hashed() > descriptor.size {
            return Err(Error::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: digester.bytes_hashed(),
            });
        }
        file.write_all(chunk).await.map_err(io(target, "writing"))?;
    }
    file.flush().await.map_err(io(target, "writing"))?;
    let size = digester.bytes_hashed();
    if size != descriptor.size {
        return Err(Error::SizeMismatch {
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: size,
        });
    }
    let actual = digester.finalize();
    if actual != descriptor.digest {
        return Err(Error::DigestMismatch {
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    temp.persist(target).await
}

/// Points `tag` at `descriptor`, removing the tag from whatever it pointed at before.
fn set_tag(index: &mut ImageIndex, descriptor: &Descriptor, tag: &str) {
    index
        .manifests
        .retain(|d| d.annotations.get(annotations::REF_NAME).map(String::as_str) != Some(tag));
    index.manifests.push(
        descriptor
            .clone()
            .with_annotation(annotations::REF_NAME, tag),
    );
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |e| Error::Io {
        path,
        message: format!("{what}: {e}"),
    }
}

/// A temporary file beside its final place, removed unless persisted.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    async fn new(dir: &Path, stem: &str) -> Result<Self, Error> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{stem}.{}.{n}.partial", std::process::id()));
        Ok(Self {
            path,
            persisted: false,
        })
    }

    async fn file(&self) -> Result<tokio::fs::File, Error> {
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .await
            .map_err(io(&self.path, "creating temporary file"))
    }

    async fn persist(mut self, target: &Path) -> Result<(), Error> {
        tokio::fs::rename(&self.path, target)
            .await
            .map_err(io(target, "moving blob into place"))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = TempFile::new(dir, stem).await?;
    let mut file = temp.file().await?;
    file.write_all(bytes).await.map_err(io(path, "writing"))?;
    file.sync_all().await.map_err(io(path, "writing"))?;
    drop(file);
    temp.persist(path).await
}

/// A lock file beside `index.json`, created exclusively and removed on drop.
struct IndexLock {
    path: PathBuf,
}

impl IndexLock {
    async fn acquire(root: &Path) -> Result<Self, Error> {
        let path = root.join("index.json.lock");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await
            {
                Ok(_) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Error::Layout {
                            path: path.clone(),
                            message: "index.json has been locked for 30 s; if no other process is writing, delete this lock file".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    return Err(Error::Io {
                        path,
                        message: format!("locking index.json: {e}"),
                    });
                }
            }
        }
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
