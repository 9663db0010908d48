//! Layer apply: a layer tar (already decompressed) written into a directory.
//!
//! Everything an image layer can hold is reproduced: regular files,
//! directories, symlinks, hardlinks, device nodes and FIFOs, ownership,
//! modes (set-id bits included), extended attributes and modification times
//! (directories' after their children). Whiteouts follow the OCI layer
//! format: `.wh.<name>` hides `<name>` of the layers below, `.wh..wh..opq`
//! hides a directory's lower contents. With [`Whiteouts::Overlay`] they
//! become overlayfs whiteouts (a 0/0 character device, the
//! `trusted.overlay.opaque` attribute) in an upper directory; with
//! [`Whiteouts::Remove`] the hidden files are deleted from a full copy.
//!
//! Extraction is safe: a name that is absolute or has a `..` component, a
//! hardlink to such a name, and a name whose parent directory resolves
//! through a symlink to outside the target directory (checked by the kernel:
//! `openat2(RESOLVE_BENEATH)`) each make the whole layer fail with
//! [`ApplyError::Unsafe`]. Nothing is ever written outside the target.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, RawMode, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

/// How whiteouts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// As overlayfs whiteouts in an upper directory.
    Overlay,
    /// By deleting what they hide (the target holds the lower layers).
    Remove,
}

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The layer tries to write outside its directory.
    #[error("unsafe layer: entry {entry:?} {reason}")]
    Unsafe {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tar stream is damaged or truncated.
    #[error("invalid layer tar: {0}")]
    Tar(io::Error),
    /// An entry of a kind hafen does not extract.
    #[error("layer entry {entry:?} has unsupported type {kind:?}")]
    Unsupported {
        /// The entry.
        entry: String,
        /// Its tar type flag.
        kind: char,
    },
    /// A hardlink whose target is not in the layer or below it.
    #[error("layer entry {entry:?} links to {target:?}, which does not exist")]
    LinkTarget {
        /// The entry.
        entry: String,
        /// The link target.
        target: String,
    },
    /// The filesystem refused an operation.
    #[error("cannot extract {entry:?}: {source}")]
    Io {
        /// The entry.
        entry: String,
        /// The error.
        source: io::Error,
    },
}

/// What an apply did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The layer's size as Docker counts it: the bytes of its regular files
    /// (each hardlinked file once) and symlinks.
    pub size: u64,
    /// The number of tar entries.
    pub entries: u64,
}

/// Options for [`apply`].
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// How whiteouts are written.
    pub whiteouts: Whiteouts,
    /// Lower directories, top first, where a hardlink's target may live
    /// when the layer is applied into an overlay upper directory.
    pub lowers: &'a [PathBuf],
    /// Whether to set ownership (false when not privileged to).
    pub chown: bool,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const COPY_BUFFER: usize = 1 << 20;

/// Applies a layer tar read from `tar` into the directory `root`. The
/// whole stream is consumed (so that a hash of it covers the tar's end).
pub fn apply(tar: impl Read, root: &Path, opts: &Options<'_>) -> Result<Applied, ApplyError> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::Io {
        entry: "/".into(),
        source: e.into(),
    })?;
    let mut state = State {
        root: root_fd,
        opts,
        parent: None,
        made: HashSet::new(),
        dirs: Vec::new(),
        buf: vec![0; COPY_BUFFER],
        applied: Applied::default(),
        umask: current_umask(),
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(ApplyError::Tar)? {
        let entry = entry.map_err(ApplyError::Tar)?;
        state.entry(entry)?;
    }
    // The end-of-archive blocks and any padding belong to the layer too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(ApplyError::Tar)?;
    state.finish_dirs()?;
    Ok(state.applied)
}

/// A checked relative name inside the layer.
fn clean_name(raw: &Path, entry: &str) -> Result<PathBuf, ApplyError> {
    let unsafe_name = |reason| ApplyError::Unsafe {
        entry: entry.to_string(),
        reason,
    };
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_name("has an absolute path"));
            }
            Component::ParentDir => return Err(unsafe_name("has a \"..\" component")),
        }
    }
    Ok(out)
}

