//! The container's root filesystem: propagation, the configured mounts,
//! device nodes, `pivot_root`, masked and read-only paths.
//!
//! Every path inside the root filesystem is resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in an image (`/etc -> /`,
//! `/dev/pts -> /host`) can never lead a mount or a device node outside the
//! container's root. Mounts go onto `/proc/self/fd/<fd>` of the resolved
//! directory.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use hafen_oci::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use super::mount_options::{MountOptions, rootfs_propagation};
use crate::cgroups::{Cgroup, Layout};
use crate::sys;

/// Errors while building the root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount failed.
    #[error("cannot mount {what} on {dest}: {source}")]
    Mount {
        /// What was mounted.
        what: String,
        /// Where (inside the container).
        dest: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A bind mount's source does not exist.
    #[error("mount source {0} does not exist")]
    SourceMissing(PathBuf),
    /// A path inside the root filesystem cannot be made or resolved.
    #[error("cannot prepare {path} in the root filesystem: {source}")]
    Path {
        /// The path inside the container.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A device node cannot be made.
    #[error("cannot create device {path}: {source}")]
    Device {
        /// The node.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `linux.rootfsPropagation` is not a propagation.
    #[error(
        "linux.rootfsPropagation {0:?} is not one of shared, slave, private, unbindable (or r-)"
    )]
    Propagation(String),
    /// Joining the cgroups (needed before they are mounted) failed.
    #[error("{0}")]
    Cgroup(String),
    /// pivot_root or chroot failed.
    #[error("cannot change into the root filesystem ({step}): {source}")]
    Pivot {
        /// The step.
        step: &'static str,
        /// The error.
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, RootfsError>;

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// `/proc/self/fd/<fd>`, to mount onto or from an fd.
fn fd_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// A path inside the container, relative to its root (`/a/b` → `a/b`).
fn inside(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Where the container's mounts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountNamespace {
    /// A new mount namespace (or one joined by path, which then gets the
    /// container's root filesystem too, as runc does): the normal case.
    New,
    /// The host's (the configuration lists no mount namespace): the mounts
    /// are made under the root filesystem in the host's namespace, the root
    /// is changed with chroot only, and `delete` unmounts it all.
    Host,
}

impl MountNamespace {
    /// The mode a configuration asks for.
    pub fn of(spec: &Spec) -> Self {
        let mount = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|n| {
                n.iter()
                    .find(|n| n.typ() == hafen_oci::runtime::LinuxNamespaceType::Mount)
            });
        if mount.is_some() {
            MountNamespace::New
        } else {
            MountNamespace::Host
        }
    }
}

/// The id of the mount `path` is on (`statx` `STATX_MNT_ID`).
pub fn mount_id(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )?;
    if st.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() == 0 {
        return Err(io::ErrorKind::Unsupported.into());
    }
    Ok(st.stx_mnt_id)
}

