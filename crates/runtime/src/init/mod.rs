//! The container's init: the process `create` forks, which builds the
//! container around itself and then waits on its start socket until `start`
//! tells it to execute the configured program.
//!
//! Its steps, in order (the runtime side is in `container::create`):
//! 1. wait until the runtime has written id maps and moved it into the cgroup;
//! 2. join namespaces given by path; create the cgroup namespace;
//! 3. a new session keyring, a new session;
//! 4. hostname, domainname, sysctls;
//! 5. mounts, device nodes, `/dev` symlinks (in the runtime's view of paths);
//! 6. ask the runtime to run prestart/createRuntime hooks; run
//!    createContainer hooks;
//! 7. `pivot_root`; the terminal; masked and read-only paths; read-only root;
//! 8. personality, limits, user, capabilities, labels, seccomp (see
//!    `process`); find the program;
//! 9. report ready; wait for `start`; run startContainer hooks; execute.

pub(crate) mod mount_options;
pub mod rootfs;

pub use mount_options::known as known_mount_options;

use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use hafen_oci::runtime::{LinuxNamespaceType, LinuxPersonalityDomain, Spec};
use rustix::net::SocketFlags;

use crate::cgroups::Cgroup;
use crate::hooks::{self, HookError, HookKind};
use crate::namespaces::{self, NamespaceError};
use crate::process::{ProcessError, ProcessPlan};
use crate::sync::{Channel, StartReply, StartRequest, ToChild, ToRuntime};
use crate::sys;
use rootfs::{MountNamespace, Rootfs, RootfsError};

/// Errors inside the container's init (reported to the runtime as text).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Namespaces.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// The root filesystem.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// The process set-up.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A hook.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A kernel call.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The runtime went away or aborted.
    #[error("the runtime aborted the container's creation")]
    Aborted,
}

fn sys_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}

/// What the container's init works with (prepared by the runtime before it
/// forks; the child has its own copy).
#[derive(Debug)]
pub struct InitArgs<'a> {
    /// The configuration.
    pub spec: &'a Spec,
    /// The bundle.
    pub bundle: &'a Path,
    /// The root filesystem on the host.
    pub rootfs: &'a Path,
    /// The container's cgroup.
    pub cgroup: &'a Cgroup,
    /// The process to run (none if the configuration has none: `start`
    /// then fails).
    pub plan: Option<ProcessPlan>,
    /// The channel to the runtime.
    pub channel: &'a Channel,
    /// The start socket (listening).
    pub exec_listener: &'a OwnedFd,
    /// A connected console socket, with `process.terminal` and
    /// `--console-socket`.
    pub console_socket: Option<&'a OwnedFd>,
    /// Send the terminal's master to the runtime (foreground `run`).
    pub console_to_runtime: bool,
    /// A connected socket to the seccomp listener.
    pub seccomp_listener: Option<&'a OwnedFd>,
    /// Namespaces to join by path (empty when a helper joined them).
    pub join: &'a [(LinuxNamespaceType, OwnedFd)],
    /// Create a cgroup namespace.
    pub new_cgroupns: bool,
    /// Whether the container has a user namespace.
    pub userns: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// The session keyring to join (`None`: keep the caller's).
    pub keyring: Option<&'a CStr>,
    /// Move into the v1 cgroups itself (the runtime does it otherwise).
    pub cgroup_self_join: bool,
    /// The helper set up the user namespace (and became its root).
    pub helper_made_user: bool,
}

/// Runs the container's init; never returns.
pub fn container_init(args: InitArgs<'_>) -> ! {
    let channel = args.channel;
    let Err(e) = run(args);
    let _ = channel.send(
        &ToRuntime::Error {
            message: e.to_string(),
        },
        None,
    );
    sys::exit_now(1)
}

/// Waits for the runtime's go-ahead; returns the state it sent along.
fn wait_continue(channel: &Channel) -> Result<(Option<String>, Option<String>), InitError> {
    wait_continue_collecting(channel, &mut HashMap::new())
}

