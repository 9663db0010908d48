//! Shared test support: bundles with a busybox + checker root filesystem,
//! a private runtime state directory per test, and containers that are
//! deleted when the test ends, also when it fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

pub mod daemon;
pub mod dockerd;

/// The hafen binary under test.
pub fn hafen() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hafen"))
}

/// The statically linked checker (see `scripts/test`).
pub fn checker() -> PathBuf {
    if let Some(path) = std::env::var_os("HAFEN_CHECKER") {
        return PathBuf::from(path);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/checker/x86_64-unknown-linux-gnu/debug/hafen-checker");
    assert!(
        target.exists(),
        "the static checker is missing: run scripts/test, or build it with\n  RUSTFLAGS='-C target-feature=+crt-static' cargo build -p hafen-checker --target x86_64-unknown-linux-gnu --target-dir target/checker"
    );
    target
}

/// A name no other test (or test process) uses.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The read-only root filesystem all tests share: busybox (static, from
/// Debian's busybox-static) with its applets, the checker at `/checker`, a
/// passwd/group file, and the mount points. Built once, atomically.
pub fn shared_rootfs() -> PathBuf {
    let checker = checker();
    let meta = std::fs::metadata(&checker).expect("checker");
    // The version (v2: network applets) is part of the name, so that a
    // change of the contents makes a new one.
    let stamp = format!(
        "v2-{}-{}",
        meta.len(),
        meta.modified()
            .map(|t| t
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos())
            .unwrap_or(0)
    );
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rootfs-{stamp}"));
    if base.join(".done").exists() {
        return base;
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("rootfs-build"));
    build_rootfs(&tmp, &checker);
    std::fs::write(tmp.join(".done"), "").unwrap();
    if std::fs::rename(&tmp, &base).is_err() {
        // Another test process won the race; use its copy.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    base
}

/// Builds a root filesystem at `dir`.
pub fn build_rootfs(dir: &Path, checker: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("/bin/busybox (install busybox-static)");
    for applet in [
        "sh", "true", "false", "sleep", "echo", "cat", "ls", "ps", "id", "env", "mkdir", "rm",
        "touch", "kill", "hostname", "stat", "mount", "head", "grep", "wc", "readlink", "umask",
        "test", "ln", "trap", "printf", "ip", "nslookup", "ping", "wget", "httpd", "nc", "netstat",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::copy(checker, dir.join("checker")).unwrap();
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// A bundle: a directory with `config.json`; the root filesystem is the
/// shared one unless a test gives its own.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// runc's default configuration (without a terminal) running `args`.
    pub fn new(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hafen-bundle-")
            .tempdir()
            .unwrap();
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": shared_rootfs(), "readonly": true},
            "hostname": "hafen-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        let bundle = Bundle { dir, config };
        bundle.write();
        bundle
    }

    /// Changes the configuration and writes it.
    pub fn with(mut self, change: impl FnOnce(&mut Value)) -> Self {
        change(&mut self.config);
        self.write();
        self
    }

    /// Writes `config.json`.
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What a detached container wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    /// Gives the bundle its own writable copy of the root filesystem.
    pub fn own_rootfs(mut self) -> Self {
        let rootfs = self.dir.path().join("rootfs");
        build_rootfs(&rootfs, &checker());
        self.config["root"] = json!({"path": "rootfs", "readonly": false});
        self.write();
        self
    }
}

/// A private runtime (its own `--root`).
pub struct Runtime {
    pub root: tempfile::TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("hafen-state-")
                .tempdir()
                .unwrap(),
        }
    }
}

impl Runtime {
    /// `hafen runtime --root <root> <args>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(hafen());
        cmd.arg("runtime")
            .arg("--root")
            .arg(self.root.path())
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a runtime command and returns its output.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a runtime command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "hafen runtime {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run` in the foreground; the container is deleted by the runtime.
    pub fn run(&self, bundle: &Bundle) -> (Output, Container<'_>) {
        let id = unique("run");
        let out = self.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
        (out, Container { rt: self, id })
    }

    /// `run` in the foreground and parse the checker's JSON output.
    pub fn run_checker(&self, bundle: &Bundle) -> Value {
        let (out, _c) = self.run(bundle);
        assert!(
            out.status.success(),
            "run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        parse_json(&out.stdout)
    }

    /// Runs a command whose children outlive it (`create`, `run -d`): their
    /// stdout and stderr go to `out.log`/`err.log` in `logs` (a pipe would
    /// keep the caller waiting for the container). Panics on failure.
    pub fn ok_detached(&self, args: &[&str], logs: &Path) {
        let out = std::fs::File::create(logs.join("out.log")).unwrap();
        let err = std::fs::File::create(logs.join("err.log")).unwrap();
        let status = self.cmd(args).stdout(out).stderr(err).status().unwrap();
        assert!(
            status.success(),
            "hafen runtime {args:?} failed: {}",
            std::fs::read_to_string(logs.join("err.log")).unwrap_or_default()
        );
    }

    /// Like `ok_detached` but returns the exit status and stderr.
    pub fn detached(&self, args: &[&str], logs: &Path) -> (std::process::ExitStatus, String) {
        let out = std::fs::File::create(logs.join("out.log")).unwrap();
        let err = std::fs::File::create(logs.join("err.log")).unwrap();
        let status = self.cmd(args).stdout(out).stderr(err).status().unwrap();
        (
            status,
            std::fs::read_to_string(logs.join("err.log")).unwrap_or_default(),
        )
    }

    /// `create` a container (not started); its stdio goes to the bundle's
    /// `out.log`/`err.log`.
    pub fn create(&self, bundle: &Bundle) -> Container<'_> {
        let c = self.container();
        self.ok_detached(
            &["create", "--bundle", bundle.path().to_str().unwrap(), &c.id],
            bundle.path(),
        );
        c
    }

    /// `run --detach`; stdio as for `create`.
    pub fn run_detached(&self, bundle: &Bundle) -> Container<'_> {
        let c = self.container();
        self.ok_detached(
            &[
                "run",
                "--detach",
                "--bundle",
                bundle.path().to_str().unwrap(),
                &c.id,
            ],
            bundle.path(),
        );
        c
    }

    /// A container handle with a fresh id (nothing created yet).
    pub fn container(&self) -> Container<'_> {
        Container {
            rt: self,
            id: unique("c"),
        }
    }

    /// `state` as JSON.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }
}

