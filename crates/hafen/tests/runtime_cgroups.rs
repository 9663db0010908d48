//! `linux.resources` and `linux.cgroupsPath`, checked in the cgroup files
//! from outside and through their effect from inside.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::*;

/// The container's directory in a v1 hierarchy (`None` if not mounted).
fn v1_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line = text.lines().find(|l| {
        let parts: Vec<&str> = l.splitn(3, ':').collect();
        parts.len() == 3 && parts[1].split(',').any(|c| c == controller)
    })?;
    let path = line.splitn(3, ':').nth(2)?;
    let mount = Path::new("/sys/fs/cgroup").join(controller);
    mount
        .exists()
        .then(|| mount.join(path.trim_start_matches('/')))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn layout_is_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory").is_dir()
}

#[test]
fn resources_reach_the_cgroup_files() {
    if !layout_is_v1() {
        return; // the v2 translation is covered by the runtime's unit tests
    }
    let rt = Runtime::default();
    let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus")
        .unwrap()
        .trim()
        .to_string();
    let first_cpu = cpus.split([',', '-']).next().unwrap().to_string();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]).with(|c| {
        c["linux"]["resources"] = json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 134217728, "reservation": 67108864, "swappiness": 10},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": first_cpu, "mems": "0"},
            "pids": {"limit": 64}
        });
    });
    let c = rt.run_detached(&bundle);
    let pid = c.pid();
    let memory = v1_dir(pid, "memory").unwrap();
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "134217728");
    assert_eq!(read(&memory, "memory.soft_limit_in_bytes"), "67108864");
    assert_eq!(read(&memory, "memory.swappiness"), "10");
    let cpu = v1_dir(pid, "cpu").unwrap();
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    let cpuset = v1_dir(pid, "cpuset").unwrap();
    assert_eq!(read(&cpuset, "cpuset.cpus"), first_cpu);
    let pids = v1_dir(pid, "pids").unwrap();
    assert_eq!(read(&pids, "pids.max"), "64");
    let devices = v1_dir(pid, "devices").unwrap();
    let list = read(&devices, "devices.list");
    assert!(
        list.contains("c 1:3 rwm") && list.contains("c 136:* rwm"),
        "{list}"
    );
    assert!(!list.contains("a *:* rwm"), "{list}");
    // The container's processes are in those cgroups.
    assert!(
        read(&pids, "cgroup.procs")
            .lines()
            .any(|l| l == pid.to_string())
    );
}

#[test]
fn block_io_and_hugetlb() {
    if !layout_is_v1() {
        return;
    }
    let rt = Runtime::default();
    // A real block device of this host.
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with("loop"))
        .map(|e| {
            std::fs::read_to_string(e.path().join("dev"))
                .unwrap()
                .trim()
                .to_string()
        });
    let hugetlb_v1 = Path::new("/sys/fs/cgroup/hugetlb").is_dir();
    let has_2mb = Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]).with(|c| {
        if let Some(dev) = &dev {
            let (major, minor) = dev.split_once(':').unwrap();
            c["linux"]["resources"]["blockIO"] = json!({
                "throttleReadBpsDevice": [{"major": major.parse::<i64>().unwrap(), "minor": minor.parse::<i64>().unwrap(), "rate": 1048576}]
            });
        }
        if has_2mb {
            c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
        }
    });
    let c = rt.run_detached(&bundle);
    let pid = c.pid();
    if let Some(dev) = dev {
        let blkio = v1_dir(pid, "blkio").unwrap();
        assert_eq!(
            read(&blkio, "blkio.throttle.read_bps_device"),
            format!("{dev} 1048576")
        );
    }
    if has_2mb {
        if hugetlb_v1 {
            assert_eq!(
                read(
                    &v1_dir(pid, "hugetlb").unwrap(),
                    "hugetlb.2MB.limit_in_bytes"
                ),
                "4194304"
            );
        } else {
            let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let path = line
                .lines()
                .find(|l| l.starts_with("0::"))
                .unwrap()
                .trim_start_matches("0::")
                .to_string();
            let dir = Path::new("/sys/fs/cgroup/unified").join(path.trim_start_matches('/'));
            assert_eq!(read(&dir, "hugetlb.2MB.max"), "4194304");
        }
    }
}

#[test]
fn the_device_cgroup_denies_what_is_not_allowed() {
    let rt = Runtime::default();
    // CAP_MKNOD lets the container make any node; the device cgroup decides
    // which it may open.
    // Whether the configuration denies everything first (as `spec` writes
    // it) or lists no device rules at all, only the default devices open.
    let no_rules: fn(&mut serde_json::Value) = |c| c["linux"]["resources"] = json!({});
    let deny_first: fn(&mut serde_json::Value) = |_| {};
    for rules in [deny_first, no_rules] {
        let bundle = Bundle::new(&["sh", "-c", "/checker try mknod /dev/xmem 1 1 >/dev/null; /checker try open /dev/xmem; /checker try open /dev/null"])
            .with(|c| {
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_MKNOD"));
                }
            })
            .with(rules);
        let (out, _c) = rt.run(&bundle);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["errno"], libc::EPERM, "/dev/mem denied: {text}");
        assert_eq!(lines[1]["ok"], true, "/dev/null allowed: {text}");
    }
}

