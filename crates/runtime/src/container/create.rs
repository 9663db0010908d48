//! `create`: build the container and leave its init waiting for `start`.
//!
//! Everything that can be checked is checked before anything is made (the
//! configuration, the seccomp filter, namespace paths, cgroup controllers).
//! From the first thing made on, a guard undoes all of it if a later step
//! fails: the init is killed, the cgroup and the state directory removed.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use hafen_oci::runtime::LinuxNamespaceType;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use super::{Container, Runtime, validate_id};
use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::hooks::{self, HookKind};
use crate::init::mount_options::MountOptions;
use crate::init::rootfs::{MountNamespace, mount_id, unmount_host_rootfs};
use crate::init::{self, InitArgs};
use crate::namespaces::{self, Plan};
use crate::process::ProcessPlan;
use crate::state::{
    CONFIG_COPY, ContainerState, EXEC_SOCKET, Status, now_rfc3339, write_atomically, write_new,
};
use crate::sync::{Channel, ToChild, ToRuntime};
use crate::{Error, Result, errno, io_err, procfs, sys};

/// How to create a container.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to send the terminal's master (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// Where to write the init's pid (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (`--no-pivot`).
    pub no_pivot: bool,
    /// Keep the caller's session keyring (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Pass this many fds after stdio (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Hand the terminal's master back to the caller (foreground `run`).
    pub console_to_caller: bool,
}

/// A created container.
#[derive(Debug)]
pub struct Created {
    /// The container.
    pub container: Container,
    /// A pidfd for its init.
    pub pidfd: OwnedFd,
    /// The terminal's master, with `console_to_caller`.
    pub console: Option<OwnedFd>,
}

