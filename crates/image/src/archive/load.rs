//! `load`: images from a Docker archive or an OCI layout tar (plain or
//! compressed).
//!
//! The archive is read once, as a stream: every file goes straight into the
//! content store (small ones are kept in memory until it is clear what they
//! are), because the documents that say what the files are
//! (`manifest.json`, `index.json`) come last. Then the images are unpacked
//! and named in one transaction.

use std::collections::HashMap;
use std::io::Read;

use hafen_oci::{Digest, Reference};
use hafen_snapshot::compression::{self, Compression};
use hafen_store::meta::{ImageRecord, Resource, Target, now_nanos};

use super::ArchiveEntry;
use crate::early::{Early, EarlyLayers};
use crate::manifest::{self, Descriptor, Manifest};
use crate::unpack::LayerProgress;
use crate::{ImageError, ImageStore, Lease, MAX_JSON_BLOB, Result, diff_ids, io_err};

/// Files up to this size are kept in memory while the archive is read.
const IN_MEMORY: u64 = 1 << 20;

/// Progress of a load, for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadProgress {
    /// A layer is being unpacked.
    Layer(LayerProgress),
    /// A line for the user (`Loaded image: busybox:latest`).
    Message(String),
}

/// A file of the archive.
enum File {
    Memory(Vec<u8>),
    Stored(Digest),
}

/// The files of the archive by path, and its links.
struct Archive {
    files: HashMap<String, File>,
    links: HashMap<String, String>,
}

/// A path inside the archive, normalised (`./a//b` → `a/b`); `None` if it
/// climbs out of it.
fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl Archive {
    /// Follows links (a few hops) to a file.
    fn resolve(&self, path: &str) -> Option<&File> {
        let mut path = normalise(path)?;
        for _ in 0..8 {
            if let Some(f) = self.files.get(&path) {
                return Some(f);
            }
            let target = self.links.get(&path)?;
            path = target.clone();
        }
        None
    }
}

impl ImageStore {
    /// Loads the images of an archive; returns the lines Docker prints
    /// (`Loaded image: …`), also given to `progress` as they come.
    pub fn load(
        &self,
        input: impl Read + Send + 'static,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Vec<String>> {
        let result = self.load_locked(input, progress);
        if result.is_err() {
            // What the failed load stored is garbage now.
            if let Err(e) = self.collect_garbage() {
                tracing::warn!("cannot clean up after a failed load: {e}");
            }
        }
        result
    }

    fn load_locked(
        &self,
        input: impl Read + Send + 'static,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Vec<String>> {
        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let lease = self.lease("load")?;
        let mut early_layers = EarlyLayers::new(self);
        self.load_leased(input, progress, &lease, &mut early_layers)
    }

    fn load_leased(
        &self,
        input: impl Read + Send + 'static,
        progress: &mut dyn FnMut(LoadProgress),
        lease: &Lease<'_>,
        early_layers: &mut EarlyLayers,
    ) -> Result<Vec<String>> {
        let started = std::time::Instant::now();
        let (_, decompressed) =
            compression::decompress(input).map_err(io_err("cannot read the archive"))?;
        let mut archive = Archive {
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let mut tar = tar::Archive::new(compression::read_ahead(decompressed));
        let mut count = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        let entries = tar
            .entries()
            .map_err(|e| ImageError::Archive(format!("cannot read the archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| ImageError::Archive(format!("cannot read the archive: {e}")))?;
            let raw = entry
                .path()
                .map_err(|e| ImageError::Archive(format!("bad name in the archive: {e}")))?
                .to_string_lossy()
                .into_owned();
            let Some(path) = normalise(&raw) else {
                return Err(ImageError::Archive(format!(
                    "entry {raw:?} is outside the archive"
                )));
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let resolved = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    normalise(&format!("{dir}/{target}"))
                } else {
                    normalise(&target)
                };
                if let Some(t) = resolved {
                    archive.links.insert(path, t);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.header().size().unwrap_or(0);
            if size <= IN_MEMORY {
                let mut bytes = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| ImageError::Archive(format!("cannot read {path}: {e}")))?;
                check_complete(&path, bytes.len() as u64, size)?;
                archive.files.insert(path, File::Memory(bytes));
                continue;
            }
            // A blob named by its digest is checked against it.
            let expected = path
                .strip_prefix("blobs/")
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok());
            count += 1;
            let ingest = format!("{}-{count}", lease.id);
            lease.hold(Resource::Ingest, &ingest)?;
            let mut writer = self
                .content
                .writer(&ingest, expected.as_ref(), Some(size))?;
            writer.truncate()?;
            // It may be a base layer: unpack it as it streams by.
            let mut early = match Early::start(self, lease, count) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::debug!("no early unpack of {path}: {e}");
                    None
                }
            };
            let copied = match copy_feeding(&mut entry, &mut writer, &mut buf, early.as_mut()) {
                Ok(n) => n,
                Err(e) => {
                    writer.abort();
                    drop(early);
                    return Err(ImageError::Archive(format!(
                        "cannot read {path} from the archive: {e}"
                    )));
                }
            };
            if let Err(e) = check_complete(&path, copied, size) {
                writer.abort();
                drop(early);
                return Err(e);
            }
            let digest = match writer.commit() {
                Ok(d) => d,
                Err(e) => {
                    let _ = self.content.abort(&ingest);
                    drop(early);
                    return Err(ImageError::Archive(format!("{path}: {e}")));
                }
            };
            if let Some(early) = early {
                early.finish(&digest, early_layers);
            }
            lease.hold(Resource::Content, &digest.to_string())?;
            archive.files.insert(path, File::Stored(digest));
        }
        let mut rest = tar.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink())
            .map_err(|e| ImageError::Archive(format!("cannot read the archive: {e}")))?;

