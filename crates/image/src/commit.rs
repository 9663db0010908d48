//! `commit`: a new image from a parent image and one more layer (a
//! container's changes), as dockerd's `CommitImage` makes it.
//!
//! The layer tar is read once: stored as an uncompressed blob (its digest
//! is its diff ID) and applied into a snapshot on top of the parent's, at
//! the same time. The new config is the parent's with the given container
//! configuration, the parent's history plus one entry (the container's
//! command as `created_by`), and the parent's diff IDs plus the new one;
//! an empty layer (no changes) adds only an `empty_layer` history entry,
//! as in dockerd. The parent is recorded, so that `docker history` and
//! `rmi` see the image as built locally.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use hafen_oci::{Digest, Reference};
use hafen_snapshot::SnapshotError;
use hafen_snapshot::apply::{Options, apply};
use hafen_store::meta::{ImageRecord, LayerRecord, Resource, Target, now_nanos};
use serde_json::Value;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::manifest::{self, Descriptor, Manifest};
use crate::{ImageError, ImageStore, Lease, Result, changes};

/// The diff ID of an empty layer (a tar of only its end marker).
pub const EMPTY_LAYER: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What `commit` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The name to give the image (`repo[:tag]`), if any.
    pub reference: Option<String>,
    /// The commit message (the history entry's comment).
    pub comment: String,
    /// The author.
    pub author: String,
    /// The new image's container configuration (`None`: the parent's);
    /// the caller merges the container's in (see [`merge_config`]).
    pub config: Option<ContainerConfig>,
    /// Dockerfile instructions applied to that configuration
    /// (`CMD ["sh"]`).
    pub changes: Vec<String>,
    /// The container's ID (the config's `container`).
    pub container_id: String,
    /// The container's configuration (the config's `container_config`).
    pub container_config: Option<Value>,
    /// The history entry's `created_by` (dockerd: the container's command,
    /// joined with spaces).
    pub created_by: String,
}

/// dockerd's `merge`: fills what the configuration given for a commit
/// (`user`) leaves out from the container's (`base`): user, working
/// directory, stop signal, command and entrypoint when both are unset,
/// environment variables, labels, ports and volumes it does not have, and
/// the health check's unset fields.
pub fn merge_config(user: &mut ContainerConfig, base: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (port, v) in theirs {
                mine.entry(port.clone()).or_insert_with(|| v.clone());
            }
        }
        (mine, theirs) => {
            if mine.as_ref().is_none_or(BTreeMap::is_empty) {
                *mine = theirs.clone();
            }
        }
    }
    match &mut user.env {
        Some(mine) if !mine.is_empty() => {
            for entry in base.env.iter().flatten() {
                let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
                let found = mine
                    .iter()
                    .any(|u| u.split_once('=').map_or(u.as_str(), |(k, _)| k) == key);
                if !found {
                    mine.push(entry.clone());
                }
            }
        }
        mine => *mine = base.env.clone(),
    }
    let labels = user.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if let Some(theirs) = &base.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(theirs.clone()),
            Some(Value::Object(mine)) => {
                for key in [
                    "Test",
                    "Interval",
                    "Timeout",
                    "StartPeriod",
                    "StartInterval",
                    "Retries",
                ] {
                    let unset = match mine.get(key) {
                        None | Some(Value::Null) => true,
                        Some(Value::Array(a)) => a.is_empty(),
                        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
                        Some(_) => false,
                    };
                    if unset && let Some(v) = theirs.get(key) {
                        mine.insert(key.to_string(), v.clone());
                    }
                }
            }
            Some(_) => {}
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.insert(k.clone(), v.clone());
            }
        }
        (mine, theirs) => {
            if mine.as_ref().is_none_or(BTreeMap::is_empty) {
                *mine = theirs.clone();
            }
        }
    }
    if user.stop_signal.as_deref().is_none_or(str::is_empty) {
        user.stop_signal = base.stop_signal.clone();
    }
}

