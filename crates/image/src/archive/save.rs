//! `save`: images to a tar that both Docker (`manifest.json`) and OCI tools
//! (`index.json`, `oci-layout`) read, as Docker 25 and later write it:
//! `blobs/sha256/` holds each config, each layer uncompressed (named by its
//! diff ID) and a manifest per image. Entries are sorted and dated at the
//! epoch, so saving the same images gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use hafen_oci::{Digest, Reference};
use hafen_snapshot::compression;

use super::ArchiveEntry;
use crate::manifest::{self, Descriptor, Index, Manifest};
use crate::resolve::Named;
use crate::{ImageError, ImageStore, Result, io_err};

/// One image to save, with the names it is saved under.
struct Saved {
    id: Digest,
    tags: Vec<Reference>,
}

/// A blob of the archive: where its bytes come from.
enum Source {
    /// A blob of the store, as is.
    Blob(Digest),
    /// A layer blob, decompressed to `size` bytes.
    Layer { blob: Digest, size: u64 },
    /// Bytes made here.
    Bytes(Vec<u8>),
}

impl ImageStore {
    /// Writes the images `names` name to `out` as one archive. A name with
    /// a tag saves that tag; a repository without one saves all its tags;
    /// an ID saves the image without names.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let images = self.select(names)?;
        let mut blobs: BTreeMap<String, (u64, Source)> = BTreeMap::new();
        let mut index = Index {
            schema_version: 2,
            media_type: manifest::OCI_INDEX.into(),
            manifests: Vec::new(),
            annotations: Default::default(),
        };
        let mut entries = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in &images {
            let config = self.config(&image.id)?;
            let config_size = self
                .content
                .info(&image.id)?
                .ok_or_else(|| ImageError::NotFound(image.id.to_string()))?
                .size;
            blobs.insert(
                image.id.hex().to_string(),
                (config_size, Source::Blob(image.id.clone())),
            );
            let mut layers = Vec::new();
            for diff_id in crate::diff_ids(&config)? {
                let records = self.db.read(|tx| tx.layer_blobs(&diff_id))?;
                let (blob, size) = match records.iter().find(|r| self.content.contains(&r.blob)) {
                    Some(r) => (r.blob.clone(), r.diff_size),
                    None => {
                        return Err(ImageError::Archive(format!(
                            "layer {diff_id} of image {} is not in the store",
                            image.id
                        )));
                    }
                };
                blobs.insert(
                    diff_id.hex().to_string(),
                    (size, Source::Layer { blob, size }),
                );
                layers.push(Descriptor {
                    media_type: manifest::OCI_LAYER.into(),
                    digest: diff_id.clone(),
                    size,
                    annotations: Default::default(),
                    platform: None,
                });
            }
            let m = Manifest {
                schema_version: 2,
                media_type: manifest::OCI_MANIFEST.into(),
                config: Descriptor {
                    media_type: manifest::OCI_CONFIG.into(),
                    digest: image.id.clone(),
                    size: config_size,
                    annotations: Default::default(),
                    platform: None,
                },
                layers: layers.clone(),
                annotations: Default::default(),
            };
            let bytes = manifest::to_bytes(&m);
            let digest = Digest::sha256(&bytes);
            let manifest_desc = |annotations: BTreeMap<String, String>| Descriptor {
                media_type: manifest::OCI_MANIFEST.into(),
                digest: digest.clone(),
                size: bytes.len() as u64,
                annotations,
                platform: None,
            };
            if image.tags.is_empty() {
                index.manifests.push(manifest_desc(BTreeMap::new()));
            }
            for tag in &image.tags {
                let mut a = BTreeMap::new();
                a.insert(manifest::ANNOTATION_IMAGE_NAME.to_string(), tag.to_string());
                a.insert(
                    manifest::ANNOTATION_REF_NAME.to_string(),
                    tag.tag().unwrap_or_default().to_string(),
                );
                index.manifests.push(manifest_desc(a));
                if let Some(top) = layers.last() {
                    repositories.entry(tag.familiar_name()).or_default().insert(
                        tag.tag().unwrap_or_default().to_string(),
                        top.digest.hex().to_string(),
                    );
                }
            }
            blobs.insert(
                digest.hex().to_string(),
                (bytes.len() as u64, Source::Bytes(bytes)),
            );
            entries.push(ArchiveEntry {
                config: format!("blobs/sha256/{}", image.id.hex()),
                repo_tags: (!image.tags.is_empty())
                    .then(|| image.tags.iter().map(Reference::familiar).collect()),
                layers: layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }

        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        append_dir(&mut tar, "blobs/")?;
        append_dir(&mut tar, "blobs/sha256/")?;
        for (hex, (size, source)) in &blobs {
            let path = format!("blobs/sha256/{hex}");
            match source {
                Source::Bytes(bytes) => {
                    append_file(&mut tar, &path, bytes.len() as u64, &bytes[..])?
                }
                Source::Blob(d) => append_file(&mut tar, &path, *size, self.content.reader(d)?)?,
                Source::Layer { blob, size } => {
                    let reader = self.content.reader(blob)?;
                    let (_, decompressed) = compression::decompress(reader)
                        .map_err(io_err(format!("cannot read layer {blob}")))?;
                    append_file(&mut tar, &path, *size, decompressed)?;
                }
            }
        }
        let index_bytes = manifest::to_bytes(&index);
        append_file(
            &mut tar,
            "index.json",
            index_bytes.len() as u64,
            &index_bytes[..],
        )?;
        let manifest_json = serde_json::to_vec(&entries).unwrap_or_default();
        append_file(
            &mut tar,
            "manifest.json",
            manifest_json.len() as u64,
            &manifest_json[..],
        )?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        append_file(&mut tar, "oci-layout", layout.len() as u64, &layout[..])?;
        if !repositories.is_empty() {
            let repos = serde_json::to_vec(&repositories).unwrap_or_default();
            append_file(&mut tar, "repositories", repos.len() as u64, &repos[..])?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err("cannot write the archive"))?;
        for image in &images {
            let id = image.id.to_string();
            self.emit("save", &id, self.event_attributes(&image.id, &id));
        }
        Ok(())
    }

    /// Checks that every name names an image, before anything is written.
    pub fn check_save(&self, names: &[String]) -> Result<()> {
        self.select(names).map(|_| ())
    }

    /// The images and names to save.
    fn select(&self, names: &[String]) -> Result<Vec<Saved>> {
        let mut by_id: BTreeMap<Digest, BTreeSet<Reference>> = BTreeMap::new();
        let mut order: Vec<Digest> = Vec::new();
        for name in names {
            let mut add = |id: Digest, tag: Option<Reference>| {
                if !by_id.contains_key(&id) {
                    order.push(id.clone());
                }
                let set = by_id.entry(id).or_default();
                if let Some(t) = tag {
                    set.insert(t);
                }
            };
            // A repository without a tag: all of its tags.
            if let Ok(r) = Reference::parse_normalized(name) {
                if r.tag().is_none() && r.digest().is_none() {
                    let repo = r.name();
                    let tags: Vec<(String, Digest)> = self
                        .db
                        .read(|tx| tx.all_tags())?
                        .into_iter()
                        .filter(|(t, _)| t.rsplit_once(':').is_some_and(|(n, _)| n == repo))
                        .collect();
                    if !tags.is_empty() {
                        for (t, id) in tags {
                            add(id, Reference::parse_qualified(&t).ok());
                        }
                        continue;
                    }
                }
            }
            let resolved = self.resolve(name).map_err(|e| match e {
                ImageError::NotFound(_) => ImageError::NotFound(name.clone()),
                e => e,
            })?;
            match resolved.named {
                Named::Reference(r) if r.digest().is_none() => add(resolved.record.id, Some(r)),
                _ => add(resolved.record.id, None),
            }
        }
        Ok(order
            .into_iter()
            .map(|id| Saved {
                tags: by_id.remove(&id).unwrap_or_default().into_iter().collect(),
                id,
            })
            .collect())
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(io_err("cannot write the archive"))
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o444, size);
    // A reader that yields other than `size` bytes would corrupt the tar:
    // take exactly `size` and fail if there are fewer.
    let mut limited = data.take(size);
    let mut counted = Counted {
        inner: &mut limited,
        n: 0,
    };
    tar.append_data(&mut h, path, &mut counted)
        .map_err(io_err(format!("cannot write {path} to the archive")))?;
    if counted.n != size {
        return Err(ImageError::Archive(format!(
            "{path}: expected {size} bytes, read {}",
            counted.n
        )));
    }
    Ok(())
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
