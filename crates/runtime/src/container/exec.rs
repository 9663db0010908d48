//! `exec`: start another process inside a running container.
//!
//! The new process joins every namespace of the container (the pid and time
//! namespaces through the runtime, which enters them for its children; the
//! others itself, the user namespace first), the container's cgroup and
//! session keyring, and gets the same treatment as the container's init:
//! limits, user, capabilities, labels and the container's seccomp filter.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use hafen_oci::runtime::{LinuxNamespaceType, Process};

use super::create::exit_description;
use super::wait::{ForegroundIo, take_signals, wait_foreground};
use super::{Container, Runtime};
use crate::namespaces;
use crate::process::ProcessPlan;
use crate::state::{Status, write_atomically};
use crate::sync::{Channel, ToChild, ToRuntime};
use crate::{Error, Result, errno, io_err, sys};

/// How to exec.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The container.
    pub id: String,
    /// The process to start.
    pub process: Process,
    /// Where to send the terminal's master (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// Where to write the new process's pid.
    pub pid_file: Option<PathBuf>,
    /// Return once the process started.
    pub detach: bool,
    /// Pass this many fds after stdio.
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    pub ignore_paused: bool,
}

/// What `exec` produced.
#[derive(Debug)]
pub struct Executed {
    /// The new process's pid.
    pub pid: i32,
    /// Its exit code (foreground only).
    pub exit_code: Option<i32>,
}

/// The namespaces of a container's init, as fds, in the order to join them.
struct Joined {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
    user: Option<OwnedFd>,
    others: Vec<(LinuxNamespaceType, OwnedFd)>,
}

fn container_namespaces(c: &Container, spec: &hafen_oci::runtime::Spec) -> Result<Joined> {
    let mut joined = Joined {
        pid: None,
        time: None,
        user: None,
        others: Vec::new(),
    };
    let mut mount = None;
    let kinds = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| n.typ());
    for kind in kinds {
        let path = PathBuf::from(format!(
            "/proc/{}/ns/{}",
            c.state.pid,
            namespaces::proc_name(kind)
        ));
        let fd = namespaces::open(kind, &path)?;
        match kind {
            LinuxNamespaceType::Pid => joined.pid = Some(fd),
            LinuxNamespaceType::Time => joined.time = Some(fd),
            LinuxNamespaceType::User => joined.user = Some(fd),
            LinuxNamespaceType::Mount => mount = Some(fd),
            other => joined.others.push((other, fd)),
        }
    }
    // The mount namespace last: after it, paths are the container's.
    if let Some(fd) = mount {
        joined.others.push((LinuxNamespaceType::Mount, fd));
    }
    Ok(joined)
}

/// A process started in a container for a supervisor that waits for it
/// itself (the shim): its pidfd, and the terminal's master if it has one.
#[derive(Debug)]
pub struct Spawned {
    /// The new process's pid.
    pub pid: i32,
    /// A pidfd for it (it is the caller's child).
    pub pidfd: OwnedFd,
    /// The terminal's master (with `process.terminal`).
    pub console: Option<OwnedFd>,
}

/// Starts a process in a container and returns at once, handing its
/// terminal (if any) to the caller; `opts.detach` and `opts.console_socket`
/// are not used.
pub fn spawn(rt: &Runtime, opts: &ExecOptions) -> Result<Spawned> {
    let opts = ExecOptions {
        detach: true,
        console_socket: None,
        ..opts.clone()
    };
    let (pid, pidfd, console, _) = exec_process(rt, &opts, true)?;
    Ok(Spawned {
        pid,
        pidfd,
        console,
    })
}

/// Starts a process in a container; in the foreground, waits for it.
pub fn exec(rt: &Runtime, opts: &ExecOptions) -> Result<Executed> {
    let (pid, pidfd, console, signals) = exec_process(rt, opts, !opts.detach)?;
    let Some(signals) = signals else {
        return Ok(Executed {
            pid,
            exit_code: None,
        });
    };
    let code = wait_foreground(pid, &pidfd, ForegroundIo { console, signals })?;
    Ok(Executed {
        pid,
        exit_code: Some(code),
    })
}

