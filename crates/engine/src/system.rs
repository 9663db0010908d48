//! What `/version` and `/info` report about the engine and its host.

use std::collections::BTreeMap;

use hafen_api::models::{Component, Version};
use hafen_api::version;
use serde_json::{Value, json};

use crate::{Engine, VERSION};

/// `uname`: (release, machine).
fn uname() -> (String, String) {
    let u = rustix::system::uname();
    (
        u.release().to_string_lossy().into_owned(),
        u.machine().to_string_lossy().into_owned(),
    )
}

/// Go's name for the CPU architecture.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A field of `/etc/os-release`.
fn os_release(key: &str) -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default()
}

/// The cgroup version of the host: 2 if `/sys/fs/cgroup` is the unified
/// hierarchy, else 1.
fn cgroup_version() -> &'static str {
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type == 0x6367_7270 => "2",
        _ => "1",
    }
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

impl Engine {
    /// `GET /version`.
    pub fn version_info(&self) -> Version {
        let (kernel, _) = uname();
        let mut details = BTreeMap::new();
        details.insert("ApiVersion".to_string(), version::MAX.to_string());
        details.insert("Arch".to_string(), goarch().to_string());
        details.insert("BuildTime".to_string(), String::new());
        details.insert("Experimental".to_string(), "false".to_string());
        details.insert("GitCommit".to_string(), String::new());
        details.insert("GoVersion".to_string(), "rust".to_string());
        details.insert("KernelVersion".to_string(), kernel.clone());
        details.insert("MinAPIVersion".to_string(), version::MIN.to_string());
        details.insert("Os".to_string(), "linux".to_string());
        let mut platform = BTreeMap::new();
        platform.insert("Name".to_string(), "hafen".to_string());
        Version {
            platform,
            components: vec![
                Component {
                    name: "Engine".into(),
                    version: VERSION.into(),
                    details: Some(details),
                },
                Component {
                    name: "hafen-runc".into(),
                    version: VERSION.into(),
                    details: Some(BTreeMap::from([("GitCommit".to_string(), String::new())])),
                },
            ],
            version: VERSION.into(),
            api_version: version::MAX.to_string(),
            min_api_version: version::MIN.to_string(),
            git_commit: String::new(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch: goarch().into(),
            kernel_version: kernel,
            experimental: false,
            build_time: String::new(),
        }
    }

    /// `GET /info`, in dockerd's field order.
    pub fn system_info(&self) -> Value {
        let (kernel, machine) = uname();
        let images = self
            .images
            .list(&hafen_image::ListFilters::default(), true)
            .map(|l| l.len())
            .unwrap_or(0);
        let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let runtime = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("hafen-runc")))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "hafen-runc".into());
        let mut warnings = Vec::new();
        if !forwarding {
            warnings.push("WARNING: IPv4 forwarding is disabled".to_string());
        }
        json!({
            "ID": self.id,
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": images,
            "Driver": self.images.snapshotter().name(),
            "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": null,
                "Log": ["json-file"],
            },
            "MemoryLimit": true,
            "SwapLimit": std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
                || cgroup_version() == "2",
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": forwarding,
            "Debug": self.config.debug,
            "NFd": count_dir("/proc/self/fd"),
            "OomKillDisable": cgroup_version() == "1",
            "NGoroutines": count_dir("/proc/self/task"),
            "SystemTime": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": self.events.listeners(),
            "KernelVersion": kernel,
            "OperatingSystem": os_release("PRETTY_NAME"),
            "OSVersion": os_release("VERSION_ID"),
            "OSType": "linux",
            "Architecture": machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "IndexConfigs": {
                    "docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}
                },
                "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
                "Mirrors": null,
            },
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": self.config.root.display().to_string(),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": VERSION,
            "Runtimes": {"hafen": {"path": runtime}},
            "DefaultRuntime": "hafen",
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": false,
                "Error": "",
                "RemoteManagers": null,
            },
            "LiveRestoreEnabled": false,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": VERSION},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "CDISpecDirs": [],
            "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
        })
    }
}
