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
        let (running, pid) = {
            let r = ctr.rec();
            (r.state.status.is_running(), r.state.pid)
        };
        if running {
            // Its root filesystem is mounted in its shim's namespace only.
            return f(&PathBuf::from(format!("/proc/{pid}/root")));
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

/// Whether a path of the container's upper directory is one the runtime
/// made for its own mounts (dockerd keeps these in an init layer of their
/// own): they stay out of `diff` and `commit`.
pub fn runtime_made(rec: &super::record::Record) -> impl Fn(&str) -> bool + '_ {
    move |p: &str| {
        matches!(
            p,
            "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf" | "/dev" | "/proc" | "/sys"
        ) || p.starts_with("/dev/")
            || p == super::spec::INIT_PATH
            || rec.mounts.iter().any(|m| m.destination == p)
    }
}

impl Engine {
    /// `commit`: a new image from the container's changes.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_container(
        &self,
        id: &str,
        reference: Option<&str>,
        comment: &str,
        author: &str,
        pause: bool,
        changes: &[String],
        config: Option<serde_json::Value>,
    ) -> Result<String, ApiError> {
        use super::record::Status;
        use hafen_image::config::ContainerConfig as ImageContainerConfig;
        let ctr = self.containers.find(id).map_err(ApiError::from)?;
        let rec = ctr.rec().clone();
        let (upper, _) = self.snapshot_layers(&rec.snapshot)?;
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let paused = pause && rec.state.status == Status::Running;
        if paused {
            hafen_runtime::container::pause(&rt, &rec.id)
                .map_err(|e| ApiError::internal(format!("cannot pause {}: {e}", rec.id)))?;
        }
        let mut layer = Vec::new();
        let made = super::commit::layer_from_upper_except(&upper, &mut layer, &runtime_made(&rec));
        if paused {
            let _ = hafen_runtime::container::resume(&rt, &rec.id);
        }
        made.map_err(|e| ApiError::internal(e.to_string()))?;
        let mine =
            serde_json::to_value(&rec.config).map_err(|e| ApiError::internal(e.to_string()))?;
        let base: ImageContainerConfig =
            serde_json::from_value(mine.clone()).map_err(|e| ApiError::internal(e.to_string()))?;
        let cfg = match config.filter(|c| !c.is_null()) {
            Some(v) => {
                let mut given: ImageContainerConfig = serde_json::from_value(v)
                    .map_err(|e| ApiError::bad_request(format!("invalid config: {e}")))?;
                hafen_image::commit::merge_config(&mut given, &base);
                given
            }
            None => base,
        };
        let parent = hafen_oci::Digest::parse(&rec.image)
            .map_err(|e| ApiError::internal(format!("the container's image: {e}")))?;
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        let opts = hafen_image::commit::CommitOptions {
            reference: reference.map(str::to_string),
            comment: comment.to_string(),
            author: author.to_string(),
            config: Some(cfg),
            changes: changes.to_vec(),
            container_id: rec.id.clone(),
            container_config: Some(mine),
            created_by: created_by.join(" "),
        };
        let digest = self
            .images()
            .commit(Some(&parent), std::io::Cursor::new(layer), &opts)
            .map_err(|e| match e {
                hafen_image::ImageError::Reference(_) | hafen_image::ImageError::Invalid(_) => {
                    ApiError::bad_request(e.to_string())
                }
                other => ApiError::internal(other.to_string()),
            })?;
        let digest = digest.to_string();
        self.container_event(
            &rec.id,
            "commit",
            &[
                ("comment", comment),
                ("imageID", &digest),
                ("name", &rec.name),
            ],
        );
        Ok(digest)
    }
}
