//! Mark and sweep.
//!
//! Roots are the images (their manifest or index, their config, their
//! unpacked chain) and whatever a lease holds; blobs reach further blobs
//! through `content_refs` (a manifest its config and layers) and snapshots
//! reach their parents. Snapshots that are not committed layers (a
//! container's writable layer) are kept: their owners remove them. What is
//! not reached is garbage.
//!
//! [`plan`] only reads; the caller removes what it lists, with the store's
//! writers held off so that nothing new appears unreferenced meanwhile.

use std::collections::{BTreeSet, HashMap, HashSet};

use hafen_oci::Digest;

use crate::meta::{DbError, Resource, Tx};

/// What a collection would remove.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Blobs nothing refers to, with their sizes.
    pub content: Vec<(Digest, u64)>,
    /// Snapshots nothing refers to, children before their parents.
    pub snapshots: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.snapshots.is_empty()
    }
}

/// The blobs reachable from the roots.
pub fn live_content(tx: &Tx<'_>) -> Result<HashSet<Digest>, DbError> {
    let mut stack: Vec<Digest> = Vec::new();
    for image in tx.images()? {
        stack.push(image.target.digest);
        stack.push(image.id);
    }
    for key in tx.leased(Resource::Content)? {
        if let Ok(d) = Digest::parse(&key) {
            stack.push(d);
        }
    }
    let mut live = HashSet::new();
    while let Some(d) = stack.pop() {
        if live.insert(d.clone()) {
            stack.extend(tx.content_children(&d)?);
        }
    }
    Ok(live)
}

/// The snapshots reachable from the roots.
pub fn live_snapshots(tx: &Tx<'_>) -> Result<HashSet<String>, DbError> {
    let all = tx.snapshots()?;
    let parents: HashMap<&str, Option<&str>> = all
        .iter()
        .map(|s| (s.key.as_str(), s.parent.as_deref()))
        .collect();
    let mut stack: Vec<String> = tx
        .images()?
        .into_iter()
        .filter_map(|i| i.chain_id)
        .collect();
    stack.extend(tx.leased(Resource::Snapshot)?);
    stack.extend(
        all.iter()
            .filter(|s| s.kind != "committed")
            .map(|s| s.key.clone()),
    );
    let mut live = HashSet::new();
    while let Some(key) = stack.pop() {
        if !live.insert(key.clone()) {
            continue;
        }
        if let Some(Some(parent)) = parents.get(key.as_str()) {
            stack.push((*parent).to_string());
        }
    }
    Ok(live)
}

/// Plans a collection: the blobs in `on_disk` and the snapshot records
/// that nothing live reaches.
pub fn plan(tx: &Tx<'_>, on_disk: &[(Digest, u64)]) -> Result<Plan, DbError> {
    let content_live = live_content(tx)?;
    let snapshots_live = live_snapshots(tx)?;
    let content = on_disk
        .iter()
        .filter(|(d, _)| !content_live.contains(d))
        .cloned()
        .collect();
    // A child is always made after its parent, so a higher directory
    // number goes first.
    let mut dead: Vec<_> = tx
        .snapshots()?
        .into_iter()
        .filter(|s| !snapshots_live.contains(&s.key))
        .collect();
    dead.sort_by_key(|s| std::cmp::Reverse(s.id));
    let snapshots = dead.into_iter().map(|s| s.key).collect();
    Ok(Plan { content, snapshots })
}

/// The blobs that are layers of live images but are not in `on_disk`, for
/// consistency checks.
pub fn missing(tx: &Tx<'_>, on_disk: &[(Digest, u64)]) -> Result<BTreeSet<Digest>, DbError> {
    let present: HashSet<&Digest> = on_disk.iter().map(|(d, _)| d).collect();
    Ok(live_content(tx)?
        .into_iter()
        .filter(|d| !present.contains(d))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Db, ImageRecord, SnapshotRecord, Target};

    fn snap(key: &str, id: i64, parent: Option<&str>, kind: &str) -> SnapshotRecord {
        SnapshotRecord {
            key: key.into(),
            id,
            parent: parent.map(str::to_string),
            kind: kind.into(),
            created: 0,
            size: Some(1),
            labels: "{}".into(),
        }
    }

    #[test]
    fn marks_from_images_and_leases_and_sweeps_the_rest() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = Db::open(&dir.path().join("meta.db")).unwrap_or_else(|e| panic!("{e}"));
        let d = |s: &str| Digest::sha256(s.as_bytes());
        let (manifest, config, layer, orphan, leased) =
            (d("m"), d("c"), d("l"), d("orphan"), d("leased"));
        db.write(|tx| {
            tx.put_image(&ImageRecord {
                id: config.clone(),
                target: Target {
                    digest: manifest.clone(),
                    media_type: "m".into(),
                    size: 1,
                },
                created: 0,
                last_tag_time: None,
                chain_id: Some("top".into()),
                parent: None,
            })?;
            tx.add_content_ref(&manifest, &config)?;
            tx.add_content_ref(&manifest, &layer)?;
            tx.put_snapshot(&snap("base", 1, None, "committed"))?;
            tx.put_snapshot(&snap("top", 2, Some("base"), "committed"))?;
            tx.put_snapshot(&snap("other", 3, Some("base"), "committed"))?;
            tx.put_snapshot(&snap("other-child", 4, Some("other"), "committed"))?;
            tx.put_snapshot(&snap("container-rw", 5, Some("top"), "active"))?;
            tx.create_lease("l")?;
            tx.lease_add("l", Resource::Content, &leased.to_string())?;
            Ok::<_, DbError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let on_disk: Vec<(Digest, u64)> = [&manifest, &config, &layer, &orphan, &leased]
            .into_iter()
            .map(|d| (d.clone(), 1))
            .collect();
        let p = db
            .read(|tx| plan(tx, &on_disk))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.content, vec![(orphan, 1)]);
        assert_eq!(
            p.snapshots,
            vec!["other-child".to_string(), "other".to_string()]
        );
        db.write(|tx| tx.delete_lease("l"))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = db
            .read(|tx| plan(tx, &on_disk))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.content.len(), 2, "the lease no longer holds its blob");
    }
}
