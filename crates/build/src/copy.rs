//! `COPY` and `ADD`: which files, where they go, the content digest the
//! cache keys on, and the tar that puts them into the new layer.
//!
//! Sources are read from a directory tree: the build context (with its
//! `.dockerignore`) or the root filesystem of another stage or image
//! (where symlinks resolve inside that root). The digest covers names,
//! modes, owners, link targets and file contents, not modification times:
//! touching a file does not invalidate the cache, changing it does.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::dockerignore::{Patterns, glob_match};

/// Copy failures.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source that does not exist (or is excluded).
    #[error("{0}")]
    NotFound(String),
    /// A path that leaves the context.
    #[error("{0}")]
    Outside(String),
    /// Anything else that is wrong with the instruction.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, CopyError>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let what = what.into();
    move |source| CopyError::Io { what, source }
}

/// Paths found by a walk, with their metadata.
type Walked = Vec<(String, Metadata)>;

/// Where sources are read from.
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    /// The directory.
    pub root: &'a Path,
    /// The context's `.dockerignore` (none for a root filesystem).
    pub ignore: Option<&'a Patterns>,
    /// A root filesystem: symlinks in source paths resolve inside it.
    pub rootfs: bool,
}

/// What a destination path is in the image being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    /// Nothing there.
    Missing,
    /// A directory (symlinks followed).
    Dir,
    /// Something else.
    Other,
}

/// One file to copy.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it is on this machine.
    pub host: PathBuf,
    /// Where it goes: an absolute, clean path in the image.
    pub dest: String,
    /// `ADD` of a local archive: its content is unpacked into `dest`.
    pub unpack: bool,
    /// Its metadata, when the walk that found it had it.
    pub meta: Option<Metadata>,
}

/// The options of a copy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--chown`, resolved: every file gets this owner.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`: every file and directory gets this mode.
    pub mode: Option<u32>,
    /// `--parents`: sources keep their path below the context.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `ADD`: local tar archives are unpacked.
    pub unpack_archives: bool,
}

/// Go's `path.Clean` of an absolute or relative slash path.
pub use hafen_oci::path::clean;

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Resolves `rel` (a clean relative path) in a root filesystem: every
/// symlink is followed inside `root`. Returns the relative result.
pub(crate) fn in_scope(root: &Path, rel: &str) -> String {
    let mut resolved: Vec<String> = Vec::new();
    let mut rest: std::collections::VecDeque<String> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = resolved.clone();
        candidate.push(part.clone());
        let host = root.join(candidate.join("/"));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && links < 255 => {
                links += 1;
                let Ok(target) = std::fs::read_link(&host) else {
                    resolved.push(part);
                    continue;
                };
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for c in target.split('/').rev().filter(|p| !p.is_empty()) {
                    rest.push_front(c.to_string());
                }
            }
            _ => resolved.push(part),
        }
    }
    resolved.join("/")
}

