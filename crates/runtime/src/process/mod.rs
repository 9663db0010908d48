//! The container's process: everything between "the namespaces and root
//! filesystem are ready" and `execve`, shared by a container's init and by
//! processes started with `exec`.
//!
//! A [`ProcessPlan`] is computed by the runtime before it forks (so that a bad
//! configuration fails early and the child has nothing left to parse); the
//! child then calls [`ProcessPlan::finalize`] and [`ProcessPlan::exec`].

pub mod caps;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use hafen_oci::runtime::{IOPriorityClass, PosixRlimit, Process};

use crate::seccomp::{CompiledFilter, SeccompError};
use caps::{CapError, CapMasks};

/// Errors while finishing the process set-up inside the container.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// An rlimit could not be set.
    #[error(transparent)]
    Rlimit(#[from] crate::rlimits::RlimitError),
    /// Capabilities could not be set.
    #[error(transparent)]
    Caps(#[from] CapError),
    /// The seccomp filter could not be loaded.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The user or groups could not be set.
    #[error("cannot switch to {what}: {source}")]
    User {
        /// What was being set.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The working directory is unusable.
    #[error("chdir to cwd ({cwd:?}) set in config.json failed: {source}")]
    Cwd {
        /// The directory.
        cwd: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The working directory is outside the container (CVE-2024-21626).
    #[error(
        "current working directory is outside of the container's root: possible container breakout detected"
    )]
    CwdOutside,
    /// The program was not found.
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    /// The program cannot be executed.
    #[error("exec: {0:?}: permission denied")]
    NotExecutable(String),
    /// execve failed.
    #[error("exec: {program:?}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// The error.
        source: io::Error,
    },
    /// A kernel call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A string contains a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
}

fn sys(what: &'static str) -> impl Fn(rustix::io::Errno) -> ProcessError {
    move |e| ProcessError::Sys {
        what,
        source: e.into(),
    }
}

/// Linux security module labels to apply at exec.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// AppArmor profile (only set when the host has AppArmor enabled).
    pub apparmor: Option<String>,
    /// SELinux label (only set when the host has SELinux enabled).
    pub selinux: Option<String>,
}

impl Labels {
    /// The labels of a process, keeping only what the host can apply.
    pub fn for_host(apparmor: Option<&str>, selinux: Option<&str>) -> Self {
        let apparmor_on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        let selinux_on = Path::new("/sys/fs/selinux/enforce").exists();
        let keep = |label: Option<&str>, on: bool, what: &str| {
            let label = label.filter(|l| !l.is_empty())?;
            if on {
                Some(label.to_string())
            } else {
                tracing::debug!("{what} is not enabled on this host; label {label:?} not applied");
                None
            }
        };
        Labels {
            apparmor: keep(apparmor, apparmor_on, "AppArmor"),
            selinux: keep(selinux, selinux_on, "SELinux"),
        }
    }
}

/// Everything needed to turn the prepared child into the container's process.
#[derive(Debug)]
pub struct ProcessPlan {
    /// `args`.
    pub args: Vec<CString>,
    /// `env`.
    pub env: Vec<CString>,
    /// `cwd`.
    pub cwd: PathBuf,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// umask, when set.
    pub umask: Option<u32>,
    /// Capability sets.
    pub caps: CapMasks,
    /// rlimits.
    pub rlimits: Vec<PosixRlimit>,
    /// `noNewPrivileges`.
    pub no_new_privileges: bool,
    /// LSM labels.
    pub labels: Labels,
    /// The seccomp filter.
    pub seccomp: Option<CompiledFilter>,
    /// `ioPriority` as the kernel encodes it.
    pub io_priority: Option<u32>,
    /// Whether the process gets a terminal.
    pub terminal: bool,
    /// `consoleSize` (rows, columns).
    pub console_size: Option<(u16, u16)>,
    /// How many fds after stdio are passed to the process (`--preserve-fds`
    /// and socket activation).
    pub extra_fds: u32,
    /// Where the seccomp notification fd goes (SCMP_ACT_NOTIFY).
    pub notify: Option<NotifyTarget>,
}

