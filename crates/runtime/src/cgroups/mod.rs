//! Control groups: where a container's processes are accounted and limited.
//!
//! hafen drives the cgroup filesystem directly (no systemd), on all three
//! layouts Linux hosts have:
//! - **v2** (unified): one hierarchy at `/sys/fs/cgroup`;
//! - **v1**: one hierarchy per controller under `/sys/fs/cgroup/<name>`;
//! - **hybrid**: v1 controllers plus a v2 hierarchy at `/sys/fs/cgroup/unified`
//!   that holds the controllers no v1 hierarchy took (often only `hugetlb`, or
//!   none). The container joins both; each controller is driven where it lives.
//!
//! A [`Cgroup`] is the set of directories of one container, computed from
//! `linux.cgroupsPath`, persisted in the container's state and used by every
//! later operation (kill --all, pause, stats, delete).

mod devices;
mod discover;
pub mod stats;
mod v1;
mod v2;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hafen_oci::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

pub use devices::{
    BpfInsn as BpfInsnRepr, DeviceKind, DeviceRule, compile_bpf_program, effective_rules,
};
pub use discover::{Hierarchies, Layout};
pub use stats::Stats;

/// Errors of cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup filesystem is mounted.
    #[error("no cgroup filesystem is mounted under /sys/fs/cgroup")]
    NotMounted,
    /// Reading the mount table or the process's cgroup failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `linux.cgroupsPath` is not acceptable.
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    BadPath {
        /// The path as configured.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Creating a cgroup directory failed.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The error.
        source: io::Error,
    },
    /// A resource is asked for whose controller is not available.
    #[error(
        "{resource} is set but the {controller} cgroup controller is not available on this host"
    )]
    ControllerMissing {
        /// The config field.
        resource: &'static str,
        /// The controller.
        controller: &'static str,
    },
    /// A resource value is invalid.
    #[error("linux.resources: {0}")]
    Invalid(String),
    /// The cgroup could not be removed.
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Loading or attaching the device filter failed.
    #[error("cannot install the device filter on {path}: {source}")]
    DeviceFilter {
        /// The cgroup.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The cgroup already has processes, or is frozen.
    #[error(
        "cgroup {0} is already in use (it has processes or is frozen): give the container a cgroupsPath of its own"
    )]
    InUse(PathBuf),
    /// The freezer did not reach the requested state.
    #[error("the cgroup freezer of {0} did not settle")]
    FreezeTimeout(PathBuf),
}

type Result<T> = std::result::Result<T, CgroupError>;

/// One v1 hierarchy's directory for a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    /// The controllers of that hierarchy (`["cpu", "cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    /// The container's directory in it.
    pub path: PathBuf,
}

/// A container's cgroup: its directory in each hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The host's layout.
    pub layout: Layout,
    /// The directories in the v1 hierarchies (empty on pure v2).
    #[serde(default)]
    pub v1: Vec<V1Dir>,
    /// The directory in the v2 hierarchy (pure v2, or the unified hierarchy of
    /// a hybrid host).
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// The v2 controllers available to the container in `unified`.
    #[serde(default)]
    pub unified_controllers: Vec<String>,
}

/// A cgroup file write: `(directory, file, value)`.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Reads a cgroup file, trimmed.
pub(crate) fn read_file(dir: &Path, file: &str) -> io::Result<String> {
    let mut text = std::fs::read_to_string(dir.join(file))?;
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    Ok(text)
}

/// Parses a pid list such as `cgroup.procs`.
fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

impl Cgroup {
    /// Computes a container's cgroup directories from `linux.cgroupsPath`
    /// without creating anything.
    ///
    /// An absolute path is taken from the root of each hierarchy; a relative
    /// one (or the container id, when the path is empty) from the cgroup of the
    /// calling process, as runc does. With `systemd`, the path has systemd's
    /// `slice:prefix:name` form and becomes `<slice path>/<prefix>-<name>.scope`.
    pub fn for_container(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Self> {
        let hierarchies = Hierarchies::discover()?;
        let inner = container_path(cgroups_path.unwrap_or(""), id, systemd)?;
        Ok(hierarchies.cgroup_at(&inner))
    }

    /// Every directory of the cgroup (v1 and v2).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|d| d.path.as_path())
            .chain(self.unified.as_deref())
    }

    /// The directory of a v1 controller, if that controller is mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    /// Whether the v2 directory has a controller.
    fn unified_has(&self, controller: &str) -> bool {
        self.unified_controllers.iter().any(|c| c == controller)
    }

