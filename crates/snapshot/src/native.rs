//! The native snapshotter, for where overlayfs cannot be used: every
//! snapshot is a full copy of its parent in `fs`, mounted by bind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_store::Db;
use hafen_store::meta::SnapshotRecord;

use crate::base::Base;
use crate::{ApplyTarget, Mount, Result, SnapshotError, Snapshotter, Whiteouts, io_err};

/// The native (copying) snapshotter.
#[derive(Debug)]
pub struct Native {
    base: Base,
}

impl Native {
    /// Opens the snapshotter with its directories under `root`.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Native> {
        Ok(Native {
            base: Base::open(root, db)?,
        })
    }

    fn fs_of(&self, r: &SnapshotRecord) -> PathBuf {
        self.base.dir_of(r).join("fs")
    }
}

impl Snapshotter for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        let (r, dir) = self.base.create(key, parent, "active", &["fs"])?;
        if let Some(parent) = parent {
            let p = self.base.record(parent)?;
            if let Err(e) = crate::fsutil::copy_tree(&self.fs_of(&p), &dir.join("fs")) {
                let _ = self.base.remove(&r.key);
                return Err(io_err(format!("cannot copy snapshot {parent:?}"))(e));
            }
        }
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let r = self.base.record(key)?;
        let mode = if r.kind == "active" { "rw" } else { "ro" };
        Ok(vec![Mount {
            kind: "bind".into(),
            source: self.fs_of(&r).display().to_string(),
            options: vec!["rbind".into(), mode.into()],
        }])
    }

    fn apply_target(&self, key: &str) -> Result<ApplyTarget> {
        let r = self.base.record(key)?;
        if r.kind != "active" {
            return Err(SnapshotError::NotActive(key.to_string()));
        }
        Ok(ApplyTarget {
            dir: self.fs_of(&r),
            whiteouts: Whiteouts::Remove,
            lowers: Vec::new(),
        })
    }

    fn commit(&self, name: &str, key: &str, size: Option<u64>) -> Result<u64> {
        // A full copy holds the parents' files too: Docker's size is the
        // layer's own, which only the caller (who applied it) knows.
        let r = self.base.record(key)?;
        let size = match size {
            Some(s) => s,
            None => crate::fsutil::tree_size(&self.fs_of(&r))
                .map_err(io_err(format!("cannot measure snapshot {key:?}")))?,
        };
        self.base.commit(name, key, size)?;
        Ok(size)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.base.remove(key)
    }

    fn stat(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        Ok(self.base.db.read(|tx| tx.snapshot(key))?)
    }

    fn dir(&self, key: &str) -> Result<PathBuf> {
        Ok(self.fs_of(&self.base.record(key)?))
    }

    fn sweep_orphans(&self) -> Result<usize> {
        self.base.sweep_orphans()
    }
}
