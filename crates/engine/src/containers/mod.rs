//! Containers: records, their lifecycle through the shims, and the monitor
//! that learns when a shim (and so its container) ends.
//!
//! Each container has a record on disk (see [`record`]) and, while it
//! runs, a `hafen-shim` process. The daemon watches every shim with a
//! pidfd in one epoll loop ([`monitor`]); when a shim ends, its exit file
//! says how the container ended. A restarted daemon re-reads the records
//! and finds the shims again by their pid files.

pub mod archive;
pub mod commit;
pub mod exec;
pub mod files;
pub mod health;
pub mod lifecycle;
pub mod monitor;
pub mod names;
pub mod record;
pub mod spec;
pub mod stats;
pub mod top;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use record::{Paths, Record};

/// Container failures, mapped to Docker's status codes by the backend.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No such container (404).
    #[error("No such container: {0}")]
    NotFound(String),
    /// No such image (404).
    #[error("No such image: {0}")]
    NoImage(String),
    /// A conflict (409).
    #[error("{0}")]
    Conflict(String),
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// The container's program could not be started (400 as dockerd).
    #[error("{0}")]
    Start(String),
    /// Something failed here (500).
    #[error("{0}")]
    Internal(String),
    /// A network failure, with its own status.
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
}

/// One container in memory.
#[derive(Debug)]
pub struct Ctr {
    /// The record (the lock also orders lifecycle operations).
    pub rec: Mutex<Record>,
    /// Its directories.
    pub paths: Paths,
    /// Bumped at every state change (wait, logs -f).
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Notified at every state change, for threads that wait on `rec`.
    pub cond: std::sync::Condvar,
    /// Attaches made before the container started.
    pub pending: Mutex<Vec<PendingAttach>>,
    /// Serialises start, stop and remove.
    pub op: Mutex<()>,
}

/// An attach waiting for the container to start.
#[derive(Debug)]
pub struct PendingAttach {
    /// stdin, stdout, stderr.
    pub streams: (bool, bool, bool),
    /// Where the stream goes.
    pub tx: tokio::sync::oneshot::Sender<Option<std::os::unix::net::UnixStream>>,
}

impl Ctr {
    /// The record, locked.
    pub fn rec(&self) -> MutexGuard<'_, Record> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the record and tells waiters.
    pub fn commit(&self, rec: &Record) {
        if let Err(e) = rec.save(&self.paths.dir) {
            tracing::error!("cannot save container {}: {e}", rec.id);
        }
        self.changed.send_modify(|n| *n += 1);
        self.cond.notify_all();
    }
}

/// An exec.
#[derive(Debug)]
pub struct Exec {
    /// Its ID.
    pub id: String,
    /// The container's ID.
    pub container: String,
    /// What to run.
    pub config: hafen_api::models::ExecConfig,
    /// The pid once started (0 before).
    pub pid: Mutex<i32>,
    /// The state directory of the container (for the exit file).
    pub state_dir: PathBuf,
}

/// All containers.
#[derive(Debug)]
pub struct Containers {
    /// `<root>/containers`.
    pub root: PathBuf,
    /// `<run root>/containers`.
    pub run: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    by_id: Mutex<HashMap<String, Arc<Ctr>>>,
    /// Execs by ID.
    pub execs: Mutex<HashMap<String, Arc<Exec>>>,
    /// The shim binary.
    pub shim: PathBuf,
    /// The shim binary as an fd nothing can write to (read-only bind mount
    /// or sealed copy): shims start from it, so that a container that gets
    /// hold of its shim's executable cannot change the host's file.
    pub shim_exe: Option<std::os::fd::OwnedFd>,
    /// The shims' monitor.
    pub monitor: monitor::Monitor,
}

/// Locks a mutex, surviving a poisoned one.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The shim binary: `$HAFEN_SHIM`, or `hafen-shim` next to the running
/// executable.
fn find_shim() -> PathBuf {
    if let Some(p) = std::env::var_os("HAFEN_SHIM") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("hafen-shim")))
        .unwrap_or_else(|| PathBuf::from("hafen-shim"))
}

impl Containers {
    /// Loads the records under `root/containers`.
    pub fn open(root: &Path, run_root: &Path) -> std::io::Result<Containers> {
        let c = Containers {
            root: root.join("containers"),
            run: run_root.join("containers"),
            runtime_root: run_root.join("runtime"),
            by_id: Mutex::default(),
            execs: Mutex::default(),
            shim: find_shim(),
            shim_exe: None,
            monitor: monitor::Monitor::new()?,
        };
        std::fs::create_dir_all(&c.root)?;
        std::fs::create_dir_all(&c.run)?;
        let mut c = c;
        c.shim_exe = hafen_runtime::self_exe::protected(&c.shim)
            .map_err(|e| tracing::warn!("cannot protect {}: {e}", c.shim.display()))
            .ok();
        let mut map = lock(&c.by_id);
        for entry in std::fs::read_dir(&c.root)?.flatten() {
            let dir = entry.path();
            match Record::load(&dir) {
                Ok(rec) => {
                    let paths = c.paths(&rec.id);
                    map.insert(rec.id.clone(), Arc::new(new_ctr(rec, paths)));
                }
                Err(e) => {
                    tracing::warn!("skipping {}: {e}", dir.display());
                }
            }
        }
        drop(map);
        Ok(c)
    }

    /// The directories of a container.
    pub fn paths(&self, id: &str) -> Paths {
        Paths {
            dir: self.root.join(id),
            state: self.run.join(id),
        }
    }

    /// Adds a new container.
    pub fn insert(&self, rec: Record) -> Arc<Ctr> {
        let paths = self.paths(&rec.id);
        let ctr = Arc::new(new_ctr(rec, paths));
        lock(&self.by_id).insert(ctr.rec().id.clone(), ctr.clone());
        ctr
    }

    /// Forgets a container.
    pub fn forget(&self, id: &str) {
        lock(&self.by_id).remove(id);
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Ctr>> {
        lock(&self.by_id).values().cloned().collect()
    }

    /// Finds a container by full ID, name (with or without `/`) or a unique
    /// ID prefix, as dockerd does.
    pub fn find(&self, key: &str) -> Result<Arc<Ctr>, ContainerError> {
        let map = lock(&self.by_id);
        if key.is_empty() {
            return Err(ContainerError::NotFound(key.into()));
        }
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.rec().name == name) {
            return Ok(c.clone());
        }
        let matches: Vec<&Arc<Ctr>> = map
            .iter()
            .filter(|(id, _)| id.starts_with(key))
            .map(|(_, c)| c)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError::NotFound(key.into())),
            _ => Err(ContainerError::Invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// The container using a name, if any.
    pub fn by_name(&self, name: &str) -> Option<Arc<Ctr>> {
        lock(&self.by_id)
            .values()
            .find(|c| c.rec().name == name)
            .cloned()
    }
}

fn new_ctr(rec: Record, paths: Paths) -> Ctr {
    Ctr {
        rec: Mutex::new(rec),
        paths,
        changed: tokio::sync::watch::channel(0).0,
        cond: std::sync::Condvar::new(),
        pending: Mutex::default(),
        op: Mutex::new(()),
    }
}

/// A new random ID (64 hex digits).
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Now as RFC 3339 with nanoseconds (Docker's `Created`, `StartedAt`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A Unix ns time as RFC 3339 with nanoseconds.
pub fn ns_rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
