//! Images: the image store on top of the content store, the metadata
//! database and the snapshotter.
//!
//! An image is its config (whose digest is its ID), the manifest that lists
//! its layers, its names (tags, `repo@digest`s) and its unpacked layers
//! (snapshots keyed by chain ID). [`ImageStore`] offers what `docker image …`
//! does: list, inspect, history, tag, remove, prune, import, load and save.
//!
//! Writers hold the store's GC lock shared; garbage collection holds it
//! exclusively, so it never sees an operation half done. Every operation
//! that writes blobs or snapshots does so under a lease and makes its names
//! and records in one database transaction at the end: a failure (or a
//! crash, cleaned up at the next start) leaves the store as it was.

pub mod archive;
pub mod assemble;
pub mod changes;
pub mod commit;
pub mod config;
mod early;
pub mod filters;
mod import;
mod manifest;
mod remove;
mod resolve;
mod unpack;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use hafen_oci::reference::ReferenceError;
use hafen_oci::{Digest, Reference};
use hafen_snapshot::{ApplyError, SnapshotError, Snapshotter};
use hafen_store::meta::{ImageRecord, Resource};
use hafen_store::{ContentError, ContentStore, Db, DbError};

pub use config::ImageConfig;
pub use filters::ListFilters;
pub use import::ImportOptions;
pub use remove::DeleteItem;

/// The largest config or manifest hafen reads (they are small; a huge one
/// is an attack).
pub const MAX_JSON_BLOB: u64 = 8 << 20;

/// Image store failures.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image by that name or ID (the text is what Docker shows).
    #[error("No such image: {0}")]
    NotFound(String),
    /// The operation conflicts with the image's state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A reference that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Bad arguments (filters, changes, prefixes).
    #[error("{0}")]
    Invalid(String),
    /// An archive or manifest that is not what it claims to be.
    #[error("invalid archive: {0}")]
    Archive(String),
    /// A layer whose content does not match the config's diff ID.
    #[error("invalid diffID for layer {index}: expected {expected}, got {actual}")]
    DiffId {
        /// The layer's position.
        index: usize,
        /// What the config says.
        expected: String,
        /// What the layer is.
        actual: String,
    },
    /// The content store.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The metadata database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Snapshots.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A layer could not be applied.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Results of image operations.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// Something that happened to an image, for `/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// `tag`, `untag`, `delete`, `import`, `load`, `save`, `prune`.
    pub action: &'static str,
    /// The image ID or name the event is about.
    pub id: String,
    /// Extra attributes (`name`, image labels, `reclaimed`).
    pub attributes: BTreeMap<String, String>,
}

/// Receives image events.
pub type EventSink = Arc<dyn Fn(ImageEvent) + Send + Sync>;

/// The platform images are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub architecture: String,
    /// `v8` and the like.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform hafen runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: (architecture == "arm64").then(|| "v8".to_string()),
        }
    }
}

/// A summary of an image, as `docker images` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The image ID.
    pub id: Digest,
    /// The parent image, for local builds.
    pub parent: Option<Digest>,
    /// Tags, familiar (`busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// Digests, familiar (`busybox@sha256:…`), sorted.
    pub repo_digests: Vec<String>,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Total size of the layers.
    pub size: u64,
    /// Bytes of layers shared with other images.
    pub shared_size: u64,
    /// Labels of the image's config.
    pub labels: BTreeMap<String, String>,
    /// The chain IDs of the layers (bottom first).
    pub chain: Vec<Digest>,
}

/// Everything about one image, as `docker image inspect` shows it.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    /// The summary.
    pub summary: ImageSummary,
    /// The parsed config.
    pub config: Arc<ImageConfig>,
    /// The manifest (or index) the image came from.
    pub target: hafen_store::meta::Target,
    /// When it was last tagged (ns since the epoch).
    pub last_tag_time: Option<i64>,
    /// The snapshotter's name.
    pub snapshotter: &'static str,
    /// The directories of the layers, top first (for `GraphDriver.Data`).
    pub layer_dirs: Vec<String>,
}