/// Like `wait_continue`, keeping the mounts the runtime sends first.
fn wait_continue_collecting(
    channel: &Channel,
    mounts: &mut HashMap<usize, OwnedFd>,
) -> Result<(Option<String>, Option<String>), InitError> {
    loop {
        match channel.recv::<ToChild>() {
            Ok(Some((
                ToChild::Continue {
                    state,
                    seccomp_state,
                },
                _,
            ))) => {
                return Ok((state, seccomp_state));
            }
            Ok(Some((ToChild::MountFd { index }, Some(fd)))) => {
                mounts.insert(index, fd);
            }
            _ => return Err(InitError::Aborted),
        }
    }
}

/// Makes the calling process non-dumpable until it executes the program:
/// other processes in the container (even root without CAP_SYS_PTRACE) then
/// cannot open its `/proc/<pid>/` files, `exe` among them, which would
/// otherwise lead back to the hafen binary (CVE-2019-5736).
pub(crate) fn hide_from_container() {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}

/// The fds the init works with; every other fd above stdio and the passed
/// ones is closed first thing, so that no host file or directory the
/// runtime's caller left open is reachable from the container, even before
/// the program executes.
fn own_fds(a: &InitArgs<'_>) -> Vec<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let mut keep = vec![a.channel.as_fd().as_raw_fd(), a.exec_listener.as_raw_fd()];
    keep.extend(a.console_socket.map(|f| f.as_raw_fd()));
    keep.extend(a.seccomp_listener.map(|f| f.as_raw_fd()));
    keep.extend(a.join.iter().map(|(_, fd)| fd.as_raw_fd()));
    keep
}