/// Unmounts the container's mounts from a root filesystem that was set up
/// in the host's mount namespace (`MountNamespace::Host`): those stacked
/// above `base`, the mount that was there before, which stays.
pub fn unmount_host_rootfs(rootfs: &Path, base: u64) {
    // The container adds one (recursive) bind at the root; a few rounds
    // cover a container that stacked more on top itself.
    for _ in 0..8 {
        match mount_id(rootfs) {
            Ok(id) if id != base => {
                if sys::umount2(&cstr(rootfs), libc::MNT_DETACH).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// The root filesystem under construction.
#[derive(Debug)]
pub struct Rootfs<'a> {
    /// The configuration.
    pub spec: &'a Spec,
    /// The root filesystem on the host.
    pub path: &'a Path,
    /// The bundle (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// The container's cgroup (for `cgroup` mounts).
    pub cgroup: &'a Cgroup,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// Whether the container runs in a user namespace (device nodes then
    /// have to be bind-mounted from the host).
    pub userns: bool,
    /// Where the mounts live.
    pub mount_ns: MountNamespace,
    /// Mounts the runtime made ready (idmapped binds), by index in `mounts`.
    pub prepared: &'a std::collections::HashMap<usize, OwnedFd>,
}

impl Rootfs<'_> {
    /// Everything before `pivot_root`: propagation, the bind mount of the
    /// root filesystem onto itself, the configured mounts, device nodes and
    /// the `/dev` symlinks, and the working directory.
    ///
    /// `join_cgroup` is called before the first cgroup mount: the process
    /// must be in its cgroups (and cgroup namespace) by then.
    pub fn prepare(
        &self,
        cwd: &Path,
        join_cgroup: &mut dyn FnMut() -> std::result::Result<(), String>,
    ) -> Result<()> {
        let linux = self.spec.linux().as_ref();
        let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => libc::MS_SLAVE | libc::MS_REC,
            Some(p) => rootfs_propagation(p).ok_or_else(|| RootfsError::Propagation(p.into()))?,
        };
        // In the host's own mount namespace its propagation is left alone.
        if self.mount_ns == MountNamespace::New {
            sys::mount(None, c"/", None, propagation, None).map_err(|source| {
                RootfsError::Mount {
                    what: "propagation".into(),
                    dest: "/".into(),
                    source,
                }
            })?;
        }
        if propagation & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0 {
            make_parent_mount_private(self.path)?;
        }
        let root = cstr(self.path);
        sys::mount(Some(&root), &root, None, libc::MS_BIND | libc::MS_REC, None).map_err(
            |source| RootfsError::Mount {
                what: "the root filesystem".into(),
                dest: "/".into(),
                source,
            },
        )?;
        let rootfd = open_dir(self.path).map_err(|source| RootfsError::Path {
            path: "/".into(),
            source,
        })?;
        let mut dev_is_bound = false;
        for (index, m) in self
            .spec
            .mounts()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
            let bind = opts.is_bind() || m.typ().as_deref() == Some("bind");
            if inside(m.destination()) == Path::new("dev") && bind {
                dev_is_bound = true;
            }
            if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
                join_cgroup().map_err(RootfsError::Cgroup)?;
            }
            self.mount_entry(rootfd.as_fd(), m, &opts, bind, self.prepared.get(&index))?;
        }
        if !dev_is_bound {
            let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
            let umask = rustix::process::umask(Mode::empty());
            let made = self.create_devices(rootfd.as_fd(), devices);
            rustix::process::umask(umask);
            made?;
        }
        // A missing working directory is created, as runc does.
        mkdir_in_root(rootfd.as_fd(), &inside(cwd)).map_err(|source| RootfsError::Path {
            path: cwd.into(),
            source,
        })?;
        Ok(())
    }

    fn mount_entry(
        &self,
        root: BorrowedFd<'_>,
        m: &Mount,
        opts: &MountOptions,
        bind: bool,
        prepared: Option<&OwnedFd>,
    ) -> Result<()> {
        let dest = inside(m.destination());
        let shown = Path::new("/").join(&dest);
        let typ = m.typ().as_deref().unwrap_or("");
        let err = |what: &str| {
            let shown = shown.clone();
            let what = what.to_string();
            move |source| RootfsError::Mount {
                what: what.clone(),
                dest: shown.clone(),
                source,
            }
        };
        if typ == "cgroup" || typ == "cgroup2" {
            return self.mount_cgroup(root, &dest, opts);
        }
        if bind {
            let source = m.source().as_deref().unwrap_or(Path::new(""));
            let source = if source.is_absolute() {
                source.to_path_buf()
            } else {
                self.bundle.join(source)
            };
            let meta = std::fs::metadata(&source)
                .map_err(|_| RootfsError::SourceMissing(source.clone()))?;
            let target = if meta.is_dir() {
                mkdir_in_root(root, &dest)
            } else {
                create_file_in_root(root, &dest)
            }
            .map_err(|source| RootfsError::Path {
                path: shown.clone(),
                source,
            })?;
            let target_path = fd_path(target.as_fd());
            match prepared {
                // Made by the runtime (idmapped): move it into place.
                Some(fd) => rustix::mount::move_mount(
                    fd,
                    "",
                    &target,
                    "",
                    rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                        | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                )
                .map_err(|e| err(&source.display().to_string())(e.into()))?,
                None => sys::mount(
                    Some(&cstr(&source)),
                    &target_path,
                    None,
                    // `"type": "bind"` binds even without a bind option.
                    libc::MS_BIND | (opts.flags & libc::MS_REC),
                    None,
                )
                .map_err(err(&source.display().to_string()))?,
            }
            // Flags on a bind mount need a remount; reopen the target so the
            // fd names the new mount, not the directory under it.
            let target = open_in_root(root, &dest).map_err(|source| RootfsError::Path {
                path: shown.clone(),
                source,
            })?;
            let target_path = fd_path(target.as_fd());
            let flags = opts.bind_remount_flags();
            if flags != 0 {
                remount_bind(&target_path, flags).map_err(err("remount"))?;
            }
            self.finish_mount(&target, &target_path, opts, &shown)?;
            return Ok(());
        }
        let target = mkdir_in_root(root, &dest).map_err(|source| RootfsError::Path {
            path: shown.clone(),
            source,
        })?;
        let target_path = fd_path(target.as_fd());
        let source = m
            .source()
            .as_deref()
            .map(cstr)
            .unwrap_or_else(|| CString::new(typ).unwrap_or_default());
        let fstype = CString::new(typ).unwrap_or_default();
        let mut data = opts.data_string();
        if typ == "tmpfs" && !opts.data.iter().any(|d| d.starts_with("mode=")) {
            // A tmpfs over an existing directory keeps its mode (runc does this).
            if let Ok(stat) = rustix::fs::fstat(&target) {
                let mode = format!("mode={:o}", stat.st_mode & 0o7777);
                data = if data.is_empty() {
                    mode
                } else {
                    format!("{mode},{data}")
                };
            }
        }
        let data_c = CString::new(data).unwrap_or_default();
        let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC);
        if opts.tmpcopyup && typ == "tmpfs" {
            tmpcopyup(&target, &data_c, flags).map_err(err("tmpfs (tmpcopyup)"))?;
        } else {
            match sys::mount(
                Some(&source),
                &target_path,
                Some(&fstype),
                flags,
                Some(&data_c),
            ) {
                Ok(()) => {}
                // Without its own network (sysfs) or IPC (mqueue) namespace
                // owned by the container's user namespace, the kernel refuses
                // a new instance: bind the host's, as runc does.
                Err(e)
                    if e.raw_os_error() == Some(libc::EPERM)
                        && matches!(typ, "sysfs" | "mqueue") =>
                {
                    let host: &CStr = if typ == "sysfs" {
                        c"/sys"
                    } else {
                        c"/dev/mqueue"
                    };
                    sys::mount(
                        Some(host),
                        &target_path,
                        None,
                        libc::MS_BIND | libc::MS_REC,
                        None,
                    )
                    .map_err(err(typ))?;
                    let target = open_in_root(root, &dest).map_err(|source| RootfsError::Path {
                        path: shown.clone(),
                        source,
                    })?;
                    let flags = flags & !libc::MS_REMOUNT;
                    if flags != 0 {
                        remount_bind(&fd_path(target.as_fd()), flags).map_err(err("remount"))?;
                    }
                }
                Err(e) => return Err(err(typ)(e)),
            }
        }
        let target = open_in_root(root, &dest).map_err(|source| RootfsError::Path {
            path: shown.clone(),
            source,
        })?;
        let target_path = fd_path(target.as_fd());
        self.finish_mount(&target, &target_path, opts, &shown)
    }

    /// Propagation and recursive attributes of a mount that is in place.
    fn finish_mount(
        &self,
        target: &OwnedFd,
        target_path: &CStr,
        opts: &MountOptions,
        shown: &Path,
    ) -> Result<()> {
        for &p in &opts.propagation {
            sys::mount(None, target_path, None, p, None).map_err(|source| RootfsError::Mount {
                what: "propagation".into(),
                dest: shown.into(),
                source,
            })?;
        }
        if opts.attr_set != 0 || opts.attr_clr != 0 {
            sys::mount_setattr(
                target.as_fd(),
                c"",
                (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32,
                opts.attr_set,
                opts.attr_clr,
                0,
                None,
            )
            .map_err(|source| RootfsError::Mount {
                what: "attributes".into(),
                dest: shown.into(),
                source,
            })?;
        }
        Ok(())
    }

    /// `cgroup`/`cgroup2` mounts: the container's own cgroup directories.
    /// On v2 with a cgroup namespace a new cgroup2 instance (which shows the
    /// namespace's root); otherwise a tmpfs with a bind mount of the
    /// container's directory of every hierarchy, named as on the host.
    fn mount_cgroup(&self, root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
        let shown = Path::new("/").join(dest);
        let perr = |source| RootfsError::Path {
            path: shown.clone(),
            source,
        };
        let merr = |what: &str| {
            let (what, shown) = (what.to_string(), shown.clone());
            move |source| RootfsError::Mount {
                what: what.clone(),
                dest: shown.clone(),
                source,
            }
        };
        let readonly = opts.flags & libc::MS_RDONLY != 0;
        let base_flags =
            opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME);
        let target = mkdir_in_root(root, dest).map_err(perr)?;
        let target_path = fd_path(target.as_fd());
        if self.cgroup.layout == Layout::V2 {
            if self.cgroupns {
                sys::mount(
                    Some(c"cgroup2"),
                    &target_path,
                    Some(c"cgroup2"),
                    opts.flags & !libc::MS_BIND,
                    None,
                )
                .map_err(merr("cgroup2"))?;
            } else if let Some(dir) = &self.cgroup.unified {
                sys::mount(
                    Some(&cstr(dir)),
                    &target_path,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(merr("cgroup2"))?;
                if readonly {
                    let t = open_in_root(root, dest).map_err(perr)?;
                    remount_bind(&fd_path(t.as_fd()), base_flags | libc::MS_RDONLY)
                        .map_err(merr("remount"))?;
                }
            }
            return Ok(());
        }
        let data = c"mode=755";
        sys::mount(
            Some(c"tmpfs"),
            &target_path,
            Some(c"tmpfs"),
            base_flags,
            Some(data),
        )
        .map_err(merr("tmpfs"))?;
        let tmpfs = open_in_root(root, dest).map_err(perr)?;
        let mut dirs: Vec<(String, &Path)> = self
            .cgroup
            .v1
            .iter()
            .map(|d| {
                let names: Vec<&str> = d
                    .controllers
                    .iter()
                    .map(|c| c.strip_prefix("name=").unwrap_or(c))
                    .collect();
                (names.join(","), d.path.as_path())
            })
            .collect();
        if let Some(unified) = &self.cgroup.unified {
            dirs.push(("unified".to_string(), unified.as_path()));
        }
        for (name, host_dir) in &dirs {
            rustix::fs::mkdirat(&tmpfs, name.as_str(), Mode::from_raw_mode(0o755))
                .map_err(|e| perr(e.into()))?;
            let sub = rustix::fs::openat(
                &tmpfs,
                name.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| perr(e.into()))?;
            sys::mount(
                Some(&cstr(host_dir)),
                &fd_path(sub.as_fd()),
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(merr(name))?;
            // Co-mounted controllers get a symlink per name, as on the host.
            if name.contains(',') {
                for single in name.split(',') {
                    let _ = rustix::fs::symlinkat(name.as_str(), &tmpfs, single);
                }
            }
        }
        if readonly {
            // The tmpfs and every bind below it, in one call.
            let tree = open_in_root(root, dest).map_err(perr)?;
            sys::mount_setattr(
                tree.as_fd(),
                c"",
                (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32,
                libc::MOUNT_ATTR_RDONLY,
                0,
                0,
                None,
            )
            .map_err(merr("read-only"))?;
        }
        Ok(())
    }

    fn create_devices(&self, root: BorrowedFd<'_>, configured: &[LinuxDevice]) -> Result<()> {
        let devdir = mkdir_in_root(root, Path::new("dev")).map_err(|source| RootfsError::Path {
            path: "/dev".into(),
            source,
        })?;
        // Open /dev for real (not O_PATH) so *at calls resolve inside it.
        let dev = rustix::fs::openat(
            &devdir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootfsError::Path {
            path: "/dev".into(),
            source: e.into(),
        })?;
        const DEFAULTS: &[(&str, u32, u32)] = &[
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ];
        for &(name, major, minor) in DEFAULTS {
            if configured
                .iter()
                .any(|d| d.path() == Path::new("/dev").join(name).as_path())
            {
                continue;
            }
            self.make_node(
                root,
                &dev,
                Path::new(name),
                FileType::CharacterDevice,
                major,
                minor,
                0o666,
                0,
                0,
            )?;
        }
        for d in configured {
            let rel = d.path().strip_prefix("/dev").unwrap_or(d.path());
            let rel = inside(rel);
            let kind = match d.typ() {
                LinuxDeviceType::B => FileType::BlockDevice,
                LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
                LinuxDeviceType::P => FileType::Fifo,
                LinuxDeviceType::A => continue,
            };
            let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
            self.make_node(
                root,
                &dev,
                &rel,
                kind,
                d.major() as u32,
                d.minor() as u32,
                mode,
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        let links: &[(&str, &str)] = &[
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ];
        for &(target, name) in links {
            symlink(&dev, target, name)?;
        }
        if Path::new("/proc/kcore").exists() {
            symlink(&dev, "/proc/kcore", "core")?;
        }
        if !configured
            .iter()
            .any(|d| d.path() == Path::new("/dev/ptmx"))
        {
            match rustix::fs::unlinkat(&dev, "ptmx", AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => {
                    return Err(RootfsError::Device {
                        path: "/dev/ptmx".into(),
                        source: e.into(),
                    });
                }
            }
            symlink(&dev, "pts/ptmx", "ptmx")?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        root: BorrowedFd<'_>,
        dev: &OwnedFd,
        rel: &Path,
        kind: FileType,
        major: u32,
        minor: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let shown = Path::new("/dev").join(rel);
        let derr = |source: io::Error| RootfsError::Device {
            path: shown.clone(),
            source,
        };
        // Every operation below names the node by one component inside a
        // directory resolved within the root, so no symlink in the image's
        // /dev can send it elsewhere.
        let parent_fd;
        let dir: BorrowedFd<'_> = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => {
                parent_fd = mkdir_in_root(root, &Path::new("dev").join(parent)).map_err(derr)?;
                parent_fd.as_fd()
            }
            None => dev.as_fd(),
        };
        let name = rel
            .file_name()
            .ok_or_else(|| derr(io::Error::from_raw_os_error(libc::EINVAL)))?;
        let mknod = || {
            rustix::fs::mknodat(
                dir,
                name,
                kind,
                Mode::from_raw_mode(mode),
                rustix::fs::makedev(major, minor),
            )
        };
        let made = if self.userns && kind != FileType::Fifo {
            Err(rustix::io::Errno::PERM)
        } else {
            // A fresh /dev tmpfs is empty; only an image's own /dev has nodes
            // in the way (unlinkat removes a symlink itself, not its target).
            mknod().or_else(|e| {
                if e != rustix::io::Errno::EXIST {
                    return Err(e);
                }
                rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
                mknod()
            })
        };
        match made {
            Ok(()) => {
                // The umask is 0 while nodes are made (see create_devices):
                // the mode is exact; root's nodes are already root's.
                if uid != 0 || gid != 0 {
                    rustix::fs::chownat(
                        dir,
                        name,
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| derr(e.into()))?;
                }
                Ok(())
            }
            // In a user namespace device nodes cannot be made: bind the
            // host's node onto an empty file instead (runc does the same).
            Err(rustix::io::Errno::PERM) if kind != FileType::Fifo => {
                match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                    Err(e) => return Err(derr(e.into())),
                }
                let file = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::WRONLY
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0),
                )
                .map_err(|e| derr(e.into()))?;
                drop(file);
                let target = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| derr(e.into()))?;
                sys::mount(
                    Some(&cstr(&shown)),
                    &fd_path(target.as_fd()),
                    None,
                    libc::MS_BIND,
                    None,
                )
                .map_err(derr)
            }
            Err(e) => Err(derr(e.into())),
        }
    }
}

