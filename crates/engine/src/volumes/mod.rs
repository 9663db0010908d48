//! Named volumes, as Docker's `local` driver keeps them.
//!
//! Each volume is a directory `<root>/volumes/<name>/` holding `_data`
//! (its files, the `Mountpoint`) and `meta.json` (driver, options, labels,
//! creation time; replaced atomically). Options follow the local driver:
//! `type`, `device` and `o` describe a mount made at `_data` when the first
//! container starts using the volume and undone when the last one stops,
//! except a plain bind (`type=none,o=bind,device=DIR`), whose directory
//! containers bind directly.
//!
//! Which containers use a volume is kept in memory: the engine acquires
//! its volumes again for every container when it starts. A volume in use
//! cannot be removed or pruned.
//!
//! Removal renames the volume's directory to `.trash-…` first (so it is
//! gone at once, even if deleting its files fails half-way); leftovers are
//! deleted when the store opens.

mod copy;
mod options;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use hafen_api::filters::Filters;
use hafen_api::models::{Volume, VolumeCreate, VolumeUsage};
use serde::{Deserialize, Serialize};

use options::Plan;

/// The label dockerd puts on volumes made without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver.
pub const LOCAL_DRIVER: &str = "local";

/// The user a copy-up holds a volume for (no container ID has a NUL).
const COPY_UP: &str = "\0copy-up";

/// Volume failures; the messages are dockerd's.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// No volume has the name (404).
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// Containers use it (409).
    #[error("remove {name}: volume is in use - [{}]", .users.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers using it.
        users: Vec<String>,
    },
    /// A bad name or bad options (400).
    #[error("create {name}: {reason}")]
    Invalid {
        /// The volume.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A driver other than `local` (404).
    #[error("create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found")]
    NoDriver {
        /// The volume.
        name: String,
        /// The driver asked for.
        driver: String,
    },
    /// The name is taken by a volume with other options (409).
    #[error(
        "create {name}: volume name must be unique: volume {name:?} already exists with other driver options"
    )]
    Conflict {
        /// The volume.
        name: String,
    },
    /// A bad `filters` value (400).
    #[error("{0}")]
    InvalidFilter(String),
    /// Mounting or unmounting the volume failed (500).
    #[error("{0}")]
    Mount(String),
    /// Files (500).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let what = what.into();
    move |source| VolumeError::Io { what, source }
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Meta {
    driver: String,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    /// RFC 3339, UTC, nanoseconds.
    created_at: String,
}

/// A volume as the store keeps it.
#[derive(Debug)]
struct Record {
    meta: Meta,
    /// Containers referencing it (created with it).
    refs: BTreeSet<String>,
    /// Containers that have it mounted (running).
    active: BTreeSet<String>,
    /// A mount at `_data` is in place.
    mounted: bool,
    /// Serialises copy-ups into the volume.
    fill: Arc<Mutex<()>>,
}

impl Record {
    fn new(meta: Meta) -> Record {
        Record {
            meta,
            refs: BTreeSet::new(),
            active: BTreeSet::new(),
            mounted: false,
            fill: Arc::new(Mutex::new(())),
        }
    }

    /// The containers using it, sorted.
    fn users(&self) -> Vec<String> {
        self.refs
            .union(&self.active)
            .filter(|u| !u.starts_with('\0'))
            .cloned()
            .collect()
    }

