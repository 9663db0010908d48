//! Early unpacking: a blob that may be a base layer is applied into a new
//! snapshot while the archive streams in, so that `load` reads and writes
//! each layer once instead of storing it and then reading it back.
//!
//! The archive says which blob is what only at its end, so this is a
//! guess: every large file is tried as a layer with no parent. Once the
//! manifests are read, an early snapshot whose blob is an image's first
//! layer and whose uncompressed digest is that layer's diff ID is committed
//! as is; every other is removed. (A later layer cannot be applied early:
//! its directory metadata and hardlinks may come from the layers below.)

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use hafen_oci::Digest;
use hafen_oci::digest::{Algorithm, Hasher};
use hafen_snapshot::apply::{Options, apply};
use hafen_snapshot::{Snapshotter, compression};
use hafen_store::meta::Resource;

use crate::unpack::EXTRACT_PREFIX;
use crate::{ImageStore, Lease, Result};

/// A layer unpacked early, not committed yet.
#[derive(Debug, Clone)]
pub(crate) struct EarlyLayer {
    /// The active snapshot holding it.
    pub key: String,
    /// Its uncompressed digest and size.
    pub diff_id: Digest,
    pub diff_size: u64,
    /// Its size as Docker counts it.
    pub size: u64,
}

/// Early layers by the digest of their blob. Those still here when it is
/// dropped (not used, or a failed or panicking load) are removed.
pub(crate) struct EarlyLayers {
    snapshots: Arc<dyn Snapshotter>,
    layers: HashMap<Digest, EarlyLayer>,
}

impl EarlyLayers {
    pub fn new(store: &ImageStore) -> EarlyLayers {
        EarlyLayers {
            snapshots: Arc::clone(&store.snapshots),
            layers: HashMap::new(),
        }
    }

    /// The early layer of `blob` if its diff ID is `diff_id`; taken out.
    pub fn take(&mut self, blob: &Digest, diff_id: &Digest) -> Option<EarlyLayer> {
        if self.layers.get(blob).is_some_and(|l| l.diff_id == *diff_id) {
            return self.layers.remove(blob);
        }
        None
    }

    /// Removes the early layers whose blobs are not in `keep`.
    pub fn retain(&mut self, keep: &HashSet<Digest>) {
        let drop: Vec<Digest> = self
            .layers
            .keys()
            .filter(|b| !keep.contains(*b))
            .cloned()
            .collect();
        for blob in drop {
            if let Some(layer) = self.layers.remove(&blob) {
                discard(self.snapshots.as_ref(), &layer.key);
            }
        }
    }

    /// Removes the snapshot of a layer that was taken but not committed.
    pub fn discard(&self, layer: &EarlyLayer) {
        discard(self.snapshots.as_ref(), &layer.key);
    }
}

impl Drop for EarlyLayers {
    fn drop(&mut self) {
        for (_, layer) in self.layers.drain() {
            discard(self.snapshots.as_ref(), &layer.key);
        }
    }
}

/// One blob being unpacked early, fed as it is read.
/// What the worker found: the diff ID (`None`: the blob's own digest), its
/// size, and the layer's size as Docker counts it.
type Unpacked = (Option<Digest>, u64, u64);

/// Dropped unfinished (an error or a panic in the load), it stops the
/// worker and removes the snapshot.
pub(crate) struct Early {
    key: String,
    snapshots: Arc<dyn Snapshotter>,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<Option<Unpacked>>>,
}

impl Early {
    /// Starts unpacking the `n`th large file of an archive into a new
    /// snapshot held by `lease`.
    pub fn start(store: &ImageStore, lease: &Lease<'_>, n: u64) -> Result<Early> {
        let key = format!("{EXTRACT_PREFIX}{}-early-{n}", lease.id);
        lease.hold(Resource::Snapshot, &key)?;
        store.snapshots.prepare(&key, None)?;
        let target = match store.snapshots.apply_target(&key) {
            Ok(t) => t,
            Err(e) => {
                let _ = store.snapshots.remove(&key);
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let spawned = std::thread::Builder::new()
            .name("early-unpack".into())
            .spawn(move || {
                let input = Chunks {
                    rx: Some(rx),
                    current: Vec::new(),
                    pos: 0,
                };
                let (kind, decompressed) = compression::decompress(input).ok()?;
                // An uncompressed blob's digest is its diff ID: the content
                // store hashes it already.
                let algorithm =
                    (kind != compression::Compression::None).then_some(Algorithm::Sha256);
                // Decompressing and hashing run beside the apply.
                let mut counted = compression::read_ahead(Counted {
                    inner: decompressed,
                    hasher: algorithm.map(Algorithm::hasher),
                    count: 0,
                });
                let applied = apply(
                    &mut counted,
                    &target.dir,
                    &Options {
                        whiteouts: target.whiteouts,
                        lowers: &[],
                        chown: true,
                    },
                );
                match applied.map(|a| (a, counted.finish())) {
                    Ok((applied, Ok(counted))) => Some((
                        counted.hasher.map(Hasher::finish),
                        counted.count,
                        applied.size,
                    )),
                    Ok((_, Err(e))) => {
                        tracing::debug!("not a layer after all: {e}");
                        None
                    }
                    Err(e) => {
                        tracing::debug!("not a layer after all: {e}");
                        None
                    }
                }
            });
        let worker = match spawned {
            Ok(w) => w,
            Err(e) => {
                discard(store.snapshots.as_ref(), &key);
                return Err(crate::io_err("cannot start an unpack thread")(e));
            }
        };
        Ok(Early {
            key,
            snapshots: Arc::clone(&store.snapshots),
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// The next bytes of the blob. Once the worker has given up (not a
    /// layer), they are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        if let Some(tx) = &self.tx {
            if tx.send(bytes.to_vec()).is_err() {
                self.tx = None;
            }
        }
    }

    /// The blob is complete (`blob` is its digest): the layer, if it was
    /// one, goes into `layers`; otherwise its snapshot is removed.
    pub fn finish(mut self, blob: &Digest, layers: &mut EarlyLayers) {
        self.tx = None;
        let result = self.worker.take().map(JoinHandle::join);
        match result {
            Some(Ok(Some((diff_id, diff_size, size)))) if !layers.layers.contains_key(blob) => {
                layers.layers.insert(
                    blob.clone(),
                    EarlyLayer {
                        key: std::mem::take(&mut self.key),
                        diff_id: diff_id.unwrap_or_else(|| blob.clone()),
                        diff_size,
                        size,
                    },
                );
            }
            // Dropping `self` removes the snapshot.
            _ => {}
        }
    }
}

impl Drop for Early {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        if !self.key.is_empty() {
            discard(self.snapshots.as_ref(), &self.key);
        }
    }
}

fn discard(snapshots: &dyn Snapshotter, key: &str) {
    if let Err(e) = snapshots.remove(key) {
        tracing::warn!("cannot remove the early unpack {key}: {e}");
    }
}

/// A reader that counts, and hashes if asked to.
struct Counted<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// The worker's end of the channel, as a reader.
struct Chunks {
    rx: Option<mpsc::Receiver<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.as_ref().map(mpsc::Receiver::recv) {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                _ => {
                    self.rx = None;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
