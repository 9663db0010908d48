//! A container's files over Docker's archive API, from its mounted root
//! filesystem: `HEAD/GET/PUT /containers/{id}/archive` (`docker cp`),
//! `GET /containers/{id}/export` and `GET /containers/{id}/changes`
//! (`docker diff`, from the overlay upper directory).
//!
//! The root filesystem belongs to the container, so everything in it is
//! hostile: a path is resolved with symlinks evaluated *inside* it
//! (`openat2(RESOLVE_IN_ROOT)`, as dockerd resolves them in a chroot), and
//! every file is then read, made, changed or removed through a directory
//! descriptor with the final name never followed. Nothing outside the root
//! filesystem is read or written, whatever the container swaps in meanwhile.
//!
//! What is produced and accepted follows dockerd (`daemon/archive_unix.go`
//! and `moby/go-archive`): the tar of `docker cp` names the entry by the
//! path's base name (contents only for a trailing `/.`), an extraction
//! refuses `..` names and symlinks that point out of the destination,
//! ownership is taken from the tar (or forced, for `copyUIDGID` with a
//! container user), and `changes` lists paths as dockerd's tree comparison
//! of the container's filesystem with its image does.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hafen_api::models::ChangeItem;
use hafen_oci::path::clean as go_clean;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;
use serde_json::{Value, json};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// No such path in the container (404: dockerd says `Could not find
    /// the file PATH in container NAME`).
    #[error("no such file or directory: {0}")]
    NotFound(String),
    /// A request that cannot be done (400): the extraction point is not a
    /// directory, a name or link that leaves the destination, a directory
    /// that would replace a file (or the reverse) when that is refused, a
    /// damaged tar, an unknown user.
    #[error("{0}")]
    Invalid(String),
    /// The filesystem failed (500).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl ArchiveError {
    /// Whether the path does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArchiveError::NotFound(_))
    }

    /// Whether the request was at fault (400).
    pub fn is_invalid(&self) -> bool {
        matches!(self, ArchiveError::Invalid(_))
    }
}

type Result<T, E = ArchiveError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Io { what, source }
}

fn errno_err(what: impl Into<String>) -> impl FnOnce(Errno) -> ArchiveError {
    let what = what.into();
    move |e| ArchiveError::Io {
        what,
        source: e.into(),
    }
}

// ---------------------------------------------------------------------
// Paths as Go's `path` package treats them.

/// Go's `path.Base`.
fn go_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `path.Join` of two parts.
fn go_join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => go_clean(b),
        (false, true) => go_clean(a),
        (false, false) => go_clean(&format!("{a}/{b}")),
    }
}

/// go-archive's `PreserveTrailingDotOrSeparator`: a cleaned path keeps the
/// trailing `/.` or `/` of the original.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if go_base(&out) != "." && go_base(original) == "." {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if !out.ends_with('/') && original.ends_with('/') {
        out.push('/');
    }
    out
}

// ---------------------------------------------------------------------
// Resolution inside the root filesystem.

/// The container's root filesystem, opened.
struct Root {
    fd: OwnedFd,
}

impl Root {
    fn open(rootfs: &Path) -> Result<Root> {
        let fd = rustix::fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err(format!("cannot open {}", rootfs.display())))?;
        Ok(Root { fd })
    }

    /// Opens `path` with symlinks (and `..`) resolved inside the root.
    fn open_in(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        rustix::fs::openat2(
            &self.fd,
            OsStr::from_bytes(path),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// The directory `dir`, resolved in the root (`O_PATH`).
    fn dir(&self, dir: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_in(dir, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// moby's `FollowSymlinkInScope(path, "/")`: the path with every
    /// symlink evaluated inside the root, as far as it exists.
    fn follow_in_scope(&self, path: &str) -> Result<String> {
        let mut resolved: Vec<Vec<u8>> = Vec::new();
        let mut rest: VecDeque<Vec<u8>> = split_components(path.as_bytes());
        let mut links = 0;
        while let Some(part) = rest.pop_front() {
            if part == b".." {
                resolved.pop();
                continue;
            }
            let candidate = join_components(&resolved, &part);
            let fd = match self.open_in(&candidate, OFlags::PATH | OFlags::NOFOLLOW) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    resolved.push(part);
                    continue;
                }
                Err(e) => return Err(errno_err(format!("cannot resolve {path}"))(e)),
            };
            let st = rustix::fs::fstat(&fd).map_err(errno_err(format!("cannot stat {path}")))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                resolved.push(part);
                continue;
            }
            links += 1;
            if links > 255 {
                return Err(ArchiveError::Invalid(format!(
                    "evalSymlinksInScope: too many links in {path}"
                )));
            }
            let target = rustix::fs::readlinkat(&fd, "", Vec::new())
                .map_err(errno_err(format!("cannot read the link {path}")))?
                .into_bytes();
            if target.starts_with(b"/") {
                resolved.clear();
            }
            for c in split_components(&target).into_iter().rev() {
                rest.push_front(c);
            }
        }
        Ok(String::from_utf8_lossy(&join_components(&resolved, b"")).into_owned())
    }
}

