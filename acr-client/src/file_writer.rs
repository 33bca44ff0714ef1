//! [`FileWriter`]: a download's file, written on a thread of its own.
//!
//! Downloads hand it the chunks hyper received, without copying them, so receiving, hashing
//! (the verifier's thread) and writing run at once on different cores. Its disk writes are
//! started as the file grows (a background `fdatasync` every few dozen MiB), so the final
//! `fsync` before the rename only waits for the tail instead of the whole file.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::Error;

/// Chunks waiting for the writer thread; with hyper's frames of up to ~400 KB this bounds
/// the memory a slow disk can hold up (under 2 MiB per download). Short queues also let
/// hyper reuse its buffers: a 1 GiB pull is as fast with 4 slots as with 8 or 16 (here and
/// for the hash thread), with a third of the page faults and 17 instead of 25 MiB of RSS.
const QUEUED_CHUNKS: usize = 4;

/// Bytes written between two background flushes. Measured on a 1 GiB pull: 4 to 64 MiB are
/// alike (1.0 s), 128 MiB is slower (1.2 s), none at all 1.4 s.
const FLUSH_EVERY: u64 = 16 << 20;

/// A file written by a thread of its own, fed with [`FileWriter::write`].
pub(crate) struct FileWriter {
    chunks: Option<mpsc::Sender<Bytes>>,
    result: Option<oneshot::Receiver<std::io::Result<std::fs::File>>>,
    path: PathBuf,
}

impl FileWriter {
    /// Starts writing at `file`'s current position; `path` names it in errors. The file is
    /// flushed to disk as it grows and synced at the end.
    pub(crate) fn spawn(file: std::fs::File, path: &Path) -> Self {
        let (chunks, receiver) = mpsc::channel(QUEUED_CHUNKS);
        let (result_sender, result) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("acr-file-writer".into())
            .spawn(move || {
                let _ = result_sender.send(write_all(file, receiver));
            });
        let (chunks, result) = match spawned {
            Ok(_) => (Some(chunks), Some(result)),
            // No thread: the first write reports it.
            Err(_) => (None, None),
        };
        Self {
            chunks,
            result,
            path: path.to_owned(),
        }
    }

    /// Queues `chunk`; waits only while the queue is full.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped (a write failed): its error says why.
        match self.finish().await {
            Err(e) => Err(e),
            Ok(_) => Err(self.error("the file writer stopped".into())),
        }
    }

    /// Writes what is queued, syncs, and gives the file back.
    /// Also the way to keep what arrived when a download fails.
    pub(crate) async fn finish(&mut self) -> Result<std::fs::File, Error> {
        self.chunks = None;
        let Some(result) = self.result.take() else {
            return Err(self.error("the file writer could not start or already finished".into()));
        };
        match result.await {
            Ok(Ok(file)) => Ok(file),
            Ok(Err(e)) => Err(self.error(e.to_string())),
            Err(_) => Err(self.error("the file writer thread failed".into())),
        }
    }

    fn error(&self, message: String) -> Error {
        Error::Io {
            path: self.path.clone(),
            message,
        }
    }
}

/// The writer thread: every chunk in order, a background flush every [`FLUSH_EVERY`] bytes.
fn write_all(
    mut file: std::fs::File,
    mut chunks: mpsc::Receiver<Bytes>,
) -> std::io::Result<std::fs::File> {
    let mut flusher: Option<Flusher> = None;
    let mut unflushed = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        file.write_all(&chunk)?;
        unflushed += chunk.len() as u64;
        if unflushed >= FLUSH_EVERY {
            unflushed = 0;
            if flusher.is_none() {
                flusher = file.try_clone().ok().and_then(Flusher::spawn);
            }
            if let Some(flusher) = &flusher {
                flusher.kick();
            }
        }
    }
    drop(flusher);
    file.sync_all()?;
    Ok(file)
}

/// A thread that flushes the file's dirty pages while the writer goes on, so the disk works
/// during the download instead of after it.
struct Flusher {
    kicks: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn spawn(file: std::fs::File) -> Option<Self> {
        let (kicks, receiver) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("acr-file-flusher".into())
            .spawn(move || {
                while receiver.recv().is_ok() {
                    // Only an early start of the writes: the final fsync reports errors.
                    let _ = file.sync_data();
                }
            })
            .ok()?;
        Some(Self {
            kicks: Some(kicks),
            thread: Some(thread),
        })
    }

    /// Asks for a flush; one already asked for and not started yet covers this one too.
    fn kick(&self) {
        if let Some(kicks) = &self.kicks {
            let _ = kicks.try_send(());
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.kicks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_every_chunk_in_order_and_gives_the_file_back() {
        let dir = std::env::temp_dir().join(format!("acr-file-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = FileWriter::spawn(file, &path);
        let mut expected = Vec::new();
        // Past FLUSH_EVERY, so the background flusher runs too.
        for i in 0..24u8 {
            let chunk = Bytes::from(vec![i; 1 << 20]);
            expected.extend_from_slice(&chunk);
            writer.write(chunk).await.unwrap();
        }
        writer.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert!(writer.finish().await.is_err(), "a finished writer says so");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_failing_write_is_reported_with_the_path() {
        let dir = std::env::temp_dir().join(format!("acr-file-writer-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("read-only");
        std::fs::write(&path, b"x").unwrap();
        // A handle opened for reading only: every write fails.
        let file = std::fs::File::open(&path).unwrap();
        let mut writer = FileWriter::spawn(file, &path);
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = writer.write(Bytes::from_static(b"data")).await {
                failed = Some(e);
                break;
            }
        }
        let error = match failed {
            Some(e) => e,
            None => writer.finish().await.unwrap_err(),
        };
        assert!(
            matches!(&error, Error::Io { path: p, .. } if *p == path),
            "{error:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
