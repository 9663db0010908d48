//! The engine as the builder's [`Worker`]: `RUN` steps are containers
//! (made from the image with the stage's layers, attached, started,
//! waited for, committed and removed, as Docker's classic builder does),
//! `COPY` writes into the root filesystem of a container that never
//! starts, and the cache is one small file per step key.

use std::io::Read;
use std::path::{Path, PathBuf};

use hafen_api::models::{ContainerConfig as ApiConfig, ContainerCreate, HealthConfig, HostConfig};
use hafen_build::builder::{Base, BuildError, CacheHit, MountSource, RunSpec, Target, Worker};
use hafen_image::ImageConfig;
use hafen_oci::Digest;

use crate::Engine;

/// The label of a build step's containers and short-lived images: what a
/// daemon killed in the middle of a build leaves, the next one removes.
pub(super) const STEP_LABEL: &str = "io.hafen.build.step";

/// The worker of one build.
pub struct EngineWorker<'a> {
    pub(super) engine: &'a Engine,
    /// `<root>/build`.
    pub(super) dir: PathBuf,
}

impl std::fmt::Debug for EngineWorker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineWorker")
            .field("dir", &self.dir)
            .finish()
    }
}

fn fail(e: impl std::fmt::Display) -> BuildError {
    BuildError::new(e.to_string())
}

/// Where the cache keeps the step `key`.
fn cache_file(dir: &Path, key: &str) -> PathBuf {
    dir.join("cache").join(&key[..2.min(key.len())]).join(key)
}

impl EngineWorker<'_> {
    fn digests(layers: &[String]) -> Result<Vec<Digest>, BuildError> {
        layers
            .iter()
            .map(|l| Digest::parse(l).map_err(fail))
            .collect()
    }

    /// A short-lived image of `layers` for a step's container (an ID of
    /// its own, so that builds at the same time do not share it).
    fn step_image(&self, layers: &[String]) -> Result<Digest, BuildError> {
        let config = ImageConfig {
            config: Some(hafen_image::config::ContainerConfig {
                labels: Some([(STEP_LABEL.to_string(), "1".to_string())].into()),
                ..Default::default()
            }),
            comment: format!("hafen build step {}", crate::containers::new_id()),
            ..ImageConfig::default()
        };
        self.engine
            .images()
            .assemble(&Self::digests(layers)?, config)
            .map_err(fail)
    }

    fn drop_image(&self, id: &Digest) {
        if let Err(e) = self.engine.images().delete_untagged(id) {
            tracing::warn!("build: cannot remove the step image {id}: {e}");
        }
    }

    /// The layers of a committed step image, kept for the cache; the
    /// image itself goes.
    fn keep(&self, image: &str) -> Result<Vec<String>, BuildError> {
        let id = Digest::parse(image).map_err(fail)?;
        let images = self.engine.images();
        let layers = images.image_layers(&id).map_err(fail);
        let kept = layers.and_then(|l| {
            if let Some(top) = l.last() {
                images.keep_layers(top.hex(), &l).map_err(fail)?;
            }
            Ok(l)
        });
        self.drop_image(&id);
        Ok(kept?.iter().map(Digest::to_string).collect())
    }

    /// Makes a container of `image` that runs `args` (never started for
    /// file work).
    fn container(
        &self,
        image: &Digest,
        args: Vec<String>,
        spec: Option<&RunSpec>,
        host: HostConfig,
    ) -> Result<String, BuildError> {
        let mut config = ApiConfig {
            labels: [(STEP_LABEL.to_string(), "1".to_string())].into(),
            image: image.to_string(),
            cmd: Some(args),
            entrypoint: Some(Vec::new()),
            attach_stdout: true,
            attach_stderr: true,
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            }),
            ..ApiConfig::default()
        };
        if let Some(s) = spec {
            config.env = s.env.clone();
            config.user = s.user.clone();
            config.working_dir = s.workdir.clone();
        }
        let (id, _) = self
            .engine
            .create_container(
                None,
                ContainerCreate {
                    config,
                    host_config: host,
                    networking_config: None,
                },
            )
            .map_err(fail)?;
        Ok(id)
    }

    fn remove(&self, id: &str) {
        if let Err(e) = self.engine.remove_container(id, true, true) {
            tracing::warn!("build: cannot remove the step container {id}: {e}");
        }
    }

    fn commit(&self, id: &str) -> Result<String, BuildError> {
        self.engine
            .commit_container(id, None, "", "", false, &[], None)
            .map_err(|e| fail(e.message))
    }

    fn cache_mount_dir(
        &self,
        id: &str,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<PathBuf, BuildError> {
        let name = Digest::sha256(id.as_bytes()).hex().to_string();
        let dir = self.dir.join("mounts").join(&name[..32]);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(fail)?;
            let _ = std::os::unix::fs::chown(&dir, Some(uid), Some(gid));
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
        }
        Ok(dir)
    }
}

