//! Pure OCI types shared by every hafen crate.
//!
//! The OCI runtime and image specifications' types come from the `oci-spec`
//! crate and are re-exported here, so that the rest of hafen names one place
//! for them. What this crate adds is the small amount of policy hafen applies
//! to those types without doing any I/O: which specification versions hafen
//! accepts, strict content digests, and image references as Docker reads
//! them.

pub use oci_spec;
pub use oci_spec::{image, runtime};

pub mod digest;
pub mod path;
pub mod reference;
pub mod version;

pub use digest::{Algorithm, Digest, DigestError};
pub use reference::{Reference, ReferenceError};
pub use version::{SpecVersion, VersionError};
