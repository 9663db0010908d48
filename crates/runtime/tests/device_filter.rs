//! The cgroup v2 device filter (an eBPF program) loaded into the real
//! kernel and attached to a real cgroup v2 directory: a process in the
//! cgroup can open what the rules allow and nothing else.

#![allow(clippy::unwrap_used)]

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use hafen_runtime::cgroups::{DeviceRule, compile_bpf_program};

/// The cgroup2 mount of this host (`/sys/fs/cgroup` on pure v2 hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones).
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.starts_with("cgroup2 ") {
            left.split(' ').nth(4).map(PathBuf::from)
        } else {
            None
        }
    })
}

/// Removes the test cgroup, moving processes out first.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn the_v2_device_filter_allows_only_what_the_rules_allow() {
    let Some(mount) = cgroup2_mount() else { return };
    // On a pure v2 host, nest under our own cgroup (we may not own the root).
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let dir = mount
        .join(&own)
        .join(format!("hafen-devtest-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let cg = TestCgroup(dir.clone());
    let rules = [
        DeviceRule {
            allow: false,
            kind: hafen_runtime::cgroups::DeviceKind::All,
            major: None,
            minor: None,
            access: 7,
        },
        DeviceRule {
            allow: true,
            kind: hafen_runtime::cgroups::DeviceKind::Char,
            major: Some(1),
            minor: Some(3),
            access: 7,
        },
    ];
    let program = compile_bpf_program(&rules);
    let fd = std::fs::File::open(&dir).unwrap();
    hafen_runtime::sys::attach_device_filter(fd.as_fd(), &program).unwrap();
    let run = |cmd: &str| {
        let script = format!("echo $$ > {}/cgroup.procs && {cmd}", dir.display());
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    };
    let denied = run("head -c 1 /dev/zero");
    assert!(!denied.status.success(), "/dev/zero must be denied");
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("ermitted"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let allowed = run("echo hello > /dev/null");
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    drop(cg);
}
