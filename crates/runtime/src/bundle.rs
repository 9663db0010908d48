//! An OCI bundle: a directory with `config.json` and a root filesystem.
//!
//! Loading a bundle reads and checks its configuration completely before
//! anything is created, so that a bad config leaves nothing behind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hafen_oci::runtime::{LinuxNamespaceType, Spec};
use hafen_oci::{SpecVersion, VersionError};

/// The name of the configuration file inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Largest `config.json` hafen reads; real ones are a few KiB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The configuration.
    pub spec: Spec,
    /// The root filesystem, absolute (a relative `root.path` is relative to
    /// the bundle).
    pub rootfs: PathBuf,
}

/// What is wrong with a bundle or its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The bundle directory does not exist.
    #[error("bundle {0}: no such directory")]
    BundleMissing(PathBuf),
    /// `config.json` is missing.
    #[error("{0}: no such file: a bundle needs a config.json (`hafen runtime spec` writes one)")]
    ConfigMissing(PathBuf),
    /// `config.json` cannot be read.
    #[error("cannot read {path}: {source}")]
    ConfigUnreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `config.json` is too large to be a configuration.
    #[error("{0} is larger than 16 MiB: this is not a container configuration")]
    ConfigTooLarge(PathBuf),
    /// `config.json` is not valid JSON or does not match the specification.
    #[error("{path}: invalid configuration at line {line} column {column}: {message}")]
    ConfigMalformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// `ociVersion` is missing, malformed or unsupported.
    #[error("{0}")]
    Version(#[from] VersionError),
    /// The configuration has no `root`.
    #[error("config.json has no \"root\": set root.path to the container's root filesystem")]
    RootMissing,
    /// The root filesystem directory does not exist.
    #[error("root filesystem {0} does not exist: create it or fix root.path in config.json")]
    RootfsMissing(PathBuf),
    /// The root filesystem is not a directory.
    #[error("root filesystem {0} is not a directory")]
    RootfsNotDirectory(PathBuf),
    /// The configuration has no `process`.
    #[error("config.json has no \"process\": there is nothing to start")]
    ProcessMissing,
    /// `process.args` is empty.
    #[error("process.args is empty: give the program to run as its first element")]
    ArgsEmpty,
    /// `process.cwd` is not absolute.
    #[error("process.cwd {0:?} is not an absolute path")]
    CwdNotAbsolute(PathBuf),
    /// A namespace type appears twice.
    #[error("linux.namespaces lists the {0} namespace twice")]
    NamespaceDuplicate(String),
    /// A user namespace is created without mappings.
    #[error(
        "a new user namespace needs linux.uidMappings and linux.gidMappings: without them every id is unmapped"
    )]
    UserNamespaceWithoutMappings,
    /// Mappings are given without a new user namespace.
    #[error("linux.uidMappings/gidMappings are set but no new user namespace is requested")]
    MappingsWithoutUserNamespace,
    /// `hostname` needs a UTS namespace.
    #[error(
        "{0} is set but the container shares the host's UTS namespace: add a \"uts\" namespace"
    )]
    NeedsUtsNamespace(&'static str),
    /// `linux.timeOffsets` needs a new time namespace.
    #[error("linux.timeOffsets is set but no new \"time\" namespace is requested")]
    TimeOffsetsWithoutTimeNamespace,
    /// A sysctl would change the host.
    #[error("sysctl {name:?} cannot be set: {reason}")]
    Sysctl {
        /// The sysctl key.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An rlimit appears twice.
    #[error("process.rlimits lists {0} twice")]
    RlimitDuplicate(String),
    /// An rlimit's soft value is above its hard value.
    #[error("process.rlimits: {0} has a soft limit above its hard limit")]
    RlimitSoftAboveHard(String),
    /// A hook's path is not absolute.
    #[error("hook path {0:?} is not absolute")]
    HookPathNotAbsolute(PathBuf),
    /// A device entry is wrong.
    #[error("linux.devices: {0}")]
    Device(String),
    /// A mount entry is wrong.
    #[error("mounts: {0}")]
    Mount(String),
}

impl Bundle {
    /// Loads `<dir>/config.json`, resolves the root filesystem and validates the
    /// whole configuration.
    pub fn load(dir: &Path) -> Result<Self, SpecError> {
        let dir = std::path::absolute(dir).map_err(|_| SpecError::BundleMissing(dir.into()))?;
        if !dir.is_dir() {
            return Err(SpecError::BundleMissing(dir));
        }
        let spec = load_config(&dir.join(CONFIG_FILE))?;
        let root = spec.root().as_ref().ok_or(SpecError::RootMissing)?;
        let rootfs = dir.join(root.path());
        match std::fs::metadata(&rootfs) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(SpecError::RootfsNotDirectory(rootfs)),
            Err(_) => return Err(SpecError::RootfsMissing(rootfs)),
        }
        validate(&spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Reads and parses a `config.json` (without validating it further than its
/// `ociVersion`).
pub fn load_config(path: &Path) -> Result<Spec, SpecError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecError::ConfigMissing(path.into()));
        }
        Err(source) => {
            return Err(SpecError::ConfigUnreadable {
                path: path.into(),
                source,
            });
        }
    };
    let len = file
        .metadata()
        .map_err(|source| SpecError::ConfigUnreadable {
            path: path.into(),
            source,
        })?
        .len();
    if len > MAX_CONFIG_BYTES {
        return Err(SpecError::ConfigTooLarge(path.into()));
    }
    let text = std::fs::read(path).map_err(|source| SpecError::ConfigUnreadable {
        path: path.into(),
        source,
    })?;
    parse_config(path, &text)
}

