//! What the volume routes need of the backend.

use crate::ApiError;
use crate::filters::Filters;
use crate::models::{Volume, VolumeCreate, VolumeList, VolumePruneReport};

/// The volume part of the [`super::Backend`].
pub trait VolumeBackend {
    /// `GET /volumes` (filters `name`, `label`, `dangling`, `driver`).
    fn volume_list(&self, filters: &Filters) -> Result<VolumeList, ApiError>;
    /// `POST /volumes/create`.
    fn volume_create(&self, request: &VolumeCreate) -> Result<Volume, ApiError>;
    /// `GET /volumes/{name}`.
    fn volume_inspect(&self, name: &str) -> Result<Volume, ApiError>;
    /// `DELETE /volumes/{name}`: with `force`, a missing volume is no
    /// error (one in use still is).
    fn volume_delete(&self, name: &str, force: bool) -> Result<(), ApiError>;
    /// `POST /volumes/prune`: filters `label`, `label!` and `all` (the
    /// route adds `all=true` for clients older than 1.42).
    fn volume_prune(&self, filters: &Filters) -> Result<VolumePruneReport, ApiError>;
    /// The volumes of `GET /system/df`, each with its `UsageData`.
    fn volume_usage(&self) -> Result<Vec<Volume>, ApiError>;
}