/// What a container is made from.
#[derive(Debug, Clone)]
pub struct ContainerBase {
    /// The image ID.
    pub id: Digest,
    /// Its config.
    pub config: Arc<ImageConfig>,
    /// The snapshot key of its top layer.
    pub chain_id: Option<String>,
}

/// One step of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image that step made, if known here (`<missing>` otherwise).
    pub id: Option<Digest>,
    /// When (Unix seconds).
    pub created: i64,
    /// The command.
    pub created_by: String,
    /// Tags of that image.
    pub tags: Vec<String>,
    /// Bytes the step added.
    pub size: u64,
    /// The comment.
    pub comment: String,
}

/// Space used by images, for `docker system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUsage {
    /// The images, with shared sizes.
    pub images: Vec<ImageSummary>,
    /// Bytes of all layers, each counted once.
    pub layers_size: u64,
}

/// The image store.
pub struct ImageStore {
    content: ContentStore,
    db: Arc<Db>,
    snapshots: Arc<dyn Snapshotter>,
    /// Shared by writers, exclusive for garbage collection.
    gc_lock: RwLock<()>,
    /// Parsed configs by image ID (configs never change).
    configs: Mutex<HashMap<Digest, Arc<ImageConfig>>>,
    events: EventSink,
    platform: Platform,
    /// The version written into configs made here.
    engine_version: String,
    lease_counter: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("content", &self.content.root())
            .field("snapshotter", &self.snapshots.name())
            .finish()
    }
}

/// A lease for one operation: what it makes is safe from the collector
/// until it ends; ending it without making names leaves garbage that the
/// next collection removes.
pub(crate) struct Lease<'a> {
    store: &'a ImageStore,
    pub id: String,
}

impl Lease<'_> {
    pub fn hold(&self, kind: Resource, key: &str) -> Result<()> {
        self.store
            .db
            .write(|tx| tx.lease_add(&self.id, kind, key))
            .map_err(ImageError::from)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.db.write(|tx| tx.delete_lease(&self.id)) {
            tracing::warn!("cannot end lease {}: {e}", self.id);
        }
    }
}

impl ImageStore {
    /// Opens the store: content under `root/content`, the database
    /// `root/meta.db`, snapshots under `root/snapshots/<snapshotter>`.
    /// Leftovers of an interrupted daemon (leases, ingests, unreferenced
    /// blobs and snapshots) are cleaned up.
    pub fn open(
        root: &Path,
        snapshotter: Option<&str>,
        events: EventSink,
        engine_version: &str,
    ) -> Result<ImageStore> {
        std::fs::create_dir_all(root)
            .map_err(io_err(format!("cannot create {}", root.display())))?;
        let content = ContentStore::open(&root.join("content"))?;
        let db = Arc::new(Db::open(&root.join("meta.db"))?);
        let snapshots: Arc<dyn Snapshotter> = match snapshotter {
            Some("native") => Arc::new(hafen_snapshot::native::Native::open(
                &root.join("snapshots/native"),
                db.clone(),
            )?),
            Some("overlayfs") => Arc::new(hafen_snapshot::overlay::Overlay::open(
                &root.join("snapshots/overlayfs"),
                db.clone(),
            )?),
            Some(other) => {
                return Err(ImageError::Invalid(format!(
                    "unknown snapshotter {other:?}: use overlayfs or native"
                )));
            }
            None => {
                let overlay_root = root.join("snapshots/overlayfs");
                std::fs::create_dir_all(&overlay_root)
                    .map_err(io_err(format!("cannot create {}", overlay_root.display())))?;
                if hafen_snapshot::overlay::supported(&overlay_root) {
                    Arc::new(hafen_snapshot::overlay::Overlay::open(
                        &overlay_root,
                        db.clone(),
                    )?)
                } else {
                    tracing::warn!(
                        "overlayfs is not usable here: images are stored as full copies"
                    );
                    Arc::new(hafen_snapshot::native::Native::open(
                        &root.join("snapshots/native"),
                        db.clone(),
                    )?)
                }
            }
        };
        let store = ImageStore {
            content,
            db,
            snapshots,
            gc_lock: RwLock::new(()),
            configs: Mutex::default(),
            events,
            platform: Platform::host(),
            engine_version: engine_version.to_string(),
            lease_counter: std::sync::atomic::AtomicU64::new(0),
        };
        store.recover()?;
        Ok(store)
    }

