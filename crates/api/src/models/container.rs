//! Containers and execs: `/containers/…`, `/exec/…`.
//!
//! Fields hafen does not act on are kept as they came (`extra`), so that
//! `inspect` gives back what a client sent, as dockerd does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A list of strings that old clients may send as one string
/// (`"Cmd": "echo hi"`, Docker's `strslice`).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// `null` read as the default.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A healthcheck (image config, container config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", …]`, `["CMD-SHELL", cmd]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Nanoseconds (0: inherit).
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Nanoseconds (0: inherit).
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Nanoseconds (0: inherit).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Nanoseconds (0: inherit).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures in a row that make it unhealthy (0: inherit).
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The container's configuration (`Config` in create and inspect).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    /// The host name.
    pub hostname: String,
    /// The domain name.
    pub domainname: String,
    /// `user[:group]`.
    pub user: String,
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// `"80/tcp": {}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// A terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin when the first attached client leaves.
    pub stdin_once: bool,
    /// `KEY=value`.
    #[serde(deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// The command.
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// The healthcheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// The image as the user named it.
    pub image: String,
    /// `"/data": {}`.
    pub volumes: Option<BTreeMap<String, Value>>,
    /// The working directory.
    pub working_dir: String,
    /// The entrypoint.
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// No network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    /// ONBUILD triggers.
    pub on_build: Option<Vec<String>>,
    /// Labels.
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// The stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing on stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// The shell for shell-form commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Whatever else the client sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// `json-file` (or empty: the default).
    #[serde(rename = "Type")]
    pub kind: String,
    /// `max-size`, `max-file`, ….
    #[serde(deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// `RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`, `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// For `on-failure`: the most restarts (0: no limit).
    pub maximum_retry_count: i64,
}

/// A `--ulimit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    /// `nofile`, `nproc`, ….
    pub name: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// A `--device`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    /// The host's device.
    pub path_on_host: String,
    /// Where it appears in the container.
    pub path_in_container: String,
    /// `rwm`.
    pub cgroup_permissions: String,
}

/// A `--mount` (`HostConfig.Mounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    /// Where in the container.
    pub target: String,
    /// The host path (bind) or volume name (volume).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `z`, `Z` (SELinux; ignored).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    /// Volume options (`NoCopy`, `Labels`, `Subpath`, `DriverConfig`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    /// Image options (`Subpath`), for `image` mounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_options: Option<Value>,
    /// tmpfs options (`SizeBytes`, `Mode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
}

/// `HostConfig`: how the host runs the container (resources inline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v` specs (`src:dst[:opts]`).
    pub binds: Option<Vec<String>>,
    /// The file the CLI writes the ID to.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    /// The log driver.
    pub log_config: LogConfig,
    /// `none` (until networks come: `default`, `bridge` are refused).
    pub network_mode: String,
    /// Port bindings (kept; publishing comes with networks).
    pub port_bindings: Option<Value>,
    /// The restart policy.
    pub restart_policy: RestartPolicy,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// The volume driver.
    pub volume_driver: String,
    /// `container[:ro|rw]`.
    pub volumes_from: Option<Vec<String>>,
    /// `--mount`s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<MountSpec>>,
    /// Capabilities to add.
    pub cap_add: Option<Vec<String>>,
    /// Capabilities to drop.
    pub cap_drop: Option<Vec<String>>,
    /// `host`, `private`.
    pub cgroupns_mode: String,
    /// DNS servers.
    pub dns: Option<Vec<String>>,
    /// DNS options.
    pub dns_options: Option<Vec<String>>,
    /// DNS search domains.
    pub dns_search: Option<Vec<String>>,
    /// `host:ip` entries for `/etc/hosts`.
    pub extra_hosts: Option<Vec<String>>,
    /// More groups.
    pub group_add: Option<Vec<String>>,
    /// `private`, `shareable`, `host`, `container:…`.
    pub ipc_mode: String,
    /// The OOM score adjustment.
    pub oom_score_adj: i64,
    /// `host`, `container:…`.
    pub pid_mode: String,
    /// Privileged.
    pub privileged: bool,
    /// `-P`.
    pub publish_all_ports: bool,
    /// Read-only root filesystem.
    pub readonly_rootfs: bool,
    /// `no-new-privileges`, `seccomp=…`, `apparmor=…`, `label=…`.
    pub security_opt: Option<Vec<String>>,
    /// `--tmpfs`: path to options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `host`.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `host`.
    pub userns_mode: String,
    /// Bytes of /dev/shm (0: 64 MiB).
    pub shm_size: i64,
    /// Sysctls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    /// The OCI runtime.
    pub runtime: String,
    /// `--init`.
    pub init: Option<bool>,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `-m`, bytes.
    pub memory: i64,
    /// A cgroup parent.
    pub cgroup_parent: String,
    /// CFS period (µs).
    pub cpu_period: i64,
    /// CFS quota (µs).
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--device`s.
    pub devices: Option<Vec<DeviceMapping>>,
    /// `--device-cgroup-rule`s.
    pub device_cgroup_rules: Option<Vec<String>>,
    /// Soft memory limit.
    pub memory_reservation: i64,
    /// Memory + swap (-1: unlimited).
    pub memory_swap: i64,
    /// Swappiness (-1 or null: the default).
    pub memory_swappiness: Option<i64>,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// Disable the OOM killer.
    pub oom_kill_disable: Option<bool>,
    /// `--pids-limit` (0, -1 or null: unlimited).
    pub pids_limit: Option<i64>,
    /// `--ulimit`s.
    pub ulimits: Option<Vec<Ulimit>>,
    /// Paths masked in the container (null: the default set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    /// Paths read-only in the container (null: the default set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// Whatever else the client sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /containers/create`: the config with the host config and the