fn symlink(dev: &OwnedFd, target: &str, name: &str) -> Result<()> {
    match rustix::fs::symlinkat(target, dev, name) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(RootfsError::Device {
            path: Path::new("/dev").join(name),
            source: e.into(),
        }),
    }
}

/// Remounts a bind mount with flags, keeping the flags the kernel locks
/// (those of a mount inherited from a more privileged namespace) if the
/// first attempt is refused.
fn remount_bind(target: &CStr, flags: u64) -> io::Result<()> {
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match sys::mount(None, target, None, base | flags, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let current = rustix::fs::statvfs(target)
                .map(|s| s.f_flag.bits())
                .unwrap_or(0);
            let mut locked = 0;
            for (st, ms) in [
                (libc::ST_NOSUID, libc::MS_NOSUID),
                (libc::ST_NODEV, libc::MS_NODEV),
                (libc::ST_NOEXEC, libc::MS_NOEXEC),
                (libc::ST_NOATIME, libc::MS_NOATIME),
                (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                (libc::ST_RELATIME, libc::MS_RELATIME),
                (libc::ST_RDONLY, libc::MS_RDONLY),
            ] {
                if current & st != 0 {
                    locked |= ms;
                }
            }
            sys::mount(None, target, None, base | flags | locked, None)
        }
        other => other,
    }
}

