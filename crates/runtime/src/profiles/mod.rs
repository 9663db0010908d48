//! Docker's default security profiles for containers: the default
//! capability set, `--cap-add` / `--cap-drop`, and seccomp profiles in
//! Docker's format (the built-in default one and files given with
//! `--security-opt seccomp=profile.json`).
//!
//! Everything here produces OCI configuration (`process.capabilities`
//! names, `linux.seccomp`); nothing is applied to the calling process. The
//! seccomp profiles come out as [`LinuxSeccomp`] values that
//! [`crate::seccomp::compile`] accepts.
//!
//! A Docker seccomp profile differs from the OCI `linux.seccomp` object in
//! three ways, and they are resolved here:
//! - `archMap` lists architectures with their sub-architectures; only the
//!   entry of the host's architecture is kept;
//! - a syscall entry may carry `includes` / `excludes` conditions on the
//!   container's capabilities (its bounding set), the host's architecture
//!   and the running kernel's version; entries whose conditions fail are
//!   left out;
//! - an entry may use the old `name` field instead of `names`.

mod capabilities;
mod seccomp_default;
mod seccomp_docker;

pub use capabilities::{
    all_capabilities, apply_cap_changes, default_capabilities, normalize_capability,
    own_capabilities,
};
pub use seccomp_default::{docker_default_seccomp, docker_default_seccomp_for};
pub use seccomp_docker::{seccomp_from_docker_json, seccomp_from_docker_json_for};

pub use hafen_oci::runtime::LinuxSeccomp;

/// Errors in capability changes and seccomp profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A capability name that does not exist.
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// A capability that exists but that the running kernel does not have.
    #[error(
        "capability not supported by your kernel or not available in the current environment: {0:?}"
    )]
    UnsupportedCapability(String),
    /// The profile is not valid JSON or does not have the profile's shape.
    #[error("decoding seccomp profile failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The profile has no `defaultAction`.
    #[error(
        "seccomp profile has no defaultAction (to run without seccomp, use --security-opt seccomp=unconfined)"
    )]
    MissingDefaultAction,
    /// An action that is not one of the `SCMP_ACT_*` names.
    #[error("seccomp profile: unknown action {0:?}")]
    UnknownAction(String),
    /// An architecture that is not one of the `SCMP_ARCH_*` names.
    #[error("seccomp profile: unknown architecture {0:?}")]
    UnknownArchitecture(String),
    /// An argument operator that is not one of the `SCMP_CMP_*` names.
    #[error("seccomp profile: unknown argument operator {0:?}")]
    UnknownOperator(String),
    /// A filter flag that is not one of the `SECCOMP_FILTER_FLAG_*` names.
    #[error("seccomp profile: unknown flag {0:?}")]
    UnknownFlag(String),
    /// Both `architectures` and `archMap`.
    #[error(
        "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    /// A syscall entry with both `name` and `names`.
    #[error(
        "both 'name' and 'names' are specified in the seccomp profile (syscall {0:?}), use either 'name' or 'names'"
    )]
    NameAndNames(String),
    /// A syscall argument index beyond the six a syscall has.
    #[error("seccomp profile: syscall {name} compares argument {index}; there are only six (0-5)")]
    ArgIndex {
        /// The syscall.
        name: String,
        /// The index.
        index: u64,
    },
    /// oci-spec refused to build an object of the result.
    #[error("building the seccomp configuration: {0}")]
    Spec(#[from] hafen_oci::oci_spec::OciSpecError),
    /// A `minKernel` that is not `<kernel>.<major>`.
    #[error("seccomp profile: invalid kernel version {0:?}, expected \"<kernel>.<major>\"")]
    KernelVersion(String),
}

/// A kernel version as Docker's profiles compare it: the version and the
/// major revision (`5.15` of `5.15.0-91-generic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// The kernel version (the `5` of `5.15.0`).
    pub kernel: u32,
    /// The major revision (the `15` of `5.15.0`).
    pub major: u32,
}

