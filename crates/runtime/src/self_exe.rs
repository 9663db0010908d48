//! Keeping the hafen binary safe from the containers it starts
//! (CVE-2019-5736).
//!
//! A process of the runtime that enters a container is, until it executes
//! the container's program, the hafen binary. A malicious container can make
//! that `execve` run `/proc/self/exe` (a `#!/proc/self/exe` script), keep an
//! fd of `/proc/<pid>/exe` and, once the process has ended, open it for
//! writing: the host's hafen binary would be overwritten.
//!
//! Defence: before such a command runs, hafen makes sure its own executable
//! is unwritable through any path: it re-executes itself from a read-only,
//! detached bind mount of its binary (`open_tree` + `mount_setattr`, no
//! copy, no mount visible anywhere), or, where the kernel or privileges do
//! not allow that, from a sealed in-memory copy. A binary already on a
//! read-only mount or in a sealed memfd is used as it is.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use rustix::fs::{Mode, OFlags};

use crate::sys;

/// Set in the environment of the re-executed process so a kernel that does
/// not report the protection cannot make hafen loop.
const MARKER: &str = "_HAFEN_EXE_PROTECTED";

/// Whether the running executable cannot be written to.
pub fn is_protected() -> bool {
    let Ok(exe) = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let read_only_mount = rustix::fs::fstatvfs(&exe)
        .is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    let sealed = sys::get_seals(exe.as_fd()).is_ok_and(|s| s & libc::F_SEAL_WRITE != 0);
    read_only_mount || sealed
}

/// Returns if the executable is protected; otherwise re-executes hafen with
/// the same arguments from a protected copy (and does not return).
///
/// Must be called while the process is single-threaded (it edits the
/// environment).
pub fn ensure_protected() -> io::Result<()> {
    if std::env::var_os(MARKER).is_some() {
        sys::remove_env(MARKER);
        return Ok(());
    }
    if is_protected() {
        return Ok(());
    }
    let fd = read_only_mount().or_else(|e| {
        tracing::debug!(
            "read-only bind mount of the binary not possible ({e}); using a sealed copy"
        );
        sealed_copy()
    })?;
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.into_vec()).ok())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.into_vec()).ok()
        })
        .collect();
    env.push(CString::new(format!("{MARKER}=1")).unwrap_or_default());
    let argv: Vec<&std::ffi::CStr> = args.iter().map(CString::as_c_str).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(CString::as_c_str).collect();
    Err(sys::execveat_fd(fd.as_fd(), &argv, &envp))
}

/// An executable fd of the binary at `path` that nothing can write to: a
/// read-only detached bind mount of it, or a sealed in-memory copy. For a
/// program that enters containers and that another process starts (the
/// shim): execute it through `/proc/self/fd/<fd>`.
pub fn protected(path: &std::path::Path) -> io::Result<OwnedFd> {
    read_only_mount_of(path).or_else(|e| {
        tracing::debug!(
            "read-only bind mount of {} not possible ({e}); using a sealed copy",
            path.display()
        );
        sealed_copy_of(path)
    })
}

/// A read-only detached bind mount of the running binary.
fn read_only_mount() -> io::Result<OwnedFd> {
    read_only_mount_of(std::path::Path::new("/proc/self/exe"))
}

fn read_only_mount_of(path: &std::path::Path) -> io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    sys::mount_setattr(fd.as_fd(), c"", libc::AT_EMPTY_PATH as u32, 0x1, 0, 0, None)?;
    Ok(fd)
}

/// A sealed memfd copy of the running binary.
fn sealed_copy() -> io::Result<OwnedFd> {
    sealed_copy_of(std::path::Path::new("/proc/self/exe"))
}

fn sealed_copy_of(path: &std::path::Path) -> io::Result<OwnedFd> {
    let memfd = sys::memfd_create(c"hafen", libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)?;
    let mut src = std::fs::File::open(path)?;
    let mut dst = std::fs::File::from(memfd.try_clone()?);
    io::copy(&mut src, &mut dst)?;
    sys::add_seals(
        memfd.as_fd(),
        libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
    )?;
    Ok(memfd)
}
