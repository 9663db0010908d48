//! Another engine drives hafen as its OCI runtime: Podman (Debian's 4.3)
//! with `--runtime hafen-runc`, in its own storage, so the host's Podman
//! state is untouched. Skipped when Podman is not installed.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

struct Podman {
    dir: tempfile::TempDir,
    runtime: std::path::PathBuf,
}

impl Podman {
    fn new() -> Option<Self> {
        Command::new("podman")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let dir = tempfile::Builder::new()
            .prefix("hafen-podman-")
            .tempdir()
            .unwrap();
        // Podman finds the runtime's name in its path: a link named hafen-runc.
        let runtime = dir.path().join("hafen-runc");
        std::fs::hard_link(hafen(), &runtime)
            .or_else(|_| std::fs::copy(hafen(), &runtime).map(|_| ()))
            .unwrap();
        // This host's root lacks CAP_SYS_RESOURCE and has a hard NOFILE of
        // 20000: Podman's default ulimits must fit under it.
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(1024);
        let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
            .maximum
            .unwrap_or(4096)
            .min(32768);
        std::fs::write(
            dir.path().join("containers.conf"),
            format!(
                "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile={hard}:{hard}\", \"nproc={nproc}:{nproc}\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
            ),
        )
        .unwrap();
        Some(Podman { dir, runtime })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime)
            .arg("--storage-driver")
            .arg("vfs")
            .args(args);
        c
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Imports the test root filesystem as an image.
    fn import(&self, name: &str) {
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(shared_rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["rm", "--all", "--force", "--time", "0"])
            .output();
        let _ = self.cmd(&["system", "reset", "--force"]).output();
        // Podman may leave its overlay/shm mounts under the storage dir.
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.dir.path().to_string_lossy().into_owned();
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        // Podman leaves its parent cgroups behind; remove them if empty
        // (rmdir refuses otherwise, so another Podman's are safe).
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = std::fs::remove_dir(h.path().join("libpod_parent/conmon"));
                let _ = std::fs::remove_dir(h.path().join("libpod_parent"));
            }
        }
    }
}

#[test]
fn podman_runs_containers_with_hafen() {
    let Some(podman) = Podman::new() else { return };
    podman.import("hafen-test-image");
    let out = podman.out(&["run", "--rm", "hafen-test-image", "/checker", "report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert_eq!(r["pid"], 1);
    assert!(
        r["cgroup"].as_str().unwrap().contains("libpod"),
        "podman's cgroup: {}",
        r["cgroup"]
    );
    let out = podman.out(&["run", "--rm", "hafen-test-image", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = podman.out(&["run", "--rm", "hafen-test-image", "no-such-program"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "podman maps 'not found' to 127: {}",
        stderr(&out)
    );

    let name = unique("podman");
    podman.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "hafen-test-image",
        "sleep",
        "300",
    ]);
    assert_eq!(
        podman.ok(&["exec", &name, "echo", "inside"]).trim(),
        "inside"
    );
    let state = |podman: &Podman| {
        podman
            .ok(&["inspect", "--format", "{{.State.Status}}", &name])
            .trim()
            .to_string()
    };
    assert_eq!(state(&podman), "running");
    podman.ok(&["pause", &name]);
    assert_eq!(state(&podman), "paused");
    podman.ok(&["unpause", &name]);
    assert_eq!(state(&podman), "running");
    podman.ok(&["stop", "--time", "1", &name]);
    podman.ok(&["rm", &name]);
    assert!(
        !podman
            .ok(&["ps", "--all", "--format", "{{.Names}}"])
            .contains(&name)
    );
    assert!(Path::new(&podman.runtime).exists());
}