    /// Creates the directories (and missing parents) and prepares them so
    /// that processes can join. On failure, what was created is removed.
    pub fn create(&self) -> Result<()> {
        self.create_unified()?;
        self.create_v1()
    }

    /// Creates the v2 directory (and parents, enabling controllers on the
    /// way): needed before the fork that joins it (`CLONE_INTO_CGROUP`).
    pub fn create_unified(&self) -> Result<()> {
        let Some(unified) = &self.unified else {
            return Ok(());
        };
        let mut made = Vec::new();
        let result = v2::create(unified, &self.unified_controllers, &mut made);
        if result.is_err() {
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    /// Creates the v1 directories (cpuset ones get their parent's CPUs and
    /// memory nodes). On failure, what was created is removed.
    pub fn create_v1(&self) -> Result<()> {
        let mut made = Vec::new();
        let result = self.v1.iter().try_for_each(|dir| {
            mkdir_all(&dir.path, &mut made)?;
            if dir.controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&dir.path)?;
            }
            Ok(())
        });
        if result.is_err() {
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    /// Applies `linux.resources` (and the device rules implied by
    /// `linux.devices`).
    pub fn apply(&self, resources: Option<&LinuxResources>, devices: &[LinuxDevice]) -> Result<()> {
        let empty = LinuxResources::default();
        let resources = resources.unwrap_or(&empty);
        let rules = effective_rules(resources.devices().as_deref().unwrap_or(&[]), devices);
        match self.layout {
            Layout::V2 => {
                if let Some(dir) = &self.unified {
                    v2::apply(dir, &self.unified_controllers, resources)?;
                    v2::apply_devices(dir, &rules)?;
                }
            }
            Layout::V1 | Layout::Hybrid => {
                v1::apply(self, resources)?;
                v1::apply_devices(self, &rules)?;
                // Controllers that only the unified hierarchy has (hugetlb on
                // hybrid hosts whose v1 tree lacks it).
                if let Some(dir) = &self.unified {
                    v2::apply_hybrid(dir, &self.unified_controllers, self, resources)?;
                }
            }
        }
        Ok(())
    }

    /// Checks that every resource asked for can be set here, without writing.
    pub fn check(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let Some(res) = resources else { return Ok(()) };
        let has = |c: &str| self.v1_dir(c).is_some() || self.unified_has(c);
        let need = |set: bool, resource, controller| {
            if set && !has(controller) {
                Err(CgroupError::ControllerMissing {
                    resource,
                    controller,
                })
            } else {
                Ok(())
            }
        };
        need(
            res.memory().is_some_and(|m| m.limit().is_some()),
            "memory.limit",
            "memory",
        )?;
        need(res.pids().is_some(), "pids.limit", "pids")?;
        need(
            res.cpu().as_ref().is_some_and(|c| c.cpus().is_some()),
            "cpu.cpus",
            "cpuset",
        )?;
        need(
            res.cpu().as_ref().is_some_and(|c| c.quota().is_some()),
            "cpu.quota",
            "cpu",
        )?;
        need(
            res.hugepage_limits()
                .as_ref()
                .is_some_and(|h| !h.is_empty()),
            "hugepageLimits",
            "hugetlb",
        )?;
        if res.unified().as_ref().is_some_and(|u| !u.is_empty()) && self.unified.is_none() {
            return Err(CgroupError::Invalid(
                "unified is set but this host has no cgroup v2 hierarchy".into(),
            ));
        }
        Ok(())
    }

    /// Moves the calling process into the v1 directories by writing `0` to
    /// their `tasks` files. A thread that moves itself this way does not
    /// take the kernel's global threadgroup lock, whose write side waits for
    /// an RCU grace period (milliseconds) every time a process is moved
    /// through `cgroup.procs`; for a single-threaded process it is the same
    /// move. The v2 directory is joined at fork (`CLONE_INTO_CGROUP`).
    pub fn join_v1_self(&self) -> Result<()> {
        for dir in &self.v1 {
            write_file(&dir.path, "tasks", "0")?;
        }
        Ok(())
    }

    /// Moves a process into the v1 directories (through `cgroup.procs`).
    pub fn add_process_v1(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for dir in &self.v1 {
            write_file(&dir.path, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// The v2 directory, opened for `CLONE_INTO_CGROUP`.
    pub fn unified_fd(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        let Some(dir) = &self.unified else {
            return Ok(None);
        };
        rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map(Some)
        .map_err(|e| CgroupError::Read {
            path: dir.clone(),
            source: e.into(),
        })
    }

    /// Moves a process into every directory of the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for dir in self.dirs() {
            write_file(dir, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// The pids in the cgroup (from the first directory that can tell).
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let dir = self
            .v1_dir("pids")
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.v1_dir("memory"))
            .or(self.unified.as_deref())
            .or_else(|| self.v1.first().map(|d| d.path.as_path()));
        match dir {
            Some(dir) => Ok(parse_pids(&read_file(dir, "cgroup.procs")?)),
            None => Ok(Vec::new()),
        }
    }

    /// The pids in the cgroup and every cgroup below it (a container may
    /// make sub-cgroups of its own).
    pub fn pids_recursive(&self) -> io::Result<Vec<i32>> {
        let dir = self
            .v1_dir("pids")
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.v1_dir("memory"))
            .or(self.unified.as_deref())
            .or_else(|| self.v1.first().map(|d| d.path.as_path()));
        let mut pids = Vec::new();
        if let Some(dir) = dir {
            collect_pids(dir, &mut pids)?;
        }
        Ok(pids)
    }

    /// Refuses a cgroup that processes already use or that is frozen: a
    /// container must not share its cgroup, or its creation, limits and
    /// removal would touch processes that are not its own.
    pub fn ensure_unused(&self) -> Result<()> {
        for dir in self.dirs() {
            match read_file(dir, "cgroup.procs") {
                Ok(text) if !text.trim().is_empty() => {
                    return Err(CgroupError::InUse(dir.to_path_buf()));
                }
                Ok(_) => {}
                Err(_) => continue, // does not exist yet
            }
        }
        if self.exists() && self.is_frozen() {
            return Err(CgroupError::InUse(
                self.dirs()
                    .next()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            ));
        }
        Ok(())
    }

    /// Whether the cgroup still exists.
    pub fn exists(&self) -> bool {
        self.dirs().next().is_some_and(Path::exists)
    }

    /// Freezes (`true`) or thaws (`false`) every process of the cgroup and
    /// waits until the kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = self.v1_dir("freezer") {
            return v1::set_frozen(dir, frozen);
        }
        match &self.unified {
            Some(dir) => v2::set_frozen(dir, frozen),
            None => Err(CgroupError::ControllerMissing {
                resource: "pause",
                controller: "freezer",
            }),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        if let Some(dir) = self.v1_dir("freezer") {
            return read_file(dir, "freezer.state").is_ok_and(|s| s == "FROZEN" || s == "FREEZING");
        }
        self.unified
            .as_deref()
            .is_some_and(|dir| read_file(dir, "cgroup.freeze").is_ok_and(|s| s == "1"))
    }

    /// Sends `signal` to every process of the cgroup. Frozen processes are
    /// thawed afterwards so that a SIGKILL takes effect.
    pub fn signal_all(&self, signal: i32) -> Result<()> {
        let frozen = self.is_frozen();
        if !frozen {
            // Freeze first so no process can fork past the signal.
            let _ = self.set_frozen(true);
        }
        let pids = self.pids_recursive().map_err(|source| CgroupError::Read {
            path: self
                .dirs()
                .next()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            source,
        })?;
        for pid in pids {
            let _ = crate::sys::kill(pid, signal);
        }
        if !frozen || signal == libc::SIGKILL {
            let _ = self.set_frozen(false);
        }
        Ok(())
    }

    /// Removes every directory of the cgroup (and any cgroup the container
    /// made below it), killing what is left in it and waiting (up to a few
    /// seconds) for the kernel to let go.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut killed = false;
        for dir in self.dirs() {
            let mut delay = Duration::from_micros(200);
            loop {
                match remove_tree(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        if !killed {
                            let _ = self.signal_all(libc::SIGKILL);
                            killed = true;
                        }
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_millis(50));
                    }
                    Err(source) => {
                        return Err(CgroupError::Remove {
                            path: dir.to_path_buf(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the resource usage counters.
    pub fn stats(&self) -> Stats {
        match self.layout {
            Layout::V2 => self
                .unified
                .as_deref()
                .map(stats::read_v2)
                .unwrap_or_default(),
            Layout::V1 | Layout::Hybrid => stats::read_v1(self),
        }
    }

    /// The v1 OOM-kill counter or v2 `memory.events` oom_kill count.
    pub fn oom_kills(&self) -> u64 {
        let dir = match self.layout {
            Layout::V2 => self.unified.as_deref(),
            _ => self.v1_dir("memory"),
        };
        let file = match self.layout {
            Layout::V2 => "memory.events",
            _ => "memory.oom_control",
        };
        dir.and_then(|d| read_file(d, file).ok())
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }
}

/// The pids of a cgroup directory and of all below it.
fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> io::Result<()> {
    pids.extend(parse_pids(&read_file(dir, "cgroup.procs")?));
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

/// Removes a cgroup directory and the cgroups below it, deepest first (a
/// cgroup directory holds only files the kernel manages, so `rmdir` works on
/// an empty one).
fn remove_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// `mkdir -p`, recording what it made.
fn mkdir_all(path: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    // Try the directory itself first: its parents usually exist.
    match std::fs::create_dir(path) {
        Ok(()) => {
            made.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                mkdir_all(parent, made)?;
            }
            match std::fs::create_dir(path) {
                Ok(()) => {
                    made.push(path.to_path_buf());
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(source) => Err(CgroupError::Create {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The container's path inside each hierarchy: absolute (from the hierarchy
/// root) or relative (to the caller's own cgroup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InnerPath {
    /// From the root of each hierarchy.
    Absolute(PathBuf),
    /// From the calling process's cgroup.
    Relative(PathBuf),
}

fn container_path(configured: &str, id: &str, systemd: bool) -> Result<InnerPath> {
    let bad = |reason| CgroupError::BadPath {
        path: configured.to_string(),
        reason,
    };
    if systemd {
        return systemd_path(configured, id)
            .map(InnerPath::Absolute)
            .ok_or_else(|| bad("with --systemd-cgroup it must have the form slice:prefix:name"));
    }
    if configured.is_empty() {
        return Ok(InnerPath::Relative(PathBuf::from(id)));
    }
    let path = Path::new(configured);
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad("it must not contain \"..\""));
    }
    if path.is_absolute() {
        let rel: PathBuf = path.components().skip(1).collect();
        if rel.as_os_str().is_empty() {
            return Err(bad("it must not be the root cgroup"));
        }
        Ok(InnerPath::Absolute(rel))
    } else {
        Ok(InnerPath::Relative(path.to_path_buf()))
    }
}

/// Turns systemd's `slice:prefix:name` into the cgroupfs path systemd would
/// use: `a-b.slice` lives in `a.slice/a-b.slice`, the unit is
/// `<prefix>-<name>.scope` (or `<name>` itself when it is a slice).
fn systemd_path(configured: &str, id: &str) -> Option<PathBuf> {
    let (slice, prefix, name) = if configured.is_empty() {
        ("", "hafen", id)
    } else {
        let mut parts = configured.split(':');
        let slice = parts.next()?;
        let prefix = parts.next()?;
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        (slice, prefix, name)
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let base = slice.strip_suffix(".slice")?;
    if base.is_empty() || slice.contains('/') || name.contains('/') || prefix.contains('/') {
        return None;
    }
    let mut path = PathBuf::new();
    if base != "-" {
        let mut acc = String::new();
        for part in base.split('-') {
            if part.is_empty() {
                return None;
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            path.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(
            container_path("", "c1", false).unwrap(),
            InnerPath::Relative("c1".into())
        );
        assert_eq!(
            container_path("/hafen/c1", "c1", false).unwrap(),
            InnerPath::Absolute("hafen/c1".into())
        );
        assert_eq!(
            container_path("sub/c1", "c1", false).unwrap(),
            InnerPath::Relative("sub/c1".into())
        );
        assert!(container_path("/a/../b", "c1", false).is_err());
        assert!(container_path("/", "c1", false).is_err());
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            systemd_path("system.slice:docker:abc", "x").unwrap(),
            PathBuf::from("system.slice/docker-abc.scope")
        );
        assert_eq!(
            systemd_path("a-b-c.slice:p:n", "x").unwrap(),
            PathBuf::from("a.slice/a-b.slice/a-b-c.slice/p-n.scope")
        );
        assert_eq!(
            systemd_path("", "x").unwrap(),
            PathBuf::from("system.slice/hafen-x.scope")
        );
        assert_eq!(
            systemd_path(":p:n", "x").unwrap(),
            PathBuf::from("system.slice/p-n.scope")
        );
        assert!(systemd_path("nonslice:p:n", "x").is_none());
        assert!(systemd_path("a:b", "x").is_none());
        assert!(systemd_path("a--b.slice:p:n", "x").is_none());
    }

    #[test]
    fn pid_lists() {
        assert_eq!(parse_pids("1\n22\n\n333\n"), vec![1, 22, 333]);
    }
}
