//! A private hafen daemon per test (its own root, run root and socket),
//! started by the CLI on first use and stopped when the test ends.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::hafen;

/// The test data archives (made by dockerd and podman).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../image/tests/data")
        .join(name)
}

/// The docker CLI 28 of this machine.
pub const DOCKER_28: &str = "/usr/local/bin/docker";
/// Debian's docker CLI 20.10.
pub const DOCKER_20: &str = "/usr/bin/docker";

/// A private daemon, in a network namespace of its own (made by the test,
/// removed when it ends): its bridges, veths and nftables table, and every
/// packet its containers send, stay in there.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    /// The network namespace (`ip netns` name).
    pub netns: String,
}

/// The daemon config every test daemon gets: no forwarding, no
/// masquerading (nothing may leave the machine).
pub const TEST_CONFIG: &str = r#"{"ip-masq": false, "ip-forward": false}"#;

impl Default for Daemon {
    fn default() -> Self {
        Daemon::new()
    }
}

impl Daemon {
    /// A daemon that is not started yet (the first command starts it).
    pub fn new() -> Daemon {
        Daemon::in_dir(
            tempfile::Builder::new()
                .prefix("hafen-d-")
                .tempdir()
                .unwrap(),
        )
    }

    /// A daemon whose state lives in `dir`.
    pub fn in_dir(dir: tempfile::TempDir) -> Daemon {
        let netns = super::unique("hafen-t");
        let out = Command::new("ip")
            .args(["netns", "add", &netns])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add {netns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = Daemon { dir, netns };
        let up = Command::new("ip")
            .args(["-n", &d.netns, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        std::fs::write(d.config_file(), TEST_CONFIG).unwrap();
        d
    }

    /// The daemon's config file (`HAFEN_CONFIG`).
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("test-daemon.json")
    }

    /// The path of the network namespace.
    pub fn netns_path(&self) -> String {
        format!("/run/netns/{}", self.netns)
    }

    /// `program` run inside the daemon's network namespace.
    pub fn in_netns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns_path()))
            .arg("--")
            .arg(program);
        c
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_root().join("hafen.sock")
    }

    /// `hafen <args>` for this daemon.
    pub fn cmd(&self, args: &[&str]) -> Command {
        // The CLI starts the daemon: in the namespace, so is the daemon.
        let mut c = self.in_netns(hafen().to_str().unwrap());
        c.args(args)
            .env("HAFEN_CONFIG", self.config_file())
            .env("HAFEN_ROOT", self.root())
            .env("HAFEN_RUN_ROOT", self.run_root())
            .env_remove("HAFEN_HOST")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null());
        c
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `hafen <args>` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "hafen {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `hafen load -i` of a test data archive; its output.
    pub fn load(&self, name: &str) -> String {
        self.ok(&["load", "-i", data(name).to_str().unwrap()])
    }

    /// `hafen <args>` with `input` on stdin.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// Starts the daemon (if it is not running) and returns.
    pub fn start(&self) {
        self.ok(&["version"]);
    }

    /// A docker CLI talking to this daemon.
    pub fn docker(&self, cli: &str, args: &[&str]) -> Output {
        self.start();
        Command::new(cli)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// One raw HTTP/1.1 request on the socket: (status line, headers, body).
    pub fn http(&self, method: &str, path: &str) -> (String, Vec<(String, String)>, String) {
        self.start();
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap_or("").to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, headers, body)
    }

    /// The daemon's pid, if it runs.
    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.run_root().join("hafen.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // A zombie (not reaped yet) has stopped.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
        (state != 'Z' && state != 'X').then_some(pid)
    }

    /// Kills the daemon with SIGKILL and waits until it has gone, so that
    /// its listening socket is closed before the next command connects.
    pub fn kill_hard(&self) -> i32 {
        let pid = self.pid().expect("the daemon runs");
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        let start = std::time::Instant::now();
        while self.pid() == Some(pid) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "the daemon {pid} did not end after SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pid
    }

    /// Files under the store's root (relative paths, sorted), for
    /// before/after comparisons; the database is left out.
    pub fn store_files(&self) -> Vec<String> {
        let root = self.root().join("image");
        let mut out = Vec::new();
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if rel.starts_with("meta.db") {
                    continue;
                }
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                // Inside a snapshot only the top level matters.
                if !rel.contains("/fs/") {
                    out.push(rel);
                }
                if is_dir {
                    walk(&p, root, out);
                }
            }
        }
        walk(&root, &root, &mut out);
        out.sort();
        out
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Daemon {
    /// Imports the tests' busybox root filesystem as `busybox:latest`
    /// (with `CMD ["sh"]`), as the install script does with Debian's
    /// busybox-static.
    pub fn busybox(&self) {
        let rootfs = super::shared_rootfs();
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        tar.append_dir_all(".", &rootfs).unwrap();
        let bytes = tar.into_inner().unwrap();
        let out = self.with_stdin(
            &["import", "--change", "CMD [\"sh\"]", "-", "busybox:latest"],
            &bytes,
        );
        assert!(
            out.status.success(),
            "import busybox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Everything the containers of this daemon left: shims, runtime
    /// state (their processes and cgroups), mounts.
    fn clean_containers(&self) {
        let run = self.run_root();
        if let Ok(dirs) = std::fs::read_dir(run.join("containers")) {
            for d in dirs.flatten() {
                if let Ok(pid) = std::fs::read_to_string(d.path().join("shim.pid")) {
                    let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
                }
            }
        }
        if let Ok(ids) = std::fs::read_dir(run.join("runtime")) {
            for id in ids.flatten() {
                let _ = Command::new(hafen())
                    .arg("runtime")
                    .arg("--root")
                    .arg(run.join("runtime"))
                    .args(["delete", "--force"])
                    .arg(id.file_name())
                    .output();
            }
        }
        let prefix = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(&p).status();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.socket().exists() {
            let ids = self.output(&["ps", "-aq", "--no-trunc"]);
            let ids = String::from_utf8_lossy(&ids.stdout).to_string();
            for id in ids.split_whitespace() {
                let _ = self.output(&["rm", "-f", "-v", id]);
            }
        }
        let _ = self.cmd(&["daemon", "stop"]).output();
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        self.clean_containers();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}
