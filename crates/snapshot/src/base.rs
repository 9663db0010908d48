//! What both snapshotters share: records in the database and a directory
//! per snapshot under the root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hafen_store::Db;
use hafen_store::meta::{SnapshotRecord, now_nanos};

use crate::{Result, SnapshotError, io_err};

#[derive(Debug)]
pub(crate) struct Base {
    pub root: PathBuf,
    pub db: Arc<Db>,
}

impl Base {
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Base> {
        std::fs::create_dir_all(root)
            .map_err(io_err(format!("cannot create {}", root.display())))?;
        Ok(Base {
            root: root.to_path_buf(),
            db,
        })
    }

    pub fn dir_of(&self, record: &SnapshotRecord) -> PathBuf {
        self.root.join(record.id.to_string())
    }

    pub fn record(&self, key: &str) -> Result<SnapshotRecord> {
        self.db
            .read(|tx| tx.snapshot(key))?
            .ok_or_else(|| SnapshotError::NotFound(key.to_string()))
    }

    /// A new record and its (empty) directory; the record is written only
    /// once the directory exists, and the directory is removed if the
    /// record cannot be written.
    pub fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: &str,
        subdirs: &[&str],
    ) -> Result<(SnapshotRecord, PathBuf)> {
        self.db.write(|tx| {
            if tx.snapshot(key)?.is_some() {
                return Err(SnapshotError::Exists(key.to_string()));
            }
            if let Some(parent) = parent {
                let p = tx
                    .snapshot(parent)?
                    .ok_or_else(|| SnapshotError::NotFound(parent.to_string()))?;
                if p.kind != "committed" {
                    return Err(SnapshotError::ParentNotCommitted(parent.to_string()));
                }
            }
            let record = SnapshotRecord {
                key: key.to_string(),
                id: tx.next_snapshot_id()?,
                parent: parent.map(str::to_string),
                kind: kind.to_string(),
                created: now_nanos(),
                size: None,
                labels: "{}".into(),
            };
            let dir = self.dir_of(&record);
            // A directory left by a crash between mkdir and the record.
            let _ = std::fs::remove_dir_all(&dir);
            for sub in subdirs {
                std::fs::create_dir_all(dir.join(sub))
                    .map_err(io_err(format!("cannot create {}", dir.display())))?;
            }
            if let Err(e) = tx.put_snapshot(&record) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
            Ok((record, dir))
        })
    }

    /// The committed chain below a snapshot, nearest first.
    pub fn ancestors(&self, record: &SnapshotRecord) -> Result<Vec<SnapshotRecord>> {
        let mut out = Vec::new();
        let mut next = record.parent.clone();
        while let Some(key) = next {
            let r = self.record(&key)?;
            next = r.parent.clone();
            out.push(r);
        }
        Ok(out)
    }

    pub fn commit(&self, name: &str, key: &str, size: u64) -> Result<SnapshotRecord> {
        self.db.write(|tx| {
            let r = tx
                .snapshot(key)?
                .ok_or_else(|| SnapshotError::NotFound(key.to_string()))?;
            if r.kind != "active" {
                return Err(SnapshotError::NotActive(key.to_string()));
            }
            if tx.snapshot(name)?.is_some() {
                return Err(SnapshotError::Exists(name.to_string()));
            }
            tx.commit_snapshot(key, name, size)?;
            Ok(r)
        })
    }

    /// Removes the record, then the directory (a directory without a
    /// record is garbage that the next start-up sweep removes).
    pub fn remove(&self, key: &str) -> Result<()> {
        let record = self.db.write(|tx| {
            let r = tx
                .snapshot(key)?
                .ok_or_else(|| SnapshotError::NotFound(key.to_string()))?;
            if tx
                .snapshots()?
                .iter()
                .any(|s| s.parent.as_deref() == Some(key))
            {
                return Err(SnapshotError::HasChildren(key.to_string()));
            }
            tx.delete_snapshot(key)?;
            Ok::<_, SnapshotError>(r)
        })?;
        let dir = self.dir_of(&record);
        crate::fsutil::remove_tree(&dir).map_err(io_err(format!("cannot remove {}", dir.display())))
    }

    /// Removes directories under the root that no record names (left by a
    /// crash).
    pub fn sweep_orphans(&self) -> Result<usize> {
        let known: std::collections::HashSet<String> = self
            .db
            .read(|tx| tx.snapshots())?
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
        let mut removed = 0;
        let entries = std::fs::read_dir(&self.root).map_err(io_err("cannot list snapshots"))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<i64>().is_ok() && !known.contains(&name) {
                crate::fsutil::remove_tree(&entry.path())
                    .map_err(io_err(format!("cannot remove {}", entry.path().display())))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
