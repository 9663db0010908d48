//! A container's files from the host: its snapshot's layers (for `diff`
//! and `commit`) and its root filesystem mounted for `cp` and `export`
//! (also when it is not running).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_api::ApiError;

use super::Ctr;
use crate::Engine;

impl Engine {
    /// The writable directory of a container's snapshot and the read-only
    /// layers under it (top first).
    pub fn snapshot_layers(&self, key: &str) -> Result<(PathBuf, Vec<PathBuf>), ApiError> {
        let mounts = self
            .images()
            .snapshotter()
            .mounts(key)
            .map_err(|e| ApiError::internal(format!("the container's root filesystem: {e}")))?;
        let mut upper = None;
        let mut lowers = Vec::new();
        for m in &mounts {
            if m.kind == "overlay" {
                for o in &m.options {
                    if let Some(u) = o.strip_prefix("upperdir=") {
                        upper = Some(PathBuf::from(u));
                    } else if let Some(l) = o.strip_prefix("lowerdir=") {
                        lowers.extend(l.split(':').map(PathBuf::from));
                    }
                }
            } else {
                upper = Some(PathBuf::from(&m.source));
            }
        }
        let upper =
            upper.ok_or_else(|| ApiError::internal("the container's snapshot has no directory"))?;
        Ok((upper, lowers))
    }

    /// Runs `f` with the container's root filesystem mounted: where it is
    /// when the container runs, else a temporary mount.
    pub fn with_rootfs<T>(
        &self,
        ctr: &Arc<Ctr>,
        f: impl FnOnce(&Path) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _op = super::lock(&ctr.op);
        if ctr.rec().state.status.is_running() {
            return f(&ctr.paths.rootfs());
        }
        let snapshot = ctr.rec().snapshot.clone();
        let mounts = self
            .images()
            .snapshotter()
            .mounts(&snapshot)
            .map_err(|e| ApiError::internal(format!("the container's root filesystem: {e}")))?;
        let dir = ctr.paths.state.join("rootfs");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
        super::lifecycle::mount_rootfs(&mounts, &dir)
            .map_err(|e| ApiError::internal(format!("cannot mount the root filesystem: {e}")))?;
        let out = f(&dir);
        let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir_all(&ctr.paths.state);
        out
    }
}

impl Engine {
    /// `commit`: a new image from the container's changes.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_container(
        &self,
        _id: &str,
        _reference: Option<&str>,
        _comment: &str,
        _author: &str,
        _pause: bool,
        _changes: &[String],
        _config: Option<serde_json::Value>,
    ) -> Result<String, ApiError> {
        Err(ApiError::new(501, "commit is not there yet"))
    }
}