    fn in_use(&self) -> bool {
        !self.refs.is_empty() || !self.active.is_empty()
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The volumes removed, by name.
    pub deleted: Vec<String>,
    /// Bytes freed.
    pub reclaimed: u64,
}

/// The volumes of one engine.
#[derive(Debug)]
pub struct VolumeStore {
    dir: PathBuf,
    state: Mutex<BTreeMap<String, Record>>,
}

/// Checks a volume name as dockerd does (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

/// 64 random hex digits: the name of an anonymous volume.
fn random_name() -> Result<String, VolumeError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error("cannot make a volume name"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A stored UTC time as dockerd shows it: RFC 3339 to the second, in the
/// daemon's time zone.
fn shown_time(stored: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stored)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's `filters.Args.MatchKVList`: every `key` or `key=value` is among
/// the labels.
fn match_labels(wanted: &[String], labels: &BTreeMap<String, String>) -> bool {
    if wanted.is_empty() {
        return true;
    }
    if labels.is_empty() {
        return false;
    }
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Go's `%s` of a list of strings: `[a b]`.
fn go_list(values: &[String]) -> String {
    format!("[{}]", values.join(" "))
}

/// Refuses filter keys outside `allowed`.
fn only(filters: &Filters, allowed: &[&str]) -> Result<(), VolumeError> {
    match filters.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(VolumeError::InvalidFilter(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// Docker's `GetBoolOrDefault` (`1`/`true` or `0`/`false`, not both).
fn bool_filter(filters: &Filters, key: &str) -> Result<Option<bool>, VolumeError> {
    let Some(values) = filters.get(key) else {
        return Ok(None);
    };
    let has = |v: &str| values.iter().any(|x| x == v);
    let is_false = has("0") || has("false");
    let is_true = has("1") || has("true");
    if values.is_empty() {
        return Err(VolumeError::InvalidFilter(format!(
            "invalid filter '{key}'"
        )));
    }
    if is_false == is_true {
        return Err(VolumeError::InvalidFilter(format!(
            "invalid filter '{key}={}'",
            go_list(values)
        )));
    }
    Ok(Some(is_true))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The `name` filter: a value matches exactly or as a regular expression
/// anywhere in the name (one that does not compile matches nothing).
fn match_name(wanted: &[String], name: &str) -> bool {
    wanted
        .iter()
        .any(|w| w == name || regex::Regex::new(w).is_ok_and(|re| re.is_match(name)))
}

impl VolumeStore {
    /// Opens (making it if needed) the store under `<root>/volumes`, and
    /// deletes what half-finished removals left.
    pub fn open(root: &Path) -> Result<VolumeStore, VolumeError> {
        let dir = root.join("volumes");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(&dir)
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        let mut volumes = BTreeMap::new();
        let entries =
            std::fs::read_dir(&dir).map_err(io_error(format!("cannot read {}", dir.display())))?;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = entry.path();
            if name.starts_with(".trash-") {
                // Checked for mounts before it was renamed.
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!("cannot delete {}: {e}", path.display());
                }
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) || validate_name(&name).is_err() {
                continue;
            }
            let Some(meta) = load_meta(&path) else {
                continue;
            };
            let mut record = Record::new(meta);
            // A mount that outlived a daemon: ours until nobody uses it.
            record.mounted = matches!(options::plan(&record.meta.options), Plan::Mount(_))
                && options::is_mount_point(&path.join("_data"));
            volumes.insert(name, record);
        }
        Ok(VolumeStore {
            dir,
            state: Mutex::new(volumes),
        })
    }

    fn state(&self) -> MutexGuard<'_, BTreeMap<String, Record>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the volumes are (`<root>/volumes`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A volume's `_data` directory (its `Mountpoint`).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn api(&self, name: &str, r: &Record) -> Volume {
        Volume {
            created_at: shown_time(&r.meta.created_at),
            driver: r.meta.driver.clone(),
            labels: r.meta.labels.clone(),
            mountpoint: self.data_dir(name).display().to_string(),
            name: name.to_string(),
            options: r.meta.options.clone(),
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// Creates a volume (`POST /volumes/create`). Without a name it is
    /// anonymous: 64 random hex digits and the label
    /// [`ANONYMOUS_LABEL`]. A name that exists gives that volume back when
    /// no options or the same options are asked for, and a conflict when
    /// other options are.
    pub fn create(&self, req: &VolumeCreate) -> Result<Volume, VolumeError> {
        self.create_inner(req, None)
    }

    /// Creates (or finds, as [`VolumeStore::create`]) a volume and
    /// acquires it for a container in one step, so that no prune comes in
    /// between (`docker run -v NAME:/path`).
    pub fn create_for(
        &self,
        req: &VolumeCreate,
        container_id: &str,
    ) -> Result<Volume, VolumeError> {
        self.create_inner(req, Some(container_id))
    }

    /// Creates an anonymous volume for a container (`docker run -v /path`,
    /// an image's `VOLUME`), acquired for it.
    pub fn create_anonymous(&self, container_id: &str) -> Result<Volume, VolumeError> {
        self.create_inner(&VolumeCreate::default(), Some(container_id))
    }

    fn create_inner(&self, req: &VolumeCreate, user: Option<&str>) -> Result<Volume, VolumeError> {
        let mut labels = req.labels.clone();
        let name = if req.name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            random_name()?
        } else {
            req.name.clone()
        };
        if !req.driver.is_empty() && req.driver != LOCAL_DRIVER {
            return Err(VolumeError::NoDriver {
                name,
                driver: req.driver.clone(),
            });
        }
        validate_name(&name).map_err(|reason| VolumeError::Invalid {
            name: name.clone(),
            reason,
        })?;
        let mut state = self.state();
        if let Some(r) = state.get_mut(&name) {
            if !req.driver_opts.is_empty() && req.driver_opts != r.meta.options {
                return Err(VolumeError::Conflict { name });
            }
            if let Some(u) = user {
                r.refs.insert(u.to_string());
            }
            return Ok(self.api(&name, r));
        }
        options::validate(&req.driver_opts).map_err(|reason| VolumeError::Invalid {
            name: name.clone(),
            reason,
        })?;
        let meta = Meta {
            driver: LOCAL_DRIVER.into(),
            options: req.driver_opts.clone(),
            labels,
            created_at: now_rfc3339(),
        };
        let vol_dir = self.dir.join(&name);
        let made = make_volume_dir(&vol_dir, &meta);
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&vol_dir);
            return Err(e);
        }
        let mut record = Record::new(meta);
        if let Some(u) = user {
            record.refs.insert(u.to_string());
        }
        let v = self.api(&name, &record);
        state.insert(name, record);
        Ok(v)
    }

    /// One volume (`GET /volumes/{name}`).
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let state = self.state();
        state
            .get(name)
            .map(|r| self.api(name, r))
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    /// The volumes that pass `filters` (`name`, `label`, `dangling`,
    /// `driver`), by name.
    pub fn list(&self, filters: &Filters) -> Result<Vec<Volume>, VolumeError> {
        only(filters, &["dangling", "name", "driver", "label"])?;
        let dangling = bool_filter(filters, "dangling")?;
        let get = |k: &str| filters.get(k).cloned().unwrap_or_default();
        let (names, labels, drivers) = (get("name"), get("label"), get("driver"));
        let state = self.state();
        Ok(state
            .iter()
            .filter(|(name, r)| {
                (names.is_empty() || match_name(&names, name))
                    && match_labels(&labels, &r.meta.labels)
                    && (drivers.is_empty() || drivers.contains(&r.meta.driver))
                    && dangling.is_none_or(|d| d != r.in_use())
            })
            .map(|(name, r)| self.api(name, r))
            .collect())
    }

    /// Removes a volume and its files (`DELETE /volumes/{name}`). One in
    /// use is refused, also with `force`; `force` makes a missing volume
    /// no error.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let trash = {
            let mut state = self.state();
            let Some(r) = state.get_mut(name) else {
                return if force {
                    Ok(())
                } else {
                    Err(VolumeError::NotFound(name.to_string()))
                };
            };
            if r.in_use() {
                return Err(VolumeError::InUse {
                    name: name.to_string(),
                    users: r.users(),
                });
            }
            let trash = self.take_out(name, r)?;
            state.remove(name);
            trash
        };
        self.delete_trash(&trash);
        Ok(())
    }

    /// Unmounts a volume nobody uses and renames its directory out of the
    /// way; the caller then forgets it.
    fn take_out(&self, name: &str, r: &mut Record) -> Result<PathBuf, VolumeError> {
        let data = self.data_dir(name);
        if r.mounted {
            options::unmount(&data)
                .map_err(|e| VolumeError::Mount(format!("remove {name}: {e}")))?;
            r.mounted = false;
        }
        if options::is_mount_point(&data) {
            return Err(VolumeError::Mount(format!(
                "remove {name}: {} is mounted by something else",
                data.display()
            )));
        }
        let mut suffix = [0u8; 8];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut suffix))
            .map_err(io_error(format!("remove {name}")))?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let trash = self.dir.join(format!(".trash-{name}-{hex}"));
        std::fs::rename(self.dir.join(name), &trash).map_err(io_error(format!("remove {name}")))?;
        Ok(trash)
    }

