//! Unpacking: an image's layer blobs applied into snapshots, each layer
//! once (keyed by chain ID), verified against the config's diff IDs.

use hafen_oci::Digest;
use hafen_oci::digest::HashingReader;
use hafen_snapshot::apply::{Options, apply};
use hafen_snapshot::{SnapshotError, compression};
use hafen_store::meta::{LayerRecord, Resource};

use crate::early::{EarlyLayer, EarlyLayers};
use crate::{ImageError, ImageStore, Lease, Result};

/// Active snapshots being unpacked have keys with this prefix.
pub(crate) const EXTRACT_PREFIX: &str = "extract-";

/// A layer being unpacked, for progress reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProgress {
    /// The layer's diff ID.
    pub diff_id: Digest,
    /// The compressed size of its blob.
    pub size: u64,
    /// Whether it is done.
    pub done: bool,
}

impl ImageStore {
    /// Unpacks `layers` (blob, media type) whose uncompressed digests must
    /// be `diff_ids`; returns the chain IDs. Layers already unpacked are
    /// skipped. The snapshots are held by `lease`.
    pub(crate) fn unpack(
        &self,
        lease: &Lease<'_>,
        layers: &[(Digest, String)],
        diff_ids: &[Digest],
        early: &mut EarlyLayers,
        progress: &mut dyn FnMut(LayerProgress),
    ) -> Result<(Vec<Digest>, Vec<LayerRecord>)> {
        if layers.len() != diff_ids.len() {
            return Err(ImageError::Archive(format!(
                "the manifest has {} layers but the config {} diff_ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        let chain = hafen_snapshot::chain_ids(diff_ids);
        let mut records = Vec::new();
        let mut parent: Option<String> = None;
        for (index, ((blob, media_type), chain_id)) in layers.iter().zip(&chain).enumerate() {
            let key = chain_id.to_string();
            lease.hold(Resource::Snapshot, &key)?;
            let existing = self.snapshots.stat(&key)?;
            if existing.as_ref().is_some_and(|s| s.kind == "committed") {
                // Unpacked already; a blob not known to hold this layer is
                // still checked, so that no manifest names a wrong one.
                let known = self
                    .db
                    .read(|tx| tx.layer(blob))?
                    .is_some_and(|l| l.diff_id == diff_ids[index]);
                if !known {
                    records.push(self.verify_layer(index, blob, media_type, &diff_ids[index])?);
                }
                parent = Some(key);
                continue;
            }
            let size = self.content.info(blob)?.map_or(0, |i| i.size);
            // A base layer unpacked while the archive was read.
            if let Some(layer) = (index == 0)
                .then(|| early.take(blob, &diff_ids[index]))
                .flatten()
            {
                for done in [false, true] {
                    progress(LayerProgress {
                        diff_id: diff_ids[index].clone(),
                        size,
                        done,
                    });
                }
                match self.commit_early(&key, &layer, blob, media_type) {
                    Ok(record) => records.push(record),
                    Err(e) => {
                        early.discard(&layer);
                        return Err(e);
                    }
                }
                parent = Some(key);
                continue;
            }
            progress(LayerProgress {
                diff_id: diff_ids[index].clone(),
                size,
                done: false,
            });
            let started = std::time::Instant::now();
            let record = self.unpack_one(
                lease,
                index,
                blob,
                media_type,
                &diff_ids[index],
                &key,
                parent.as_deref(),
            )?;
            let secs = started.elapsed().as_secs_f64();
            tracing::debug!(
                "unpacked layer {} ({} bytes) in {secs:.3} s: {:.0} MB/s",
                diff_ids[index],
                record.diff_size,
                record.diff_size as f64 / 1e6 / secs.max(1e-9)
            );
            records.push(record);
            progress(LayerProgress {
                diff_id: diff_ids[index].clone(),
                size,
                done: true,
            });
            parent = Some(key);
        }
        Ok((chain, records))
    }

    /// Commits a layer unpacked early as the snapshot `chain_id`.
    fn commit_early(
        &self,
        chain_id: &str,
        layer: &EarlyLayer,
        blob: &Digest,
        media_type: &str,
    ) -> Result<LayerRecord> {
        match self
            .snapshots
            .commit(chain_id, &layer.key, Some(layer.size))
        {
            Ok(_) => {}
            // Another unpack of the same layer finished first.
            Err(SnapshotError::Exists(_)) => self.snapshots.remove(&layer.key)?,
            Err(e) => return Err(e.into()),
        }
        Ok(LayerRecord {
            blob: blob.clone(),
            diff_id: layer.diff_id.clone(),
            media_type: media_type.to_string(),
            diff_size: layer.diff_size,
        })
    }

    /// Checks that a layer blob decompresses to `diff_id`.
    fn verify_layer(
        &self,
        index: usize,
        blob: &Digest,
        media_type: &str,
        diff_id: &Digest,
    ) -> Result<LayerRecord> {
        let reader = self.content.reader(blob)?;
        let (_, decompressed) = compression::decompress(reader)
            .map_err(crate::io_err(format!("cannot read layer {blob}")))?;
        let mut hashing = HashingReader::new(decompressed, diff_id.algorithm());
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(crate::io_err(format!("cannot read layer {blob}")))?;
        let (actual, diff_size) = hashing.finish();
        if actual != *diff_id {
            return Err(ImageError::DiffId {
                index,
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(LayerRecord {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            media_type: media_type.to_string(),
            diff_size,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn unpack_one(
        &self,
        lease: &Lease<'_>,
        index: usize,
        blob: &Digest,
        media_type: &str,
        diff_id: &Digest,
        chain_id: &str,
        parent: Option<&str>,
    ) -> Result<LayerRecord> {
        let key = format!("{EXTRACT_PREFIX}{}-{index}", lease.id);
        lease.hold(Resource::Snapshot, &key)?;
        self.snapshots.prepare(&key, parent)?;
        let result = (|| -> Result<LayerRecord> {
            let target = self.snapshots.apply_target(&key)?;
            let reader = self.content.reader(blob)?;
            let (_, decompressed) = compression::decompress(reader)
                .map_err(crate::io_err(format!("cannot read layer {blob}")))?;
            // Decompressing, hashing and the apply each run on a thread.
            let mut hashing = compression::read_ahead(HashingReader::new(
                compression::read_ahead(decompressed),
                diff_id.algorithm(),
            ));
            let applied = apply(
                &mut hashing,
                &target.dir,
                &Options {
                    whiteouts: target.whiteouts,
                    lowers: &target.lowers,
                    chown: true,
                },
            )?;
            let (actual, diff_size) = hashing
                .finish()
                .map_err(crate::io_err(format!("cannot read layer {blob}")))?
                .finish();
            if actual != *diff_id {
                return Err(ImageError::DiffId {
                    index,
                    expected: diff_id.to_string(),
                    actual: actual.to_string(),
                });
            }
            match self.snapshots.commit(chain_id, &key, Some(applied.size)) {
                Ok(_) => {}
                // Another unpack of the same layer finished first.
                Err(SnapshotError::Exists(_)) => self.snapshots.remove(&key)?,
                Err(e) => return Err(e.into()),
            }
            Ok(LayerRecord {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                media_type: media_type.to_string(),
                diff_size,
            })
        })();
        if result.is_err() {
            if let Err(e) = self.snapshots.remove(&key) {
                tracing::warn!("cannot remove the failed unpack {key}: {e}");
            }
        }
        result
    }
}