/// The components of a path, without empty ones and `.`.
fn split_components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// `/a/b` + `/c` (an empty `last` adds nothing).
fn join_components(parts: &[Vec<u8>], last: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts
        .iter()
        .map(Vec::as_slice)
        .chain((!last.is_empty()).then_some(last))
    {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

// ---------------------------------------------------------------------
// stat (HEAD /archive).

/// Go's `os.FileMode` bits of a `st_mode`.
fn go_file_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut out = mode & 0o777;
    out |= match FileType::from_raw_mode(mode) {
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR_DEVICE,
        FileType::Directory => DIR,
        FileType::Fifo => NAMED_PIPE,
        FileType::Symlink => SYMLINK,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    if mode & 0o4000 != 0 {
        out |= SETUID;
    }
    if mode & 0o2000 != 0 {
        out |= SETGID;
    }
    if mode & 0o1000 != 0 {
        out |= STICKY;
    }
    out
}

/// A file time as Go encodes a `time.Time` (UTC).
fn go_time(sec: i64, nsec: i64) -> String {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(sec, nsec).unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nsec == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nsec:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

/// Opens a path for `stat`: the final component not followed, unless the
/// path ends in `/` or `/.` (then the kernel follows it, as `lstat` does).
fn open_for_stat(root: &Root, path: &str) -> Result<(OwnedFd, Stat)> {
    let fd = root
        .open_in(path.as_bytes(), OFlags::PATH | OFlags::NOFOLLOW)
        .map_err(|e| match e {
            Errno::NOENT => ArchiveError::NotFound(path.to_string()),
            e => errno_err(format!("cannot stat {path}"))(e),
        })?;
    let st = rustix::fs::fstat(&fd).map_err(errno_err(format!("cannot stat {path}")))?;
    Ok((fd, st))
}

fn path_stat(root: &Root, path: &str, st: &Stat) -> Result<Value> {
    let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        root.follow_in_scope(path)?
    } else {
        String::new()
    };
    Ok(json!({
        "name": go_base(path),
        "size": st.st_size,
        "mode": go_file_mode(st.st_mode),
        "mtime": go_time(st.st_mtime, st.st_mtime_nsec as i64),
        "linkTarget": link_target,
    }))
}

/// `HEAD /containers/{id}/archive`: Docker's `ContainerPathStat` of
/// `path` (`{"name","size","mode","mtime","linkTarget"}`; `mode` in Go's
/// `os.FileMode` bits; `linkTarget` the fully evaluated target of a
/// symlink, inside the container).
pub fn stat(rootfs: &Path, path: &str) -> Result<Value> {
    let root = Root::open(rootfs)?;
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let (_, st) = open_for_stat(&root, &path)?;
    path_stat(&root, &path, &st)
}

// ---------------------------------------------------------------------
// Writing tars.

/// The `security.capability` attribute, the only one go-archive copies.
const CAPABILITY_XATTR: &str = "security.capability";
/// Its PAX record.
const PAX_CAPABILITY: &str = "SCHILY.xattr.security.capability";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How deep a walk goes: a container could nest directories deeper than
/// any stack (and than paths can name).
const MAX_DEPTH: usize = 1024;

fn too_deep() -> io::Error {
    io::Error::other(format!("directories nested deeper than {MAX_DEPTH} levels"))
}

/// An extended attribute of an open file (readable descriptor).
fn fd_xattr(fd: BorrowedFd<'_>, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::fgetxattr(fd, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(Errno::RANGE) => {
            let n = rustix::fs::fgetxattr_query(fd, name).ok()?;
            buf.resize(n, 0);
            let n = rustix::fs::fgetxattr(fd, name, &mut buf[..]).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// A path's extended attribute, without following a final symlink.
fn path_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(Errno::RANGE) => {
            let n = rustix::fs::lgetxattr_query(path, name).ok()?;
            buf.resize(n, 0);
            let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// The names in a directory, sorted by their bytes (as Go's `WalkDir`).
pub(crate) fn sorted_names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Opens a child directory for reading, never through a symlink.
fn open_child_dir(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Go's `formatPAXRecord`.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let mut size = key.len() + value.len() + 3;
    size += size.to_string().len();
    let mut record = format!("{size} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    if record.len() != size {
        let mut fixed = format!("{} {key}=", record.len()).into_bytes();
        fixed.extend_from_slice(value);
        fixed.push(b'\n');
        record = fixed;
    }
    record
}

/// Fits a string field: ASCII only, cut to the field.
fn fit(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let ascii: Vec<u8> = value.iter().copied().filter(u8::is_ascii).collect();
    let n = ascii.len().min(field.len());
    field[..n].copy_from_slice(&ascii[..n]);
}

/// One entry to write.
struct Entry {
    name: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: Option<Vec<u8>>,
    device: Option<(u32, u32)>,
    /// PAX records of extended attributes (`SCHILY.xattr.…`).
    xattrs: Vec<(&'static str, Vec<u8>)>,
}

/// A tar written as Go's `archive/tar` writes go-archive's headers (PAX
/// format: a ustar header, and a PAX record set only for what does not
/// fit), with hardlinks detected by inode.
pub(crate) struct TarOut<'w> {
    out: &'w mut dyn Write,
    /// First name of each multiply linked inode.
    seen: HashMap<(u64, u64), Vec<u8>>,
    /// Overlay whiteouts become `.wh.` files (layer diffs).
    pub(crate) convert_whiteouts: bool,
    /// Entries written.
    pub(crate) entries: u64,
    /// Paths (`/a/b`) left out, with what is below them.
    pub(crate) skip: Option<&'w dyn Fn(&str) -> bool>,
}

impl std::fmt::Debug for TarOut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarOut")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<'w> TarOut<'w> {
    pub(crate) fn new(out: &'w mut dyn Write) -> TarOut<'w> {
        TarOut {
            out,
            seen: HashMap::new(),
            convert_whiteouts: false,
            entries: 0,
            skip: None,
        }
    }

    fn write_block_header(&mut self, e: &Entry) -> io::Result<()> {
        let mut pax: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        if e.name.len() > 100 || !e.name.is_ascii() {
            pax.insert("path", e.name.clone());
        }
        if let Some(link) = &e.link
            && (link.len() > 100 || !link.is_ascii())
        {
            pax.insert("linkpath", link.clone());
        }
        const MAX_ID: u64 = 0o7777777;
        if e.uid > MAX_ID {
            pax.insert("uid", e.uid.to_string().into_bytes());
        }
        if e.gid > MAX_ID {
            pax.insert("gid", e.gid.to_string().into_bytes());
        }
        if e.size > 0o77777777777 {
            pax.insert("size", e.size.to_string().into_bytes());
        }
        for (k, v) in &e.xattrs {
            pax.insert(k, v.clone());
        }
        if !pax.is_empty() {
            let mut data = Vec::new();
            for (k, v) in &pax {
                data.extend(pax_record(k, v));
            }
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let trimmed = name.trim_end_matches('/');
            let (dir, file) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
            let pax_name = go_join(&go_join(dir, "PaxHeaders.0"), file);
            let mut h = tar::Header::new_ustar();
            fit(&mut h.as_old_mut().name, pax_name.as_bytes());
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_mode(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            h.set_cksum();
            self.out.write_all(h.as_bytes())?;
            self.out.write_all(&data)?;
            pad(self.out, data.len() as u64)?;
        }
        let mut h = tar::Header::new_ustar();
        fit(&mut h.as_old_mut().name, &e.name);
        h.set_entry_type(e.kind);
        h.set_mode(e.mode & 0o7777);
        h.set_uid(if e.uid > MAX_ID { 0 } else { e.uid });
        h.set_gid(if e.gid > MAX_ID { 0 } else { e.gid });
        h.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
        h.set_size(if e.size > 0o77777777777 { 0 } else { e.size });
        if let Some(link) = &e.link {
            fit(&mut h.as_old_mut().linkname, link);
        }
        if let Some((major, minor)) = e.device {
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        } else {
            h.set_device_major(0)?;
            h.set_device_minor(0)?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.entries += 1;
        Ok(())
    }

    /// Writes an entry and its data (exactly `size` bytes of `data`,
    /// zero-padded if it shrank meanwhile).
    fn write(&mut self, e: &Entry, data: Option<&mut dyn Read>) -> io::Result<()> {
        self.write_block_header(e)?;
        if e.size > 0 {
            let mut written = 0u64;
            if let Some(data) = data {
                written = io::copy(&mut data.take(e.size), self.out)?;
            }
            io::copy(&mut io::repeat(0).take(e.size - written), self.out)?;
            pad(self.out, e.size)?;
        }
        Ok(())
    }

    /// Adds the file `name` of `parent` (whose `lstat` is `st`) as
    /// `tar_name`; returns the directory, opened, if it is one.
    pub(crate) fn add(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        tar_name: &[u8],
        st: &Stat,
    ) -> io::Result<Option<OwnedFd>> {
        let file_type = FileType::from_raw_mode(st.st_mode);
        let mut e = Entry {
            name: tar_name.to_vec(),
            kind: tar::EntryType::Regular,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: st.st_mtime,
            size: 0,
            link: None,
            device: None,
            xattrs: Vec::new(),
        };
        if file_type == FileType::Directory && !e.name.ends_with(b"/") {
            e.name.push(b'/');
        }
        let whiteout =
            self.convert_whiteouts && file_type == FileType::CharacterDevice && st.st_rdev == 0;
        // (Overlay may link whiteouts to one shared inode: each is a
        // whiteout file of its own.)
        let hardlinked = file_type != FileType::Directory && st.st_nlink > 1 && !whiteout;
        if hardlinked {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.seen.get(&key) {
                e.kind = tar::EntryType::Link;
                e.link = Some(first.clone());
                return self.write(&e, None).map(|()| None);
            }
            self.seen.insert(key, e.name.clone());
        }
        match file_type {
            FileType::RegularFile => {
                let file = match rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(f) => f,
                    // Gone or replaced meanwhile: skipped.
                    Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let now = rustix::fs::fstat(&file)?;
                if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Ok(None);
                }
                e.size = u64::try_from(now.st_size).unwrap_or(0);
                if let Some(cap) = fd_xattr(file.as_fd(), CAPABILITY_XATTR) {
                    e.xattrs.push((PAX_CAPABILITY, cap));
                }
                let mut f = std::fs::File::from(file);
                self.write(&e, Some(&mut f))?;
                Ok(None)
            }
            FileType::Directory => {
                let dir = match open_child_dir(parent, name) {
                    Ok(d) => d,
                    Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                e.kind = tar::EntryType::Directory;
                let opaque = self.convert_whiteouts
                    && fd_xattr(dir.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
                self.write(&e, None)?;
                if opaque {
                    let mut marker = e.name.clone();
                    marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
                    let wo = Entry {
                        name: marker,
                        kind: tar::EntryType::Regular,
                        mode: e.mode & 0o777,
                        mtime: 0,
                        xattrs: Vec::new(),
                        ..e
                    };
                    self.write(&wo, None)?;
                }
                Ok(Some(dir))
            }
            FileType::Symlink => {
                let target = match rustix::fs::readlinkat(parent, name, Vec::new()) {
                    Ok(t) => t.into_bytes(),
                    Err(Errno::NOENT | Errno::INVAL) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                e.kind = tar::EntryType::Symlink;
                e.link = Some(target);
                self.write(&e, None).map(|()| None)
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let major = rustix::fs::major(st.st_rdev);
                let minor = rustix::fs::minor(st.st_rdev);
                if whiteout {
                    let (dir, file) = match tar_name.iter().rposition(|b| *b == b'/') {
                        Some(i) => tar_name.split_at(i + 1),
                        None => (&[][..], tar_name),
                    };
                    let mut wo_name = dir.to_vec();
                    wo_name.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                    wo_name.extend_from_slice(file);
                    e.name = wo_name;
                    e.mode = 0o600;
                    return self.write(&e, None).map(|()| None);
                }
                e.kind = if file_type == FileType::CharacterDevice {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                e.device = Some((major, minor));
                self.write(&e, None).map(|()| None)
            }
            FileType::Fifo => {
                e.kind = tar::EntryType::Fifo;
                self.write(&e, None).map(|()| None)
            }
            // Sockets cannot be archived (go-archive skips them).
            _ => Ok(None),
        }
    }

    /// Adds everything in the directory `dir` (depth first, names sorted),
    /// each named `prefix` + its name.
    pub(crate) fn walk(&mut self, dir: &OwnedFd, prefix: &[u8]) -> io::Result<()> {
        self.walk_at(dir, prefix, 0)
    }

    fn walk_at(&mut self, dir: &OwnedFd, prefix: &[u8], depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        for name in sorted_names(dir)? {
            let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut tar_name = prefix.to_vec();
            tar_name.extend_from_slice(name.as_bytes());
            if let Some(skip) = self.skip {
                let shown = format!("/{}", String::from_utf8_lossy(&tar_name));
                if skip(&shown) {
                    continue;
                }
            }
            if let Some(child) = self.add(dir.as_fd(), &name, &tar_name, &st)? {
                tar_name.push(b'/');
                self.walk_at(&child, &tar_name, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Ends the archive (two zero blocks, as Go writes).
    pub(crate) fn finish(self) -> io::Result<()> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()
    }
}

/// Zeros up to the next 512-byte block.
fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rem = (len % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

/// `GET /containers/{id}/archive`: a tar of `path` as `docker cp
/// CONTAINER:path -` receives it. A directory is one entry named by its
/// base name with its contents below it (`./` entries for a path ending in
/// `/.`); anything else is one entry named by its base name (a symlink as
/// itself, unless the path ends in `/`).
pub fn get(rootfs: &Path, path: &str, out: &mut dyn Write) -> Result<()> {
    let root = Root::open(rootfs)?;
    let abs = preserve_trailing(&go_clean(&format!("/{path}")), path);
    let (fd, st) = open_for_stat(&root, &abs)?;
    let rebase = go_base(&abs);
    let mut tar = TarOut::new(out);
    let write_err = io_err(format!("cannot archive {path}"));
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        // The directory itself, then its contents: `.` renamed to the base
        // name (`/` names the root, whose entries start with `/`).
        let replacement = if rebase == "/" { "" } else { rebase.as_str() };
        let dir = rustix::fs::openat(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err(format!("cannot open {path}")))?;
        let mut prefix = replacement.as_bytes().to_vec();
        prefix.push(b'/');
        let mut e = Entry {
            name: prefix.clone(),
            kind: tar::EntryType::Directory,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: st.st_mtime,
            size: 0,
            link: None,
            device: None,
            xattrs: Vec::new(),
        };
        if let Some(cap) = fd_xattr(dir.as_fd(), CAPABILITY_XATTR) {
            e.xattrs.push((PAX_CAPABILITY, cap));
        }
        tar.write(&e, None).map_err(write_err)?;
        tar.walk(&dir, &prefix)
            .map_err(io_err(format!("cannot archive {path}")))?;
    } else {
        // The entry itself, by its parent and name.
        let (dir, base) = abs.rsplit_once('/').unwrap_or(("", abs.as_str()));
        let parent = root
            .open_in(dir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| match e {
                Errno::NOENT => ArchiveError::NotFound(path.to_string()),
                e => errno_err(format!("cannot open {path}"))(e),
            })?;
        let name = OsStr::new(base);
        let st =
            rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| match e {
                Errno::NOENT => ArchiveError::NotFound(path.to_string()),
                e => errno_err(format!("cannot stat {path}"))(e),
            })?;
        tar.add(parent.as_fd(), name, rebase.as_bytes(), &st)
            .map_err(write_err)?;
    }
    tar.finish()
        .map_err(io_err(format!("cannot archive {path}")))
}

/// `GET /containers/{id}/export`: the whole root filesystem as a tar
/// (entries named without a leading `./`; the root itself not listed).
pub fn export(rootfs: &Path, out: &mut dyn Write) -> Result<()> {
    let root = Root::open(rootfs)?;
    let dir = root
        .open_in(b"/", OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(errno_err(format!("cannot open {}", rootfs.display())))?;
    let mut tar = TarOut::new(out);
    tar.walk(&dir, b"")
        .map_err(io_err("cannot export the container"))?;
    tar.finish().map_err(io_err("cannot export the container"))
}

// ---------------------------------------------------------------------
// Extraction (PUT /archive).

/// Who owns the extracted files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// As the tar says (dockerd without `copyUIDGID`, or with it and no
    /// container user).
    FromTar,
    /// This user and group (dockerd with `copyUIDGID` and a container
    /// user: see [`user_ids`]).
    Fixed(u32, u32),
}

/// `PUT /containers/{id}/archive`: extracts the tar `input` into the
/// directory `path` of the container (symlinks, the last one included,
/// evaluated inside the root filesystem), as dockerd does.
///
/// Ownership is taken from the tar, as dockerd does without a container
/// user whatever `copy_uid_gid` says; for `copyUIDGID` with a container
/// user, resolve it with [`user_ids`] and call [`put_as`]. With
/// `no_overwrite_dir_non_dir`, an entry that would replace a directory
/// with a non-directory (or the reverse) is refused.
pub fn put(
    rootfs: &Path,
    path: &str,
    input: impl Read,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
) -> Result<()> {
    let _ = copy_uid_gid;
    put_as(
        rootfs,
        path,
        input,
        no_overwrite_dir_non_dir,
        Owner::FromTar,
    )
}

/// [`put`] with the ownership to give.
pub fn put_as(
    rootfs: &Path,
    path: &str,
    input: impl Read,
    no_overwrite_dir_non_dir: bool,
    owner: Owner,
) -> Result<()> {
    let root = Root::open(rootfs)?;
    let abs = go_clean(&format!("/{path}"));
    // The destination, fully evaluated: it must be a directory.
    let dest = root.follow_in_scope(&abs)?;
    match root.open_in(dest.as_bytes(), OFlags::PATH) {
        Ok(fd) => {
            let st = rustix::fs::fstat(&fd).map_err(errno_err(format!("cannot stat {path}")))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(ArchiveError::Invalid(
                    "extraction point is not a directory".into(),
                ));
            }
        }
        Err(Errno::NOENT) => return Err(ArchiveError::NotFound(path.to_string())),
        Err(e) => return Err(errno_err(format!("cannot open {path}"))(e)),
    }
    let mut x = Extract {
        root,
        dest,
        no_overwrite: no_overwrite_dir_non_dir,
        owner,
        dirs: Vec::new(),
    };
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(bad_tar)?;
    for entry in entries {
        let entry = entry.map_err(bad_tar)?;
        x.entry(entry)?;
    }
    x.finish_dirs()
}

fn bad_tar(e: io::Error) -> ArchiveError {
    ArchiveError::Invalid(format!("invalid tar: {e}"))
}

/// The metadata of a tar entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: Timespec,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// A PAX time (`seconds[.fraction]`).
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

/// go-archive's `boundTime`: times before 1970 become 1970.
fn bound(t: Timespec) -> Timespec {
    if t.tv_sec < 0 {
        Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    } else {
        t
    }
}

struct Extract {
    root: Root,
    /// The destination, evaluated (`/a/b`).
    dest: String,
    no_overwrite: bool,
    owner: Owner,
    /// Directories whose times are set at the end.
    dirs: Vec<(String, Timestamps)>,
}

impl Extract {
    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = entry.header();
        let mtime = Timespec {
            tv_sec: h
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
            tv_nsec: 0,
        };
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
            atime: mtime,
            mtime,
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(bad_tar)? {
            for ext in pax {
                let ext = ext.map_err(bad_tar)?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let text = std::str::from_utf8(value).unwrap_or("");
                match key {
                    "uid" => meta.uid = text.parse().unwrap_or(meta.uid),
                    "gid" => meta.gid = text.parse().unwrap_or(meta.gid),
                    "mtime" => meta.mtime = pax_time(text).unwrap_or(meta.mtime),
                    "atime" => meta.atime = pax_time(text).unwrap_or(meta.atime),
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            // Never overlayfs' own metadata.
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
        // The later of atime and mtime, as go-archive.
        if (meta.atime.tv_sec, meta.atime.tv_nsec) < (meta.mtime.tv_sec, meta.mtime.tv_nsec) {
            meta.atime = meta.mtime;
        }
        if let Owner::Fixed(uid, gid) = self.owner {
            meta.uid = uid;
            meta.gid = gid;
        }
        Ok(meta)
    }

    /// The parent directory of `rel` (a clean path below the destination),
    /// made (0755, root's) where missing, opened in the root.
    fn parent(&self, rel: &str) -> Result<OwnedFd> {
        let parent_rel = rel.rsplit_once('/').map_or("", |(p, _)| p);
        let full = go_join(&self.dest, parent_rel);
        match self.root.dir(full.as_bytes()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(errno_err(format!("cannot open {full}"))(e)),
        }
        let mut current = self.dest.clone();
        let mut fd = self
            .root
            .dir(current.as_bytes())
            .map_err(errno_err(format!("cannot open {current}")))?;
        for part in parent_rel.split('/').filter(|p| !p.is_empty()) {
            current = go_join(&current, part);
            match self.root.dir(current.as_bytes()) {
                Ok(next) => {
                    fd = next;
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(errno_err(format!("cannot open {current}"))(e)),
            }
            match rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let made = open_child_dir(fd.as_fd(), OsStr::new(part))
                        .map_err(errno_err(format!("cannot open {current}")))?;
                    rustix::fs::fchown(
                        &made,
                        Some(rustix::fs::Uid::ROOT),
                        Some(rustix::fs::Gid::ROOT),
                    )
                    .map_err(errno_err(format!("cannot chown {current}")))?;
                }
                Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_err(format!("cannot create {current}"))(e)),
            }
            fd = self
                .root
                .dir(current.as_bytes())
                .map_err(errno_err(format!("cannot open {current}")))?;
        }
        Ok(fd)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let cleaned = go_clean(&raw);
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(ArchiveError::Invalid(format!(
                "{raw:?} is outside of {:?}",
                self.dest
            )));
        }
        // An absolute name is below the destination too.
        let rel = cleaned.trim_start_matches('/').to_string();
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        let full = go_join(&self.dest, &rel);
        let meta = self.meta(&mut entry)?;
        let parent = self.parent(&rel)?;
        let name_str = if rel == "." {
            None
        } else {
            Some(rel.rsplit('/').next().unwrap_or(&rel).to_string())
        };
        let is_dir_entry = kind == tar::EntryType::Directory;

        let Some(name_str) = name_str else {
            // The destination itself: a directory, so a directory entry
            // is skipped; anything else cannot replace it.
            if is_dir_entry {
                return Ok(());
            }
            return Err(ArchiveError::Invalid(format!(
                "cannot overwrite directory {full:?} with non-directory {:?}",
                self.dest
            )));
        };
        let name = OsStr::new(&name_str);
        let io = |what: &str| errno_err(format!("cannot {what} {full}"));

        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if self.no_overwrite && existing_dir && !is_dir_entry {
                    return Err(ArchiveError::Invalid(format!(
                        "cannot overwrite directory {full:?} with non-directory {:?}",
                        self.dest
                    )));
                }
                if self.no_overwrite && !existing_dir && is_dir_entry {
                    return Err(ArchiveError::Invalid(format!(
                        "cannot overwrite non-directory {full:?} with directory {:?}",
                        self.dest
                    )));
                }
                if !existing_dir || !is_dir_entry {
                    remove_all(parent.as_fd(), name)
                        .map_err(io_err(format!("cannot remove {full}")))?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io("stat")(e)),
        }

        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(meta.mode & 0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io("create")(e)),
                }
                let dir = open_child_dir(parent.as_fd(), name).map_err(io("open"))?;
                self.set_fd_meta(dir.as_fd(), &meta, &full)?;
                self.dirs.push((
                    full,
                    Timestamps {
                        last_access: bound(meta.atime),
                        last_modification: bound(meta.mtime),
                    },
                ));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let file = rustix::fs::openat(
                    &parent,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io("create"))?;
                let mut out = std::fs::File::from(file);
                io::copy(&mut entry, &mut out).map_err(bad_tar)?;
                self.set_fd_meta(out.as_fd(), &meta, &full)?;
                rustix::fs::futimens(&out, &times(&meta)).map_err(io("set the times of"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        ArchiveError::Invalid(format!("symlink {raw:?} without a target"))
                    })?
                    .into_owned();
                let target_str = String::from_utf8_lossy(&target).into_owned();
                // go-archive: the target, joined to the link's directory,
                // must stay in the destination.
                let link_dir = full
                    .rsplit_once('/')
                    .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                let resolved = go_join(link_dir, &target_str);
                if !resolved.starts_with(&self.dest) {
                    return Err(ArchiveError::Invalid(format!(
                        "invalid symlink {full:?} -> {target_str:?}"
                    )));
                }
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, name)
                    .map_err(io("create"))?;
                rustix::fs::chownat(
                    &parent,
                    name,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io("chown"))?;
                rustix::fs::utimensat(&parent, name, &times(&meta), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io("set the times of"))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        ArchiveError::Invalid(format!("hardlink {raw:?} without a target"))
                    })?
                    .into_owned();
                let target_str = String::from_utf8_lossy(&target).into_owned();
                let resolved = go_join(&self.dest, &target_str);
                if !resolved.starts_with(&self.dest) {
                    return Err(ArchiveError::Invalid(format!(
                        "invalid hardlink {full:?} -> {target_str:?}"
                    )));
                }
                let (tdir, tname) = resolved.rsplit_once('/').unwrap_or(("", &resolved));
                let tparent = self.root.dir(tdir.as_bytes()).map_err(|e| match e {
                    Errno::NOENT => ArchiveError::Invalid(format!(
                        "hardlink {raw:?} to {target_str:?}, which does not exist"
                    )),
                    e => errno_err(format!("cannot open {tdir}"))(e),
                })?;
                rustix::fs::linkat(&tparent, tname, &parent, name, AtFlags::empty()).map_err(
                    |e| match e {
                        Errno::NOENT => ArchiveError::Invalid(format!(
                            "hardlink {raw:?} to {target_str:?}, which does not exist"
                        )),
                        e => io("link")(e),
                    },
                )?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    &parent,
                    name,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(io("create"))?;
                let node = rustix::fs::openat(
                    &parent,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io("open"))?;
                self.set_path_meta(node.as_fd(), &meta, &full)?;
            }
            other => {
                return Err(ArchiveError::Invalid(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )));
            }
        }
        Ok(())
    }

    /// Owner, mode (after the owner: chown clears set-id bits) and
    /// attributes of an open file.
    fn set_fd_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, full: &str) -> Result<()> {
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
        )
        .map_err(errno_err(format!("cannot chown {full}")))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(errno_err(format!("cannot chmod {full}")))?;
        for (name, value) in &meta.xattrs {
            match rustix::fs::fsetxattr(
                fd,
                name.as_os_str(),
                value,
                rustix::fs::XattrFlags::empty(),
            ) {
                // go-archive ignores what the filesystem does not take.
                Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => {}
                Err(e) => return Err(errno_err(format!("cannot set attributes of {full}"))(e)),
            }
        }
        Ok(())
    }

    /// The same for a node opened with `O_PATH` (device, FIFO), through its
    /// `/proc/self/fd` name, which is that very node.
    fn set_path_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, full: &str) -> Result<()> {
        rustix::fs::chownat(
            fd,
            "",
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            AtFlags::EMPTY_PATH,
        )
        .map_err(errno_err(format!("cannot chown {full}")))?;
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(meta.mode))
            .map_err(errno_err(format!("cannot chmod {full}")))?;
        rustix::fs::utimensat(fd, "", &times(meta), AtFlags::EMPTY_PATH)
            .map_err(errno_err(format!("cannot set the times of {full}")))?;
        Ok(())
    }

    /// Directory times, after their contents were written.
    fn finish_dirs(&mut self) -> Result<()> {
        for (full, ts) in std::mem::take(&mut self.dirs) {
            let fd = match self.root.open_in(
                full.as_bytes(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            ) {
                Ok(fd) => fd,
                // Replaced by a later entry.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(errno_err(format!("cannot open {full}"))(e)),
            };
            rustix::fs::utimensat(&fd, "", &ts, AtFlags::EMPTY_PATH)
                .map_err(errno_err(format!("cannot set the times of {full}")))?;
        }
        Ok(())
    }
}

