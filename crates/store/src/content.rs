//! The content store: blobs named by their digest.
//!
//! Layout under the store's root:
//!
//! ```text
//! blobs/<algorithm>/<hex>     committed blobs, read-only (0444)
//! ingest/<sha256 of ref>/     one directory per write in progress:
//!     ref                     the ingest's reference (who writes what)
//!     data                    the bytes so far
//!     lock                    flock(2)ed while a writer holds the ingest
//! ```
//!
//! A blob is written into its ingest and renamed into `blobs/` only after
//! its digest (and size, when known) is verified, so `blobs/` never holds a
//! partial or wrong blob. An ingest survives its writer: a later writer with
//! the same reference resumes at the end of `data`. Readers verify too: a
//! blob that changed on disk fails at the end of the read.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hafen_oci::Digest;
use hafen_oci::digest::{Algorithm, Hasher};

/// Content store failures.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No blob with this digest.
    #[error("content {0} not found")]
    NotFound(Digest),
    /// The bytes do not hash to the digest they were given as.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the bytes were said to be.
        expected: Digest,
        /// What they are.
        actual: Digest,
    },
    /// The bytes are not as many as they were said to be.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest being written or read.
        digest: String,
        /// The size it was said to have.
        expected: u64,
        /// The size it has.
        actual: u64,
    },
    /// Another writer holds the ingest.
    #[error("ingest {0:?} is in use by another writer")]
    Locked(String),
    /// A blob read into memory is larger than allowed.
    #[error("content {digest} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

type Result<T, E = ContentError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
    let what = what.into();
    move |source| ContentError::Io { what, source }
}

/// What is known about a committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The digest.
    pub digest: Digest,
    /// The size in bytes.
    pub size: u64,
    /// When it was committed.
    pub committed: SystemTime,
}

/// A write in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    /// The ingest's reference.
    pub reference: String,
    /// Bytes written so far.
    pub offset: u64,
    /// When the last byte was written.
    pub updated: SystemTime,
}

