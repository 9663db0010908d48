//! Security properties, each attacked from inside a container: leaked file
//! descriptors (CVE-2024-21626), overwriting the runtime through
//! /proc/self/exe (CVE-2019-5736), fork bombs, memory hogs, seccomp.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};

use serde_json::json;
use support::*;

/// `run` from a shell that holds open the fds of `redirections` (without
/// close-on-exec), with extra `run` flags.
fn run_holding_fds(
    rt: &Runtime,
    bundle: &Bundle,
    redirections: &str,
    flags: &[&str],
) -> std::process::Output {
    let script = format!(
        "exec {redirections}; exec {} runtime --root {} run {} --bundle {} {}",
        hafen().display(),
        rt.root.path().display(),
        flags.join(" "),
        bundle.path().display(),
        unique("fd")
    );
    Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn no_host_fd_reaches_the_container() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]);
    // The caller holds fds 5 and 7 (a host directory and a file) without
    // close-on-exec, as a careless engine might.
    let out = run_holding_fds(&rt, &bundle, "5</sys/fs/cgroup 7</etc/hostname", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    let fds: Vec<i64> = r["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    // 0-2 and the fd the checker used to list /proc/self/fd.
    assert!(fds.iter().all(|&fd| fd <= 3), "fds: {}", r["fds"]);
    for f in r["fds"].as_array().unwrap() {
        let target = f["target"].as_str().unwrap();
        assert!(
            !target.contains("cgroup") && !target.contains("hostname"),
            "leaked: {f}"
        );
    }
    assert!(r["cwd"].as_str().unwrap().starts_with('/'));
}

#[test]
fn preserve_fds_passes_exactly_those() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]);
    let out = run_holding_fds(
        &rt,
        &bundle,
        "3</etc/hostname 4</etc/hostname",
        &["--preserve-fds", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    let targets: Vec<String> = r["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}={}", f["fd"], f["target"].as_str().unwrap()))
        .collect();
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("3=") && t.ends_with("/etc/hostname")),
        "{targets:?}"
    );
    assert!(
        !targets
            .iter()
            .any(|t| t.starts_with("4=") && t.ends_with("/etc/hostname")),
        "{targets:?}"
    );
}

#[test]
fn socket_activation_fds_pass_only_when_they_are_for_the_runtime() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]);
    let fd3 = |r: &serde_json::Value| {
        r["fds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["fd"] == 3 && f["target"].as_str().unwrap().ends_with("/etc/hostname"))
    };
    // `$$` is the shell, which then becomes the runtime (exec).
    let out = run_holding_fds(
        &rt,
        &bundle,
        "3</etc/hostname; export LISTEN_FDS=1 LISTEN_PID=$$",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert!(fd3(&r), "{r}");
    assert_eq!(r["env"]["LISTEN_FDS"], "1", "{}", r["env"]);
    assert_eq!(r["env"]["LISTEN_PID"], "1", "for the container's PID 1");
    // Meant for some other process: not passed on.
    let out = run_holding_fds(
        &rt,
        &bundle,
        "3</etc/hostname; export LISTEN_FDS=1 LISTEN_PID=1",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!fd3(&parse_json(&out.stdout)));
}

#[test]
fn preserve_fds_beyond_any_limit_is_refused() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"]);
    for n in ["4294967295", "4294967292", "100000"] {
        let out = run_holding_fds(&rt, &bundle, "3</etc/hostname", &["--preserve-fds", n]);
        assert_eq!(out.status.code(), Some(1), "{n}");
        assert!(stderr(&out).contains("fd"), "{n}: {}", stderr(&out));
    }
    assert!(rt.ok(&["list", "-q"]).is_empty());
}

/// The runtime's own processes inside a container (a created container's
/// init, an exec'd process during its set-up) are hafen. Nothing in the
/// container may reach the hafen binary through them (CVE-2019-5736).
#[test]
fn runtime_processes_in_the_container_are_unreachable() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let c = rt.create(&bundle);
    // PID 1 is hafen, waiting for start; a root process in the container
    // without CAP_SYS_PTRACE cannot open its exe.
    let out = rt.output(&["exec", &c.id, "/checker", "try", "open-exe", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["errno"], libc::EACCES, "{r}");
}

