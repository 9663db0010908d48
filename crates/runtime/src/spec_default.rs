//! `spec`: the default `config.json` a new bundle starts from (runc's,
//! with hafen's hostname), and its rootless variant.

use serde_json::{Value, json};

/// The default configuration: `sh` with a terminal, a read-only root, the
/// usual mounts, new pid/network/ipc/uts/mount namespaces (and a cgroup
/// namespace on cgroup v2 hosts), every device denied except the standard
/// ones. `RLIMIT_NOFILE` is 1024, below any caller's hard limit.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if crate::cgroups::Hierarchies::discover()
        .is_ok_and(|h| h.layout() == crate::cgroups::Layout::V2)
    {
        namespaces.push(json!({"type": "cgroup"}));
    }
    json!({
        "ociVersion": hafen_oci::version::RUNTIME_SPEC_VERSION.to_string(),
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hafen",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The rootless variant for the calling user: a user namespace mapping root
/// to the caller, no network namespace, `/sys` bound from the host, no
/// `uid=`/`gid=` mount options, no resources.
pub fn rootless_spec(uid: u32, gid: u32) -> Value {
    let mut spec = default_spec();
    let linux = &mut spec["linux"];
    if let Some(list) = linux["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != "network" && n["type"] != "user");
        list.push(json!({"type": "user"}));
    }
    let namespaces = linux["namespaces"].take();
    let masked = linux["maskedPaths"].take();
    let readonly = linux["readonlyPaths"].take();
    *linux = json!({
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
        "namespaces": namespaces,
        "maskedPaths": masked,
        "readonlyPaths": readonly
    });
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(options) = m["options"].as_array_mut() {
                options.retain(|o| {
                    let o = o.as_str().unwrap_or("");
                    !o.starts_with("uid=") && !o.starts_with("gid=")
                });
            }
        }
    }
    spec
}

/// Formats a configuration as runc does: tab-indented, no trailing newline.
pub fn to_text(spec: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    let _ = serde::Serialize::serialize(spec, &mut ser);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_a_valid_configuration() {
        let text = to_text(&default_spec());
        assert!(text.starts_with("{\n\t\"ociVersion\": \"1.3.0\""));
        let spec =
            crate::bundle::parse_config(std::path::Path::new("config.json"), text.as_bytes())
                .unwrap();
        crate::bundle::validate(&spec).unwrap();
    }

    #[test]
    fn rootless_spec_maps_the_caller() {
        let spec = rootless_spec(1000, 1000);
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 1000);
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "user"));
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(spec["linux"].get("resources").is_none());
        let text = to_text(&spec);
        assert!(!text.contains("gid=5"));
        let spec =
            crate::bundle::parse_config(std::path::Path::new("config.json"), text.as_bytes())
                .unwrap();
        crate::bundle::validate(&spec).unwrap();
    }
}
