//! The OCI configuration of a container, as dockerd would make it: the
//! image's and the user's settings, Docker's default mounts, masked paths,
//! capabilities and seccomp profile, resources as cgroup limits.

use std::path::{Path, PathBuf};

use hafen_api::models::{ContainerConfig, HostConfig};
use serde_json::{Value, json};

use super::ContainerError;

/// The mounts every container gets (moby's `oci.DefaultSpec`).
fn default_mounts(shm_size: i64) -> Vec<Value> {
    let shm = if shm_size > 0 {
        shm_size
    } else {
        64 * 1024 * 1024
    };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ]
}

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The default `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A mount resolved to the host: what goes into the OCI config.
#[derive(Debug, Clone)]
pub struct HostMount {
    /// In the container.
    pub destination: String,
    /// `bind`, `tmpfs`.
    pub kind: String,
    /// A host path (bind) or `tmpfs`.
    pub source: String,
    /// Mount options.
    pub options: Vec<String>,
}

/// What the spec is made from.
#[derive(Debug)]
pub struct SpecInput<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// The config (image defaults merged in).
    pub config: &'a ContainerConfig,
    /// The host config.
    pub host: &'a HostConfig,
    /// The mounted root filesystem.
    pub rootfs: &'a Path,
    /// `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` on the host.
    pub etc_files: [PathBuf; 3],
    /// Volumes, binds and tmpfs mounts.
    pub mounts: &'a [HostMount],
    /// The init binary for `--init`.
    pub init: Option<&'a Path>,
    /// The program and its arguments.
    pub args: &'a [String],
    /// The network namespace: `None` the host's, `Some("")` a new one,
    /// `Some(path)` that one (`--network container:…`).
    pub netns: Option<String>,
}

/// Where `--init`'s binary appears in the container.
pub const INIT_PATH: &str = "/sbin/hafen-init";

/// Splits `user[:group]` and resolves names through the container's
/// `/etc/passwd` and `/etc/group`: (uid, gid, additional gids).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), ContainerError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split(':').map(str::to_string).collect())
            .collect()
    };
    let users = entries(&passwd);
    let groups = entries(&group);
    let (uid, name, mut gid) = if u.is_empty() {
        (0, "root".to_string(), 0)
    } else if let Ok(n) = u.parse::<u32>() {
        let found = users
            .iter()
            .find(|e| e.get(2).map(String::as_str) == Some(u));
        (
            n,
            found.and_then(|e| e.first().cloned()).unwrap_or_default(),
            found
                .and_then(|e| e.get(3))
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
        )
    } else {
        let e = users
            .iter()
            .find(|e| e.first().map(String::as_str) == Some(u))
            .ok_or_else(|| {
                ContainerError::Invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
        let uid = e.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        let gid = e.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
        (uid, u.to_string(), gid)
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(g))
                .and_then(|e| e.get(2))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ContainerError::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let extra = if name.is_empty() {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|e| {
                e.get(3)
                    .is_some_and(|m| m.split(',').any(|m| m == name.as_str()))
            })
            .filter_map(|e| e.get(2).and_then(|v| v.parse::<u32>().ok()))
            .filter(|g| *g != gid)
            .collect()
    };
    Ok((uid, gid, extra))
}

/// The environment: `PATH` if missing, `HOSTNAME`, `TERM` with a terminal,
/// then the config's.
pub fn environment(config: &ContainerConfig) -> Vec<String> {
    let mut env = Vec::new();
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={}", config.hostname));
    if config.tty {
        env.push("TERM=xterm".into());
    }
    env.extend(config.env.iter().cloned());
    env
}

fn cgroup_v2() -> bool {
    hafen_runtime::cgroups::Hierarchies::discover()
        .is_ok_and(|h| h.layout() == hafen_runtime::cgroups::Layout::V2)
}

/// Whether the host can limit swap (cgroup v1 needs swap accounting).
fn swap_limits() -> bool {
    cgroup_v2() || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

/// The capabilities of the container's process.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, ContainerError> {
    use hafen_runtime::profiles;
    if host.privileged {
        return Ok(profiles::own_capabilities());
    }
    profiles::apply_cap_changes(
        profiles::default_capabilities(),
        host.cap_add.as_deref().unwrap_or(&[]),
        host.cap_drop.as_deref().unwrap_or(&[]),
    )
    .map_err(|e| ContainerError::Invalid(e.to_string()))
}

/// Builds `config.json`. Returns the spec and warnings.
pub fn build(input: &SpecInput<'_>) -> Result<(Value, Vec<String>), ContainerError> {
    let c = input.config;
    let h = input.host;
    let mut warnings = Vec::new();
    let (uid, gid, mut extra_gids) = resolve_user(input.rootfs, &c.user)?;
    for g in h.group_add.iter().flatten() {
        let id = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => resolve_user(input.rootfs, &format!("0:{g}"))?.1,
        };
        extra_gids.push(id);
    }
    let caps = capabilities(h)?;
    let mut no_new_privs = false;
    let mut seccomp: Option<Value> = None;
    let mut seccomp_default = !h.privileged;
    for opt in h.security_opt.iter().flatten() {
        let (k, v) = opt
            .split_once(['=', ':'])
            .map_or((opt.as_str(), ""), |(k, v)| (k, v));
        match k {
            "no-new-privileges" => no_new_privs = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => seccomp_default = false,
            "seccomp" => {
                let profile =
                    hafen_runtime::profiles::seccomp_from_docker_json(v.as_bytes(), &caps)
                        .map_err(|e| {
                            ContainerError::Invalid(format!("opening seccomp profile failed: {e}"))
                        })?;
                seccomp = Some(
                    serde_json::to_value(profile)
                        .map_err(|e| ContainerError::Invalid(e.to_string()))?,
                );
                seccomp_default = false;
            }
            "apparmor" | "label" => {}
            _ => {
                return Err(ContainerError::Invalid(format!(
                    "invalid --security-opt: {opt:?}"
                )));
            }
        }
    }
    if seccomp_default {
        let profile = hafen_runtime::profiles::docker_default_seccomp(&caps);
        seccomp = Some(
            serde_json::to_value(profile).map_err(|e| ContainerError::Invalid(e.to_string()))?,
        );
    }

    let mut mounts = default_mounts(h.shm_size);
    if h.privileged {
        // Privileged: /sys read-write, cgroups read-write.
        for m in &mut mounts {
            let dest = m
                .get("destination")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if dest == "/sys" || dest == "/sys/fs/cgroup" {
                if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                    opts.retain(|o| o != "ro");
                }
            }
        }
    }
    let [hostname, hosts, resolv] = &input.etc_files;
    for (dest, src) in [
        ("/etc/resolv.conf", resolv),
        ("/etc/hostname", hostname),
        ("/etc/hosts", hosts),
    ] {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src,
            "options": ["rbind", "rprivate"]}));
    }
    for m in input.mounts {
        // A user mount over a default one replaces it.
        mounts.retain(|d| d.get("destination").and_then(Value::as_str) != Some(&m.destination));
        mounts.push(json!({"destination": m.destination, "type": m.kind,
            "source": m.source, "options": m.options}));
    }
    if let Some(init) = input.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind",
            "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }

    let mut resources = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        if swap_limits() {
            let swap = match h.memory_swap {
                0 => 2 * h.memory,
                s => s,
            };
            memory.insert("swap".into(), json!(swap));
        } else if h.memory_swap != 0 {
            warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        }
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if let Some(s) = h.memory_swappiness.filter(|s| *s >= 0) {
        memory.insert("swappiness".into(), json!(s));
    }
    if h.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if h.nano_cpus > 0 {
        let period = 100_000i64;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(h.nano_cpus * period / 1_000_000_000));
    } else {
        if h.cpu_period > 0 {
            cpu.insert("period".into(), json!(h.cpu_period));
        }
        if h.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(h.cpu_quota));
        }
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !h.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(h.cpuset_mems));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        resources.insert("pids".into(), json!({"limit": p}));
    }
    let mut device_rules = vec![json!({"allow": false, "access": "rwm"})];
    let mut devices = Vec::new();
    if h.privileged {
        device_rules = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        // moby's defaults: mknod of any device, the standard ones, ptys.
        for (kind, major, minor, access) in [
            ("c", None, None, "m"),
            ("b", None, None, "m"),
            ("c", Some(1), Some(3), "rwm"),
            ("c", Some(1), Some(8), "rwm"),
            ("c", Some(1), Some(7), "rwm"),
            ("c", Some(5), Some(0), "rwm"),
            ("c", Some(1), Some(5), "rwm"),
            ("c", Some(1), Some(9), "rwm"),
            ("c", Some(5), Some(1), "rwm"),
            ("c", Some(136), None, "rwm"),
            ("c", Some(5), Some(2), "rwm"),
            ("c", Some(10), Some(200), "rwm"),
        ] {
            device_rules.push(json!({"allow": true, "type": kind, "major": major,
                "minor": minor, "access": access}));
        }
    }
    if h.privileged {
        // As dockerd: the host's devices, all of them allowed.
        for entry in std::fs::read_dir("/dev").into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if matches!(name.to_str(), Some("console" | "ptmx" | "tty")) {
                continue;
            }
            let Some(p) = path.to_str() else { continue };
            if let Ok((dev, _)) = device(p, p, "rwm") {
                devices.push(dev);
            }
        }
    }
    for d in h.devices.iter().flatten() {
        let (dev, rule) = device(&d.path_on_host, &d.path_in_container, &d.cgroup_permissions)?;
        devices.push(dev);
        device_rules.push(rule);
    }
    resources.insert("devices".into(), Value::Array(device_rules));

    let mut rlimits = Vec::new();
    for u in h.ulimits.iter().flatten() {
        rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_uppercase()),
            "soft": u.soft, "hard": u.hard}));
    }

    let mut namespaces = vec![
        json!({"type": "mount"}),
        json!({"type": "network"}),
        json!({"type": "uts"}),
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
    ];
    match input.netns.as_deref() {
        None => namespaces.retain(|n| n.get("type").and_then(Value::as_str) != Some("network")),
        Some("") => {}
        Some(path) => {
            for n in namespaces.iter_mut() {
                if n.get("type").and_then(Value::as_str) == Some("network") {
                    *n = json!({"type": "network", "path": path});
                }
            }
        }
    }
    if cgroup_v2() && h.cgroupns_mode != "host" {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let host_ns = |kind: &str, mode: &str, namespaces: &mut Vec<Value>| {
        if mode == "host" {
            namespaces.retain(|n| n.get("type").and_then(Value::as_str) != Some(kind));
        }
    };
    host_ns("pid", &h.pid_mode, &mut namespaces);
    host_ns("ipc", &h.ipc_mode, &mut namespaces);
    host_ns("uts", &h.uts_mode, &mut namespaces);

    let cwd = if c.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.working_dir.clone()
    };
    let mut args: Vec<String> = input.args.to_vec();
    if input.init.is_some() {
        let mut with_init = vec![INIT_PATH.to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": extra_gids},
        "args": args,
        "env": environment(c),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": h.oom_score_adj,
    });
    if !rlimits.is_empty() {
        process["rlimits"] = Value::Array(rlimits);
    }
    if let Some(size) = h.extra.get("ConsoleSize").and_then(Value::as_array) {
        if let (Some(rows), Some(cols)) = (
            size.first().and_then(Value::as_u64),
            size.get(1).and_then(Value::as_u64),
        ) {
            if rows > 0 && cols > 0 {
                process["consoleSize"] = json!({"height": rows, "width": cols});
            }
        }
    }
    let mut linux = json!({
        "resources": Value::Object(resources),
        "cgroupsPath": format!("/hafen/{}", input.id),
        "namespaces": namespaces,
        "devices": devices,
    });
    if !h.privileged {
        linux["maskedPaths"] = json!(
            h.masked_paths
                .clone()
                .unwrap_or_else(|| MASKED.iter().map(|s| s.to_string()).collect())
        );
        linux["readonlyPaths"] = json!(
            h.readonly_paths
                .clone()
                .unwrap_or_else(|| READONLY.iter().map(|s| s.to_string()).collect())
        );
    }
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    if let Some(sysctls) = &h.sysctls {
        linux["sysctl"] = json!(sysctls);
    }
    let spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": input.rootfs, "readonly": h.readonly_rootfs},
        "hostname": c.hostname,
        "domainname": c.domainname,
        "mounts": mounts,
        "linux": linux,
    });
    Ok((spec, warnings))
}

/// A `--device`: the OCI device and its cgroup rule.
fn device(host: &str, inside: &str, perms: &str) -> Result<(Value, Value), ContainerError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(host).map_err(|e| {
        ContainerError::Invalid(format!(
            "error gathering device information while adding custom device {host:?}: {e}"
        ))
    })?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(ContainerError::Invalid(format!(
            "error gathering device information while adding custom device {host:?}: not a device node"
        )));
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let inside = if inside.is_empty() { host } else { inside };
    let perms = if perms.is_empty() { "rwm" } else { perms };
    Ok((
        json!({"path": inside, "type": kind, "major": major, "minor": minor,
               "fileMode": meta.mode() & 0o777, "uid": meta.uid(), "gid": meta.gid()}),
        json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
    ))
}

/// The cgroup limits of a host config, for `update` of a running
/// container.
pub fn resources_of(h: &HostConfig) -> hafen_oci::runtime::LinuxResources {
    let mut v = json!({});
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        if swap_limits() && h.memory_swap != 0 {
            memory.insert("swap".into(), json!(h.memory_swap));
        }
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !memory.is_empty() {
        v["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if h.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(h.nano_cpus * 100_000 / 1_000_000_000));
    } else {
        if h.cpu_period > 0 {
            cpu.insert("period".into(), json!(h.cpu_period));
        }
        if h.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(h.cpu_quota));
        }
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !h.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(h.cpuset_mems));
    }
    if !cpu.is_empty() {
        v["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        v["pids"] = json!({"limit": p});
    }
    serde_json::from_value(v).unwrap_or_default()
}