impl Tree<'_> {
    fn excluded(&self, rel: &str) -> bool {
        self.ignore.is_some_and(|p| p.excluded(rel))
    }

    /// The relative paths `pattern` names (wildcards expanded), sorted.
    fn expand(&self, pattern: &str, what: &str) -> Result<Vec<String>> {
        let cleaned = clean(&format!("/{pattern}"));
        let rel = cleaned.trim_start_matches('/').to_string();
        if !self.rootfs && clean(pattern).starts_with("..") {
            return Err(CopyError::Outside(format!(
                "{what} source {pattern:?} is outside the build context: sources are paths inside the context"
            )));
        }
        if !has_wildcards(&rel) {
            // Symlinks resolve inside the tree, for the context too.
            let rel = in_scope(self.root, &rel);
            let host = self.root.join(&rel);
            if std::fs::symlink_metadata(&host).is_err() || (!rel.is_empty() && self.excluded(&rel))
            {
                return Err(CopyError::NotFound(format!(
                    "{what} failed: file not found in build context or excluded by .dockerignore: stat {pattern}: file does not exist"
                )));
            }
            return Ok(vec![rel]);
        }
        let parts: Vec<&str> = rel.split('/').collect();
        let mut current = vec![String::new()];
        for (i, part) in parts.iter().enumerate() {
            let mut next = Vec::new();
            for base in &current {
                let dir = self.root.join(base);
                if !has_wildcards(part) {
                    let p = join_rel(base, part);
                    if std::fs::symlink_metadata(self.root.join(&p)).is_ok() {
                        next.push(p);
                    }
                    continue;
                }
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    let matched = glob_match(part, &name).map_err(|e| {
                        CopyError::Invalid(format!("{what}: bad pattern {pattern:?}: {e}"))
                    })?;
                    if matched {
                        let p = join_rel(base, &name);
                        let last = i + 1 == parts.len();
                        if last && self.excluded(&p) {
                            continue;
                        }
                        next.push(p);
                    }
                }
            }
            current = next;
        }
        if current.is_empty() {
            return Err(CopyError::NotFound(format!(
                "{what} failed: no source files were specified (nothing matches {pattern:?} in the build context)"
            )));
        }
        Ok(current)
    }

    /// Every path below `dir` (relative to the root), depth first with
    /// names sorted, without what `.dockerignore` or `exclude` leave out.
    fn walk(
        &self,
        base: &str,
        dir: &str,
        exclude: &Option<Patterns>,
        out: &mut Walked,
    ) -> Result<()> {
        let host = self.root.join(dir);
        let entries = std::fs::read_dir(&host).map_err(io_err(format!("cannot read {dir}")))?;
        // One stat per entry, relative to the open directory.
        let mut found: Vec<(String, Metadata)> = Vec::new();
        for e in entries {
            let e = e.map_err(io_err(format!("cannot read {dir}")))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e
                .metadata()
                .map_err(io_err(format!("cannot stat {}", join_rel(dir, &name))))?;
            found.push((name, meta));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // What each entry is: kept or not, and a directory to go into.
        let mut plan: Vec<(String, Metadata, bool, bool)> = Vec::new();
        for (name, meta) in found {
            let rel = join_rel(dir, &name);
            let ignored = self.excluded(&rel);
            // --exclude patterns are relative to the source directory.
            let below = rel
                .strip_prefix(base)
                .map_or(rel.as_str(), |r| r.trim_start_matches('/'));
            let excluded = exclude.as_ref().is_some_and(|p| p.excluded(below));
            let keep = !ignored && !excluded;
            if meta.is_dir() {
                if (ignored && !self.ignore.is_some_and(|p| p.may_include_below(&rel)))
                    || (excluded && !exclude.as_ref().is_some_and(|p| p.may_include_below(below)))
                {
                    continue;
                }
                plan.push((rel, meta, keep, true));
            } else if keep {
                plan.push((rel, meta, true, false));
            }
        }
        // Below the top, or with few directories: one thread.
        let dirs: Vec<&str> = plan.iter().filter(|e| e.3).map(|e| e.0.as_str()).collect();
        let mut below: HashMap<String, Walked> = HashMap::new();
        if dir == base && dirs.len() >= 8 {
            // The top of a large tree: its directories in two threads (the
            // stat calls are most of an unchanged rebuild).
            let (a, b) = dirs.split_at(dirs.len() / 2);
            let walk_all = |list: &[&str]| -> Result<Vec<(String, Walked)>> {
                let mut done = Vec::new();
                for d in list {
                    let mut sub = Vec::new();
                    self.walk(base, d, exclude, &mut sub)?;
                    done.push((d.to_string(), sub));
                }
                Ok(done)
            };
            let (ra, rb) = std::thread::scope(|s| {
                let h = s.spawn(|| walk_all(b));
                let ra = walk_all(a);
                let rb = h
                    .join()
                    .unwrap_or_else(|_| Err(CopyError::Invalid("the context walk failed".into())));
                (ra, rb)
            });
            below.extend(ra?);
            below.extend(rb?);
        }
        for (rel, meta, keep, is_dir) in plan {
            if keep {
                out.push((rel.clone(), meta));
            }
            if is_dir {
                match below.remove(&rel) {
                    Some(sub) => out.extend(sub),
                    None => self.walk(base, &rel, exclude, out)?,
                }
            }
        }
        Ok(())
    }
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// The files a `COPY`/`ADD` of `sources` to `dest` (absolute, clean, with
/// a trailing `/` kept) copies, in order. `dest_kind` says what the
/// destination is in the image.
pub fn plan(
    tree: &Tree<'_>,
    sources: &[String],
    dest: &str,
    dest_kind: DestKind,
    opts: &Options,
    what: &str,
) -> Result<Vec<Item>> {
    let exclude = if opts.exclude.is_empty() {
        None
    } else {
        Some(
            Patterns::from_patterns(&opts.exclude)
                .map_err(|e| CopyError::Invalid(format!("{what} --exclude: {e}")))?,
        )
    };
    let mut matched = Vec::new();
    for s in sources {
        for rel in tree.expand(s, what)? {
            if exclude.as_ref().is_some_and(|p| p.excluded(&rel)) {
                continue;
            }
            matched.push((s.clone(), rel));
        }
    }
    let dest_clean = clean(dest);
    let into_dir =
        dest.ends_with('/') || dest.ends_with("/.") || dest_kind == DestKind::Dir || opts.parents;
    let several = matched.len() > 1 || sources.iter().any(|s| has_wildcards(s));
    if several && !into_dir {
        let multiple_files = matched.len() > 1
            || matched.iter().any(|(_, rel)| {
                std::fs::symlink_metadata(tree.root.join(rel)).is_ok_and(|m| !m.is_dir())
            });
        if multiple_files && matched.len() > 1 {
            return Err(CopyError::Invalid(format!(
                "When using {what} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
    }
    let mut items = Vec::new();
    for (_, rel) in &matched {
        let host = tree.root.join(rel);
        let meta =
            std::fs::symlink_metadata(&host).map_err(io_err(format!("cannot stat {rel}")))?;
        let base = if opts.parents {
            join_abs(&dest_clean, parent_of(rel))
        } else {
            dest_clean.clone()
        };
        if meta.is_dir() {
            let target = if opts.parents {
                join_abs(&dest_clean, rel)
            } else {
                base.clone()
            };
            items.push(Item {
                host: host.clone(),
                dest: target.clone(),
                unpack: false,
                meta: Some(meta.clone()),
            });
            let mut below = Vec::new();
            tree.walk(rel, rel, &exclude, &mut below)?;
            for (b, m) in below {
                let suffix = b.strip_prefix(rel.as_str()).unwrap_or(&b);
                let suffix = suffix.trim_start_matches('/');
                items.push(Item {
                    host: tree.root.join(&b),
                    dest: join_abs(&target, suffix),
                    unpack: false,
                    meta: Some(m),
                });
            }
        } else {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let target = if into_dir || several {
                join_abs(&base, name)
            } else {
                base.clone()
            };
            if opts.unpack_archives && meta.is_file() && is_archive(&host) {
                // ADD: the archive's content goes into the destination.
                items.push(Item {
                    host,
                    dest: dest_clean.clone(),
                    unpack: true,
                    meta: Some(meta),
                });
                continue;
            }
            items.push(Item {
                host,
                dest: target,
                unpack: false,
                meta: Some(meta),
            });
        }
    }
    Ok(items)
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(p, _)| p)
}

fn join_abs(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        return clean(base);
    }
    // The common case, a clean base and plain names: no cleaning needed.
    let plain = |p: &str| {
        !p.is_empty()
            && !p.ends_with('/')
            && p.split('/')
                .skip(1)
                .all(|c| !c.is_empty() && c != "." && c != "..")
    };
    if base.starts_with('/') && (base == "/" || plain(base)) && plain(&format!("/{rel}")) {
        let mut out = String::with_capacity(base.len() + rel.len() + 1);
        out.push_str(base.trim_end_matches('/'));
        out.push('/');
        out.push_str(rel);
        return out;
    }
    clean(&format!("{base}/{rel}"))
}

/// A memo of file content digests, by path, size, mtime and inode: a file
/// whose metadata did not change is not read again.
#[derive(Debug, Default)]
pub struct HashMemo {
    map: Mutex<HashMap<PathBuf, Stamped>>,
}

/// A digest and the metadata (size, mtime, mtime ns, inode) it was made
/// for.
type Stamped = (u64, i64, i64, u64, String);

impl HashMemo {
    /// Forgets every digest.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }

    /// The sha256 of the file at `path`.
    pub fn file_digest(&self, path: &Path, meta: &Metadata) -> Result<String> {
        let stamp = (meta.size(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        if let Ok(map) = self.map.lock()
            && let Some((s, m, n, i, d)) = map.get(path)
            && (*s, *m, *n, *i) == stamp
        {
            return Ok(d.clone());
        }
        let mut f = File::open(path).map_err(io_err(format!("cannot read {}", path.display())))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(io_err(format!("cannot read {}", path.display())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let d = hex::encode(h.finalize());
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                path.to_path_buf(),
                (stamp.0, stamp.1, stamp.2, stamp.3, d.clone()),
            );
        }
        Ok(d)
    }
}

/// The digest of what copying `items` writes (names, kinds, modes,
/// owners, link targets, contents; not times).
pub fn digest(items: &[Item], opts: &Options, keep_owner: bool, memo: &HashMemo) -> Result<String> {
    let mut h = Sha256::new();
    for item in items {
        let meta = match &item.meta {
            Some(m) => m.clone(),
            None => std::fs::symlink_metadata(&item.host)
                .map_err(io_err(format!("cannot stat {}", item.host.display())))?,
        };
        let (uid, gid) = owner_of(&meta, opts, keep_owner);
        let mode = mode_of(&meta, opts);
        h.update(item.dest.as_bytes());
        h.update([0]);
        h.update(mode.to_le_bytes());
        h.update(uid.to_le_bytes());
        h.update(gid.to_le_bytes());
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&item.host).map_err(io_err("cannot read a link"))?;
            h.update(b"L");
            h.update(t.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            h.update(b"D");
        } else if meta.is_file() {
            h.update(if item.unpack { b"A" } else { b"F" });
            h.update(memo.file_digest(&item.host, &meta)?.as_bytes());
        } else {
            h.update(b"S");
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

fn owner_of(meta: &Metadata, opts: &Options, keep_owner: bool) -> (u32, u32) {
    match opts.owner {
        Some(o) => o,
        None if keep_owner => (meta.uid(), meta.gid()),
        None => (0, 0),
    }
}

fn mode_of(meta: &Metadata, opts: &Options) -> u32 {
    match opts.mode {
        Some(m) if !meta.file_type().is_symlink() => m,
        _ => meta.permissions().mode() & 0o7777,
    }
}

/// Writes the tar of `items` (paths relative to `/`) to `out`; a
/// directory `dest_dir` that `make_dir` asks for comes first (with the
/// copy's owner). `keep_owner`: files keep their owners (copies from a
/// stage), else they are root's unless `--chown` says otherwise.
pub fn write_tar(
    items: &[Item],
    make_dirs: &[String],
    opts: &Options,
    keep_owner: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tar: tar::Builder<&mut dyn Write> = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let (duid, dgid) = opts.owner.unwrap_or((0, 0));
    for d in make_dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(u64::from(duid));
        h.set_gid(u64::from(dgid));
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(
            &mut h,
            format!("{}/", d.trim_start_matches('/')),
            io::empty(),
        )
        .map_err(io_err("cannot write the layer"))?;
    }
    for item in items {
        let meta = std::fs::symlink_metadata(&item.host)
            .map_err(io_err(format!("cannot stat {}", item.host.display())))?;
        if item.unpack {
            unpack_into(&mut tar, &item.host, &item.dest, opts)?;
            continue;
        }
        let (uid, gid) = owner_of(&meta, opts, keep_owner);
        let name = item.dest.trim_start_matches('/');
        if name.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode_of(&meta, opts));
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        let w = io_err(format!("cannot write {name} into the layer"));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&item.host).map_err(io_err("cannot read a link"))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, name, &target).map_err(w)?;
        } else if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), io::empty())
                .map_err(w)?;
        } else if meta.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&item.host).map_err(io_err(format!("cannot read {name}")))?;
            tar.append_data(&mut h, name, f).map_err(w)?;
        }
    }
    tar.finish().map_err(io_err("cannot write the layer"))?;
    Ok(())
}

