//! Directories as artifact layers, the ORAS way: packed as tar+gzip with the annotations
//! `io.deis.oras.content.digest` (digest of the tar before compression) and
//! `io.deis.oras.content.unpack: "true"`, and unpacked on pull without ever writing outside the
//! output folder.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use oci_spec_types::{Annotations, Digest, Digester, annotations};

use crate::Error;

/// The media type of a packed directory.
pub const DIRECTORY_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Most bytes an unpacked directory may hold, against tar bombs (declared sizes are trusted
/// only up to this total).
pub const MAX_UNPACKED_SIZE: u64 = 64 << 30;

/// A directory packed into a temporary `.tar.gz`, removed on drop.
#[derive(Debug)]
pub(crate) struct PackedDirectory {
    pub(crate) path: PathBuf,
    pub(crate) annotations: Annotations,
}

impl Drop for PackedDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes everything into `inner` while hashing it.
struct HashingWriter<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Packs `dir` as `name/...` into a temporary tar+gzip file (off the async workers).
pub(crate) async fn pack(dir: &Path, name: &str) -> Result<PackedDirectory, Error> {
    let dir = dir.to_owned();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || pack_blocking(&dir, &name))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            message: e.to_string(),
        })?
}

fn pack_blocking(dir: &Path, name: &str) -> Result<PackedDirectory, Error> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let io_err = |e: io::Error| Error::Io {
        path: dir.to_owned(),
        message: format!("packing the directory: {e}"),
    };
    let path = std::env::temp_dir().join(format!(
        "acr-pack-{}-{}.tar.gz",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).map_err(io_err)?;
    let packed = PackedDirectory {
        path,
        annotations: Annotations::new(),
    };
    let gzip = flate2::write::GzEncoder::new(io::BufWriter::new(file), flate2::Compression::fast());
    let mut builder = tar::Builder::new(HashingWriter {
        inner: gzip,
        digester: Digester::default(),
    });
    // Links are stored as links (as ORAS does), never followed out of the directory.
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all(name, dir).map_err(io_err)?;
    let hashing = builder.into_inner().map_err(io_err)?;
    let tar_digest = hashing.digester.finalize();
    let mut writer = hashing.inner.finish().map_err(io_err)?;
    writer.flush().map_err(io_err)?;
    let mut packed = packed;
    packed.annotations.insert(
        annotations::ORAS_CONTENT_DIGEST.to_owned(),
        tar_digest.to_string(),
    );
    packed.annotations.insert(
        annotations::ORAS_CONTENT_UNPACK.to_owned(),
        "true".to_owned(),
    );
    Ok(packed)
}

/// Unpacks the verified tar+gzip at `archive` into `out`: every entry must stay inside `out`
/// (no absolute paths, no `..`), links may only point inside it, and the total size is bounded.
/// The tar's digest is checked against `expected` (the `io.deis.oras.content.digest`) when given.
pub(crate) async fn unpack(
    archive: &Path,
    out: &Path,
    expected: Option<Digest>,
) -> Result<(), Error> {
    let archive = archive.to_owned();
    let out = out.to_owned();
    tokio::task::spawn_blocking(move || unpack_blocking(&archive, &out, expected.as_ref()))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            message: e.to_string(),
        })?
}

/// Reads from `inner` while hashing (the uncompressed tar stream).
struct HashingReader<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

fn unpack_blocking(archive: &Path, out: &Path, expected: Option<&Digest>) -> Result<(), Error> {
    let refuse = |message: String| Error::InvalidArtifact { message };
    let io_err = |e: io::Error| Error::Io {
        path: archive.to_owned(),
        message: format!("unpacking: {e}"),
    };
    let file = std::fs::File::open(archive).map_err(io_err)?;
    let gzip = flate2::read::GzDecoder::new(io::BufReader::new(file));
    let mut tar = tar::Archive::new(HashingReader {
        inner: gzip,
        digester: Digester::default(),
    });
    std::fs::create_dir_all(out).map_err(io_err)?;
    let mut total = 0u64;
    for entry in tar.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = entry.path().map_err(io_err)?.into_owned();
        let relative = inside(&raw).ok_or_else(|| {
            refuse(format!(
                "the archive entry {} leads outside the output folder; refusing to unpack",
                raw.display()
            ))
        })?;
        let target = out.join(&relative);
        let kind = entry.header().entry_type();
        total = total.saturating_add(entry.header().size().unwrap_or(0));
        if total > MAX_UNPACKED_SIZE {
            return Err(refuse(format!(
                "the archive unpacks to more than {MAX_UNPACKED_SIZE} bytes; refusing (tar bomb?)"
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
            let real = std::fs::canonicalize(parent).map_err(io_err)?;
            let root = std::fs::canonicalize(out).map_err(io_err)?;
            if !real.starts_with(&root) {
                return Err(refuse(format!(
                    "the archive entry {} goes through a symbolic link outside the output folder",
                    raw.display()
                )));
            }
        }
        match kind {
            tar::EntryType::Directory => std::fs::create_dir_all(&target).map_err(io_err)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(refuse(format!(
                        "{} is a symbolic link; refusing to write through it",
                        target.display()
                    )));
                }
                let mut file = std::fs::File::create(&target).map_err(io_err)?;
                // Copy at most the declared size: a lying header cannot make it write more.
                let declared = entry.header().size().map_err(io_err)?;
                io::copy(&mut (&mut entry).take(declared), &mut file).map_err(io_err)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(io_err)?
                    .ok_or_else(|| refuse(format!("link {} has no target", raw.display())))?;
                // A link's target is resolved from the link's own folder (symlink) or the root (hard link).
                let base = if kind == tar::EntryType::Symlink {
                    relative
                        .parent()
                        .unwrap_or_else(|| Path::new(""))
                        .to_owned()
                } else {
                    PathBuf::new()
                };
                if link.is_absolute() || inside(&base.join(&link)).is_none() {
                    return Err(refuse(format!(
                        "the archive link {} -> {} points outside the output folder; refusing to unpack",
                        raw.display(),
                        link.display()
                    )));
                }
                if kind == tar::EntryType::Symlink {
                    let _ = std::fs::remove_file(&target);
                    std::os::unix::fs::symlink(&link, &target).map_err(io_err)?;
                } else {
                    std::fs::hard_link(out.join(inside(&link).unwrap_or_default()), &target)
                        .map_err(io_err)?;
                }
            }
            other => {
                return Err(refuse(format!(
                    "the archive entry {} is a {other:?}, which is not unpacked",
                    raw.display()
                )));
            }
        }
    }
    // Read to the end so the digest covers the whole stream.
    let mut reader = tar.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(io_err)?;
    if let Some(expected) = expected {
        let actual = reader.digester.finalize();
        if actual != *expected {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// `path` as a relative path that stays inside its root (`..` may not climb above it).
fn inside(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside() {
        assert_eq!(inside(Path::new("a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(inside(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(inside(Path::new("../b")), None);
        assert_eq!(inside(Path::new("a/../../b")), None);
        assert_eq!(inside(Path::new("/etc/passwd")), None);
    }
}
