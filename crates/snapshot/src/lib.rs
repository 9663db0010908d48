//! Snapshots: image layers unpacked once, stacked into root filesystems.
//!
//! A snapshotter hands back the *mounts* that make a snapshot's filesystem
//! (it does not mount them itself): an overlay of the parent chain with an
//! upper and a work directory, or a bind mount of a full copy where overlayfs
//! is unavailable ([`native`]). Committed snapshots are read-only layers,
//! keyed by their chain ID; active snapshots are writable and become layers
//! when committed. [`apply`] writes a layer tar into a snapshot safely.
//!
//! Snapshot records live in the store's metadata database; their files live
//! under `<root>/<id>/` where `<id>` is the record's directory number.

pub mod apply;
mod base;
pub mod compression;
pub mod fsutil;
pub mod native;
pub mod overlay;

use std::path::PathBuf;
use std::sync::Arc;

use hafen_store::meta::SnapshotRecord;
use hafen_store::{Db, DbError};

pub use apply::{Applied, ApplyError, Whiteouts};
pub use compression::Compression;

/// Snapshot failures.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No such snapshot.
    #[error("snapshot {0:?} does not exist")]
    NotFound(String),
    /// The key is taken.
    #[error("snapshot {0:?} already exists")]
    Exists(String),
    /// The parent of a new snapshot must be committed.
    #[error("snapshot {0:?} is not committed and cannot be a parent")]
    ParentNotCommitted(String),
    /// Only active snapshots can be committed.
    #[error("snapshot {0:?} is not active")]
    NotActive(String),
    /// A snapshot with children cannot go.
    #[error("snapshot {0:?} has children")]
    HasChildren(String),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The filesystem.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

type Result<T, E = SnapshotError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let what = what.into();
    move |source| SnapshotError::Io { what, source }
}

/// One mount of a snapshot's filesystem, for `mount(2)` or an OCI config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// The filesystem type (`overlay`, `bind`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The source (`overlay`, or a directory to bind).
    pub source: String,
    /// The options (`lowerdir=…`, `rbind`, `ro`).
    pub options: Vec<String>,
}

/// Where a layer is applied into a prepared snapshot.
#[derive(Debug, Clone)]
pub struct ApplyTarget {
    /// The directory the tar goes into.
    pub dir: PathBuf,
    /// How whiteouts are written there.
    pub whiteouts: Whiteouts,
    /// The parent chain's directories, top first (hardlink targets may be
    /// there).
    pub lowers: Vec<PathBuf>,
}

/// A kind of snapshot storage.
pub trait Snapshotter: Send + Sync + std::fmt::Debug {
    /// Its name as `docker info` shows it (`overlayfs`, `native`).
    fn name(&self) -> &'static str;

    /// Makes a writable snapshot `key` on top of the committed `parent`.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>>;

    /// The mounts of a snapshot (read-only for committed ones).
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;

    /// Where to apply a layer into the active snapshot `key`.
    fn apply_target(&self, key: &str) -> Result<ApplyTarget>;

    /// Turns the active snapshot `key` into the committed `name`, whose
    /// size is `size` if known (computed otherwise). Returns the size.
    fn commit(&self, name: &str, key: &str, size: Option<u64>) -> Result<u64>;

    /// Removes a snapshot (its children first).
    fn remove(&self, key: &str) -> Result<()>;

    /// The record of a snapshot.
    fn stat(&self, key: &str) -> Result<Option<SnapshotRecord>>;

    /// The directory holding a snapshot's own files.
    fn dir(&self, key: &str) -> Result<PathBuf>;

    /// Removes directories that no record names (left by a crash between
    /// making a directory and recording it, or the reverse for removal).
    fn sweep_orphans(&self) -> Result<usize>;
}

/// Chooses the best snapshotter for `root`: overlayfs if the kernel can
/// mount it there, else native copies.
pub fn open_best(root: &std::path::Path, db: Arc<Db>) -> Result<Arc<dyn Snapshotter>> {
    if overlay::supported(root) {
        Ok(Arc::new(overlay::Overlay::open(root, db)?))
    } else {
        tracing::warn!(
            "overlayfs is not usable under {}: using native copies",
            root.display()
        );
        Ok(Arc::new(native::Native::open(root, db)?))
    }
}

/// The chain ID of a stack of layers (OCI image spec): the first layer's
/// diff ID, then `sha256(parent chain ID + " " + diff ID)`.
pub fn chain_ids(diff_ids: &[hafen_oci::Digest]) -> Vec<hafen_oci::Digest> {
    let mut out: Vec<hafen_oci::Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => hafen_oci::Digest::sha256(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}
