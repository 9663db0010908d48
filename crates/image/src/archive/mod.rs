//! Image archives: `docker save` tars (a `manifest.json`), OCI image
//! layouts (`oci-layout`, `index.json`, `blobs/`) and both at once, which
//! is what hafen writes.

mod load;
mod save;

pub use load::LoadProgress;

/// `manifest.json` of a Docker archive: one entry per image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ArchiveEntry {
    /// The path of the config in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar `name:tag` strings, or null.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// The paths of the layer tars, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}