/// Parses configuration text; `path` only names it in errors.
pub fn parse_config(path: &Path, text: &[u8]) -> Result<Spec, SpecError> {
    let spec: Spec = serde_json::from_slice(text).map_err(|e| SpecError::ConfigMalformed {
        path: path.into(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    SpecVersion::check_runtime(spec.version())?;
    Ok(spec)
}

/// serde_json appends " at line L column C" to its messages; we report the
/// position ourselves.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Checks the rules of the specification (and hafen's own safety rules) that
/// serde cannot express.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    // `process` is optional until `start` (runtime-spec, config.md).
    if let Some(process) = spec.process() {
        validate_process(process)?;
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for ns in namespaces.into_iter().flatten() {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::NamespaceDuplicate(ns.typ().to_string()));
        }
    }
    let has = |t: LinuxNamespaceType| namespaces.into_iter().flatten().any(|n| n.typ() == t);
    let creates = |t: LinuxNamespaceType| {
        namespaces
            .into_iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    if let Some(linux) = linux {
        let mapped = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if creates(LinuxNamespaceType::User) {
            let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            if !uid || !gid {
                return Err(SpecError::UserNamespaceWithoutMappings);
            }
        } else if mapped && !has(LinuxNamespaceType::User) {
            return Err(SpecError::MappingsWithoutUserNamespace);
        }
        if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty())
            && !creates(LinuxNamespaceType::Time)
        {
            return Err(SpecError::TimeOffsetsWithoutTimeNamespace);
        }
        for name in linux.sysctl().as_ref().into_iter().flat_map(|s| s.keys()) {
            validate_sysctl(name, &has)?;
        }
        for device in linux.devices().as_ref().into_iter().flatten() {
            if !device.path().is_absolute() {
                return Err(SpecError::Device(format!(
                    "path {:?} is not absolute",
                    device.path()
                )));
            }
            if !device.path().starts_with("/dev") {
                return Err(SpecError::Device(format!(
                    "path {:?} is outside /dev",
                    device.path()
                )));
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(SpecError::NeedsUtsNamespace("hostname"));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(SpecError::NeedsUtsNamespace("domainname"));
    }
    for mount in spec.mounts().as_ref().into_iter().flatten() {
        let dest = mount.destination();
        if dest.as_os_str().is_empty() {
            return Err(SpecError::Mount("a mount has an empty destination".into()));
        }
        if dest
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(SpecError::Mount(format!(
                "destination {dest:?} contains \"..\": mounts stay inside the container"
            )));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let lists = [
            hooks.prestart(),
            hooks.create_runtime(),
            hooks.create_container(),
            hooks.start_container(),
            hooks.poststart(),
            hooks.poststop(),
        ];
        for hook in lists.into_iter().flatten().flatten() {
            if !hook.path().is_absolute() {
                return Err(SpecError::HookPathNotAbsolute(hook.path().clone()));
            }
        }
    }
    Ok(())
}

/// Checks a `process` object (also used for `exec --process`).
pub fn validate_process(process: &hafen_oci::runtime::Process) -> Result<(), SpecError> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::ArgsEmpty);
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::CwdNotAbsolute(process.cwd().clone()));
    }
    let mut seen = Vec::new();
    for rlimit in process.rlimits().as_ref().into_iter().flatten() {
        let name = crate::rlimits::name(rlimit.typ());
        if seen.contains(&rlimit.typ()) {
            return Err(SpecError::RlimitDuplicate(name));
        }
        seen.push(rlimit.typ());
        if rlimit.soft() > rlimit.hard() {
            return Err(SpecError::RlimitSoftAboveHard(name));
        }
    }
    Ok(())
}

