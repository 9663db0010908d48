//! Docker's default seccomp profile, kept as data: an allow-list with the
//! default action "fail with EPERM", plus groups of syscalls allowed only
//! with a capability, on an architecture, or from a kernel version on, and
//! argument-filtered entries (`socket` families, `personality` personas,
//! `clone` without namespace flags).
//!
//! The table follows moby's `profiles/seccomp/default.json`; it is written
//! here in hafen's own form and turned into a [`Profile`], resolved like any
//! Docker-format profile.

use hafen_oci::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::HostInfo;
use super::KernelVersion;
use super::seccomp_docker::{Arg, Filter, Profile, Rule};

/// The syscalls every container may make (the profile's main allow-list).
/// Names unknown on an architecture are skipped when the filter is compiled.
const ALWAYS_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Architectures by host architecture: a container on an x86_64 host may
/// also run i386 and x32 code, and so on.
const ARCH_MAP: &[(Arch, &[Arch])] = &[
    (
        Arch::ScmpArchX86_64,
        &[Arch::ScmpArchX86, Arch::ScmpArchX32],
    ),
    (Arch::ScmpArchAarch64, &[Arch::ScmpArchArm]),
    (
        Arch::ScmpArchMips64,
        &[Arch::ScmpArchMips, Arch::ScmpArchMips64n32],
    ),
    (
        Arch::ScmpArchMips64n32,
        &[Arch::ScmpArchMips, Arch::ScmpArchMips64],
    ),
    (
        Arch::ScmpArchMipsel64,
        &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64n32],
    ),
    (
        Arch::ScmpArchMipsel64n32,
        &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64],
    ),
    (Arch::ScmpArchS390x, &[Arch::ScmpArchS390]),
    (Arch::ScmpArchRiscv64, &[]),
    (Arch::ScmpArchLoongarch64, &[]),
];

/// What a group of syscalls gets.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Allowed.
    Allow,
    /// Fails with this errno.
    Fail(i32),
}

/// One argument check.
#[derive(Debug, Clone, Copy)]
struct Check {
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
}

const fn arg_eq(index: usize, value: u64) -> Check {
    Check {
        index,
        op: LinuxSeccompOperator::ScmpCmpEq,
        value,
    }
}

const fn arg_lt(index: usize, value: u64) -> Check {
    Check {
        index,
        op: LinuxSeccompOperator::ScmpCmpLt,
        value,
    }
}

const fn arg_gt(index: usize, value: u64) -> Check {
    Check {
        index,
        op: LinuxSeccompOperator::ScmpCmpGt,
        value,
    }
}

/// The argument has none of the bits of `mask` set (masked compare with 0).
const fn arg_without_bits(index: usize, mask: u64) -> Check {
    Check {
        index,
        op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        value: mask,
    }
}

/// When a group is part of a container's profile: all of the conditions
/// hold (empty lists hold).
#[derive(Debug, Clone, Copy)]
struct When {
    /// The container has all of these capabilities.
    caps: &'static [&'static str],
    /// The container has none of these capabilities.
    not_caps: &'static [&'static str],
    /// The host is one of these architectures (Docker's names).
    arches: &'static [&'static str],
    /// The host is none of these architectures.
    not_arches: &'static [&'static str],
    /// The running kernel is at least this `(version, major revision)`.
    min_kernel: Option<(u32, u32)>,
}

const ALWAYS: When = When {
    caps: &[],
    not_caps: &[],
    arches: &[],
    not_arches: &[],
    min_kernel: None,
};

#[derive(Debug, Clone, Copy)]
struct Group {
    names: &'static [&'static str],
    verdict: Verdict,
    /// All must match (for the group to apply to a call).
    args: &'static [Check],
    when: When,
}

const fn allow(names: &'static [&'static str], when: When) -> Group {
    Group {
        names,
        verdict: Verdict::Allow,
        args: &[],
        when,
    }
}

const fn allow_if(names: &'static [&'static str], args: &'static [Check], when: When) -> Group {
    Group {
        names,
        verdict: Verdict::Allow,
        args,
        when,
    }
}

const fn with_caps(caps: &'static [&'static str]) -> When {
    When { caps, ..ALWAYS }
}

const fn on_arches(arches: &'static [&'static str]) -> When {
    When { arches, ..ALWAYS }
}

