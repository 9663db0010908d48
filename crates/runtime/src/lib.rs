//! hafen's OCI runtime library.
//!
//! It implements the OCI runtime specification (1.0 through 1.3) on Linux:
//! a container is created from a bundle ([`container::create`]), started
//! ([`container::start`]), signalled, paused, inspected and deleted; more
//! processes can be started in it ([`container::exec`]). The `hafen runtime`
//! command line (and `hafen-runc`) is a thin layer over these functions, and
//! the rest of hafen calls them directly.
//!
//! Layout: `container` holds one lifecycle operation per file (the runtime's
//! side); `init` is the container's first process (the child's side);
//! `process` is what init and exec share (user, capabilities, seccomp,
//! exec); `cgroups`, `seccomp`, `namespaces`, `hooks`, `console` are the
//! kernel facilities. All `unsafe` code is in `sys`.

pub mod bundle;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod features;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod profiles;
pub mod rlimits;
pub mod seccomp;
pub mod self_exe;
pub mod signal;
pub mod spec_default;
pub mod state;
pub mod sync;
pub mod sys;
pub mod tiny_init;
pub mod unix_addr;

use std::path::{Path, PathBuf};

pub use container::{Container, Runtime};
pub use state::Status;

/// Everything that can go wrong in a runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An empty container id.
    #[error("container id cannot be empty")]
    EmptyId,
    /// A container id with characters that are not allowed.
    #[error("invalid container ID format {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    /// No such container.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container with given ID already exists: {0}")]
    AlreadyExists(String),
    /// The operation does not fit the container's status.
    #[error("{0}")]
    WrongState(String),
    /// The bundle or its configuration.
    #[error(transparent)]
    Spec(#[from] bundle::SpecError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// Seccomp.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// Namespaces.
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    /// A hook.
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// The process set-up (checked before forking).
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    /// A signal name.
    #[error(transparent)]
    Signal(#[from] signal::UnknownSignal),
    /// The container's init (or an exec'd process) reported a failure.
    #[error("{0}")]
    Child(String),
    /// The container's init ended before it was ready.
    #[error("the container's process exited during set-up ({0})")]
    ChildDied(String),
    /// A terminal is requested but there is nobody to hand it to.
    #[error("cannot allocate tty if hafen will detach without setting console socket")]
    NeedConsoleSocket,
    /// A console socket is given but no terminal is requested.
    #[error("cannot use console socket if hafen will not detach or allocate tty")]
    UnneededConsoleSocket,
    /// `--preserve-fds` (with any socket-activation fds) passes more fds
    /// than a process can have.
    #[error("--preserve-fds {0} is more fds than a process can have")]
    TooManyFds(u32),
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an I/O error with what was being done.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Same for rustix's errors.
pub(crate) fn errno(what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> Error {
    let what = what.into();
    move |e| Error::Io {
        what,
        source: e.into(),
    }
}

/// The default state directory: `/run/hafen/runtime` for root,
/// `$XDG_RUNTIME_DIR/hafen/runtime` for other users.
pub fn default_root() -> PathBuf {
    if !rustix::process::geteuid().is_root() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return Path::new(&dir).join("hafen/runtime");
        }
    }
    PathBuf::from("/run/hafen/runtime")
}