/// A container's root filesystem, for `COPY`.
struct RootTarget<'a> {
    root: &'a Path,
}

impl Target for RootTarget<'_> {
    fn extract(&self, tar: &mut dyn Read) -> Result<(), String> {
        crate::containers::archive::put_as(
            self.root,
            "/",
            tar,
            false,
            crate::containers::archive::Owner::FromTar,
        )
        .map_err(|e| e.to_string())
    }
}

impl Worker for EngineWorker<'_> {
    fn base(&self, name: &str, _platform: Option<&str>, _pull: bool) -> Result<Base, BuildError> {
        match self.engine.images().container_base(name) {
            Ok(b) => Ok(Base {
                id: b.id.to_string(),
                layers: b.config.rootfs.diff_ids.clone(),
                config: (*b.config).clone(),
            }),
            Err(hafen_image::ImageError::NotFound(_)) => Err(fail(format!(
                "image {name:?} is not here and hafen cannot pull yet (the registry client comes later): load it first (hafen load -i FILE)"
            ))),
            Err(e) => Err(fail(format!("image {name:?}: {e}"))),
        }
    }

    fn cached(&self, key: &str) -> Option<CacheHit> {
        let bytes = std::fs::read(cache_file(&self.dir, key)).ok()?;
        let hit: CacheHit = serde_json::from_slice(&bytes).ok()?;
        if let Some(layers) = &hit.layers {
            let d = Self::digests(layers).ok()?;
            if !self.engine.images().has_layers(&d) {
                return None;
            }
        }
        Some(hit)
    }

    fn remember(&self, key: &str, hit: &CacheHit) {
        let path = cache_file(&self.dir, key);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(hit).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!("build cache: cannot write {}: {e}", path.display());
        }
    }

    fn run(
        &self,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<Vec<String>, BuildError> {
        let mut host = HostConfig {
            network_mode: match spec.network.as_str() {
                "none" => "none".into(),
                "host" => "host".into(),
                _ => String::new(),
            },
            ..HostConfig::default()
        };
        let mut binds = Vec::new();
        let mut tmpfs = std::collections::BTreeMap::new();
        let mut secrets = None;
        for (i, (target, source)) in spec.mounts.iter().enumerate() {
            match source {
                MountSource::Bind { host, readonly } => binds.push(format!(
                    "{}:{target}:{}",
                    host.display(),
                    if *readonly { "ro" } else { "rw" }
                )),
                MountSource::Cache { id, uid, gid, mode } => {
                    let dir = self.cache_mount_dir(id, *uid, *gid, *mode)?;
                    binds.push(format!("{}:{target}:rw", dir.display()));
                }
                MountSource::Tmpfs { size } => {
                    tmpfs.insert(
                        target.clone(),
                        if *size > 0 {
                            format!("size={size}")
                        } else {
                            String::new()
                        },
                    );
                }
                MountSource::Secret {
                    content,
                    uid,
                    gid,
                    mode,
                } => {
                    let dir = match &mut secrets {
                        Some(d) => d,
                        None => secrets.insert(tempfile_in(&self.dir)?),
                    };
                    let f = dir.path().join(format!("secret-{i}"));
                    std::fs::write(&f, content).map_err(fail)?;
                    let _ = std::os::unix::fs::chown(&f, Some(*uid), Some(*gid));
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(*mode));
                    binds.push(format!("{}:{target}:ro", f.display()));
                }
            }
        }
        if !binds.is_empty() {
            host.binds = Some(binds);
        }
        if !tmpfs.is_empty() {
            host.tmpfs = Some(tmpfs);
        }
        if spec.parent.is_empty() {
            return Err(fail(
                "RUN on an empty stage (FROM scratch with no files yet): there is nothing to run",
            ));
        }
        let image = self.in_container(&spec.parent, spec.args.clone(), Some(spec), host, |id| {
            self.run_container(id, output)?;
            self.commit(id)
        })?;
        self.keep(&image)
    }

    fn change(
        &self,
        parent: &[String],
        f: &mut dyn FnMut(&dyn Target) -> Result<(), BuildError>,
    ) -> Result<Vec<String>, BuildError> {
        let image =
            self.in_container(parent, vec!["/bin/true".into()], None, no_network(), |id| {
                self.in_rootfs(id, &mut |root| f(&RootTarget { root }))?;
                self.commit(id)
            })?;
        self.keep(&image)
    }

    fn with_rootfs(
        &self,
        layers: &[String],
        f: &mut dyn FnMut(&Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        if layers.is_empty() {
            let empty = tempfile_in(&self.dir)?;
            return f(empty.path());
        }
        self.in_container(layers, vec!["/bin/true".into()], None, no_network(), |id| {
            self.in_rootfs(id, f)
        })
    }

    fn assemble(&self, layers: &[String], config: ImageConfig) -> Result<String, BuildError> {
        let id = self
            .engine
            .images()
            .assemble(&Self::digests(layers)?, config)
            .map_err(fail)?;
        Ok(id.to_string())
    }

    fn now(&self) -> String {
        crate::containers::now_rfc3339()
    }
}

