//! hafen's image store, in the containerd model: a content store of blobs
//! named by digest ([`content`]), a metadata database with a versioned
//! schema ([`meta`]), and mark-and-sweep garbage collection from images and
//! leases ([`gc`]).
//!
//! Snapshots (unpacked layers) live in the `hafen-snapshot` crate; their
//! records are in this crate's database so that one transaction can change
//! images and snapshots together.

pub mod content;
pub mod gc;
pub mod meta;

pub use content::{ContentError, ContentStore};
pub use meta::{Db, DbError, Tx};
