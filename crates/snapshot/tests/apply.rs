//! Layer apply and snapshotters against the real filesystem and kernel
//! (run as root: ownership, device nodes, overlay mounts).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_snapshot::apply::{ApplyError, Options, apply};
use hafen_snapshot::{Snapshotter, Whiteouts, chain_ids, native::Native, overlay::Overlay};
use hafen_store::Db;

/// A layer tar under construction; entries are written with raw names so
/// that malicious names (which the tar crate's own setters refuse) can be
/// made too.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h
    }

    fn add(mut self, mut h: tar::Header, data: &[u8]) -> Layer {
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn dir(self, name: &str) -> Layer {
        let h = Layer::header(tar::EntryType::Directory, name, 0o755);
        self.add(h, b"")
    }

    fn file(self, name: &str, data: &[u8]) -> Layer {
        let h = Layer::header(tar::EntryType::Regular, name, 0o644);
        self.add(h, data)
    }

    fn link(self, kind: tar::EntryType, name: &str, target: &str) -> Layer {
        let mut h = Layer::header(kind, name, 0o777);
        let bytes = target.as_bytes();
        h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
        self.add(h, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Symlink, name, target)
    }

    fn hardlink(self, name: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Link, name, target)
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn opts(whiteouts: Whiteouts) -> Options<'static> {
    Options {
        whiteouts,
        lowers: &[],
        chown: true,
    }
}

/// A sandbox: `root` is the layer directory, `outside` a sibling that
/// nothing may touch.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layer");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "untouched").unwrap();
    Sandbox {
        root,
        outside,
        _dir: dir,
    }
}

fn outside_untouched(s: &Sandbox) {
    let names: Vec<String> = std::fs::read_dir(&s.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["victim"]);
    assert_eq!(
        std::fs::read_to_string(s.outside.join("victim")).unwrap(),
        "untouched"
    );
}

