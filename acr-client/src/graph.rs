//! The content graph: referrers (`attach`, `discover`) and `copy` of a manifest with
//! everything it points at, between any two [`ContentStore`]s.
//!
//! A manifest is a node; its edges go to its config and layers (an image), or to its
//! manifests (an index); a referrer is a manifest whose `subject` points back at a node.
//! Copies go leaves first and the root manifest last, so the destination never holds a
//! manifest whose content is missing; manifests are copied as their exact bytes, so every
//! digest is preserved.

use std::collections::HashSet;

use oci_distribution_proto::{ReferrersResponse, add_referrer, referrer_descriptor, referrers_tag};
use oci_spec_types::{Descriptor, Digest, Manifest, ManifestBytes, MediaType};

use crate::{ContentStore, Error};

/// How deep `discover` and `copy --recursive` follow referrers of referrers.
pub const MAX_REFERRER_DEPTH: usize = 16;

/// The referrers of `subject` in `store`: the referrers API where the registry has one, else
/// the tag-schema fallback index (`sha256-<hex>`); filtered by `artifact_type`.
pub async fn referrers(
    store: &dyn ContentStore,
    subject: &Digest,
    artifact_type: Option<&MediaType>,
) -> Result<Vec<Descriptor>, Error> {
    if let Some(found) = store.referrers_api(subject, artifact_type).await? {
        return Ok(found.matching(artifact_type));
    }
    match fallback_index(store, subject).await? {
        Some(found) => Ok(found.matching(artifact_type)),
        None => Ok(Vec::new()),
    }
}

async fn fallback_index(
    store: &dyn ContentStore,
    subject: &Digest,
) -> Result<Option<ReferrersResponse>, Error> {
    let tag = referrers_tag(subject);
    match store.get_manifest(&tag).await {
        Ok(manifest) => ReferrersResponse::from_fallback(&manifest)
            .map(Some)
            .map_err(|e| Error::InvalidArtifact {
                message: format!("the referrers tag {tag}: {e}"),
            }),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_not_found(error: &Error) -> bool {
    match error {
        Error::Protocol(e) => e.status() == Some(http::StatusCode::NOT_FOUND),
        Error::Layout { message, .. } => message.starts_with("no manifest tagged"),
        _ => false,
    }
}

/// Records `referrer` in the tag-schema fallback index of its subject, for stores without a
/// referrers API (docker-registry 2.8, OCI layouts). Returns whether the index changed.
pub async fn index_referrer(
    store: &dyn ContentStore,
    subject: &Digest,
    referrer: &ManifestBytes,
) -> Result<bool, Error> {
    let existing = fallback_index(store, subject).await?;
    let Some(index) = add_referrer(
        existing.as_ref().map(|r| &r.index),
        referrer_descriptor(referrer),
    ) else {
        return Ok(false);
    };
    let index = ManifestBytes::from_manifest(Manifest::Index(index));
    store
        .put_manifest(&index, &[referrers_tag(subject)])
        .await?;
    Ok(true)
}

/// Puts a manifest into `store` under `tags`, and when it has a subject, makes it findable as
/// a referrer (through the fallback index if the store does not index subjects itself).
pub async fn put_with_subject(
    store: &dyn ContentStore,
    manifest: &ManifestBytes,
    tags: &[String],
) -> Result<(), Error> {
    let indexed = store.put_manifest_indexed(manifest, tags).await?;
    index_unless_indexed(store, manifest, indexed).await
}

/// [`put_with_subject`] for a manifest reached through another (no tags).
async fn put_child_with_subject(
    store: &dyn ContentStore,
    manifest: &ManifestBytes,
) -> Result<(), Error> {
    let indexed = store.put_child_manifest(manifest).await?;
    index_unless_indexed(store, manifest, indexed).await
}

/// Records a manifest with a subject in the fallback index, unless the store indexed it.
async fn index_unless_indexed(
    store: &dyn ContentStore,
    manifest: &ManifestBytes,
    indexed: bool,
) -> Result<(), Error> {
    if let Some(subject) = manifest.manifest().subject()
        && !indexed
    {
        index_referrer(store, &subject.digest, manifest).await?;
    }
    Ok(())
}

/// One node of a `discover` tree.
#[derive(Debug, Clone)]
pub struct ReferrerNode {
    /// The referrer's descriptor (with its artifact type and annotations).
    pub descriptor: Descriptor,
    /// Its own referrers.
    pub referrers: Vec<Self>,
}

/// The referrers of `subject`, recursively to `depth` levels, each manifest visited once:
/// a referrer graph that loops (A refers to B refers to A) ends instead of hanging.
pub async fn discover(
    store: &dyn ContentStore,
    subject: &Digest,
    artifact_type: Option<&MediaType>,
    depth: usize,
) -> Result<Vec<ReferrerNode>, Error> {
    let mut visited = HashSet::from([subject.clone()]);
    discover_level(
        store,
        subject,
        artifact_type,
        depth.min(MAX_REFERRER_DEPTH),
        &mut visited,
    )
    .await
}

async fn discover_level(
    store: &dyn ContentStore,
    subject: &Digest,
    artifact_type: Option<&MediaType>,
    depth: usize,
    visited: &mut HashSet<Digest>,
) -> Result<Vec<ReferrerNode>, Error> {
    if depth == 0 {
        return Ok(Vec::new());
    }
    let mut nodes = Vec::new();
    // The filter applies to the first level only: a signature of an SBOM is still shown.
    for descriptor in referrers(store, subject, artifact_type).await? {
        if !visited.insert(descriptor.digest.clone()) {
            continue;
        }
        let children = Box::pin(discover_level(
            store,
            &descriptor.digest,
            None,
            depth - 1,
            visited,
        ))
        .await?;
        nodes.push(ReferrerNode {
            descriptor,
            referrers: children,
        });
    }
    Ok(nodes)
}

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Also copy the referrers of the root (and theirs), as `copy -r` does.
    pub referrers: bool,
    /// Tags to give the root at the destination; by digest only when empty.
    pub tags: Vec<String>,
    /// Blobs of one manifest copied at once; 0 means the default, [`COPY_CONCURRENCY`].
    pub concurrency: usize,
}

/// Blobs a copy moves at once by default, as `push` does.
pub const COPY_CONCURRENCY: usize = 5;

/// What a copy moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Blobs whose bytes went through this client.
    pub blobs_copied: u64,
    /// Blobs mounted from the source repository (same registry): no bytes moved.
    pub blobs_mounted: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
    /// Manifests (and indexes) written.
    pub manifests: u64,
}