/// The process, its pidfd and terminal, and (in the foreground) the
/// signals taken for forwarding.
type Started = (i32, OwnedFd, Option<OwnedFd>, Option<OwnedFd>);

fn exec_process(rt: &Runtime, opts: &ExecOptions, console_to_runtime: bool) -> Result<Started> {
    let c = rt.load(&opts.id)?;
    match c.status() {
        Status::Stopped | Status::Creating => {
            return Err(Error::WrongState(
                "cannot exec in a stopped container".into(),
            ));
        }
        Status::Paused if !opts.ignore_paused => {
            return Err(Error::WrongState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ));
        }
        _ => {}
    }
    crate::bundle::validate_process(&opts.process)?;
    let terminal = opts.process.terminal().unwrap_or(false);
    if opts.detach && terminal && opts.console_socket.is_none() && !console_to_runtime {
        return Err(Error::NeedConsoleSocket);
    }
    if (!opts.detach || !terminal) && opts.console_socket.is_some() {
        return Err(Error::UnneededConsoleSocket);
    }
    let spec = c.spec()?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    let mut plan = ProcessPlan::new(&opts.process, seccomp)?;
    plan.extra_fds = super::create::passed_fds(opts.preserve_fds, 0)?;
    let joined = container_namespaces(&c, &spec)?;
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
    let (to_child, in_child) = Channel::pair().map_err(io_err("socketpair"))?;
    let signals = if opts.detach {
        None
    } else {
        Some(take_signals()?)
    };
    if let Some(fd) = &joined.pid {
        namespaces::join(LinuxNamespaceType::Pid, fd)?;
    }
    if let Some(fd) = &joined.time {
        namespaces::join(LinuxNamespaceType::Time, fd)?;
    }
    let keyring = c
        .state
        .keyring
        .as_deref()
        .and_then(|k| CString::new(k).ok());
    let unified = c.state.cgroup.unified_fd()?;
    let cgroup_self_join = joined.user.is_none();
    let args = ExecChild {
        cgroup: &c.state.cgroup,
        cgroup_self_join,
        plan,
        channel: &in_child,
        joined: &joined,
        console_socket: console_socket.as_ref(),
        console_to_runtime,
        keyring: keyring.as_deref(),
    };
    // SAFETY: the runtime is single-threaded here.
    let (pid, pidfd) =
        match unsafe { sys::clone3(0, libc::SIGCHLD as u64, unified.as_ref().map(|f| f.as_fd())) }
            .map_err(io_err("cannot start the process"))?
        {
            sys::Forked::Child => {
                // As in create: only the child's own channel end, and no
                // host directory fd it could chdir through.
                drop(to_child);
                drop(unified);
                exec_child(args)
            }
            sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
        };
    drop(in_child);
    drop(console_socket);
    let result = serve(&c, pid, &to_child, cgroup_self_join);
    let console = match result {
        Ok(console) => console,
        Err(e) => {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            );
            return Err(e);
        }
    };
    if let Some(pid_file) = &opts.pid_file {
        let path = std::path::absolute(pid_file).unwrap_or_else(|_| pid_file.clone());
        write_atomically(&path, pid.to_string().as_bytes(), 0o644)
            .map_err(io_err(format!("cannot write pid file {}", path.display())))?;
    }
    Ok((pid, pidfd, console, signals))
}

/// The runtime's side: cgroup, then wait for the process to execute.
fn serve(c: &Container, pid: i32, ch: &Channel, cgroup_self_join: bool) -> Result<Option<OwnedFd>> {
    if !cgroup_self_join {
        c.state.cgroup.add_process_v1(pid)?;
    }
    super::create::send_with_fd(
        ch,
        &ToChild::Continue {
            state: None,
            seccomp_state: None,
        },
        None,
    )?;
    let mut console = None;
    loop {
        match ch.recv::<ToRuntime>() {
            Ok(Some((ToRuntime::Console, fd))) => console = fd,
            Ok(Some((ToRuntime::Ready, _))) => break,
            Ok(Some((ToRuntime::Error { message }, _))) => return Err(Error::Child(message)),
            Ok(Some((other, _))) => {
                return Err(Error::Child(format!("unexpected message: {other:?}")));
            }
            Ok(None) => return Err(Error::ChildDied(exit_description(pid))),
            Err(e) => return Err(io_err("reading from the new process")(e)),
        }
    }
    // After Ready the process executes; the channel closes on success.
    match ch.recv::<ToRuntime>() {
        Ok(None) => Ok(console),
        Ok(Some((ToRuntime::Error { message }, _))) => Err(Error::Child(message)),
        Ok(Some((other, _))) => Err(Error::Child(format!("unexpected message: {other:?}"))),
        Err(e) => Err(io_err("reading from the new process")(e)),
    }
}

