//! Docker's capability rules: the default set, `--privileged` and
//! `--cap-add` / `--cap-drop`.

use super::ProfileError;
use crate::process::caps::{NAMES, last_cap};

/// What `--cap-add` / `--cap-drop` take to mean every capability.
const ALL: &str = "ALL";

/// The capabilities Docker gives a container by default, in Docker's order.
const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default capability set for a container.
pub fn default_capabilities() -> Vec<String> {
    DEFAULT.iter().map(|c| (*c).to_string()).collect()
}

/// Every capability the running kernel has (what `--privileged` gives), in
/// number order: the names hafen knows up to `/proc/sys/kernel/cap_last_cap`.
pub fn all_capabilities() -> Vec<String> {
    let last = usize::try_from(last_cap()).unwrap_or(usize::MAX);
    NAMES
        .iter()
        .take(last.saturating_add(1))
        .map(|c| (*c).to_string())
        .collect()
}

/// The capabilities the calling process has in its bounding set (what a
/// privileged container can get from it: as dockerd, never more than the
/// daemon has), in number order.
pub fn own_capabilities() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    all_capabilities()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i < 64 && bounding & (1u64 << i) != 0)
        .map(|(_, c)| c)
        .collect()
}

/// A capability name as Docker writes it: upper case, with the `CAP_`
/// prefix (`net_admin` → `CAP_NET_ADMIN`). Does not check that it exists.
pub fn normalize_capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Normalizes and checks `--cap-add` / `--cap-drop` values; `ALL` stays.
fn normalize_list(names: &[String]) -> Result<Vec<String>, ProfileError> {
    let last = usize::try_from(last_cap()).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if name.trim().eq_ignore_ascii_case(ALL) {
            out.push(ALL.to_string());
            continue;
        }
        let cap = normalize_capability(name);
        match NAMES.iter().position(|n| *n == cap) {
            None => return Err(ProfileError::UnknownCapability(cap)),
            Some(number) if number > last => {
                return Err(ProfileError::UnsupportedCapability(cap));
            }
            Some(_) => out.push(cap),
        }
    }
    Ok(out)
}

/// Applies `--cap-add` and `--cap-drop` to `base` (usually
/// [`default_capabilities`]) the way Docker does:
/// - names are case-insensitive and may leave out the `CAP_` prefix;
///   names that do not exist are an error, and so are capabilities the
///   running kernel does not have;
/// - with nothing to add or drop, `base` comes back unchanged;
/// - `ALL` in `add`: every capability ([`all_capabilities`]) except those
///   in `drop`;
/// - otherwise `ALL` in `drop`: exactly the capabilities in `add`;
/// - otherwise `base` without `drop`, then `add` (so a capability both
///   added and dropped is kept).
///
/// The result has no duplicates and keeps the first occurrence's order.
pub fn apply_cap_changes(
    base: Vec<String>,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, ProfileError> {
    if add.is_empty() && drop.is_empty() {
        return Ok(base);
    }
    let drop = normalize_list(drop)?;
    let add = normalize_list(add)?;
    let all = |list: &[String]| list.iter().any(|c| c == ALL);
    let caps: Vec<String> = if all(&add) {
        all_capabilities()
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if all(&drop) {
        add
    } else {
        base.into_iter()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut out: Vec<String> = Vec::with_capacity(caps.len());
    for cap in caps {
        if !out.contains(&cap) {
            out.push(cap);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    fn tweak(add: &[&str], drop: &[&str]) -> Result<Vec<String>, ProfileError> {
        apply_cap_changes(default_capabilities(), &strings(add), &strings(drop))
    }

    #[test]
    fn the_default_set_is_dockers() {
        let caps = default_capabilities();
        assert_eq!(caps.len(), 14);
        for cap in &caps {
            assert!(NAMES.contains(&cap.as_str()), "{cap}");
        }
        assert!(caps.contains(&"CAP_NET_BIND_SERVICE".to_string()));
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_ADMIN".to_string()));
    }

    #[test]
    fn all_follows_the_kernel() {
        let all = all_capabilities();
        assert_eq!(all.len() as u32, last_cap() + 1);
        assert_eq!(all[0], "CAP_CHOWN");
        assert!(all.contains(&"CAP_SYS_ADMIN".to_string()));
        for cap in default_capabilities() {
            assert!(all.contains(&cap), "{cap}");
        }
    }

    #[test]
    fn names_are_normalized() {
        let caps = tweak(&["net_admin", "Cap_Sys_Time", "CAP_SYS_PTRACE"], &["chown"])
            .expect("valid names");
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_TIME".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), 14 - 1 + 3);
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = tweak(&["foo"], &[]).expect_err("unknown");
        assert!(matches!(&err, ProfileError::UnknownCapability(c) if c == "CAP_FOO"));
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        assert!(matches!(
            tweak(&[], &["CAP_NOPE"]),
            Err(ProfileError::UnknownCapability(_))
        ));
    }

    #[test]
    fn nothing_to_change_keeps_the_base() {
        let base = strings(&["CAP_KILL", "whatever"]);
        assert_eq!(
            apply_cap_changes(base.clone(), &[], &[]).expect("no change"),
            base
        );
    }

    #[test]
    fn add_wins_over_drop() {
        let caps = tweak(&["NET_ADMIN", "CHOWN"], &["NET_ADMIN", "CHOWN", "KILL"]).expect("ok");
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.iter().filter(|c| *c == "CAP_CHOWN").count(), 1);
    }

    #[test]
    fn drop_all_keeps_only_the_added() {
        assert_eq!(
            tweak(&["net_bind_service"], &["ALL"]).expect("ok"),
            strings(&["CAP_NET_BIND_SERVICE"])
        );
        assert_eq!(tweak(&[], &["all"]).expect("ok"), Vec::<String>::new());
    }

    #[test]
    fn add_all_gives_everything_but_the_dropped() {
        let caps = tweak(&["ALL"], &["NET_RAW", "sys_admin"]).expect("ok");
        assert_eq!(caps.len(), all_capabilities().len() - 2);
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_MODULE".to_string()));
        // ALL in both: add ALL wins, drop ALL removes nothing by name.
        assert_eq!(tweak(&["all"], &["all"]).expect("ok"), all_capabilities());
    }
}
