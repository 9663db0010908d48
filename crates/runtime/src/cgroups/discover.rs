//! Finding the cgroup hierarchies of this host and the caller's place in them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Cgroup, CgroupError, InnerPath, Result, V1Dir};

/// How the host lays out its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// v1 hierarchies and a v2 hierarchy beside them.
    Hybrid,
    /// One v2 hierarchy.
    V2,
}

/// The v1 controllers the kernel knows (a mount option that is one of these,
/// or `name=...`, names the hierarchy's controllers).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

#[derive(Debug, Clone)]
struct Mount {
    mountpoint: PathBuf,
    root: PathBuf,
    controllers: Vec<String>,
}

/// The host's cgroup hierarchies and the calling process's cgroup in each.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    layout: Layout,
    v1: Vec<(Mount, PathBuf)>,
    unified: Option<(Mount, PathBuf)>,
}

impl Hierarchies {
    /// Reads `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn discover() -> Result<Self> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
                path: path.into(),
                source,
            })
        };
        Self::from_texts(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)
    }

    fn from_texts(mountinfo: &str, own: &str) -> Result<Self> {
        let mut v1: Vec<(Mount, PathBuf)> = Vec::new();
        let mut unified = None;
        let mut v2_at_top = false;
        for line in mountinfo.lines() {
            let Some(mount) = parse_mount(line) else {
                continue;
            };
            match mount {
                (m, true) => {
                    if unified.is_none() {
                        v2_at_top |= m.mountpoint == Path::new("/sys/fs/cgroup");
                        let own_path = own_path(own, None).unwrap_or_else(|| PathBuf::from("/"));
                        unified = Some((m, own_path));
                    }
                }
                (m, false) => {
                    if m.controllers.is_empty()
                        || v1.iter().any(|(seen, _)| seen.controllers == m.controllers)
                    {
                        continue;
                    }
                    let own_path =
                        own_path(own, Some(&m.controllers)).unwrap_or_else(|| PathBuf::from("/"));
                    v1.push((m, own_path));
                }
            }
        }
        let layout = match (v1.is_empty(), &unified) {
            (true, None) => return Err(CgroupError::NotMounted),
            (true, Some(_)) => Layout::V2,
            (false, None) => Layout::V1,
            (false, Some(_)) if v2_at_top => Layout::V2,
            (false, Some(_)) => Layout::Hybrid,
        };
        if layout == Layout::V2 {
            v1.clear();
        }
        Ok(Hierarchies {
            layout,
            v1,
            unified,
        })
    }

    /// The host's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The cgroup directories for a container path.
    pub(crate) fn cgroup_at(&self, inner: &InnerPath) -> Cgroup {
        let place = |mount: &Mount, own: &Path| -> PathBuf {
            match inner {
                InnerPath::Absolute(rel) => {
                    let rel = strip_root(Path::new("/").join(rel).as_path(), &mount.root);
                    mount.mountpoint.join(rel)
                }
                InnerPath::Relative(rel) => mount
                    .mountpoint
                    .join(strip_root(own, &mount.root))
                    .join(rel),
            }
        };
        let v1 = self
            .v1
            .iter()
            .map(|(m, own)| V1Dir {
                controllers: m.controllers.clone(),
                path: place(m, own),
            })
            .collect();
        let (unified, unified_controllers) = match &self.unified {
            Some((m, own)) => {
                let controllers = std::fs::read_to_string(m.mountpoint.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                (Some(place(m, own)), controllers)
            }
            None => (None, Vec::new()),
        };
        Cgroup {
            layout: self.layout,
            v1,
            unified,
            unified_controllers,
        }
    }
}

/// `own` relative to the mount's root (a cgroup namespace or a bind mount
/// may show only part of the hierarchy).
fn strip_root(own: &Path, root: &Path) -> PathBuf {
    own.strip_prefix(root)
        .or_else(|_| own.strip_prefix("/"))
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Parses one mountinfo line; returns the mount and whether it is cgroup2.
fn parse_mount(line: &str) -> Option<(Mount, bool)> {
    let (before, after) = line.split_once(" - ")?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    let is_v2 = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let _source = after.next()?;
    let super_options = after.next().unwrap_or("");
    let fields: Vec<&str> = before.split(' ').collect();
    let root = unescape(fields.get(3)?);
    let mountpoint = unescape(fields.get(4)?);
    let controllers = if is_v2 {
        Vec::new()
    } else {
        super_options
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
            .map(str::to_string)
            .collect()
    };
    Some((
        Mount {
            mountpoint: mountpoint.into(),
            root: root.into(),
            controllers,
        },
        is_v2,
    ))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller's cgroup in the hierarchy with these controllers (`None`: the
/// v2 hierarchy), from `/proc/self/cgroup`.
fn own_path(text: &str, controllers: Option<&[String]>) -> Option<PathBuf> {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controllers {
            None => names.is_empty(),
            Some(wanted) => {
                let mut have: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
                let mut want: Vec<&str> = wanted.iter().map(String::as_str).collect();
                have.sort_unstable();
                want.sort_unstable();
                !have.is_empty() && have == want
            }
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_OWN: &str = "\
9:name=systemd:/
4:memory:/sandbox/x
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_host() {
        let h = Hierarchies::from_texts(HYBRID_MOUNTS, HYBRID_OWN).unwrap();
        assert_eq!(h.layout(), Layout::Hybrid);
        let cg = h.cgroup_at(&InnerPath::Relative("c1".into()));
        assert_eq!(
            cg.v1_dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/sandbox/x/c1")
        );
        assert_eq!(
            cg.v1_dir("cpu").unwrap(),
            Path::new("/sys/fs/cgroup/cpu/c1")
        );
        assert_eq!(
            cg.v1_dir("name=systemd").unwrap(),
            Path::new("/sys/fs/cgroup/systemd/c1")
        );
        assert_eq!(
            cg.unified.as_deref().unwrap(),
            Path::new("/sys/fs/cgroup/unified/c1")
        );
        let cg = h.cgroup_at(&InnerPath::Absolute("a/b".into()));
        assert_eq!(
            cg.v1_dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
    }

    #[test]
    fn pure_v2_host() {
        let mounts = "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::from_texts(mounts, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(h.layout(), Layout::V2);
        let cg = h.cgroup_at(&InnerPath::Relative("c1".into()));
        assert!(cg.v1.is_empty());
        assert_eq!(
            cg.unified.as_deref().unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/session-1.scope/c1")
        );
    }

    #[test]
    fn no_cgroups_is_an_error() {
        let mounts = "22 1 0:21 / /proc rw - proc proc rw\n";
        assert!(matches!(
            Hierarchies::from_texts(mounts, ""),
            Err(CgroupError::NotMounted)
        ));
    }

    #[test]
    fn comounted_controllers() {
        let mounts = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let own = "3:cpuacct,cpu:/a\n";
        let h = Hierarchies::from_texts(mounts, own).unwrap();
        let cg = h.cgroup_at(&InnerPath::Relative("c".into()));
        assert_eq!(
            cg.v1_dir("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/a/c")
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\04"), r"/a\04");
        assert_eq!(unescape("plain"), "plain");
    }
}
