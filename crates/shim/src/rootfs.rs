//! The container's root filesystem: the snapshot's mounts (an overlay, or
//! a bind of a plain directory), mounted by the shim in a mount namespace of
//! its own, so that the host's mount table does not grow with every running
//! container (each new container starts from a copy of that table).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One mount of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    /// `overlay`, `bind`.
    pub kind: String,
    /// The source (`overlay`, or a directory to bind).
    pub source: String,
    /// `lowerdir=…`, `rbind`, `ro`, ….
    pub options: Vec<String>,
}

/// Mounts `mounts` at `target` (unmounting what may be there first).
pub fn mount_all(mounts: &[RootfsMount], target: &Path) -> std::io::Result<()> {
    use rustix::mount::{MountFlags, mount};
    let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH);
    for m in mounts {
        if m.kind == "bind" {
            let mut flags = MountFlags::BIND;
            if m.options.iter().any(|o| o == "rbind") {
                flags |= MountFlags::REC;
            }
            mount(m.source.as_str(), target, "", flags, None)?;
            if m.options.iter().any(|o| o == "ro") {
                rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
            }
        } else {
            let data: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| *o != "ro" && *o != "rw")
                .collect();
            let mut flags = MountFlags::empty();
            if m.options.iter().any(|o| o == "ro") {
                flags |= MountFlags::RDONLY;
            }
            let data = std::ffi::CString::new(data.join(",")).map_err(std::io::Error::other)?;
            mount(
                m.source.as_str(),
                target,
                m.kind.as_str(),
                flags,
                Some(data.as_c_str()),
            )?;
        }
    }
    let _ = std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755));
    Ok(())
}
