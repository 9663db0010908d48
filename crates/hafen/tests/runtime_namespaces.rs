//! `linux.namespaces`, `hostname`, `domainname`, `linux.sysctl`, user and
//! time namespaces, joining namespaces by path — seen from inside.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::json;
use support::*;

fn set_namespaces(bundle: Bundle, list: serde_json::Value) -> Bundle {
    bundle.with(|c| c["linux"]["namespaces"] = list)
}

#[test]
fn new_namespaces_are_new() {
    let rt = Runtime::default();
    let bundle = set_namespaces(
        Bundle::new(&["/checker", "report"]),
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]),
    );
    let r = rt.run_checker(&bundle);
    assert_eq!(r["pid"], 1, "PID 1 of a new pid namespace");
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(
            r["namespaces"][kind],
            host_ns(kind),
            "{kind} namespace is new"
        );
    }
    assert_eq!(
        r["namespaces"]["user"],
        host_ns("user"),
        "no user namespace asked for"
    );
    assert_eq!(r["hostname"], "hafen-test");
    // The cgroup namespace is rooted at the container's cgroup.
    let cgroup = r["cgroup"].as_str().unwrap();
    assert!(cgroup.lines().all(|l| l.ends_with(":/")), "{cgroup}");
}

#[test]
fn shared_namespaces_are_the_hosts() {
    let rt = Runtime::default();
    let bundle = set_namespaces(
        Bundle::new(&["/checker", "report"]),
        json!([{"type": "mount"}]),
    )
    .with(|c| c["hostname"] = json!(null));
    let r = rt.run_checker(&bundle);
    for kind in ["pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            r["namespaces"][kind],
            host_ns(kind),
            "{kind} namespace is the host's"
        );
    }
    assert_ne!(r["pid"], 1);
}

#[test]
fn domainname_and_network_sysctl() {
    let rt = Runtime::default();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; hostname; /checker report",
    ])
    .with(|c| {
        c["domainname"] = json!("example.org");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    });
    let (out, _c) = rt.run(&bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("1"));
    assert_eq!(lines.next(), Some("1234"));
    assert_eq!(lines.next(), Some("hafen-test"));
    let r = parse_json(&out.stdout);
    assert_eq!(r["domainname"], "example.org");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward,
        "host unchanged"
    );
}

#[test]
fn a_host_sysctl_is_refused() {
    let rt = Runtime::default();
    let bundle =
        Bundle::new(&["true"]).with(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    let (out, c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("vm.swappiness"), "{}", stderr(&out));
    assert!(cgroup_dirs_named(&c.id).is_empty());
}

#[test]
fn user_namespace_with_mappings() {
    let rt = Runtime::default();
    let bundle = set_namespaces(
        Bundle::new(&["/checker", "report"]),
        json!([{"type": "pid"}, {"type": "user"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]),
    )
    .with(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs and cgroup need a network namespace of the user namespace.
        c["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    });
    let r = rt.run_checker(&bundle);
    assert_ne!(r["namespaces"]["user"], host_ns("user"));
    let map = r["uid_map"].as_str().unwrap();
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["0", "100000", "65536"], "{map}");
    assert_eq!(r["uid"], 0, "root inside");
}

#[test]
fn time_namespace_offsets() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 7200, "nanosecs": 5}});
    });
    let r = rt.run_checker(&bundle);
    assert_ne!(r["namespaces"]["time"], host_ns("time"));
    let offsets = r["timens_offsets"].as_str().unwrap();
    assert!(
        offsets.contains("monotonic") && offsets.contains("86400"),
        "{offsets}"
    );
    assert!(
        offsets.contains("boottime") && offsets.contains("7200"),
        "{offsets}"
    );
}

#[test]
fn join_namespaces_by_path() {
    let rt = Runtime::default();
    let first = rt.run_detached(&Bundle::new(&["/checker", "sleep", "60"]));
    let pid = first.pid();
    let bundle = set_namespaces(
        Bundle::new(&["/checker", "report"]),
        json!([
            {"type": "mount"},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
            {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}
        ]),
    )
    .with(|c| c["hostname"] = json!(null));
    let r = rt.run_checker(&bundle);
    for (kind, link) in [
        ("net", "net"),
        ("uts", "uts"),
        ("ipc", "ipc"),
        ("pid", "pid"),
    ] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{link}"))
            .unwrap()
            .display()
            .to_string();
        assert_eq!(r["namespaces"][kind], theirs, "{kind} joined");
    }
    assert_eq!(
        r["hostname"], "hafen-test",
        "the first container's hostname"
    );
    assert_ne!(r["pid"], 1, "PID 1 is the first container's init");
}

