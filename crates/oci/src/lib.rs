//! Pure OCI types shared by every hafen crate.
//!
//! The OCI runtime specification's types come from the `oci-spec` crate and are
//! re-exported here, so that the rest of hafen names one place for them. What
//! this crate adds is the small amount of policy hafen applies to those types
//! without doing any I/O: which specification versions hafen accepts.

pub use oci_spec;
pub use oci_spec::runtime;

pub mod version;

pub use version::{SpecVersion, VersionError};
