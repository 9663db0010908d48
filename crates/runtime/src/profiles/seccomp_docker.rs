//! Seccomp profiles in Docker's format, resolved for one container on one
//! host into the OCI `linux.seccomp` object.

use std::path::PathBuf;

use hafen_oci::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};

use super::capabilities::normalize_capability;
use super::{HostInfo, KernelVersion, ProfileError};

/// A profile with its names checked, before its conditions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Profile {
    pub default_action: LinuxSeccompAction,
    pub default_errno_ret: Option<u32>,
    /// Architectures listed directly (`architectures`).
    pub architectures: Vec<Arch>,
    /// Architectures with their sub-architectures (`archMap`).
    pub arch_map: Vec<(Arch, Vec<Arch>)>,
    pub flags: Vec<LinuxSeccompFilterFlag>,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
    pub rules: Vec<Rule>,
}

/// One syscall entry with its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    pub errno_ret: Option<u32>,
    pub args: Vec<Arg>,
    /// Every condition here must hold for the rule to be kept.
    pub includes: Filter,
    /// Any condition here that holds leaves the rule out.
    pub excludes: Filter,
}

/// One argument comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Arg {
    /// Which argument (0-5).
    pub index: usize,
    pub op: LinuxSeccompOperator,
    pub value: u64,
    pub value_two: Option<u64>,
}

/// Conditions on the container and the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Filter {
    /// Capability names (normalized to `CAP_*`).
    pub caps: Vec<String>,
    /// Architectures as Docker names them (`amd64`, `arm64`, ...).
    pub arches: Vec<String>,
    pub min_kernel: Option<KernelVersion>,
}

impl Profile {
    /// Applies the conditions for `host` and a container whose bounding set
    /// is `capabilities`.
    pub fn resolve(
        &self,
        host: &HostInfo,
        capabilities: &[String],
    ) -> Result<LinuxSeccomp, ProfileError> {
        let caps: Vec<String> = capabilities
            .iter()
            .map(|c| normalize_capability(c))
            .collect();
        let has_cap = |c: &String| caps.contains(c);
        let kernel_at_least = |min: KernelVersion| host.kernel.is_some_and(|k| k >= min);

        let mut architectures = self.architectures.clone();
        if let Some((arch, subs)) = self
            .arch_map
            .iter()
            .find(|(arch, _)| Some(*arch) == host.seccomp_arch)
        {
            architectures.push(*arch);
            architectures.extend(subs.iter().copied());
        }

        let mut syscalls = Vec::new();
        for rule in &self.rules {
            let ex = &rule.excludes;
            if ex.arches.contains(&host.arch)
                || ex.caps.iter().any(has_cap)
                || ex.min_kernel.is_some_and(kernel_at_least)
            {
                continue;
            }
            let inc = &rule.includes;
            if (!inc.arches.is_empty() && !inc.arches.contains(&host.arch))
                || !inc.caps.iter().all(has_cap)
                || inc.min_kernel.is_some_and(|min| !kernel_at_least(min))
            {
                continue;
            }
            let mut syscall = LinuxSyscall::default();
            syscall.set_names(rule.names.clone());
            syscall.set_action(rule.action);
            syscall.set_errno_ret(rule.errno_ret);
            if !rule.args.is_empty() {
                let mut args = Vec::with_capacity(rule.args.len());
                for a in &rule.args {
                    let mut arg = LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .op(a.op)
                        .value(a.value);
                    if let Some(two) = a.value_two {
                        arg = arg.value_two(two);
                    }
                    args.push(arg.build()?);
                }
                syscall.set_args(Some(args));
            }
            syscalls.push(syscall);
        }

        let mut spec = LinuxSeccomp::default();
        spec.set_default_action(self.default_action);
        spec.set_default_errno_ret(self.default_errno_ret);
        spec.set_architectures((!architectures.is_empty()).then_some(architectures));
        spec.set_flags((!self.flags.is_empty()).then(|| self.flags.clone()));
        spec.set_listener_path(self.listener_path.clone());
        spec.set_listener_metadata(self.listener_metadata.clone());
        spec.set_syscalls(Some(syscalls));
        Ok(spec)
    }
}