// Socket families refused: AF_ALG (kernel crypto) and AF_VSOCK.
const AF_ALG: u64 = 38;
const AF_NFC: u64 = 39;
const AF_VSOCK: u64 = 40;

// personality(2) personas allowed (include/uapi/linux/personality.h).
const PER_LINUX: u64 = 0;
const PER_LINUX32: u64 = 0x0008;
const UNAME26: u64 = 0x0002_0000;
/// `personality(0xffffffff)` only reads the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// The `clone` flags that create namespaces (which need CAP_SYS_ADMIN):
/// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
/// CLONE_NEWPID, CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

const ENOSYS: i32 = 38;

/// The profile's groups, in order.
const GROUPS: &[Group] = &[
    allow(ALWAYS_ALLOWED, ALWAYS),
    // Needs a kernel where ptrace cannot get around seccomp (4.8).
    allow(
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        When {
            min_kernel: Some((4, 8)),
            ..ALWAYS
        },
    ),
    allow_if(&["socket"], &[arg_lt(0, AF_ALG)], ALWAYS),
    allow_if(&["socket"], &[arg_eq(0, AF_NFC)], ALWAYS),
    allow_if(&["socket"], &[arg_gt(0, AF_VSOCK)], ALWAYS),
    allow_if(&["personality"], &[arg_eq(0, PER_LINUX)], ALWAYS),
    allow_if(&["personality"], &[arg_eq(0, PER_LINUX32)], ALWAYS),
    allow_if(&["personality"], &[arg_eq(0, UNAME26)], ALWAYS),
    allow_if(
        &["personality"],
        &[arg_eq(0, UNAME26 | PER_LINUX32)],
        ALWAYS,
    ),
    allow_if(&["personality"], &[arg_eq(0, PERSONALITY_QUERY)], ALWAYS),
    // Architecture-specific syscalls.
    allow(
        &["sync_file_range2", "swapcontext"],
        on_arches(&["ppc64le"]),
    ),
    allow(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        on_arches(&["arm", "arm64"]),
    ),
    allow(&["arch_prctl"], on_arches(&["amd64", "x32"])),
    allow(&["modify_ldt"], on_arches(&["amd64", "x32", "x86"])),
    allow(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        on_arches(&["s390", "s390x"]),
    ),
    allow(&["riscv_flush_icache"], on_arches(&["riscv64"])),
    // What capabilities open up.
    allow(&["open_by_handle_at"], with_caps(&["CAP_DAC_READ_SEARCH"])),
    allow(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        with_caps(&["CAP_SYS_ADMIN"]),
    ),
    // Without CAP_SYS_ADMIN: clone without namespace flags (the flags are
    // the second argument on s390), and clone3 (whose flags seccomp cannot
    // see) fails with ENOSYS so that libc falls back to clone.
    allow_if(
        &["clone"],
        &[arg_without_bits(0, CLONE_NAMESPACE_FLAGS)],
        When {
            not_caps: &["CAP_SYS_ADMIN"],
            not_arches: &["s390", "s390x"],
            ..ALWAYS
        },
    ),
    allow_if(
        &["clone"],
        &[arg_without_bits(1, CLONE_NAMESPACE_FLAGS)],
        When {
            not_caps: &["CAP_SYS_ADMIN"],
            arches: &["s390", "s390x"],
            ..ALWAYS
        },
    ),
    Group {
        names: &["clone3"],
        verdict: Verdict::Fail(ENOSYS),
        args: &[],
        when: When {
            not_caps: &["CAP_SYS_ADMIN"],
            ..ALWAYS
        },
    },
    allow(&["reboot"], with_caps(&["CAP_SYS_BOOT"])),
    allow(&["chroot"], with_caps(&["CAP_SYS_CHROOT"])),
    allow(
        &["delete_module", "init_module", "finit_module"],
        with_caps(&["CAP_SYS_MODULE"]),
    ),
    allow(&["acct"], with_caps(&["CAP_SYS_PACCT"])),
    allow(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        with_caps(&["CAP_SYS_PTRACE"]),
    ),
    allow(&["iopl", "ioperm"], with_caps(&["CAP_SYS_RAWIO"])),
    allow(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        with_caps(&["CAP_SYS_TIME"]),
    ),
    allow(&["vhangup"], with_caps(&["CAP_SYS_TTY_CONFIG"])),
    allow(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        with_caps(&["CAP_SYS_NICE"]),
    ),
    allow(&["syslog"], with_caps(&["CAP_SYSLOG"])),
    allow(&["bpf"], with_caps(&["CAP_BPF"])),
    allow(&["perf_event_open"], with_caps(&["CAP_PERFMON"])),
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// The table as a profile.
fn profile() -> Profile {
    let rules = GROUPS
        .iter()
        .map(|g| {
            let (action, errno_ret) = match g.verdict {
                Verdict::Allow => (LinuxSeccompAction::ScmpActAllow, None),
                Verdict::Fail(errno) => {
                    (LinuxSeccompAction::ScmpActErrno, u32::try_from(errno).ok())
                }
            };
            let args = g
                .args
                .iter()
                .map(|c| Arg {
                    index: c.index,
                    op: c.op,
                    value: c.value,
                    value_two: None,
                })
                .collect();
            let kernel = g
                .when
                .min_kernel
                .map(|(kernel, major)| KernelVersion { kernel, major });
            Rule {
                names: strings(g.names),
                action,
                errno_ret,
                args,
                includes: Filter {
                    caps: strings(g.when.caps),
                    arches: strings(g.when.arches),
                    min_kernel: kernel,
                },
                excludes: Filter {
                    caps: strings(g.when.not_caps),
                    arches: strings(g.when.not_arches),
                    min_kernel: None,
                },
            }
        })
        .collect();
    Profile {
        default_action: LinuxSeccompAction::ScmpActErrno,
        default_errno_ret: Some(1),
        architectures: Vec::new(),
        arch_map: ARCH_MAP
            .iter()
            .map(|(arch, subs)| (*arch, subs.to_vec()))
            .collect(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        rules,
    }
}

/// Docker's default seccomp profile for a container whose bounding set is
/// `capabilities` (e.g. [`super::default_capabilities`]), on this host:
/// everything not allowed fails with EPERM; the architectures are the
/// host's with its sub-architectures; groups that need a capability, an
/// architecture or a kernel version are included only when the container
/// and host qualify.
pub fn docker_default_seccomp(capabilities: &[String]) -> LinuxSeccomp {
    docker_default_seccomp_for(&HostInfo::current(), capabilities)
}

/// [`docker_default_seccomp`] for a given host.
///
/// Building the OCI objects cannot fail for this table; if oci-spec ever
/// refused one, the result would be a profile that refuses every syscall
/// (never one with fewer restrictions), and the reason is logged.
pub fn docker_default_seccomp_for(host: &HostInfo, capabilities: &[String]) -> LinuxSeccomp {
    match profile().resolve(host, capabilities) {
        Ok(spec) => spec,
        Err(e) => {
            tracing::error!("Docker's default seccomp profile: {e}; refusing every syscall");
            let mut spec = LinuxSeccomp::default();
            spec.set_default_action(LinuxSeccompAction::ScmpActErrno);
            spec.set_default_errno_ret(Some(1));
            spec
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::profiles::{all_capabilities, apply_cap_changes, default_capabilities};
    use crate::seccomp::{CompiledFilter, bpf, compile};

    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const EPERM: u32 = RET_ERRNO | 1;
    const RET_ENOSYS: u32 = RET_ERRNO | 38;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    #[cfg(target_arch = "x86_64")]
    const NATIVE: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const NATIVE: u32 = 0xc000_00b7;

    // Flags glibc passes to clone for a thread.
    const THREAD_FLAGS: u64 = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;

    fn data(arch: u32, nr: u32, args: [u64; 6]) -> Vec<u8> {
        let mut d = Vec::with_capacity(64);
        d.extend_from_slice(&nr.to_ne_bytes());
        d.extend_from_slice(&arch.to_ne_bytes());
        d.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            d.extend_from_slice(&a.to_ne_bytes());
        }
        d
    }

    fn call(f: &CompiledFilter, name: &str, args: [u64; 6]) -> u32 {
        let nr = syscalls::Sysno::from_str(name).expect(name).id();
        let nr = u32::try_from(nr).expect("syscall number");
        bpf::interpret(&f.program, &data(NATIVE, nr, args))
    }

    fn arg0(value: u64) -> [u64; 6] {
        [value, 0, 0, 0, 0, 0]
    }

    fn filter_for(caps: &[String]) -> CompiledFilter {
        compile(&docker_default_seccomp(caps)).expect("the default profile compiles")
    }

    fn names(spec: &LinuxSeccomp) -> Vec<&str> {
        spec.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn default_profile_with_default_caps() {
        let spec = docker_default_seccomp(&default_capabilities());
        assert_eq!(spec.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(spec.default_errno_ret(), Some(1));
        let f = compile(&spec).expect("compiles");
        for name in [
            "read",
            "write",
            "openat",
            "exit_group",
            "execve",
            "futex",
            "chroot",
        ] {
            assert_eq!(call(&f, name, [0; 6]), RET_ALLOW, "{name}");
        }
        // Threads and fork-like clones are fine; namespaces are not.
        assert_eq!(call(&f, "clone", arg0(THREAD_FLAGS)), RET_ALLOW);
        assert_eq!(call(&f, "clone", arg0(libc::SIGCHLD as u64)), RET_ALLOW);
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        assert_eq!(call(&f, "clone", arg0(newns)), EPERM);
        assert_eq!(call(&f, "clone", arg0(libc::CLONE_NEWUSER as u64)), EPERM);
        assert_eq!(call(&f, "clone3", [0; 6]), RET_ENOSYS);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "reboot",
            "init_module",
            "bpf",
        ] {
            assert_eq!(call(&f, name, [0; 6]), EPERM, "{name}");
        }
        // Without CAP_SYS_PTRACE, ptrace is allowed from kernel 4.8 on.
        let modern = HostInfo::current().kernel.is_some_and(|k| {
            k >= KernelVersion {
                kernel: 4,
                major: 8,
            }
        });
        let ptrace = if modern { RET_ALLOW } else { EPERM };
        assert_eq!(call(&f, "ptrace", [0; 6]), ptrace);
        // Argument-filtered syscalls.
        assert_eq!(call(&f, "personality", arg0(PER_LINUX)), RET_ALLOW);
        assert_eq!(call(&f, "personality", arg0(PERSONALITY_QUERY)), RET_ALLOW);
        assert_eq!(call(&f, "personality", arg0(0x0040_0000)), EPERM);
        assert_eq!(call(&f, "socket", arg0(libc::AF_INET as u64)), RET_ALLOW);
        assert_eq!(call(&f, "socket", arg0(libc::AF_NETLINK as u64)), RET_ALLOW);
        assert_eq!(call(&f, "socket", arg0(AF_ALG)), EPERM);
        assert_eq!(call(&f, "socket", arg0(AF_NFC)), RET_ALLOW);
        assert_eq!(call(&f, "socket", arg0(AF_VSOCK)), EPERM);
        assert_eq!(call(&f, "socket", arg0(AF_VSOCK + 1)), RET_ALLOW);
    }

    #[test]
    fn cap_sys_admin_opens_mount_and_namespaces() {
        let caps = apply_cap_changes(default_capabilities(), &["SYS_ADMIN".to_string()], &[])
            .expect("valid cap");
        let f = filter_for(&caps);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone3",
            "sethostname",
        ] {
            assert_eq!(call(&f, name, [0; 6]), RET_ALLOW, "{name}");
        }
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        assert_eq!(call(&f, "clone", arg0(newns)), RET_ALLOW);
        // Other capabilities' groups stay closed.
        assert_eq!(call(&f, "reboot", [0; 6]), EPERM);
        assert_eq!(call(&f, "init_module", [0; 6]), EPERM);
        assert_eq!(call(&f, "read", [0; 6]), RET_ALLOW);
    }

    #[test]
    fn capabilities_open_their_groups() {
        let f = filter_for(&all_capabilities());
        for name in [
            "reboot",
            "init_module",
            "acct",
            "kcmp",
            "settimeofday",
            "vhangup",
            "mbind",
            "syslog",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "mount",
        ] {
            assert_eq!(call(&f, name, [0; 6]), RET_ALLOW, "{name}");
        }
        // Dropping CAP_SYS_CHROOT closes chroot, which the default set allows.
        let caps = apply_cap_changes(default_capabilities(), &[], &["sys_chroot".to_string()])
            .expect("valid cap");
        assert_eq!(call(&filter_for(&caps), "chroot", [0; 6]), EPERM);
        // Only CAP_SYS_BOOT: reboot, but no mount.
        let f = filter_for(&["CAP_SYS_BOOT".to_string()]);
        assert_eq!(call(&f, "reboot", [0; 6]), RET_ALLOW);
        assert_eq!(call(&f, "mount", [0; 6]), EPERM);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn i386_code_is_filtered_too() {
        let spec = docker_default_seccomp(&default_capabilities());
        assert_eq!(
            spec.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let f = compile(&spec).expect("compiles");
        let i386 = |name: &str| {
            let nr = syscalls::x86::Sysno::from_str(name).expect(name).id();
            let nr = u32::try_from(nr).expect("syscall number");
            bpf::interpret(&f.program, &data(AUDIT_ARCH_I386, nr, [0; 6]))
        };
        assert_eq!(i386("read"), RET_ALLOW);
        assert_eq!(i386("socketcall"), RET_ALLOW);
        assert_eq!(i386("mount"), EPERM);
        assert_eq!(i386("modify_ldt"), RET_ALLOW);
    }

    /// Loads the filter into one thread of the test process (seccomp
    /// filters and no_new_privs are per thread without TSYNC) and checks
    /// what the kernel then does.
    #[test]
    fn the_kernel_enforces_the_default_profile() {
        use rustix::io::Errno;
        use rustix::net::{AddressFamily, SocketType, socket};
        let f = filter_for(&default_capabilities());
        std::thread::spawn(move || {
            rustix::thread::set_no_new_privs(true).expect("no_new_privs");
            f.load().expect("the kernel accepts the filter");
            assert!(std::fs::read("/proc/self/status").is_ok());
            assert!(socket(AddressFamily::UNIX, SocketType::STREAM, None).is_ok());
            for family in [AF_ALG, AF_VSOCK] {
                let family = AddressFamily::from_raw(family as u16);
                let e = socket(family, SocketType::SEQPACKET, None).expect_err("refused");
                assert_eq!(e, Errno::PERM);
            }
            // Paths that do not exist: root would get ENOENT, the filter says EPERM.
            let e = rustix::mount::mount(
                "/nonexistent-hafen-src",
                "/nonexistent-hafen-dst",
                "tmpfs",
                rustix::mount::MountFlags::empty(),
                None,
            )
            .expect_err("refused");
            assert_eq!(e, Errno::PERM);
            // Starting a thread: libc's clone3 gets ENOSYS and falls back to clone.
            let inner = std::thread::spawn(|| rustix::process::getpid().as_raw_nonzero().get());
            assert!(inner.join().expect("inner thread") > 0);
        })
        .join()
        .expect("filtered thread");
    }

    #[test]
    fn host_conditions() {
        let host = |arch: &str, seccomp_arch, kernel: (u32, u32)| HostInfo {
            arch: arch.to_string(),
            seccomp_arch: Some(seccomp_arch),
            kernel: Some(KernelVersion {
                kernel: kernel.0,
                major: kernel.1,
            }),
        };
        let caps = default_capabilities();
        let amd64 = docker_default_seccomp_for(&host("amd64", Arch::ScmpArchX86_64, (6, 1)), &caps);
        let n = names(&amd64);
        assert!(n.contains(&"arch_prctl") && n.contains(&"modify_ldt"));
        assert!(!n.contains(&"set_tls"));
        assert!(n.contains(&"ptrace"));

        let arm64 =
            docker_default_seccomp_for(&host("arm64", Arch::ScmpArchAarch64, (4, 4)), &caps);
        let n = names(&arm64);
        assert!(n.contains(&"set_tls") && n.contains(&"cacheflush"));
        assert!(!n.contains(&"arch_prctl") && !n.contains(&"modify_ldt"));
        assert!(!n.contains(&"ptrace"), "needs 4.8 or CAP_SYS_PTRACE");
        assert_eq!(
            arm64.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );

        // s390x takes clone's flags from the second argument.
        let s390x = docker_default_seccomp_for(&host("s390x", Arch::ScmpArchS390x, (6, 1)), &caps);
        let clone: Vec<_> = s390x
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == "clone"))
            .collect();
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_deref().expect("args")[0];
        assert_eq!((arg.index(), arg.value()), (1, CLONE_NAMESPACE_FLAGS));
        assert_eq!(CLONE_NAMESPACE_FLAGS, 0x7e02_0000);
    }
}
