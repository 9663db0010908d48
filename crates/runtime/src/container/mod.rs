//! Containers, from the runtime's side: one lifecycle operation per file.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod pause;
mod ps;
mod run;
mod start;
mod wait;

pub use create::{CreateOptions, Created, create};
pub use delete::delete;
pub use events::{Event, events, stats_event};
pub use exec::{ExecOptions, Executed, Spawned, exec, spawn};
pub use kill::kill;
pub use pause::{pause, resume};
pub use ps::{ps_json, ps_table};
pub use run::{RunOptions, run};
pub use start::start;
pub use wait::{ForegroundIo, take_signals, wait_foreground};

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use hafen_oci::runtime::Spec;

use crate::state::{ContainerState, Status};
use crate::{Error, Result};

/// Where containers live: a state directory (`--root`) and how cgroups are
/// named.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The state directory.
    pub root: PathBuf,
    /// Interpret `cgroupsPath` as systemd's `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

/// A container known to the runtime.
#[derive(Debug)]
pub struct Container {
    /// Its state directory.
    pub dir: PathBuf,
    /// Its persisted state.
    pub state: ContainerState,
}

/// Checks a container id: letters, digits, `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::EmptyId);
    }
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
        && id != "."
        && id != ".."
        && id.len() <= 1024;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl Runtime {
    /// A runtime with its state under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime {
            root: root.into(),
            systemd_cgroup: false,
        }
    }

    /// The state directory of a container.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Loads a container's state.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.dir_of(id);
        match ContainerState::load(&dir) {
            Ok(state) => Ok(Container { dir, state }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(id.to_string()))
            }
            Err(e) => Err(Error::Io {
                what: format!("cannot read the state of container {id}"),
                source: e,
            }),
        }
    }

    /// Every container, sorted by id. Directories whose state cannot be read
    /// are reported through `on_error` and skipped.
    pub fn list(&self, mut on_error: impl FnMut(&str, &Error)) -> Result<Vec<Container>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Io {
                    what: format!("cannot list {}", self.root.display()),
                    source: e,
                });
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        let mut containers = Vec::with_capacity(ids.len());
        for id in ids {
            match self.load(&id) {
                Ok(c) => containers.push(c),
                Err(e) => on_error(&id, &e),
            }
        }
        Ok(containers)
    }
}

impl Container {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The current status.
    pub fn status(&self) -> Status {
        if self.state.creating {
            return if self.state.pid > 0 && self.state.init_alive() {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        match self.state.status(&self.dir) {
            Status::Created if !self.start_socket_alive() => Status::Running,
            other => other,
        }
    }

    /// Whether the init still listens on its start socket (a socket file left
    /// behind by an interrupted `start` does not count).
    fn start_socket_alive(&self) -> bool {
        start::connect(&self.dir).is_ok()
    }

    /// The state document (`state`, `list`), with the current status.
    pub fn document(&self) -> crate::state::StateDocument<'_> {
        let status = self.status();
        crate::state::StateDocument {
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.state.pid
            },
            ..self.state.document(&self.dir)
        }
    }

    /// The configuration as it was at create time.
    pub fn spec(&self) -> Result<Spec> {
        crate::bundle::load_config(&self.dir.join(crate::state::CONFIG_COPY)).map_err(Error::from)
    }

    /// Only the hooks of the container's configuration (read without
    /// building the rest of it).
    pub fn hooks(&self) -> Result<Option<hafen_oci::runtime::Hooks>> {
        #[derive(serde::Deserialize)]
        struct HooksOnly {
            #[serde(default)]
            hooks: Option<hafen_oci::runtime::Hooks>,
        }
        let path = self.dir.join(crate::state::CONFIG_COPY);
        let file = std::fs::File::open(&path)
            .map_err(crate::io_err(format!("cannot read {}", path.display())))?;
        let reader = std::io::BufReader::with_capacity(4096, file);
        let only: HooksOnly = serde_json::from_reader(reader).map_err(|e| Error::Io {
            what: format!("{}", path.display()),
            source: std::io::Error::other(e),
        })?;
        Ok(only.hooks)
    }

    /// The pid as seen inside the container (1 with its own pid namespace).
    pub fn pid_inside(&self) -> i32 {
        if self.state.own_pid_namespace {
            1
        } else {
            self.state.pid
        }
    }

    /// A pidfd for the init, if it is still the same process.
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        let pid = rustix::process::Pid::from_raw(self.state.pid)?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
        // Opened first, checked second: if the pid was reused between the two,
        // the start time tells.
        self.state.init_alive().then_some(fd)
    }
}

/// Waits (up to `timeout`) for a process, given by pidfd, to end.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: std::time::Duration) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let ts = rustix::event::Timespec::try_from(timeout).unwrap_or_default();
    loop {
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-123_x.y+z", &"x".repeat(64)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        assert!(matches!(validate_id(""), Err(Error::EmptyId)));
        for bad in [".", "..", "a/b", "a b", "a,b", "ü", "../x"] {
            assert!(
                matches!(validate_id(bad), Err(Error::InvalidId(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_containers() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(dir.path());
        assert!(matches!(rt.load("nope"), Err(Error::NotFound(_))));
        assert!(rt.list(|_, _| {}).unwrap().is_empty());
        let rt = Runtime::new(dir.path().join("missing"));
        assert!(rt.list(|_, _| {}).unwrap().is_empty());
    }
}
