//! A private dockerd (Debian's docker.io 20.10) to compare hafen with:
//! its own socket, data and exec roots; no bridge, no iptables, so it
//! touches no network. Stopped and removed when the test ends.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const DOCKERD: &str = "/usr/sbin/dockerd";

pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        assert!(
            std::path::Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: install Debian's docker.io (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("hafen-dk-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let child = Command::new(DOCKERD)
            .arg("--host")
            .arg(format!("unix://{}/docker.sock", p.display()))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--userland-proxy=false",
                "--storage-driver=overlay2",
                "--exec-opt=native.cgroupdriver=cgroupfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Dockerd { dir, child };
        for _ in 0..600 {
            if std::os::unix::net::UnixStream::connect(d.socket()).is_ok()
                && d.docker(super::daemon::DOCKER_20, &["version"])
                    .status
                    .success()
            {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "dockerd did not start: {}",
            std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// A docker CLI talking to this dockerd.
    pub fn docker(&self, cli: &str, args: &[&str]) -> Output {
        Command::new(cli)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut stopped = false;
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Its containerd, should it outlive dockerd.
        let exec = self.dir.path().join("exec");
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(format!("containerd --config {}", exec.display()))
            .status();
        // Nothing may stay mounted under its roots.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}
