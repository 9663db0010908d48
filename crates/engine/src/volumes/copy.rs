//! Copy-up: an image's content at a mount point copied into an empty
//! volume, as dockerd does when a container first mounts it. Files,
//! directories, symlinks, hardlinks, device nodes, fifos and sockets keep
//! their owners, modes (setuid bits too), times and extended attributes;
//! attributes the volume's filesystem cannot hold are skipped, as dockerd
//! skips them.
//!
//! `hafen_snapshot::fsutil::copy_tree` does almost this, but fails on an
//! attribute the target does not support (a tmpfs volume without
//! `user.*` attributes, say) and recurses on the call stack; an image's
//! tree is untrusted input, so this walk keeps its own stack.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

/// The times of an inode, for utimensat.
fn timestamps(meta: &fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    }
}

/// Whether an error only says the filesystem cannot do it.
fn unsupported(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::OPNOTSUPP
}

/// Copies the extended attributes of `src` to `dst` (neither followed),
/// leaving out overlayfs' private ones and those `dst` cannot hold.
fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let size = match rustix::fs::llistxattr_query(src) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        Err(e) if unsupported(e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let n = match rustix::fs::llistxattr(src, &mut names[..]) {
        Ok(n) => n,
        // Changed between the calls: nothing to rely on; skip.
        Err(rustix::io::Errno::RANGE) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n.min(size)]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let len = match rustix::fs::lgetxattr_query(src, name) {
            Ok(l) => l,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; len];
        let got = match rustix::fs::lgetxattr(src, name, &mut value[..]) {
            Ok(l) => l,
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::lsetxattr(dst, name, &value[..got.min(len)], XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if unsupported(e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Owner, mode, attributes and times of `src` onto `dst` (a new entry).
fn copy_inode_meta(src: &Path, dst: &Path, meta: &fs::Metadata, times: bool) -> io::Result<()> {
    let is_link = meta.file_type().is_symlink();
    // The owner first: chown clears setuid and setgid bits.
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(src, dst)?;
    if times {
        rustix::fs::utimensat(CWD, dst, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

/// Copies the contents of the directory `src` into the existing directory
/// `dst`, and gives `dst` the owner, mode and attributes of `src`. `src`
/// itself must not be a symlink; nothing under it is followed.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let root_meta = src.symlink_metadata()?;
    copy_inode_meta(src, dst, &root_meta, false)?;
    // Directory times are set last: filling a directory changes them.
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = vec![(dst.to_path_buf(), root_meta)];
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut work = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = work.pop() {
        for entry in fs::read_dir(&from_dir)? {
            let entry = entry?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let meta = from.symlink_metadata()?;
            let ft = meta.file_type();
            if ft.is_dir() {
                fs::create_dir(&to)?;
                copy_inode_meta(&from, &to, &meta, false)?;
                work.push((from, to.clone()));
                dirs.push((to, meta));
                continue;
            }
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &to)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), to.clone());
            }
            if ft.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if ft.is_file() {
                fs::copy(&from, &to)?;
            } else {
                rustix::fs::mknodat(
                    CWD,
                    &to,
                    rustix::fs::FileType::from_raw_mode(meta.mode()),
                    Mode::from_raw_mode(meta.mode() & 0o7777),
                    meta.rdev(),
                )?;
            }
            copy_inode_meta(&from, &to, &meta, true)?;
        }
    }
    for (path, meta) in dirs.iter().rev() {
        rustix::fs::utimensat(CWD, path, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

/// Docker's size of a tree: the bytes of everything but directories,
/// each inode once.
pub(crate) fn tree_size(root: &Path) -> io::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut work = vec![root.to_path_buf()];
    while let Some(dir) = work.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            if meta.is_dir() {
                work.push(entry.path());
            } else if meta.len() > 0 && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Whether a directory has no entries.
pub(crate) fn is_empty_dir(path: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(path)?.next().is_none())
}
