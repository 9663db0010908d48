//! The overlayfs snapshotter: each snapshot directory holds `fs` (its own
//! files: a committed layer, or the upper directory of an active snapshot)
//! and, while active, `work` (overlayfs' work directory). A filesystem is
//! an overlay of the parent chain's `fs` directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_store::Db;
use hafen_store::meta::SnapshotRecord;

use crate::base::Base;
use crate::{ApplyTarget, Mount, Result, SnapshotError, Snapshotter, Whiteouts, io_err};

/// The overlayfs snapshotter.
#[derive(Debug)]
pub struct Overlay {
    base: Base,
}

/// Whether overlayfs can be mounted with its upper directory under `root`
/// (tried for real, with a whiteout, as the snapshotter will use it).
pub fn supported(root: &Path) -> bool {
    let probe = root.join(format!(".overlay-probe-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(probe.join(d))?;
        }
        rustix::fs::mknodat(
            rustix::fs::CWD,
            probe.join("upper/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            probe.join("lower").display(),
            probe.join("upper").display(),
            probe.join("work").display()
        );
        let options = std::ffi::CString::new(options).map_err(std::io::Error::other)?;
        rustix::mount::mount(
            "overlay",
            probe.join("merged"),
            "overlay",
            rustix::mount::MountFlags::empty(),
            options.as_c_str(),
        )?;
        rustix::mount::unmount(probe.join("merged"), rustix::mount::UnmountFlags::DETACH)?;
        Ok(())
    })();
    let _ = crate::fsutil::remove_tree(&probe);
    result.is_ok()
}

impl Overlay {
    /// Opens the snapshotter with its directories under `root`.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Overlay> {
        Ok(Overlay {
            base: Base::open(root, db)?,
        })
    }

    fn fs_of(&self, r: &SnapshotRecord) -> PathBuf {
        self.base.dir_of(r).join("fs")
    }

    fn lowers(&self, r: &SnapshotRecord) -> Result<Vec<PathBuf>> {
        Ok(self
            .base
            .ancestors(r)?
            .iter()
            .map(|a| self.fs_of(a))
            .collect())
    }
}

fn lowerdir(dirs: &[PathBuf]) -> String {
    let joined: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!("lowerdir={}", joined.join(":"))
}

impl Snapshotter for Overlay {
    fn name(&self) -> &'static str {
        "overlayfs"
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.base.create(key, parent, "active", &["fs", "work"])?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let r = self.base.record(key)?;
        let lowers = self.lowers(&r)?;
        let own = self.fs_of(&r);
        if r.kind == "active" {
            if lowers.is_empty() {
                return Ok(vec![Mount {
                    kind: "bind".into(),
                    source: own.display().to_string(),
                    options: vec!["rbind".into(), "rw".into()],
                }]);
            }
            return Ok(vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    lowerdir(&lowers),
                    format!("upperdir={}", own.display()),
                    format!("workdir={}", self.base.dir_of(&r).join("work").display()),
                ],
            }]);
        }
        // A committed layer: read-only, itself on top of its parents.
        let mut all = vec![own];
        all.extend(lowers);
        if all.len() == 1 {
            return Ok(vec![Mount {
                kind: "bind".into(),
                source: all[0].display().to_string(),
                options: vec!["rbind".into(), "ro".into()],
            }]);
        }
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![lowerdir(&all)],
        }])
    }

    fn apply_target(&self, key: &str) -> Result<ApplyTarget> {
        let r = self.base.record(key)?;
        if r.kind != "active" {
            return Err(SnapshotError::NotActive(key.to_string()));
        }
        Ok(ApplyTarget {
            dir: self.fs_of(&r),
            whiteouts: Whiteouts::Overlay,
            lowers: self.lowers(&r)?,
        })
    }

    fn commit(&self, name: &str, key: &str, size: Option<u64>) -> Result<u64> {
        let r = self.base.record(key)?;
        let size = match size {
            Some(s) => s,
            None => crate::fsutil::tree_size(&self.fs_of(&r))
                .map_err(io_err(format!("cannot measure snapshot {key:?}")))?,
        };
        let r = self.base.commit(name, key, size)?;
        let _ = crate::fsutil::remove_tree(&self.base.dir_of(&r).join("work"));
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