impl KernelVersion {
    /// Reads the leading `<kernel>.<major>` of a release string such as
    /// `6.1.0-18-amd64` or `3.12-rc5`; `None` when it has none.
    pub fn from_release(release: &str) -> Option<Self> {
        let number = |s: &str| -> Option<u32> {
            let digits: &str = &s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())];
            digits.parse().ok()
        };
        let (kernel, rest) = release.split_once('.')?;
        Some(KernelVersion {
            kernel: kernel.parse().ok()?,
            major: number(rest)?,
        })
    }

    /// Parses a profile's `minKernel` (`"4.8"`): exactly two numbers below
    /// 256, not both zero.
    fn parse_min(s: &str) -> Result<Self, ProfileError> {
        let bad = || ProfileError::KernelVersion(s.to_string());
        let (kernel, major) = s.split_once('.').ok_or_else(bad)?;
        let kernel: u8 = kernel.parse().map_err(|_| bad())?;
        let major: u8 = major.parse().map_err(|_| bad())?;
        if kernel == 0 && major == 0 {
            return Err(bad());
        }
        Ok(KernelVersion {
            kernel: kernel.into(),
            major: major.into(),
        })
    }
}

/// What of the host a Docker seccomp profile's conditions look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The architecture as Docker's `includes.arches` names it (`amd64`,
    /// `arm64`, `x86`, `arm`, `s390x`, `ppc64le`, `riscv64`, ...).
    pub arch: String,
    /// The architecture as seccomp names it, to pick the `archMap` entry;
    /// `None` for an architecture hafen does not map.
    pub seccomp_arch: Option<hafen_oci::runtime::Arch>,
    /// The running kernel's version; `None` when it cannot be read, which
    /// counts as older than any `minKernel`.
    pub kernel: Option<KernelVersion>,
}

impl HostInfo {
    /// The machine this runs on: the compiled-for architecture and the
    /// running kernel's release (`uname -r`).
    pub fn current() -> Self {
        use hafen_oci::runtime::Arch;
        let (arch, seccomp_arch) = if cfg!(target_arch = "x86_64") {
            ("amd64", Some(Arch::ScmpArchX86_64))
        } else if cfg!(target_arch = "aarch64") {
            ("arm64", Some(Arch::ScmpArchAarch64))
        } else if cfg!(target_arch = "x86") {
            ("x86", Some(Arch::ScmpArchX86))
        } else if cfg!(target_arch = "arm") {
            ("arm", Some(Arch::ScmpArchArm))
        } else if cfg!(target_arch = "riscv64") {
            ("riscv64", Some(Arch::ScmpArchRiscv64))
        } else if cfg!(target_arch = "s390x") {
            ("s390x", Some(Arch::ScmpArchS390x))
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            ("ppc64le", Some(Arch::ScmpArchPpc64le))
        } else if cfg!(target_arch = "powerpc64") {
            ("ppc64", Some(Arch::ScmpArchPpc64))
        } else if cfg!(target_arch = "loongarch64") {
            ("loongarch64", Some(Arch::ScmpArchLoongarch64))
        } else {
            (std::env::consts::ARCH, None)
        };
        let uname = rustix::system::uname();
        let kernel = uname
            .release()
            .to_str()
            .ok()
            .and_then(KernelVersion::from_release);
        HostInfo {
            arch: arch.to_string(),
            seccomp_arch,
            kernel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases() {
        let v = |kernel, major| Some(KernelVersion { kernel, major });
        assert_eq!(KernelVersion::from_release("6.1.0-18-amd64"), v(6, 1));
        assert_eq!(KernelVersion::from_release("3.12.25-gentoo"), v(3, 12));
        assert_eq!(KernelVersion::from_release("3.12-1-amd64"), v(3, 12));
        assert_eq!(KernelVersion::from_release("3.12-rc5"), v(3, 12));
        assert_eq!(KernelVersion::from_release("5.15"), v(5, 15));
        assert_eq!(KernelVersion::from_release("garbage"), None);
        assert_eq!(KernelVersion::from_release("6.x"), None);
        assert!(HostInfo::current().kernel.is_some());
    }

    #[test]
    fn min_kernel_versions() {
        let v = KernelVersion::parse_min("4.8").expect("4.8");
        assert_eq!((v.kernel, v.major), (4, 8));
        assert!(
            KernelVersion {
                kernel: 5,
                major: 0
            } > v
        );
        assert!(
            KernelVersion {
                kernel: 4,
                major: 7
            } < v
        );
        for bad in ["4", "4.8.1", "0.0", "a.b", "300.1", ""] {
            assert!(
                matches!(
                    KernelVersion::parse_min(bad),
                    Err(ProfileError::KernelVersion(_))
                ),
                "{bad}"
            );
        }
    }
}