/// Copies the manifest `target` (tag or digest) of `source` with everything it points at to
/// `destination`. Returns the root descriptor and what moved.
pub async fn copy(
    source: &dyn ContentStore,
    destination: &dyn ContentStore,
    target: &str,
    options: &CopyOptions,
) -> Result<(Descriptor, CopyStats), Error> {
    let root = source.get_manifest(target).await?;
    let mut stats = CopyStats::default();
    let mut visited = HashSet::new();
    let limit = match options.concurrency {
        0 => COPY_CONCURRENCY,
        n => n,
    };
    let copier = Copier {
        source,
        destination,
        limit,
    };
    copier.manifest(&root, &mut visited, &mut stats).await?;
    let tags = options.tags.clone();
    put_with_subject(destination, &root, &tags).await?;
    if options.referrers {
        copier
            .referrers(root.digest(), MAX_REFERRER_DEPTH, &mut visited, &mut stats)
            .await?;
    }
    Ok((root.descriptor(), stats))
}

/// The two stores of one [`copy`] and how many blobs it moves at once.
struct Copier<'a> {
    source: &'a dyn ContentStore,
    destination: &'a dyn ContentStore,
    limit: usize,
}

/// What happened to one blob of a copy.
enum BlobCopy {
    Copied,
    Mounted,
    Skipped,
}

impl Copier<'_> {
    /// Copies the children of `manifest` (not the manifest itself: the caller tags it):
    /// child manifests one by one (each after its own children), then its blobs, up to
    /// `limit` at once.
    async fn manifest(
        &self,
        manifest: &ManifestBytes,
        visited: &mut HashSet<Digest>,
        stats: &mut CopyStats,
    ) -> Result<(), Error> {
        use futures_util::{StreamExt, TryStreamExt};
        if !visited.insert(manifest.digest().clone()) {
            return Ok(());
        }
        let mut blobs = Vec::new();
        let mut seen = HashSet::new();
        for child in manifest.manifest().children() {
            if child.media_type.is_manifest() || child.media_type.is_index() {
                let bytes = self.source.get_manifest(child.digest.as_str()).await?;
                if bytes.digest() != &child.digest {
                    return Err(Error::DigestMismatch {
                        expected: child.digest.clone(),
                        actual: bytes.digest().clone(),
                    });
                }
                Box::pin(self.manifest(&bytes, visited, stats)).await?;
                put_child_with_subject(self.destination, &bytes).await?;
            } else if seen.insert(child.digest.clone()) {
                blobs.push(child);
            }
        }
        let outcomes: Vec<BlobCopy> = futures_util::stream::iter(blobs)
            .map(|blob| self.blob(blob))
            .buffer_unordered(self.limit)
            .try_collect()
            .await?;
        for outcome in outcomes {
            match outcome {
                BlobCopy::Copied => stats.blobs_copied += 1,
                BlobCopy::Mounted => stats.blobs_mounted += 1,
                BlobCopy::Skipped => stats.blobs_skipped += 1,
            }
        }
        stats.manifests += 1;
        Ok(())
    }

    async fn blob(&self, blob: &Descriptor) -> Result<BlobCopy, Error> {
        if self.destination.has_blob(&blob.digest).await? {
            return Ok(BlobCopy::Skipped);
        }
        if self
            .destination
            .mount_from(self.source, &blob.digest)
            .await?
        {
            return Ok(BlobCopy::Mounted);
        }
        let stream = self.source.open_blob_stream(blob).await?;
        self.destination.push_stream(blob, stream).await?;
        Ok(BlobCopy::Copied)
    }

    async fn referrers(
        &self,
        subject: &Digest,
        depth: usize,
        visited: &mut HashSet<Digest>,
        stats: &mut CopyStats,
    ) -> Result<(), Error> {
        if depth == 0 {
            return Ok(());
        }
        for descriptor in referrers(self.source, subject, None).await? {
            if visited.contains(&descriptor.digest) {
                continue;
            }
            let manifest = self.source.get_manifest(descriptor.digest.as_str()).await?;
            self.manifest(&manifest, visited, stats).await?;
            put_child_with_subject(self.destination, &manifest).await?;
            Box::pin(self.referrers(&descriptor.digest, depth - 1, visited, stats)).await?;
        }
        Ok(())
    }
}
