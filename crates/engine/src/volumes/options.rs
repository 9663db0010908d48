//! The `local` driver's options (`type`, `device`, `o`, `size`) as dockerd
//! checks them, and the mounts they describe.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// The option keys the local driver knows.
const VALID: [&str; 4] = ["type", "o", "device", "size"];

/// Checks driver options as dockerd's local driver does; the message is
/// dockerd's.
pub(crate) fn validate(opts: &BTreeMap<String, String>) -> Result<(), String> {
    if opts.is_empty() {
        return Ok(());
    }
    if let Some(k) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(format!("invalid option: {k:?}"));
    }
    if let Some(size) = opts.get("size") {
        let bytes = ram_in_bytes(size).ok_or_else(|| format!("invalid size: '{size}'"))?;
        if bytes > 0 {
            return Err("quota size requested but no quota support".into());
        }
    }
    // Each option with the options it needs.
    for (opt, needs) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if opts.contains_key(opt) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(format!("missing required option: {missing:?}"));
            }
        }
    }
    Ok(())
}

/// Docker's `RAMInBytes`: a number with an optional binary unit
/// (`512`, `1m`, `1.5GiB`).
fn ram_in_bytes(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// What a volume's options ask for when a container uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing: the data directory itself.
    Plain,
    /// A plain bind of a host directory (`type=none,o=bind,device=DIR`):
    /// containers bind that directory directly.
    BindThrough(String),
    /// A real mount at the data directory on first use.
    Mount(MountSpec),
}

/// A mount(2) call (and what follows it), from `type`, `device` and `o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountSpec {
    /// What is mounted.
    pub device: String,
    /// The filesystem type.
    pub fstype: String,
    /// Flags from `o`.
    pub flags: MountFlags,
    /// A propagation change from `o`.
    pub propagation: Option<MountPropagationFlags>,
    /// The rest of `o`, for the filesystem.
    pub data: String,
}

/// The plan for a volume's options.
pub(crate) fn plan(opts: &BTreeMap<String, String>) -> Plan {
    let fstype = opts.get("type").cloned().unwrap_or_default();
    let device = opts.get("device").cloned().unwrap_or_default();
    if fstype.is_empty() && device.is_empty() {
        return Plan::Plain;
    }
    let (flags, propagation, data) = parse_o(opts.get("o").map_or("", String::as_str));
    let spec = MountSpec {
        device,
        fstype,
        flags,
        propagation,
        data,
    };
    if spec.flags.contains(MountFlags::BIND)
        && (spec.flags - MountFlags::BIND - MountFlags::REC).is_empty()
        && spec.propagation.is_none()
        && spec.data.is_empty()
        && !spec.device.is_empty()
    {
        return Plan::BindThrough(spec.device);
    }
    Plan::Mount(spec)
}