/// The content store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    /// Ingest references with a live writer in this process.
    active: Arc<Mutex<HashSet<String>>>,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<ContentStore> {
        for dir in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let path = root.join(dir);
            fs::create_dir_all(&path)
                .map_err(io_err(format!("cannot create {}", path.display())))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
            active: Arc::default(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a committed blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Information about a blob, `None` if it is not in the store.
    pub fn info(&self, digest: &Digest) -> Result<Option<Info>> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(meta) => Ok(Some(Info {
                digest: digest.clone(),
                size: meta.len(),
                committed: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("cannot stat {digest}"))(e)),
        }
    }

    /// Whether the store has the blob.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A reader of the blob that verifies its digest when it reaches the
    /// end: the last `read` fails with `InvalidData` if the bytes changed.
    pub fn reader(&self, digest: &Digest) -> Result<BlobReader> {
        let file = match File::open(self.blob_path(digest)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContentError::NotFound(digest.clone()));
            }
            Err(e) => return Err(io_err(format!("cannot open {digest}"))(e)),
        };
        let size = file
            .metadata()
            .map_err(io_err(format!("cannot stat {digest}")))?
            .len();
        Ok(BlobReader {
            file,
            hasher: Some(digest.algorithm().hasher()),
            expected: digest.clone(),
            size,
        })
    }

    /// Reads a whole blob into memory, verified, refusing blobs larger than
    /// `limit` (manifests and configs are small; a huge one is an attack).
    pub fn read_all(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let mut reader = self.reader(digest)?;
        if reader.size() > limit {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size: reader.size(),
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(reader.size() as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_error(digest, e))?;
        Ok(bytes)
    }

    fn read_error(&self, digest: &Digest, e: io::Error) -> ContentError {
        if e.kind() == io::ErrorKind::InvalidData {
            if let Some(mismatch) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Mismatch>())
            {
                return ContentError::DigestMismatch {
                    expected: digest.clone(),
                    actual: mismatch.0.clone(),
                };
            }
        }
        io_err(format!("cannot read {digest}"))(e)
    }

    /// Writes a small blob in one go; `expected`, if given, must match.
    /// Returns the digest. Writing a blob that is already there is a no-op.
    pub fn write_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = Digest::of(expected.map_or(Algorithm::Sha256, Digest::algorithm), bytes);
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer(
            &format!("blob-{digest}"),
            Some(&digest),
            Some(bytes.len() as u64),
        )?;
        w.truncate()?;
        w.write_all(bytes)
            .map_err(io_err(format!("cannot write {digest}")))?;
        w.commit()
    }

    /// Starts (or resumes) an ingest. `expected` digest and `size`, when
    /// given, are checked at commit. A resumed ingest continues after the
    /// bytes already written (see [`Writer::offset`]).
    pub fn writer(
        &self,
        reference: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Writer> {
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if !active.insert(reference.to_string()) {
                return Err(ContentError::Locked(reference.to_string()));
            }
        }
        let release = ActiveGuard {
            store: self.clone(),
            reference: reference.to_string(),
        };
        let dir = self.ingest_dir(reference);
        fs::create_dir_all(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io_err("cannot open the ingest lock"))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ContentError::Locked(reference.to_string()));
            }
            Err(e) => return Err(io_err("cannot lock the ingest")(e.into())),
        }
        fs::write(dir.join("ref"), reference).map_err(io_err("cannot write the ingest ref"))?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(dir.join("data"))
            .map_err(io_err("cannot open the ingest"))?;
        // Resume: hash what is there already.
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut hasher = algorithm.hasher();
        let mut offset = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(io_err("cannot read the ingest"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        Ok(Writer {
            store: self.clone(),
            dir,
            file,
            hasher,
            offset,
            expected: expected.cloned(),
            size,
            _lock: lock,
            _release: release,
        })
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        self.root
            .join("ingest")
            .join(Digest::sha256(reference.as_bytes()).hex())
    }

    /// Discards an ingest.
    pub fn abort(&self, reference: &str) -> Result<()> {
        match fs::remove_dir_all(self.ingest_dir(reference)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(format!("cannot remove ingest {reference:?}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// The ingests on disk.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("cannot list ingests"))? {
            let entry = entry.map_err(io_err("cannot list ingests"))?;
            let path = entry.path();
            let reference = fs::read_to_string(path.join("ref")).unwrap_or_default();
            let (offset, updated) = match fs::metadata(path.join("data")) {
                Ok(m) => (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
                Err(_) => (0, SystemTime::UNIX_EPOCH),
            };
            out.push(IngestStatus {
                reference,
                offset,
                updated,
            });
        }
        Ok(out)
    }

    /// Removes the ingests that `keep` does not want and that no writer
    /// holds (used at start-up: leftovers of an interrupted daemon).
    pub fn clean_ingests(&self, keep: impl Fn(&IngestStatus) -> bool) -> Result<usize> {
        let mut removed = 0;
        for status in self.ingests()? {
            if keep(&status) || self.is_active(&status.reference) {
                continue;
            }
            self.abort_unreadable_ref(&status)?;
            removed += 1;
        }
        Ok(removed)
    }

    fn is_active(&self, reference: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(reference)
    }

    fn abort_unreadable_ref(&self, status: &IngestStatus) -> Result<()> {
        // A directory whose ref file is missing (the crash hit before it was
        // written) is found by listing, not by its ref.
        let dir = self.root.join("ingest");
        for entry in fs::read_dir(&dir).map_err(io_err("cannot list ingests"))? {
            let path = entry.map_err(io_err("cannot list ingests"))?.path();
            if fs::read_to_string(path.join("ref")).unwrap_or_default() == status.reference {
                fs::remove_dir_all(&path)
                    .map_err(io_err(format!("cannot remove {}", path.display())))?;
            }
        }
        Ok(())
    }

    /// Deletes a blob (the garbage collector's job; nothing may refer to
    /// it any more).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(io_err(format!("cannot delete {digest}"))(e)),
        }
    }

    /// Every committed blob with its size.
    pub fn walk(&self) -> Result<Vec<(Digest, u64)>> {
        let mut out = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(algorithm.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("cannot list blobs")(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("cannot list blobs"))?;
                let name = entry.file_name();
                // Anything that is not a digest is not ours: leave it.
                let Some(digest) = name
                    .to_str()
                    .and_then(|hex| Digest::from_hex(algorithm, hex).ok())
                else {
                    continue;
                };
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((digest, size));
            }
        }
        Ok(out)
    }

    /// Flushes everything written to the store's filesystem to disk
    /// (`syncfs(2)`): one call after many blobs instead of one per blob.
    pub fn sync(&self) -> Result<()> {
        let dir = File::open(&self.root).map_err(io_err("cannot open the store"))?;
        rustix::fs::syncfs(&dir).map_err(|e| io_err("cannot sync the store")(e.into()))
    }
}

