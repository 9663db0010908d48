#![recursion_limit = "256"]
//! The engine: everything the daemon owns, behind the Docker Engine API.
//!
//! For now that is the image store, the event log and what `/info`,
//! `/version` and `/system/df` report; containers, volumes and networks
//! join later. [`Engine`] implements [`hafen_api::server::Backend`].

mod backend;
mod build;
pub mod containers;
mod containers_backend;
pub mod events;
pub mod networks;
mod networks_backend;
pub mod system;
pub mod volumes;
mod volumes_backend;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_image::ImageStore;

pub use events::EventBus;

/// The version of hafen.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Engine failures (at start-up; requests report [`hafen_api::ApiError`]s).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The image store.
    #[error(transparent)]
    Image(#[from] hafen_image::ImageError),
    /// Files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state (`/var/lib/hafen`).
    pub root: PathBuf,
    /// Runtime state (`/run/hafen`).
    pub run_root: PathBuf,
    /// `overlayfs` or `native`; the best available if unset.
    pub snapshotter: Option<String>,
    /// Debug logging is on.
    pub debug: bool,
    /// How networks are set up.
    pub network: networks::NetConfig,
}

/// The engine.
pub struct Engine {
    images: ImageStore,
    /// The containers.
    pub containers: containers::Containers,
    volumes: volumes::VolumeStore,
    networks: Arc<networks::Networks>,
    /// The engine itself, for threads that outlive a request.
    me: std::sync::OnceLock<std::sync::Weak<Engine>>,
    events: Arc<EventBus>,
    config: Config,
    id: String,
    /// File digests of build contexts, kept between builds.
    build_memo: hafen_build::copy::HashMemo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("root", &self.config.root)
            .finish()
    }
}

impl Engine {
    /// Opens the engine's state under `config.root` (made if missing).
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.root).map_err(|source| EngineError::Io {
            what: format!("cannot create {}", config.root.display()),
            source,
        })?;
        let events = Arc::new(EventBus::new());
        let sink = events.clone();
        let images = ImageStore::open(
            &config.root.join("image"),
            config.snapshotter.as_deref(),
            Arc::new(move |e| sink.publish_image(e)),
            VERSION,
        )?;
        let id = engine_id(&config.root)?;
        let containers =
            containers::Containers::open(&config.root, &config.run_root).map_err(|source| {
                EngineError::Io {
                    what: "cannot open the containers".into(),
                    source,
                }
            })?;
        let volumes = volumes::VolumeStore::open(&config.root).map_err(|e| EngineError::Io {
            what: "cannot open the volumes".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let networks =
            networks::Networks::open(&config.root, config.network.clone()).map_err(|source| {
                EngineError::Io {
                    what: "cannot open the networks".into(),
                    source,
                }
            })?;
        Ok(Engine {
            images,
            containers,
            volumes,
            networks: Arc::new(networks),
            me: std::sync::OnceLock::new(),
            events,
            config,
            id,
            build_memo: Default::default(),
        })
    }

    /// Starts what runs in the background (the shims' monitor) and finds
    /// the containers of a previous daemon again. Call once, with the
    /// engine in its final `Arc`.
    pub fn start(self: &Arc<Self>) -> Result<(), EngineError> {
        let _ = self.me.set(Arc::downgrade(self));
        let weak = Arc::downgrade(self);
        self.containers
            .monitor
            .run(move |id| {
                if let Some(engine) = weak.upgrade() {
                    engine.on_shim_exit(&id);
                }
            })
            .map_err(|source| EngineError::Io {
                what: "cannot start the shim monitor".into(),
                source,
            })?;
        self.recover_containers();
        self.clean_build_leftovers();
        self.networks.sweep_addresses();
        if let Err(e) = self.networks.bring_up() {
            tracing::warn!("networks: {e}");
        }
        Ok(())
    }

    /// A weak handle to the engine (set by [`Engine::start`]).
    pub fn me(&self) -> std::sync::Weak<Engine> {
        self.me.get().cloned().unwrap_or_default()
    }

    /// The volumes.
    pub fn volumes(&self) -> &volumes::VolumeStore {
        &self.volumes
    }

    /// The networks.
    pub fn networks(&self) -> &Arc<networks::Networks> {
        &self.networks
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The event log.
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The daemon's ID: made once, kept in `<root>/engine-id`.
fn engine_id(root: &Path) -> Result<String, EngineError> {
    let path = root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .map_err(|source| EngineError::Io {
            what: "cannot make an engine ID".into(),
            source,
        })?;
    std::fs::write(&path, &id).map_err(|source| EngineError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })?;
    Ok(id)
}