/// Copies what is read to a writer as well.
struct Tee<R, W> {
    reader: R,
    writer: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.writer.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Docker's (uncompressed or gzip) layer types; anything else makes the
/// new manifest an OCI one.
fn is_docker_layer(media_type: &str) -> bool {
    media_type == manifest::DOCKER_LAYER || media_type == manifest::DOCKER_LAYER_GZIP
}

impl ImageStore {
    /// Makes an image of `parent` (none: from scratch) plus the layer tar
    /// read from `layer_tar` (uncompressed); returns its ID.
    pub fn commit(
        &self,
        parent: Option<&Digest>,
        layer_tar: impl Read,
        opts: &CommitOptions,
    ) -> Result<Digest> {
        // Everything that can be checked before reading.
        let reference = opts
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| {
                let r = Reference::parse_normalized(r)?;
                if r.digest().is_some() {
                    return Err(ImageError::Invalid(
                        "cannot commit to a digest reference".into(),
                    ));
                }
                Ok(r.with_default_tag())
            })
            .transpose()?;
        let parent_record = match parent {
            Some(id) => Some(
                self.db
                    .read(|tx| tx.image(id))?
                    .ok_or_else(|| ImageError::NotFound(id.to_string()))?,
            ),
            None => None,
        };
        let parent_config = match &parent_record {
            Some(r) => (*self.config(&r.id)?).clone(),
            None => ImageConfig {
                architecture: self.platform.architecture.clone(),
                os: self.platform.os.clone(),
                variant: self.platform.variant.clone().unwrap_or_default(),
                ..ImageConfig::default()
            },
        };
        let mut container = opts
            .config
            .clone()
            .or_else(|| parent_config.config.clone())
            .unwrap_or_default();
        for change in &opts.changes {
            changes::apply(&mut container, change)
                .map_err(|e| ImageError::Invalid(e.to_string()))?;
        }
        let parent_diff_ids = crate::diff_ids(&parent_config)?;

        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        // The parent's layer blobs, for the new manifest.
        let mut layers = self.layer_descriptors(&parent_diff_ids)?;
        let docker_types = layers.iter().all(|l| is_docker_layer(&l.media_type));
        let layer_type = if docker_types {
            manifest::DOCKER_LAYER
        } else {
            manifest::OCI_LAYER
        };

