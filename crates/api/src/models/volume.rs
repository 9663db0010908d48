//! Volumes: `/volumes/…`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A volume, as `GET /volumes/{name}` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    /// RFC 3339 time of creation.
    pub created_at: String,
    /// `local`.
    pub driver: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Where its files are on the host.
    pub mountpoint: String,
    /// Its name.
    pub name: String,
    /// The driver's options (`type`, `device`, `o`).
    pub options: BTreeMap<String, String>,
    /// `local`.
    pub scope: String,
    /// Size and reference count (only from `/system/df`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsage>,
}

/// Disk use of a volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeUsage {
    /// Bytes (-1: not computed).
    pub size: i64,
    /// Containers using it (-1: not computed).
    pub ref_count: i64,
}

/// `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreate {
    /// Its name (made up when empty).
    pub name: String,
    /// `local` (or empty).
    pub driver: String,
    /// Options for the driver.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    /// The volumes.
    pub volumes: Vec<Volume>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumePruneReport {
    /// Names of removed volumes (null when none).
    pub volumes_deleted: Option<Vec<String>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}