/// A container that is force-deleted when dropped.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub id: String,
}

impl Container<'_> {
    /// Its state document.
    pub fn state(&self) -> Value {
        self.rt.state(&self.id)
    }

    /// Its status.
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Its init's pid.
    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap_or(0) as i32
    }

    /// Waits (up to 10 s) for a status.
    pub fn wait_status(&self, status: &str) {
        for _ in 0..1000 {
            if self.status() == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "container {} never became {status} (is {})",
            self.id,
            self.status()
        );
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .rt
            .cmd(&["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .output();
    }
}

/// Parses the last JSON line of a checker's output.
pub fn parse_json(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{') || l.starts_with('['))
        .unwrap_or_else(|| panic!("no JSON in output: {text:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
}

/// Every cgroup directory named `id` (there should be none after a
/// container is gone).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 4 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if e.file_name().to_string_lossy() == id {
                    found.push(p.clone());
                }
                walk(&p, id, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), id, 0, &mut found);
    found
}

/// Mount points whose path contains `needle`.
pub fn mounts_containing(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// The host's namespace link of a type (`net:[4026531840]`).
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// The stderr of an output, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Capability mask from a list of numbers.
pub fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

/// Accepts one connection and receives one message from it: the fds it
/// carries (SCM_RIGHTS) and its data.
pub fn receive_fds(
    listener: &std::os::unix::net::UnixListener,
) -> (Vec<std::os::fd::OwnedFd>, Vec<u8>) {
    let (conn, _) = listener.accept().unwrap();
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 65536];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = rustix::net::recvmsg(
        &conn,
        &mut iov,
        &mut control,
        rustix::net::RecvFlags::empty(),
    )
    .unwrap();
    let n = msg.bytes;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(list) = m {
            fds.extend(list);
        }
    }
    (fds, buf[..n].to_vec())
}
