//! Directory-tree helpers: size as Docker counts it, removal, and full
//! copies for the native snapshotter.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, XattrFlags};

/// Removes a tree; a missing one is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The bytes of the regular files (each inode once) and symlinks of a
/// tree, as Docker reports a layer's size.
pub fn tree_size(root: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            let ft = meta.file_type();
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_symlink() || ft.is_file() {
                if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                    continue;
                }
                total += meta.len();
            }
        }
    }
    Ok(total)
}

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

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(src, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::new(std::str::from_utf8(name).unwrap_or(""));
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(src, name, &mut value)?;
        rustix::fs::lsetxattr(dst, name, &value[..len], XattrFlags::empty())?;
    }
    Ok(())
}

/// Copies the extended attributes of `src` (not overlayfs' own) to an
/// open directory.
pub fn copy_xattrs_to_fd(src: &Path, dst: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(src, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let text = std::str::from_utf8(name).unwrap_or("");
        if text.starts_with("trusted.overlay.") || text.starts_with("user.overlay.") {
            continue;
        }
        let name = std::ffi::OsStr::new(text);
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(src, name, &mut value)?;
        rustix::fs::fsetxattr(dst, name, &value[..len], XattrFlags::empty())?;
    }
    Ok(())
}

/// Copies the tree `src` into the (existing, empty) directory `dst`,
/// keeping ownership, modes, extended attributes, times, hardlinks, device
/// nodes and symlinks.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links: HashMap<(u64, u64), std::path::PathBuf> = HashMap::new();
    let mut dirs = Vec::new();
    copy_dir(src, dst, &mut links, &mut dirs)?;
    // Directory times last: filling a directory changes its mtime.
    for (path, meta) in dirs.into_iter().rev() {
        rustix::fs::utimensat(rustix::fs::CWD, &path, &timestamps(&meta), AtFlags::empty())?;
    }
    Ok(())
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
    dirs: &mut Vec<(std::path::PathBuf, fs::Metadata)>,
) -> io::Result<()> {
    let meta = src.symlink_metadata()?;
    rustix::fs::chown(
        dst,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    )?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    copy_xattrs(src, dst)?;
    dirs.push((dst.to_path_buf(), meta));
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = from.symlink_metadata()?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_dir(&from, &to, links, dirs)?;
            continue;
        }
        if meta.nlink() > 1 && !ft.is_dir() {
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
            let file_type = rustix::fs::FileType::from_raw_mode(meta.mode());
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &to,
                file_type,
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        rustix::fs::chownat(
            rustix::fs::CWD,
            &to,
            Some(rustix::fs::Uid::from_raw(meta.uid())),
            Some(rustix::fs::Gid::from_raw(meta.gid())),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if !ft.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        copy_xattrs(&from, &to)?;
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &to,
            &timestamps(&meta),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}