/// Undoes a half-made container when dropped (unless disarmed).
struct Cleanup {
    dir: PathBuf,
    /// The root filesystem, when its mounts are in the host's namespace.
    host_rootfs: Option<(PathBuf, u64)>,
    cgroup: Option<Cgroup>,
    init: Option<(i32, OwnedFd)>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, pidfd)) = &self.init {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(*pid),
                rustix::process::WaitOptions::empty(),
            );
        }
        if let Some((rootfs, base)) = &self.host_rootfs {
            unmount_host_rootfs(rootfs, *base);
        }
        if let Some(cgroup) = &self.cgroup {
            if let Err(e) = cgroup.destroy() {
                tracing::warn!("{e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The number of fds passed through socket activation: `LISTEN_FDS`, when
/// `LISTEN_PID` says they were passed to this process (sd_listen_fds(3)).
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        == Some(std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The fds passed on (socket activation and `--preserve-fds`), all of
/// which must be open.
pub(super) fn passed_fds(preserve_fds: u32, listen: u32) -> Result<u32> {
    let extra = listen
        .checked_add(preserve_fds)
        .filter(|n| *n <= i32::MAX as u32 - 3)
        .ok_or(Error::TooManyFds(preserve_fds))?;
    for fd in 3..3 + extra {
        sys::check_fd_open(fd as i32).map_err(io_err(format!("preserved fd {fd} (of {extra})")))?;
    }
    Ok(extra)
}

/// Creates a container.
pub fn create(rt: &Runtime, opts: &CreateOptions) -> Result<Created> {
    validate_id(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    // Without a process the container is created and `start` fails, as the
    // specification allows.
    let process = spec.process().as_ref();
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.console_to_caller {
        return Err(Error::NeedConsoleSocket);
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::UnneededConsoleSocket);
    }
    let linux = spec.linux().as_ref();
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    let listener_path = seccomp.as_ref().and_then(|s| s.listener_path.clone());
    let listener_metadata = seccomp.as_ref().and_then(|s| s.listener_metadata.clone());
    let activated = listen_fds();
    let extra = passed_fds(opts.preserve_fds, activated)?;
    let plan = process
        .map(|p| {
            ProcessPlan::new(p, seccomp).map(|mut plan| {
                plan.extra_fds = extra;
                if activated > 0 {
                    // The activated sockets are the container's: they are
                    // for its PID 1 (as runc says, whatever its pid).
                    plan.env.retain(|e| {
                        !e.to_bytes().starts_with(b"LISTEN_FDS=")
                            && !e.to_bytes().starts_with(b"LISTEN_PID=")
                    });
                    let vars = [format!("LISTEN_FDS={activated}"), "LISTEN_PID=1".into()];
                    plan.env
                        .extend(vars.into_iter().filter_map(|v| CString::new(v).ok()));
                }
                plan
            })
        })
        .transpose()?;
    let ns = Plan::new(spec)?;
    let cgroup = Cgroup::for_container(
        linux
            .and_then(|l| l.cgroups_path().as_deref())
            .and_then(Path::to_str),
        &opts.id,
        rt.systemd_cgroup,
    )?;
    let resources = linux.and_then(|l| l.resources().as_ref());
    cgroup.check(resources)?;
    let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
    let own_pid_namespace = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Pid));
    let userns = ns.new_user || ns.user_path.is_some();
    let host_mounts = if MountNamespace::of(spec) == MountNamespace::Host {
        Some(mount_id(&bundle.rootfs).map_err(io_err(format!(
            "cannot find the mount of {}",
            bundle.rootfs.display()
        )))?)
    } else {
        None
    };

    // From here on things are made; the guard undoes them on failure.
    std::fs::create_dir_all(&rt.root)
        .map_err(io_err(format!("cannot create {}", rt.root.display())))?;
    let dir = rt.dir_of(&opts.id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(opts.id.clone()));
        }
        Err(e) => return Err(io_err(format!("cannot create {}", dir.display()))(e)),
    }
    let mut guard = Cleanup {
        host_rootfs: host_mounts.map(|base| (bundle.rootfs.clone(), base)),
        dir: dir.clone(),
        cgroup: None,
        init: None,
        armed: true,
    };
    let mut state = ContainerState {
        id: opts.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: 0,
        start_time: 0,
        created: now_rfc3339(),
        annotations: spec
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cgroup: cgroup.clone(),
        own_pid_namespace,
        keyring: (!opts.no_new_keyring).then(|| opts.id.clone()),
        host_mounts,
        creating: true,
    };
    state
        .save(&dir)
        .map_err(io_err("cannot write the container state"))?;
    let config = serde_json::to_vec(spec).map_err(|e| Error::Io {
        what: "config".into(),
        source: std::io::Error::other(e),
    })?;
    // A new file in a new directory; state.json says when it is complete.
    write_new(&dir.join(CONFIG_COPY), &config, 0o600).map_err(io_err("cannot copy config.json"))?;

    // Checked once the ID is ours: a second `create` of the same container
    // says "already exists" rather than that its cgroup is busy.
    cgroup.ensure_unused()?;
    guard.cgroup = Some(cgroup.clone());
    // Only the v2 directory is needed before the fork (the init starts in
    // it); the v1 directories are made while the init sets up its mounts.
    cgroup.create_unified()?;

    let exec_listener = listen(&dir.join(EXEC_SOCKET))?;
    let console_socket = opts
        .console_socket
        .as_deref()
        .map(|p| {
            crate::console::connect_socket(p).map_err(io_err(format!(
                "cannot connect to console socket {}",
                p.display()
            )))
        })
        .transpose()?;
    let seccomp_listener = listener_path
        .as_deref()
        .map(|p| {
            crate::console::connect_socket(p).map_err(io_err(format!(
                "cannot connect to seccomp listener {}",
                p.display()
            )))
        })
        .transpose()?;
    let (to_child, in_child) = Channel::pair().map_err(io_err("socketpair"))?;
    let unified = cgroup.unified_fd()?;
    // Without a user namespace the init moves itself into the v1 cgroups
    // (cheap, see `Cgroup::join_v1_self`); with one it may lack the rights on
    // the host's cgroup files, so the runtime moves it.
    let cgroup_self_join = !userns;
    let keyring = state.keyring.as_deref().and_then(|k| CString::new(k).ok());

    let args = InitArgs {
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        cgroup: &cgroup,
        plan,
        channel: &in_child,
        exec_listener: &exec_listener,
        console_socket: console_socket.as_ref(),
        console_to_runtime: opts.console_to_caller,
        seccomp_listener: seccomp_listener.as_ref(),
        join: &ns.join,
        new_cgroupns: ns.new_cgroup,
        userns,
        no_pivot: opts.no_pivot,
        keyring: keyring.as_deref(),
        cgroup_self_join,
        helper_made_user: false,
    };
    let restore = ChildNamespaces::enter(&ns, spec)?;
    let (pid, pidfd) = if ns.needs_helper {
        // SAFETY: the runtime is single-threaded at this point (no thread is
        // ever started before a container's process is forked).
        match unsafe { sys::clone3(0, libc::SIGCHLD as u64, unified.as_ref().map(|f| f.as_fd())) }
            .map_err(io_err("cannot start the container's helper"))?
        {
            sys::Forked::Child => {
                // The child keeps only its own end of the channel, so that it
                // sees end-of-file if the runtime dies; and no fd of the host
                // it has no use for.
                drop(to_child);
                drop(unified);
                init::helper(&ns, args)
            }
            sys::Forked::Parent {
                pid: helper,
                pidfd: helper_fd,
            } => {
                drop(restore);
                let result = via_helper(&to_child, helper, spec);
                let _ = rustix::process::waitpid(
                    rustix::process::Pid::from_raw(helper),
                    rustix::process::WaitOptions::empty(),
                );
                drop(helper_fd);
                result?
            }
        }
    } else {
        let flags = ns.new_flags as u64;
        // SAFETY: as above, the runtime is single-threaded here.
        match unsafe {
            sys::clone3(
                flags,
                libc::SIGCHLD as u64,
                unified.as_ref().map(|f| f.as_fd()),
            )
        }
        .map_err(io_err("cannot start the container's init"))?
        {
            sys::Forked::Child => {
                drop(to_child);
                drop(unified);
                init::container_init(args)
            }
            sys::Forked::Parent { pid, pidfd } => {
                drop(restore);
                (pid, pidfd)
            }
        }
    };
    drop(in_child);
    drop(exec_listener);
    drop(console_socket);
    drop(seccomp_listener);
    guard.init = Some((pid, pidfd.try_clone().map_err(io_err("dup"))?));

    if ns.new_user && !ns.needs_helper {
        let linux = linux.ok_or(Error::WrongState("no linux section".into()))?;
        namespaces::write_id_maps(
            pid,
            linux.uid_mappings().as_deref().unwrap_or(&[]),
            linux.gid_mappings().as_deref().unwrap_or(&[]),
        )?;
    }
    if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(io_err(format!("cannot set process.oomScoreAdj to {adj}")))?;
    }
    if userns {
        send_idmapped_mounts(spec, &bundle.dir, pid, &to_child)?;
    }
    cgroup.create_v1()?;
    cgroup.apply(resources, devices)?;
    if !cgroup_self_join {
        cgroup.add_process_v1(pid)?;
    }
    state.pid = pid;
    state.start_time = procfs::start_time(pid).ok().flatten().unwrap_or(0);

    let seccomp_state = listener_path.as_ref().map(|_| {
        serde_json::json!({
            "ociVersion": crate::state::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": listener_metadata.clone().unwrap_or_default(),
            "state": state.hook_state(Status::Creating, Some(pid)),
        })
        .to_string()
    });
    send(
        &to_child,
        ToChild::Continue {
            state: None,
            seccomp_state,
        },
    )?;
    let mut console = None;
    loop {
        match to_child.recv::<ToRuntime>() {
            Ok(Some((ToRuntime::RunHooks, _))) => {
                // Steps 3-5 of the lifecycle come after the environment is
                // created (step 2): the specification's status is "created".
                let hook_state = state.hook_state(Status::Created, Some(pid)).to_json();
                let hooks = spec.hooks().as_ref();
                let ran = hooks::run(
                    HookKind::Prestart,
                    HookKind::Prestart.of(hooks),
                    &hook_state,
                    Some(&bundle.dir),
                )
                .and_then(|()| {
                    hooks::run(
                        HookKind::CreateRuntime,
                        HookKind::CreateRuntime.of(hooks),
                        &hook_state,
                        Some(&bundle.dir),
                    )
                });
                if let Err(e) = ran {
                    let _ = to_child.send(&ToChild::Abort, None);
                    return Err(e.into());
                }
                let inside = state
                    .hook_state(
                        Status::Created,
                        Some(if own_pid_namespace { 1 } else { pid }),
                    )
                    .to_json();
                send(
                    &to_child,
                    ToChild::Continue {
                        state: Some(inside),
                        seccomp_state: None,
                    },
                )?;
            }
            Ok(Some((ToRuntime::Console, fd))) => console = fd,
            Ok(Some((ToRuntime::Ready, _))) => break,
            Ok(Some((ToRuntime::Error { message }, _))) => return Err(Error::Child(message)),
            Ok(Some((other, _))) => {
                return Err(Error::Child(format!(
                    "unexpected message from the container's init: {other:?}"
                )));
            }
            Ok(None) => return Err(Error::ChildDied(exit_description(pid))),
            Err(e) => return Err(io_err("reading from the container's init")(e)),
        }
    }
    state.creating = false;
    state
        .save(&dir)
        .map_err(io_err("cannot write the container state"))?;
    if let Some(pid_file) = &opts.pid_file {
        let path = std::path::absolute(pid_file).unwrap_or_else(|_| pid_file.clone());
        write_atomically(&path, pid.to_string().as_bytes(), 0o644)
            .map_err(io_err(format!("cannot write pid file {}", path.display())))?;
    }
    guard.armed = false;
    Ok(Created {
        container: Container { dir, state },
        pidfd,
        console,
    })
}