/// Releases an ingest reference when its writer goes.
#[derive(Debug)]
struct ActiveGuard {
    store: ContentStore,
    reference: String,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.store
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.reference);
    }
}

/// A blob being written. Dropping it keeps the ingest for a later resume;
/// [`Writer::abort`] discards it.
#[derive(Debug)]
pub struct Writer {
    store: ContentStore,
    dir: PathBuf,
    file: File,
    hasher: Hasher,
    offset: u64,
    expected: Option<Digest>,
    size: Option<u64>,
    _lock: File,
    _release: ActiveGuard,
}

impl Writer {
    /// Bytes written so far (more than zero for a resumed ingest).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts over: drops what a previous writer left.
    pub fn truncate(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .map_err(io_err("cannot truncate the ingest"))?;
        self.file
            .seek(io::SeekFrom::Start(0))
            .map_err(io_err("cannot truncate the ingest"))?;
        self.hasher = self
            .expected
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm)
            .hasher();
        self.offset = 0;
        Ok(())
    }

    /// Verifies and commits the blob without flushing it to disk (call
    /// [`ContentStore::sync`] before anything durable refers to it).
    pub fn commit(self) -> Result<Digest> {
        self.finish(false)
    }

    /// Verifies, flushes and commits the blob.
    pub fn commit_synced(self) -> Result<Digest> {
        self.finish(true)
    }

    fn finish(self, sync: bool) -> Result<Digest> {
        let Writer {
            store,
            dir,
            file,
            hasher,
            offset,
            expected,
            size,
            ..
        } = self;
        let actual = hasher.finish();
        let discard = |e: ContentError| {
            let _ = fs::remove_dir_all(&dir);
            e
        };
        if let Some(size) = size {
            if size != offset {
                return Err(discard(ContentError::SizeMismatch {
                    digest: expected
                        .as_ref()
                        .map_or_else(|| actual.to_string(), Digest::to_string),
                    expected: size,
                    actual: offset,
                }));
            }
        }
        if let Some(expected) = expected {
            if expected != actual {
                return Err(discard(ContentError::DigestMismatch { expected, actual }));
            }
        }
        if sync {
            file.sync_all().map_err(io_err("cannot flush the ingest"))?;
        }
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err("cannot seal the blob"))?;
        drop(file);
        let target = store.blob_path(&actual);
        if target.exists() {
            // Someone committed the same bytes first: same content.
            let _ = fs::remove_dir_all(&dir);
            return Ok(actual);
        }
        fs::rename(dir.join("data"), &target).map_err(io_err(format!("cannot commit {actual}")))?;
        if sync {
            if let Some(parent) = target.parent() {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err("cannot flush the blob directory"))?;
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Ok(actual)
    }

    /// Discards the ingest.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The error a reader returns at the end of a blob that does not match its
/// digest (inside an `InvalidData` I/O error).
#[derive(Debug, thiserror::Error)]
#[error("content does not match its digest (it is {0})")]
pub struct Mismatch(pub Digest);

/// Reads a blob and verifies it at the end.
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    /// Until the end is reached and checked.
    hasher: Option<Hasher>,
    expected: Digest,
    size: u64,
}