#[test]
fn every_kind_of_entry_with_its_metadata() {
    let s = sandbox();
    let mut owned = Layer::header(tar::EntryType::Regular, "usr/bin/tool", 0o4755);
    owned.set_uid(1000);
    owned.set_gid(2000);
    let fifo = Layer::header(tar::EntryType::Fifo, "run/pipe", 0o600);
    let mut null = Layer::header(tar::EntryType::Char, "dev/null", 0o666);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    // A PAX extended header with an extended attribute and a fine mtime.
    let mut xattr_file = Layer::header(tar::EntryType::Regular, "etc/caps", 0o644);
    xattr_file.set_size(2);
    xattr_file.set_cksum();
    b.append_pax_extensions([
        ("SCHILY.xattr.user.hafen", b"yes".as_slice()),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y".as_slice()),
        ("mtime", b"1700000000.5".as_slice()),
    ])
    .unwrap();
    b.append(&xattr_file, &b"ok"[..]).unwrap();
    let pax_part = b.into_inner().unwrap();

    let layer = Layer::new()
        .dir("usr/")
        .dir("usr/bin/")
        .add(owned, b"#!/bin/sh\n")
        .file("usr/bin/data", b"0123456789")
        .hardlink("usr/bin/data-link", "usr/bin/data")
        .symlink("usr/bin/sh", "tool")
        .add(fifo, b"")
        .add(null, b"")
        .file("implied/parent/file", b"x")
        .finish();
    // Two archives in a row: strip the first's end blocks.
    let mut tar = pax_part[..pax_part.len() - 1024].to_vec();
    tar.extend_from_slice(&layer);

    let applied = apply(&tar[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    // Regular files (hardlink once) and symlink targets, as Docker counts.
    assert_eq!(applied.size, 2 + 10 + 10 + 4 + 1);

    let tool = std::fs::metadata(s.root.join("usr/bin/tool")).unwrap();
    assert_eq!((tool.uid(), tool.gid()), (1000, 2000));
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    assert_eq!(tool.mtime(), 1_700_000_000);
    let data = std::fs::metadata(s.root.join("usr/bin/data")).unwrap();
    let link = std::fs::metadata(s.root.join("usr/bin/data-link")).unwrap();
    assert_eq!(data.ino(), link.ino());
    assert_eq!(
        std::fs::read_link(s.root.join("usr/bin/sh")).unwrap(),
        Path::new("tool")
    );
    assert!(
        std::fs::metadata(s.root.join("run/pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = std::fs::metadata(s.root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        std::fs::read(s.root.join("implied/parent/file")).unwrap(),
        b"x"
    );
    let caps = s.root.join("etc/caps");
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(&caps, "user.hafen", &mut value).unwrap();
    assert_eq!(&value[..n], b"yes");
    assert!(
        rustix::fs::getxattr(&caps, "trusted.overlay.opaque", &mut value).is_err(),
        "a layer cannot forge overlayfs attributes"
    );
    let caps_meta = std::fs::metadata(&caps).unwrap();
    assert_eq!(
        (caps_meta.mtime(), caps_meta.mtime_nsec()),
        (1_700_000_000, 500_000_000)
    );
    // Directory times are set after their children were made.
    assert_eq!(
        std::fs::metadata(s.root.join("usr/bin")).unwrap().mtime(),
        1_700_000_000
    );
}

#[test]
fn modes_and_owners_are_exact_whatever_the_umask_and_setgid_parents() {
    let s = sandbox();
    let mut shared = Layer::header(tar::EntryType::Directory, "srv/shared/", 0o2775);
    shared.set_gid(50);
    let open = Layer::header(tar::EntryType::Regular, "srv/open", 0o666);
    let locked = Layer::header(tar::EntryType::Regular, "srv/locked", 0o000);
    let sticky = Layer::header(tar::EntryType::Directory, "srv/tmp/", 0o1777);
    let layer = Layer::new()
        .dir("srv/")
        .add(shared, b"")
        // Root's file and directory in a set-group-ID directory: the
        // layer says 0:0, not the directory's group, and no inherited bit.
        .file("srv/shared/file", b"x")
        .dir("srv/shared/sub/")
        .add(open, b"rw")
        .add(locked, b"")
        .add(sticky, b"")
        .finish();
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let result = apply(&layer[..], &s.root, &opts(Whiteouts::Overlay));
    rustix::process::umask(old);
    result.unwrap();
    let meta = |p: &str| std::fs::symlink_metadata(s.root.join(p)).unwrap();
    assert_eq!(meta("srv/shared").gid(), 50);
    assert_eq!(meta("srv/shared").mode() & 0o7777, 0o2775);
    assert_eq!(meta("srv/shared/file").gid(), 0);
    assert_eq!(meta("srv/shared/file").mode() & 0o7777, 0o644);
    assert_eq!(meta("srv/shared/sub").gid(), 0);
    assert_eq!(meta("srv/shared/sub").mode() & 0o7777, 0o755);
    assert_eq!(
        meta("srv/open").mode() & 0o7777,
        0o666,
        "not cut by the umask"
    );
    assert_eq!(meta("srv/locked").mode() & 0o7777, 0o000);
    assert_eq!(std::fs::read(s.root.join("srv/open")).unwrap(), b"rw");
    assert_eq!(meta("srv/tmp").mode() & 0o7777, 0o1777);
}

#[test]
fn later_entries_win_over_earlier_ones() {
    // Names given twice, files replaced by directories and back, links to
    // earlier files: the tar's order decides.
    let s = sandbox();
    let mut layer = Layer::new().dir("many/");
    for i in 0..300 {
        layer = layer.file(&format!("many/f{i}"), format!("{i}").as_bytes());
    }
    let layer = layer
        .file("dup", b"first")
        .file("dup", b"second")
        .file("a", b"a file first")
        .dir("a/")
        .file("a/x", b"inside")
        .dir("g/")
        .file("g/1", b"one")
        .file("g", b"a file now")
        .file("e", b"linked")
        .hardlink("f", "e")
        .file("many/f7", b"rewritten")
        .finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    let read = |p: &str| std::fs::read_to_string(s.root.join(p)).unwrap();
    for i in 0..300 {
        if i != 7 {
            assert_eq!(read(&format!("many/f{i}")), i.to_string());
        }
    }
    assert_eq!(read("many/f7"), "rewritten");
    assert_eq!(read("dup"), "second");
    assert!(s.root.join("a").is_dir());
    assert_eq!(read("a/x"), "inside");
    assert!(s.root.join("g").is_file());
    assert_eq!(read("g"), "a file now");
    let e = std::fs::metadata(s.root.join("e")).unwrap();
    let f = std::fs::metadata(s.root.join("f")).unwrap();
    assert_eq!(e.ino(), f.ino());
    assert_eq!(read("f"), "linked");
    assert_eq!(
        std::fs::metadata(s.root.join("many/f299")).unwrap().mtime(),
        1_700_000_000
    );
}

#[test]
fn a_default_acl_on_the_target_does_not_change_the_layers_modes() {
    let s = sandbox();
    // A default ACL user::rwx group::r-x other::--- on the target: new
    // files would get no permissions for others.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 5), (0x20, 0)] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    rustix::fs::setxattr(
        &s.root,
        "system.posix_acl_default",
        &acl,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let layer = Layer::new().dir("etc/").file("etc/motd", b"hi").finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    let mode = |p: &str| std::fs::metadata(s.root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("etc"), 0o755);
    assert_eq!(mode("etc/motd"), 0o644);
}

#[test]
fn overlay_whiteouts() {
    let s = sandbox();
    let layer = Layer::new()
        .dir("etc/")
        .file("etc/.wh.gone", b"")
        .dir("var/")
        .file("var/.wh..wh..opq", b"")
        .file("var/kept", b"new")
        .finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    let gone = std::fs::symlink_metadata(s.root.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!s.root.join("etc/.wh.gone").exists());
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(s.root.join("var"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    assert_eq!(std::fs::read(s.root.join("var/kept")).unwrap(), b"new");
}

#[test]
fn a_directory_that_replaces_a_whiteout_is_opaque() {
    let s = sandbox();
    let layer = Layer::new()
        .file(".wh.cache", b"")
        .dir("cache/")
        .file("cache/fresh", b"1")
        .file(".wh.lib", b"")
        .file("lib/implied/file", b"2")
        .finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    for dir in ["cache", "lib"] {
        let mut v = [0u8; 4];
        let n = rustix::fs::getxattr(s.root.join(dir), "trusted.overlay.opaque", &mut v)
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(&v[..n], b"y", "{dir}");
    }
}

#[test]
fn implied_directories_keep_the_lower_layers_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("meta.db")).unwrap());
    let sn = Overlay::open(&dir.path().join("snapshots"), db).unwrap();
    let mut etc = Layer::header(tar::EntryType::Directory, "etc/", 0o750);
    etc.set_uid(7);
    etc.set_gid(8);
    etc.set_mtime(1_600_000_000);
    let base = Layer::new().add(etc, b"").file("etc/a", b"a").finish();
    let top = Layer::new().file("etc/b", b"b").finish();
    let mut parent: Option<String> = None;
    for (i, layer) in [&base, &top].into_iter().enumerate() {
        let key = format!("k{i}");
        sn.prepare(&key, parent.as_deref()).unwrap();
        let t = sn.apply_target(&key).unwrap();
        let o = Options {
            whiteouts: t.whiteouts,
            lowers: &t.lowers,
            chown: true,
        };
        apply(&layer[..], &t.dir, &o).unwrap();
        sn.commit(&format!("c{i}"), &key, None).unwrap();
        parent = Some(format!("c{i}"));
    }
    let upper_etc = std::fs::metadata(sn.dir("c1").unwrap().join("etc")).unwrap();
    assert_eq!(upper_etc.permissions().mode() & 0o7777, 0o750);
    assert_eq!((upper_etc.uid(), upper_etc.gid()), (7, 8));
    assert_eq!(upper_etc.mtime(), 1_600_000_000);
}

#[test]
fn removing_whiteouts_on_a_full_copy() {
    let s = sandbox();
    for (path, body) in [("etc/gone", "x"), ("etc/stays", "x"), ("var/old", "x")] {
        let p = s.root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let layer = Layer::new()
        .file("etc/.wh.gone", b"")
        .file("var/new", b"mine")
        .file("var/.wh..wh..opq", b"")
        .file("etc/.wh.never-existed", b"")
        .finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Remove)).unwrap();
    assert!(!s.root.join("etc/gone").exists());
    assert!(s.root.join("etc/stays").exists());
    assert!(
        !s.root.join("var/old").exists(),
        "opaque hides the lower contents"
    );
    assert_eq!(
        std::fs::read(s.root.join("var/new")).unwrap(),
        b"mine",
        "but not what the same layer put there"
    );
}

#[test]
fn malicious_layers_are_refused_and_write_nothing_outside() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            Layer::new().file("../outside/victim", b"pwned").finish(),
        ),
        (
            "dot-dot-deep",
            Layer::new().file("a/../../outside/new", b"pwned").finish(),
        ),
        (
            "absolute",
            Layer::new()
                .file("/tmp/hafen-absolute-entry", b"pwned")
                .finish(),
        ),
        (
            "symlink parent, relative",
            Layer::new()
                .symlink("escape", "../outside")
                .file("escape/victim", b"pwned")
                .finish(),
        ),
        (
            "symlink parent, absolute",
            Layer::new()
                .symlink("escape", "/")
                .file("escape/tmp/hafen-absolute-symlink", b"pwned")
                .finish(),
        ),
        (
            "symlink parent, nested",
            Layer::new()
                .dir("a/")
                .symlink("a/b", "../../outside")
                .file("a/b/new", b"pwned")
                .finish(),
        ),
        (
            "hardlink out",
            Layer::new()
                .hardlink("stolen", "../outside/victim")
                .finish(),
        ),
        (
            "hardlink through a symlink",
            Layer::new()
                .symlink("escape", "../outside")
                .hardlink("stolen", "escape/victim")
                .finish(),
        ),
        (
            "whiteout through a symlink",
            Layer::new()
                .symlink("escape", "../outside")
                .file("escape/.wh.victim", b"")
                .finish(),
        ),
    ];
    for (what, layer) in cases {
        for whiteouts in [Whiteouts::Overlay, Whiteouts::Remove] {
            let s = sandbox();
            let err = apply(&layer[..], &s.root, &opts(whiteouts)).unwrap_err();
            assert!(
                matches!(err, ApplyError::Unsafe { .. }),
                "{what}: expected a refusal, got {err}"
            );
            assert!(err.to_string().starts_with("unsafe layer"), "{err}");
            outside_untouched(&s);
        }
    }
    assert!(!Path::new("/tmp/hafen-absolute-entry").exists());
    assert!(!Path::new("/tmp/hafen-absolute-symlink").exists());
}