#[test]
fn the_runtime_binary_is_read_only_through_proc_exe() {
    // Work on a copy of hafen, so that a failure cannot damage the binary
    // under test.
    let tools = tempfile::tempdir().unwrap();
    let runtime = tools.path().join("hafen-victim");
    std::fs::copy(hafen(), &runtime).unwrap();
    let before = std::fs::read(&runtime).unwrap();
    let root = tempfile::tempdir().unwrap();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let id = unique("ro");
    let run = |args: &[&str]| {
        Command::new(&runtime)
            .arg("runtime")
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]).success());
    let state: serde_json::Value = serde_json::from_slice(
        &Command::new(&runtime)
            .arg("runtime")
            .arg("--root")
            .arg(root.path())
            .args(["state", &id])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pid = state["pid"].as_i64().unwrap();
    // What an attacker holds: the init's executable, kept after it is gone.
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    assert!(run(&["delete", "--force", &id]).success());
    let reopened = std::fs::OpenOptions::new().write(true).open(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&exe)
    ));
    let err =
        reopened.expect_err("the runtime binary must not be writable through /proc/<pid>/exe");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(
        std::fs::read(&runtime).unwrap(),
        before,
        "the runtime binary is unchanged"
    );
}

#[test]
fn a_fork_bomb_is_contained_by_pids_limit() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "forkbomb", "1000"])
        .with(|c| c["linux"]["resources"]["pids"] = json!({"limit": 20}));
    let r = rt.run_checker(&bundle);
    let forked = r["forked"].as_u64().unwrap();
    assert!(forked < 20, "{r}");
    assert_eq!(r["errno"], libc::EAGAIN);
    // The host can still start processes.
    assert!(Command::new("true").status().unwrap().success());
}

#[test]
fn a_memory_hog_is_oom_killed_and_the_host_is_fine() {
    let rt = Runtime::default();
    let limit = 64 << 20;
    let bundle = Bundle::new(&["/checker", "hog", "512"]).with(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    });
    let (out, _c) = rt.run(&bundle);
    assert_eq!(
        out.status.code(),
        Some(137),
        "killed by SIGKILL (OOM): {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("allocated_mib"),
        "the hog never finished"
    );
    assert!(Command::new("true").status().unwrap().success());
}

#[test]
fn seccomp_denies_what_the_profile_denies() {
    let rt = Runtime::default();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    let run = |args: &[&str]| {
        let bundle = Bundle::new(args).with(|c| c["linux"]["seccomp"] = profile.clone());
        rt.run_checker(&bundle)
    };
    let r = run(&["/checker", "try", "mkdir", "/tmp/x"]);
    assert_eq!(
        (r["ok"].as_bool(), r["errno"].as_i64()),
        (Some(false), Some(42))
    );
    let r = run(&["/checker", "try", "getcwd"]);
    assert_eq!(r["errno"], libc::EPERM);
    let r = run(&["/checker", "try", "personality", "8"]);
    assert_eq!(r["errno"], 22, "argument condition matches");
    let r = run(&["/checker", "try", "personality", "0"]);
    assert_eq!(r["ok"], true, "argument condition does not match");
    let r = run(&["/checker", "report"]);
    assert_eq!(r["seccomp"], "2", "filter mode");
}

#[test]
fn seccomp_kill_process_and_allow_list() {
    let rt = Runtime::default();
    let kill = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    let bundle =
        Bundle::new(&["/checker", "try", "mkdir", "/tmp/x"]).with(|c| c["linux"]["seccomp"] = kill);
    let (out, _c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS));
    // An allow-list: everything else fails with EPERM, newer syscalls with ENOSYS.
    let allowed: Vec<&str> = vec![
        "read",
        "write",
        "openat",
        "close",
        "fstat",
        "newfstatat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "sigaltstack",
        "exit",
        "exit_group",
        "execve",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "poll",
        "sched_getaffinity",
        "getpid",
        "ioctl",
        "lseek",
        "readlink",
        "futex",
        "clock_gettime",
        "clock_nanosleep",
        "nanosleep",
        "uname",
        "madvise",
        "getcwd",
    ];
    let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]});
    let bundle = Bundle::new(&["/checker", "try", "mkdir", "/tmp/x"])
        .with(|c| c["linux"]["seccomp"] = profile);
    let r = rt.run_checker(&bundle);
    assert_eq!(r["errno"], libc::EPERM);
}

#[test]
fn seccomp_notify_hands_the_listener_an_fd_and_the_state() {
    use std::os::unix::net::UnixListener;
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let socket = bundle.path().join("seccomp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let bundle = bundle.with(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let receiver = std::thread::spawn(move || {
        let (fds, data) = receive_fds(&listener);
        (String::from_utf8_lossy(&data).into_owned(), fds.len())
    });
    let c = rt.run_detached(&bundle);
    let (state, fds) = receiver.join().unwrap();
    assert_eq!(fds, 1, "one seccomp notification fd");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert_eq!(state["pid"], c.pid());
    assert_eq!(state["state"]["id"], c.id.as_str());
}
