//! The volume store against a real filesystem (as root: owners, device
//! nodes and mounts need it).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn store() -> (tempfile::TempDir, VolumeStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = VolumeStore::open(dir.path()).expect("open");
    (dir, s)
}

fn req(name: &str, opts: &[(&str, &str)], labels: &[(&str, &str)]) -> VolumeCreate {
    let map = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    VolumeCreate {
        name: name.into(),
        driver: String::new(),
        driver_opts: map(opts),
        labels: map(labels),
    }
}

fn filters(pairs: &[(&str, &str)]) -> Filters {
    let mut f = Filters::new();
    for (k, v) in pairs {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

fn names(list: &[Volume]) -> Vec<&str> {
    list.iter().map(|v| v.name.as_str()).collect()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn names_are_checked_as_dockerd_does() {
    let (_d, s) = store();
    for good in ["ab", "a1", "0x", "my_vol.1-2", "A.b_c-"] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    let err = s.create(&req("a", &[], &[])).expect_err("too short");
    assert_eq!(
        err.to_string(),
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    for bad in ["a b", "_ab", ".ab", "-ab", "a/b", "../x", "ä1", "ab\n"] {
        let err = s.create(&req(bad, &[], &[])).expect_err(bad);
        assert!(matches!(err, VolumeError::Invalid { .. }), "{bad}: {err}");
    }
    let err = s.create(&req("a b", &[], &[])).expect_err("space");
    assert_eq!(
        err.to_string(),
        "create a b: \"a b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    );
    // Nothing was made for them.
    assert_eq!(
        std::fs::read_dir(s.dir()).expect("read").count(),
        0,
        "bad names leave no directories"
    );
}

#[test]
fn a_volume_is_a_directory_with_data_and_metadata() {
    let (root, s) = store();
    let v = s
        .create(&req("data1", &[], &[("a", "1"), ("b", "")]))
        .expect("create");
    assert_eq!(v.name, "data1");
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    let data = root.path().join("volumes/data1/_data");
    assert_eq!(v.mountpoint, data.display().to_string());
    assert!(data.is_dir());
    assert_eq!(
        std::fs::metadata(root.path().join("volumes/data1"))
            .expect("stat")
            .mode()
            & 0o7777,
        0o701
    );
    assert_eq!(
        std::fs::metadata(&data).expect("stat").mode() & 0o7777,
        0o755
    );
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("volumes/data1/meta.json")).expect("meta.json"),
    )
    .expect("json");
    assert_eq!(meta["Labels"]["a"], "1");
    assert_eq!(meta["Driver"], "local");
    assert!(!root.path().join("volumes/data1/meta.json.tmp").exists());
    let created = chrono::DateTime::parse_from_rfc3339(&v.created_at).expect("RFC 3339");
    assert!((chrono::Utc::now().timestamp() - created.timestamp()).abs() < 60);
    assert_eq!(s.get("data1").expect("get"), v);
    let err = s.get("nope").expect_err("missing");
    assert_eq!(err.to_string(), "get nope: no such volume");

    // A second store over the same root sees the same volume.
    drop(s);
    let again = VolumeStore::open(root.path()).expect("reopen");
    assert_eq!(again.get("data1").expect("get"), v);
}

#[test]
fn anonymous_volumes_get_a_random_name_and_a_label() {
    let (_d, s) = store();
    let a = s.create(&req("", &[], &[("x", "y")])).expect("anonymous");
    assert_eq!(a.name.len(), 64);
    assert!(
        a.name
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(a.labels.get(ANONYMOUS_LABEL).map(String::as_str), Some(""));
    assert_eq!(a.labels.get("x").map(String::as_str), Some("y"));
    let b = s.create_anonymous("c1").expect("for a container");
    assert_ne!(a.name, b.name);
    assert_eq!(s.users(&b.name), vec!["c1".to_string()]);
    assert!(s.remove(&b.name, false).is_err(), "acquired when made");
}

#[test]
fn creating_again_returns_the_volume_unless_the_options_differ() {
    let (_d, s) = store();
    let opts = [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")];
    let first = s.create(&req("t1", &opts, &[])).expect("create");
    assert_eq!(s.create(&req("t1", &opts, &[])).expect("same"), first);
    assert_eq!(
        s.create(&req("t1", &[], &[("new", "label")]))
            .expect("none"),
        first
    );
    let err = s
        .create(&req("t1", &[("type", "tmpfs"), ("device", "tmpfs")], &[]))
        .expect_err("other options");
    assert!(matches!(err, VolumeError::Conflict { .. }), "{err}");
    let plain = s.create(&req("p1", &[], &[])).expect("plain");
    assert!(matches!(
        s.create(&req("p1", &opts, &[])),
        Err(VolumeError::Conflict { .. })
    ));
    assert_eq!(s.create(&req("p1", &[], &[])).expect("again"), plain);
}

#[test]
fn drivers_and_options_are_checked() {
    let (_d, s) = store();
    let mut r = req("v1", &[], &[]);
    r.driver = "nfs-plugin".into();
    assert_eq!(
        s.create(&r).expect_err("driver").to_string(),
        "create v1: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found"
    );
    r.driver = "local".into();
    s.create(&r).expect("local is fine");
    assert_eq!(
        s.create(&req("v2", &[("foo", "bar")], &[]))
            .expect_err("unknown key")
            .to_string(),
        "create v2: invalid option: \"foo\""
    );
    assert_eq!(
        s.create(&req("v2", &[("type", "none")], &[]))
            .expect_err("no device")
            .to_string(),
        "create v2: missing required option: \"device\""
    );
    assert!(s.get("v2").is_err(), "a refused volume does not exist");
    assert!(!s.dir().join("v2").exists());
}

#[test]
fn list_filters() {
    let (_d, s) = store();
    s.create(&req("alpha", &[], &[("tier", "db"), ("keep", "")]))
        .expect("alpha");
    s.create(&req("beta", &[], &[("tier", "web")]))
        .expect("beta");
    s.create(&req("gamma2", &[], &[])).expect("gamma2");
    s.acquire("beta", "c1").expect("acquire");
    let ls = |f: &[(&str, &str)]| names(&s.list(&filters(f)).expect("list")).join(" ");
    assert_eq!(ls(&[]), "alpha beta gamma2");
    assert_eq!(ls(&[("name", "beta")]), "beta");
    assert_eq!(ls(&[("name", "a")]), "alpha beta gamma2");
    assert_eq!(ls(&[("name", "^g.*[0-9]$")]), "gamma2");
    assert_eq!(ls(&[("name", "zzz"), ("name", "alpha")]), "alpha");
    assert_eq!(ls(&[("label", "tier")]), "alpha beta");
    assert_eq!(ls(&[("label", "tier=db")]), "alpha");
    assert_eq!(ls(&[("label", "tier=db"), ("label", "keep")]), "alpha");
    assert_eq!(ls(&[("label", "tier=web"), ("label", "keep")]), "");
    assert_eq!(ls(&[("dangling", "true")]), "alpha gamma2");
    assert_eq!(ls(&[("dangling", "0")]), "beta");
    assert_eq!(ls(&[("driver", "local")]), "alpha beta gamma2");
    assert_eq!(ls(&[("driver", "other")]), "");
    assert_eq!(
        s.list(&filters(&[("dangling", "maybe")]))
            .expect_err("bad bool")
            .to_string(),
        "invalid filter 'dangling=[maybe]'"
    );
    assert_eq!(
        s.list(&filters(&[("dangling", "true"), ("dangling", "false")]))
            .expect_err("both")
            .to_string(),
        "invalid filter 'dangling=[true false]'"
    );
    assert_eq!(
        s.list(&filters(&[("bogus", "1")]))
            .expect_err("key")
            .to_string(),
        "invalid filter 'bogus'"
    );
}

#[test]
fn volumes_in_use_cannot_be_removed() {
    let (root, s) = store();
    s.create(&req("busy", &[], &[])).expect("create");
    std::fs::write(s.data_dir("busy").join("f"), b"x").expect("write");
    s.acquire("busy", "c2").expect("acquire");
    s.acquire("busy", "c1").expect("acquire");
    let err = s.remove("busy", false).expect_err("in use");
    assert_eq!(err.to_string(), "remove busy: volume is in use - [c1, c2]");
    assert!(matches!(
        s.remove("busy", true),
        Err(VolumeError::InUse { .. })
    ));
    assert!(
        s.prune(&filters(&[("all", "true")]))
            .expect("prune")
            .deleted
            .is_empty()
    );
    s.release("busy", "c1").expect("release");
    s.release("busy", "c1").expect("twice is fine");
    assert_eq!(s.users("busy"), vec!["c2".to_string()]);
    s.release("busy", "c2").expect("release");
    s.remove("busy", false).expect("unused now");
    assert!(!root.path().join("volumes/busy").exists());
    assert!(
        std::fs::read_dir(s.dir()).expect("read").next().is_none(),
        "no trash is left"
    );
    assert_eq!(
        s.remove("busy", false).expect_err("gone").to_string(),
        "get busy: no such volume"
    );
    s.remove("busy", true)
        .expect("force: a missing volume is no error");
    assert!(matches!(
        s.acquire("busy", "c1"),
        Err(VolumeError::NotFound(_))
    ));
    s.release("busy", "c1")
        .expect("releasing the unknown is fine");
}

#[test]
fn prune_removes_unused_anonymous_volumes_and_counts_their_bytes() {
    let (_d, s) = store();
    let anon = s.create(&req("", &[], &[])).expect("anon");
    let anon_used = s.create(&req("", &[], &[])).expect("anon used");
    let anon_labelled = s
        .create(&req("", &[], &[("keep", "yes")]))
        .expect("anon labelled");
    s.create(&req("named", &[], &[])).expect("named");
    s.create(&req(
        "withopts",
        &[("type", "tmpfs"), ("device", "tmpfs")],
        &[],
    ))
    .expect("options");
    s.acquire(&anon_used.name, "c1").expect("acquire");
    std::fs::write(s.data_dir(&anon.name).join("a"), vec![0u8; 1000]).expect("write");
    std::fs::create_dir(s.data_dir(&anon.name).join("d")).expect("mkdir");
    std::fs::write(s.data_dir(&anon.name).join("d/b"), vec![0u8; 234]).expect("write");
    std::fs::hard_link(
        s.data_dir(&anon.name).join("a"),
        s.data_dir(&anon.name).join("d/a-again"),
    )
    .expect("link");

    let r = s.prune(&filters(&[("label!", "keep")])).expect("prune");
    assert_eq!(r.deleted, vec![anon.name.clone()]);
    assert_eq!(
        r.reclaimed, 1234,
        "each inode once, directories not counted"
    );
    let r = s.prune(&filters(&[("label", "keep=no")])).expect("prune");
    assert!(r.deleted.is_empty());
    let r = s.prune(&Filters::new()).expect("prune");
    assert_eq!(r.deleted, vec![anon_labelled.name.clone()]);
    let r = s.prune(&filters(&[("all", "1")])).expect("prune all");
    assert_eq!(
        r.deleted,
        vec!["named".to_string()],
        "options and users keep theirs"
    );
    let left = names(&s.list(&Filters::new()).expect("list"))
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    let mut expected = vec![anon_used.name.clone(), "withopts".to_string()];
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(
        s.prune(&filters(&[("all", "maybe")]))
            .expect_err("bad all")
            .to_string(),
        "invalid filter 'all': strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    assert_eq!(
        s.prune(&filters(&[("all", "1"), ("all", "0")]))
            .expect_err("two")
            .to_string(),
        "invalid filter 'all=[1 0]': only one value is expected"
    );
    assert_eq!(
        s.prune(&filters(&[("until", "1h")]))
            .expect_err("until")
            .to_string(),
        "invalid filter 'until'"
    );
}

#[test]
fn opening_cleans_up_and_adopts_old_volumes() {
    let root = tempfile::tempdir().expect("tempdir");
    let vols = root.path().join("volumes");
    std::fs::create_dir_all(vols.join(".trash-old-1234/_data/deep")).expect("trash");
    std::fs::create_dir_all(vols.join("legacy/_data")).expect("legacy");
    std::fs::create_dir_all(vols.join("notavolume")).expect("dir");
    std::fs::create_dir_all(vols.join("bad name/_data")).expect("bad");
    std::fs::write(vols.join("stray-file"), b"").expect("file");
    let s = VolumeStore::open(root.path()).expect("open");
    assert!(!vols.join(".trash-old-1234").exists());
    assert_eq!(names(&s.list(&Filters::new()).expect("list")), ["legacy"]);
    let legacy = s.get("legacy").expect("legacy");
    assert!(legacy.options.is_empty() && legacy.labels.is_empty());
    assert!(!legacy.created_at.is_empty());
}

#[test]
fn bind_volumes_hand_out_their_host_directory() {
    let (_d, s) = store();
    let host = tempfile::tempdir().expect("host dir");
    let dev = host.path().display().to_string();
    let v = s
        .create(&req(
            "b1",
            &[("type", "none"), ("o", "bind"), ("device", &dev)],
            &[],
        ))
        .expect("create");
    assert_eq!(v.mountpoint, s.data_dir("b1").display().to_string());
    assert_eq!(s.mount_source("b1", "c1").expect("source"), host.path());
    assert_eq!(s.users("b1"), vec!["c1".to_string()]);
    assert!(
        !options::is_mount_point(&s.data_dir("b1")),
        "nothing is mounted"
    );
    s.unmount_source("b1", "c1").expect("stop");
    assert_eq!(s.users("b1"), vec!["c1".to_string()], "still referenced");
    s.release("b1", "c1").expect("release");

    s.create(&req(
        "b2",
        &[
            ("type", "none"),
            ("o", "bind"),
            ("device", "/nonexistent/dir"),
        ],
        &[],
    ))
    .expect("create does not check the device");
    let err = s.mount_source("b2", "c1").expect_err("missing device");
    assert_eq!(
        err.to_string(),
        format!(
            "error while mounting volume '{0}': failed to mount local volume: mount /nonexistent/dir:{0}, flags: 0x1000: no such file or directory",
            s.data_dir("b2").display()
        )
    );
    assert!(s.users("b2").is_empty(), "a failed mount does not hold it");

    // Removing the volume leaves the host directory alone.
    std::fs::write(host.path().join("keep"), b"1").expect("write");
    s.remove("b1", false).expect("remove");
    assert!(host.path().join("keep").exists());
}

/// Unmounts a path when a test ends, also when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn tmpfs_volumes_are_mounted_while_containers_use_them() {
    if !is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let (_d, s) = store();
    s.create(&req(
        "t1",
        &[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,mode=0710,noexec"),
        ],
        &[],
    ))
    .expect("create");
    let data = s.data_dir("t1");
    let _guard = Unmount(data.clone());
    assert_eq!(s.mount_source("t1", "c1").expect("mount"), data);
    assert!(options::is_mount_point(&data));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(data.to_str().expect("utf-8")))
        .expect("the mount");
    assert!(
        line.contains(" tmpfs ") && line.contains("size=1024k"),
        "{line}"
    );
    assert!(
        line.split(' ').nth(5).is_some_and(|o| o.contains("noexec")),
        "{line}"
    );
    assert_eq!(
        std::fs::metadata(&data).expect("stat").mode() & 0o7777,
        0o710
    );
    std::fs::write(data.join("f"), b"in memory").expect("write");
    // A second user shares the mount.
    assert_eq!(s.mount_source("t1", "c2").expect("again"), data);
    assert!(data.join("f").exists());
    s.unmount_source("t1", "c1").expect("first stops");
    assert!(options::is_mount_point(&data), "c2 still uses it");
    assert!(matches!(
        s.remove("t1", false),
        Err(VolumeError::InUse { .. })
    ));
    s.unmount_source("t1", "c2").expect("last stops");
    assert!(!options::is_mount_point(&data));
    assert!(
        !data.join("f").exists(),
        "tmpfs content goes with the mount"
    );
    s.release("t1", "c1").expect("release");
    s.release("t1", "c2").expect("release");
    s.remove("t1", false).expect("remove");

    // A mount that a restarted daemon finds is undone once nobody uses it.
    s.create(&req("t2", &[("type", "tmpfs"), ("device", "tmpfs")], &[]))
        .expect("create");
    let data2 = s.data_dir("t2");
    let _guard2 = Unmount(data2.clone());
    s.mount_source("t2", "c1").expect("mount");
    let root = s.dir().parent().expect("root").to_path_buf();
    let reopened = VolumeStore::open(&root).expect("reopen");
    assert!(options::is_mount_point(&data2));
    reopened.unmount_unused().expect("sweep");
    assert!(!options::is_mount_point(&data2));
    reopened.remove("t2", false).expect("remove");

    // A failing mount says why, and holds nothing.
    s.create(&req("t3", &[("type", "nosuchfs"), ("device", "x")], &[]))
        .expect("create");
    let err = s.mount_source("t3", "c1").expect_err("bad type");
    assert!(
        err.to_string().starts_with(&format!(
            "error while mounting volume '{}': failed to mount local volume: mount x:",
            s.data_dir("t3").display()
        )),
        "{err}"
    );
    assert!(s.users("t3").is_empty());
}

#[test]
fn read_only_bind_volumes_are_mounted() {
    if !is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let (_d, s) = store();
    let host = tempfile::tempdir().expect("host");
    std::fs::write(host.path().join("x"), b"1").expect("write");
    let dev = host.path().display().to_string();
    s.create(&req(
        "ro1",
        &[("type", "none"), ("o", "bind,ro"), ("device", &dev)],
        &[],
    ))
    .expect("create");
    let data = s.data_dir("ro1");
    let _guard = Unmount(data.clone());
    assert_eq!(s.mount_source("ro1", "c1").expect("mount"), data);
    assert!(data.join("x").exists());
    let err = std::fs::write(data.join("y"), b"2").expect_err("read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    s.release("ro1", "c1").expect("release");
    assert!(!options::is_mount_point(&data));
    s.remove("ro1", false).expect("remove");
    assert!(host.path().join("x").exists(), "the host's files stay");
}

fn set_owner(p: &Path, uid: u32, gid: u32) {
    rustix::fs::chownat(
        rustix::fs::CWD,
        p,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("chown");
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn copy_up_keeps_modes_owners_links_and_attributes() {
    if !is_root() {
        eprintln!("skipped: owners and device nodes need root");
        return;
    }
    let (_d, s) = store();
    let image = tempfile::tempdir().expect("image");
    let src = image.path().join("data");
    std::fs::create_dir_all(src.join("sub/deeper")).expect("dirs");
    std::fs::write(src.join("plain"), b"hello").expect("write");
    std::fs::write(src.join("suid"), b"#!/bin/sh").expect("write");
    std::fs::write(src.join("sub/secret"), b"s").expect("write");
    std::fs::write(src.join("sub/deeper/f"), vec![7u8; 5000]).expect("write");
    std::fs::hard_link(src.join("plain"), src.join("sub/plain-link")).expect("link");
    std::os::unix::fs::symlink("../plain", src.join("sub/rel")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("missing", src.join("dangling")).expect("symlink");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .expect("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .expect("device");
    set_owner(&src.join("suid"), 0, 0);
    set_mode(&src.join("suid"), 0o4755);
    set_owner(&src.join("sub/secret"), 1234, 5678);
    set_mode(&src.join("sub/secret"), 0o600);
    set_owner(&src.join("sub"), 1000, 1000);
    set_mode(&src.join("sub"), 0o750);
    set_owner(&src.join("abs"), 42, 43);
    set_owner(&src, 33, 33);
    set_mode(&src, 0o770);
    let xattr = rustix::fs::lsetxattr(
        src.join("plain"),
        "user.hafen",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        src.join("sub/deeper"),
        &old,
        rustix::fs::AtFlags::empty(),
    )
    .expect("times");

    s.create(&req("cu", &[], &[])).expect("create");
    s.copy_up("cu", &src).expect("copy up");
    let dst = s.data_dir("cu");
    let meta = |p: &str| dst.join(p).symlink_metadata().expect(p);
    assert_eq!(std::fs::read(dst.join("plain")).expect("plain"), b"hello");
    assert_eq!(
        meta("suid").mode() & 0o7777,
        0o4755,
        "setuid survives chown"
    );
    assert_eq!(
        (meta("sub/secret").uid(), meta("sub/secret").gid()),
        (1234, 5678)
    );
    assert_eq!(meta("sub/secret").mode() & 0o7777, 0o600);
    assert_eq!(
        (meta("sub").uid(), meta("sub").mode() & 0o7777),
        (1000, 0o750)
    );
    assert_eq!(meta("sub/deeper/f").len(), 5000);
    assert_eq!(
        meta("sub/deeper").mtime(),
        1_000_000_000,
        "directory times last"
    );
    assert_eq!(
        meta("sub/plain-link").ino(),
        meta("plain").ino(),
        "hardlinks stay linked"
    );
    assert_eq!(
        std::fs::read_link(dst.join("sub/rel")).expect("rel"),
        Path::new("../plain")
    );
    assert_eq!(
        std::fs::read_link(dst.join("abs")).expect("abs"),
        Path::new("/etc/passwd"),
        "symlinks are copied, not followed"
    );
    assert_eq!((meta("abs").uid(), meta("abs").gid()), (42, 43));
    assert!(meta("dangling").file_type().is_symlink());
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &meta("fifo").file_type()
    ));
    assert_eq!(meta("fifo").mode() & 0o7777, 0o640);
    assert_eq!(meta("null").rdev(), rustix::fs::makedev(1, 3));
    // The volume's root takes the owner and mode of the image's directory.
    assert_eq!((meta("").uid(), meta("").mode() & 0o7777), (33, 0o770));
    if xattr {
        let mut buf = [0u8; 16];
        let n = rustix::fs::lgetxattr(dst.join("plain"), "user.hafen", &mut buf[..])
            .expect("xattr copied");
        assert_eq!(&buf[..n], b"kept");
    }

    // Only an empty volume is filled.
    std::fs::write(src.join("later"), b"x").expect("write");
    s.copy_up("cu", &src).expect("again");
    assert!(!dst.join("later").exists());
    assert!(
        s.users("cu").is_empty(),
        "copy-up holds the volume only while it copies"
    );
}

#[test]
fn copy_up_skips_what_is_not_a_directory() {
    let (_d, s) = store();
    let image = tempfile::tempdir().expect("image");
    std::fs::create_dir(image.path().join("real")).expect("dir");
    std::fs::write(image.path().join("real/f"), b"1").expect("write");
    std::os::unix::fs::symlink("real", image.path().join("link")).expect("symlink");
    std::fs::write(image.path().join("file"), b"1").expect("write");
    s.create(&req("e1", &[], &[])).expect("create");
    for from in ["link", "file", "missing"] {
        s.copy_up("e1", &image.path().join(from)).expect(from);
    }
    assert!(
        std::fs::read_dir(s.data_dir("e1"))
            .expect("read")
            .next()
            .is_none(),
        "nothing copied"
    );
    assert!(matches!(
        s.copy_up("nope", &image.path().join("real")),
        Err(VolumeError::NotFound(_))
    ));
    // Into a bind volume: the host directory is filled.
    let host = tempfile::tempdir().expect("host");
    let dev = host.path().display().to_string();
    s.create(&req(
        "e2",
        &[("type", "none"), ("o", "bind"), ("device", &dev)],
        &[],
    ))
    .expect("bind");
    s.copy_up("e2", &image.path().join("real")).expect("copy");
    assert_eq!(std::fs::read(host.path().join("f")).expect("f"), b"1");
}

#[test]
fn sizes_and_usage() {
    let (_d, s) = store();
    s.create(&req("s1", &[], &[])).expect("create");
    s.create(&req("s2", &[("type", "tmpfs"), ("device", "tmpfs")], &[]))
        .expect("create");
    std::fs::write(s.data_dir("s1").join("a"), vec![1u8; 300]).expect("write");
    std::os::unix::fs::symlink("abc", s.data_dir("s1").join("l")).expect("symlink");
    assert_eq!(s.size("s1").expect("size"), 303);
    s.acquire("s1", "c1").expect("acquire");
    let usage = s.usage();
    assert_eq!(
        names(&usage),
        ["s1"],
        "volumes with options are not counted"
    );
    assert_eq!(
        usage[0].usage_data,
        Some(VolumeUsage {
            size: 303,
            ref_count: 1
        })
    );
    assert!(matches!(s.size("nope"), Err(VolumeError::NotFound(_))));
}
