//! What the runtime remembers about a container between commands, and the
//! state documents it shows (`state`, `list`, hooks).
//!
//! Each container has a directory `<root>/<id>/` holding `state.json` (this
//! module's [`ContainerState`]), `config.json` (the configuration as it was at
//! create time, so later edits of the bundle do not affect the container) and,
//! while the container is created but not started, `exec.sock`, on which its
//! init waits for `start`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::procfs;

/// The runtime-spec version hafen reports in state documents.
pub const OCI_VERSION: &str = "1.3.0";

/// The state file's name.
pub const STATE_FILE: &str = "state.json";
/// The configuration copy's name.
pub const CONFIG_COPY: &str = "config.json";
/// The start socket's name.
pub const EXEC_SOCKET: &str = "exec.sock";

/// A container's status, as the runtime-spec names them (plus `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The program runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The program has ended.
    Stopped,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The init process's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init process's start time (clock ticks after boot), to tell it
    /// from a later process that reuses the pid.
    pub start_time: u64,
    /// When the container was created (RFC 3339, UTC).
    pub created: String,
    /// The configuration's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup.
    pub cgroup: Cgroup,
    /// Whether the container has its own pid namespace (without one, its
    /// processes are found through its cgroup).
    pub own_pid_namespace: bool,
    /// The session keyring the container joined, if any.
    #[serde(default)]
    pub keyring: Option<String>,
    /// The container's mounts were made in the host's mount namespace (the
    /// configuration has no mount namespace): the id of the mount at the
    /// root filesystem before them. `delete` unmounts what lies above it.
    #[serde(default)]
    pub host_mounts: Option<u64>,
    /// Set while `create` is still at work (a record that stays set belongs
    /// to an interrupted create, which `delete` cleans up).
    #[serde(default)]
    pub creating: bool,
}

/// The state document of `state` and `list`, in runc's field order.
#[derive(Debug, Clone, Serialize)]
pub struct StateDocument<'a> {
    /// The runtime-spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    /// The id.
    pub id: &'a str,
    /// The init pid (0 when stopped).
    pub pid: i32,
    /// The status.
    pub status: Status,
    /// The bundle.
    pub bundle: &'a Path,
    /// The root filesystem.
    pub rootfs: &'a Path,
    /// Creation time.
    pub created: &'a str,
    /// Annotations (left out when empty).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    /// The owner's user name (filled by `list` only, as runc does).
    pub owner: String,
}

/// The state document the runtime-spec gives hooks on stdin.
#[derive(Debug, Clone, Serialize)]
pub struct HookState<'a> {
    /// The runtime-spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    /// The id.
    pub id: &'a str,
    /// The status.
    pub status: Status,
    /// The pid, as seen from where the hook runs (absent when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The bundle.
    pub bundle: &'a Path,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

impl<'a> HookState<'a> {
    /// Compact JSON, as hooks read it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ContainerState {
    /// The status, derived from the init process and the cgroup: a process
    /// that is gone (or a zombie, or a new process that reuses the pid) means
    /// stopped; a frozen cgroup means paused; a start socket still present
    /// means created.
    pub fn status(&self, dir: &Path) -> Status {
        if self.pid <= 0 || !self.init_alive() {
            return Status::Stopped;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        if dir.join(EXEC_SOCKET).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// Whether the init process still runs (is neither gone nor a zombie,
    /// and is the same process, not a later one with the same pid).
    pub fn init_alive(&self) -> bool {
        matches!(procfs::stat(self.pid), Ok(Some(s)) if s.start_time == self.start_time && !s.is_dead())
    }

    /// The document `state` prints.
    pub fn document(&self, dir: &Path) -> StateDocument<'_> {
        let status = self.status(dir);
        StateDocument {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: String::new(),
        }
    }

    /// The state document for hooks, with the given status and pid.
    pub fn hook_state(&self, status: Status, pid: Option<i32>) -> HookState<'_> {
        HookState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }

    /// Reads `<dir>/state.json`.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read(dir.join(STATE_FILE))?;
        serde_json::from_slice(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Writes `<dir>/state.json` atomically (temporary file and rename), so a
    /// reader never sees half a file.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        write_atomically(&dir.join(STATE_FILE), &bytes, 0o600)
    }
}

/// Writes a new file (it must not exist yet).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)
}

/// Writes a file through a temporary sibling and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A fresh name, opened only if it does not exist and never through a
    // symlink: whoever can write to the directory (a pid file's, say)
    // cannot make this write land elsewhere.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(&tmp)?;
    let written = file.write_all(bytes);
    drop(file);
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// The current time in RFC 3339 with nanoseconds, trailing zeros trimmed, as
/// Go's `time.RFC3339Nano` writes it.
pub fn now_rfc3339() -> String {
    let text = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    trim_nanos(&text)
}

fn trim_nanos(text: &str) -> String {
    let Some(body) = text.strip_suffix('Z') else {
        return text.to_string();
    };
    match body.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_are_trimmed_like_go() {
        assert_eq!(
            trim_nanos("2026-11-22T02:10:34.807490130Z"),
            "2026-11-22T02:10:34.80749013Z"
        );
        assert_eq!(
            trim_nanos("2026-11-22T02:10:34.000000000Z"),
            "2026-11-22T02:10:34Z"
        );
        assert!(now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomically(&path, b"one", 0o600).unwrap();
        write_atomically(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