fn run(mut a: InitArgs<'_>) -> Result<Infallible, InitError> {
    hide_from_container();
    let first = 3 + a.plan.as_ref().map_or(0, |p| p.extra_fds);
    sys::close_fds_except(first, &own_fds(&a)).map_err(sys_err("close inherited fds"))?;
    // The runtime may have blocked signals (foreground `run`); this process
    // is PID 1 of its namespace and ignores signals it has no handler for,
    // so give the terminating ones a handler until the program runs.
    sys::exit_on_terminating_signals().map_err(sys_err("signal handlers"))?;
    sys::set_signal_mask(libc::SIG_SETMASK, &[]).map_err(sys_err("signal mask"))?;

    // The runtime's go-ahead says the id maps are written and the cgroups
    // are ready. With a user namespace nothing can be done before it; else
    // it is only awaited before the cgroups are needed, so that the mounts
    // here and the cgroup set-up there happen at the same time.
    let mut ready = None;
    let mut prepared = HashMap::new();
    if a.userns {
        ready = Some(wait_continue_collecting(a.channel, &mut prepared)?.1);
        if !a.helper_made_user {
            namespaces::become_root()?;
        }
    }
    for (kind, fd) in a.join {
        namespaces::join(*kind, fd)?;
    }
    if let Some(name) = a.keyring {
        // Not every kernel offers keyrings to every namespace; runc ignores
        // that too.
        if let Err(e) = sys::join_session_keyring(Some(name)) {
            tracing::debug!("no new session keyring: {e}");
        }
    }
    rustix::process::setsid().map_err(|e| InitError::Sys {
        what: "setsid".into(),
        source: e.into(),
    })?;
    set_names(a.spec)?;
    write_sysctls(a.spec)?;

    let root = Rootfs {
        spec: a.spec,
        path: a.rootfs,
        bundle: a.bundle,
        cgroup: a.cgroup,
        cgroupns: a.new_cgroupns,
        userns: a.userns,
        mount_ns: MountNamespace::of(a.spec),
        prepared: &prepared,
    };
    let cwd = a
        .plan
        .as_ref()
        .map_or(Path::new("/"), |p| p.cwd.as_path())
        .to_path_buf();
    let mut cgroup_joined = false;
    let mut join_cgroup = || -> Result<(), InitError> {
        if cgroup_joined {
            return Ok(());
        }
        if ready.is_none() {
            ready = Some(wait_continue(a.channel)?.1);
        }
        if a.cgroup_self_join {
            a.cgroup.join_v1_self().map_err(|e| InitError::Sys {
                what: e.to_string(),
                source: std::io::Error::from_raw_os_error(libc::EIO),
            })?;
        }
        if a.new_cgroupns {
            namespaces::unshare(libc::CLONE_NEWCGROUP, "a cgroup namespace")?;
        }
        cgroup_joined = true;
        Ok(())
    };
    root.prepare(&cwd, &mut || join_cgroup().map_err(|e| e.to_string()))?;
    join_cgroup()?;
    let seccomp_state = ready.flatten();
    a.channel
        .send(&ToRuntime::RunHooks, None)
        .map_err(sys_err("sync"))?;
    let (state, _) = wait_continue(a.channel)?;
    let hooks = a.spec.hooks().as_ref();
    let create_container = HookKind::CreateContainer.of(hooks);
    if !create_container.is_empty() {
        hooks::run(
            HookKind::CreateContainer,
            create_container,
            state.as_deref().unwrap_or("{}"),
            Some(a.rootfs),
        )?;
    }
    rootfs::pivot(a.rootfs, a.no_pivot, root.mount_ns)?;
    if a.plan.as_ref().is_some_and(|p| p.terminal) {
        setup_terminal(&a)?;
    }
    rootfs::finish(a.spec)?;
    if let Some(personality) = a
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        let persona = match personality.domain() {
            LinuxPersonalityDomain::PerLinux => 0,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        sys::set_personality(persona).map_err(sys_err("personality"))?;
    }
    if let (Some(socket), Some(plan)) = (a.seccomp_listener, a.plan.as_mut()) {
        let socket = socket.try_clone().map_err(sys_err("seccomp listener"))?;
        plan.notify = Some(crate::process::NotifyTarget {
            socket,
            state: seccomp_state.unwrap_or_default(),
        });
    }
    let program = match a.plan.as_mut() {
        Some(plan) => Some(plan.finalize()?),
        None => None,
    };
    a.channel
        .send(&ToRuntime::Ready, None)
        .map_err(sys_err("sync"))?;

    let (conn, state) = loop {
        let (conn, state) = wait_for_start(a.exec_listener)?;
        if program.is_some() {
            break (conn, state);
        }
        // Nothing to start: refuse, and stay created.
        let message = crate::bundle::SpecError::ProcessMissing.to_string();
        let _ = conn.send(&StartReply::Error { message }, None);
    };
    let (Some(program), Some(plan)) = (program, a.plan.as_ref()) else {
        return Err(InitError::Aborted);
    };
    let result = start(&a, plan, &conn, &state, &program);
    let message = match result {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    };
    let _ = conn.send(
        &StartReply::Error {
            message: message.clone(),
        },
        None,
    );
    Err(InitError::Sys {
        what: message,
        source: std::io::Error::from_raw_os_error(0),
    })
}

/// What happens on `start`: the startContainer hooks, then the program.
fn start(
    a: &InitArgs<'_>,
    plan: &ProcessPlan,
    conn: &Channel,
    state: &str,
    program: &CStr,
) -> Result<Infallible, InitError> {
    let hooks = HookKind::StartContainer.of(a.spec.hooks().as_ref());
    if !hooks.is_empty() {
        hooks::run(HookKind::StartContainer, hooks, state, None)?;
    }
    conn.send(&StartReply::Executing, None)
        .map_err(sys_err("start reply"))?;
    Err(plan.exec(program).into())
}

/// Accepts connections on the start socket until one carries a start
/// request (status probes connect and close without a word).
fn wait_for_start(listener: &OwnedFd) -> Result<(Channel, String), InitError> {
    loop {
        let conn = match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Ok(conn) => conn,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
            Err(e) => {
                return Err(InitError::Sys {
                    what: "accept on the start socket".into(),
                    source: e.into(),
                });
            }
        };
        let channel = Channel::from_fd(conn);
        if let Ok(Some((StartRequest::Start { state }, _))) = channel.recv::<StartRequest>() {
            return Ok((channel, state));
        }
    }
}