fn times(meta: &Meta) -> Timestamps {
    Timestamps {
        last_access: bound(meta.atime),
        last_modification: bound(meta.mtime),
    }
}

/// Removes a name, recursively if it is a directory; never follows a
/// symlink.
fn remove_all(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    remove_all_at(parent, name, 0)
}

fn remove_all_at(parent: BorrowedFd<'_>, name: &OsStr, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            let dir = open_child_dir(parent, name)?;
            for child in sorted_names(&dir)? {
                remove_all_at(dir.as_fd(), &child, depth + 1)?;
            }
            match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The user and group that dockerd gives extracted files for
/// `copyUIDGID` when the container has a user (`user[:group]`, names
/// looked up in the container's `/etc/passwd` and `/etc/group`, numbers
/// as given; a numeric user without an entry gets group 0).
pub fn user_ids(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    let root = Root::open(rootfs)?;
    let read = |file: &str| -> String {
        root.open_in(file.as_bytes(), OFlags::RDONLY)
            .ok()
            .and_then(|fd| {
                let mut text = String::new();
                std::fs::File::from(fd)
                    .take(4 << 20)
                    .read_to_string(&mut text)
                    .ok()?;
                Some(text)
            })
            .unwrap_or_default()
    };
    let numeric = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= i32::MAX as u32);
    let (user_part, group_part) = user.split_once(':').unwrap_or((user, ""));
    let (mut uid, mut gid) = (0u32, 0u32);
    if !user_part.is_empty() {
        let passwd = read("/etc/passwd");
        let entries: Vec<(String, u32, u32)> = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    (*f.first()?).to_string(),
                    f.get(2)?.parse().ok()?,
                    f.get(3)?.parse().ok()?,
                ))
            })
            .collect();
        match numeric(user_part) {
            Some(n) => {
                (uid, gid) = entries
                    .iter()
                    .find(|e| e.1 == n)
                    .map_or((n, 0), |e| (e.1, e.2));
            }
            None => {
                let e = entries.iter().find(|e| e.0 == user_part).ok_or_else(|| {
                    ArchiveError::Invalid(format!(
                        "failed to look up user {user_part:?} in container: no matching entries in passwd file"
                    ))
                })?;
                (uid, gid) = (e.1, e.2);
            }
        }
    }
    if !group_part.is_empty() {
        gid = match numeric(group_part) {
            Some(n) => n,
            None => read("/etc/group")
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (*f.first()? == group_part).then(|| f.get(2)?.parse().ok())?
                })
                .ok_or_else(|| {
                    ArchiveError::Invalid(format!(
                        "failed to look up group {group_part:?} in container: no matching entries in group file"
                    ))
                })?,
        };
    }
    Ok((uid, gid))
}