        let lease = self.lease("commit")?;
        let key = format!("{}{}-0", crate::unpack::EXTRACT_PREFIX, lease.id);
        lease.hold(Resource::Snapshot, &key)?;
        lease.hold(Resource::Ingest, &lease.id)?;
        let parent_chain = parent_record.as_ref().and_then(|r| r.chain_id.clone());
        self.snapshots.prepare(&key, parent_chain.as_deref())?;
        let result = (|| -> Result<(Digest, u64, u64)> {
            let target = self.snapshots.apply_target(&key)?;
            let writer = self.content.writer(&lease.id, None, None)?;
            let mut tee = Tee {
                reader: layer_tar,
                writer,
            };
            let applied = apply(
                &mut tee,
                &target.dir,
                &Options {
                    whiteouts: target.whiteouts,
                    lowers: &target.lowers,
                    chown: true,
                },
            )?;
            let diff_size = tee.writer.offset();
            let blob = tee.writer.commit()?;
            lease.hold(Resource::Content, &blob.to_string())?;
            Ok((blob, diff_size, applied.size))
        })();
        let (blob, diff_size, size) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = self.snapshots.remove(&key);
                let _ = self.content.abort(&lease.id);
                return Err(e);
            }
        };
        let empty = blob.to_string() == EMPTY_LAYER;
        let mut diff_ids = parent_diff_ids.clone();
        let chain_key = if empty {
            self.snapshots.remove(&key)?;
            parent_chain
        } else {
            diff_ids.push(blob.clone());
            let chain = hafen_snapshot::chain_ids(&diff_ids)
                .last()
                .map(Digest::to_string)
                .unwrap_or_else(|| blob.to_string());
            lease.hold(Resource::Snapshot, &chain)?;
            match self.snapshots.commit(&chain, &key, Some(size)) {
                Ok(_) => {}
                Err(SnapshotError::Exists(_)) => self.snapshots.remove(&key)?,
                Err(e) => return Err(e.into()),
            }
            layers.push(Descriptor {
                media_type: layer_type.into(),
                digest: blob.clone(),
                size: diff_size,
                annotations: Default::default(),
                platform: None,
            });
            Some(chain)
        };

        let created = crate::import::rfc3339_now();
        let mut history = parent_config.history.clone();
        history.push(History {
            created: Some(created.clone()),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: empty,
        });
        let config = ImageConfig {
            architecture: parent_config.architecture.clone(),
            comment: String::new(),
            config: Some(container),
            container_config: opts.container_config.clone(),
            container: opts.container_id.clone(),
            created: Some(created),
            author: opts.author.clone(),
            docker_version: self.engine_version.clone(),
            history,
            os: parent_config.os.clone(),
            os_version: parent_config.os_version.clone(),
            variant: parent_config.variant.clone(),
            parent: String::new(),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
            },
        };
        let new_layer = (!empty).then(|| LayerRecord {
            blob: blob.clone(),
            diff_id: blob.clone(),
            media_type: layer_type.into(),
            diff_size,
        });
        let parent_id = parent_record.as_ref().map(|r| r.id.clone());
        self.write_image(
            &lease,
            &config,
            &layers,
            new_layer.as_ref(),
            chain_key,
            parent_id,
            reference.as_ref(),
        )
    }

    /// The descriptors of the blobs of the layers `diff_ids` (each one
    /// the store has).
    pub(crate) fn layer_descriptors(&self, diff_ids: &[Digest]) -> Result<Vec<Descriptor>> {
        let mut layers = Vec::new();
        for diff_id in diff_ids {
            let records = self.db.read(|tx| tx.layer_blobs(diff_id))?;
            let record = records
                .into_iter()
                .find(|r| self.content.contains(&r.blob))
                .ok_or_else(|| {
                    ImageError::Archive(format!(
                        "layer {diff_id} of the parent is not in the store"
                    ))
                })?;
            let size = self
                .content
                .info(&record.blob)?
                .map_or(record.diff_size, |i| i.size);
            layers.push(Descriptor {
                media_type: record.media_type,
                digest: record.blob,
                size,
                annotations: Default::default(),
                platform: None,
            });
        }
        Ok(layers)
    }

    /// Writes `config` and a manifest of `layers`, records the image (and
    /// `new_layer`, when one was made) and tags it: the end of `commit`
    /// and of a build.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_image(
        &self,
        lease: &Lease<'_>,
        config: &ImageConfig,
        layers: &[Descriptor],
        new_layer: Option<&LayerRecord>,
        chain_key: Option<String>,
        parent: Option<Digest>,
        reference: Option<&Reference>,
    ) -> Result<Digest> {
        let docker_types = layers.iter().all(|l| is_docker_layer(&l.media_type));
        let (manifest_type, config_type) = if docker_types {
            (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG)
        } else {
            (manifest::OCI_MANIFEST, manifest::OCI_CONFIG)
        };
        let config_bytes = manifest::to_bytes(config);
        let config_digest = self.content.write_blob(&config_bytes, None)?;
        lease.hold(Resource::Content, &config_digest.to_string())?;
        let m = Manifest {
            schema_version: 2,
            media_type: manifest_type.into(),
            config: Descriptor {
                media_type: config_type.into(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                annotations: Default::default(),
                platform: None,
            },
            layers: layers.to_vec(),
            annotations: Default::default(),
        };
        let manifest_bytes = manifest::to_bytes(&m);
        let manifest_digest = self.content.write_blob(&manifest_bytes, None)?;
        lease.hold(Resource::Content, &manifest_digest.to_string())?;
        self.content.sync()?;
        let now = now_nanos();
        self.db.write(|tx| {
            if let Some(layer) = new_layer {
                tx.put_layer(layer)?;
            }
            tx.add_content_ref(&manifest_digest, &config_digest)?;
            for l in layers {
                tx.add_content_ref(&manifest_digest, &l.digest)?;
            }
            tx.put_image(&ImageRecord {
                id: config_digest.clone(),
                target: Target {
                    digest: manifest_digest.clone(),
                    media_type: manifest_type.into(),
                    size: manifest_bytes.len() as u64,
                },
                created: now,
                last_tag_time: None,
                chain_id: chain_key.clone(),
                parent,
            })?;
            if let Some(r) = reference {
                tx.set_tag(&r.to_string(), &config_digest, Some(now))?;
            }
            Ok::<_, ImageError>(())
        })?;
        let id = config_digest.to_string();
        self.emit("create", &id, self.event_attributes(&config_digest, &id));
        if let Some(r) = reference {
            self.emit(
                "tag",
                &id,
                self.event_attributes(&config_digest, &r.familiar()),
            );
        }
        Ok(config_digest)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{ImageEvent, ImportOptions};

    fn tar_of(files: &[(&str, &[u8])], whiteouts: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1_600_000_000);
            h.set_path(name).expect("path");
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        for name in whiteouts {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o600);
            h.set_size(0);
            h.set_path(name).expect("path");
            h.set_cksum();
            b.append(&h, &[][..]).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn open(dir: &std::path::Path) -> (ImageStore, Arc<Mutex<Vec<ImageEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let store = ImageStore::open(
            dir,
            None,
            Arc::new(move |e| sink.lock().expect("events").push(e)),
            "test",
        )
        .expect("open the store");
        (store, events)
    }

    #[test]
    fn merge_as_dockerd() {
        let base = ContainerConfig {
            user: "web".into(),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            labels: Some(BTreeMap::from([("a".into(), "1".into())])),
            working_dir: "/srv".into(),
            healthcheck: Some(serde_json::json!({"Test": ["CMD", "true"], "Retries": 3})),
            ..ContainerConfig::default()
        };
        let mut user = ContainerConfig {
            env: Some(vec!["A=2".into()]),
            labels: Some(BTreeMap::from([("a".into(), "mine".into())])),
            healthcheck: Some(serde_json::json!({"Test": [], "Retries": 5})),
            ..ContainerConfig::default()
        };
        merge_config(&mut user, &base);
        assert_eq!(user.user, "web");
        assert_eq!(
            user.env,
            Some(vec!["A=2".to_string(), "PATH=/bin".to_string()])
        );
        assert_eq!(user.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(user.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(user.labels.as_ref().expect("labels")["a"], "mine");
        assert_eq!(user.working_dir, "/srv");
        assert_eq!(
            user.healthcheck,
            Some(serde_json::json!({"Test": ["CMD", "true"], "Retries": 5}))
        );
        // An entrypoint of its own keeps the command unset.
        let mut own = ContainerConfig {
            entrypoint: Some(vec!["/mine".into()]),
            ..ContainerConfig::default()
        };
        merge_config(&mut own, &base);
        assert_eq!(own.cmd, None);
        assert_eq!(own.entrypoint, Some(vec!["/mine".to_string()]));
    }

    #[test]
    fn commit_on_an_imported_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, events) = open(dir.path());
        let base_tar = tar_of(&[("etc/conf", b"old"), ("etc/gone", b"x")], &[]);
        let base = store
            .import(
                std::io::Cursor::new(base_tar),
                &ImportOptions {
                    reference: Some("base:1".into()),
                    changes: vec!["CMD [\"sh\"]".into(), "ENV A=1".into()],
                    source: "-".into(),
                    ..ImportOptions::default()
                },
            )
            .expect("import");
        let base_config = store.config(&base).expect("base config");

        let layer = tar_of(&[("etc/conf", b"new"), ("added", b"a")], &["etc/.wh.gone"]);
        let id = store
            .commit(
                Some(&base),
                &layer[..],
                &CommitOptions {
                    reference: Some("committed".into()),
                    comment: "a message".into(),
                    author: "me".into(),
                    config: None,
                    changes: vec!["LABEL x=y".into()],
                    container_id: "c0ffee".into(),
                    container_config: Some(serde_json::json!({"Cmd": ["sh", "-c", "work"]})),
                    created_by: "sh -c work".into(),
                },
            )
            .expect("commit");
        let config = store.config(&id).expect("config");
        let layer_id = Digest::sha256(&layer);
        assert_eq!(
            config.rootfs.diff_ids,
            [base_config.rootfs.diff_ids[0].clone(), layer_id.to_string()]
        );
        assert_eq!(config.history.len(), 2);
        let h = &config.history[1];
        assert_eq!(
            (
                h.comment.as_str(),
                h.author.as_str(),
                h.created_by.as_str(),
                h.empty_layer
            ),
            ("a message", "me", "sh -c work", false)
        );
        let c = config.config.as_ref().expect("container config");
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]), "the parent's config");
        assert_eq!(c.env, Some(vec!["A=1".to_string()]));
        assert_eq!(c.labels.as_ref().expect("labels")["x"], "y");
        assert_eq!(config.container, "c0ffee");
        assert_eq!(config.author, "me");
        assert_eq!(config.architecture, base_config.architecture);

        // Named, with the parent recorded, and its files as the layers say.
        let details = store.inspect("committed:latest").expect("inspect");
        assert_eq!(details.summary.id, id);
        assert_eq!(details.summary.parent, Some(base.clone()));
        assert_eq!(details.layer_dirs.len(), 2);
        let top = std::path::Path::new(&details.layer_dirs[0]);
        assert_eq!(std::fs::read(top.join("etc/conf")).expect("conf"), b"new");
        let history = store.history("committed").expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].comment, "a message");
        let actions: Vec<&str> = events
            .lock()
            .expect("events")
            .iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.ends_with(&["create", "tag"]), "{actions:?}");

        // The image saves (its manifest names only stored blobs).
        let mut saved = Vec::new();
        store
            .save(&["committed".to_string()], &mut saved)
            .expect("save");
        assert!(!saved.is_empty());

        // No changes: no layer, an empty_layer history entry.
        let empty = store
            .commit(
                Some(&id),
                &[0u8; 1024][..],
                &CommitOptions {
                    comment: "nothing".into(),
                    ..CommitOptions::default()
                },
            )
            .expect("empty commit");
        let ec = store.config(&empty).expect("config");
        assert_eq!(ec.rootfs.diff_ids, config.rootfs.diff_ids);
        assert!(ec.history.last().expect("history").empty_layer);
        assert_eq!(
            store
                .inspect(&empty.to_string())
                .expect("inspect")
                .summary
                .chain,
            details.summary.chain
        );

        // The parent cannot go while its child is there.
        assert!(store.remove("base:1", false, false).is_ok(), "untag only");
        assert!(store.inspect(&base.to_string()).is_ok());

        // Bad references and unknown parents are refused before reading.
        let e = store
            .commit(
                Some(&Digest::sha256(b"nothing")),
                &layer[..],
                &CommitOptions::default(),
            )
            .expect_err("unknown parent");
        assert!(matches!(e, ImageError::NotFound(_)), "{e}");
        let e = store
            .commit(
                Some(&id),
                &layer[..],
                &CommitOptions {
                    reference: Some(
                        "x@sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
                            .into(),
                    ),
                    ..CommitOptions::default()
                },
            )
            .expect_err("digest reference");
        assert!(matches!(e, ImageError::Invalid(_)), "{e}");
    }

    #[test]
    fn commit_from_scratch_and_bad_layers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = open(dir.path());
        let layer = tar_of(&[("hello", b"world")], &[]);
        let id = store
            .commit(None, &layer[..], &CommitOptions::default())
            .expect("commit");
        let config = store.config(&id).expect("config");
        assert_eq!(config.rootfs.diff_ids, [Digest::sha256(&layer).to_string()]);
        assert_eq!(config.os, "linux");
        // A layer that escapes is refused, and nothing is left behind.
        let before = store.list(&Default::default(), true).expect("list").len();
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        evil.append(&h, &b"x"[..]).expect("append");
        let evil = evil.into_inner().expect("tar");
        assert!(
            store
                .commit(Some(&id), &evil[..], &CommitOptions::default())
                .is_err()
        );
        assert_eq!(
            store.list(&Default::default(), true).expect("list").len(),
            before
        );
        assert!(!dir.path().join("escape").exists());
    }
}