#[test]
fn symlinks_inside_the_layer_are_followed_for_parents() {
    let s = sandbox();
    let layer = Layer::new()
        .dir("usr/")
        .dir("usr/lib/")
        .symlink("lib", "usr/lib")
        .file("lib/libc.so", b"elf")
        .finish();
    apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    assert_eq!(
        std::fs::read(s.root.join("usr/lib/libc.so")).unwrap(),
        b"elf"
    );
}

#[test]
fn truncated_and_garbage_tars_fail_cleanly() {
    let layer = Layer::new().file("big", &[7u8; 10_000]).finish();
    for bad in [&layer[..5000], &b"not a tar at all, just some bytes"[..]] {
        let s = sandbox();
        let r = apply(bad, &s.root, &opts(Whiteouts::Overlay));
        assert!(r.is_err(), "{r:?}");
        outside_untouched(&s);
    }
}

/// Unmounts on drop, also when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn mount_all(mounts: &[hafen_snapshot::Mount], target: &Path) -> Mounted {
    assert_eq!(mounts.len(), 1);
    let m = &mounts[0];
    if m.kind == "bind" {
        rustix::mount::mount_bind_recursive(Path::new(&m.source), target).unwrap();
    } else {
        let data = std::ffi::CString::new(m.options.join(",")).unwrap();
        rustix::mount::mount(
            m.source.as_str(),
            target,
            m.kind.as_str(),
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .unwrap();
    }
    Mounted(target.to_path_buf())
}

