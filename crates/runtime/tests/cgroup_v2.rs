//! The cgroup v2 code against the kernel's real v2 files: a hybrid host's
//! unified hierarchy (or a pure v2 host's) has no resource controllers to
//! spare here, but creation, membership, freezing, counters and removal
//! work on it as on any v2 host.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use hafen_runtime::cgroups::{Cgroup, Layout};

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

#[test]
fn create_join_freeze_count_and_remove_a_v2_cgroup() {
    let Some(mount) = cgroup2_mount() else { return };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let dir = mount
        .join(&own)
        .join(format!("hafen-v2test-{}/inner", std::process::id()));
    let cgroup = Cgroup {
        layout: Layout::V2,
        v1: Vec::new(),
        unified: Some(dir.clone()),
        unified_controllers: Vec::new(),
    };
    cgroup.create().unwrap();
    assert!(dir.is_dir());
    let mut child = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cgroup.add_process(pid).unwrap();
    assert_eq!(cgroup.pids().unwrap(), vec![pid]);
    cgroup.set_frozen(true).unwrap();
    assert!(cgroup.is_frozen());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = stat.rsplit_once(") ").unwrap().1.chars().next().unwrap();
    assert!(matches!(state, 'S' | 'D' | 'T'), "{stat}");
    cgroup.set_frozen(false).unwrap();
    assert!(!cgroup.is_frozen());
    // destroy kills what is left and removes the directory.
    cgroup.destroy().unwrap();
    assert!(!dir.exists());
    let _ = child.wait();
    let _ = std::fs::remove_dir(dir.parent().unwrap());
}
