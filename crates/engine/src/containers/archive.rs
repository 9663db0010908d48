//! Placeholder until the real module lands.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
/// Archive errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArchiveError(String);
impl ArchiveError {
    /// Whether the path is missing.
    pub fn is_not_found(&self) -> bool {
        false
    }
}
/// Stat.
pub fn stat(_: &Path, _: &str) -> Result<serde_json::Value, ArchiveError> {
    Err(ArchiveError("todo".into()))
}
/// Get.
pub fn get(_: &Path, _: &str, _: &mut dyn Write) -> Result<(), ArchiveError> {
    Err(ArchiveError("todo".into()))
}
/// Put.
pub fn put(_: &Path, _: &str, _: impl Read, _: bool, _: bool) -> Result<(), ArchiveError> {
    Err(ArchiveError("todo".into()))
}
/// Export.
pub fn export(_: &Path, _: &mut dyn Write) -> Result<(), ArchiveError> {
    Err(ArchiveError("todo".into()))
}
/// Changes.
pub fn changes(
    _: &Path,
    _: &[PathBuf],
) -> Result<Vec<hafen_api::models::ChangeItem>, ArchiveError> {
    Err(ArchiveError("todo".into()))
}
