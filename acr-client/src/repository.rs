//! [`Repository`]: the content client of one repository: blobs, manifests, tags, referrers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use oci_distribution_proto::{
    Body, ByteRange, ByteStream, ChunkPolicy, DEFAULT_CHUNK_SIZE, ERROR_BODY_LIMIT, PageRequest,
    Registry, UploadOutcome, UploadSession, UploadState,
};
use oci_spec_types::{
    Descriptor, Digest, Digester, MAX_MANIFEST_SIZE, ManifestBytes, MediaType, Reference,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::client::registry_host;
use crate::file_writer::FileWriter;
use crate::{Client, Error};

/// Size of each read from a file or stream, and of the channel slots feeding request bodies.
const READ_SIZE: usize = 1 << 20;

/// Progress of a transfer: bytes done so far for one blob.
pub trait Progress: Send + Sync {
    /// `done` of `total` bytes of `digest` have moved (`total` unknown for streams).
    fn update(&self, digest: Option<&Digest>, done: u64, total: Option<u64>);
}

/// The content client of one repository. Cheap to clone.
#[derive(Clone)]
pub struct Repository {
    client: Client,
    registry: Registry,
    reference: Reference,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl Repository {
    pub(crate) fn new(client: Client, registry: Registry, reference: Reference) -> Self {
        Self {
            client,
            registry,
            reference,
            progress: None,
        }
    }

    /// The same repository, reporting transfer progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The repository (no tag or digest).
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn report(&self, digest: Option<&Digest>, done: u64, total: Option<u64>) {
        if let Some(progress) = &self.progress {
            progress.update(digest, done, total);
        }
    }

    async fn send_small(
        &self,
        request: http::Request<Body>,
        limit: u64,
    ) -> Result<Response<Bytes>, Error> {
        self.client
            .send_collect(&self.registry, request, limit)
            .await
    }

    // ---------------------------------------------------------------- blobs: reading

    /// The blob's size, or `None` when the repository does not have it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        let request = self.registry.blob_head_request(&self.reference, digest)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self
            .registry
            .handle_blob_head_response(digest, &response)?
            .map(|info| info.size))
    }

    /// Downloads a small blob (config, JSON) into memory, verified against `descriptor`.
    pub async fn fetch_bytes(&self, descriptor: &Descriptor) -> Result<Bytes, Error> {
        let mut buffer = Vec::with_capacity(descriptor.size.min(MAX_MANIFEST_SIZE) as usize);
        self.fetch_to_writer(descriptor, &mut buffer).await?;
        Ok(buffer.into())
    }

    /// Streams a blob into `writer`, hashing on the way; fails if the content does not match
    /// `descriptor` (never reads past its declared size). The writer may have received bytes
    /// when it fails: use [`Repository::fetch_to_file`] to never expose unverified content.
    pub async fn fetch_to_writer<W: AsyncWrite + Unpin + Send>(
        &self,
        descriptor: &Descriptor,
        writer: &mut W,
    ) -> Result<(), Error> {
        let mut verifier = Verifier::new(descriptor)?;
        self.download_range(descriptor, 0, &mut verifier, &mut WriterSink(writer))
            .await?;
        writer.flush().await.map_err(|e| Error::Io {
            path: PathBuf::from("<writer>"),
            message: e.to_string(),
        })?;
        verifier.finish()
    }

    /// [`Repository::fetch_to_file`] with `parts` ranged requests in flight at once. Ranges
    /// (a few MiB each) are received in parallel into memory and handed on in order, so the
    /// file is still hashed while written, front to back: never re-read, resumable like any
    /// download, at most about 24 MiB of ranges in memory. Pays off against storage that caps
    /// each connection (ACR's blob storage); on loopback hashing is the limit and one stream
    /// is as fast. A registry that ignores `Range` gets one plain download.
    pub async fn fetch_to_file_parallel(
        &self,
        descriptor: &Descriptor,
        path: &Path,
        parts: usize,
    ) -> Result<(), Error> {
        let parts = parts.clamp(1, 64);
        if parts == 1 || descriptor.size < 2 * MIN_RANGE {
            return self.fetch_to_file(descriptor, path).await;
        }
        let started = std::time::Instant::now();
        self.fetch_resumable(descriptor, path, parts).await?;
        log_transfer("downloaded", &descriptor.digest, descriptor.size, started);
        Ok(())
    }

    /// Downloads a blob to `path`: written to `.<name>.<short digest>.partial` while hashed,
    /// moved into place only when size and digest match. A partial file left by an interrupted
    /// download is resumed with a `Range` request, and so is a download cut mid-way (a dropped
    /// connection, a stalled or short body), automatically, up to 3 times as long as each
    /// attempt brings bytes.
    /// Content that is wrong (another digest, too long) is never kept, not even as a partial.
    pub async fn fetch_to_file(&self, descriptor: &Descriptor, path: &Path) -> Result<(), Error> {
        let started = std::time::Instant::now();
        if descriptor.size < IN_MEMORY_DOWNLOAD {
            let partial = partial_path(path, &descriptor.digest);
            self.fetch_small_file(descriptor, path, &partial).await?;
        } else {
            self.fetch_resumable(descriptor, path, 1).await?;
        }
        log_transfer("downloaded", &descriptor.digest, descriptor.size, started);
        Ok(())
    }

    /// The resuming loop of [`Repository::fetch_to_file`], with `parts` requests at once.
    async fn fetch_resumable(
        &self,
        descriptor: &Descriptor,
        path: &Path,
        parts: usize,
    ) -> Result<(), Error> {
        let partial = partial_path(path, &descriptor.digest);
        let mut resumes = 0u32;
        loop {
            let before = file_len(&partial).await;
            let error = match self.fetch_attempt(descriptor, path, &partial, parts).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // Only a transfer that moved is resumed: a registry that cannot be reached at all
            // was already retried by the engine, and a lie that brings nothing is final.
            let progressed = file_len(&partial).await > before;
            if resumes >= DOWNLOAD_RESUMES || !progressed || !download_resumable(&error) {
                return Err(error);
            }
            resumes += 1;
            let delay = self.client.config().transport.retry.delay(resumes, 0.5);
            tracing::debug!(
                digest = %descriptor.digest,
                resumes,
                error = %error,
                "download interrupted; resuming from the partial file"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// [`Repository::fetch_to_file`] of a small blob: received and verified in memory, then
    /// written, synced and renamed in one trip to the blocking pool (many small files pay
    /// one trip each instead of a dozen). A cut download starts over; nothing is written
    /// before the content is verified.
    async fn fetch_small_file(
        &self,
        descriptor: &Descriptor,
        path: &Path,
        partial: &Path,
    ) -> Result<(), Error> {
        let mut attempts = 0u32;
        let bytes = loop {
            match self.fetch_bytes(descriptor).await {
                Ok(bytes) => break bytes,
                Err(e) if attempts < DOWNLOAD_RESUMES && download_resumable(&e) => {
                    attempts += 1;
                    let delay = self.client.config().transport.retry.delay(attempts, 0.5);
                    tracing::debug!(digest = %descriptor.digest, error = %e, "download interrupted; starting over");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (partial, path) = (partial.to_owned(), path.to_owned());
        tokio::task::spawn_blocking(move || write_durably(&partial, &path, &bytes))
            .await
            .map_err(|e| Error::Io {
                path: PathBuf::new(),
                message: e.to_string(),
            })?
    }

    /// One attempt of [`Repository::fetch_to_file`]: hashes what the partial file holds, asks
    /// for the rest, renames when verified.
    async fn fetch_attempt(
        &self,
        descriptor: &Descriptor,
        path: &Path,
        partial: &Path,
        parts: usize,
    ) -> Result<(), Error> {
        let mut verifier = Verifier::new(descriptor)?;
        // Resume: hash what an earlier attempt left, then ask only for the rest.
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(partial)
            .await
            .map_err(io_error(partial))?;
        let mut offset = 0u64;
        let mut buffer = vec![0u8; READ_SIZE];
        loop {
            let n = file.read(&mut buffer).await.map_err(io_error(partial))?;
            if n == 0 {
                break;
            }
            if offset + n as u64 > descriptor.size {
                break;
            }
            verifier.update(buffer.get(..n).unwrap_or_default())?;
            offset += n as u64;
        }
        drop(buffer);
        file.set_len(offset).await.map_err(io_error(partial))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io_error(partial))?;
        // Written on a thread of its own, flushed to disk as it grows, synced before the rename.
        let mut writer = FileWriter::spawn(file.into_std().await, partial);
        let result = async {
            if offset < descriptor.size || descriptor.size == 0 {
                let restarted = if parts > 1 {
                    self.download_ranges(descriptor, offset, parts, &mut verifier, &mut writer)
                        .await?
                } else {
                    self.download_range(descriptor, offset, &mut verifier, &mut writer)
                        .await?
                };
                if restarted {
                    // The registry ignored the Range: start the file over from byte 0.
                    tracing::debug!(digest = %descriptor.digest, "registry ignored Range; downloading again from 0");
                    let mut file = tokio::fs::File::from_std(writer.finish().await?);
                    file.set_len(0).await.map_err(io_error(partial))?;
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .map_err(io_error(partial))?;
                    writer = FileWriter::spawn(file.into_std().await, partial);
                    verifier = Verifier::new(descriptor)?;
                    self.download_range(descriptor, 0, &mut verifier, &mut writer)
                        .await?;
                }
            }
            writer.finish().await?;
            verifier.finish()
        }
        .await;
        if result.is_err() {
            // Keep what arrived intact for the resume (bad content is removed below).
            let _ = writer.finish().await;
        }
        drop(writer);
        match result {
            Ok(()) => tokio::fs::rename(partial, path)
                .await
                .map_err(io_error(path)),
            Err(e) => {
                let short =
                    matches!(e, Error::SizeMismatch { expected, actual, .. } if actual < expected);
                if !short && matches!(e, Error::DigestMismatch { .. } | Error::SizeMismatch { .. })
                {
                    // Bad content is never kept for a resume.
                    let _ = tokio::fs::remove_file(partial).await;
                }
                Err(e)
            }
        }
    }

    /// `GET` of a blob (or a range of it), its head checked; the body is the caller's to read.
    async fn blob_get(
        &self,
        descriptor: &Descriptor,
        range: Option<ByteRange>,
    ) -> Result<(Response<Body>, oci_distribution_proto::BlobDownload), Error> {
        let request = self
            .registry
            .blob_get_request(&self.reference, &descriptor.digest, range)?;
        let response = self.client.send(&self.registry, request).await?;
        if !response.status().is_success() {
            return Err(Error::from_proto_response(
                Some(oci_distribution_proto::Operation::GetBlob),
                response,
            )
            .await);
        }
        let download =
            self.registry
                .handle_blob_get_response(&descriptor.digest, range, &response)?;
        Ok((response, download))
    }

    /// GETs the blob from `offset`, feeding `verifier` and `writer`. Returns whether the
    /// registry restarted from 0 instead of honouring the range.
    async fn download_range(
        &self,
        descriptor: &Descriptor,
        offset: u64,
        verifier: &mut Verifier,
        sink: &mut impl ChunkSink,
    ) -> Result<bool, Error> {
        let range = (offset > 0).then(|| ByteRange::from_offset(offset));
        let (response, download) = self.blob_get(descriptor, range).await?;
        let restarted = offset > 0 && download.range.is_none();
        if restarted {
            return Ok(true);
        }
        // A length that disagrees with the descriptor is refused before any byte is read.
        if let Some(len) = download.len
            && len != descriptor.size.saturating_sub(offset)
        {
            return Err(Error::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: offset.saturating_add(len),
            });
        }
        let mut body = response.into_body();
        let mut done = offset;
        while let Some(chunk) = next_chunk(&mut body).await {
            let chunk = chunk.map_err(|e| Error::Connection {
                url: descriptor.digest.to_string(),
                message: e.to_string(),
            })?;
            verifier.update_bytes(&chunk)?;
            let len = chunk.len() as u64;
            sink.put(chunk).await?;
            done += len;
            self.report(Some(&descriptor.digest), done, Some(descriptor.size));
        }
        Ok(false)
    }

    /// [`Repository::download_range`] with `parts` ranged requests in flight. The first range
    /// (the head) streams straight to `verifier` and `sink`; the ranges after it are received
    /// meanwhile and wait in memory until they become the head. Returns whether the registry
    /// ignored `Range` (seen on the first range, requested alone, before anything is handed on).
    async fn download_ranges(
        &self,
        descriptor: &Descriptor,
        offset: u64,
        parts: usize,
        verifier: &mut Verifier,
        sink: &mut impl ChunkSink,
    ) -> Result<bool, Error> {
        let range_len = (RANGES_IN_MEMORY / parts as u64).clamp(MIN_RANGE, MAX_RANGE);
        let mut ranges = RangeTasks::default();
        let mut next = offset;
        let mut done = offset;
        let mut window = 1;
        loop {
            while ranges.len() < window && next < descriptor.size {
                let end = next.saturating_add(range_len).min(descriptor.size);
                ranges.spawn(self.clone(), descriptor.clone(), next, end);
                next = end;
            }
            let Some(head) = ranges.head() else {
                return Ok(false);
            };
            match head.recv().await {
                Some(RangePiece::Bytes(frame)) => {
                    window = parts;
                    verifier.update_bytes(&frame)?;
                    done += frame.len() as u64;
                    sink.put(frame).await?;
                    self.report(Some(&descriptor.digest), done, Some(descriptor.size));
                }
                // Range ignored (or no longer honoured mid-way): start over in one stream.
                Some(RangePiece::Ignored) => return Ok(true),
                Some(RangePiece::Failed(e)) => return Err(e),
                None => ranges.pop_head(),
            }
        }
    }

    /// Streams bytes `start..end` of a blob into `pieces`, checking their length.
    async fn stream_range(
        &self,
        descriptor: &Descriptor,
        start: u64,
        end: u64,
        pieces: &mpsc::UnboundedSender<RangePiece>,
    ) -> Result<(), Error> {
        let (response, download) = self
            .blob_get(descriptor, ByteRange::inclusive(start, end - 1))
            .await?;
        if download.range.is_none() {
            let _ = pieces.send(RangePiece::Ignored);
            return Ok(());
        }
        let expected = end - start;
        let wrong_size = |actual: u64| Error::SizeMismatch {
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: start + actual,
        };
        if let Some(len) = download.len.filter(|len| *len != expected) {
            return Err(wrong_size(len));
        }
        let mut body = response.into_body();
        let mut received = 0u64;
        while let Some(chunk) = next_chunk(&mut body).await {
            let chunk = chunk.map_err(|e| Error::Connection {
                url: descriptor.digest.to_string(),
                message: e.to_string(),
            })?;
            received += chunk.len() as u64;
            if received > expected {
                return Err(wrong_size(received));
            }
            if pieces.send(RangePiece::Bytes(chunk)).is_err() {
                // The download stopped: nobody wants the rest.
                return Ok(());
            }
        }
        if received < expected {
            return Err(wrong_size(received));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- blobs: writing

    /// Uploads `bytes` (skipped when the repository already has them); returns the descriptor.
    /// One request; when the registry refuses a body that large (`413`, as ACR does above
    /// about 20 MB), chunks that resume after interruptions.
    pub async fn push_bytes(
        &self,
        media_type: MediaType,
        bytes: Bytes,
    ) -> Result<Descriptor, Error> {
        let descriptor = Descriptor::for_bytes(media_type, &bytes);
        if self.blob_exists(&descriptor.digest).await?.is_some() {
            return Ok(descriptor);
        }
        let mut session = self.start_upload().await?;
        let request = session.finish_request(&descriptor.digest, Body::Bytes(bytes.clone()))?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        match session.handle_finish_response(&response) {
            Ok(_) => {}
            Err(e) if too_large(&e) => {
                tracing::debug!(digest = %descriptor.digest, "413 on a monolithic upload; uploading in chunks");
                let mut session = self.start_upload().await?;
                session.set_chunk_policy(fallback_chunks(
                    self.client.config().chunk_size,
                    descriptor.size,
                ));
                self.upload_chunks(&mut session, &ChunkSource::Bytes(&bytes), descriptor.size)
                    .await?;
                self.finish_upload(&mut session, &descriptor.digest).await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.report(
            Some(&descriptor.digest),
            descriptor.size,
            Some(descriptor.size),
        );
        Ok(descriptor)
    }

    /// Uploads a file. Up to the configured monolithic limit: hashed first (for the existence
    /// check and the digest), then streamed in one request. Larger files go in chunks, and
    /// their hashing overlaps the first chunks (a registry that turns out to have the blob
    /// already keeps an abandoned upload session, which registries purge). An interrupted
    /// chunk resumes from the offset the registry reports (or from 0 in a new session when the
    /// registry lost the session), at most 5 times without progress; a killed push resumes
    /// from the state saved in [`ClientConfig::upload_state_dir`]. The content is hashed again
    /// while it is sent, so a file that changes in between fails the upload instead of
    /// corrupting it.
    ///
    /// [`ClientConfig::upload_state_dir`]: crate::ClientConfig::upload_state_dir
    pub async fn push_file(&self, media_type: MediaType, path: &Path) -> Result<Descriptor, Error> {
        let started = std::time::Instant::now();
        let descriptor = self.push_file_timed(media_type, path).await?;
        log_transfer("uploaded", &descriptor.digest, descriptor.size, started);
        Ok(descriptor)
    }

    /// [`Repository::push_file`] before its summary line in the debug log.
    async fn push_file_timed(
        &self,
        media_type: MediaType,
        path: &Path,
    ) -> Result<Descriptor, Error> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(io_error(path))?
            .len();
        if size > self.client.config().monolithic_limit {
            return self.push_large_file(media_type, path, size).await;
        }
        let (digest, size) = hash_file(path).await?;
        let descriptor = Descriptor::new(media_type, digest, size);
        if self.blob_exists(&descriptor.digest).await?.is_some() {
            self.report(Some(&descriptor.digest), size, Some(size));
            return Ok(descriptor);
        }
        let mut session = self.start_upload().await?;
        let body = file_body(path, 0, size, Hashing::Whole(descriptor.digest.clone()))?;
        let request = session.finish_request(&descriptor.digest, body)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        match session.handle_finish_response(&response) {
            Ok(_) => {}
            Err(e) if too_large(&e) => {
                tracing::debug!(digest = %descriptor.digest, "413 on a monolithic upload; uploading in chunks");
                // The refused session may be unusable: the chunks go to a new one.
                let chunk_size = fallback_chunks(self.client.config().chunk_size, size).chunk_size;
                let (mut session, rehashed) = self
                    .upload_file_chunks(path, size, chunk_size, None, None)
                    .await?;
                check_rehash(path, &descriptor, rehashed)?;
                self.finish_upload(&mut session, &descriptor.digest).await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.report(Some(&descriptor.digest), size, Some(size));
        Ok(descriptor)
    }

    /// [`Repository::push_file`] above the monolithic limit: hashing (on a blocking thread)
    /// and the chunked upload start together, so the 0.7 s per GiB of hashing is no longer
    /// spent before the first byte moves. Once the digest is known the registry is asked
    /// whether it has the blob; the upload is finished with that digest, after its own
    /// re-hash agreed.
    async fn push_large_file(
        &self,
        media_type: MediaType,
        path: &Path,
        size: u64,
    ) -> Result<Descriptor, Error> {
        let mut hashing = {
            let path = path.to_owned();
            tokio::spawn(async move { hash_file(&path).await })
        };
        let saved = self.saved_upload_path(path, size).await;
        let resumed = match &saved {
            Some(saved) => self.resume_saved(saved).await,
            None => None,
        };
        let chunk_size = self.client.config().chunk_size;
        let mut upload =
            Box::pin(self.upload_file_chunks(path, size, chunk_size, saved.as_deref(), resumed));
        let mut uploaded = None;
        let (digest, hashed_size) = loop {
            tokio::select! {
                hashed = &mut hashing => break hashed.map_err(|e| Error::Io {
                    path: path.to_owned(),
                    message: format!("hashing failed: {e}"),
                })??,
                result = &mut upload, if uploaded.is_none() => match result {
                    Ok(done) => uploaded = Some(done),
                    Err(e) => {
                        hashing.abort();
                        return Err(e);
                    }
                },
            }
        };
        if hashed_size != size {
            return Err(Error::ChangedWhileReading {
                path: path.to_owned(),
            });
        }
        let descriptor = Descriptor::new(media_type, digest, size);
        if self.blob_exists(&descriptor.digest).await?.is_some() {
            drop(upload);
            if let Some(saved) = &saved {
                let _ = tokio::fs::remove_file(saved).await;
            }
            self.report(Some(&descriptor.digest), size, Some(size));
            return Ok(descriptor);
        }
        // A failure while sending keeps the saved state for the next run.
        let (mut session, rehashed) = match uploaded {
            Some(done) => done,
            None => upload.await?,
        };
        let finished = async {
            check_rehash(path, &descriptor, rehashed)?;
            self.finish_upload(&mut session, &descriptor.digest).await
        }
        .await;
        if let Some(saved) = &saved {
            // Done or failed for good at the end: either way nothing is left to resume.
            let _ = tokio::fs::remove_file(saved).await;
        }
        finished?;
        Ok(descriptor)
    }

    /// Sends `size` bytes of the file at `path` in chunks of `chunk_size`, continuing
    /// `resumed` (a session an earlier process left) or in a new session, saving the position
    /// after every chunk when `saved` names a state file. Returns the session, ready to
    /// finish, and the second hashing of the file's bytes.
    async fn upload_file_chunks(
        &self,
        path: &Path,
        size: u64,
        chunk_size: u64,
        saved: Option<&Path>,
        resumed: Option<UploadSession>,
    ) -> Result<(UploadSession, Rehash), Error> {
        let resumed_at = resumed.as_ref().map_or(0, UploadSession::offset);
        let mut session = match resumed {
            Some(session) => session,
            None => self.start_upload().await?,
        };
        session.set_chunk_policy(ChunkPolicy { chunk_size });
        // Each chunk streams from the file (a few MiB in memory whatever its size), hashed again
        // on the way into one shared digester, so a file that changes fails the push. Bytes
        // sent twice (after a resume) are hashed once.
        let rehash = Arc::new(std::sync::Mutex::new(Rehash::default()));
        if resumed_at > 0 {
            // What an earlier process sent is hashed from disk so the whole file is checked.
            prehash(path, &rehash, resumed_at).await?;
        }
        let source = ChunkSource::File {
            path,
            rehash: rehash.clone(),
        };
        self.upload_chunks_saving(&mut session, &source, size, saved)
            .await?;
        let rehashed = std::mem::take(
            &mut *rehash
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Ok((session, rehashed))
    }

    /// Where the position of a chunked upload of the file at `path` to this repository is
    /// saved, so that a killed push resumes where the registry is (see
    /// [`ClientConfig::upload_state_dir`]). Keyed by the file's identity (path, size, modified
    /// time), known before its hash: the registry's digest check at the end catches content
    /// that changed under an unchanged identity.
    ///
    /// [`ClientConfig::upload_state_dir`]: crate::ClientConfig::upload_state_dir
    async fn saved_upload_path(&self, path: &Path, size: u64) -> Option<PathBuf> {
        let dir = self.client.config().upload_state_dir.as_ref()?;
        let absolute = tokio::fs::canonicalize(path).await.ok()?;
        let modified = tokio::fs::metadata(&absolute)
            .await
            .ok()?
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let key = Digest::sha256_of(
            format!(
                "{}/{}@{}:{size}:{modified}",
                self.registry_host(),
                self.reference.repository(),
                absolute.display()
            )
            .as_bytes(),
        );
        Some(dir.join(format!("{}.json", key.encoded())))
    }

    /// The session saved at `saved`, with the registry's current offset; `None` when there is
    /// none or the registry no longer knows it.
    async fn resume_saved(&self, saved: &Path) -> Option<UploadSession> {
        let text = tokio::fs::read(saved).await.ok()?;
        let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
        let location = url::Url::parse(value.get("location")?.as_str()?).ok()?;
        if !self.registry.is_same_origin(&location) {
            return None;
        }
        let mut session = UploadSession::resume(&self.reference, location);
        let request = session.status_request().ok()?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await.ok()?;
        session.handle_status_response(&response).ok()?;
        tracing::debug!(offset = session.offset(), "resuming a saved upload");
        Some(session)
    }

    /// [`Repository::upload_chunks`], saving the session's position after every chunk when
    /// `saved` names a state file.
    async fn upload_chunks_saving(
        &self,
        session: &mut UploadSession,
        source: &ChunkSource<'_>,
        size: u64,
        saved: Option<&Path>,
    ) -> Result<(), Error> {
        let Some(saved) = saved else {
            return self.upload_chunks(session, source, size).await;
        };
        if let Some(dir) = saved.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        // One chunk at a time, so the position is on disk before the next one starts.
        while session.offset() < size {
            let target = session.offset() + session.next_chunk_len(size - session.offset());
            self.upload_chunks(session, source, target).await?;
            save_position(saved, session).await;
        }
        Ok(())
    }

    /// Sends `source` in chunks from the session's offset until the registry holds `size`
    /// bytes. After a failed chunk it asks the registry for its offset (a status `GET` whose
    /// `Range` says what arrived) and goes on from there; when the registry lost the session it
    /// starts a new one from 0. Gives up after `UPLOAD_RESUMES` failures in a row without
    /// the registry's offset passing its best so far.
    async fn upload_chunks(
        &self,
        session: &mut UploadSession,
        source: &ChunkSource<'_>,
        size: u64,
    ) -> Result<(), Error> {
        let mut failures = 0u32;
        let mut best = session.offset();
        let mut interrupted = false;
        loop {
            let step = async {
                if interrupted {
                    self.resume_session(session).await?;
                }
                if session.offset() >= size {
                    return Ok(true);
                }
                let start = session.offset();
                let len = session.next_chunk_len(size - start);
                let request = session.chunk_request(source.body(start, len)?)?;
                let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
                session.handle_chunk_response(&response)?;
                Ok::<_, Error>(false)
            }
            .await;
            match step {
                Ok(done) => {
                    interrupted = false;
                    if session.offset() > best {
                        best = session.offset();
                        failures = 0;
                    }
                    self.report(None, session.offset(), Some(size));
                    if done {
                        return Ok(());
                    }
                }
                Err(e) if failures < UPLOAD_RESUMES && upload_resumable(&e, session) => {
                    failures += 1;
                    interrupted = true;
                    let delay = self.client.config().transport.retry.delay(failures, 0.5);
                    tracing::debug!(
                        offset = session.offset(),
                        failures,
                        error = %e,
                        "upload interrupted; resuming from the registry's offset"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Learns the registry's offset of an interrupted session, or replaces a session the
    /// registry no longer knows with a new one (offset 0).
    async fn resume_session(&self, session: &mut UploadSession) -> Result<(), Error> {
        if session.state() != UploadState::Failed {
            let request = session.status_request()?;
            let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
            match session.handle_status_response(&response) {
                Ok(offset) => {
                    tracing::debug!(offset, "the registry holds the upload up to this offset");
                    return Ok(());
                }
                Err(e) if session.state() != UploadState::Failed => return Err(e.into()),
                Err(_) => {}
            }
        }
        tracing::debug!("the registry lost the upload session; starting again from 0");
        *session = self.start_upload().await?;
        Ok(())
    }

    /// The finishing `PUT ?digest=` of a chunked upload (empty body, so retried by the engine).
    async fn finish_upload(
        &self,
        session: &mut UploadSession,
        digest: &Digest,
    ) -> Result<(), Error> {
        let request = session.finish_request(digest, Body::Empty)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        session.handle_finish_response(&response)?;
        Ok(())
    }

    /// Uploads a stream of unknown length (stdin): chunked, hashed while sent, the digest given
    /// at the end.
    pub async fn push_reader<R: AsyncRead + Unpin + Send>(
        &self,
        media_type: MediaType,
        mut reader: R,
    ) -> Result<Descriptor, Error> {
        let mut session = self.start_upload().await?;
        // Unknown length: chunks are buffered to be sent with a Content-Length, so keep them
        // small enough that memory stays bounded.
        let chunk_size = self
            .client
            .config()
            .chunk_size
            .clamp(READ_SIZE as u64, 8 << 20) as usize;
        let mut digester = Digester::default();
        let mut pending = Vec::with_capacity(chunk_size.min(8 << 20));
        loop {
            // Fill one chunk (or what is left) before sending it.
            pending.clear();
            let mut eof = false;
            while pending.len() < chunk_size {
                let before = pending.len();
                pending.resize(before + READ_SIZE.min(chunk_size - before), 0);
                let n = reader
                    .read(&mut pending[before..])
                    .await
                    .map_err(io_error(Path::new("<stdin>")))?;
                pending.truncate(before + n);
                if n == 0 {
                    eof = true;
                    break;
                }
            }
            digester.update(&pending);
            if eof {
                let size = digester.bytes_hashed();
                let digest = digester.finalize();
                let request =
                    session.finish_request(&digest, Body::from(std::mem::take(&mut pending)))?;
                let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
                session.handle_finish_response(&response)?;
                self.report(Some(&digest), size, Some(size));
                return Ok(Descriptor::new(media_type, digest, size));
            }
            let request = session.chunk_request(Body::from(pending.clone()))?;
            let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
            session.handle_chunk_response(&response)?;
            self.report(None, session.offset(), None);
        }
    }

    async fn start_upload(&self) -> Result<UploadSession, Error> {
        let request = self.registry.upload_start_request(&self.reference)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self
            .registry
            .handle_upload_start_response(&self.reference, &response)?)
    }

    /// Mounts `digest` from another repository of the same registry: no bytes move. Returns
    /// `false` when the registry refused (then upload it instead).
    pub async fn mount(&self, digest: &Digest, from: &Reference) -> Result<bool, Error> {
        let request = self.registry.mount_request(&self.reference, digest, from)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        match self
            .registry
            .handle_mount_response(&self.reference, digest, &response)?
        {
            UploadOutcome::Complete(_) => Ok(true),
            UploadOutcome::Session(mut session) => {
                // Close the session the registry opened instead, so it does not linger.
                if let Ok(request) = session.cancel_request() {
                    let _ = self.send_small(request, ERROR_BODY_LIMIT).await;
                }
                Ok(false)
            }
        }
    }

    /// Deletes a blob from this repository.
    pub async fn delete_blob(&self, digest: &Digest) -> Result<(), Error> {
        let request = self.registry.blob_delete_request(&self.reference, digest)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self.registry.handle_blob_delete_response(&response)?)
    }

    // ---------------------------------------------------------------- manifests

    /// Fetches a manifest by tag or digest (`target`): exact bytes, parsed, digest verified.
    pub async fn get_manifest(&self, target: &str) -> Result<ManifestBytes, Error> {
        let reference = self.target(target)?;
        let request = self.registry.manifest_get_request(&reference)?;
        let response = self.client.send(&self.registry, request).await?;
        let limit = oci_distribution_proto::check_manifest_size(&response)?;
        let (parts, body) = response.into_parts();
        let response = Response::from_parts(parts, body.collect(limit).await?);
        Ok(self
            .registry
            .handle_manifest_get_response(&reference, &response)?)
    }

    /// The descriptor of the manifest `target` points at (a `HEAD`), or `None` when absent.
    pub async fn resolve(&self, target: &str) -> Result<Option<Descriptor>, Error> {
        let reference = self.target(target)?;
        let request = self.registry.manifest_head_request(&reference)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        if response.status() == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(
            self.registry
                .handle_manifest_head_response(&reference, &response)?,
        ))
    }

    /// Pushes a manifest under `tag`, or by digest when `tag` is `None`; returns its digest.
    /// Push the blobs it refers to first: registries refuse a manifest with missing blobs.
    pub async fn put_manifest(
        &self,
        manifest: &ManifestBytes,
        tag: Option<&str>,
    ) -> Result<Digest, Error> {
        let reference = match tag {
            Some(tag) => self.reference.with_tag(tag)?,
            None => self.reference.with_digest(manifest.digest().clone()),
        };
        let request = self.registry.manifest_put_request(&reference, manifest)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self
            .registry
            .handle_manifest_put_response(manifest, &response)?
            .digest)
    }

    /// Pushes a manifest and returns what the registry reported, including whether it
    /// indexed the manifest's `subject` (`OCI-Subject`).
    pub async fn put_manifest_pushed(
        &self,
        manifest: &ManifestBytes,
        tag: Option<&str>,
    ) -> Result<oci_distribution_proto::PushedManifest, Error> {
        let reference = match tag {
            Some(tag) => self.reference.with_tag(tag)?,
            None => self.reference.with_digest(manifest.digest().clone()),
        };
        let request = self.registry.manifest_put_request(&reference, manifest)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self
            .registry
            .handle_manifest_put_response(manifest, &response)?)
    }

    /// The referrers API's answer for `subject` (all pages), or `None` when the registry has
    /// no referrers API (then the tag-schema fallback holds them; see [`crate::referrers`]).
    pub async fn referrers_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
    ) -> Result<Option<oci_distribution_proto::ReferrersResponse>, Error> {
        let mut request =
            self.registry
                .referrers_request(&self.reference, subject, artifact_type)?;
        let mut all: Option<oci_distribution_proto::ReferrersResponse> = None;
        loop {
            let uri = request.uri().clone();
            let response = self.send_small(request, MAX_MANIFEST_SIZE).await?;
            let Some(page) = self.registry.handle_referrers_response(&uri, &response)? else {
                return Ok(all);
            };
            match &mut all {
                Some(all) => all.index.manifests.extend(page.referrers.index.manifests),
                None => all = Some(page.referrers),
            }
            match page.next {
                Some(next) => {
                    request = self
                        .registry
                        .referrers_next_request(&self.reference, &next)?
                }
                None => return Ok(all),
            }
        }
    }

    /// A blob's content as a stream: the caller (or the store it goes to) verifies it.
    pub async fn open_stream(&self, descriptor: &Descriptor) -> Result<ByteStream, Error> {
        let (response, _) = self.blob_get(descriptor, None).await?;
        let verifier = Verifier::new(descriptor)?;
        Ok(Box::pin(VerifyingStream {
            inner: response.into_body(),
            verifier: Some(verifier),
        }))
    }

    /// Uploads a blob from a stream of `descriptor.size` bytes (a copy from another store):
    /// one streamed `PUT`, or above the monolithic limit one streamed `PATCH` and an empty `PUT`
    /// (what docker does), so memory stays bounded; the registry checks the digest.
    pub async fn push_stream(
        &self,
        descriptor: &Descriptor,
        stream: ByteStream,
    ) -> Result<(), Error> {
        if self.blob_exists(&descriptor.digest).await?.is_some() {
            return Ok(());
        }
        let mut session = self.start_upload().await?;
        let body = Body::Stream {
            stream,
            len: Some(descriptor.size),
        };
        if descriptor.size <= self.client.config().monolithic_limit || descriptor.size == 0 {
            let request = session.finish_request(&descriptor.digest, body)?;
            let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
            session.handle_finish_response(&response)?;
        } else {
            let request = session.chunk_request(body)?;
            let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
            session.handle_chunk_response(&response)?;
            let request = session.finish_request(&descriptor.digest, Body::Empty)?;
            let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
            session.handle_finish_response(&response)?;
        }
        self.report(
            Some(&descriptor.digest),
            descriptor.size,
            Some(descriptor.size),
        );
        Ok(())
    }

    /// Deletes only a tag, keeping the manifest it points at. Uses ACR's tag API
    /// (`DELETE /acr/v1/<name>/_tags/<tag>`); other registries have no such API, and then only
    /// with `via_placeholder` the documented workaround is used: point the tag at a throw-away
    /// manifest and delete that (which deletes the tag with it). Never done silently.
    pub async fn delete_tag(&self, tag: &str, via_placeholder: bool) -> Result<(), Error> {
        let reference = self.reference.with_tag(tag)?;
        let mut url = self.registry.base_url().clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidCredential {
                reason: "the registry URL cannot take a path",
            })?
            .pop_if_empty()
            .extend(["acr", "v1"])
            .extend(self.reference.repository().split('/'))
            .extend(["_tags", tag]);
        let mut request = http::Request::builder()
            .method(http::Method::DELETE)
            .uri(url.as_str())
            .body(Body::Empty)
            .map_err(|e| Error::Io {
                path: PathBuf::from(url.as_str()),
                message: e.to_string(),
            })?;
        request
            .extensions_mut()
            .insert(oci_distribution_proto::RequestInfo {
                operation: oci_distribution_proto::Operation::DeleteManifest,
                scopes: vec![oci_distribution_proto::Scope::repository(
                    self.reference.repository(),
                    &[oci_distribution_proto::Action::Delete],
                )],
            });
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        if response.status().is_success() {
            return Ok(());
        }
        // An ACR that knows the repository but not the tag answers with its JSON error body;
        // a registry without the API answers a bare 404 (or 405).
        let has_api = response.status() != http::StatusCode::METHOD_NOT_ALLOWED
            && response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if has_api {
            return Err(oci_distribution_proto::Error::from_response(
                oci_distribution_proto::Operation::DeleteManifest,
                &response,
            )
            .into());
        }
        if !via_placeholder {
            return Err(Error::Unsupported {
                message: format!(
                    "{} has no API to delete only a tag; delete the manifest (and all its tags), or allow the placeholder workaround (`acr untag --via-placeholder`)",
                    self.registry_host()
                ),
            });
        }
        let config = self
            .push_bytes(MediaType::EmptyJson, Bytes::from_static(b"{}"))
            .await?;
        let mut placeholder = oci_spec_types::ImageManifest::new(config, Vec::new());
        placeholder.artifact_type = Some(MediaType::from("application/vnd.acr.tag-placeholder.v1"));
        // Unique content, so the placeholder never shares a digest with (and deletes) anything else.
        let nonce =
            Digest::sha256_of(format!("{reference} {:?}", std::time::SystemTime::now()).as_bytes());
        placeholder
            .annotations
            .insert("io.acr.placeholder".to_owned(), nonce.to_string());
        let placeholder = ManifestBytes::from_manifest(placeholder.into());
        self.put_manifest(&placeholder, Some(tag)).await?;
        self.delete_manifest(placeholder.digest()).await
    }

    /// Deletes a manifest by digest (registries delete its tags with it).
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<(), Error> {
        let reference = self.reference.with_digest(digest.clone());
        let request = self.registry.manifest_delete_request(&reference)?;
        let response = self.send_small(request, ERROR_BODY_LIMIT).await?;
        Ok(self.registry.handle_manifest_delete_response(&response)?)
    }

    /// Every tag, following `Link` pagination.
    pub async fn tags(&self) -> Result<Vec<String>, Error> {
        let mut request = self
            .registry
            .tags_request(&self.reference, &PageRequest::default())?;
        let mut tags = Vec::new();
        loop {
            let uri = request.uri().clone();
            let response = self.send_small(request, 16 << 20).await?;
            let page = self.registry.handle_tags_response(&uri, &response)?;
            tags.extend(page.tags);
            match page.next {
                Some(next) => request = self.registry.tags_next_request(&self.reference, &next)?,
                None => return Ok(tags),
            }
        }
    }

    fn target(&self, target: &str) -> Result<Reference, Error> {
        Ok(match Digest::parse(target) {
            Ok(digest) => self.reference.with_digest(digest),
            Err(_) => self.reference.with_tag(target)?,
        })
    }

    /// The registry this repository is on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `host[:port]` of the registry.
    pub fn registry_host(&self) -> String {
        registry_host(&self.registry)
    }
}

/// Checks streamed content against its descriptor: never more than the declared size.
struct Verifier {
    expected: Descriptor,
    received: u64,
    hasher: HashSink,
}

/// Where [`Repository::download_range`] puts what it receives.
trait ChunkSink: Send {
    fn put(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), Error>> + Send;
}

impl ChunkSink for FileWriter {
    fn put(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), Error>> + Send {
        self.write(chunk)
    }
}

/// Any `AsyncWrite` (memory, a caller's writer) as a [`ChunkSink`].
struct WriterSink<'a, W>(&'a mut W);

impl<W: AsyncWrite + Unpin + Send> ChunkSink for WriterSink<'_, W> {
    async fn put(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.0.write_all(&chunk).await.map_err(|e| Error::Io {
            path: PathBuf::from("<download>"),
            message: e.to_string(),
        })
    }
}

/// Where a download's bytes are hashed: inline for small blobs, on a thread of its own for
/// large ones, so hashing overlaps receiving and writing (two cores instead of one).
enum HashSink {
    Inline(Digester),
    Thread {
        chunks: std::sync::mpsc::SyncSender<Bytes>,
        done: std::thread::JoinHandle<Digest>,
    },
}

/// Blobs at least this large are hashed on their own thread.
const THREADED_HASH_FROM: u64 = 16 << 20;

impl Verifier {
    fn new(descriptor: &Descriptor) -> Result<Self, Error> {
        let digester = descriptor
            .digest
            .digester()
            .ok_or_else(|| Error::UnsupportedDigest {
                digest: descriptor.digest.clone(),
            })?;
        let hasher = if descriptor.size >= THREADED_HASH_FROM {
            let (chunks, receiver) = std::sync::mpsc::sync_channel::<Bytes>(4);
            let done = std::thread::spawn(move || {
                let mut digester = digester;
                for chunk in receiver {
                    digester.update(&chunk);
                }
                digester.finalize()
            });
            HashSink::Thread { chunks, done }
        } else {
            HashSink::Inline(digester)
        };
        Ok(Self {
            expected: descriptor.clone(),
            received: 0,
            hasher,
        })
    }

    fn check_size(&mut self, len: usize) -> Result<(), Error> {
        let after = self.received + len as u64;
        if after > self.expected.size {
            return Err(Error::SizeMismatch {
                digest: self.expected.digest.clone(),
                expected: self.expected.size,
                actual: after,
            });
        }
        self.received = after;
        Ok(())
    }

    fn update(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match &mut self.hasher {
            HashSink::Inline(_) => {
                self.check_size(bytes.len())?;
                if let HashSink::Inline(digester) = &mut self.hasher {
                    digester.update(bytes);
                }
                Ok(())
            }
            HashSink::Thread { .. } => self.update_bytes(&Bytes::copy_from_slice(bytes)),
        }
    }

    /// Like [`Verifier::update`], without copying the chunk when hashing on a thread.
    fn update_bytes(&mut self, bytes: &Bytes) -> Result<(), Error> {
        self.check_size(bytes.len())?;
        match &mut self.hasher {
            HashSink::Inline(digester) => digester.update(bytes),
            HashSink::Thread { chunks, .. } => {
                // The thread only ends when the sender is dropped, so this send cannot fail
                // unless it panicked; then `finish` reports the mismatch.
                let _ = chunks.send(bytes.clone());
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        let size = self.received;
        if size != self.expected.size {
            return Err(Error::SizeMismatch {
                digest: self.expected.digest,
                expected: self.expected.size,
                actual: size,
            });
        }
        let actual = match self.hasher {
            HashSink::Inline(digester) => digester.finalize(),
            HashSink::Thread { chunks, done } => {
                drop(chunks);
                done.join().map_err(|_| Error::Io {
                    path: PathBuf::from("<hash thread>"),
                    message: "the hashing thread failed".into(),
                })?
            }
        };
        if actual != self.expected.digest {
            return Err(Error::DigestMismatch {
                expected: self.expected.digest,
                actual,
            });
        }
        Ok(())
    }
}

fn partial_path(path: &Path, digest: &Digest) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", digest.short()))
}

/// One debug line per blob moved to or from a file: size, time and rate, for `acr -d`. (A blob
/// the registry already had counts as uploaded.)
fn log_transfer(what: &str, digest: &Digest, bytes: u64, started: std::time::Instant) {
    let elapsed = started.elapsed();
    let mib_per_s = bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64().max(1e-9);
    tracing::debug!(
        %digest,
        bytes,
        elapsed_ms = elapsed.as_millis() as u64,
        mib_per_s = format_args!("{mib_per_s:.0}"),
        "blob {what}"
    );
}

/// Writes verified `bytes` to `partial`, syncs it and renames it to `path`; removes the
/// partial file when any step fails.
fn write_durably(partial: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let written = std::fs::File::create(partial).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(partial);
        return Err(io_error(partial)(e));
    }
    std::fs::rename(partial, path).map_err(|e| {
        let _ = std::fs::remove_file(partial);
        io_error(path)(e)
    })
}

/// What a range task of [`Repository::download_ranges`] hands on.
enum RangePiece {
    Bytes(Bytes),
    /// The registry answered the whole blob instead of the range.
    Ignored,
    Failed(Error),
}

/// The range downloads of one parallel download, in blob order; aborted when dropped.
#[derive(Default)]
struct RangeTasks(
    std::collections::VecDeque<(
        mpsc::UnboundedReceiver<RangePiece>,
        tokio::task::AbortHandle,
    )>,
);

impl RangeTasks {
    fn spawn(&mut self, repository: Repository, descriptor: Descriptor, start: u64, end: u64) {
        let (pieces, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            if let Err(e) = repository
                .stream_range(&descriptor, start, end, &pieces)
                .await
            {
                let _ = pieces.send(RangePiece::Failed(e));
            }
        });
        self.0.push_back((receiver, task.abort_handle()));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn head(&mut self) -> Option<&mut mpsc::UnboundedReceiver<RangePiece>> {
        self.0.front_mut().map(|(receiver, _)| receiver)
    }

    fn pop_head(&mut self) {
        self.0.pop_front();
    }
}

impl Drop for RangeTasks {
    fn drop(&mut self) {
        for (_, task) in &self.0 {
            task.abort();
        }
    }
}

/// Memory for the ranges of one parallel download (see [`Repository::fetch_to_file_parallel`]):
/// `parts` ranges of this share each, within [`MIN_RANGE`] and [`MAX_RANGE`].
const RANGES_IN_MEMORY: u64 = 24 << 20;
const MIN_RANGE: u64 = 1 << 20;
const MAX_RANGE: u64 = 8 << 20;

/// Blobs smaller than this are downloaded into memory before they are written (see
/// [`Repository::fetch_to_file`]); larger ones stream through a partial file that resumes.
const IN_MEMORY_DOWNLOAD: u64 = 256 << 10;

/// Automatic resumes of one interrupted download in [`Repository::fetch_to_file`].
pub(crate) const DOWNLOAD_RESUMES: u32 = 3;

/// Resumes of one chunked upload in a row without the registry's offset moving past its best.
pub(crate) const UPLOAD_RESUMES: u32 = 5;

/// A download error that a `Range` request from the partial file may get past: the connection
/// dropped, the body stalled, or it ended early. Wrong content is never resumed.
fn download_resumable(error: &Error) -> bool {
    match error {
        Error::Connection { .. } | Error::Timeout { .. } => true,
        Error::SizeMismatch {
            expected, actual, ..
        } => actual < expected,
        _ => false,
    }
}

/// An upload error worth a status request and a resume: the connection, a timeout, or an
/// answer that leaves the session interrupted or lost (5xx, 429, 408, 404, 416, a wrong
/// offset), but not a refusal such as 401/403 or bad content.
fn upload_resumable(error: &Error, session: &UploadSession) -> bool {
    match error {
        Error::Connection { .. } | Error::Timeout { .. } => true,
        Error::Protocol(e) => {
            let open = matches!(
                session.state(),
                UploadState::Interrupted
                    | UploadState::Failed
                    | UploadState::SendingChunk
                    | UploadState::CheckingStatus
            );
            let status_ok = e
                .status()
                .is_none_or(|s| s.is_server_error() || matches!(s.as_u16(), 404 | 408 | 416 | 429));
            open && status_ok
        }
        _ => false,
    }
}

/// A `413 Payload Too Large`: the registry wants smaller requests (ACR above about 20 MB).
fn too_large(error: &oci_distribution_proto::Error) -> bool {
    error.status() == Some(http::StatusCode::PAYLOAD_TOO_LARGE)
}

/// Chunks for the fallback after a `413`: at most the configured size, the safe default, and
/// half the refused body.
fn fallback_chunks(configured: u64, size: u64) -> ChunkPolicy {
    ChunkPolicy {
        chunk_size: configured
            .min(DEFAULT_CHUNK_SIZE)
            .min(size.div_ceil(2))
            .max(1),
    }
}

/// Where the bytes of a chunked upload come from: read again for a resumed chunk.
enum ChunkSource<'a> {
    /// A file, re-hashed as it is sent.
    File {
        path: &'a Path,
        rehash: Arc<std::sync::Mutex<Rehash>>,
    },
    /// Bytes in memory.
    Bytes(&'a Bytes),
}

impl ChunkSource<'_> {
    fn body(&self, start: u64, len: u64) -> Result<Body, Error> {
        match self {
            Self::File { path, rehash } => {
                file_body(path, start, len, Hashing::Shared(rehash.clone()))
            }
            Self::Bytes(bytes) => {
                let range = usize::try_from(start)
                    .ok()
                    .zip(usize::try_from(start.saturating_add(len)).ok())
                    .filter(|(_, end)| *end <= bytes.len());
                match range {
                    Some((start, end)) => Ok(Body::Bytes(bytes.slice(start..end))),
                    None => Err(Error::Io {
                        path: PathBuf::from("<bytes>"),
                        message: format!(
                            "the registry asked for bytes {start}..{} of a {}-byte blob",
                            start.saturating_add(len),
                            bytes.len()
                        ),
                    }),
                }
            }
        }
    }
}

/// The second hashing of a file sent in chunks: every byte once, in order, even when a
/// resumed chunk sends some again.
#[derive(Default)]
pub(crate) struct Rehash {
    digester: Digester,
    /// The file offset hashed up to.
    upto: u64,
}

impl Rehash {
    /// Hashes the part of `bytes` (found at file offset `at`) not hashed yet.
    fn update(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        if at <= self.upto && self.upto < end {
            let skip = (self.upto - at) as usize;
            self.digester.update(bytes.get(skip..).unwrap_or_default());
            self.upto = end;
        }
    }
}

/// Fails when the second hashing of a file sent in chunks disagrees with the first.
fn check_rehash(path: &Path, descriptor: &Descriptor, rehashed: Rehash) -> Result<(), Error> {
    if rehashed.digester.bytes_hashed() != descriptor.size
        || rehashed.digester.finalize() != descriptor.digest
    {
        return Err(Error::ChangedWhileReading {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Writes where an upload is (its latest `Location`), atomically; failing to save only loses
/// the ability to resume.
async fn save_position(saved: &Path, session: &UploadSession) {
    let text =
        serde_json::json!({ "location": session.location().as_str(), "offset": session.offset() })
            .to_string();
    let temp = saved.with_extension("json.tmp");
    if tokio::fs::write(&temp, text).await.is_ok() {
        let _ = tokio::fs::rename(&temp, saved).await;
    }
}

/// Feeds the first `len` bytes of `path` into `rehash`.
async fn prehash(
    path: &Path,
    rehash: &Arc<std::sync::Mutex<Rehash>>,
    len: u64,
) -> Result<(), Error> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let mut buffer = vec![0u8; READ_SIZE];
    let mut at = 0u64;
    while at < len {
        let want = READ_SIZE.min((len - at) as usize);
        let n = file
            .read(&mut buffer[..want])
            .await
            .map_err(io_error(path))?;
        if n == 0 {
            return Err(Error::ChangedWhileReading {
                path: path.to_owned(),
            });
        }
        rehash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(at, buffer.get(..n).unwrap_or_default());
        at += n as u64;
    }
    Ok(())
}

/// The length of a file, 0 when it does not exist.
async fn file_len(path: &Path) -> u64 {
    tokio::fs::metadata(path).await.map_or(0, |m| m.len())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |e| Error::Io {
        path,
        message: e.to_string(),
    }
}

async fn next_chunk(body: &mut Body) -> Option<Result<Bytes, std::io::Error>> {
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_next(cx)).await
}

/// [`hash_file`] on the calling thread.
pub(crate) fn hash_file_blocking(path: &Path) -> Result<(Digest, u64), Error> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut digester = Digester::default();
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        digester.update(buffer.get(..n).unwrap_or_default());
    }
    let size = digester.bytes_hashed();
    Ok((digester.finalize(), size))
}

/// The sha256 digest and size of a file, in one pass with large reads.
pub(crate) async fn hash_file(path: &Path) -> Result<(Digest, u64), Error> {
    let path = path.to_owned();
    // Hashing is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || hash_file_blocking(&path))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            message: e.to_string(),
        })?
}

/// How a streamed file body re-hashes what it sends.
pub(crate) enum Hashing {
    /// The whole file; the stream fails at its end when it does not match.
    Whole(Digest),
    /// One range of several; the caller compares after the last.
    Shared(Arc<std::sync::Mutex<Rehash>>),
}

/// A request body streaming `len` bytes of a file from `start`, read (and re-hashed) on a
/// blocking thread a few megabytes ahead of the network; the stream fails at its end when the
/// bytes no longer match (the file changed after it was hashed).
pub(crate) fn file_body(
    path: &Path,
    start: u64,
    len: u64,
    hashing: Hashing,
) -> Result<Body, Error> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = send_file_range(&path, start, len, &hashing, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream: ByteStream = Box::pin(ChannelStream(rx));
    Ok(Body::Stream {
        stream,
        len: Some(len),
    })
}

/// The reading side of [`file_body`]: fresh buffers filled without zeroing them first, one
/// copy from the page cache, hashed on the same thread.
fn send_file_range(
    path: &Path,
    start: u64,
    len: u64,
    hashing: &Hashing,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), std::io::Error> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(start))?;
    let mut digester = Digester::default();
    let mut left = len;
    while left > 0 {
        let want = READ_SIZE.min(usize::try_from(left).unwrap_or(READ_SIZE));
        let mut buffer = Vec::with_capacity(want);
        (&mut file).take(want as u64).read_to_end(&mut buffer)?;
        if buffer.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was uploaded", path.display()),
            ));
        }
        match hashing {
            Hashing::Whole(_) => digester.update(&buffer),
            Hashing::Shared(shared) => shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .update(start + (len - left), &buffer),
        }
        left -= buffer.len() as u64;
        if tx.blocking_send(Ok(buffer.into())).is_err() {
            // The request was dropped: nobody wants the rest.
            return Ok(());
        }
    }
    if let Hashing::Whole(expected) = hashing
        && digester.finalize() != *expected
    {
        return Err(std::io::Error::other(format!(
            "{} changed while it was uploaded",
            path.display()
        )));
    }
    Ok(())
}

struct ChannelStream(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// A downloaded stream checked against its descriptor as it goes: it fails instead of ending
/// when the content is too long, too short or has another digest.
struct VerifyingStream {
    inner: Body,
    verifier: Option<Verifier>,
}

impl futures_core::Stream for VerifyingStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(verifier) = &mut this.verifier
                    && let Err(e) = verifier.update_bytes(&chunk)
                {
                    this.verifier = None;
                    return Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => match this.verifier.take().map(Verifier::finish) {
                Some(Err(e)) => Poll::Ready(Some(Err(std::io::Error::other(e.to_string())))),
                _ => Poll::Ready(None),
            },
            other => other,
        }
    }
}

/// A byte stream as an `AsyncRead`, for stores that take readers.
pub(crate) struct StreamReader {
    stream: ByteStream,
    current: Bytes,
}

impl StreamReader {
    pub(crate) fn new(stream: ByteStream) -> Self {
        Self {
            stream,
            current: Bytes::new(),
        }
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let chunk = self.current.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