// Docker's JSON shapes. Unknown fields are ignored, as Docker does.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    #[serde(default)]
    default_action: Option<String>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<DockerArch>>,
    #[serde(default)]
    syscalls: Option<Vec<DockerSyscall>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArch {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<DockerArg>>,
    #[serde(default)]
    includes: Option<DockerFilter>,
    #[serde(default)]
    excludes: Option<DockerFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: u64,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Reads one of oci-spec's enums from its `SCREAMING_SNAKE_CASE` name.
fn parse_name<T: DeserializeOwned>(name: &str) -> Option<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}

fn action(name: &str) -> Result<LinuxSeccompAction, ProfileError> {
    parse_name(name).ok_or_else(|| ProfileError::UnknownAction(name.to_string()))
}

fn arch(name: &str) -> Result<Arch, ProfileError> {
    parse_name(name).ok_or_else(|| ProfileError::UnknownArchitecture(name.to_string()))
}

fn filter(f: Option<DockerFilter>) -> Result<Filter, ProfileError> {
    let Some(f) = f else {
        return Ok(Filter::default());
    };
    let min_kernel = match f.min_kernel.as_deref() {
        None | Some("") => None,
        Some(v) => Some(KernelVersion::parse_min(v)?),
    };
    Ok(Filter {
        caps: f
            .caps
            .unwrap_or_default()
            .iter()
            .map(|c| normalize_capability(c))
            .collect(),
        arches: f.arches.unwrap_or_default(),
        min_kernel,
    })
}

fn rule(s: DockerSyscall) -> Result<Rule, ProfileError> {
    let names = match (s.name.filter(|n| !n.is_empty()), s.names) {
        (Some(name), Some(names)) if !names.is_empty() => {
            return Err(ProfileError::NameAndNames(name));
        }
        (Some(name), _) => vec![name],
        (None, names) => names.unwrap_or_default(),
    };
    let mut args = Vec::new();
    for a in s.args.unwrap_or_default() {
        let index = usize::try_from(a.index)
            .ok()
            .filter(|&i| i <= 5)
            .ok_or_else(|| ProfileError::ArgIndex {
                name: names.join(","),
                index: a.index,
            })?;
        let op: LinuxSeccompOperator =
            parse_name(&a.op).ok_or_else(|| ProfileError::UnknownOperator(a.op.clone()))?;
        args.push(Arg {
            index,
            op,
            value: a.value,
            value_two: a.value_two,
        });
    }
    Ok(Rule {
        action: action(s.action.as_deref().unwrap_or(""))?,
        names,
        errno_ret: s.errno_ret,
        args,
        includes: filter(s.includes)?,
        excludes: filter(s.excludes)?,
    })
}