impl BlobReader {
    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n > 0 {
            if let Some(h) = &mut self.hasher {
                h.update(&buf[..n]);
            }
        } else if !buf.is_empty() {
            if let Some(h) = self.hasher.take() {
                let actual = h.finish();
                if actual != self.expected {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, Mismatch(actual)));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = ContentStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    #[test]
    fn write_read_verify() {
        let (_d, s) = store();
        let digest = s
            .write_blob(b"hello", None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(digest, Digest::sha256(b"hello"));
        assert_eq!(s.read_all(&digest, 100).unwrap_or_default(), b"hello");
        assert!(matches!(
            s.read_all(&digest, 2),
            Err(ContentError::TooLarge { size: 5, .. })
        ));
        assert_eq!(s.walk().unwrap_or_default(), vec![(digest.clone(), 5)]);
        assert!(s.ingests().unwrap_or_default().is_empty());
        // Again: a no-op.
        assert_eq!(s.write_blob(b"hello", Some(&digest)).ok(), Some(digest));
    }

    #[test]
    fn a_wrong_digest_or_size_is_never_committed() {
        let (_d, s) = store();
        let wrong = Digest::sha256(b"something else");
        assert!(matches!(
            s.write_blob(b"hello", Some(&wrong)),
            Err(ContentError::DigestMismatch { .. })
        ));
        let right = Digest::sha256(b"hello");
        let mut w = s
            .writer("r", Some(&right), Some(6))
            .unwrap_or_else(|e| panic!("{e}"));
        w.write_all(b"hello").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            w.commit(),
            Err(ContentError::SizeMismatch {
                expected: 6,
                actual: 5,
                ..
            })
        ));
        let mut w = s
            .writer("r", Some(&wrong), None)
            .unwrap_or_else(|e| panic!("{e}"));
        w.write_all(b"hello").unwrap_or_else(|e| panic!("{e}"));
        assert!(w.commit().is_err());
        assert!(s.walk().unwrap_or_default().is_empty(), "nothing committed");
        assert!(
            s.ingests().unwrap_or_default().is_empty(),
            "failed ingests removed"
        );
    }

    #[test]
    fn ingests_resume_and_lock() {
        let (_d, s) = store();
        let data = b"0123456789";
        let digest = Digest::sha256(data);
        let mut w = s
            .writer("pull-x", Some(&digest), Some(10))
            .unwrap_or_else(|e| panic!("{e}"));
        w.write_all(&data[..4]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            s.writer("pull-x", None, None),
            Err(ContentError::Locked(_))
        ));
        drop(w);
        let status = s.ingests().unwrap_or_default();
        assert_eq!(status.len(), 1);
        assert_eq!(
            (status[0].reference.as_str(), status[0].offset),
            ("pull-x", 4)
        );
        let mut w = s
            .writer("pull-x", Some(&digest), Some(10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.offset(), 4);
        w.write_all(&data[4..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.commit_synced().ok(), Some(digest.clone()));
        assert!(s.contains(&digest));
        let mode = fs::metadata(s.blob_path(&digest)).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o444));
    }

    #[test]
    fn readers_catch_a_changed_blob() {
        let (_d, s) = store();
        let digest = s
            .write_blob(b"original", None)
            .unwrap_or_else(|e| panic!("{e}"));
        let path = s.blob_path(&digest);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        fs::write(&path, b"tampered").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            s.read_all(&digest, 100),
            Err(ContentError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn start_up_cleaning_keeps_what_is_wanted() {
        let (_d, s) = store();
        for r in ["load-1", "pull-2"] {
            let mut w = s.writer(r, None, None).unwrap_or_else(|e| panic!("{e}"));
            w.write_all(b"partial").unwrap_or_else(|e| panic!("{e}"));
        }
        let removed = s
            .clean_ingests(|st| st.reference.starts_with("pull-"))
            .unwrap_or(0);
        assert_eq!(removed, 1);
        let left: Vec<String> = s
            .ingests()
            .unwrap_or_default()
            .into_iter()
            .map(|st| st.reference)
            .collect();
        assert_eq!(left, vec!["pull-2".to_string()]);
    }
}
