//! A container's record: what `inspect` shows, kept as one JSON file per
//! container (`<root>/containers/<id>/config.v2.json`, written atomically),
//! so that a restarted daemon knows every container.

use std::path::{Path, PathBuf};

use hafen_api::models::{ContainerConfig, Health, HostConfig, MountPoint};
use serde::{Deserialize, Serialize};

/// The state machine of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be started again by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended.
    Exited,
    /// Could not be removed completely.
    Dead,
}

impl Status {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a process is there (running or paused).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// The never-time Docker shows.
pub const NEVER: &str = "0001-01-01T00:00:00Z";

/// The state part of the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Where in the state machine.
    pub status: Status,
    /// The init's pid on the host (0 when none).
    pub pid: i32,
    /// The shim's pid (0 when none).
    pub shim_pid: i32,
    /// The last exit code.
    pub exit_code: i64,
    /// The last start error.
    pub error: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Health (with a healthcheck, while running).
    pub health: Option<Health>,
    /// Stopped by a user (stop, kill): `unless-stopped` stays down and
    /// `always` waits for the next daemon start.
    pub stopped_by_user: bool,
    /// Started at least once.
    pub has_been_started: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: NEVER.into(),
            finished_at: NEVER.into(),
            oom_killed: false,
            health: None,
            stopped_by_user: false,
            has_been_started: false,
        }
    }
}

/// A container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The program.
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The config, with the image's defaults merged in.
    pub config: ContainerConfig,
    /// The host config.
    pub host_config: HostConfig,
    /// The image ID.
    pub image: String,
    /// The snapshot holding the container's changes.
    pub snapshot: String,
    /// Mounts (volumes, binds, tmpfs).
    pub mounts: Vec<MountPoint>,
    /// The state.
    pub state: State,
    /// Restarts by the policy.
    pub restart_count: i64,
    /// Its networks, by name, with what it has there while it runs.
    pub networks: std::collections::BTreeMap<String, crate::networks::attach::Endpoint>,
    /// Its published ports while it runs (`80/tcp` → host bindings).
    pub ports: std::collections::BTreeMap<String, Vec<crate::networks::attach::PortBinding>>,
}

/// The file name of a record.
pub const RECORD_FILE: &str = "config.v2.json";

impl Record {
    /// Loads a record.
    pub fn load(dir: &Path) -> std::io::Result<Record> {
        let bytes = std::fs::read(dir.join(RECORD_FILE))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Saves it (atomically).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(RECORD_FILE))
    }

    /// The short ID.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// Where a container's files are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<root>/containers/<id>`: the record, hosts files, the log.
    pub dir: PathBuf,
    /// `<run root>/containers/<id>`: the bundle, the shim's socket and exit file.
    pub state: PathBuf,
}

impl Paths {
    /// The bundle's root filesystem mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.state.join("rootfs")
    }

    /// The json-file log.
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
}