    /// Start-up cleaning: no operation of a previous daemon is still
    /// running, so its leases and ingests go, and then whatever nothing
    /// refers to.
    fn recover(&self) -> Result<()> {
        // The build cache's leases are meant to outlive the daemon.
        let leases: Vec<String> = self
            .db
            .read(|tx| tx.leases())?
            .into_iter()
            .filter(|l| !l.starts_with(assemble::BUILD_CACHE_LEASE))
            .collect();
        if !leases.is_empty() {
            tracing::info!("ending {} lease(s) of an interrupted daemon", leases.len());
            self.db.write(|tx| {
                for l in &leases {
                    tx.delete_lease(l)?;
                }
                Ok::<_, DbError>(())
            })?;
        }
        let removed = self.content.clean_ingests(|_| false)?;
        if removed > 0 {
            tracing::info!("removed {removed} unfinished ingest(s)");
        }
        // Active snapshots of interrupted unpacks (containers come later
        // and keep theirs).
        let stale: Vec<String> = self
            .db
            .read(|tx| tx.snapshots())?
            .into_iter()
            .filter(|s| s.kind == "active" && s.key.starts_with(unpack::EXTRACT_PREFIX))
            .map(|s| s.key)
            .collect();
        for key in stale {
            self.snapshots.remove(&key)?;
        }
        self.collect_garbage()?;
        let swept = self.snapshots.sweep_orphans()?;
        if swept > 0 {
            tracing::info!("removed {swept} snapshot directories without a record");
        }
        Ok(())
    }

