//! `process.rlimits`: resource limits set on the container's process.

use hafen_oci::runtime::{PosixRlimit, PosixRlimitType};
use rustix::process::{Resource, Rlimit};

/// Why an rlimit could not be set.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// Raising a hard limit needs CAP_SYS_RESOURCE, which the caller lacks.
    #[error(
        "cannot raise the hard {name} limit to {wanted} above the caller's {current}: that needs CAP_SYS_RESOURCE; lower it in process.rlimits"
    )]
    RaiseHard {
        /// The limit.
        name: String,
        /// The hard value asked for.
        wanted: String,
        /// The caller's hard value.
        current: String,
    },
    /// Any other failure of setrlimit.
    #[error("cannot set {name}: {source}")]
    Set {
        /// The limit.
        name: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The specification's name of a limit, e.g. `RLIMIT_NOFILE`.
pub fn name(typ: PosixRlimitType) -> String {
    typ.to_string()
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}

fn limit(value: u64) -> Option<u64> {
    (value != u64::MAX).then_some(value)
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

/// Sets every limit on the calling process. A hard limit is never raised above
/// the caller's own unless the kernel allows it; if it does not, the error says
/// so instead of a bare EPERM.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for rl in rlimits {
        let res = resource(rl.typ());
        let wanted = Rlimit {
            current: limit(rl.soft()),
            maximum: limit(rl.hard()),
        };
        if let Err(e) = rustix::process::setrlimit(res, wanted) {
            let current = rustix::process::getrlimit(res);
            let raising = match (current.maximum, wanted.maximum) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(cur), Some(want)) => want > cur,
            };
            if e == rustix::io::Errno::PERM && raising {
                return Err(RlimitError::RaiseHard {
                    name: name(rl.typ()),
                    wanted: show(wanted.maximum),
                    current: show(current.maximum),
                });
            }
            return Err(RlimitError::Set {
                name: name(rl.typ()),
                source: e.into(),
            });
        }
    }
    Ok(())
}