// ---------------------------------------------------------------------
// Changes (docker diff).

/// A file's metadata as dockerd compares it.
struct Seen {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: i64,
    mtime: (i64, i64),
}

impl From<&Stat> for Seen {
    fn from(st: &Stat) -> Seen {
        Seen {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
        }
    }
}

/// go-archive's `sameFsTime`: equal, or the same second with either
/// fraction zero (tar loses fractions).
fn same_fs_time(a: (i64, i64), b: (i64, i64)) -> bool {
    a == b || (a.0 == b.0 && (a.1 == 0 || b.1 == 0))
}

/// go-archive's `statDifferent`: type and mode, owner, device; size and
/// time for non-directories.
fn stat_different(old: &Seen, new: &Seen) -> bool {
    let is_dir = FileType::from_raw_mode(old.mode) == FileType::Directory;
    old.mode != new.mode
        || old.uid != new.uid
        || old.gid != new.gid
        || old.rdev != new.rdev
        || (!is_dir && (!same_fs_time(old.mtime, new.mtime) || old.size != new.size))
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// The image's view of the layers below the container (overlay
/// semantics: the top layer wins, whiteouts and opaque directories hide
/// what is below).
struct Lowers<'a> {
    dirs: &'a [PathBuf],
}

impl Lowers<'_> {
    /// Looks `rel` (`a/b`) up: its stat and the lower it was found in.
    fn lookup(&self, rel: &Path) -> Option<(Stat, PathBuf)> {
        let parts: Vec<&OsStr> = rel.iter().collect();
        for lower in self.dirs {
            let mut blocked = false;
            let mut path = lower.clone();
            let mut found = None;
            for (i, part) in parts.iter().enumerate() {
                path.push(part);
                let Ok(st) = rustix::fs::lstat(&path) else {
                    break;
                };
                if is_whiteout(&st) {
                    return None;
                }
                let last = i + 1 == parts.len();
                if last {
                    found = Some(st);
                    break;
                }
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    // A file hides the layers' directories below it.
                    return None;
                }
                if path_xattr(&path, OPAQUE_XATTR).is_some_and(|v| v == b"y") {
                    blocked = true;
                }
            }
            if let Some(st) = found {
                return Some((st, path));
            }
            if blocked {
                return None;
            }
        }
        None
    }

    /// The names in the image's directory `rel`.
    fn list(&self, rel: &Path) -> BTreeSet<OsString> {
        let mut names = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        for lower in self.dirs {
            let mut path = lower.clone();
            let mut ok = true;
            let mut blocked = false;
            for part in rel.iter() {
                path.push(part);
                match rustix::fs::lstat(&path) {
                    Ok(st) if is_whiteout(&st) => return names,
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        if path_xattr(&path, OPAQUE_XATTR).is_some_and(|v| v == b"y") {
                            blocked = true;
                        }
                    }
                    Ok(_) => return names,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok && let Ok(entries) = std::fs::read_dir(&path) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let white = entry
                        .file_type()
                        .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_char_device(&t))
                        && rustix::fs::lstat(entry.path()).is_ok_and(|st| is_whiteout(&st));
                    if white {
                        hidden.insert(name);
                    } else if !hidden.contains(&name) {
                        names.insert(name);
                    }
                }
            }
            if blocked {
                break;
            }
        }
        names
    }
}

