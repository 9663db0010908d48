//! `import`: a root filesystem tarball becomes a one-layer image.
//!
//! The (decompressed) tarball is read once: it is written to the content
//! store as the layer blob and applied into a snapshot at the same time.
//! The layer's diff ID is the digest of the tarball as given, byte for byte,
//! as in Docker.

use std::io::{Read, Write};

use hafen_oci::{Digest, Reference};
use hafen_snapshot::apply::{Options, apply};
use hafen_snapshot::{SnapshotError, compression};
use hafen_store::meta::{ImageRecord, LayerRecord, Resource, Target, now_nanos};

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::manifest::{self, Descriptor, Manifest};
use crate::{ImageError, ImageStore, Result, changes, io_err};

/// What `import` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name to give the image (`repo[:tag]`), if any.
    pub reference: Option<String>,
    /// The commit message (`Imported from -` by default).
    pub message: Option<String>,
    /// Dockerfile instructions that set the config (`CMD ["sh"]`).
    pub changes: Vec<String>,
    /// Where it came from (for the default message).
    pub source: String,
    /// `os[/arch[/variant]]`, default the host's.
    pub platform: Option<String>,
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

/// The time as Docker writes it in configs (RFC 3339, nanoseconds, UTC).
pub(crate) fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl ImageStore {
    /// Imports a root filesystem tarball (plain, gzip or zstd) from
    /// `input`; returns the new image's ID.
    pub fn import(
        &self,
        input: impl Read + Send + 'static,
        opts: &ImportOptions,
    ) -> Result<Digest> {
        // Check everything that can be checked before reading anything.
        let reference = opts
            .reference
            .as_deref()
            .map(|r| {
                let r = Reference::parse_normalized(r)?;
                if r.digest().is_some() {
                    return Err(ImageError::Invalid("cannot import digest reference".into()));
                }
                Ok(r.with_default_tag())
            })
            .transpose()?;
        let mut container = ContainerConfig::default();
        for change in &opts.changes {
            changes::apply(&mut container, change)
                .map_err(|e| ImageError::Invalid(e.to_string()))?;
        }
        let (os, architecture, variant) = match opts.platform.as_deref().filter(|p| !p.is_empty()) {
            None => (
                self.platform.os.clone(),
                self.platform.architecture.clone(),
                self.platform.variant.clone().unwrap_or_default(),
            ),
            Some(p) => {
                let mut parts = p.split('/');
                let os = parts.next().unwrap_or_default().to_string();
                let arch = parts
                    .next()
                    .map_or_else(|| self.platform.architecture.clone(), str::to_string);
                let variant = parts.next().unwrap_or_default().to_string();
                if os != "linux" {
                    return Err(ImageError::Invalid(format!(
                        "unsupported platform {p:?}: hafen runs linux images"
                    )));
                }
                (os, arch, variant)
            }
        };

        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let lease = self.lease("import")?;
        let key = format!("{}{}-0", crate::unpack::EXTRACT_PREFIX, lease.id);
        lease.hold(Resource::Snapshot, &key)?;
        lease.hold(Resource::Ingest, &lease.id)?;
        self.snapshots.prepare(&key, None)?;
        let result = (|| -> Result<(Digest, u64, u64)> {
            let target = self.snapshots.apply_target(&key)?;
            let (_, decompressed) =
                compression::decompress(input).map_err(io_err("cannot read the tarball"))?;
            let writer = self.content.writer(&lease.id, None, None)?;
            // Reading (and decompressing), hashing and writing the blob,
            // and the apply each run on a thread.
            let mut tee = compression::read_ahead(Tee {
                reader: compression::read_ahead(decompressed),
                writer,
            });
            let applied = apply(
                &mut tee,
                &target.dir,
                &Options {
                    whiteouts: target.whiteouts,
                    lowers: &target.lowers,
                    chown: true,
                },
            )?;
            let writer = tee
                .finish()
                .map_err(io_err("cannot read the tarball"))?
                .writer;
            let diff_size = writer.offset();
            let blob = writer.commit()?;
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
        let chain_key = blob.to_string();
        lease.hold(Resource::Snapshot, &chain_key)?;
        match self.snapshots.commit(&chain_key, &key, Some(size)) {
            Ok(_) => {}
            Err(SnapshotError::Exists(_)) => self.snapshots.remove(&key)?,
            Err(e) => return Err(e.into()),
        }

        let created = rfc3339_now();
        let message = opts
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("Imported from {}", opts.source));
        let config = ImageConfig {
            architecture,
            comment: message.clone(),
            config: Some(container),
            created: Some(created.clone()),
            docker_version: self.engine_version.clone(),
            history: vec![History {
                created: Some(created),
                comment: message,
                ..History::default()
            }],
            os,
            variant,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![blob.to_string()],
            },
            ..ImageConfig::default()
        };
        let config_bytes = manifest::to_bytes(&config);
        let config_digest = self.content.write_blob(&config_bytes, None)?;
        lease.hold(Resource::Content, &config_digest.to_string())?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: manifest::DOCKER_MANIFEST.into(),
            config: Descriptor {
                media_type: manifest::DOCKER_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                annotations: Default::default(),
                platform: None,
            },
            layers: vec![Descriptor {
                media_type: manifest::DOCKER_LAYER.into(),
                digest: blob.clone(),
                size: diff_size,
                annotations: Default::default(),
                platform: None,
            }],
            annotations: Default::default(),
        };
        let manifest_bytes = manifest::to_bytes(&manifest);
        let manifest_digest = self.content.write_blob(&manifest_bytes, None)?;
        lease.hold(Resource::Content, &manifest_digest.to_string())?;
        let sync_started = std::time::Instant::now();
        self.content.sync()?;
        tracing::debug!(
            "store synced in {:.3} s",
            sync_started.elapsed().as_secs_f64()
        );
        let now = now_nanos();
        self.db.write(|tx| {
            tx.put_layer(&LayerRecord {
                blob: blob.clone(),
                diff_id: blob.clone(),
                media_type: manifest::DOCKER_LAYER.into(),
                diff_size,
            })?;
            tx.add_content_ref(&manifest_digest, &config_digest)?;
            tx.add_content_ref(&manifest_digest, &blob)?;
            tx.put_image(&ImageRecord {
                id: config_digest.clone(),
                target: Target {
                    digest: manifest_digest.clone(),
                    media_type: manifest::DOCKER_MANIFEST.into(),
                    size: manifest_bytes.len() as u64,
                },
                created: now,
                last_tag_time: None,
                chain_id: Some(chain_key.clone()),
                parent: None,
            })?;
            if let Some(r) = &reference {
                tx.set_tag(&r.to_string(), &config_digest, Some(now))?;
            }
            Ok::<_, ImageError>(())
        })?;
        drop(lease);
        let id = config_digest.to_string();
        if let Some(r) = &reference {
            self.emit(
                "tag",
                &id,
                self.event_attributes(&config_digest, &r.familiar()),
            );
        }
        self.emit("import", &id, self.event_attributes(&config_digest, &id));
        Ok(config_digest)
    }
}