/// A host config without network (file work).
fn no_network() -> HostConfig {
    HostConfig {
        network_mode: "none".into(),
        ..HostConfig::default()
    }
}

impl EngineWorker<'_> {
    /// Runs `f` with a container of the layers `layers` (made from a
    /// short-lived image), which is removed afterwards, as is the image.
    fn in_container<T>(
        &self,
        layers: &[String],
        args: Vec<String>,
        spec: Option<&RunSpec>,
        host: HostConfig,
        f: impl FnOnce(&str) -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        let image = self.step_image(layers)?;
        let out = self.container(&image, args, spec, host).and_then(|id| {
            let out = f(&id);
            self.remove(&id);
            out
        });
        self.drop_image(&image);
        out
    }

    /// Runs `f` on the root filesystem of the (not running) container `id`.
    fn in_rootfs(
        &self,
        id: &str,
        f: &mut dyn FnMut(&Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let ctr = self.engine.containers.find(id).map_err(fail)?;
        let mut inner = Ok(());
        self.engine
            .with_rootfs(&ctr, |root| {
                inner = f(root);
                Ok(())
            })
            .map_err(|e| fail(e.message))?;
        inner
    }

    /// Attaches to the container, starts it, sends its output to
    /// `output` and waits for it; a non-zero exit is an error with the
    /// code.
    fn run_container(&self, id: &str, output: &mut dyn FnMut(&[u8])) -> Result<(), BuildError> {
        let (stream, _) = self.engine.attach(id, (false, true, true)).map_err(fail)?;
        self.engine.start_container(id).map_err(fail)?;
        let stream = match stream {
            hafen_api::server::AttachStream::Ready(s) => Some(s),
            hafen_api::server::AttachStream::Pending(rx) => rx.blocking_recv().ok().flatten(),
            hafen_api::server::AttachStream::Closed => None,
        };
        let mut tail: Vec<u8> = Vec::new();
        if let Some(mut s) = stream {
            let mut header = [0u8; 8];
            loop {
                if s.read_exact(&mut header).is_err() {
                    break;
                }
                let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                let mut buf = vec![0u8; len];
                if s.read_exact(&mut buf).is_err() {
                    break;
                }
                output(&buf);
                tail.extend_from_slice(&buf);
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 4096);
                }
            }
        }
        let ctr = self.engine.containers.find(id).map_err(fail)?;
        let mut rec = ctr.rec();
        while rec.state.status.is_running()
            || rec.state.status == crate::containers::record::Status::Created
        {
            let (r, _) = ctr
                .cond
                .wait_timeout(rec, std::time::Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner());
            rec = r;
        }
        let code = rec.state.exit_code;
        let cmd = {
            let mut all = vec![rec.path.clone()];
            all.extend(rec.args.iter().cloned());
            all.join(" ")
        };
        let error = rec.state.error.clone();
        drop(rec);
        if code != 0 || !error.is_empty() {
            let text = String::from_utf8_lossy(&tail);
            let last: Vec<&str> = text.lines().rev().take(5).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            let mut message =
                format!("process \"{cmd}\" did not complete successfully: exit code: {code}");
            if !error.is_empty() {
                message.push_str(&format!(" ({error})"));
            }
            if !last.is_empty() {
                message.push_str(&format!("; its last output:\n{}", last.join("\n")));
            }
            return Err(BuildError {
                line: None,
                message,
                code: if code == 0 {
                    1
                } else {
                    i32::try_from(code).unwrap_or(1)
                },
            });
        }
        Ok(())
    }
}

/// A temporary directory below `<dir>/tmp`, removed when dropped. A
/// build holds one while it runs: what is left there after a daemon was
/// killed tells the next daemon to clean up.
pub(super) fn tempfile_in(dir: &Path) -> Result<tempfile::TempDir, BuildError> {
    let base = dir.join("tmp");
    std::fs::create_dir_all(&base).map_err(fail)?;
    tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&base)
        .map_err(fail)
}