/// Splits `o` into flags, a propagation and data, as mount(8) and dockerd
/// read it.
fn parse_o(o: &str) -> (MountFlags, Option<MountPropagationFlags>, String) {
    let mut flags = MountFlags::empty();
    let mut propagation = None;
    let mut data = Vec::new();
    for word in o.split(',').filter(|w| !w.is_empty()) {
        let (set, clear) = match word {
            "defaults" => (MountFlags::empty(), MountFlags::empty()),
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "async" => (MountFlags::empty(), MountFlags::SYNCHRONOUS),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "mand" => (
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
                MountFlags::empty(),
            ),
            "nomand" => (
                MountFlags::empty(),
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
            ),
            "atime" => (MountFlags::empty(), MountFlags::NOATIME),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "diratime" => (MountFlags::empty(), MountFlags::NODIRATIME),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "norelatime" => (MountFlags::empty(), MountFlags::RELATIME),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "nostrictatime" => (MountFlags::empty(), MountFlags::STRICTATIME),
            "nosymfollow" => (MountFlags::NOSYMFOLLOW, MountFlags::empty()),
            "bind" => (MountFlags::BIND, MountFlags::empty()),
            "rbind" => (MountFlags::BIND | MountFlags::REC, MountFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let mut p = match word.trim_start_matches('r') {
                    "private" => MountPropagationFlags::PRIVATE,
                    "shared" => MountPropagationFlags::SHARED,
                    "slave" => MountPropagationFlags::DOWNSTREAM,
                    _ => MountPropagationFlags::UNBINDABLE,
                };
                if word.starts_with('r') {
                    p |= MountPropagationFlags::REC;
                }
                propagation = Some(p);
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    (flags, propagation, data.join(","))
}

/// Go's text for an errno (`no such file or directory`).
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Mounts `spec` at `target`, as dockerd's local driver does (a bind is
/// remounted for its other flags; a propagation is changed last). The
/// error text is dockerd's.
pub(crate) fn mount(spec: &MountSpec, target: &Path) -> Result<(), String> {
    let describe = |flags: MountFlags, data: &str, e: &std::io::Error| {
        let mut text = format!("mount {}:{}", spec.device, target.display());
        if !flags.is_empty() {
            text.push_str(&format!(", flags: 0x{:x}", flags.bits()));
        }
        if !data.is_empty() {
            text.push_str(&format!(", data: {}", hide_password(data)));
        }
        format!("failed to mount local volume: {text}: {}", errno_text(e))
    };
    let rest = spec.flags - MountFlags::BIND - MountFlags::REC;
    if spec.flags.contains(MountFlags::BIND) {
        let r = if spec.flags.contains(MountFlags::REC) {
            rustix::mount::mount_bind_recursive(spec.device.as_str(), target)
        } else {
            rustix::mount::mount_bind(spec.device.as_str(), target)
        };
        r.map_err(|e| describe(spec.flags, &spec.data, &e.into()))?;
        if !rest.is_empty() || !spec.data.is_empty() {
            if let Err(e) =
                rustix::mount::mount_remount(target, rest | MountFlags::BIND, spec.data.as_str())
            {
                let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
                return Err(describe(spec.flags, &spec.data, &e.into()));
            }
        }
    } else {
        let data = CString::new(spec.data.as_str()).map_err(|_| {
            "failed to mount local volume: the mount options hold a NUL byte".to_string()
        })?;
        rustix::mount::mount(
            spec.device.as_str(),
            target,
            spec.fstype.as_str(),
            spec.flags,
            Some(data.as_c_str()),
        )
        .map_err(|e| describe(spec.flags, &spec.data, &e.into()))?;
    }
    if let Some(p) = spec.propagation {
        if let Err(e) = rustix::mount::mount_change(target, p) {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            return Err(describe(spec.flags, &spec.data, &e.into()));
        }
    }
    Ok(())
}

/// `password=…` in mount options, hidden (as dockerd does in errors).
fn hide_password(data: &str) -> String {
    data.split(',')
        .map(|w| {
            if w.starts_with("password=") {
                "password=********".to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Unmounts `target`; one that is not mounted (any more) is fine.
pub(crate) fn unmount(target: &Path) -> Result<(), String> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) => {
            if is_mount_point(target) {
                Err(format!(
                    "error while unmounting volume path '{}': {}",
                    target.display(),
                    errno_text(&e.into())
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Whether `path` is a mount point (in this process's mount namespace).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = real.as_os_str().as_encoded_bytes();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_as_dockerd_does() {
        assert_eq!(validate(&opts(&[])), Ok(()));
        assert_eq!(
            validate(&opts(&[("foo", "bar")])),
            Err("invalid option: \"foo\"".into())
        );
        assert_eq!(
            validate(&opts(&[("type", "none")])),
            Err("missing required option: \"device\"".into())
        );
        assert_eq!(
            validate(&opts(&[("device", "/x")])),
            Err("missing required option: \"type\"".into())
        );
        assert_eq!(
            validate(&opts(&[("o", "size=1m")])),
            Err("missing required option: \"device\"".into())
        );
        assert_eq!(
            validate(&opts(&[("size", "1m")])),
            Err("quota size requested but no quota support".into())
        );
        assert_eq!(
            validate(&opts(&[("size", "lots")])),
            Err("invalid size: 'lots'".into())
        );
        assert_eq!(validate(&opts(&[("size", "0")])), Ok(()));
        assert_eq!(
            validate(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m")
            ])),
            Ok(())
        );
    }

    #[test]
    fn sizes_are_binary() {
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("1m"), Some(1 << 20));
        assert_eq!(ram_in_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(ram_in_bytes("2kb"), Some(2048));
        assert_eq!(ram_in_bytes("x"), None);
    }

    #[test]
    fn plans_from_options() {
        assert_eq!(plan(&opts(&[])), Plan::Plain);
        assert_eq!(
            plan(&opts(&[
                ("type", "none"),
                ("o", "bind"),
                ("device", "/srv/x")
            ])),
            Plan::BindThrough("/srv/x".into())
        );
        assert_eq!(
            plan(&opts(&[
                ("type", "none"),
                ("o", "rbind"),
                ("device", "/srv/x")
            ])),
            Plan::BindThrough("/srv/x".into())
        );
        let Plan::Mount(ro) = plan(&opts(&[
            ("type", "none"),
            ("o", "bind,ro"),
            ("device", "/d"),
        ])) else {
            panic!("a read-only bind needs a real mount");
        };
        assert_eq!(ro.flags, MountFlags::BIND | MountFlags::RDONLY);
        let Plan::Mount(t) = plan(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,uid=1000,noexec,rshared"),
        ])) else {
            panic!("tmpfs is a real mount");
        };
        assert_eq!(t.fstype, "tmpfs");
        assert_eq!(t.data, "size=1m,uid=1000");
        assert_eq!(t.flags, MountFlags::NOEXEC);
        assert_eq!(
            t.propagation,
            Some(MountPropagationFlags::SHARED | MountPropagationFlags::REC)
        );
        let (f, _, _) = parse_o("ro,rw,nosuid");
        assert_eq!(f, MountFlags::NOSUID);
    }

    #[test]
    fn texts() {
        assert_eq!(
            errno_text(&std::io::Error::from_raw_os_error(2)),
            "no such file or directory"
        );
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), b"/a b\\c".to_vec());
        assert_eq!(
            hide_password("addr=x,password=s3"),
            "addr=x,password=********"
        );
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(Path::new("/proc/self")));
    }
}