/// A seccomp listener: the connected socket and the state it receives with
/// the notification fd.
#[derive(Debug)]
pub struct NotifyTarget {
    /// Connected to `linux.seccomp.listenerPath`.
    pub socket: OwnedFd,
    /// The container process state (JSON).
    pub state: String,
}

fn cstrings(list: &[String], what: &'static str) -> Result<Vec<CString>, ProcessError> {
    list.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ProcessError::Nul(what)))
        .collect()
}

impl ProcessPlan {
    /// Builds the plan from a `process` object.
    pub fn new(process: &Process, seccomp: Option<CompiledFilter>) -> Result<Self, ProcessError> {
        let user = process.user();
        let io_priority = process.io_priority().as_ref().map(|p| {
            let class = match p.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            (class << 13) | (p.priority().clamp(0, 7) as u32)
        });
        Ok(ProcessPlan {
            args: cstrings(process.args().as_deref().unwrap_or(&[]), "process.args")?,
            env: cstrings(process.env().as_deref().unwrap_or(&[]), "process.env")?,
            cwd: process.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            caps: CapMasks::from_spec(process.capabilities().as_ref()),
            rlimits: process.rlimits().clone().unwrap_or_default(),
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            labels: Labels::for_host(
                process.apparmor_profile().as_deref(),
                process.selinux_label().as_deref(),
            ),
            seccomp,
            io_priority,
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .filter(|b| b.height() > 0 && b.width() > 0)
                .map(|b| {
                    (
                        b.height().min(u16::MAX.into()) as u16,
                        b.width().min(u16::MAX.into()) as u16,
                    )
                }),
            extra_fds: 0,
            notify: None,
        })
    }