/// Mounts a tmpfs whose initial content is a copy of the directory it covers.
fn tmpcopyup(target: &OwnedFd, data: &CStr, flags: u64) -> io::Result<()> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for option in data
        .to_bytes()
        .split(|&b| b == b',')
        .filter(|o| !o.is_empty())
    {
        let option =
            std::str::from_utf8(option).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        match option.split_once('=') {
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v)?,
            None => rustix::mount::fsconfig_set_flag(&fs, option)?,
        }
    }
    rustix::mount::fsconfig_create(&fs)?;
    let mut attrs = MountAttrFlags::empty();
    for (ms, attr) in [
        (libc::MS_NOSUID, MountAttrFlags::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MountAttrFlags::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MountAttrFlags::MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            attrs |= attr;
        }
    }
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    let from = rustix::fs::openat(
        target,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    copy_tree(from.as_fd(), mnt.as_fd())?;
    rustix::mount::move_mount(
        &mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    if flags & libc::MS_RDONLY != 0 {
        sys::mount(
            None,
            &fd_path(target.as_fd()),
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | (flags & !libc::MS_RDONLY),
            Some(data),
        )?;
    }
    Ok(())
}

/// Copies a directory tree (files, directories, symlinks; modes and
/// owners) from one directory fd into another.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let dir = rustix::fs::Dir::read_from(from)?;
    for entry in dir {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(to, name, mode)?;
                let sub_from = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let sub_to = rustix::fs::openat(
                    to,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_tree(sub_from.as_fd(), sub_to.as_fd())?;
            }
            FileType::RegularFile => {
                let src = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let dst = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut src = std::fs::File::from(src);
                let mut dst = std::fs::File::from(dst);
                io::copy(&mut src, &mut dst)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(from, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), to, name)?;
            }
            _ => continue,
        }
        rustix::fs::chownat(
            to,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            rustix::fs::chmodat(to, name, mode, AtFlags::empty())?;
        }
    }
    Ok(())
}