#[test]
fn joining_a_namespace_of_the_wrong_type_fails_cleanly() {
    let rt = Runtime::default();
    let bundle = set_namespaces(
        Bundle::new(&["true"]),
        json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/uts"}]),
    )
    .with(|c| c["hostname"] = json!(null));
    let (out, c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a network namespace"),
        "{}",
        stderr(&out)
    );
    assert!(rt.ok(&["list", "-q"]).is_empty());
    assert!(cgroup_dirs_named(&c.id).is_empty());
}

#[test]
fn user_namespace_joined_with_a_network_path_uses_the_helper() {
    let rt = Runtime::default();
    let first = rt.run_detached(&Bundle::new(&["/checker", "sleep", "60"]));
    let pid = first.pid();
    let bundle = set_namespaces(
        Bundle::new(&["/checker", "report"]),
        json!([{"type": "user"}, {"type": "mount"}, {"type": "pid"}, {"type": "network", "path": format!("/proc/{pid}/ns/net")}]),
    )
    .with(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        c["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup" && m["type"] != "mqueue");
        c["hostname"] = json!(null);
    });
    let r = rt.run_checker(&bundle);
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .display()
        .to_string();
    assert_eq!(r["namespaces"]["net"], theirs);
    assert_ne!(r["namespaces"]["user"], host_ns("user"));
    assert_eq!(r["pid"], 1);
}

#[test]
fn without_a_mount_namespace_the_mounts_are_undone_by_delete() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).own_rootfs().with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        // The mounts go to the host's namespace: keep it to a few.
        c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"},
                                 {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]);
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let rootfs = bundle.path().join("rootfs");
    let c = rt.create(&bundle);
    assert!(
        !mounts_containing(rootfs.to_str().unwrap()).is_empty(),
        "mounted in the host's namespace"
    );
    rt.ok(&["start", &c.id]);
    c.wait_status("stopped");
    let r = parse_json(bundle.stdout().as_bytes());
    assert_eq!(r["namespaces"]["mnt"], host_ns("mnt"));
    rt.ok(&["delete", &c.id]);
    assert!(
        mounts_containing(rootfs.to_str().unwrap()).is_empty(),
        "{:?}",
        mounts_containing(rootfs.to_str().unwrap())
    );
}

/// A mount the test put in place, undone when the test ends (also when it
/// fails).
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn without_a_mount_namespace_a_mount_that_was_there_stays() {
    // An engine mounts the image (an overlay, say) at the rootfs before it
    // creates the container: neither a failed create nor delete may take
    // that mount away.
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"]).own_rootfs().with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        c["mounts"] = json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]);
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let rootfs = bundle.path().join("rootfs");
    let status = Command::new("mount")
        .args(["--bind"])
        .arg(&rootfs)
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    let _mounted = Mounted(rootfs.clone());
    let engine_mount = mounts_containing(rootfs.to_str().unwrap());
    assert_eq!(engine_mount.len(), 1, "{engine_mount:?}");

    // A create that fails before it mounts anything.
    let broken = Bundle::new(&["true"]).with(|c| {
        c["root"]["path"] = json!(rootfs);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        c["linux"]["rootfsPropagation"] = json!("sideways");
    });
    let (out, _c) = rt.run(&broken);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(mounts_containing(rootfs.to_str().unwrap()), engine_mount);

    let c = rt.create(&bundle);
    assert!(mounts_containing(rootfs.to_str().unwrap()).len() > 1);
    rt.ok(&["delete", "--force", &c.id]);
    assert_eq!(mounts_containing(rootfs.to_str().unwrap()), engine_mount);
}

#[test]
fn a_config_without_process_creates_but_cannot_start() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"]).with(|c| c["process"] = json!(null));
    let c = rt.create(&bundle);
    assert_eq!(c.status(), "created");
    let out = rt.output(&["start", &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no \"process\""), "{}", stderr(&out));
    assert_eq!(c.status(), "created", "a failed start has no effect");
    rt.ok(&["delete", &c.id]);
}