    /// The value of an environment variable of the process.
    fn env_var(&self, name: &str) -> Option<&[u8]> {
        self.env.iter().find_map(|e| {
            let bytes = e.as_bytes();
            bytes
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }

    /// Finishes the set-up inside the container (root filesystem in place):
    /// limits, user, capabilities, working directory, labels. Returns the
    /// program to execute. Nothing after this needs privileges.
    pub fn finalize(&mut self) -> Result<CString, ProcessError> {
        if self.env_var("HOME").is_none() {
            let home = home_of(self.uid).unwrap_or_else(|| "/".to_string());
            if let Ok(entry) = CString::new(format!("HOME={home}")) {
                self.env.push(entry);
            }
        }
        // Found before the seccomp filter is loaded: the filter may refuse
        // the calls this needs.
        let program = self.resolve()?;
        // Every inherited fd beyond stdio and the passed ones is closed at
        // exec; fds opened after this point are the runtime's own, all
        // close-on-exec. Done now, as the filter may not allow close_range.
        crate::sys::cloexec_from(3 + self.extra_fds).map_err(|source| ProcessError::Sys {
            what: "cannot close inherited fds",
            source,
        })?;
        crate::rlimits::apply(&self.rlimits)?;
        if let Some(prio) = self.io_priority {
            crate::sys::ioprio_set(prio).map_err(|source| ProcessError::Sys {
                what: "cannot set process.ioPriority",
                source,
            })?;
        }
        // The working directory first, as root: a directory only the
        // container's user may enter is tried again after the user change.
        let chdir_early = match rustix::process::chdir(&self.cwd) {
            Ok(()) => {
                verify_cwd()?;
                true
            }
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => false,
            Err(e) => {
                return Err(ProcessError::Cwd {
                    cwd: self.cwd.clone(),
                    source: e.into(),
                });
            }
        };
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it
        // happens now, before the capabilities go.
        if !self.no_new_privileges {
            self.load_seccomp()?;
        }
        caps::drop_bounding(&self.caps)?;
        rustix::thread::set_keep_capabilities(true).map_err(sys("cannot keep capabilities"))?;
        self.switch_user()?;
        if !chdir_early {
            rustix::process::chdir(&self.cwd).map_err(|e| ProcessError::Cwd {
                cwd: self.cwd.clone(),
                source: e.into(),
            })?;
            verify_cwd()?;
        }
        rustix::thread::set_keep_capabilities(false).map_err(sys("cannot clear keep-caps"))?;
        caps::apply(&self.caps)?;
        // runc's default when the configuration sets none.
        let mask = self.umask.unwrap_or(0o022);
        rustix::process::umask(rustix::fs::Mode::from_bits_truncate(mask));
        if self.no_new_privileges {
            rustix::thread::set_no_new_privs(true).map_err(sys("cannot set no_new_privs"))?;
        }
        self.apply_labels()?;
        Ok(program)
    }

    /// Loads the filter and hands a notification fd to the listener.
    fn load_seccomp(&self) -> Result<(), ProcessError> {
        let Some(filter) = &self.seccomp else {
            return Ok(());
        };
        if let Some(fd) = filter.load()? {
            if let Some(target) = &self.notify {
                crate::console::send_fd_with(
                    target.socket.as_fd(),
                    fd.as_fd(),
                    target.state.as_bytes(),
                )
                .map_err(|source| ProcessError::Sys {
                    what: "cannot send the seccomp fd to the listener",
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn switch_user(&self) -> Result<(), ProcessError> {
        use rustix::process::{Gid, Uid};
        let groups_allowed =
            std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() == "allow");
        if groups_allowed {
            let groups: Vec<Gid> = self
                .additional_gids
                .iter()
                .map(|&g| Gid::from_raw(g))
                .collect();
            rustix::thread::set_thread_groups(&groups).map_err(|e| ProcessError::User {
                what: format!("additional groups {:?}", self.additional_gids),
                source: e.into(),
            })?;
        }
        let gid = Gid::from_raw(self.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| ProcessError::User {
            what: format!("gid {}", self.gid),
            source: e.into(),
        })?;
        let uid = Uid::from_raw(self.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| ProcessError::User {
            what: format!("uid {}", self.uid),
            source: e.into(),
        })?;
        Ok(())
    }

    fn apply_labels(&self) -> Result<(), ProcessError> {
        if let Some(profile) = &self.labels.apparmor {
            let text = format!("exec {profile}");
            std::fs::write("/proc/thread-self/attr/apparmor/exec", &text)
                .or_else(|_| std::fs::write("/proc/thread-self/attr/exec", &text))
                .map_err(|source| ProcessError::Sys {
                    what: "cannot apply the AppArmor profile",
                    source,
                })?;
        }
        if let Some(label) = &self.labels.selinux {
            std::fs::write("/proc/thread-self/attr/exec", label).map_err(|source| {
                ProcessError::Sys {
                    what: "cannot apply the SELinux label",
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Finds the program: a path with a slash as given, else through `PATH`
    /// of the process's environment.
    fn resolve(&self) -> Result<CString, ProcessError> {
        let program = self.args.first().ok_or(ProcessError::Nul("process.args"))?;
        let name = program.to_string_lossy().into_owned();
        let bytes = program.as_bytes();
        if bytes.contains(&b'/') {
            check_executable(program, &name)?;
            return Ok(program.clone());
        }
        let path = self.env_var("PATH").unwrap_or(b"");
        for dir in path.split(|&b| b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(bytes);
            let Ok(candidate) = CString::new(full) else {
                continue;
            };
            match check_executable(&candidate, &name) {
                Ok(()) => return Ok(candidate),
                Err(ProcessError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ProcessError::NotFound(name))
    }

    /// Executes the program: the last step, after which the process is the
    /// container's program. Restores default signal handling and, with
    /// no_new_privs, loads the seccomp filter as late as possible.
    pub fn exec(&self, program: &CStr) -> ProcessError {
        if let Err(e) = crate::sys::reset_signals() {
            return ProcessError::Sys {
                what: "cannot reset signals",
                source: e,
            };
        }
        if self.no_new_privileges {
            if let Err(e) = self.load_seccomp() {
                return e;
            }
        }
        let argv: Vec<&CStr> = self.args.iter().map(CString::as_c_str).collect();
        let envp: Vec<&CStr> = self.env.iter().map(CString::as_c_str).collect();
        let err = crate::sys::execve(program, &argv, &envp);
        let name = program.to_string_lossy().into_owned();
        match err.raw_os_error() {
            Some(libc::ENOENT) => ProcessError::NotFound(name),
            Some(libc::EACCES) => ProcessError::NotExecutable(name),
            _ => ProcessError::Exec {
                program: name,
                source: err,
            },
        }
    }
}

/// A path that names a regular file with an execute bit, as Go's
/// `exec.LookPath` (and so runc) checks it; whether the user may really
/// execute it is up to `execve`.
fn check_executable(path: &CStr, name: &str) -> Result<(), ProcessError> {
    use rustix::fs::FileType;
    let stat = match rustix::fs::stat(path) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {
            return Err(ProcessError::NotFound(name.to_string()));
        }
        Err(rustix::io::Errno::ACCESS) => {
            return Err(ProcessError::NotExecutable(name.to_string()));
        }
        Err(e) => {
            return Err(ProcessError::Exec {
                program: name.to_string(),
                source: e.into(),
            });
        }
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || stat.st_mode & 0o111 == 0 {
        return Err(ProcessError::NotExecutable(name.to_string()));
    }
    Ok(())
}

/// The working directory must be inside the container's root: a leaked fd
/// of the host used as cwd shows up as "(unreachable)" or fails.
fn verify_cwd() -> Result<(), ProcessError> {
    match rustix::process::getcwd(Vec::new()) {
        Ok(cwd) if cwd.as_bytes().first() == Some(&b'/') => Ok(()),
        // A seccomp profile that refuses getcwd leaves nothing to check
        // with; the runtime holds no directory fd the cwd could come from.
        Err(rustix::io::Errno::PERM | rustix::io::Errno::NOSYS) => Ok(()),
        _ => Err(ProcessError::CwdOutside),
    }
}

/// The home directory of `uid` in the container's `/etc/passwd`.
fn home_of(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_string())
    })
}

/// The lines of a pid/gid/uid style file, for tests.
#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> ProcessPlan {
        ProcessPlan::new(&serde_json::from_str(json).unwrap(), None).unwrap()
    }

    #[test]
    fn resolves_through_path() {
        let p = plan(
            r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/nonexistent:/bin"]}"#,
        );
        assert_eq!(p.resolve().unwrap().as_bytes(), b"/bin/sh");
        let p = plan(
            r#"{"args":["no-such-program"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#,
        );
        assert!(matches!(p.resolve(), Err(ProcessError::NotFound(_))));
        let p = plan(r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"env":[]}"#);
        assert!(matches!(p.resolve(), Err(ProcessError::NotFound(_))));
        let p = plan(r#"{"args":["/etc"],"cwd":"/","user":{"uid":0,"gid":0}}"#);
        assert!(matches!(p.resolve(), Err(ProcessError::NotExecutable(_))));
        let p = plan(r#"{"args":["/etc/passwd"],"cwd":"/","user":{"uid":0,"gid":0}}"#);
        assert!(matches!(p.resolve(), Err(ProcessError::NotExecutable(_))));
    }

    #[test]
    fn io_priority_encoding() {
        let p = plan(
            r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"ioPriority":{"class":"IOPRIO_CLASS_BE","priority":4}}"#,
        );
        assert_eq!(p.io_priority, Some((2 << 13) | 4));
    }

    #[test]
    fn nul_bytes_are_refused() {
        let process: Process =
            serde_json::from_str(r#"{"args":["a\u0000b"],"cwd":"/","user":{"uid":0,"gid":0}}"#)
                .unwrap();
        assert!(matches!(
            ProcessPlan::new(&process, None),
            Err(ProcessError::Nul(_))
        ));
    }
}