/// Adds the entries of the archive `file` (plain, gzip or zstd) to `tar`,
/// below `dest`; `--chown` and `--chmod` apply to them too.
fn unpack_into(
    tar: &mut tar::Builder<&mut dyn Write>,
    file: &Path,
    dest: &str,
    opts: &Options,
) -> Result<()> {
    let what = file.display().to_string();
    let f = File::open(file).map_err(io_err(format!("cannot read {what}")))?;
    let mut head = [0u8; 6];
    let n = File::open(file)
        .and_then(|mut g| g.read(&mut head))
        .map_err(io_err(format!("cannot read {what}")))?;
    let head = &head[..n];
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::new(f).map_err(io_err(format!("cannot read {what}")))?,
        )
    } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(CopyError::Invalid(format!(
            "ADD {what}: bzip2 and xz archives are not supported: recompress it with gzip or zstd"
        )));
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(reader);
    let bad = |e: io::Error| CopyError::Invalid(format!("ADD: {what} is not a valid archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = clean(&format!("/{path}"));
        let target = join_abs(dest, rel.trim_start_matches('/'));
        let mut h = entry.header().clone();
        if let Some((u, g)) = opts.owner {
            h.set_uid(u64::from(u));
            h.set_gid(u64::from(g));
        }
        if let Some(m) = opts.mode
            && h.entry_type() != tar::EntryType::Symlink
        {
            h.set_mode(m);
        }
        let name = target.trim_start_matches('/').to_string();
        if name.is_empty() {
            continue;
        }
        let w = io_err(format!("cannot write {name} into the layer"));
        match h.entry_type() {
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(bad)?
                    .unwrap_or_default()
                    .into_owned();
                tar.append_link(&mut h, &name, link).map_err(w)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name().map_err(bad)?.unwrap_or_default();
                let l = clean(&format!("/{}", link.to_string_lossy()));
                let l = join_abs(dest, l.trim_start_matches('/'));
                tar.append_link(&mut h, &name, l.trim_start_matches('/'))
                    .map_err(w)?;
            }
            tar::EntryType::Directory => {
                tar.append_data(&mut h, format!("{name}/"), io::empty())
                    .map_err(w)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                tar.append_data(&mut h, &name, &mut entry).map_err(w)?;
            }
        }
    }
    Ok(())
}