impl Profile {
    /// Reads a profile in Docker's JSON format.
    pub fn from_docker_json(json: &[u8]) -> Result<Profile, ProfileError> {
        let p: DockerProfile = serde_json::from_slice(json)?;
        let default_action = match p.default_action.as_deref() {
            None | Some("") => return Err(ProfileError::MissingDefaultAction),
            Some(name) => action(name)?,
        };
        let architectures = p.architectures.unwrap_or_default();
        let arch_map = p.arch_map.unwrap_or_default();
        if !architectures.is_empty() && !arch_map.is_empty() {
            return Err(ProfileError::ArchitecturesAndArchMap);
        }
        Ok(Profile {
            default_action,
            default_errno_ret: p.default_errno_ret,
            architectures: architectures
                .iter()
                .map(|a| arch(a))
                .collect::<Result<_, _>>()?,
            arch_map: arch_map
                .into_iter()
                .map(|m| {
                    let subs = m
                        .sub_architectures
                        .unwrap_or_default()
                        .iter()
                        .map(|a| arch(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((arch(&m.architecture)?, subs))
                })
                .collect::<Result<_, ProfileError>>()?,
            flags: p
                .flags
                .unwrap_or_default()
                .iter()
                .map(|f| parse_name(f).ok_or_else(|| ProfileError::UnknownFlag(f.clone())))
                .collect::<Result<_, _>>()?,
            listener_path: p.listener_path.filter(|p| !p.as_os_str().is_empty()),
            listener_metadata: p.listener_metadata.filter(|m| !m.is_empty()),
            rules: p
                .syscalls
                .unwrap_or_default()
                .into_iter()
                .map(rule)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Reads a seccomp profile in Docker's format (what `docker run
/// --security-opt seccomp=profile.json` takes) and resolves it for a
/// container with the capability set `capabilities` on this host: the
/// `archMap` entry of the host's architecture, and the syscall entries
/// whose `includes` / `excludes` conditions (capabilities, architecture,
/// `minKernel`) hold.
pub fn seccomp_from_docker_json(
    json: &[u8],
    capabilities: &[String],
) -> Result<LinuxSeccomp, ProfileError> {
    seccomp_from_docker_json_for(json, &HostInfo::current(), capabilities)
}

/// [`seccomp_from_docker_json`] for a given host.
pub fn seccomp_from_docker_json_for(
    json: &[u8],
    host: &HostInfo,
    capabilities: &[String],
) -> Result<LinuxSeccomp, ProfileError> {
    Profile::from_docker_json(json)?.resolve(host, capabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(arch: &str, kernel: Option<(u32, u32)>) -> HostInfo {
        HostInfo {
            arch: arch.to_string(),
            seccomp_arch: match arch {
                "amd64" => Some(Arch::ScmpArchX86_64),
                "arm64" => Some(Arch::ScmpArchAarch64),
                _ => None,
            },
            kernel: kernel.map(|(kernel, major)| KernelVersion { kernel, major }),
        }
    }

    fn names(spec: &LinuxSeccomp) -> Vec<String> {
        spec.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter().cloned())
            .collect()
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    const CONDITIONAL: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "ignored"},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["newthing"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.0"}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["both"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]
    }"#;

    #[test]
    fn conditions_follow_caps_arch_and_kernel() {
        let spec = seccomp_from_docker_json_for(
            CONDITIONAL.as_bytes(),
            &host("amd64", Some((5, 15))),
            &caps(&["CAP_CHOWN", "CAP_KILL"]),
        )
        .expect("valid profile");
        assert_eq!(spec.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(spec.default_errno_ret(), Some(1));
        assert_eq!(
            spec.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert_eq!(
            names(&spec),
            caps(&[
                "read",
                "write",
                "getpid",
                "ptrace",
                "newthing",
                "arch_prctl",
                "clone",
                "clone3"
            ])
        );
        let syscalls = spec.syscalls().as_deref().unwrap_or(&[]);
        let clone = &syscalls[5];
        let arg = clone.args().as_deref().expect("clone has args")[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!((arg.index(), arg.value()), (0, 0x7e02_0000));
        assert_eq!(syscalls[6].errno_ret(), Some(38));

        // With CAP_SYS_ADMIN (in any spelling): mount, no clone/clone3 rules.
        let spec = seccomp_from_docker_json_for(
            CONDITIONAL.as_bytes(),
            &host("amd64", Some((6, 1))),
            &caps(&["sys_admin"]),
        )
        .expect("valid profile");
        assert_eq!(
            names(&spec),
            caps(&["read", "write", "getpid", "ptrace", "arch_prctl", "mount"])
        );

        // Every listed cap is needed; an old kernel and another arch.
        let spec = seccomp_from_docker_json_for(
            CONDITIONAL.as_bytes(),
            &host("arm64", Some((4, 4))),
            &caps(&["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]),
        )
        .expect("valid profile");
        assert_eq!(
            names(&spec),
            caps(&["read", "write", "getpid", "newthing", "mount", "both"])
        );
        assert_eq!(
            spec.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );

        // An unknown kernel counts as old; an unmapped arch lists none.
        let spec = seccomp_from_docker_json_for(CONDITIONAL.as_bytes(), &host("mips64", None), &[])
            .expect("valid profile");
        assert!(!names(&spec).contains(&"ptrace".to_string()));
        assert!(names(&spec).contains(&"newthing".to_string()));
        assert_eq!(spec.architectures(), &None);
    }

    #[test]
    fn plain_fields_pass_through() {
        let spec = seccomp_from_docker_json_for(
            br#"{"defaultAction":"SCMP_ACT_ALLOW",
                 "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],
                 "flags":["SECCOMP_FILTER_FLAG_LOG"],
                 "listenerPath":"/run/agent.sock","listenerMetadata":"meta",
                 "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"},
                             {"names":["kill"],"action":"SCMP_ACT_ERRNO",
                              "args":[{"index":1,"value":9,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}"#,
            &host("amd64", Some((6, 1))),
            &[],
        )
        .expect("valid profile");
        assert_eq!(
            spec.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchAarch64][..])
        );
        assert_eq!(
            spec.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        assert_eq!(
            spec.listener_path().as_deref(),
            Some(std::path::Path::new("/run/agent.sock"))
        );
        assert_eq!(spec.listener_metadata().as_deref(), Some("meta"));
        let syscalls = spec.syscalls().as_deref().unwrap_or(&[]);
        assert_eq!(syscalls[0].action(), LinuxSeccompAction::ScmpActNotify);
        assert_eq!(syscalls[1].args().as_deref().map(<[_]>::len), Some(1));
        // The result is what the runtime compiles.
        crate::seccomp::compile(&spec).expect("compiles");
    }

    #[test]
    fn bad_profiles_are_typed_errors() {
        let h = host("amd64", Some((6, 1)));
        let err =
            |json: &str| seccomp_from_docker_json_for(json.as_bytes(), &h, &[]).expect_err(json);
        assert!(matches!(err("{not json"), ProfileError::Json(_)));
        assert!(matches!(err("42"), ProfileError::Json(_)));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":"read"}"#),
            ProfileError::Json(_)
        ));
        assert!(matches!(err("{}"), ProfileError::MissingDefaultAction));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#),
            ProfileError::UnknownAction(a) if a == "SCMP_ACT_MAYBE"
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"allow"}]}"#),
            ProfileError::UnknownAction(a) if a == "allow"
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"]}]}"#),
            ProfileError::UnknownAction(a) if a.is_empty()
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#),
            ProfileError::UnknownArchitecture(_)
        ));
        assert!(matches!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                   "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#
            ),
            ProfileError::ArchitecturesAndArchMap
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_FAST"]}"#),
            ProfileError::UnknownFlag(_)
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#),
            ProfileError::NameAndNames(n) if n == "read"
        ));
        assert!(matches!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO",
                   "args":[{"index":1,"value":9,"op":"SCMP_CMP_SOMETIMES"}]}]}"#
            ),
            ProfileError::UnknownOperator(_)
        ));
        assert!(matches!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO",
                   "args":[{"index":6,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#
            ),
            ProfileError::ArgIndex { index: 6, .. }
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO",
                   "includes":{"minKernel":"4"}}]}"#),
            ProfileError::KernelVersion(v) if v == "4"
        ));
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#)
                .to_string()
                .contains("SCMP_ACT_MAYBE")
        );
    }

    #[test]
    fn every_action_name_is_read() {
        for (name, expected) in [
            ("SCMP_ACT_KILL", LinuxSeccompAction::ScmpActKill),
            (
                "SCMP_ACT_KILL_THREAD",
                LinuxSeccompAction::ScmpActKillThread,
            ),
            (
                "SCMP_ACT_KILL_PROCESS",
                LinuxSeccompAction::ScmpActKillProcess,
            ),
            ("SCMP_ACT_TRAP", LinuxSeccompAction::ScmpActTrap),
            ("SCMP_ACT_ERRNO", LinuxSeccompAction::ScmpActErrno),
            ("SCMP_ACT_TRACE", LinuxSeccompAction::ScmpActTrace),
            ("SCMP_ACT_LOG", LinuxSeccompAction::ScmpActLog),
            ("SCMP_ACT_ALLOW", LinuxSeccompAction::ScmpActAllow),
            ("SCMP_ACT_NOTIFY", LinuxSeccompAction::ScmpActNotify),
        ] {
            assert_eq!(action(name).expect(name), expected);
        }
        assert_eq!(
            arch("SCMP_ARCH_MIPS64N32").expect("mips"),
            Arch::ScmpArchMips64n32
        );
        assert_eq!(
            arch("SCMP_ARCH_PPC64LE").expect("ppc"),
            Arch::ScmpArchPpc64le
        );
    }
}
