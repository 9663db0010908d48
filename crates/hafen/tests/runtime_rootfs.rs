//! The root filesystem: pivot_root, read-only root, propagation, mounts,
//! masked and read-only paths, devices and /dev symlinks.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::*;

fn mount<'a>(report: &'a Value, mountpoint: &str) -> Option<&'a Value> {
    report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["mountpoint"] == mountpoint)
}

#[test]
fn pivot_root_hides_the_host() {
    let rt = Runtime::default();
    let out = rt
        .run(&Bundle::new(&[
            "sh",
            "-c",
            "ls /; test -e /work || test -e /var && echo HOST-VISIBLE; true",
        ]))
        .0;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("HOST-VISIBLE"), "{text}");
    assert!(text.contains("checker"));
    let r = rt.run_checker(&Bundle::new(&["/checker", "report"]));
    let root = mount(&r, "/").unwrap();
    assert!(
        root["options"].as_str().unwrap().starts_with("ro"),
        "read-only root: {root}"
    );
    // The old root is gone: no mount shows the host's /work.
    assert!(
        !r["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountpoint"].as_str().unwrap().starts_with("/work"))
    );
}

#[test]
fn read_only_root_refuses_writes_and_writable_root_accepts_them() {
    let rt = Runtime::default();
    let r = rt.run_checker(&Bundle::new(&["/checker", "try", "write", "/file", "x"]));
    assert_eq!(r["ok"], false);
    assert_eq!(r["errno"], libc::EROFS);
    let bundle = Bundle::new(&["/checker", "try", "write", "/file", "x"]).own_rootfs();
    let r = rt.run_checker(&bundle);
    assert_eq!(r["ok"], true);
    assert_eq!(
        std::fs::read_to_string(bundle.path().join("rootfs/file")).unwrap(),
        "x"
    );
}

#[test]
fn standard_mounts() {
    let rt = Runtime::default();
    let r = rt.run_checker(&Bundle::new(&["/checker", "report"]));
    let fstype = |p: &str| mount(&r, p).map(|m| m["fstype"].as_str().unwrap().to_string());
    assert_eq!(fstype("/proc").as_deref(), Some("proc"));
    assert_eq!(fstype("/dev").as_deref(), Some("tmpfs"));
    assert_eq!(fstype("/dev/pts").as_deref(), Some("devpts"));
    assert_eq!(fstype("/dev/shm").as_deref(), Some("tmpfs"));
    assert_eq!(fstype("/dev/mqueue").as_deref(), Some("mqueue"));
    assert_eq!(fstype("/sys").as_deref(), Some("sysfs"));
    let sys = mount(&r, "/sys").unwrap();
    assert!(sys["options"].as_str().unwrap().starts_with("ro"), "{sys}");
    let shm = mount(&r, "/dev/shm").unwrap();
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(shm["options"].as_str().unwrap().contains(opt), "{shm}");
    }
    assert!(
        shm["super"].as_str().unwrap().contains("size=65536k"),
        "{shm}"
    );
    let pts = mount(&r, "/dev/pts").unwrap();
    assert!(
        pts["super"].as_str().unwrap().contains("ptmxmode=666"),
        "{pts}"
    );
    // The cgroup tree shows the container's own cgroups, read-only.
    let cg = mount(&r, "/sys/fs/cgroup").unwrap();
    assert!(cg["options"].as_str().unwrap().starts_with("ro"));
    let memory = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountpoint"] == "/sys/fs/cgroup/memory");
    if let Some(memory) = memory {
        // A bind of the container's own directory: its root is not the
        // hierarchy's root.
        assert_ne!(memory["root"], "/", "{memory}");
        assert!(memory["options"].as_str().unwrap().starts_with("ro"));
    }
}

#[test]
fn bind_mounts_with_options() {
    let rt = Runtime::default();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from the host").unwrap();
    std::fs::create_dir(host.path().join("sub")).unwrap();
    let bundle = Bundle::new(&["sh", "-c", "cat /data/hello; /checker try write /data/new x; /checker try write /rw/new y; cat /bundle-file; cat /typed/hello"])
        .with(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro", "nosuid"]}));
            mounts.push(json!({"destination": "/rw", "type": "none", "source": host.path().join("sub"), "options": ["bind"]}));
            mounts.push(json!({"destination": "/bundle-file", "source": "relative.txt", "options": ["bind", "ro"]}));
            // The type alone makes it a bind mount.
            mounts.push(json!({"destination": "/typed", "type": "bind", "source": host.path(), "options": ["ro"]}));
        });
    std::fs::write(
        bundle.path().join("relative.txt"),
        "relative to the bundle\n",
    )
    .unwrap();
    let (out, _c) = rt.run(&bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("from the host"), "{text}");
    assert!(
        text.contains(r#""errno":30"#),
        "ro bind refuses writes: {text}"
    );
    assert!(
        text.contains(r#"{"ok":true"#),
        "rw bind accepts writes: {text}"
    );
    assert!(text.contains("relative to the bundle"), "{text}");
    assert!(
        text.ends_with("from the host"),
        "a bind by type alone: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("sub/new")).unwrap(),
        "y"
    );
    assert!(!host.path().join("new").exists());
}

#[test]
fn a_missing_bind_source_is_an_error_without_leftovers() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"]).with(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/path", "options": ["bind"]}));
    });
    let (out, c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/path does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(cgroup_dirs_named(&c.id).is_empty());
    assert!(mounts_containing(bundle.path().to_str().unwrap()).is_empty());
    assert!(rt.ok(&["list", "-q"]).is_empty());
}