        tracing::debug!(
            "load: archive read in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        let images = if archive.files.contains_key("manifest.json") {
            self.read_docker_archive(&archive, lease)?
        } else if archive.files.contains_key("index.json") {
            self.read_oci_layout(&archive, lease)?
        } else {
            return Err(ImageError::Archive(
                "it has neither a manifest.json (Docker) nor an index.json (OCI layout)".into(),
            ));
        };

        // Only an image's base layer can be used as unpacked early.
        let bases: std::collections::HashSet<Digest> = images
            .iter()
            .filter_map(|i| i.manifest.layers.first().map(|l| l.digest.clone()))
            .collect();
        early_layers.retain(&bases);

        // Unpack, then name everything in one transaction.
        let mut unpacked = Vec::new();
        for image in &images {
            let layers: Vec<(Digest, String)> = image
                .manifest
                .layers
                .iter()
                .map(|d| (d.digest.clone(), d.media_type.clone()))
                .collect();
            let (chain, records) =
                self.unpack(lease, &layers, &image.diff_ids, early_layers, &mut |p| {
                    progress(LoadProgress::Layer(p));
                })?;
            unpacked.push((chain, records));
        }
        let sync_started = std::time::Instant::now();
        self.content.sync()?;
        tracing::debug!(
            "store synced in {:.3} s",
            sync_started.elapsed().as_secs_f64()
        );
        let now = now_nanos();
        let mut messages = Vec::new();
        self.db.write(|tx| {
            for (image, (chain, records)) in images.iter().zip(&unpacked) {
                for r in records {
                    tx.put_layer(r)?;
                }
                tx.add_content_ref(&image.manifest_digest, &image.manifest.config.digest)?;
                for l in &image.manifest.layers {
                    tx.add_content_ref(&image.manifest_digest, &l.digest)?;
                }
                let id = image.manifest.config.digest.clone();
                tx.put_image(&ImageRecord {
                    id: id.clone(),
                    target: Target {
                        digest: image.manifest_digest.clone(),
                        media_type: image.manifest_media_type.clone(),
                        size: image.manifest_size,
                    },
                    created: now,
                    last_tag_time: None,
                    chain_id: chain.last().map(Digest::to_string),
                    parent: None,
                })?;
                for tag in &image.tags {
                    if let Some(old) = tx.set_tag(&tag.to_string(), &id, None)? {
                        messages.push(format!(
                            "The image {} already exists, renaming the old one with ID {old} to empty string",
                            tag.familiar()
                        ));
                    }
                    messages.push(format!("Loaded image: {}", tag.familiar()));
                }
                if image.tags.is_empty() {
                    messages.push(format!("Loaded image ID: {id}"));
                }
            }
            Ok::<_, ImageError>(())
        })?;
        for image in &images {
            let id = image.manifest.config.digest.clone();
            self.emit(
                "load",
                &id.to_string(),
                self.event_attributes(&id, &id.to_string()),
            );
        }
        for m in &messages {
            progress(LoadProgress::Message(m.clone()));
        }
        Ok(messages)
    }

    /// A file of the archive as a blob in the store (written now if it was
    /// kept in memory); checked against `expected` if given.
    fn blob_of(
        &self,
        archive: &Archive,
        path: &str,
        expected: Option<&Digest>,
        lease: &Lease<'_>,
    ) -> Result<Digest> {
        let file = archive
            .resolve(path)
            .ok_or_else(|| ImageError::Archive(format!("{path} is missing from the archive")))?;
        let digest = match file {
            File::Memory(bytes) => self
                .content
                .write_blob(bytes, expected)
                .map_err(|e| ImageError::Archive(format!("{path}: {e}")))?,
            File::Stored(d) => {
                if expected.is_some_and(|e| e != d) {
                    return Err(ImageError::Archive(format!(
                        "{path} does not match its digest {}",
                        expected.map(Digest::to_string).unwrap_or_default()
                    )));
                }
                d.clone()
            }
        };
        lease.hold(Resource::Content, &digest.to_string())?;
        Ok(digest)
    }

    fn small_file<'a>(&self, archive: &'a Archive, path: &str) -> Result<&'a [u8]> {
        match archive.resolve(path) {
            Some(File::Memory(bytes)) => Ok(bytes),
            Some(File::Stored(_)) => Err(ImageError::Archive(format!(
                "{path} is larger than {MAX_JSON_BLOB} bytes"
            ))),
            None => Err(ImageError::Archive(format!(
                "{path} is missing from the archive"
            ))),
        }
    }

    fn compression_of(&self, blob: &Digest) -> Result<Compression> {
        let mut head = [0u8; 4];
        let mut r = self.content.reader(blob)?;
        let mut n = 0;
        while n < head.len() {
            let got = r
                .read(&mut head[n..])
                .map_err(io_err("cannot read a layer"))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok(Compression::detect(&head[..n]))
    }

    fn read_docker_archive(&self, archive: &Archive, lease: &Lease<'_>) -> Result<Vec<Loaded>> {
        let entries: Option<Vec<ArchiveEntry>> =
            serde_json::from_slice(self.small_file(archive, "manifest.json")?)
                .map_err(|e| ImageError::Archive(format!("bad manifest.json: {e}")))?;
        let entries = entries
            .ok_or_else(|| ImageError::Archive("manifest cannot be null (but can be [])".into()))?;
        let mut out = Vec::new();
        for entry in entries {
            let config_digest = self.blob_of(archive, &entry.config, None, lease)?;
            let config_bytes = self.content.read_all(&config_digest, MAX_JSON_BLOB)?;
            let config = crate::ImageConfig::parse(&config_bytes).map_err(|e| {
                ImageError::Archive(format!("bad image config {}: {e}", entry.config))
            })?;
            let diff_ids = diff_ids(&config)?;
            if entry.layers.len() != diff_ids.len() {
                return Err(ImageError::Archive(format!(
                    "{} lists {} layers but its config has {}",
                    entry.config,
                    entry.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for path in &entry.layers {
                let blob = self.blob_of(archive, path, None, lease)?;
                let size = self.content.info(&blob)?.map_or(0, |i| i.size);
                let media_type = match self.compression_of(&blob)? {
                    Compression::None => manifest::DOCKER_LAYER,
                    Compression::Gzip => manifest::DOCKER_LAYER_GZIP,
                    Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
                };
                layers.push(descriptor(media_type, blob, size));
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: manifest::DOCKER_MANIFEST.into(),
                config: descriptor(
                    manifest::DOCKER_CONFIG,
                    config_digest,
                    config_bytes.len() as u64,
                ),
                layers,
                annotations: Default::default(),
            };
            let tags = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let r = Reference::parse_normalized(t)
                        .map_err(|e| ImageError::Archive(format!("invalid tag {t:?}: {e}")))?;
                    if r.tag().is_none() {
                        return Err(ImageError::Archive(format!(
                            "invalid tag {t:?}: it has no tag"
                        )));
                    }
                    Ok(r)
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(self.finish_loaded(manifest, diff_ids, tags, lease)?);
        }
        Ok(out)
    }

    fn finish_loaded(
        &self,
        manifest: Manifest,
        diff_ids: Vec<Digest>,
        tags: Vec<Reference>,
        lease: &Lease<'_>,
    ) -> Result<Loaded> {
        let bytes = manifest::to_bytes(&manifest);
        let digest = self.content.write_blob(&bytes, None)?;
        lease.hold(Resource::Content, &digest.to_string())?;
        Ok(Loaded {
            manifest_media_type: manifest.media_type.clone(),
            manifest,
            manifest_digest: digest,
            manifest_size: bytes.len() as u64,
            diff_ids,
            tags,
        })
    }

    fn read_oci_layout(&self, archive: &Archive, lease: &Lease<'_>) -> Result<Vec<Loaded>> {
        if let Some(File::Memory(layout)) = archive.resolve("oci-layout") {
            let v: serde_json::Value = serde_json::from_slice(layout)
                .map_err(|e| ImageError::Archive(format!("bad oci-layout: {e}")))?;
            if v["imageLayoutVersion"] != "1.0.0" {
                return Err(ImageError::Archive(format!(
                    "unsupported OCI layout version {}",
                    v["imageLayoutVersion"]
                )));
            }
        }
        let index = manifest::parse_index(self.small_file(archive, "index.json")?)?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let names = names_of(desc);
            let Some((manifest_desc, manifest_bytes)) =
                self.platform_manifest(archive, desc, lease, 0)?
            else {
                continue;
            };
            let manifest = manifest::parse_manifest(&manifest_bytes)?;
            let config_digest = self.blob_of(
                archive,
                &blob_path(&manifest.config.digest),
                Some(&manifest.config.digest),
                lease,
            )?;
            let config_bytes = self.content.read_all(&config_digest, MAX_JSON_BLOB)?;
            let config = crate::ImageConfig::parse(&config_bytes).map_err(|e| {
                ImageError::Archive(format!("bad image config {config_digest}: {e}"))
            })?;
            let diff_ids = diff_ids(&config)?;
            for l in &manifest.layers {
                self.blob_of(archive, &blob_path(&l.digest), Some(&l.digest), lease)?;
            }
            let media_type = if manifest.media_type.is_empty() {
                manifest::OCI_MANIFEST.to_string()
            } else {
                manifest.media_type.clone()
            };
            out.push(Loaded {
                manifest,
                manifest_media_type: media_type,
                manifest_digest: manifest_desc.digest.clone(),
                manifest_size: manifest_bytes.len() as u64,
                diff_ids,
                tags: names,
            });
        }
        if out.is_empty() {
            return Err(ImageError::Archive(format!(
                "index.json names no image for {}/{}",
                self.platform.os, self.platform.architecture
            )));
        }
        Ok(out)
    }

    /// The manifest a descriptor names, through indexes, for this
    /// platform (`None` if it has none).
    fn platform_manifest(
        &self,
        archive: &Archive,
        desc: &Descriptor,
        lease: &Lease<'_>,
        depth: usize,
    ) -> Result<Option<(Descriptor, Vec<u8>)>> {
        if depth > 4 {
            return Err(ImageError::Archive("indexes nested too deep".into()));
        }
        let digest = self.blob_of(archive, &blob_path(&desc.digest), Some(&desc.digest), lease)?;
        let bytes = self.content.read_all(&digest, MAX_JSON_BLOB)?;
        let media_type = if desc.media_type.is_empty() {
            manifest::sniff_media_type(&bytes)
        } else {
            desc.media_type.clone()
        };
        if !manifest::is_index(&media_type) {
            return Ok(Some((desc.clone(), bytes)));
        }
        let index = manifest::parse_index(&bytes)?;
        let wanted = index.manifests.iter().find(|m| {
            m.platform.as_ref().is_none_or(|p| {
                p.os == self.platform.os && p.architecture == self.platform.architecture
            })
        });
        match wanted {
            Some(m) => self.platform_manifest(archive, m, lease, depth + 1),
            None => Ok(None),
        }
    }
}

/// An image read from an archive, not yet unpacked or named.
struct Loaded {
    manifest: Manifest,
    manifest_media_type: String,
    manifest_digest: Digest,
    manifest_size: u64,
    diff_ids: Vec<Digest>,
    tags: Vec<Reference>,
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: Default::default(),
        platform: None,
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// The names an index entry gives its image: `io.containerd.image.name`,
/// else `org.opencontainers.image.ref.name` if it is a whole reference
/// (a bare tag names nothing).
fn names_of(desc: &Descriptor) -> Vec<Reference> {
    let full = desc
        .annotations
        .get(manifest::ANNOTATION_IMAGE_NAME)
        .and_then(|n| Reference::parse_normalized(n).ok());
    let from_ref = || {
        desc.annotations
            .get(manifest::ANNOTATION_REF_NAME)
            .filter(|n| n.contains(':') || n.contains('/'))
            .and_then(|n| Reference::parse_normalized(n).ok())
    };
    full.or_else(from_ref)
        .filter(|r| r.tag().is_some())
        .into_iter()
        .collect()
}

/// An entry that ends before its header's size: the archive was cut off.
fn check_complete(path: &str, got: u64, size: u64) -> Result<(), ImageError> {
    if got < size {
        return Err(ImageError::Archive(format!(
            "the archive is truncated: {path} ends after {got} of its {size} bytes"
        )));
    }
    Ok(())
}

/// Copies an archive entry into a blob, feeding an early unpack too.
fn copy_feeding(
    from: &mut impl Read,
    to: &mut impl std::io::Write,
    buf: &mut [u8],
    mut early: Option<&mut Early>,
) -> std::io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        if let Some(early) = early.as_mut() {
            early.feed(&buf[..n]);
        }
        total += n as u64;
    }
}
