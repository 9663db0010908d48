//! Capabilities: the five sets of `process.capabilities`.

use hafen_oci::runtime::{Capabilities, Capability, LinuxCapabilities};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// The kernel's number for a capability.
pub fn number(cap: Capability) -> u32 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::DacReadSearch => 2,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::LinuxImmutable => 9,
        Capability::NetBindService => 10,
        Capability::NetBroadcast => 11,
        Capability::NetAdmin => 12,
        Capability::NetRaw => 13,
        Capability::IpcLock => 14,
        Capability::IpcOwner => 15,
        Capability::SysModule => 16,
        Capability::SysRawio => 17,
        Capability::SysChroot => 18,
        Capability::SysPtrace => 19,
        Capability::SysPacct => 20,
        Capability::SysAdmin => 21,
        Capability::SysBoot => 22,
        Capability::SysNice => 23,
        Capability::SysResource => 24,
        Capability::SysTime => 25,
        Capability::SysTtyConfig => 26,
        Capability::Mknod => 27,
        Capability::Lease => 28,
        Capability::AuditWrite => 29,
        Capability::AuditControl => 30,
        Capability::Setfcap => 31,
        Capability::MacOverride => 32,
        Capability::MacAdmin => 33,
        Capability::Syslog => 34,
        Capability::WakeAlarm => 35,
        Capability::BlockSuspend => 36,
        Capability::AuditRead => 37,
        Capability::Perfmon => 38,
        Capability::Bpf => 39,
        Capability::CheckpointRestore => 40,
    }
}

/// Capability names by number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// A set as a bit mask, leaving out capabilities the kernel does not know.
fn mask(set: Option<&Capabilities>, last: u32) -> u64 {
    set.into_iter()
        .flatten()
        .map(|&c| number(c))
        .filter(|&n| n <= last)
        .fold(0u64, |m, n| m | (1 << n))
}

/// The capability sets to give a process, as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapMasks {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

impl CapMasks {
    /// From the configuration; a missing object means "no capabilities".
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Self {
        let last = last_cap();
        let Some(caps) = caps else {
            return CapMasks::default();
        };
        CapMasks {
            bounding: mask(caps.bounding().as_ref(), last),
            effective: mask(caps.effective().as_ref(), last),
            permitted: mask(caps.permitted().as_ref(), last),
            inheritable: mask(caps.inheritable().as_ref(), last),
            ambient: mask(caps.ambient().as_ref(), last),
        }
    }
}

/// Why capabilities could not be set.
#[derive(Debug, thiserror::Error)]
#[error("cannot set capabilities ({step}): {source}")]
pub struct CapError {
    /// The step that failed.
    pub step: &'static str,
    /// The error.
    pub source: std::io::Error,
}

fn step(step: &'static str) -> impl Fn(rustix::io::Errno) -> CapError {
    move |e| CapError {
        step,
        source: e.into(),
    }
}

/// Drops what is not in the bounding set. Must run while the process still
/// has CAP_SETPCAP (before the user change).
pub fn drop_bounding(masks: &CapMasks) -> Result<(), CapError> {
    for n in 0..=last_cap() {
        if masks.bounding & (1 << n) == 0 {
            let cap = CapabilitySet::from_bits_retain(1 << n);
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(step("bounding set")(e)),
            }
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets, then the ambient set.
/// Runs after the user change (with keep-caps set across it).
pub fn apply(masks: &CapMasks) -> Result<(), CapError> {
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::from_bits_retain(masks.effective),
            permitted: CapabilitySet::from_bits_retain(masks.permitted),
            inheritable: CapabilitySet::from_bits_retain(masks.inheritable),
        },
    )
    .map_err(step("capset"))?;
    if masks.ambient != 0 {
        for n in 0..=last_cap() {
            if masks.ambient & (1 << n) != 0 {
                let cap = CapabilitySet::from_bits_retain(1 << n);
                // Raising needs the capability in permitted and inheritable;
                // runc ignores the ones that cannot be raised.
                if let Err(e) = rustix::thread::configure_capability_in_ambient_set(cap, true) {
                    tracing::debug!("ambient capability {n} not raised: {e}");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_numbers() {
        let all: Vec<String> = NAMES.iter().map(|n| format!("\"{n}\"")).collect();
        let caps: Capabilities = serde_json::from_str(&format!("[{}]", all.join(","))).unwrap();
        for cap in caps {
            let name = serde_json::to_value(cap).unwrap();
            assert_eq!(NAMES[number(cap) as usize], name.as_str().unwrap());
        }
    }

    #[test]
    fn masks_from_json() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}"#,
        )
        .unwrap();
        let m = CapMasks::from_spec(Some(&caps));
        assert_eq!(m.bounding, 1 | 1 << 5);
        assert_eq!(m.effective, 1 << 5);
        assert_eq!(m.inheritable, 0);
        assert_eq!(CapMasks::from_spec(None), CapMasks::default());
    }
}