#[test]
fn tmpfs_options_tmpcopyup_and_recursive_read_only() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["sh", "-c", "ls /etc; /checker try write /etc/new x; /checker report"])
        .own_rootfs()
        .with(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=1m", "mode=755"]}));
            mounts.push(json!({"destination": "/rro", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "rro"]}));
        });
    let (out, _c) = rt.run(&bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("passwd"),
        "tmpcopyup copied the directory: {text}"
    );
    assert!(
        text.contains(r#""ok":true"#),
        "the tmpfs is writable: {text}"
    );
    assert!(
        !bundle.path().join("rootfs/etc/new").exists(),
        "written to the tmpfs, not the rootfs"
    );
    let r = parse_json(&out.stdout);
    let etc = mount(&r, "/etc").unwrap();
    assert_eq!(etc["fstype"], "tmpfs");
    assert!(
        etc["super"].as_str().unwrap().contains("size=1024k"),
        "{etc}"
    );
    // rro: every submount below /rro is read-only too.
    let below: Vec<&Value> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mountpoint"].as_str().unwrap().starts_with("/rro"))
        .collect();
    assert!(below.len() > 1);
    for m in below {
        assert!(m["options"].as_str().unwrap().starts_with("ro"), "{m}");
    }
}

#[test]
fn masked_and_read_only_paths() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; /checker try write /proc/sys/kernel/hostname x",
    ]);
    let (out, _c) = rt.run(&bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().map(str::trim),
        Some("0"),
        "masked file reads empty"
    );
    assert_eq!(
        lines.next().map(str::trim),
        Some("0"),
        "masked directory is empty"
    );
    let r = parse_json(&out.stdout);
    assert_eq!(r["errno"], libc::EROFS, "read-only path");
}

#[test]
fn rootfs_propagation_shared() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"])
        .with(|c| c["linux"]["rootfsPropagation"] = json!("shared"));
    let r = rt.run_checker(&bundle);
    let root = mount(&r, "/").unwrap();
    assert!(
        root["optional"].as_str().unwrap().contains("shared:"),
        "{root}"
    );
    let r = rt.run_checker(
        &Bundle::new(&["/checker", "report"])
            .with(|c| c["linux"]["rootfsPropagation"] = json!("private")),
    );
    let root = mount(&r, "/").unwrap();
    assert!(
        !root["optional"].as_str().unwrap().contains("shared:"),
        "{root}"
    );
}

#[test]
fn devices_and_dev_symlinks() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&[
        "/checker", "stat", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/fuse",
        "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/ptmx", "/dev/sub/node",
    ])
    .with(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1000, "gid": 1000},
            {"path": "/dev/sub/node", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600}
        ]);
    });
    let r = rt.run_checker(&bundle);
    for (path, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        assert_eq!(r[path]["type"], "char", "{path}");
        assert_eq!(
            (r[path]["major"].as_u64(), r[path]["minor"].as_u64()),
            (Some(major), Some(minor)),
            "{path}"
        );
        assert_eq!(r[path]["mode"], 0o666, "{path}");
    }
    assert_eq!(r["/dev/fuse"]["type"], "char");
    assert_eq!(r["/dev/fuse"]["mode"], 0o640);
    assert_eq!(r["/dev/fuse"]["uid"], 1000);
    assert_eq!(r["/dev/sub/node"]["type"], "block");
    assert_eq!(r["/dev/sub/node"]["major"], 7);
    assert_eq!(r["/dev/fd"]["link"], "/proc/self/fd");
    assert_eq!(r["/dev/stdin"]["link"], "/proc/self/fd/0");
    assert_eq!(r["/dev/stderr"]["link"], "/proc/self/fd/2");
    assert_eq!(r["/dev/ptmx"]["link"], "pts/ptmx");
}

#[test]
fn symlinks_in_the_image_cannot_place_mounts_outside() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).own_rootfs();
    let rootfs = bundle.path().join("rootfs");
    // /escape -> / and /up -> ../../../.. : a mount on /escape/tmpdir or
    // /up/x must land inside the rootfs.
    std::os::unix::fs::symlink("/", rootfs.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", rootfs.join("up")).unwrap();
    let bundle = bundle.with(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/escape/hafen-escape-1", "type": "tmpfs", "source": "tmpfs"}),
        );
        mounts
            .push(json!({"destination": "/up/hafen-escape-2", "type": "tmpfs", "source": "tmpfs"}));
    });
    let _r = rt.run_checker(&bundle);
    assert!(!std::path::Path::new("/hafen-escape-1").exists());
    assert!(!std::path::Path::new("/hafen-escape-2").exists());
    assert!(rootfs.join("hafen-escape-1").is_dir());
    assert!(rootfs.join("hafen-escape-2").is_dir());
}

#[test]
fn no_pivot_uses_chroot() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]);
    let id = unique("np");
    let out = rt.output(&[
        "run",
        "--no-pivot",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert_eq!(r["pid"], 1);
}

#[test]
fn idmapped_bind_mount_in_a_user_namespace() {
    let rt = Runtime::default();
    // A host directory owned by host root. In a user namespace that maps
    // container root to host 300000, host root is unmapped (65534); through
    // an idmapped mount with the container's mapping it is root again.
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(host.path().join("file"), "x").unwrap();
    let bundle = |options: Value| {
        Bundle::new(&["/checker", "stat", "/home/user/file"]).with(|c| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
            c["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/home/user", "type": "bind", "source": host.path(), "options": options}));
        })
    };
    let plain = rt.run_checker(&bundle(json!(["rbind"])));
    assert_eq!(plain["/home/user/file"]["uid"], 65534);
    let mapped = rt.run_checker(&bundle(json!(["rbind", "idmap"])));
    assert_eq!(mapped["/home/user/file"]["uid"], 0);
    assert_eq!(mapped["/home/user/file"]["gid"], 0);
}