/// An open parent directory.
struct Parent {
    rel: PathBuf,
    fd: OwnedFd,
    /// Whether it has the set-group-ID bit (its new files take its group).
    setgid: bool,
}

/// The process's umask, if the kernel tells it (without changing it).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

/// Whether this process is root (its new files are owned by 0:0).
fn is_root() -> bool {
    rustix::process::geteuid().is_root() && rustix::process::getegid().is_root()
}

struct State<'a> {
    root: OwnedFd,
    opts: &'a Options<'a>,
    /// The last parent directory opened, by relative path.
    parent: Option<Parent>,
    /// Names this layer made (whiteouts do not hide them).
    made: HashSet<PathBuf>,
    /// Directories whose times are set at the end, after their children.
    dirs: Vec<(PathBuf, Timestamps)>,
    buf: Vec<u8>,
    applied: Applied,
    /// The umask files are made with (unknown: always chmod).
    umask: Option<u32>,
}

/// The metadata of an entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl State<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ApplyError> {
        self.applied.entries += 1;
        let raw = entry.path().map_err(ApplyError::Tar)?.into_owned();
        let shown = raw.display().to_string();
        let name = clean_name(&raw, &shown)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            return Ok(());
        }
        let meta = self.meta(&mut entry)?;
        let io = |source: io::Error| ApplyError::Io {
            entry: shown.clone(),
            source,
        };

        // The root directory itself: only its metadata.
        let Some(file_name) = name.file_name().map(OsStr::to_os_string) else {
            if kind.is_dir() {
                let dir = rustix::fs::openat(
                    &self.root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io(e.into()))?;
                self.set_meta(dir.as_fd(), &meta).map_err(io)?;
                self.dirs.push((PathBuf::new(), times(&meta)));
            }
            return Ok(());
        };
        let parent_rel = name.parent().unwrap_or(Path::new("")).to_path_buf();

        // Whiteouts.
        if let Some(hidden) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(WHITEOUT_PREFIX))
        {
            let hidden = hidden.to_string();
            if file_name == OPAQUE {
                self.forget_below(&parent_rel, false);
            } else {
                self.forget_below(&parent_rel.join(&hidden), true);
            }
            return self.whiteout(&parent_rel, &file_name, &hidden, &shown);
        }
        if kind != tar::EntryType::Directory {
            // The entry may replace a directory whose fd is cached.
            self.forget_below(&name, true);
        }

        let parent_dir = self.take_parent(&parent_rel, &shown)?;
        let parent = parent_dir.fd.as_fd();
        // New files owned by this process as the entry wants them need no
        // chown, nor a chmod if the umask left the mode alone.
        let as_made =
            !self.opts.chown || (meta.uid == 0 && meta.gid == 0 && !parent_dir.setgid && is_root());
        match kind {
            tar::EntryType::Directory => {
                let mut whited_out = false;
                let mut fresh = true;
                match rustix::fs::mkdirat(
                    parent,
                    &file_name,
                    Mode::from_raw_mode(meta.mode & 0o777),
                ) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rustix::fs::statat(parent, &file_name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| io(e.into()))?;
                        match FileType::from_raw_mode(st.st_mode) {
                            FileType::Directory => fresh = false,
                            other => {
                                whited_out = other == FileType::CharacterDevice && st.st_rdev == 0;
                                remove(parent, &file_name).map_err(io)?;
                                mkdir(parent, &file_name).map_err(io)?;
                                fresh = false;
                            }
                        }
                    }
                    Err(e) => return Err(io(e.into())),
                }
                let dir = rustix::fs::openat(
                    parent,
                    &file_name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io(e.into()))?;
                if whited_out {
                    // `.wh.X` then `X/` in one layer: a new, opaque X.
                    rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                        .map_err(|e| io(e.into()))?;
                }
                if fresh && as_made && self.mode_as_made(meta.mode) {
                    self.check_meta(dir.as_fd(), &meta).map_err(io)?;
                } else {
                    self.set_meta(dir.as_fd(), &meta).map_err(io)?;
                }
                self.dirs.push((name.clone(), times(&meta)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let create = || {
                    rustix::fs::openat(
                        parent,
                        &file_name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(meta.mode & 0o777),
                    )
                };
                // Most names are new: replace only what is there.
                let file = match create() {
                    Err(Errno::EXIST) => {
                        replace(parent, &file_name).map_err(io)?;
                        create()
                    }
                    other => other,
                }
                .map_err(|e| io(e.into()))?;
                let mut out = std::fs::File::from(file);
                let mut size = 0u64;
                loop {
                    let n = entry.read(&mut self.buf).map_err(ApplyError::Tar)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&self.buf[..n]).map_err(io)?;
                    size += n as u64;
                }
                self.applied.size += size;
                if as_made && self.mode_as_made(meta.mode) {
                    self.check_meta(out.as_fd(), &meta).map_err(io)?;
                } else {
                    self.set_meta(out.as_fd(), &meta).map_err(io)?;
                }
                rustix::fs::futimens(&out, &times(&meta)).map_err(|e| io(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ApplyError::Tar(io::Error::other("symlink without a target")))?
                    .into_owned();
                let link = || rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, &file_name);
                match link() {
                    Err(Errno::EXIST) => {
                        replace(parent, &file_name).map_err(io)?;
                        link()
                    }
                    other => other,
                }
                .map_err(|e| io(e.into()))?;
                self.applied.size += target.len() as u64;
                self.set_link_meta(parent, &file_name, &meta, as_made)
                    .map_err(io)?;
            }
            tar::EntryType::Link => {
                let raw_target = entry
                    .link_name()
                    .map_err(ApplyError::Tar)?
                    .ok_or_else(|| ApplyError::Tar(io::Error::other("hardlink without a target")))?
                    .into_owned();
                let target = clean_name(&raw_target, &shown)?;
                self.hardlink(parent, &file_name, &target, &shown)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                replace(parent, &file_name).map_err(io)?;
                rustix::fs::mknodat(
                    parent,
                    &file_name,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| io(e.into()))?;
                let node = rustix::fs::openat(
                    parent,
                    &file_name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io(e.into()))?;
                self.set_path_meta(node.as_fd(), &meta).map_err(io)?;
            }
            other => {
                return Err(ApplyError::Unsupported {
                    entry: shown,
                    kind: char::from(other.as_byte()),
                });
            }
        }
        self.made.insert(name);
        if self.parent.is_none() {
            self.parent = Some(parent_dir);
        }
        Ok(())
    }

    /// Whether a file made with `mode` (cut by the umask) has exactly
    /// `mode`; then no `chmod` is needed.
    fn mode_as_made(&self, mode: u32) -> bool {
        self.umask
            .is_some_and(|u| mode & 0o7000 == 0 && mode & !u == mode)
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, ApplyError> {
        let h = entry.header();
        let mut meta = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: h
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            mtime: Timespec {
                tv_sec: h
                    .mtime()
                    .ok()
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(0),
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(ApplyError::Tar)? {
            for ext in pax {
                let ext = ext.map_err(ApplyError::Tar)?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let text = std::str::from_utf8(value).unwrap_or("");
                match key {
                    "uid" => meta.uid = text.parse().unwrap_or(meta.uid),
                    "gid" => meta.gid = text.parse().unwrap_or(meta.gid),
                    "mtime" => meta.mtime = pax_time(text).unwrap_or(meta.mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            // A layer must not forge overlayfs' own metadata.
                            if !name.starts_with("trusted.overlay.")
                                && !name.starts_with("user.overlay.")
                            {
                                meta.xattrs.push((name.into(), value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Ownership, mode and extended attributes of an open file.
    fn set_meta(&self, fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
        if self.opts.chown {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )?;
        }
        // After chown, which clears the set-id bits.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode as RawMode))?;
        self.set_xattrs(fd, meta)
    }

    /// For a file made with the entry's owner and mode expected: checks
    /// them (a default ACL, a `grpid` mount or a set-group-ID directory can
    /// make them differ) and sets them if they do; then the attributes.
    fn check_meta(&self, fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
        let st = rustix::fs::fstat(fd)?;
        if st.st_uid != meta.uid || st.st_gid != meta.gid || st.st_mode & 0o7777 != meta.mode {
            return self.set_meta(fd, meta);
        }
        self.set_xattrs(fd, meta)
    }

    /// Extended attributes of an open file.
    fn set_xattrs(&self, fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
        for (name, value) in &meta.xattrs {
            rustix::fs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty())?;
        }
        Ok(())
    }

    /// The same for a node opened with `O_PATH` (device, FIFO): through
    /// its `/proc/self/fd` name, which never follows anything further.
    fn set_path_meta(&self, fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if self.opts.chown {
            rustix::fs::chownat(
                fd,
                "",
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
                AtFlags::EMPTY_PATH,
            )?;
        }
        rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(meta.mode as RawMode))?;
        for (name, value) in &meta.xattrs {
            rustix::fs::setxattr(path.as_str(), name.as_os_str(), value, XattrFlags::empty())?;
        }
        rustix::fs::utimensat(fd, "", &times(meta), AtFlags::EMPTY_PATH)?;
        Ok(())
    }

    fn set_link_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        as_made: bool,
    ) -> io::Result<()> {
        // As made, unless a `grpid` mount gave it the directory's group.
        let differs = || {
            rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_or(true, |st| st.st_uid != meta.uid || st.st_gid != meta.gid)
        };
        if self.opts.chown && (!as_made || differs()) {
            rustix::fs::chownat(
                parent,
                name,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        rustix::fs::utimensat(parent, name, &times(meta), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Drops the cached parent if it is `rel` (with `inclusive`) or below
    /// it: that directory is about to be removed.
    fn forget_below(&mut self, rel: &Path, inclusive: bool) {
        if let Some(Parent { rel: cached, .. }) = &self.parent {
            if cached.starts_with(rel) && (inclusive || cached != rel) {
                self.parent = None;
            }
        }
    }

    /// The parent directory of an entry, made if missing; refused if it
    /// resolves outside the root. Taken out of the cache (the caller puts
    /// it back when done).
    fn take_parent(&mut self, rel: &Path, shown: &str) -> Result<Parent, ApplyError> {
        match self.parent.take() {
            Some(p) if p.rel == rel => Ok(p),
            _ => {
                let fd = self.make_dirs(rel, shown)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| ApplyError::Io {
                    entry: shown.to_string(),
                    source: e.into(),
                })?;
                Ok(Parent {
                    rel: rel.to_path_buf(),
                    fd,
                    setgid: st.st_mode & 0o2000 != 0,
                })
            }
        }
    }

    /// Opens `rel` as a directory, making the missing components (0755,
    /// as tar does; in an upper directory with the owner, mode, times and
    /// attributes of the same directory below, so that the merged view
    /// does not change).
    fn make_dirs(&mut self, rel: &Path, shown: &str) -> Result<OwnedFd, ApplyError> {
        let io = |e: io::Error| ApplyError::Io {
            entry: shown.to_string(),
            source: e,
        };
        match open_beneath(&self.root, rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::XDEV) => return Err(unsafe_parent(shown)),
            Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(e) => return Err(io(e.into())),
        }
        let mut current = PathBuf::new();
        let mut fd = open_dir_beneath(&self.root, &current, shown)?;
        for part in rel.components() {
            current.push(part);
            let name = current.file_name().unwrap_or_default().to_os_string();
            match open_beneath(&self.root, &current) {
                Ok(next) => {
                    fd = next;
                    continue;
                }
                Err(Errno::XDEV) => return Err(unsafe_parent(shown)),
                Err(Errno::NOENT) => {}
                // A file where the layer wants a directory: the layer wins.
                Err(Errno::NOTDIR) => {}
                Err(e) => return Err(io(e.into())),
            }
            self.new_dir(fd.as_fd(), &name, &current).map_err(io)?;
            fd = open_dir_beneath(&self.root, &current, shown)?;
        }
        Ok(fd)
    }

    /// Makes the directory `name` (at `rel`) in place of whatever is there.
    /// A directory that replaces a whiteout is opaque: the layers below
    /// must not show through it. One implied by a deeper entry takes its
    /// metadata from the layers below, if they have it.
    fn new_dir(&mut self, parent: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> io::Result<()> {
        let was_whiteout = is_whiteout(parent, name);
        replace(parent, name)?;
        mkdir(parent, name)?;
        let dir = rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if was_whiteout {
            rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())?;
        }
        if let Some(lower) = self
            .opts
            .lowers
            .iter()
            .map(|l| l.join(rel))
            .find(|p| p.is_dir())
        {
            let st = rustix::fs::stat(&lower)?;
            if self.opts.chown {
                rustix::fs::fchown(
                    &dir,
                    Some(rustix::fs::Uid::from_raw(st.st_uid)),
                    Some(rustix::fs::Gid::from_raw(st.st_gid)),
                )?;
            }
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(st.st_mode & 0o7777))?;
            crate::fsutil::copy_xattrs_to_fd(&lower, dir.as_fd())?;
            self.dirs.push((
                rel.to_path_buf(),
                Timestamps {
                    last_access: Timespec {
                        tv_sec: st.st_atime,
                        tv_nsec: st.st_atime_nsec as _,
                    },
                    last_modification: Timespec {
                        tv_sec: st.st_mtime,
                        tv_nsec: st.st_mtime_nsec as _,
                    },
                },
            ));
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent_rel: &Path,
        file_name: &OsStr,
        hidden: &str,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let io = |source: io::Error| ApplyError::Io {
            entry: shown.to_string(),
            source,
        };
        let parent = self.take_parent(parent_rel, shown)?.fd;
        if file_name == OPAQUE {
            let dir = rustix::fs::openat(
                &parent,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io(e.into()))?;
            match self.opts.whiteouts {
                Whiteouts::Overlay => {
                    rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                        .map_err(|e| io(e.into()))?;
                }
                Whiteouts::Remove => {
                    for child in list_dir(&dir).map_err(io)? {
                        if !self.made.contains(&parent_rel.join(&child)) {
                            remove(parent.as_fd(), &child).map_err(io)?;
                        }
                    }
                }
            }
            return Ok(());
        }
        if hidden.is_empty() || hidden.contains('/') || hidden == "." || hidden == ".." {
            return Err(ApplyError::Unsafe {
                entry: shown.to_string(),
                reason: "is a whiteout of an invalid name",
            });
        }
        let hidden_rel = parent_rel.join(hidden);
        if self.made.contains(&hidden_rel) {
            // A whiteout hides only what the layers below have.
            return Ok(());
        }
        match self.opts.whiteouts {
            Whiteouts::Overlay => {
                match rustix::fs::statat(&parent, hidden, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(_) => remove(parent.as_fd(), OsStr::new(hidden)).map_err(io)?,
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(io(e.into())),
                }
                rustix::fs::mknodat(
                    &parent,
                    hidden,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| io(e.into()))?;
            }
            Whiteouts::Remove => match remove(parent.as_fd(), OsStr::new(hidden)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        target: &Path,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let io = |source: io::Error| ApplyError::Io {
            entry: shown.to_string(),
            source,
        };
        let missing = || ApplyError::LinkTarget {
            entry: shown.to_string(),
            target: target.display().to_string(),
        };
        let target_name = target.file_name().ok_or_else(missing)?;
        let target_parent_rel = target.parent().unwrap_or(Path::new(""));
        let parent = parent.try_clone_to_owned().map_err(io)?;
        let target_parent = match open_dir_beneath(&self.root, target_parent_rel, shown) {
            Ok(fd) => Some(fd),
            Err(ApplyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let present = target_parent.as_ref().is_some_and(|tp| {
            rustix::fs::statat(tp, target_name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
        });
        if !present {
            // In an upper directory the target may be in a lower layer:
            // copy it up first, as overlayfs would.
            self.copy_up(target, shown)?;
        }
        let target_parent =
            open_dir_beneath(&self.root, target_parent_rel, shown).map_err(|_| missing())?;
        replace(parent.as_fd(), name).map_err(io)?;
        rustix::fs::linkat(&target_parent, target_name, &parent, name, AtFlags::empty()).map_err(
            |e| match e {
                Errno::NOENT => missing(),
                e => io(e.into()),
            },
        )?;
        Ok(())
    }

    fn copy_up(&mut self, target: &Path, shown: &str) -> Result<(), ApplyError> {
        let missing = || ApplyError::LinkTarget {
            entry: shown.to_string(),
            target: target.display().to_string(),
        };
        let io = |source: io::Error| ApplyError::Io {
            entry: shown.to_string(),
            source,
        };
        for lower in self.opts.lowers {
            let lower_fd = rustix::fs::open(
                lower,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io(e.into()))?;
            let Ok(src) = rustix::fs::openat2(
                &lower_fd,
                target,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ) else {
                continue;
            };
            let st = rustix::fs::fstat(&src).map_err(|e| io(e.into()))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(missing());
            }
            let parent_rel = target.parent().unwrap_or(Path::new(""));
            let parent = self.make_dirs(parent_rel, shown)?;
            let name = target.file_name().ok_or_else(missing)?;
            let dst = rustix::fs::openat(
                &parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| io(e.into()))?;
            let mut from = std::fs::File::from(src);
            let mut to = std::fs::File::from(dst);
            io::copy(&mut from, &mut to).map_err(io)?;
            rustix::fs::fchown(
                &to,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            )
            .map_err(|e| io(e.into()))?;
            rustix::fs::fchmod(&to, Mode::from_raw_mode(st.st_mode & 0o7777))
                .map_err(|e| io(e.into()))?;
            return Ok(());
        }
        Err(missing())
    }

    fn finish_dirs(&mut self) -> Result<(), ApplyError> {
        self.parent = None;
        // Deepest first does not matter for times: setting a directory's
        // times does not change its parent's.
        for (rel, ts) in std::mem::take(&mut self.dirs) {
            let shown = rel.display().to_string();
            let dir = if rel.as_os_str().is_empty() {
                rustix::fs::openat(
                    &self.root,
                    ".",
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ApplyError::Io {
                    entry: shown.clone(),
                    source: e.into(),
                })?
            } else {
                match open_dir_beneath(&self.root, &rel, &shown) {
                    Ok(fd) => fd,
                    // Removed or replaced by a later entry of the same layer.
                    Err(ApplyError::Io { source, .. })
                        if matches!(
                            source.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            rustix::fs::utimensat(&dir, "", &ts, AtFlags::EMPTY_PATH).map_err(|e| {
                ApplyError::Io {
                    entry: shown,
                    source: e.into(),
                }
            })?;
        }
        Ok(())
    }
}

fn times(meta: &Meta) -> Timestamps {
    Timestamps {
        last_access: meta.mtime,
        last_modification: meta.mtime,
    }
}

/// `mtime` of a PAX header: seconds with an optional fraction.
fn pax_time(text: &str) -> Option<Timespec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

fn unsafe_parent(shown: &str) -> ApplyError {
    ApplyError::Unsafe {
        entry: shown.to_string(),
        reason: "resolves through a symlink to outside the layer",
    }
}

/// Opens `rel` under `root` as a directory (`O_PATH`), never outside it.
fn open_beneath(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::openat2(
        root,
        if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        },
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens `rel` under `root` as a directory; an escape is an unsafe layer.
fn open_dir_beneath(root: &OwnedFd, rel: &Path, shown: &str) -> Result<OwnedFd, ApplyError> {
    open_beneath(root, rel).map_err(|e| match e {
        Errno::XDEV => unsafe_parent(shown),
        e => ApplyError::Io {
            entry: shown.to_string(),
            source: e.into(),
        },
    })
}

/// Whether a directory entry is an overlayfs whiteout (a 0/0 character
/// device).
fn is_whiteout(parent: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
    })
}

fn mkdir(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)).map_err(Into::into)
}

/// Makes room for a new non-directory entry: removes what is there (a
/// directory with its contents).
fn replace(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match remove(parent, name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a name, recursively if it is a directory; never follows
/// symlinks.
pub(crate) fn remove(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR) => {
            let dir = rustix::fs::openat(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for child in list_dir(&dir)? {
                remove(dir.as_fd(), &child)?;
            }
            rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

/// The names in a directory (without `.` and `..`).
pub(crate) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    let fd = dir.try_clone()?;
    for entry in rustix::fs::Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}