/// Makes the mount that holds `path` private, so that the bind mount of the
/// root filesystem does not propagate and `pivot_root` accepts it.
fn make_parent_mount_private(path: &Path) -> Result<()> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| RootfsError::Path {
            path: path.into(),
            source,
        })?;
    let mut best: Option<PathBuf> = None;
    for line in info.lines() {
        let Some(mountpoint) = line.split(' ').nth(4) else {
            continue;
        };
        let mountpoint = PathBuf::from(mountpoint.replace("\\040", " "));
        if path.starts_with(&mountpoint)
            && best
                .as_ref()
                .is_none_or(|b| mountpoint.as_os_str().len() > b.as_os_str().len())
        {
            best = Some(mountpoint);
        }
    }
    let target = cstr(&best.unwrap_or_else(|| PathBuf::from("/")));
    sys::mount(None, &target, None, libc::MS_PRIVATE, None).map_err(|source| RootfsError::Mount {
        what: "private propagation".into(),
        dest: path.into(),
        source,
    })
}

/// `pivot_root` into the prepared root filesystem (or, where that is not
/// possible, such as a root filesystem on initramfs, move it over `/` and
/// `chroot`).
pub fn pivot(rootfs: &Path, no_pivot: bool, mount_ns: MountNamespace) -> Result<()> {
    let perr = |step| move |e: io::Error| RootfsError::Pivot { step, source: e };
    match mount_ns {
        MountNamespace::Host => {
            // pivot_root or MS_MOVE would change the root of the whole host.
            rustix::process::chroot(rootfs).map_err(|e| perr("chroot")(e.into()))?;
            return rustix::process::chdir("/").map_err(|e| perr("chdir /")(e.into()));
        }
        MountNamespace::New => {}
    }
    let root = open_dir(rootfs).map_err(perr("open"))?;
    rustix::process::fchdir(&root).map_err(|e| perr("chdir")(e.into()))?;
    if !no_pivot {
        match rustix::process::pivot_root(".", ".") {
            Ok(()) => {
                // The old root is stacked under the new one: detach it, after
                // making sure the unmount does not propagate to the host.
                sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
                    .map_err(perr("old root propagation"))?;
                sys::umount2(c".", libc::MNT_DETACH).map_err(perr("unmount old root"))?;
                rustix::process::chdir("/").map_err(|e| perr("chdir /")(e.into()))?;
                return Ok(());
            }
            Err(rustix::io::Errno::INVAL) => {}
            Err(e) => return Err(perr("pivot_root")(e.into())),
        }
    }
    sys::mount(Some(c"."), c"/", None, libc::MS_MOVE, None).map_err(perr("move root"))?;
    rustix::process::chroot(".").map_err(|e| perr("chroot")(e.into()))?;
    rustix::process::chdir("/").map_err(|e| perr("chdir /")(e.into()))
}

