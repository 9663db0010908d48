//! Mount options of `mounts[].options`: flags for `mount(2)`, propagation
//! changes, recursive attributes for `mount_setattr(2)`, and what is left for
//! the filesystem (the data string).

/// `(option, clears, MS_* flag)`: `clears` means the option turns the flag off.
const FLAGS: &[(&str, bool, u64)] = &[
    ("acl", false, libc::MS_POSIXACL),
    ("async", true, libc::MS_SYNCHRONOUS),
    ("atime", true, libc::MS_NOATIME),
    ("bind", false, libc::MS_BIND),
    ("defaults", false, 0),
    ("dev", true, libc::MS_NODEV),
    ("diratime", true, libc::MS_NODIRATIME),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("exec", true, libc::MS_NOEXEC),
    ("iversion", false, libc::MS_I_VERSION),
    ("lazytime", false, libc::MS_LAZYTIME),
    ("loud", true, libc::MS_SILENT),
    ("mand", false, libc::MS_MANDLOCK),
    ("noacl", true, libc::MS_POSIXACL),
    ("noatime", false, libc::MS_NOATIME),
    ("nodev", false, libc::MS_NODEV),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("noexec", false, libc::MS_NOEXEC),
    ("noiversion", true, libc::MS_I_VERSION),
    ("nolazytime", true, libc::MS_LAZYTIME),
    ("nomand", true, libc::MS_MANDLOCK),
    ("norelatime", true, libc::MS_RELATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("nosuid", false, libc::MS_NOSUID),
    ("nosymfollow", false, libc::MS_NOSYMFOLLOW),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("remount", false, libc::MS_REMOUNT),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("silent", false, libc::MS_SILENT),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("suid", true, libc::MS_NOSUID),
    ("symfollow", true, libc::MS_NOSYMFOLLOW),
    ("sync", false, libc::MS_SYNCHRONOUS),
];

/// Propagation options.
const PROPAGATION: &[(&str, u64)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_ATIME: u64 = 0x70;
const ATTR_RELATIME: u64 = 0x0;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Recursive attributes: `(option, set, clear)`.
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", ATTR_RDONLY, 0),
    ("rrw", 0, ATTR_RDONLY),
    ("rnosuid", ATTR_NOSUID, 0),
    ("rsuid", 0, ATTR_NOSUID),
    ("rnodev", ATTR_NODEV, 0),
    ("rdev", 0, ATTR_NODEV),
    ("rnoexec", ATTR_NOEXEC, 0),
    ("rexec", 0, ATTR_NOEXEC),
    ("rnodiratime", ATTR_NODIRATIME, 0),
    ("rdiratime", 0, ATTR_NODIRATIME),
    ("rrelatime", ATTR_RELATIME, ATTR_ATIME),
    ("rnorelatime", 0, ATTR_ATIME),
    ("rnoatime", ATTR_NOATIME, ATTR_ATIME),
    ("ratime", 0, ATTR_ATIME),
    ("rstrictatime", ATTR_STRICTATIME, ATTR_ATIME),
    ("rnostrictatime", 0, ATTR_ATIME),
    ("rnosymfollow", ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, ATTR_NOSYMFOLLOW),
];

/// Every option name hafen understands (for `features`).
pub fn known() -> Vec<&'static str> {
    let mut names: Vec<&str> = FLAGS
        .iter()
        .map(|f| f.0)
        .chain(PROPAGATION.iter().map(|p| p.0))
        .chain(RECURSIVE.iter().map(|r| r.0))
        .chain(["tmpcopyup"])
        .collect();
    names.sort_unstable();
    names
}

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set.
    pub flags: u64,
    /// Propagation changes, in order.
    pub propagation: Vec<u64>,
    /// `MOUNT_ATTR_*` to set recursively.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` to clear recursively.
    pub attr_clr: u64,
    /// Options for the filesystem.
    pub data: Vec<String>,
    /// Copy the directory's content into a new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
}

impl MountOptions {
    /// Parses a list of options.
    pub fn parse(options: &[String]) -> Self {
        let mut o = MountOptions::default();
        for option in options {
            let option = option.as_str();
            if let Some(&(_, clears, flag)) = FLAGS.iter().find(|f| f.0 == option) {
                if clears {
                    o.flags &= !flag;
                } else {
                    o.flags |= flag;
                }
            } else if let Some(&(_, flag)) = PROPAGATION.iter().find(|p| p.0 == option) {
                o.propagation.push(flag);
            } else if let Some(&(_, set, clr)) = RECURSIVE.iter().find(|r| r.0 == option) {
                o.attr_clr = (o.attr_clr | clr) & !set;
                o.attr_set = (o.attr_set & !clr) | set;
                if clr == ATTR_ATIME {
                    o.attr_clr |= ATTR_ATIME;
                }
            } else if option == "tmpcopyup" {
                o.tmpcopyup = true;
            } else if option == "idmap" {
                o.idmap = Some(false);
            } else if option == "ridmap" {
                o.idmap = Some(true);
            } else {
                o.data.push(option.to_string());
            }
        }
        o
    }

    /// Whether the mount is a bind mount.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// The data string for `mount(2)`.
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// Flags that need a second, remounting call for a bind mount (anything
    /// besides MS_BIND/MS_REC/MS_REMOUNT).
    pub fn bind_remount_flags(&self) -> u64 {
        self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT)
    }
}

/// The `MS_*` propagation value of `linux.rootfsPropagation`.
pub fn rootfs_propagation(value: &str) -> Option<u64> {
    PROPAGATION.iter().find(|p| p.0 == value).map(|p| p.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> MountOptions {
        MountOptions::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_propagation_and_data() {
        let o = parse(&[
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "rprivate",
            "ro",
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = parse(&["ro", "rw", "nodev", "dev"]);
        assert_eq!(o.flags, 0);
    }

    #[test]
    fn bind_and_recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnoatime", "tmpcopyup"]);
        assert!(o.is_bind());
        assert_eq!(o.flags & libc::MS_REC, libc::MS_REC);
        assert_eq!(o.attr_set, ATTR_RDONLY | ATTR_NOATIME);
        assert_eq!(o.attr_clr & ATTR_ATIME, ATTR_ATIME);
        assert!(o.tmpcopyup);
        assert_eq!(o.bind_remount_flags(), 0);
    }

    #[test]
    fn known_options_are_sorted_and_complete() {
        let k = known();
        assert!(k.windows(2).all(|w| w[0] < w[1]));
        for name in ["rro", "rbind", "nosymfollow", "tmpcopyup", "runbindable"] {
            assert!(k.contains(&name), "{name}");
        }
    }
}