#[test]
fn delete_force_reaches_processes_in_sub_cgroups() {
    if !layout_is_v1() {
        return;
    }
    // Without a PID namespace, killing the init leaves its children; the
    // cgroup tree is what holds them all, sub-cgroups included.
    let rt = Runtime::default();
    let bundle =
        Bundle::new(&["sh", "-c", "/checker sleep 60 & exec /checker sleep 60"]).with(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
        });
    let c = rt.run_detached(&bundle);
    let init = c.pid();
    let dir = v1_dir(init, "pids").unwrap();
    let mut child = None;
    for _ in 0..1000 {
        child = read(&dir, "cgroup.procs")
            .lines()
            .map(|l| l.parse::<i32>().unwrap())
            .find(|&p| p != init);
        if child.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let child = child.expect("the background process starts");
    let mut subs = Vec::new();
    for controller in ["pids", "memory", "freezer"] {
        let sub = v1_dir(init, controller).unwrap().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("cgroup.procs"), child.to_string()).unwrap();
        subs.push(sub);
    }
    rt.ok(&["delete", "--force", &c.id]);
    assert!(
        !Path::new(&format!("/proc/{child}")).exists()
            || std::fs::read_to_string(format!("/proc/{child}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "the process in the sub-cgroup is killed"
    );
    for sub in subs {
        assert!(!sub.exists(), "{} is removed", sub.display());
    }
    assert!(cgroup_dirs_named(&c.id).is_empty());
}

#[test]
fn a_cgroup_in_use_is_not_shared() {
    let rt = Runtime::default();
    let path = format!("/{}", unique("hafen-test-shared"));
    let bundle =
        Bundle::new(&["/checker", "sleep", "60"]).with(|c| c["linux"]["cgroupsPath"] = json!(path));
    let first = rt.run_detached(&bundle);
    let id = unique("second");
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    assert_eq!(
        first.status(),
        "running",
        "the first container is untouched"
    );
    assert!(
        !rt.root.path().join(&id).exists(),
        "no state is left of the refused container"
    );
}

#[test]
fn absolute_relative_and_systemd_cgroup_paths() {
    if !layout_is_v1() {
        return;
    }
    let rt = Runtime::default();
    let parent = unique("hafen-test-parent");
    let bundle = Bundle::new(&["/checker", "sleep", "60"])
        .with(|c| c["linux"]["cgroupsPath"] = json!(format!("/{parent}/inner")));
    let c = rt.run_detached(&bundle);
    let pids = v1_dir(c.pid(), "pids").unwrap();
    assert_eq!(
        pids,
        Path::new("/sys/fs/cgroup/pids").join(&parent).join("inner")
    );
    drop(c);
    assert!(!pids.exists(), "removed with the container");
    // The parent directories are the caller's; clean them up.
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(&parent));
    }

    let bundle = Bundle::new(&["/checker", "sleep", "60"])
        .with(|c| c["linux"]["cgroupsPath"] = json!("relative-sub/inner"));
    let c = rt.run_detached(&bundle);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_pids = own
        .lines()
        .find(|l| l.contains(":pids:"))
        .unwrap()
        .splitn(3, ':')
        .nth(2)
        .unwrap()
        .to_string();
    let pids = v1_dir(c.pid(), "pids").unwrap();
    assert_eq!(
        pids,
        Path::new("/sys/fs/cgroup/pids")
            .join(own_pids.trim_start_matches('/'))
            .join("relative-sub/inner")
    );
    drop(c);
    let base = Path::new("/sys/fs/cgroup/pids").join(own_pids.trim_start_matches('/'));
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let own_dir = dir
            .path()
            .join(base.strip_prefix("/sys/fs/cgroup/pids").unwrap());
        let _ = std::fs::remove_dir(own_dir.join("relative-sub"));
    }

    let slice = format!("{}.slice", unique("hafentest").replace('-', "_"));
    let bundle = Bundle::new(&["/checker", "sleep", "60"])
        .with(|c| c["linux"]["cgroupsPath"] = json!(format!("{slice}:hafen:unit")));
    let id = unique("sd");
    rt.ok_detached(
        &[
            "--systemd-cgroup",
            "run",
            "-d",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ],
        bundle.path(),
    );
    let c = Container { rt: &rt, id };
    let pids = v1_dir(c.pid(), "pids").unwrap();
    assert_eq!(
        pids,
        Path::new("/sys/fs/cgroup/pids")
            .join(&slice)
            .join("hafen-unit.scope")
    );
    drop(c);
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(&slice));
    }
}

#[test]
fn a_missing_controller_or_bad_value_fails_without_leftovers() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"])
        .with(|c| c["linux"]["resources"]["memory"] = json!({"swappiness": 500}));
    let (out, c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("swappiness"), "{}", stderr(&out));
    assert!(
        cgroup_dirs_named(&c.id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&c.id)
    );
    assert!(rt.ok(&["list", "-q"]).is_empty());
}