/// Sends to the init. If the init has gone, the error it reported before it
/// exited (still queued on the channel) says why, rather than a broken pipe.
fn send(ch: &Channel, message: ToChild) -> Result<()> {
    send_with_fd(ch, &message, None)
}

pub(super) fn send_with_fd(
    ch: &Channel,
    message: &ToChild,
    fd: Option<BorrowedFd<'_>>,
) -> Result<()> {
    ch.send(message, fd)
        .map_err(|e| match ch.recv::<ToRuntime>() {
            Ok(Some((ToRuntime::Error { message }, _))) => Error::Child(message),
            _ => io_err("writing to the container's init")(e),
        })
}

/// The user-namespace path: serve the helper until it reports the init.
fn via_helper(
    ch: &Channel,
    helper: i32,
    spec: &hafen_oci::runtime::Spec,
) -> Result<(i32, OwnedFd)> {
    loop {
        match ch.recv::<ToRuntime>() {
            Ok(Some((ToRuntime::MapIds, _))) => {
                let linux = spec.linux().as_ref();
                namespaces::write_id_maps(
                    helper,
                    linux
                        .and_then(|l| l.uid_mappings().as_deref())
                        .unwrap_or(&[]),
                    linux
                        .and_then(|l| l.gid_mappings().as_deref())
                        .unwrap_or(&[]),
                )?;
                send(
                    ch,
                    ToChild::Continue {
                        state: None,
                        seccomp_state: None,
                    },
                )?;
            }
            Ok(Some((ToRuntime::InitPid, Some(pidfd)))) => {
                let pid = pid_of_pidfd(&pidfd)
                    .ok_or_else(|| Error::Child("cannot read the init's pid".into()))?;
                return Ok((pid, pidfd));
            }
            Ok(Some((ToRuntime::Error { message }, _))) => return Err(Error::Child(message)),
            Ok(Some((other, _))) => {
                return Err(Error::Child(format!(
                    "unexpected message from the helper: {other:?}"
                )));
            }
            Ok(None) => return Err(Error::ChildDied(exit_description(helper))),
            Err(e) => return Err(io_err("reading from the helper")(e)),
        }
    }
}