    fn delete_trash(&self, trash: &Path) {
        if let Err(e) = std::fs::remove_dir_all(trash) {
            tracing::warn!(
                "cannot delete {} (it goes when the daemon starts again): {e}",
                trash.display()
            );
        }
    }

    /// Removes unused volumes without options (`POST /volumes/prune`):
    /// anonymous ones only unless the filter `all` is true; `label` and
    /// `label!` narrow it down.
    pub fn prune(&self, filters: &Filters) -> Result<PruneReport, VolumeError> {
        only(filters, &["label", "label!", "all"])?;
        let all = match filters.get("all").map(Vec::as_slice) {
            None | Some([]) => false,
            Some([one]) => parse_go_bool(one).ok_or_else(|| {
                VolumeError::InvalidFilter(format!(
                    "invalid filter 'all': strconv.ParseBool: parsing {one:?}: invalid syntax"
                ))
            })?,
            Some(many) => {
                return Err(VolumeError::InvalidFilter(format!(
                    "invalid filter 'all={}': only one value is expected",
                    go_list(many)
                )));
            }
        };
        let mut labels = filters.get("label").cloned().unwrap_or_default();
        if !all {
            labels.push(ANONYMOUS_LABEL.into());
        }
        let not_labels = filters.get("label!").cloned().unwrap_or_default();
        let mut taken = Vec::new();
        {
            let mut state = self.state();
            let names: Vec<String> = state
                .iter()
                .filter(|(_, r)| {
                    !r.in_use()
                        && r.meta.driver == LOCAL_DRIVER
                        && r.meta.options.is_empty()
                        && match_labels(&labels, &r.meta.labels)
                        && (not_labels.is_empty() || !match_labels(&not_labels, &r.meta.labels))
                })
                .map(|(n, _)| n.clone())
                .collect();
            for name in names {
                let Some(r) = state.get_mut(&name) else {
                    continue;
                };
                match self.take_out(&name, r) {
                    Ok(trash) => {
                        state.remove(&name);
                        taken.push((name, trash));
                    }
                    Err(e) => tracing::warn!("cannot prune volume {name}: {e}"),
                }
            }
        }
        let mut report = PruneReport::default();
        for (name, trash) in taken {
            report.reclaimed += copy::tree_size(&trash.join("_data")).unwrap_or(0);
            self.delete_trash(&trash);
            report.deleted.push(name);
        }
        Ok(report)
    }

