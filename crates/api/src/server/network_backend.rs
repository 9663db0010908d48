//! What the network routes need of the backend.

use crate::ApiError;
use crate::filters::Filters;
use crate::models::{
    Network, NetworkConnect, NetworkCreate, NetworkCreateResponse, NetworkDisconnect,
    NetworkPruneReport,
};

/// The network part of the [`super::Backend`].
pub trait NetworkBackend {
    /// `GET /networks` (filters `dangling`, `driver`, `id`, `label`,
    /// `name`, `scope`, `type`; the backend checks and applies them).
    fn network_list(&self, filters: &Filters) -> Result<Vec<Network>, ApiError>;
    /// `GET /networks/{id}`: by full name, full ID or ID prefix, with the
    /// running containers attached in `Containers`.
    fn network_inspect(&self, key: &str) -> Result<Network, ApiError>;
    /// `POST /networks/create`.
    fn network_create(&self, request: &NetworkCreate) -> Result<NetworkCreateResponse, ApiError>;
    /// `DELETE /networks/{id}`.
    fn network_delete(&self, key: &str) -> Result<(), ApiError>;
    /// `POST /networks/{id}/connect`.
    fn network_connect(&self, key: &str, request: &NetworkConnect) -> Result<(), ApiError>;
    /// `POST /networks/{id}/disconnect`.
    fn network_disconnect(&self, key: &str, request: &NetworkDisconnect) -> Result<(), ApiError>;
    /// `POST /networks/prune` (filters `until`, `label`, `label!`).
    fn network_prune(&self, filters: &Filters) -> Result<NetworkPruneReport, ApiError>;
}