/// Whether a file's first bytes make it a tar archive ADD unpacks
/// (plain, gzip, bzip2, xz or zstd).
pub fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(b"BZh")
        || h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &h[257..262] == b"ustar")
}

/// The mode `--chmod` gives (octal).
pub fn parse_chmod(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        for (p, content) in files {
            let path = t.path().join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        t
    }

    fn dests(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.dest.as_str()).collect()
    }

    #[test]
    fn sources_land_where_docker_puts_them() {
        let t = tree_with(&[
            ("a", "1"),
            ("d/x", "2"),
            ("d/s/y", "3"),
            ("b.txt", "4"),
            ("c.txt", "5"),
        ]);
        let tree = Tree {
            root: t.path(),
            ignore: None,
            rootfs: false,
        };
        let o = Options::default();
        let p = |s: &[&str], d: &str, k| {
            plan(
                &tree,
                &s.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                d,
                k,
                &o,
                "COPY",
            )
        };
        assert_eq!(
            dests(&p(&["a"], "/f", DestKind::Missing).expect("file")),
            ["/f"]
        );
        assert_eq!(
            dests(&p(&["a"], "/f/", DestKind::Missing).expect("dir")),
            ["/f/a"]
        );
        assert_eq!(
            dests(&p(&["a"], "/f", DestKind::Dir).expect("existing")),
            ["/f/a"]
        );
        assert_eq!(
            dests(&p(&["d"], "/t", DestKind::Missing).expect("tree")),
            ["/t", "/t/s", "/t/s/y", "/t/x"]
        );
        assert_eq!(
            dests(&p(&["*.txt"], "/w/", DestKind::Missing).expect("glob")),
            ["/w/b.txt", "/w/c.txt"]
        );
        assert!(matches!(
            p(&["a", "b.txt"], "/f", DestKind::Missing),
            Err(CopyError::Invalid(_))
        ));
        assert!(matches!(
            p(&["nope"], "/f", DestKind::Missing),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            p(&["../etc/passwd"], "/f", DestKind::Missing),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            p(&["*.none"], "/f/", DestKind::Missing),
            Err(CopyError::NotFound(_))
        ));
    }

    #[test]
    fn ignored_and_excluded_files_stay_out() {
        let t = tree_with(&[
            ("keep", "1"),
            ("skip.log", "2"),
            ("d/x.log", "3"),
            ("d/y", "4"),
        ]);
        let ignore = Patterns::parse("*.log\n").expect("patterns");
        let tree = Tree {
            root: t.path(),
            ignore: Some(&ignore),
            rootfs: false,
        };
        let all = plan(
            &tree,
            &[".".into()],
            "/",
            DestKind::Dir,
            &Options::default(),
            "COPY",
        )
        .expect("plan");
        assert_eq!(dests(&all), ["/", "/d", "/d/x.log", "/d/y", "/keep"]);
        let o = Options {
            exclude: vec!["d".into()],
            ..Options::default()
        };
        let some = plan(&tree, &[".".into()], "/", DestKind::Dir, &o, "COPY").expect("plan");
        assert_eq!(dests(&some), ["/", "/keep"]);
        assert!(
            plan(
                &tree,
                &["skip.log".into()],
                "/",
                DestKind::Dir,
                &Options::default(),
                "COPY"
            )
            .is_err()
        );
    }

    #[test]
    fn digests_follow_content_not_times() {
        let t = tree_with(&[("a", "1")]);
        let tree = Tree {
            root: t.path(),
            ignore: None,
            rootfs: false,
        };
        let memo = HashMemo::default();
        let o = Options::default();
        // Each build plans afresh, with the files' metadata as it is.
        let planned =
            || plan(&tree, &["a".into()], "/a", DestKind::Missing, &o, "COPY").expect("plan");
        let items = planned();
        let d1 = digest(&items, &o, false, &memo).expect("digest");
        let f = File::options()
            .write(true)
            .open(t.path().join("a"))
            .expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("touch");
        assert_eq!(digest(&planned(), &o, false, &memo).expect("digest"), d1);
        std::fs::write(t.path().join("a"), "2").expect("write");
        let items = planned();
        assert_ne!(digest(&items, &o, false, &memo).expect("digest"), d1);
        let chowned = Options {
            owner: Some((1, 1)),
            ..Options::default()
        };
        assert_ne!(digest(&items, &chowned, false, &memo).expect("digest"), d1);
    }

    #[test]
    fn rootfs_sources_resolve_links_inside() {
        let t = tree_with(&[("real/f", "1")]);
        std::os::unix::fs::symlink("/real", t.path().join("abs")).expect("link");
        let tree = Tree {
            root: t.path(),
            ignore: None,
            rootfs: true,
        };
        let items = plan(
            &tree,
            &["/abs/f".into()],
            "/x",
            DestKind::Missing,
            &Options::default(),
            "COPY",
        )
        .expect("plan");
        assert_eq!(items[0].host, t.path().join("real/f"));
    }

    #[test]
    fn a_large_tree_walks_in_order() {
        let files: Vec<(String, String)> = (0..12)
            .flat_map(|d| (0..3).map(move |f| (format!("d{d:02}/f{f}"), format!("{d}{f}"))))
            .chain([("top".to_string(), "t".to_string())])
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let t = tree_with(&refs);
        let tree = Tree {
            root: t.path(),
            ignore: None,
            rootfs: false,
        };
        let items = plan(
            &tree,
            &[".".into()],
            "/x/",
            DestKind::Missing,
            &Options::default(),
            "COPY",
        )
        .expect("plan");
        let got: Vec<&str> = items.iter().map(|i| i.dest.as_str()).collect();
        let mut want = vec!["/x".to_string()];
        for d in 0..12 {
            want.push(format!("/x/d{d:02}"));
            for f in 0..3 {
                want.push(format!("/x/d{d:02}/f{f}"));
            }
        }
        want.push("/x/top".into());
        assert_eq!(got, want);
    }
}
