//! `features`: what this runtime implements, in the runtime-spec's
//! `features.md` format.

use serde_json::{Value, json};

use crate::hooks::HookKind;
use crate::process::caps;

/// The features document.
pub fn document() -> Value {
    let hooks: Vec<&str> = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ]
    .iter()
    .map(|h| h.name())
    .collect();
    let capabilities: Vec<String> = caps::NAMES.iter().map(|n| n.to_string()).collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": hafen_oci::version::RUNTIME_SPEC_VERSION.to_string(),
        "hooks": hooks,
        "mountOptions": crate::init::known_mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } },
            "netDevices": { "enabled": false }
        },
        "annotations": {
            "org.hafen.runtime.version": env!("CARGO_PKG_VERSION"),
            "org.hafen.runtime.seccomp": "built-in BPF compiler (no libseccomp)"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_shape() {
        let d = document();
        assert_eq!(d["ociVersionMin"], "1.0.0");
        assert_eq!(d["ociVersionMax"], "1.3.0");
        assert_eq!(d["hooks"].as_array().unwrap().len(), 6);
        assert_eq!(d["linux"]["capabilities"][0], "CAP_CHOWN");
        assert_eq!(d["linux"]["capabilities"].as_array().unwrap().len(), 41);
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "ociVersionMin", "insertion order is kept");
    }
}