    /// Records that a container uses a volume (it was created with it): the
    /// volume cannot be removed until [`VolumeStore::release`].
    pub fn acquire(&self, name: &str, container_id: &str) -> Result<(), VolumeError> {
        let mut state = self.state();
        let r = state
            .get_mut(name)
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        r.refs.insert(container_id.to_string());
        Ok(())
    }

    /// A container no longer uses a volume (it was removed); unmounts the
    /// volume if that container was its last active user. An unknown
    /// volume or container is no error.
    pub fn release(&self, name: &str, container_id: &str) -> Result<(), VolumeError> {
        let mut state = self.state();
        let Some(r) = state.get_mut(name) else {
            return Ok(());
        };
        r.refs.remove(container_id);
        self.deactivate(name, r, container_id)
    }

    /// The containers using a volume, sorted (none for an unknown one).
    pub fn users(&self, name: &str) -> Vec<String> {
        self.state()
            .get(name)
            .map(Record::users)
            .unwrap_or_default()
    }

    /// The host path to bind into a container that starts with the volume:
    /// `_data`, or the host directory of a plain bind volume. A volume
    /// with mount options is mounted at `_data` for its first active user.
    /// Also acquires the volume for the container; undo with
    /// [`VolumeStore::unmount_source`] when it stops.
    pub fn mount_source(&self, name: &str, container_id: &str) -> Result<PathBuf, VolumeError> {
        let mut state = self.state();
        let r = state
            .get_mut(name)
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let data = self.data_dir(name);
        let source = match options::plan(&r.meta.options) {
            Plan::Plain => data,
            Plan::BindThrough(device) => {
                let problem = match std::fs::metadata(&device) {
                    Ok(m) if m.is_dir() => None,
                    Ok(_) => Some(std::io::Error::from_raw_os_error(libc::ENOTDIR)),
                    Err(e) => Some(e),
                };
                if let Some(e) = problem {
                    return Err(VolumeError::Mount(format!(
                        "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: 0x1000: {}",
                        data.display(),
                        data.display(),
                        options::errno_text(&e)
                    )));
                }
                PathBuf::from(device)
            }
            Plan::Mount(spec) => {
                if !r.mounted {
                    options::mount(&spec, &data).map_err(|e| {
                        VolumeError::Mount(format!(
                            "error while mounting volume '{}': {e}",
                            data.display()
                        ))
                    })?;
                    r.mounted = true;
                }
                data
            }
        };
        r.refs.insert(container_id.to_string());
        r.active.insert(container_id.to_string());
        Ok(source)
    }