/// Only sysctls that belong to a namespace the container has its own copy of
/// may be set; anything else would change the host.
fn validate_sysctl(name: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    let err = |reason| {
        Err(SpecError::Sysctl {
            name: name.to_string(),
            reason,
        })
    };
    if name.contains("..") || name.starts_with('/') || name.starts_with('.') {
        return err("it is not a sysctl name");
    }
    let ipc = matches!(
        name,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || name.starts_with("fs.mqueue.");
    if ipc {
        return if has(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            err("it belongs to the IPC namespace and the container shares the host's")
        };
    }
    if name.starts_with("net.") {
        return if has(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            err("it belongs to the network namespace and the container shares the host's")
        };
    }
    if matches!(name, "kernel.hostname" | "kernel.domainname") {
        return if has(LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            err("it belongs to the UTS namespace and the container shares the host's")
        };
    }
    err("it is not namespaced, so setting it would change the host")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Spec, SpecError> {
        parse_config(Path::new("config.json"), json.as_bytes())
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    #[test]
    fn minimal_config_is_valid() {
        validate(&parse(MINIMAL).unwrap()).unwrap();
    }

    #[test]
    fn malformed_json_names_the_position() {
        let err = parse("{\n \"ociVersion\": \"1.0.2\",\n \"root\": 5 }").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(matches!(err, SpecError::ConfigMalformed { line: 3, .. }));
    }

    #[test]
    fn unknown_namespace_is_refused() {
        let err = parse(&MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"bogus"}"#)).unwrap_err();
        assert!(matches!(err, SpecError::ConfigMalformed { .. }), "{err}");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn unsupported_version_is_refused() {
        let err = parse(&MINIMAL.replace("1.0.2", "2.0.0")).unwrap_err();
        assert!(matches!(err, SpecError::Version(_)), "{err}");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let spec = parse(&MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"mount"}"#)).unwrap();
        assert!(matches!(
            validate(&spec),
            Err(SpecError::NamespaceDuplicate(_))
        ));
    }

    #[test]
    fn a_missing_process_is_fine_until_start() {
        let spec = parse(&MINIMAL.replace(
            r#""process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},"#,
            "",
        ))
        .unwrap();
        assert!(spec.process().is_none());
        validate(&spec).unwrap();
    }

    #[test]
    fn host_sysctls_are_refused() {
        let with = |sysctl: &str, ns: &str| {
            let json = MINIMAL.replace(
                r#""namespaces":[{"type":"mount"},{"type":"pid"}]"#,
                &format!(r#""namespaces":[{{"type":"mount"}}{ns}],"sysctl":{{"{sysctl}":"1"}}"#),
            );
            validate(&parse(&json).unwrap())
        };
        assert!(with("net.ipv4.ip_forward", r#",{"type":"network"}"#).is_ok());
        assert!(matches!(
            with("net.ipv4.ip_forward", ""),
            Err(SpecError::Sysctl { .. })
        ));
        assert!(with("kernel.shmmax", r#",{"type":"ipc"}"#).is_ok());
        assert!(matches!(
            with("kernel.shmmax", ""),
            Err(SpecError::Sysctl { .. })
        ));
        assert!(matches!(
            with("vm.swappiness", r#",{"type":"ipc"}"#),
            Err(SpecError::Sysctl { .. })
        ));
        assert!(matches!(
            with("kernel/../x", r#",{"type":"ipc"}"#),
            Err(SpecError::Sysctl { .. })
        ));
    }

    #[test]
    fn process_rules() {
        let spec = parse(&MINIMAL.replace(r#""args":["true"]"#, r#""args":[]"#)).unwrap();
        assert!(matches!(validate(&spec), Err(SpecError::ArgsEmpty)));
        let spec = parse(&MINIMAL.replace(r#""cwd":"/""#, r#""cwd":"tmp""#)).unwrap();
        assert!(matches!(validate(&spec), Err(SpecError::CwdNotAbsolute(_))));
        let spec = parse(&MINIMAL.replace(
            r#""cwd":"/""#,
            r#""cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":1,"hard":1},{"type":"RLIMIT_NOFILE","soft":2,"hard":2}]"#,
        ))
        .unwrap();
        assert!(matches!(
            validate(&spec),
            Err(SpecError::RlimitDuplicate(_))
        ));
        let spec = parse(&MINIMAL.replace(
            r#""cwd":"/""#,
            r#""cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":3,"hard":2}]"#,
        ))
        .unwrap();
        assert!(matches!(
            validate(&spec),
            Err(SpecError::RlimitSoftAboveHard(_))
        ));
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let json = MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"user"}"#);
        assert!(matches!(
            validate(&parse(&json).unwrap()),
            Err(SpecError::UserNamespaceWithoutMappings)
        ));
    }

    /// Every prefix of a real configuration, and byte-level corruptions of
    /// it, give an error or a valid spec, never a panic.
    #[test]
    fn damaged_configs_never_panic() {
        let text = crate::spec_default::to_text(&crate::spec_default::default_spec());
        let bytes = text.as_bytes();
        for end in 0..bytes.len() {
            if let Ok(spec) = parse_config(Path::new("c"), &bytes[..end]) {
                let _ = validate(&spec);
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut damaged = bytes.to_vec();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % damaged.len();
                damaged[at] = (seed >> 32) as u8;
            }
            if let Ok(spec) = parse_config(Path::new("c"), &damaged) {
                let _ = validate(&spec);
                if let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                    let _ = crate::seccomp::compile(seccomp);
                }
            }
        }
    }

    #[test]
    fn mount_destinations_stay_inside() {
        let json = MINIMAL.replace(
            r#""linux""#,
            r#""mounts":[{"destination":"/a/../../etc","type":"tmpfs","source":"tmpfs"}],"linux""#,
        );
        assert!(matches!(
            validate(&parse(&json).unwrap()),
            Err(SpecError::Mount(_))
        ));
    }
}