/// Makes the idmapped bind mounts (`idmap`/`ridmap` options) and sends them
/// to the init: setting an id mapping on a mount needs CAP_SYS_ADMIN over
/// the filesystem, which the init, inside its user namespace, does not have.
/// The mapping is the container's user namespace.
fn send_idmapped_mounts(
    spec: &hafen_oci::runtime::Spec,
    bundle: &Path,
    pid: i32,
    ch: &Channel,
) -> Result<()> {
    use rustix::mount::OpenTreeFlags;
    let mut userns = None;
    for (index, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        let Some(recursive) = opts.idmap else {
            continue;
        };
        let bad = |why: &str| {
            Error::WrongState(format!(
                "mounts[{index}] ({}): {why}",
                m.destination().display()
            ))
        };
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(bad(
                "per-mount uidMappings/gidMappings are not supported; idmap uses the container's user namespace",
            ));
        }
        if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
            return Err(bad("idmap needs a bind mount"));
        }
        let userns = match &userns {
            Some(fd) => fd,
            None => userns.insert(namespaces::open(
                LinuxNamespaceType::User,
                Path::new(&format!("/proc/{pid}/ns/user")),
            )?),
        };
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        let source = if source.is_absolute() {
            source.to_path_buf()
        } else {
            bundle.join(source)
        };
        let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        if opts.flags & libc::MS_REC != 0 {
            flags |= OpenTreeFlags::AT_RECURSIVE;
        }
        let tree = rustix::mount::open_tree(rustix::fs::CWD, &source, flags)
            .map_err(|e| bad(&format!("cannot clone {}: {e}", source.display())))?;
        let setattr_flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
        sys::mount_setattr(
            tree.as_fd(),
            c"",
            setattr_flags as u32,
            libc::MOUNT_ATTR_IDMAP,
            0,
            0,
            Some(userns.as_fd()),
        )
        .map_err(|e| bad(&format!("cannot idmap {}: {e}", source.display())))?;
        send_with_fd(ch, &ToChild::MountFd { index }, Some(tree.as_fd()))?;
    }
    Ok(())
}

