//! `rmi` and `image prune`, with Docker's rules: removing a name only
//! untags unless it was the image's last; removing by ID needs `force` when
//! the image has several tags; an image with child images stays.

use hafen_oci::Digest;

use crate::resolve::Named;
use crate::{ImageError, ImageStore, Result, familiar};

/// One line of a removal's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    /// A name was removed.
    Untagged(String),
    /// An image or a layer (by chain ID) was deleted.
    Deleted(String),
}

impl ImageStore {
    /// Removes an image or one of its names (`docker rmi`).
    pub fn remove(&self, name: &str, force: bool, prune_parents: bool) -> Result<Vec<DeleteItem>> {
        let resolved = self.resolve(name)?;
        let id = resolved.record.id.clone();
        let short = id.short().to_string();
        let mut items = Vec::new();
        let _guard = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let (tags, digests, children) = self.db.read(|tx| {
            let children = tx
                .images()?
                .into_iter()
                .filter(|i| i.parent.as_ref() == Some(&id))
                .count();
            Ok::<_, ImageError>((tx.tags_of(&id)?, tx.repo_digests_of(&id)?, children))
        })?;
        match &resolved.named {
            Named::Reference(reference) => {
                let stored = reference.to_string();
                let untagged = self.db.write(|tx| {
                    let mut untagged = Vec::new();
                    if reference.digest().is_some() {
                        let key = reference
                            .repository()
                            .with_digest(
                                reference
                                    .digest()
                                    .cloned()
                                    .ok_or_else(|| ImageError::NotFound(name.to_string()))?,
                            )
                            .to_string();
                        if tx.delete_repo_digest(&key)? {
                            untagged.push(key);
                        }
                    } else if tx.delete_tag(&stored)? {
                        untagged.push(stored.clone());
                        // No tag of this repository left: its digests go too.
                        let repo = reference.name();
                        let same_repo = |n: &String, sep: char| {
                            n.rsplit_once(sep).is_some_and(|(r, _)| r == repo)
                        };
                        if !tx.tags_of(&id)?.iter().any(|t| same_repo(t, ':')) {
                            for d in tx.repo_digests_of(&id)? {
                                if same_repo(&d, '@') && tx.delete_repo_digest(&d)? {
                                    untagged.push(d);
                                }
                            }
                        }
                    }
                    Ok::<_, ImageError>(untagged)
                })?;
                for u in untagged {
                    items.push(DeleteItem::Untagged(familiar(&u)));
                    self.emit(
                        "untag",
                        &id.to_string(),
                        self.event_attributes(&id, &id.to_string()),
                    );
                }
                let left = self.db.read(|tx| {
                    Ok::<_, ImageError>(tx.tags_of(&id)?.len() + tx.repo_digests_of(&id)?.len())
                })?;
                if left > 0 || children > 0 {
                    return Ok(items);
                }
            }
            Named::Id => {
                if children > 0 {
                    return Err(ImageError::Conflict(format!(
                        "unable to delete {short} (cannot be forced) - image has dependent child images"
                    )));
                }
                if tags.len() > 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                self.db.write(|tx| {
                    for t in &tags {
                        tx.delete_tag(t)?;
                    }
                    for d in &digests {
                        tx.delete_repo_digest(d)?;
                    }
                    Ok::<_, ImageError>(())
                })?;
                for n in tags.iter().chain(&digests) {
                    items.push(DeleteItem::Untagged(familiar(n)));
                    self.emit(
                        "untag",
                        &id.to_string(),
                        self.event_attributes(&id, &id.to_string()),
                    );
                }
            }
        }
        items.extend(self.delete_image_locked(&id, prune_parents)?);
        Ok(items)
    }

    /// Deletes an untagged image and collects what it held (the GC lock is
    /// held by the caller).
    pub(crate) fn delete_image_locked(
        &self,
        id: &Digest,
        prune_parents: bool,
    ) -> Result<Vec<DeleteItem>> {
        let parent = self.db.read(|tx| tx.image(id))?.and_then(|r| r.parent);
        let attrs = self.event_attributes(id, &id.to_string());
        self.db.write(|tx| tx.delete_image(id))?;
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.emit("delete", &id.to_string(), attrs);
        let mut items = vec![DeleteItem::Deleted(id.to_string())];
        let (removed, _) = self.collect_locked()?;
        items.extend(
            removed
                .into_iter()
                .filter(|k| k.starts_with("sha256:"))
                .map(DeleteItem::Deleted),
        );
        if prune_parents {
            if let Some(p) = parent {
                let (names, children) = self.db.read(|tx| {
                    let children = tx
                        .images()?
                        .iter()
                        .filter(|i| i.parent.as_ref() == Some(&p))
                        .count();
                    Ok::<_, ImageError>((
                        tx.tags_of(&p)?.len() + tx.repo_digests_of(&p)?.len(),
                        children,
                    ))
                })?;
                if names == 0 && children == 0 && self.db.read(|tx| tx.image(&p))?.is_some() {
                    items.extend(self.delete_image_locked(&p, true)?);
                }
            }
        }
        Ok(items)
    }

    /// Removes unused images: untagged ones, or with `all` every one not in
    /// use; `until` and `labels` narrow the choice. Returns what was
    /// deleted and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        until: Option<i64>,
        labels: &[String],
        labels_not: &[String],
    ) -> Result<(Vec<DeleteItem>, u64)> {
        let before = self.layer_bytes()?;
        let images = self.summaries()?;
        let parents: std::collections::HashSet<Digest> =
            images.iter().filter_map(|i| i.parent.clone()).collect();
        let label_ok =
            |l: &std::collections::BTreeMap<String, String>, f: &str| match f.split_once('=') {
                Some((k, v)) => l.get(k).is_some_and(|x| x == v),
                None => l.contains_key(f),
            };
        let mut items = Vec::new();
        for image in images {
            let untagged = image.repo_tags.is_empty();
            if parents.contains(&image.id) && untagged {
                continue;
            }
            if !all && !untagged {
                continue;
            }
            if until.is_some_and(|u| image.created >= u)
                || !labels.iter().all(|f| label_ok(&image.labels, f))
                || labels_not.iter().any(|f| label_ok(&image.labels, f))
            {
                continue;
            }
            let names: Vec<String> = image
                .repo_tags
                .iter()
                .chain(&image.repo_digests)
                .cloned()
                .collect();
            let result = if names.is_empty() {
                self.remove(&image.id.to_string(), false, true)
            } else {
                let mut out = Vec::new();
                for n in names {
                    match self.remove(&n, false, true) {
                        Ok(i) => out.extend(i),
                        Err(ImageError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            };
            match result {
                Ok(i) => items.extend(i),
                Err(ImageError::Conflict(_) | ImageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let reclaimed = before.saturating_sub(self.layer_bytes()?);
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("reclaimed".to_string(), reclaimed.to_string());
        self.emit("prune", "", attrs);
        Ok((items, reclaimed))
    }

    /// Bytes of all committed snapshots.
    fn layer_bytes(&self) -> Result<u64> {
        Ok(self
            .db
            .read(|tx| tx.snapshots())?
            .iter()
            .filter(|s| s.kind == "committed")
            .map(|s| s.size.unwrap_or(0))
            .sum())
    }
}