/// After `pivot_root`: masked paths, read-only paths, the read-only root and
/// the root's propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        mask_path(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        readonly_path(Path::new(path))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(c"/", libc::MS_RDONLY).map_err(|source| RootfsError::Mount {
            what: "read-only root".into(),
            dest: "/".into(),
            source,
        })?;
    }
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    {
        let flag = rootfs_propagation(p).ok_or_else(|| RootfsError::Propagation(p.into()))?;
        sys::mount(None, c"/", None, flag, None).map_err(|source| RootfsError::Mount {
            what: "propagation".into(),
            dest: "/".into(),
            source,
        })?;
    }
    Ok(())
}

/// Hides a path: `/dev/null` over a file, an empty read-only tmpfs over a
/// directory. Paths that do not exist are skipped.
fn mask_path(path: &Path) -> Result<()> {
    let target = cstr(path);
    let err = |source| RootfsError::Mount {
        what: "mask".into(),
        dest: path.into(),
        source,
    };
    match sys::mount(Some(c"/dev/null"), &target, None, libc::MS_BIND, None) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => sys::mount(
            Some(c"tmpfs"),
            &target,
            Some(c"tmpfs"),
            libc::MS_RDONLY,
            Some(c"size=0k,nr_inodes=1"),
        )
        .map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// Makes a path read-only by bind-mounting it onto itself.
fn readonly_path(path: &Path) -> Result<()> {
    let target = cstr(path);
    let err = |source| RootfsError::Mount {
        what: "read-only".into(),
        dest: path.into(),
        source,
    };
    match sys::mount(
        Some(&target),
        &target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    ) {
        Ok(()) => remount_bind(&target, libc::MS_RDONLY | libc::MS_REC).map_err(err),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(err(e)),
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens a path inside the root (symlinks resolved inside it).
fn open_in_root(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    Ok(rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?)
}

/// `mkdir -p` inside the root; returns the directory (O_PATH).
pub fn mkdir_in_root(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    match open_in_root(root, rel) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent_fd = mkdir_in_root(root, parent)?;
    match rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, rel)
}

/// Creates an empty file inside the root (for a bind mount of a file);
/// returns it (O_PATH).
fn create_file_in_root(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, rel) {
        return Ok(fd);
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent_fd = mkdir_in_root(root, parent)?;
    let dir = rustix::fs::openat(
        &parent_fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_paths() {
        assert_eq!(inside(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(inside(Path::new("a/./b")), PathBuf::from("a/b"));
        assert_eq!(inside(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // etc -> / and a -> ../../.. : both must stay inside root.
        std::os::unix::fs::symlink("/", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a")).unwrap();
        let rootfd = open_dir(&root).unwrap();
        mkdir_in_root(rootfd.as_fd(), Path::new("etc/x/y")).unwrap();
        assert!(root.join("x/y").is_dir(), "etc/x/y lands in root/x/y");
        mkdir_in_root(rootfd.as_fd(), Path::new("a/z")).unwrap();
        assert!(root.join("z").is_dir());
        assert!(!dir.path().join("z").exists());
        create_file_in_root(rootfd.as_fd(), Path::new("etc/f")).unwrap();
        assert!(root.join("f").is_file());
    }
}