fn set_names(spec: &Spec) -> Result<(), InitError> {
    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(name.as_bytes()).map_err(|e| InitError::Sys {
            what: format!("sethostname {name:?}"),
            source: e.into(),
        })?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::setdomainname(name.as_bytes()).map_err(|e| InitError::Sys {
            what: format!("setdomainname {name:?}"),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Writes `linux.sysctl` through `/proc/sys` (the values apply to the
/// writer's namespaces, which are the container's).
fn write_sysctls(spec: &Spec) -> Result<(), InitError> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .map_err(sys_err(format!("sysctl {key}={value}")))?;
    }
    Ok(())
}

/// The container's terminal: a new pty in its devpts, the slave bound over
/// `/dev/console` and made the process's stdio and controlling terminal,
/// the master handed to the console socket or the runtime.
fn setup_terminal(a: &InitArgs<'_>) -> Result<(), InitError> {
    let pty = crate::console::open_pty(a.plan.as_ref().and_then(|p| p.console_size))
        .map_err(sys_err("open a pty in the container"))?;
    let console = Path::new("/dev/console");
    if !console.exists() {
        std::fs::File::create(console).map_err(sys_err("create /dev/console"))?;
    }
    let slave_path =
        std::ffi::CString::new(pty.slave_path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    sys::mount(
        Some(&slave_path),
        c"/dev/console",
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(sys_err("bind the pty to /dev/console"))?;
    if let Some(socket) = a.console_socket {
        crate::console::send_master(socket.as_fd(), pty.master.as_fd())
            .map_err(sys_err("send the pty to the console socket"))?;
    } else if a.console_to_runtime {
        a.channel
            .send(&ToRuntime::Console, Some(pty.master.as_fd()))
            .map_err(sys_err("send the pty"))?;
    }
    crate::console::become_console(&pty.slave)
        .map_err(sys_err("make the pty the controlling terminal"))?;
    Ok(())
}

/// The helper of the user-namespace path (see `namespaces`): joins and
/// creates namespaces in the required order, then forks the init as a
/// sibling and reports its pidfd. Never returns.
pub fn helper(plan: &namespaces::Plan, args: InitArgs<'_>) -> ! {
    hide_from_container();
    let channel = args.channel;
    match helper_steps(plan, channel) {
        Ok(()) => {}
        Err(e) => {
            let _ = channel.send(
                &ToRuntime::Error {
                    message: e.to_string(),
                },
                None,
            );
            sys::exit_now(1)
        }
    }
    // SAFETY: the helper is single-threaded (a fresh fork of the runtime).
    match unsafe { sys::clone3(libc::CLONE_PARENT as u64, 0, None) } {
        Ok(sys::Forked::Child) => container_init(InitArgs {
            join: &[],
            helper_made_user: true,
            ..args
        }),
        Ok(sys::Forked::Parent { pidfd, .. }) => {
            let _ = channel.send(&ToRuntime::InitPid, Some(pidfd.as_fd()));
            sys::exit_now(0)
        }
        Err(e) => {
            let _ = channel.send(
                &ToRuntime::Error {
                    message: format!("cannot start the container's init: {e}"),
                },
                None,
            );
            sys::exit_now(1)
        }
    }
}

fn helper_steps(plan: &namespaces::Plan, channel: &Channel) -> Result<(), InitError> {
    // Paths first: they may belong to the host's user namespace.
    for (kind, fd) in &plan.join {
        namespaces::join(*kind, fd)?;
    }
    if let Some(fd) = &plan.user_path {
        namespaces::join(LinuxNamespaceType::User, fd)?;
        namespaces::become_root()?;
    }
    let rest = plan.new_flags & !(libc::CLONE_NEWUSER | libc::CLONE_NEWPID);
    if plan.new_user {
        namespaces::unshare(libc::CLONE_NEWUSER, "a user namespace")?;
        channel
            .send(&ToRuntime::MapIds, None)
            .map_err(sys_err("sync"))?;
        wait_continue(channel)?;
    }
    namespaces::unshare(rest, "namespaces")?;
    if plan.new_flags & libc::CLONE_NEWPID != 0 {
        namespaces::unshare(libc::CLONE_NEWPID, "a pid namespace")?;
    }
    Ok(())
}
