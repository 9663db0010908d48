//! `linux.namespaces`: which namespaces a container creates and which it
//! joins, and in which process and order each step happens.
//!
//! The kernel's rules decide the order:
//! - a pid or time namespace only applies to children, so the runtime joins
//!   (or, for time, creates) those for its children before it forks;
//! - namespaces created together with a user namespace belong to it; ones
//!   joined by path belong to whatever user namespace owns them, and joining
//!   one owned by the host's user namespace needs the host's privileges, so
//!   it must happen before entering a new user namespace;
//! - the cgroup namespace is created last, after the process has been moved
//!   into the container's cgroup, so that the cgroup is its root.
//!
//! Without a user namespace in play (the common case) one `clone3` creates
//! every new namespace and the child joins the rest by path. With a user
//! namespace and paths, a short-lived helper joins, unshares, and forks the
//! container's init as a sibling (`CLONE_PARENT`).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use hafen_oci::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};

/// Errors about namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// A namespace path cannot be opened.
    #[error("{kind} namespace path {path}: {source}")]
    Open {
        /// The namespace type.
        kind: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A namespace path is another type of namespace.
    #[error("{path} is not a {kind} namespace")]
    WrongType {
        /// The expected type.
        kind: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A kernel call failed.
    #[error("cannot {what}: {source}")]
    Sys {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The `CLONE_NEW*` flag of a namespace type.
pub fn flag(kind: LinuxNamespaceType) -> i32 {
    match kind {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The specification's name of a namespace type.
pub fn name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The `/proc/<pid>/ns/` entry name of a namespace type.
pub fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        other => name(other),
    }
}

/// Opens a namespace file and checks its type.
pub fn open(kind: LinuxNamespaceType, path: &Path) -> Result<OwnedFd, NamespaceError> {
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            NamespaceError::Open {
                kind: name(kind),
                path: path.into(),
                source: e.into(),
            }
        })?;
    match crate::sys::ns_type(fd.as_fd()) {
        Ok(t) if t == flag(kind) => Ok(fd),
        Ok(_) | Err(_) => Err(NamespaceError::WrongType {
            kind: name(kind),
            path: path.into(),
        }),
    }
}

/// Joins a namespace.
pub fn join(kind: LinuxNamespaceType, fd: &OwnedFd) -> Result<(), NamespaceError> {
    crate::sys::setns(fd.as_fd(), flag(kind)).map_err(|source| NamespaceError::Sys {
        what: format!("join the {} namespace", name(kind)),
        source,
    })
}

/// Creates new namespaces for the calling process (`unshare`).
pub fn unshare(flags: i32, what: &str) -> Result<(), NamespaceError> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: only called in the runtime's single-threaded processes.
    unsafe { crate::sys::unshare(flags) }.map_err(|source| NamespaceError::Sys {
        what: format!("create {what}"),
        source,
    })
}

/// How a container's namespaces come about.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces created by the `clone3` of the init (fast path) or by the
    /// helper's `unshare` (helper path); never cgroup or time.
    pub new_flags: i32,
    /// Whether a new user namespace is created.
    pub new_user: bool,
    /// A user namespace to join.
    pub user_path: Option<OwnedFd>,
    /// Namespaces to join by path (not user, pid or time).
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// A pid namespace to join (by the runtime, for its children).
    pub pid_path: Option<OwnedFd>,
    /// A time namespace to join (by the runtime, for its children).
    pub time_path: Option<OwnedFd>,
    /// Whether to create a time namespace (by the runtime, for its children).
    pub new_time: bool,
    /// Whether to create a cgroup namespace (by the init, last).
    pub new_cgroup: bool,
    /// Whether a helper process is needed.
    pub needs_helper: bool,
}

impl Plan {
    /// Reads `linux.namespaces`, opening every path.
    pub fn new(spec: &Spec) -> Result<Self, NamespaceError> {
        let mut plan = Plan {
            new_flags: 0,
            new_user: false,
            user_path: None,
            join: Vec::new(),
            pid_path: None,
            time_path: None,
            new_time: false,
            new_cgroup: false,
            needs_helper: false,
        };
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for ns in namespaces.into_iter().flatten() {
            let kind = ns.typ();
            match (kind, ns.path()) {
                (LinuxNamespaceType::User, None) => plan.new_user = true,
                (LinuxNamespaceType::User, Some(p)) => plan.user_path = Some(open(kind, p)?),
                (LinuxNamespaceType::Pid, Some(p)) => plan.pid_path = Some(open(kind, p)?),
                (LinuxNamespaceType::Time, Some(p)) => plan.time_path = Some(open(kind, p)?),
                (LinuxNamespaceType::Time, None) => plan.new_time = true,
                (LinuxNamespaceType::Cgroup, None) => plan.new_cgroup = true,
                (kind, Some(p)) => plan.join.push((kind, open(kind, p)?)),
                (kind, None) => plan.new_flags |= flag(kind),
            }
        }
        if plan.new_user {
            plan.new_flags |= libc::CLONE_NEWUSER;
        }
        plan.needs_helper = plan.user_path.is_some() || (plan.new_user && !plan.join.is_empty());
        Ok(plan)
    }
}