struct ExecChild<'a> {
    cgroup: &'a crate::cgroups::Cgroup,
    cgroup_self_join: bool,
    plan: ProcessPlan,
    channel: &'a Channel,
    joined: &'a Joined,
    console_socket: Option<&'a OwnedFd>,
    console_to_runtime: bool,
    keyring: Option<&'a std::ffi::CStr>,
}

/// The new process's side; never returns.
fn exec_child(mut a: ExecChild<'_>) -> ! {
    crate::init::hide_from_container();
    let channel = a.channel;
    let message = match exec_child_steps(&mut a) {
        Ok(program) => {
            if channel.send(&ToRuntime::Ready, None).is_err() {
                sys::exit_now(255);
            }
            a.plan.exec(&program).to_string()
        }
        Err(e) => e,
    };
    let _ = channel.send(&ToRuntime::Error { message }, None);
    sys::exit_now(255)
}

fn exec_child_steps(a: &mut ExecChild<'_>) -> std::result::Result<CString, String> {
    {
        // Nothing of the host beyond stdio and the passed fds stays open
        // (see the init's `own_fds`).
        use std::os::fd::AsRawFd;
        let mut keep = vec![a.channel.as_fd().as_raw_fd()];
        keep.extend(a.console_socket.map(|f| f.as_raw_fd()));
        keep.extend(a.joined.user.iter().map(|f| f.as_raw_fd()));
        keep.extend(a.joined.others.iter().map(|(_, f)| f.as_raw_fd()));
        sys::close_fds_except(3 + a.plan.extra_fds, &keep)
            .map_err(|e| format!("cannot close inherited fds: {e}"))?;
    }
    if a.cgroup_self_join {
        a.cgroup.join_v1_self().map_err(|e| e.to_string())?;
    }
    match a.channel.recv::<ToChild>() {
        Ok(Some((ToChild::Continue { .. }, _))) => {}
        _ => return Err("the runtime aborted the exec".into()),
    }
    if let Some(fd) = &a.joined.user {
        namespaces::join(LinuxNamespaceType::User, fd).map_err(|e| e.to_string())?;
        namespaces::become_root().map_err(|e| e.to_string())?;
    }
    for (kind, fd) in &a.joined.others {
        namespaces::join(*kind, fd).map_err(|e| e.to_string())?;
    }
    if let Some(name) = a.keyring {
        if let Err(e) = sys::join_session_keyring(Some(name)) {
            tracing::debug!("cannot join the container's keyring: {e}");
        }
    }
    rustix::process::setsid()
        .map_err(errno("setsid"))
        .map_err(|e| e.to_string())?;
    if a.plan.terminal {
        let pty = crate::console::open_pty(a.plan.console_size)
            .map_err(|e| format!("cannot open a pty in the container: {e}"))?;
        if let Some(socket) = a.console_socket {
            crate::console::send_master(socket.as_fd(), pty.master.as_fd())
                .map_err(|e| format!("cannot send the pty to the console socket: {e}"))?;
        } else if a.console_to_runtime {
            a.channel
                .send(&ToRuntime::Console, Some(pty.master.as_fd()))
                .map_err(|e| e.to_string())?;
        }
        crate::console::become_console(&pty.slave)
            .map_err(|e| format!("cannot use the pty: {e}"))?;
    }
    a.plan.finalize().map_err(|e| e.to_string())
}