    /// A container that had the volume mounted stopped: the last one to
    /// stop unmounts a volume with mount options. It still references the
    /// volume until [`VolumeStore::release`].
    pub fn unmount_source(&self, name: &str, container_id: &str) -> Result<(), VolumeError> {
        let mut state = self.state();
        let Some(r) = state.get_mut(name) else {
            return Ok(());
        };
        self.deactivate(name, r, container_id)
    }

    fn deactivate(&self, name: &str, r: &mut Record, user: &str) -> Result<(), VolumeError> {
        r.active.remove(user);
        if r.active.is_empty() && r.mounted {
            options::unmount(&self.data_dir(name)).map_err(VolumeError::Mount)?;
            r.mounted = false;
        }
        Ok(())
    }

    /// Unmounts volumes that are mounted but have no active user (after a
    /// restart, once the engine has mounted its running containers' volumes
    /// again).
    pub fn unmount_unused(&self) -> Result<(), VolumeError> {
        let mut state = self.state();
        let mut first_error = None;
        for (name, r) in state.iter_mut() {
            if r.mounted && r.active.is_empty() {
                match options::unmount(&self.data_dir(name)) {
                    Ok(()) => r.mounted = false,
                    Err(e) => {
                        first_error.get_or_insert(VolumeError::Mount(e));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Copies the image's content at a mount point (`from`, a directory in
    /// the container's root filesystem, already resolved within it) into
    /// the volume, if the volume is empty, as dockerd does when a container
    /// is created with it. Owners, modes, symlinks, hardlinks, device nodes,
    /// times and extended attributes are kept. A `from` that is missing,
    /// not a directory or a symlink copies nothing.
    pub fn copy_up(&self, name: &str, from: &Path) -> Result<(), VolumeError> {
        match from.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(()),
        }
        let fill = self
            .state()
            .get(name)
            .map(|r| r.fill.clone())
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let _only_one = fill.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.mount_source(name, COPY_UP)?;
        let copied = copy::is_empty_dir(&target)
            .and_then(|empty| {
                if empty {
                    copy::copy_tree(from, &target)
                } else {
                    Ok(())
                }
            })
            .map_err(io_error(format!(
                "cannot copy {} into volume {name}",
                from.display()
            )));
        let released = self.release(name, COPY_UP);
        copied.and(released)
    }

    /// The bytes of a volume's files (each inode once, as `docker system
    /// df` counts them).
    pub fn size(&self, name: &str) -> Result<u64, VolumeError> {
        let path = {
            let state = self.state();
            let r = state
                .get(name)
                .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
            match options::plan(&r.meta.options) {
                Plan::BindThrough(device) => PathBuf::from(device),
                _ => self.data_dir(name),
            }
        };
        copy::tree_size(&path).map_err(io_error(format!("cannot measure volume {name}")))
    }

    /// The volumes `/system/df` reports (those without options, as dockerd
    /// counts them), each with its size and number of users.
    pub fn usage(&self) -> Vec<Volume> {
        let listed: Vec<(Volume, i64)> = {
            let state = self.state();
            state
                .iter()
                .filter(|(_, r)| r.meta.options.is_empty())
                .map(|(n, r)| {
                    (
                        self.api(n, r),
                        i64::try_from(r.users().len()).unwrap_or(i64::MAX),
                    )
                })
                .collect()
        };
        listed
            .into_iter()
            .map(|(mut v, refs)| {
                let size = copy::tree_size(Path::new(&v.mountpoint))
                    .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
                v.usage_data = Some(VolumeUsage {
                    size,
                    ref_count: refs,
                });
                v
            })
            .collect()
    }
}

/// Makes `<dir>` (0701), `<dir>/_data` (0755) and `<dir>/meta.json`.
fn make_volume_dir(dir: &Path, meta: &Meta) -> Result<(), VolumeError> {
    let what = || format!("error while creating volume root path '{}'", dir.display());
    std::fs::DirBuilder::new()
        .mode(0o701)
        .create(dir)
        .or_else(|e| {
            // Left by a create that did not finish: reuse it.
            if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(io_error(what()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o701))
        .map_err(io_error(what()))?;
    let data = dir.join("_data");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&data)
        .and_then(|()| std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)))
        .map_err(io_error(format!(
            "error while creating volume data path '{}'",
            data.display()
        )))?;
    write_meta(dir, meta)
}

/// Writes `meta.json` atomically (a temporary file, synced, renamed).
fn write_meta(dir: &Path, meta: &Meta) -> Result<(), VolumeError> {
    let what = || "error while persisting volume options".to_string();
    let tmp = dir.join("meta.json.tmp");
    let body = serde_json::to_vec(meta).map_err(|e| VolumeError::Io {
        what: what(),
        source: std::io::Error::other(e),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_error(what()))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(io_error(what()))?;
    drop(f);
    std::fs::rename(&tmp, dir.join("meta.json")).map_err(io_error(what()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A volume's metadata from its directory; a directory with `_data` but
/// no `meta.json` is a volume without options (as dockerd keeps them);
/// anything else is not a volume.
fn load_meta(dir: &Path) -> Option<Meta> {
    let _ = std::fs::remove_file(dir.join("meta.json.tmp"));
    match std::fs::read(dir.join("meta.json")) {
        Ok(bytes) => match serde_json::from_slice::<Meta>(&bytes) {
            Ok(mut m) => {
                if m.driver.is_empty() {
                    m.driver = LOCAL_DRIVER.into();
                }
                Some(m)
            }
            Err(e) => {
                tracing::warn!(
                    "{}: {e}; the volume is listed without options",
                    dir.display()
                );
                Some(legacy_meta(dir))
            }
        },
        Err(_) if dir.join("_data").is_dir() => Some(legacy_meta(dir)),
        Err(_) => None,
    }
}

fn legacy_meta(dir: &Path) -> Meta {
    let created = std::fs::metadata(dir)
        .ok()
        .and_then(|m| {
            chrono::DateTime::from_timestamp(m.ctime(), m.ctime_nsec().try_into().unwrap_or(0))
        })
        .unwrap_or_default();
    Meta {
        driver: LOCAL_DRIVER.into(),
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }
}

#[cfg(test)]
mod tests;