/// Two layers unpacked with a snapshotter, then the top mounted: the
/// second layer's whiteouts hide the first's files.
fn stack_two_layers(make: impl Fn(&Path, Arc<Db>) -> Arc<dyn Snapshotter>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("meta.db")).unwrap());
    let sn = make(&dir.path().join("snapshots"), db);
    let base = Layer::new()
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/gone", b"old")
        .dir("var/")
        .file("var/lower", b"lower")
        .file("shared", b"shared")
        .finish();
    let top = Layer::new()
        .file("etc/.wh.gone", b"")
        .dir("var/")
        .file("var/.wh..wh..opq", b"")
        .file("var/upper", b"upper")
        .hardlink("shared-link", "shared")
        .finish();
    let diff_ids: Vec<_> = [&base, &top]
        .iter()
        .map(|l| hafen_oci::Digest::sha256(l))
        .collect();
    let chain = chain_ids(&diff_ids);
    let mut parent: Option<String> = None;
    for (layer, id) in [&base, &top].into_iter().zip(&chain) {
        let key = format!("extract-{id}");
        sn.prepare(&key, parent.as_deref()).unwrap();
        let target = sn.apply_target(&key).unwrap();
        let applied = apply(
            &layer[..],
            &target.dir,
            &Options {
                whiteouts: target.whiteouts,
                lowers: &target.lowers,
                chown: true,
            },
        )
        .unwrap();
        sn.commit(&id.to_string(), &key, Some(applied.size))
            .unwrap();
        parent = Some(id.to_string());
    }
    let top_key = chain[1].to_string();
    assert_eq!(sn.stat(&top_key).unwrap().unwrap().kind, "committed");

    // A container's writable layer on top, mounted for real.
    sn.prepare("container", Some(&top_key)).unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let mounted = mount_all(&sn.mounts("container").unwrap(), &rootfs);
    assert!(rootfs.join("etc/passwd").exists());
    assert!(!rootfs.join("etc/gone").exists(), "whited out");
    assert!(!rootfs.join("var/lower").exists(), "opaque directory");
    assert_eq!(std::fs::read(rootfs.join("var/upper")).unwrap(), b"upper");
    assert_eq!(
        std::fs::read(rootfs.join("shared-link")).unwrap(),
        b"shared"
    );
    std::fs::write(rootfs.join("written"), "by the container").unwrap();
    drop(mounted);
    assert!(
        sn.dir("container").unwrap().join("written").exists(),
        "writes land in the container's own snapshot"
    );
    assert!(!sn.dir(&top_key).unwrap().join("written").exists());

    // Parents cannot go before their children.
    assert!(sn.remove(&chain[0].to_string()).is_err());
    sn.remove("container").unwrap();
    sn.remove(&top_key).unwrap();
    sn.remove(&chain[0].to_string()).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn overlay_snapshots_stack_and_mount() {
    stack_two_layers(|root, db| Arc::new(Overlay::open(root, db).unwrap()));
}

#[test]
fn native_snapshots_stack_and_mount() {
    stack_two_layers(|root, db| Arc::new(Native::open(root, db).unwrap()));
}

#[test]
fn overlay_is_supported_here() {
    let dir = tempfile::tempdir().unwrap();
    assert!(hafen_snapshot::overlay::supported(dir.path()));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the probe cleans up");
}

#[test]
fn writing_a_file_then_checking_size_of_large_layers() {
    // A layer of many files: every byte arrives.
    let mut b = Layer::new().dir("data/");
    for i in 0..500 {
        b = b.file(&format!("data/f{i}"), format!("file {i}").as_bytes());
    }
    let layer = b.finish();
    let s = sandbox();
    let applied = apply(&layer[..], &s.root, &opts(Whiteouts::Overlay)).unwrap();
    assert_eq!(applied.entries, 501);
    let total: u64 = (0..500).map(|i| format!("file {i}").len() as u64).sum();
    assert_eq!(applied.size, total);
    let mut f = std::fs::File::open(s.root.join("data/f499")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).unwrap();
    assert_eq!(text, "file 499");
    let _ = std::io::stdout().flush();
}
