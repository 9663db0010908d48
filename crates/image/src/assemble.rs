//! What the builder needs of the store: images made from layers the
//! store has (`assemble`: a build's result, or the short-lived image a
//! build step's container starts from), and the build cache: layers kept
//! alive by persistent leases named `build-cache/<key>`, so that a
//! build's intermediate steps are not images (nothing dangling is left)
//! and yet are never collected until `builder prune`.

use hafen_oci::Digest;
use hafen_store::meta::Resource;

use crate::config::{ImageConfig, RootFs};
use crate::{ImageError, ImageStore, Result};

/// The prefix of the leases of the build cache (kept across restarts).
pub const BUILD_CACHE_LEASE: &str = "build-cache/";

impl ImageStore {
    /// Writes an image with the layers `diff_ids` (the store must have
    /// them) and the configuration `config` (its `rootfs` is filled in
    /// here; an empty architecture or OS is the store's platform). The
    /// same inputs make the same image ID.
    pub fn assemble(&self, diff_ids: &[Digest], mut config: ImageConfig) -> Result<Digest> {
        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        if config.architecture.is_empty() {
            config.architecture = self.platform.architecture.clone();
            config.variant = self.platform.variant.clone().unwrap_or_default();
        }
        if config.os.is_empty() {
            config.os = self.platform.os.clone();
        }
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
        };
        let chain = hafen_snapshot::chain_ids(diff_ids)
            .last()
            .map(Digest::to_string);
        if let Some(c) = &chain
            && self.snapshots.stat(c)?.is_none()
        {
            return Err(ImageError::NotFound(format!("the snapshot of layers {c}")));
        }
        // Made before (an unchanged rebuild): nothing to write.
        let id = Digest::sha256(&crate::manifest::to_bytes(&config));
        if self.db.read(|tx| tx.image(&id))?.is_some() {
            return Ok(id);
        }
        let layers = self.layer_descriptors(diff_ids)?;
        let lease = self.lease("assemble")?;
        self.write_image(&lease, &config, &layers, None, chain, None, None)
    }

    /// The layers (diff IDs) of an image.
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<Digest>> {
        crate::diff_ids(&*self.config(id)?)
    }

    /// Whether the store has the layers `diff_ids` (blobs and snapshot).
    pub fn has_layers(&self, diff_ids: &[Digest]) -> bool {
        let Some(chain) = hafen_snapshot::chain_ids(diff_ids)
            .last()
            .map(Digest::to_string)
        else {
            return true;
        };
        matches!(self.snapshots.stat(&chain), Ok(Some(_)))
            && self.layer_descriptors(diff_ids).is_ok()
    }

    /// Keeps the layers `diff_ids` for the build cache entry `key`.
    pub fn keep_layers(&self, key: &str, diff_ids: &[Digest]) -> Result<()> {
        let id = format!("{BUILD_CACHE_LEASE}{key}");
        let blobs = self.layer_descriptors(diff_ids)?;
        let chain = hafen_snapshot::chain_ids(diff_ids)
            .last()
            .map(Digest::to_string);
        self.db.write(|tx| {
            tx.delete_lease(&id)?;
            tx.create_lease(&id)?;
            for b in &blobs {
                tx.lease_add(&id, Resource::Content, &b.digest.to_string())?;
            }
            if let Some(c) = &chain {
                tx.lease_add(&id, Resource::Snapshot, c)?;
            }
            Ok::<_, ImageError>(())
        })
    }

    /// Ends every build cache lease and collects what only they kept;
    /// returns the keys and the bytes freed.
    pub fn drop_build_cache(&self) -> Result<(Vec<String>, u64)> {
        let _guard = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let leases: Vec<String> = self
            .db
            .read(|tx| tx.leases())?
            .into_iter()
            .filter(|l| l.starts_with(BUILD_CACHE_LEASE))
            .collect();
        self.db.write(|tx| {
            for l in &leases {
                tx.delete_lease(l)?;
            }
            Ok::<_, ImageError>(())
        })?;
        let (_, freed) = self.collect_locked()?;
        Ok((
            leases
                .iter()
                .map(|l| l.trim_start_matches(BUILD_CACHE_LEASE).to_string())
                .collect(),
            freed,
        ))
    }

    /// Deletes an image nobody names (a build step's). What only it held
    /// (its config and manifest; its layers are the build cache's) goes at
    /// the next collection: a build makes and deletes many of them.
    pub fn delete_untagged(&self, id: &Digest) -> Result<()> {
        let _guard = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        self.db.write(|tx| {
            if tx.tags_of(id)?.is_empty() {
                tx.delete_image(id)?;
            }
            Ok::<_, ImageError>(())
        })?;
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }
}
