//! Finding an image by what a user typed: a reference (`busybox`,
//! `busybox:1`, `busybox@sha256:…`), a full ID (`sha256:<hex>` or `<hex>`)
//! or a prefix of one (`e9576207`). A name wins over an ID prefix, as in
//! Docker.

use hafen_oci::reference::is_full_hex;
use hafen_oci::{Digest, Reference};
use hafen_store::meta::ImageRecord;

use crate::{ImageError, ImageStore, Result};

/// How an image was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    /// By a tag or digest reference (normalised, with a default tag).
    Reference(Reference),
    /// By its ID or an ID prefix.
    Id,
}

/// An image found by name.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub record: ImageRecord,
    pub named: Named,
}

impl ImageStore {
    /// Finds an image.
    pub(crate) fn resolve(&self, text: &str) -> Result<Resolved> {
        if text.is_empty() {
            return Err(ImageError::Invalid("image name cannot be blank".into()));
        }
        let full_id = text
            .strip_prefix("sha256:")
            .filter(|h| is_full_hex(h))
            .or_else(|| is_full_hex(text).then_some(text));
        if let Some(hex) = full_id {
            let id = Digest::from_hex(hafen_oci::Algorithm::Sha256, hex)
                .map_err(|e| ImageError::Invalid(e.to_string()))?;
            let record = self
                .db
                .read(|tx| tx.image(&id))?
                .ok_or_else(|| ImageError::NotFound(text.to_string()))?;
            return Ok(Resolved {
                record,
                named: Named::Id,
            });
        }
        // `sha256:<prefix>` is an ID prefix, never a name.
        if let Some(prefix) = text.strip_prefix("sha256:") {
            return self.by_prefix(prefix, text);
        }
        let reference = Reference::parse_normalized(text)?.with_default_tag();
        let found = self.db.read(|tx| match reference.digest() {
            Some(d) => tx.repo_digest(&reference.repository().with_digest(d.clone()).to_string()),
            None => tx.tag(&reference.to_string()),
        })?;
        if let Some(id) = found {
            if let Some(record) = self.db.read(|tx| tx.image(&id))? {
                return Ok(Resolved {
                    record,
                    named: Named::Reference(reference),
                });
            }
        }
        let hexish = text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if hexish {
            if let Ok(r) = self.by_prefix(text, &reference.familiar()) {
                return Ok(r);
            }
        }
        Err(ImageError::NotFound(reference.familiar()))
    }

    fn by_prefix(&self, prefix: &str, shown: &str) -> Result<Resolved> {
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ImageError::NotFound(shown.to_string()));
        }
        let matches = self
            .db
            .read(|tx| tx.images_with_prefix(&format!("sha256:{prefix}")))?;
        match matches.len() {
            0 => Err(ImageError::NotFound(shown.to_string())),
            1 => Ok(Resolved {
                record: matches
                    .into_iter()
                    .next()
                    .ok_or_else(|| ImageError::NotFound(shown.to_string()))?,
                named: Named::Id,
            }),
            _ => Err(ImageError::Invalid(format!(
                "image ID prefix {prefix} is ambiguous: give more digits"
            ))),
        }
    }
}
