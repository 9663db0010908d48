//! The Docker Engine API as hafen speaks it.
//!
//! [`server`] serves it on a unix socket for any [`server::Backend`] (the
//! engine implements one); [`client`] is what the `hafen` CLI uses to talk to
//! a daemon, exactly as the `docker` CLI would. [`models`] are the JSON
//! shapes, rendered for the API version a client asked for
//! ([`version::ApiVersion`]). The contract is moby's `api/swagger.yaml`
//! together with what dockerd really sends.

pub mod client;
pub mod error;
pub mod filters;
pub mod models;
pub mod server;
pub mod version;

pub use error::ApiError;
pub use version::ApiVersion;