/// networking config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreate {
    /// The container config.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// The host config.
    pub host_config: HostConfig,
    /// Networks (kept; networks come later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<Value>,
}

/// The answer to a create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreated {
    /// The full ID.
    pub id: String,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    /// Failures in a row.
    pub failing_streak: i64,
    /// The last checks (at most five).
    pub log: Vec<HealthLog>,
}

/// One healthcheck run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLog {
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// 0 healthy, 1 unhealthy, other: error.
    pub exit_code: i64,
    /// What the check printed (truncated).
    pub output: String,
}

/// `State` in inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    /// Running (also when paused).
    pub running: bool,
    /// Paused.
    pub paused: bool,
    /// Restarting.
    pub restarting: bool,
    /// Killed by the OOM killer.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Dead.
    pub dead: bool,
    /// The init's pid (0 when not running).
    pub pid: i64,
    /// The exit code.
    pub exit_code: i64,
    /// Why it failed to start.
    pub error: String,
    /// RFC 3339 (`0001-01-01T00:00:00Z` when never).
    pub started_at: String,
    /// RFC 3339 (`0001-01-01T00:00:00Z` when never).
    pub finished_at: String,
    /// Health, with a healthcheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// A mount as inspect and ps show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path.
    pub source: String,
    /// Where in the container.
    pub destination: String,
    /// `local` for volumes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Mode (`z`, `ro`, …).
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// `rprivate` for binds.
    pub propagation: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    /// The full ID.
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The program.
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The state.
    pub state: ContainerState,
    /// The image ID.
    pub image: String,
    /// `/etc/resolv.conf` on the host.
    pub resolv_conf_path: String,
    /// `/etc/hostname` on the host.
    pub hostname_path: String,
    /// `/etc/hosts` on the host.
    pub hosts_path: String,
    /// The json-file log.
    pub log_path: String,
    /// `/name`.
    pub name: String,
    /// Restarts by the policy.
    pub restart_count: i64,
    /// The snapshotter.
    pub driver: String,
    /// `linux`.
    pub platform: String,
    /// SELinux.
    pub mount_label: String,
    /// SELinux.
    pub process_label: String,
    /// AppArmor.
    pub app_armor_profile: String,
    /// Running execs.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// The host config.
    pub host_config: HostConfig,
    /// The snapshot's directories.
    pub graph_driver: Value,
    /// Bytes written (with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Bytes of the whole root filesystem (with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Mounts.
    pub mounts: Vec<MountPoint>,
    /// The config.
    pub config: ContainerConfig,
    /// Networks (none until the networks issue).
    pub network_settings: Value,
}

/// `GET /containers/json` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    /// The full ID.
    pub id: String,
    /// `/name`.
    pub names: Vec<String>,
    /// The image as given.
    pub image: String,
    /// The image ID.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command line.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    /// Published ports.
    pub ports: Vec<Value>,
    /// Bytes written (with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Bytes of the root filesystem (with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `running`, `exited`, ….
    pub state: String,
    /// `Up 2 minutes`, `Exited (0) 5 seconds ago`.
    pub status: String,
    /// `{"NetworkMode": …}`.
    pub host_config: Value,
    /// `{"Networks": {}}`.
    pub network_settings: Value,
    /// Mounts.
    pub mounts: Vec<MountPoint>,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    /// The exit code.
    pub status_code: i64,
    /// Why waiting failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

/// A wait error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    /// The message.
    pub message: String,
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// `ctrl-p,ctrl-q` style.
    pub detach_keys: String,
    /// A terminal.
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<Vec<u16>>,
    /// `KEY=value`.
    #[serde(deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// The command.
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// All capabilities.
    pub privileged: bool,
    /// `user[:group]`.
    pub user: String,
    /// The working directory.
    pub working_dir: String,
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    /// Do not attach.
    pub detach: bool,
    /// A terminal.
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<Vec<u16>>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    /// Whether a client can attach.
    pub can_remove: bool,
    /// The detach keys.
    pub detach_keys: String,
    /// The exec ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Running.
    pub running: bool,
    /// The exit code (null while running or before start).
    pub exit_code: Option<i64>,
    /// The process.
    pub process_config: Value,
    /// Stdin open.
    pub open_stdin: bool,
    /// stderr attached.
    pub open_stderr: bool,
    /// stdout attached.
    pub open_stdout: bool,
    /// The container's ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// The process's pid on the host.
    pub pid: i64,
}

/// `POST /containers/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerPruneReport {
    /// IDs of removed containers (null when none).
    pub containers_deleted: Option<Vec<String>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/changes` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChangeItem {
    /// The path.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TopResponse {
    /// Column names.
    pub titles: Vec<String>,
    /// One row per process.
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateResponse {
    /// Warnings.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_body_from_the_docker_cli_reads() {
        let body = r#"{"Hostname":"","Env":null,"Cmd":"echo hi","Image":"busybox",
            "Labels":null,"HostConfig":{"Memory":1048576,"RestartPolicy":{"Name":"no"},
            "Binds":["/a:/b:ro"],"ConsoleSize":[24,80]},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let c: ContainerCreate = serde_json::from_str(body).expect("parses");
        assert_eq!(c.config.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(c.config.image, "busybox");
        assert!(c.config.env.is_empty());
        assert_eq!(c.host_config.memory, 1_048_576);
        assert_eq!(c.host_config.restart_policy.name, "no");
        assert_eq!(
            c.host_config.extra.get("ConsoleSize"),
            Some(&serde_json::json!([24, 80]))
        );
    }
}