/// Becomes root of the user namespace just entered (uid and gid 0, no
/// supplementary groups): until then the process keeps the host's ids, which
/// the namespace cannot represent, and files it creates would fail with
/// EOVERFLOW.
pub fn become_root() -> Result<(), NamespaceError> {
    use rustix::process::{Gid, Uid};
    let sys = |what: &str| {
        let what = what.to_string();
        move |e: rustix::io::Errno| NamespaceError::Sys {
            what: what.clone(),
            source: e.into(),
        }
    };
    if std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow") {
        rustix::thread::set_thread_groups(&[]).map_err(sys("drop supplementary groups"))?;
    }
    rustix::thread::set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT)
        .map_err(sys("become gid 0 in the user namespace (is it mapped?)"))?;
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT)
        .map_err(sys("become uid 0 in the user namespace (is it mapped?)"))?;
    Ok(())
}

/// Writes a process's uid and gid maps (`containerID hostID size` lines).
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let lines = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, text) in [("uid_map", lines(uids)), ("gid_map", lines(gids))] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text.as_bytes()).map_err(|source| NamespaceError::Sys {
            what: format!("write {path} ({})", text.trim().replace('\n', ", ")),
            source,
        })?;
    }
    Ok(())
}

/// The time namespace offsets (`monotonic`/`boottime`) as
/// `/proc/self/timens_offsets` wants them.
pub fn time_offsets_text(spec: &Spec) -> String {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return String::new();
    };
    let mut text = String::new();
    for (clock, offset) in offsets {
        let secs = offset.secs().unwrap_or(0);
        let nanos = offset.nanosecs().unwrap_or(0);
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    text
}

/// Moves the calling (single-threaded) process into a mount namespace of
/// its own whose mounts receive the host's changes but send none back
/// (recursive slave): mounts made afterwards stay out of the host's table.
pub fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: called by single-threaded processes only (the shim before it
    // starts anything), as unshare(CLONE_NEWNS) requires.
    unsafe { crate::sys::unshare(libc::CLONE_NEWNS) }?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::DOWNSTREAM
            | rustix::mount::MountPropagationFlags::REC,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"namespaces":{namespaces}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn plain_new_namespaces_use_one_clone() {
        let plan = Plan::new(&spec(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network"},{"type":"cgroup"},{"type":"time"}]"#,
        ))
        .unwrap();
        assert_eq!(
            plan.new_flags,
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWNET
        );
        assert!(plan.new_cgroup && plan.new_time && !plan.needs_helper);
    }

    #[test]
    fn joining_by_path_checks_the_type() {
        let plan = Plan::new(&spec(
            r#"[{"type":"mount"},{"type":"network","path":"/proc/self/ns/net"}]"#,
        ))
        .unwrap();
        assert_eq!(plan.join.len(), 1);
        assert!(!plan.needs_helper);
        let err =
            Plan::new(&spec(r#"[{"type":"network","path":"/proc/self/ns/uts"}]"#)).unwrap_err();
        assert!(matches!(err, NamespaceError::WrongType { .. }), "{err}");
        let err = Plan::new(&spec(r#"[{"type":"ipc","path":"/nonexistent"}]"#)).unwrap_err();
        assert!(matches!(err, NamespaceError::Open { .. }), "{err}");
    }

    #[test]
    fn user_namespace_with_paths_needs_a_helper() {
        let plan = Plan::new(&spec(
            r#"[{"type":"user"},{"type":"mount"},{"type":"network","path":"/proc/self/ns/net"}]"#,
        ))
        .unwrap();
        assert!(plan.needs_helper);
        let plan = Plan::new(&spec(r#"[{"type":"user"},{"type":"mount"}]"#)).unwrap();
        assert!(!plan.needs_helper);
        assert_eq!(plan.new_flags, libc::CLONE_NEWUSER | libc::CLONE_NEWNS);
    }
}
