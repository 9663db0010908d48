//! Thin wrappers over the kernel interfaces that no safe crate covers.
//!
//! Every `unsafe` block of the runtime lives here, each small and with a
//! `// SAFETY:` comment. Everything else in the crate calls these functions or
//! `rustix`'s safe ones.

use std::ffi::{CStr, c_int, c_long};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Result of [`clone3`]: which side of the fork we are on.
#[derive(Debug)]
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; the child's pid (in the caller's pid namespace) and a
    /// pidfd referring to it.
    Parent {
        /// The child's pid.
        pid: i32,
        /// A pidfd for the child (`CLONE_PIDFD`).
        pidfd: OwnedFd,
    },
}

/// `clone3(2)` with fork semantics (no new stack, no shared memory): both
/// processes return from this call, like `fork(2)`, but the child can be
/// created in new namespaces at once and a pidfd comes back.
///
/// `flags` are `CLONE_*` bits; `CLONE_PIDFD` is added. `exit_signal` is the
/// signal the parent gets when the child ends (normally `SIGCHLD`, or `0`
/// together with `CLONE_PARENT`). With `cgroup` (a cgroup v2 directory) the
/// child starts in that cgroup (`CLONE_INTO_CGROUP`), which costs far less
/// than moving it afterwards.
///
/// # Safety
/// The calling process must have exactly one thread. The child is a copy of
/// the caller's memory; with other threads, locks they hold (in the allocator,
/// in stdio) would stay locked forever in the child.
pub unsafe fn clone3(
    flags: u64,
    exit_signal: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<Forked> {
    let mut pidfd: c_int = -1;
    // SAFETY: `clone_args` is a plain C struct for which all-zeroes is valid.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = std::ptr::addr_of_mut!(pidfd) as u64;
    args.exit_signal = exit_signal;
    if let Some(fd) = cgroup {
        // CLONE_INTO_CGROUP (include/uapi/linux/sched.h); libc's constant is
        // deprecated for its overflowing type.
        args.flags |= 0x2_0000_0000;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass; `pidfd` outlives
    // the call. Without CLONE_VM the child gets a copy of this address space, so
    // returning into Rust code in both processes is sound given the caller's
    // single-thread guarantee (see the function's contract).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(args),
            size_of::<libc::clone_args>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel stored a fresh pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Ends the calling process at once, without running destructors or atexit
/// handlers: what a forked child must do so that it never runs its parent's
/// cleanup (buffered output, temporary files) a second time.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Loads a classic-BPF seccomp filter into the calling thread.
///
/// Returns the notification fd when `flags` contains
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub fn seccomp_set_filter(filter: &[libc::sock_filter], flags: u32) -> io::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter`, which lives across the call; the
    // kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            c_long::from(libc::SECCOMP_SET_MODE_FILTER),
            c_long::from(flags),
            std::ptr::addr_of!(prog),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0 {
        // SAFETY: with NEW_LISTENER the return value is a new fd we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}

/// `mount_setattr(2)`: change the attributes (read-only, nosuid, idmap,
/// propagation, ...) of a mount or, with `AT_RECURSIVE`, a mount tree.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: u32,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    // SAFETY: `path` is NUL-terminated and `attr` lives across the call; the
    // kernel reads `size_of::<mount_attr>()` bytes from it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            std::ptr::addr_of!(attr),
            size_of::<libc::mount_attr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `personality(2)`: set the execution domain (e.g. `PER_LINUX32`).
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain integer and touches no memory of ours.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Builds the NULL-terminated pointer array `execve` wants.
fn pointer_array(strings: &[&CStr]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `execve(2)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> io::Error {
    let argv = pointer_array(argv);
    let envp = pointer_array(envp);
    // SAFETY: all three arguments are NUL-terminated strings or NULL-terminated
    // arrays of them that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file `fd` refers
/// to; returns only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> io::Error {
    let argv = pointer_array(argv);
    let envp = pointer_array(envp);
    // SAFETY: the empty path is a valid C string; argv and envp are
    // NULL-terminated arrays of valid C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Marks every fd from `first` upwards close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`), so that none of them reaches the next program.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags; it dereferences no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Joins a new, anonymous or named session keyring (`KEYCTL_JOIN_SESSION_KEYRING`),
/// so that a container does not share the caller's keys.
pub fn join_session_keyring(name: Option<&CStr>) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: c_long = 1;
    let name = name.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: `name` is NULL or a NUL-terminated string living across the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `kill(2)` with any signal number, real-time ones included.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    let ret = unsafe { libc::kill(pid, signal) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `pidfd_send_signal(2)` with any signal number: signals exactly the process
/// the pidfd refers to, never a later process that reused its pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a NULL siginfo is allowed; the other arguments are integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

extern "C" fn exit_on_signal(signal: c_int) {
    // Only async-signal-safe calls here: _exit is one.
    exit_now(128 + signal);
}

/// Makes the usual terminating signals end the calling process with exit code
/// `128 + signal`. A container's init waiting to be started is PID 1 of its
/// namespace, which ignores signals without a handler; this lets `kill`
/// stop it the way it stops a started container.
pub fn exit_on_terminating_signals() -> io::Result<()> {
    for signal in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: sigaction is a plain C struct for which zeroes are valid.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = exit_on_signal as *const () as libc::sighandler_t;
        // SAFETY: `action` is fully initialised and outlives the call; the
        // handler only calls the async-signal-safe `_exit`.
        let ret = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Resets every catchable signal to its default action and unblocks all
/// signals, so that the next program starts with a clean signal state.
pub fn reset_signals() -> io::Result<()> {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL with no flags is always a valid disposition; signals
        // the kernel refuses (reserved by libc) simply return EINVAL.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    set_signal_mask(libc::SIG_SETMASK, &[])
}

/// Blocks (`SIG_BLOCK`), unblocks (`SIG_UNBLOCK`) or sets (`SIG_SETMASK`) the
/// given signals in the calling thread's mask. An empty list with `SIG_BLOCK`
/// blocks every signal.
pub fn set_signal_mask(how: c_int, signals: &[c_int]) -> io::Result<()> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigfillset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    if signals.is_empty() && how == libc::SIG_BLOCK {
        // SAFETY: `set` is a valid sigset_t we own.
        unsafe { libc::sigfillset(&mut set) };
    } else {
        // SAFETY: `set` is a valid sigset_t we own.
        unsafe { libc::sigemptyset(&mut set) };
    }
    for &signal in signals {
        // SAFETY: `set` is initialised; invalid numbers only return EINVAL.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    // SAFETY: `set` is initialised; the old mask is not requested.
    let ret = unsafe { libc::sigprocmask(how, &set, std::ptr::null_mut()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A `signalfd(2)` for the given signals (which the caller must have blocked).
pub fn signalfd(signals: &[c_int]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own.
    unsafe { libc::sigemptyset(&mut set) };
    for &signal in signals {
        // SAFETY: `set` is initialised; invalid numbers only return EINVAL.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    // SAFETY: `set` is initialised; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one `signalfd_siginfo` and returns the signal number it carries.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
    let n = rustix::io::read(fd, &mut info)?;
    if n != info.len() {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    // ssi_signo is the first u32 of the structure.
    Ok(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32)
}

extern "C" fn ignore_signal(_: c_int) {}

/// Installs a handler that does nothing for every catchable signal, so
/// that the kernel delivers them to PID 1 of a pid namespace (it drops
/// signals from outside the namespace that PID 1 has no handler for);
/// blocked, they go to a signalfd.
pub fn catch_all_signals() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the handler does nothing (so it is async-signal-safe);
        // signals libc reserves are refused with EINVAL, which is ignored.
        unsafe { libc::signal(signal, ignore_signal as *const () as libc::sighandler_t) };
    }
}

/// Takes ownership of an fd this process inherited across `execve` under
/// a number its caller passed along (after checking that it is open).
pub fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    check_fd_open(fd)?;
    rustix::io::fcntl_setfd(
        // SAFETY: the fd is open (checked above) and borrowed only for
        // this call.
        unsafe { BorrowedFd::borrow_raw(fd) },
        rustix::io::FdFlags::CLOEXEC,
    )?;
    // SAFETY: the fd is open, and the protocol that passed its number says
    // nothing else in this process owns it: it is taken exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Gives the heap's free memory back to the kernel (glibc keeps it
/// otherwise): for long-lived small processes after a big set-up.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // takes no pointers and is safe to call at any time.
    unsafe { libc::malloc_trim(0) };
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer and returns an integer.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).unwrap_or(100).max(1)
}

/// Creates a memfd (used to hold a sealed copy of the hafen binary where a
/// read-only bind mount of it cannot be made).
pub fn memfd_create(name: &CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and lives across the call.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub fn add_seals(fd: BorrowedFd<'_>, seals: c_int) -> io::Result<()> {
    // SAFETY: fcntl with F_ADD_SEALS takes an integer argument.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fcntl(fd, F_GET_SEALS)`; an error means the file cannot be sealed.
pub fn get_seals(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    // SAFETY: fcntl with F_GET_SEALS takes no pointer argument.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// One eBPF instruction as the kernel reads it.
pub type BpfInsn = crate::cgroups::BpfInsnRepr;

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attaches it to the cgroup
/// `cgroup_dir` (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`). The program stays
/// attached after the fds are closed, for as long as the cgroup exists.
pub fn attach_device_filter(cgroup_dir: BorrowedFd<'_>, insns: &[BpfInsn]) -> io::Result<()> {
    const BPF_PROG_LOAD: c_long = 5;
    const BPF_PROG_ATTACH: c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"hafen_devcg");
    let insn_cnt =
        u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let load = |log: &mut [u8]| {
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt,
            insns: insns.as_ptr() as u64,
            license: c"Apache-2.0".as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: BPF_CGROUP_DEVICE,
        };
        // SAFETY: `attr` is a valid bpf_attr prefix of the size we pass; the
        // instructions, the license and the log buffer outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                std::ptr::addr_of!(attr),
                size_of::<ProgLoad>(),
            )
        }
    };
    let mut prog = load(&mut []);
    if prog < 0 {
        let err = io::Error::last_os_error();
        // Load again with the verifier's log, to say what it refused.
        let mut log = vec![0u8; 16 * 1024];
        prog = load(&mut log);
        if prog < 0 {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim().replace('\n', "; ");
            return Err(io::Error::new(
                err.kind(),
                format!("loading the device filter: {err}: {text}"),
            ));
        }
    }
    // SAFETY: BPF_PROG_LOAD returned a new fd that we own.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as RawFd) };
    let attach = ProgAttach {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attach` is a valid bpf_attr prefix of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            std::ptr::addr_of!(attach),
            size_of::<ProgAttach>(),
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        Err(io::Error::new(
            err.kind(),
            format!("attaching the device filter: {err}"),
        ))
    } else {
        Ok(())
    }
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)`: the I/O priority of the caller.
pub fn ioprio_set(prio: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: c_int = 1;
    // SAFETY: ioprio_set takes plain integers.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio as c_int) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `unshare(2)`: moves the calling process into new namespaces.
///
/// # Safety
/// With `CLONE_NEWUSER` or `CLONE_FS`-related flags the process must be
/// single-threaded; the caller guarantees it (the runtime only unshares in
/// its own single-threaded child processes or before starting threads).
pub unsafe fn unshare(flags: c_int) -> io::Result<()> {
    // SAFETY: unshare takes an integer; the caller guarantees the thread rule.
    let ret = unsafe { libc::unshare(flags) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setns(2)` with a namespace type check (`0` accepts any type).
pub fn setns(fd: BorrowedFd<'_>, nstype: c_int) -> io::Result<()> {
    // SAFETY: setns takes an fd and an integer.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The `CLONE_NEW*` type of a namespace fd (`NS_GET_NSTYPE`).
pub fn ns_type(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns an integer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `mount(2)` with raw `MS_*` flags.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: u64,
    data: Option<&CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is NULL or a NUL-terminated string that lives
    // across the call.
    let ret = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags as libc::c_ulong,
            ptr(data).cast(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `umount2(2)`.
pub fn umount2(target: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `target` is a NUL-terminated string living across the call.
    let ret = unsafe { libc::umount2(target.as_ptr(), flags) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Checks that an fd number is open (`fcntl(F_GETFD)`).
pub fn check_fd_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD takes no argument; a closed fd returns EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Removes a variable from the process environment.
///
/// Only call this while the process has a single thread (at the start of
/// `main`): the C environment is not thread-safe.
pub fn remove_env(name: &str) {
    // SAFETY: callers only use this before any thread is started (see the
    // function's contract), so no other thread reads the environment.
    unsafe { std::env::remove_var(name) };
}

/// Closes every fd from `first` upwards except those in `keep`
/// (`close_range(2)` over the gaps between them).
pub fn close_fds_except(first: u32, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > start {
            let last = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            // SAFETY: close_range only closes fds; none of the ones closed
            // here is owned by a live OwnedFd the caller still uses (the
            // caller lists all of those in `keep`).
            let ret = unsafe { libc::syscall(libc::SYS_close_range, start, last, 0) };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        start = fd.saturating_add(1);
        if fd == u32::MAX {
            break;
        }
    }
    Ok(())
}