    /// The snapshotter in use.
    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The platform images are unpacked for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub(crate) fn lease(&self, what: &str) -> Result<Lease<'_>> {
        let n = self
            .lease_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{what}-{}-{n}", std::process::id());
        self.db.write(|tx| tx.create_lease(&id))?;
        Ok(Lease { store: self, id })
    }

    pub(crate) fn emit(
        &self,
        action: &'static str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        (self.events)(ImageEvent {
            action,
            id: id.to_string(),
            attributes,
        });
    }

    /// Event attributes: the name and the image's labels.
    pub(crate) fn event_attributes(&self, id: &Digest, name: &str) -> BTreeMap<String, String> {
        let mut attrs = self.config(id).map(|c| c.labels()).unwrap_or_default();
        attrs.insert("name".into(), name.to_string());
        attrs
    }

    /// The parsed config of an image.
    pub fn config(&self, id: &Digest) -> Result<Arc<ImageConfig>> {
        if let Some(c) = self
            .configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(c.clone());
        }
        let bytes = self.content.read_all(id, MAX_JSON_BLOB)?;
        let config = Arc::new(
            ImageConfig::parse(&bytes)
                .map_err(|e| ImageError::Archive(format!("image config {id}: {e}")))?,
        );
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), config.clone());
        Ok(config)
    }

    /// The chain IDs of an image's layers.
    pub(crate) fn chain_of(&self, config: &ImageConfig) -> Result<Vec<Digest>> {
        let diff_ids = diff_ids(config)?;
        Ok(hafen_snapshot::chain_ids(&diff_ids))
    }

    fn summarize(
        &self,
        record: &ImageRecord,
        tags: &HashMap<Digest, Vec<String>>,
        digests: &HashMap<Digest, Vec<String>>,
        sizes: &HashMap<String, u64>,
        layer_users: &HashMap<Digest, usize>,
    ) -> Result<ImageSummary> {
        let config = self.config(&record.id)?;
        let chain = self.chain_of(&config)?;
        let size = chain
            .iter()
            .map(|c| sizes.get(&c.to_string()).copied().unwrap_or(0))
            .sum();
        let shared_size = chain
            .iter()
            .filter(|c| layer_users.get(*c).copied().unwrap_or(0) > 1)
            .map(|c| sizes.get(&c.to_string()).copied().unwrap_or(0))
            .sum();
        Ok(ImageSummary {
            id: record.id.clone(),
            parent: record.parent.clone(),
            repo_tags: tags.get(&record.id).cloned().unwrap_or_default(),
            repo_digests: digests.get(&record.id).cloned().unwrap_or_default(),
            created: config.created_unix(),
            size,
            shared_size,
            labels: config.labels(),
            chain,
        })
    }

    /// Every image, newest first, with the filters applied.
    pub fn list(&self, filters: &ListFilters, all: bool) -> Result<Vec<ImageSummary>> {
        let all_summaries = self.summaries()?;
        filters::apply(self, all_summaries, filters, all)
    }

    /// All images (unfiltered), newest first.
    pub(crate) fn summaries(&self) -> Result<Vec<ImageSummary>> {
        let (records, tag_rows, digest_rows, snapshots) = self.db.read(|tx| {
            Ok::<_, DbError>((
                tx.images()?,
                tx.all_tags()?,
                tx.all_repo_digests()?,
                tx.snapshots()?,
            ))
        })?;
        let mut tags: HashMap<Digest, Vec<String>> = HashMap::new();
        for (name, id) in tag_rows {
            tags.entry(id).or_default().push(familiar(&name));
        }
        let mut digests: HashMap<Digest, Vec<String>> = HashMap::new();
        for (name, id) in digest_rows {
            digests.entry(id).or_default().push(familiar(&name));
        }
        for list in tags.values_mut().chain(digests.values_mut()) {
            list.sort();
        }
        let sizes: HashMap<String, u64> = snapshots
            .into_iter()
            .filter(|s| s.kind == "committed")
            .map(|s| (s.key, s.size.unwrap_or(0)))
            .collect();
        let mut layer_users: HashMap<Digest, usize> = HashMap::new();
        let mut chains = Vec::new();
        for r in &records {
            let chain = self
                .config(&r.id)
                .and_then(|c| self.chain_of(&c))
                .unwrap_or_default();
            for c in &chain {
                *layer_users.entry(c.clone()).or_default() += 1;
            }
            chains.push(chain);
        }
        let mut out = Vec::new();
        for r in &records {
            match self.summarize(r, &tags, &digests, &sizes, &layer_users) {
                Ok(s) => out.push(s),
                Err(e) => tracing::warn!("image {} is damaged: {e}", r.id),
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One image in full.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let record = self.resolve(name)?.record;
        let summary = self
            .summaries()?
            .into_iter()
            .find(|s| s.id == record.id)
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        let config = self.config(&record.id)?;
        let mut layer_dirs = Vec::new();
        for c in summary.chain.iter().rev() {
            if let Ok(dir) = self.snapshots.dir(&c.to_string()) {
                layer_dirs.push(dir.display().to_string());
            }
        }
        Ok(ImageDetails {
            summary,
            config,
            target: record.target,
            last_tag_time: record.last_tag_time,
            snapshotter: self.snapshots.name(),
            layer_dirs,
        })
    }

    /// What a container needs of an image: its ID, its config and the key
    /// of its top snapshot (`None` for an image without layers).
    pub fn container_base(&self, name: &str) -> Result<ContainerBase> {
        let record = self.resolve(name)?.record;
        let config = self.config(&record.id)?;
        Ok(ContainerBase {
            id: record.id,
            config,
            chain_id: record.chain_id,
        })
    }

    /// The history of an image, newest step first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let record = self.resolve(name)?.record;
        let config = self.config(&record.id)?;
        let chain = self.chain_of(&config)?;
        let sizes: HashMap<String, u64> = self
            .db
            .read(|tx| tx.snapshots())?
            .into_iter()
            .map(|s| (s.key, s.size.unwrap_or(0)))
            .collect();
        let tags = self
            .db
            .read(|tx| tx.tags_of(&record.id))?
            .iter()
            .map(|t| familiar(t))
            .collect::<Vec<_>>();
        let mut items = Vec::new();
        let mut layer = 0usize;
        let history: Vec<config::History> = if config.history.is_empty() {
            // No history: one step per layer.
            chain.iter().map(|_| config::History::default()).collect()
        } else {
            config.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chain
                    .get(layer)
                    .and_then(|c| sizes.get(&c.to_string()))
                    .copied()
                    .unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: None,
                created: h
                    .created
                    .as_deref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map_or(0, |t| t.timestamp()),
                created_by: h.created_by.clone(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone(),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = Some(record.id.clone());
            top.tags = tags;
        }
        Ok(items)
    }

    /// Tags `source` as `target` (a reference; `latest` if it has no tag).
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let image = self.resolve(source)?.record;
        let target = Reference::parse_normalized(target)?;
        if target.digest().is_some() {
            return Err(ImageError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        if target.path() == "library/sha256" || target.familiar_name() == "sha256" {
            return Err(ImageError::Invalid(
                "refusing to create an ambiguous tag using digest algorithm as name".into(),
            ));
        }
        let target = target.with_default_tag();
        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        self.db.write(|tx| {
            tx.set_tag(
                &target.to_string(),
                &image.id,
                Some(hafen_store::meta::now_nanos()),
            )
        })?;
        self.emit(
            "tag",
            &image.id.to_string(),
            self.event_attributes(&image.id, &target.familiar()),
        );
        Ok(())
    }

    /// Space used, for `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.summaries()?;
        let snapshots = self.db.read(|tx| tx.snapshots())?;
        let live: HashSet<String> = images
            .iter()
            .flat_map(|i| i.chain.iter().map(Digest::to_string))
            .collect();
        let layers_size = snapshots
            .iter()
            .filter(|s| s.kind == "committed" && live.contains(&s.key))
            .map(|s| s.size.unwrap_or(0))
            .sum();
        Ok(DiskUsage {
            images,
            layers_size,
        })
    }

    /// Removes what nothing refers to; returns the removed snapshot keys
    /// (children first) and the bytes of their layers.
    pub fn collect_garbage(&self) -> Result<(Vec<String>, u64)> {
        let _guard = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        self.collect_locked()
    }

    pub(crate) fn collect_locked(&self) -> Result<(Vec<String>, u64)> {
        let on_disk = self.content.walk()?;
        let plan = self.db.read(|tx| hafen_store::gc::plan(tx, &on_disk))?;
        let mut freed = 0;
        let mut removed = Vec::new();
        for key in &plan.snapshots {
            let size = self.snapshots.stat(key)?.and_then(|s| s.size).unwrap_or(0);
            match self.snapshots.remove(key) {
                Ok(()) => {
                    freed += size;
                    removed.push(key.clone());
                }
                Err(e) => tracing::warn!("cannot remove snapshot {key}: {e}"),
            }
        }
        for (digest, _) in &plan.content {
            if let Err(e) = self.content.delete(digest) {
                tracing::warn!("cannot remove {digest}: {e}");
                continue;
            }
            self.configs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(digest);
            self.db.write(|tx| {
                tx.delete_content_refs(digest)?;
                tx.delete_layer(digest)
            })?;
        }
        Ok((removed, freed))
    }
}

/// The diff IDs of a config, validated.
pub(crate) fn diff_ids(config: &ImageConfig) -> Result<Vec<Digest>> {
    config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| {
            Digest::parse(d)
                .map_err(|e| ImageError::Archive(format!("bad diff_id in image config: {e}")))
        })
        .collect()
}

/// A stored (fully qualified) name as Docker shows it.
pub(crate) fn familiar(stored: &str) -> String {
    Reference::parse_qualified(stored)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| stored.to_string())
}