/// The pid a pidfd refers to, from `/proc/self/fdinfo`.
pub(crate) fn pid_of_pidfd(fd: &OwnedFd) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// How a child ended, for error messages (it is reaped here).
pub(crate) fn exit_description(pid: i32) -> String {
    match rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::NOHANG,
    ) {
        Ok(Some((_, status))) => {
            if let Some(code) = status.exit_status() {
                format!("exit status {code}")
            } else if let Some(sig) = status.terminating_signal() {
                format!("killed by {}", crate::signal::name(sig))
            } else {
                "ended".into()
            }
        }
        _ => "ended".into(),
    }
}

/// Creates the start socket (listening, close-on-exec).
fn listen(path: &Path) -> Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno("cannot create the start socket"))?;
    let addr = crate::unix_addr::address_for(path).map_err(io_err("start socket address"))?;
    rustix::net::bind(&fd, &addr.addr).map_err(errno(format!("cannot bind {}", path.display())))?;
    rustix::net::listen(&fd, 4).map_err(errno("cannot listen on the start socket"))?;
    Ok(fd)
}

/// The pid and time namespaces the runtime's children enter: set up before
/// the fork, and the runtime's own defaults restored when dropped.
struct ChildNamespaces {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
}

impl ChildNamespaces {
    fn enter(ns: &Plan, spec: &hafen_oci::runtime::Spec) -> Result<Self> {
        let own = |name: &str| {
            rustix::fs::open(
                format!("/proc/self/ns/{name}"),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(errno(format!("cannot open /proc/self/ns/{name}")))
        };
        let mut saved = ChildNamespaces {
            pid: None,
            time: None,
        };
        if let Some(fd) = &ns.pid_path {
            saved.pid = Some(own("pid")?);
            namespaces::join(LinuxNamespaceType::Pid, fd)?;
        }
        if let Some(fd) = &ns.time_path {
            saved.time = Some(own("time")?);
            namespaces::join(LinuxNamespaceType::Time, fd)?;
        } else if ns.new_time {
            saved.time = Some(own("time")?);
            namespaces::unshare(libc::CLONE_NEWTIME, "a time namespace")?;
            let offsets = namespaces::time_offsets_text(spec);
            if !offsets.is_empty() {
                std::fs::write("/proc/self/timens_offsets", offsets)
                    .map_err(io_err("cannot write the time namespace offsets"))?;
            }
        }
        Ok(saved)
    }
}

impl Drop for ChildNamespaces {
    fn drop(&mut self) {
        if let Some(fd) = &self.pid {
            let _ = sys::setns(fd.as_fd(), libc::CLONE_NEWPID);
        }
        if let Some(fd) = &self.time {
            let _ = sys::setns(fd.as_fd(), libc::CLONE_NEWTIME);
        }
    }
}