/// `GET /containers/{id}/changes` (`docker diff`): what differs between
/// the container's filesystem and its image, from the overlay upper
/// directory `upper` and the image's layers `lower_dirs` (top first): `A`
/// (1) for paths the image does not have, `C` (0) for changed ones (and
/// every directory with a change below it), `D` (2) for deleted ones
/// (whiteouts, and what an opaque directory hides). The list is sorted by
/// path, so that parents come before their children.
pub fn changes(upper: &Path, lower_dirs: &[PathBuf]) -> Result<Vec<ChangeItem>> {
    changes_except(upper, lower_dirs, &|_| false)
}

/// [`changes`], leaving out the paths for which `skip` says so (and what is
/// below them): the mount points the runtime made, which dockerd keeps in
/// a layer of their own.
pub fn changes_except(
    upper: &Path,
    lower_dirs: &[PathBuf],
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<ChangeItem>> {
    let lowers = Lowers { dirs: lower_dirs };
    let top = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_err(format!("cannot open {}", upper.display())))?;
    let mut found: BTreeMap<String, u8> = BTreeMap::new();
    walk_changes(&lowers, &top, Path::new(""), skip, &mut found, 0)
        .map_err(io_err(format!("cannot read {}", upper.display())))?;
    // Every directory above a change is changed (dockerd lists it so
    // that its permissions are kept).
    let paths: Vec<String> = found.keys().cloned().collect();
    for p in paths {
        let mut parent = Path::new(&p).parent();
        while let Some(dir) = parent {
            let text = dir.to_string_lossy();
            if text == "/" || text.is_empty() {
                break;
            }
            found.entry(text.into_owned()).or_insert(0);
            parent = dir.parent();
        }
    }
    let mut out: Vec<ChangeItem> = found
        .into_iter()
        .map(|(path, kind)| ChangeItem { path, kind })
        .collect();
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

fn walk_changes(
    lowers: &Lowers<'_>,
    dir: &OwnedFd,
    rel: &Path,
    skip: &dyn Fn(&str) -> bool,
    found: &mut BTreeMap<String, u8>,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let show = |rel: &Path| format!("/{}", rel.to_string_lossy());
    for name in sorted_names(dir)? {
        let child_rel = rel.join(&name);
        let shown = show(&child_rel);
        if skip(&shown) {
            continue;
        }
        let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let old = lowers.lookup(&child_rel);
        if is_whiteout(&st) {
            if old.is_some() {
                found.insert(shown, 2);
            }
            continue;
        }
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let child = if is_dir {
            match open_child_dir(dir.as_fd(), &name) {
                Ok(d) => Some(d),
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        match &old {
            None => {
                found.insert(shown.clone(), 1);
            }
            Some((old_st, old_path)) => {
                let new_cap = if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                    rustix::fs::openat(
                        dir,
                        &name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ok()
                    .and_then(|f| fd_xattr(f.as_fd(), CAPABILITY_XATTR))
                } else {
                    None
                };
                let old_cap = if FileType::from_raw_mode(old_st.st_mode) == FileType::RegularFile {
                    path_xattr(old_path, CAPABILITY_XATTR)
                } else {
                    None
                };
                if stat_different(&Seen::from(old_st), &Seen::from(&st)) || new_cap != old_cap {
                    found.insert(shown.clone(), 0);
                }
            }
        }
        if let Some(child) = child {
            // An opaque directory hides everything the image had in it.
            let opaque = fd_xattr(child.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
            let old_is_dir = old
                .as_ref()
                .is_some_and(|(s, _)| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
            if opaque && old_is_dir {
                let present: BTreeSet<OsString> = sorted_names(&child)?
                    .into_iter()
                    .filter(|n| {
                        rustix::fs::statat(&child, n, AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|s| !is_whiteout(&s))
                    })
                    .collect();
                for gone in lowers.list(&child_rel) {
                    if !present.contains(&gone) {
                        let p = show(&child_rel.join(&gone));
                        if !skip(&p) {
                            found.insert(p, 2);
                        }
                    }
                }
            }
            walk_changes(lowers, &child, &child_rel, skip, found, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use hafen_oci::path::clean as go_clean;

    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// A root filesystem: /etc/passwd, /etc/group, /usr/bin/tool, /bin ->
    /// usr/bin, /tmp, and symlinks meant to escape.
    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc")).expect("etc");
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        std::fs::create_dir_all(r.join("usr/bin")).expect("usr/bin");
        std::fs::write(r.join("usr/bin/tool"), "#!/bin/sh\n").expect("tool");
        std::fs::set_permissions(
            r.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        symlink("usr/bin", r.join("bin")).expect("bin");
        std::fs::create_dir_all(r.join("tmp")).expect("tmp");
        dir
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>, Option<String>)> {
        let mut out = Vec::new();
        let mut a = tar::Archive::new(tar_bytes);
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let kind = e.header().entry_type();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            out.push((name, kind, data, link));
        }
        out
    }

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        entries(tar_bytes).into_iter().map(|e| e.0).collect()
    }

    #[test]
    fn go_paths() {
        assert_eq!(go_clean("/a/../../b//c/."), "/b/c");
        assert_eq!(go_clean("a/../../b"), "../b");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_base("/etc/"), "etc");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_base("/etc/."), ".");
        assert_eq!(preserve_trailing("/etc", "etc/."), "/etc/.");
        assert_eq!(preserve_trailing("/etc", "/etc/"), "/etc/");
        assert_eq!(preserve_trailing("/", "/."), "/.");
        assert_eq!(go_join("/a", "/b/../c"), "/a/c");
    }

    #[test]
    fn stat_as_docker() {
        let r = rootfs();
        symlink("/etc/passwd", r.path().join("abs")).expect("abs");
        symlink("/nope/x", r.path().join("dangling")).expect("dangling");
        symlink("../../../../..", r.path().join("up")).expect("up");
        let v = stat(r.path(), "/etc").expect("stat /etc");
        assert_eq!(v["name"], "etc");
        assert_eq!(v["mode"], (1u64 << 31) | 0o755);
        assert_eq!(v["linkTarget"], "");
        let mtime = v["mtime"].as_str().expect("mtime");
        assert!(
            chrono::DateTime::parse_from_rfc3339(mtime).is_ok(),
            "{mtime}"
        );
        let v = stat(r.path(), "/etc/passwd").expect("stat passwd");
        assert_eq!(v["size"], 49);
        assert_eq!(v["mode"], 0o644);
        let v = stat(r.path(), "/bin").expect("stat /bin");
        assert_eq!(v["mode"], (1u64 << 27) | 0o777);
        assert_eq!(v["linkTarget"], "/usr/bin");
        assert_eq!(
            stat(r.path(), "/abs").expect("abs")["linkTarget"],
            "/etc/passwd"
        );
        assert_eq!(
            stat(r.path(), "/dangling").expect("dangling")["linkTarget"],
            "/nope/x"
        );
        // `..` through a symlink stops at the container's root.
        assert_eq!(stat(r.path(), "/up").expect("up")["linkTarget"], "/");
        let v = stat(r.path(), "/up/etc/").expect("through up");
        assert_eq!(v["name"], "etc");
        assert_eq!(v["mode"], (1u64 << 31) | 0o755);
        // A trailing slash follows the link.
        let v = stat(r.path(), "/bin/").expect("bin/");
        assert_eq!(v["mode"], (1u64 << 31) | 0o755);
        let e = stat(r.path(), "/missing").expect_err("missing");
        assert!(e.is_not_found());
    }

    #[test]
    fn stat_never_leaves_the_root() {
        let r = rootfs();
        std::fs::write(r.path().join("tmp/marker"), "container").expect("marker");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret"), "host").expect("secret");
        symlink(outside.path(), r.path().join("hostdir")).expect("hostdir");
        let rel = format!("../../../../../../..{}", outside.path().display());
        symlink(&rel, r.path().join("hostrel")).expect("hostrel");
        for p in ["/hostdir/secret", "/hostrel/secret", "/hostdir/"] {
            let e = stat(r.path(), p).expect_err(p);
            assert!(e.is_not_found(), "{p} must not reach the host: {e}");
            let e = get(r.path(), p, &mut Vec::new()).expect_err(p);
            assert!(e.is_not_found(), "{p} must not reach the host: {e}");
        }
        // `..` above the root is the root.
        let mut out = Vec::new();
        get(r.path(), "/../../../../../../tmp/.", &mut out).expect("tmp");
        assert_eq!(names(&out), ["./", "./marker"]);
    }

    #[test]
    fn get_as_docker_cp() {
        let r = rootfs();
        std::fs::hard_link(
            r.path().join("etc/passwd"),
            r.path().join("etc/passwd-link"),
        )
        .expect("hardlink");
        // A file.
        let mut out = Vec::new();
        get(r.path(), "/etc/passwd", &mut out).expect("get file");
        let e = entries(&out);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "passwd");
        assert_eq!(e[0].1, tar::EntryType::Regular);
        assert!(e[0].2.starts_with(b"root:x:0:0"));
        // A directory: named by its base name.
        let mut out = Vec::new();
        get(r.path(), "/etc", &mut out).expect("get dir");
        assert_eq!(
            names(&out),
            ["etc/", "etc/group", "etc/passwd", "etc/passwd-link"]
        );
        let e = entries(&out);
        assert_eq!(e[3].1, tar::EntryType::Link);
        assert_eq!(e[3].3.as_deref(), Some("etc/passwd"));
        // Its contents only.
        let mut out = Vec::new();
        get(r.path(), "etc/.", &mut out).expect("get dir/.");
        assert_eq!(names(&out), ["./", "./group", "./passwd", "./passwd-link"]);
        // A symlink as itself; with a slash, what it points to.
        let mut out = Vec::new();
        get(r.path(), "/bin", &mut out).expect("get link");
        let e = entries(&out);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1, tar::EntryType::Symlink);
        assert_eq!(e[0].3.as_deref(), Some("usr/bin"));
        let mut out = Vec::new();
        get(r.path(), "/bin/", &mut out).expect("get link/");
        assert_eq!(names(&out), ["bin/", "bin/tool"]);
        let tool = &entries(&out)[1];
        let mut a = tar::Archive::new(&out[..]);
        let modes: Vec<u32> = a
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").header().mode().expect("mode"))
            .collect();
        assert_eq!(modes, [0o755, 0o755]);
        assert_eq!(tool.2, b"#!/bin/sh\n");
        let e = get(r.path(), "/nothing", &mut Vec::new()).expect_err("missing");
        assert!(e.is_not_found());
    }

    #[test]
    fn too_deep_is_an_error_not_a_crash() {
        let r = rootfs();
        let top = rustix::fs::open(
            r.path().join("tmp"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("tmp");
        let mut dir = top;
        for _ in 0..MAX_DEPTH + 5 {
            rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
            dir = rustix::fs::openat(
                &dir,
                "d",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .expect("open");
        }
        let e = export(r.path(), &mut Vec::new()).expect_err("too deep");
        assert!(e.to_string().contains("nested deeper"), "{e}");
        let e = changes(r.path(), &[]).expect_err("too deep");
        assert!(e.to_string().contains("nested deeper"), "{e}");
        // Removing it from the container: refused the same way.
        let t = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_path("tmp").expect("path");
            h.set_mode(0o644);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, &[][..]).expect("append");
            b.into_inner().expect("tar")
        };
        if is_root() {
            assert!(put(r.path(), "/", &t[..], false, false).is_err());
        }
        // The tree is left for the temporary directory's removal, which
        // goes by paths: flatten it first.
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(r.path().join("tmp"))
            .status();
    }

    #[test]
    fn export_lists_everything() {
        let r = rootfs();
        let long = "d".repeat(120);
        std::fs::create_dir_all(r.path().join("tmp").join(&long)).expect("long");
        std::fs::write(r.path().join("tmp").join(&long).join("f"), "x").expect("f");
        let mut out = Vec::new();
        export(r.path(), &mut out).expect("export");
        let got = names(&out);
        let expected = [
            "bin".to_string(),
            "etc/".into(),
            "etc/group".into(),
            "etc/passwd".into(),
            "tmp/".into(),
            format!("tmp/{long}/"),
            format!("tmp/{long}/f"),
            "usr/".into(),
            "usr/bin/".into(),
            "usr/bin/tool".into(),
        ];
        assert_eq!(got, expected);
        assert_eq!(out.len() % 512, 0);
    }

    fn header(name: &str, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        // Raw names: the tar crate refuses `..` in set_path.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h
    }

    fn tar_of(items: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in items {
            let mut h = header(
                name,
                *kind,
                if *kind == tar::EntryType::Directory {
                    0o750
                } else {
                    0o640
                },
            );
            if !link.is_empty() {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn put_extracts_as_docker() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let r = rootfs();
        symlink("/tmp", r.path().join("tmplink")).expect("tmplink");
        let t = tar_of(&[
            ("d/", tar::EntryType::Directory, "", b""),
            ("d/f", tar::EntryType::Regular, "", b"hello"),
            ("d/l", tar::EntryType::Symlink, "f", b""),
            ("d/abs", tar::EntryType::Symlink, "/etc/passwd", b""),
            ("d/h", tar::EntryType::Link, "d/f", b""),
            ("d/p", tar::EntryType::Fifo, "", b""),
            ("/rooted/x", tar::EntryType::Regular, "", b"x"),
            (".wh.keep", tar::EntryType::Regular, "", b""),
        ]);
        // Through a symlink to the directory.
        put(r.path(), "/tmplink", &t[..], false, false).expect("put");
        let d = r.path().join("tmp/d");
        assert_eq!(std::fs::read(d.join("f")).expect("f"), b"hello");
        let m = std::fs::metadata(d.join("f")).expect("meta");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o640));
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(m.nlink(), 2, "d/h is a hardlink of d/f");
        assert_eq!(std::fs::read_link(d.join("l")).expect("l"), Path::new("f"));
        assert_eq!(
            std::fs::read_link(d.join("abs")).expect("abs"),
            Path::new("/etc/passwd")
        );
        let dm = std::fs::metadata(&d).expect("d");
        assert_eq!((dm.mode() & 0o7777, dm.mtime()), (0o750, 1_600_000_000));
        let p = std::fs::symlink_metadata(d.join("p")).expect("p");
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&p.file_type()));
        assert_eq!(
            std::fs::read(r.path().join("tmp/rooted/x")).expect("x"),
            b"x"
        );
        assert!(
            r.path().join("tmp/.wh.keep").exists(),
            "whiteout names are plain files here"
        );
    }

    #[test]
    fn put_refuses_to_escape() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let r = rootfs();
        let outside = tempfile::tempdir().expect("outside");
        let host = outside.path().display().to_string();
        // The container planted links to the host's directory.
        symlink(&host, r.path().join("tmp/hostabs")).expect("hostabs");
        symlink(
            format!("../../../../../../../..{host}"),
            r.path().join("tmp/hostrel"),
        )
        .expect("hostrel");
        let nothing_outside = || {
            let left: Vec<_> = std::fs::read_dir(outside.path()).expect("ls").collect();
            assert!(left.is_empty(), "something was written outside: {left:?}");
        };

        // `..` names.
        for name in ["../evil", "a/../../evil", "../../../../../../..{host}/evil"] {
            let name = name.replace("{host}", &host);
            let t = tar_of(&[(&name, tar::EntryType::Regular, "", b"x")]);
            let e = put(r.path(), "/tmp", &t[..], false, false).expect_err(&name);
            assert!(e.is_invalid(), "{e}");
            assert!(e.to_string().contains("is outside of"), "{e}");
        }
        // Entries through the planted links resolve in the root: the host
        // directory does not exist there, so nothing is made anywhere.
        for name in ["hostabs/pwned", "hostrel/pwned", "hostabs/sub/pwned"] {
            let t = tar_of(&[(name, tar::EntryType::Regular, "", b"x")]);
            assert!(
                put(r.path(), "/tmp", &t[..], false, false).is_err(),
                "{name}"
            );
        }
        // The destination itself through a planted link.
        let t = tar_of(&[("pwned", tar::EntryType::Regular, "", b"x")]);
        let e = put(r.path(), "/tmp/hostabs", &t[..], false, false).expect_err("dest link");
        assert!(e.is_not_found(), "{e}");
        let e = put(r.path(), "/tmp/hostrel/", &t[..], false, false).expect_err("dest rel link");
        assert!(e.is_not_found(), "{e}");
        nothing_outside();

        // Links in the tar: one out of the destination is refused, an
        // absolute one is taken as the container's, and entries written
        // through it stay in the root filesystem.
        let t = tar_of(&[("up", tar::EntryType::Symlink, "../../..", b"")]);
        let e = put(r.path(), "/tmp", &t[..], false, false).expect_err("symlink out");
        assert!(e.to_string().contains("invalid symlink"), "{e}");
        let t = tar_of(&[
            ("s", tar::EntryType::Symlink, "/", b""),
            (
                "s/pwned",
                tar::EntryType::Regular,
                "",
                b"root of the container",
            ),
            ("h", tar::EntryType::Symlink, &host, b""),
            ("h/pwned", tar::EntryType::Regular, "", b"x"),
        ]);
        assert!(put(r.path(), "/", &t[..], false, false).is_err());
        assert_eq!(
            std::fs::read(r.path().join("pwned")).expect("in the container's root"),
            b"root of the container"
        );
        nothing_outside();
        // Once the container has that directory, the entry lands there.
        std::fs::create_dir_all(r.path().join(host.trim_start_matches('/'))).expect("mkdir");
        let t = tar_of(&[("hostrel/inside", tar::EntryType::Regular, "", b"x")]);
        put(r.path(), "/tmp", &t[..], false, false).expect("through the link, inside");
        assert!(
            r.path()
                .join(host.trim_start_matches('/'))
                .join("inside")
                .exists()
        );
        nothing_outside();

        // Hardlinks out of the destination, or to host files.
        let t = tar_of(&[("hl", tar::EntryType::Link, "../../etc/passwd", b"")]);
        let e = put(r.path(), "/tmp", &t[..], false, false).expect_err("hardlink out");
        assert!(e.to_string().contains("invalid hardlink"), "{e}");
        std::fs::write(outside.path().join("target"), "host file").expect("target");
        let t = tar_of(&[("hl", tar::EntryType::Link, "hostabs/target", b"")]);
        assert!(put(r.path(), "/tmp", &t[..], false, false).is_err());
        assert!(!r.path().join("tmp/hl").exists());
        assert_eq!(
            std::fs::metadata(outside.path().join("target"))
                .expect("t")
                .nlink(),
            1
        );
    }

    #[test]
    fn put_overwrite_rules() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let r = rootfs();
        std::fs::create_dir_all(r.path().join("tmp/dir/inner")).expect("dir");
        std::fs::write(r.path().join("tmp/file"), "old").expect("file");
        let file_over_dir = tar_of(&[("dir", tar::EntryType::Regular, "", b"new")]);
        let dir_over_file = tar_of(&[("file/", tar::EntryType::Directory, "", b"")]);
        let e = put(r.path(), "/tmp", &file_over_dir[..], true, false).expect_err("refused");
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        let e = put(r.path(), "/tmp", &dir_over_file[..], true, false).expect_err("refused");
        assert!(
            e.to_string().contains("cannot overwrite non-directory"),
            "{e}"
        );
        put(r.path(), "/tmp", &file_over_dir[..], false, false).expect("replaced");
        assert_eq!(
            std::fs::read(r.path().join("tmp/dir")).expect("dir"),
            b"new"
        );
        put(r.path(), "/tmp", &dir_over_file[..], false, false).expect("replaced");
        assert!(r.path().join("tmp/file").is_dir());
        let e =
            put(r.path(), "/etc/passwd", &dir_over_file[..], false, false).expect_err("not dir");
        assert_eq!(e.to_string(), "extraction point is not a directory");
        assert!(e.is_invalid());
        let e = put(r.path(), "/nope", &dir_over_file[..], false, false).expect_err("missing");
        assert!(e.is_not_found());
    }

    #[test]
    fn put_with_an_owner() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let r = rootfs();
        assert_eq!(user_ids(r.path(), "web").expect("web"), (33, 34));
        assert_eq!(
            user_ids(r.path(), "web:staff").expect("web:staff"),
            (33, 50)
        );
        assert_eq!(user_ids(r.path(), "33").expect("33"), (33, 34));
        assert_eq!(user_ids(r.path(), "4000").expect("4000"), (4000, 0));
        assert_eq!(user_ids(r.path(), ":7").expect(":7"), (0, 7));
        let e = user_ids(r.path(), "nobody").expect_err("unknown");
        assert!(e.is_invalid());
        assert!(
            e.to_string().contains("no matching entries in passwd file"),
            "{e}"
        );
        let t = tar_of(&[
            ("o/", tar::EntryType::Directory, "", b""),
            ("o/f", tar::EntryType::Regular, "", b"x"),
            ("o/l", tar::EntryType::Symlink, "f", b""),
        ]);
        put_as(r.path(), "/tmp", &t[..], false, Owner::Fixed(33, 34)).expect("put");
        for p in ["tmp/o", "tmp/o/f", "tmp/o/l"] {
            let m = std::fs::symlink_metadata(r.path().join(p)).expect("meta");
            assert_eq!((m.uid(), m.gid()), (33, 34), "{p}");
        }
        // Implied parents are root's.
        let t = tar_of(&[("x/y/z", tar::EntryType::Regular, "", b"x")]);
        put(r.path(), "/tmp", &t[..], false, false).expect("put");
        let m = std::fs::metadata(r.path().join("tmp/x/y")).expect("meta");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, 0, 0o755));
    }

    /// An overlay mounted over layers in a temporary directory, unmounted
    /// when dropped.
    struct Overlay {
        dir: tempfile::TempDir,
    }

    impl Overlay {
        fn mount(lowers: &[&str]) -> Overlay {
            let dir = tempfile::tempdir().expect("tempdir");
            for d in ["upper", "work", "merged"] {
                std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
            }
            for l in lowers {
                std::fs::create_dir_all(dir.path().join(l)).expect("mkdir");
            }
            Overlay { dir }
        }

        fn path(&self, p: &str) -> PathBuf {
            self.dir.path().join(p)
        }

        fn up(&self, lowers: &[&str]) {
            let lowerdir: Vec<String> = lowers
                .iter()
                .map(|l| self.path(l).display().to_string())
                .collect();
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                lowerdir.join(":"),
                self.path("upper").display(),
                self.path("work").display()
            );
            let options = std::ffi::CString::new(options).expect("options");
            rustix::mount::mount(
                "overlay",
                self.path("merged"),
                "overlay",
                rustix::mount::MountFlags::empty(),
                options.as_c_str(),
            )
            .expect("mount overlay");
        }
    }

    impl Drop for Overlay {
        fn drop(&mut self) {
            let _ =
                rustix::mount::unmount(self.path("merged"), rustix::mount::UnmountFlags::DETACH);
        }
    }

    fn w(path: PathBuf, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn changes_of_a_real_overlay() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let o = Overlay::mount(&["l1", "l2"]);
        // The image: l1 at the bottom, l2 above it.
        w(o.path("l1/a/one"), "1");
        w(o.path("l1/a/two"), "2");
        w(o.path("l1/keep"), "keep");
        w(o.path("l1/del"), "del");
        w(o.path("l1/ddir/x"), "x");
        w(o.path("l1/opq/old1"), "o");
        w(o.path("l1/opq/old2"), "o");
        w(o.path("l1/same"), "same");
        w(o.path("l2/b"), "b");
        w(o.path("l2/a/three"), "3");
        o.up(&["l2", "l1"]);
        let m = |p: &str| o.path("merged").join(p);
        w(m("new"), "new");
        std::fs::OpenOptions::new()
            .append(true)
            .open(m("keep"))
            .and_then(|mut f| f.write_all(b" more"))
            .expect("modify");
        std::fs::remove_file(m("del")).expect("rm");
        std::fs::remove_dir_all(m("ddir")).expect("rm -r");
        std::fs::remove_dir_all(m("opq")).expect("rm -r opq");
        std::fs::create_dir(m("opq")).expect("mkdir opq");
        w(m("opq/fresh"), "f");
        std::fs::remove_file(m("a/two")).expect("rm a/two");
        std::fs::set_permissions(m("b"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        w(m("n/m/f"), "f");
        // Opened for writing but unchanged: copied up, not a change.
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(m("same"))
                .expect("open"),
        );
        assert!(o.path("upper/same").exists(), "copied up");

        let lowers = [o.path("l2"), o.path("l1")];
        let got: Vec<(String, u8)> = changes(&o.path("upper"), &lowers)
            .expect("changes")
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let expected: Vec<(String, u8)> = [
            ("/a", 0),
            ("/a/two", 2),
            ("/b", 0),
            ("/ddir", 2),
            ("/del", 2),
            ("/keep", 0),
            ("/n", 1),
            ("/n/m", 1),
            ("/n/m/f", 1),
            ("/new", 1),
            ("/opq", 0),
            ("/opq/fresh", 1),
            ("/opq/old1", 2),
            ("/opq/old2", 2),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
        assert_eq!(got, expected);

        let filtered: Vec<String> = changes_except(&o.path("upper"), &lowers, &|p| p == "/n")
            .expect("changes")
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert!(!filtered.iter().any(|p| p.starts_with("/n/") || p == "/n"));
        assert!(filtered.contains(&"/new".to_string()));
    }
}
