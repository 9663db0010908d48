//! What the build route needs of the backend.

use std::io::Read;

use crate::ApiError;
use crate::models::{BuildOptions, JsonMessage};

/// The build part of the [`super::Backend`].
pub trait BuildBackend {
    /// `POST /build`: builds from the context tar (or a Dockerfile alone)
    /// read from `input`, sending progress to `out` as Docker's JSON
    /// messages (`stream`, then `aux` with the ID). A failed build is
    /// reported as an error message with its code, and is not an `Err`:
    /// `Err` is for requests refused before anything started.
    fn build(
        &self,
        options: BuildOptions,
        input: Box<dyn Read + Send>,
        out: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError>;
    /// `POST /build/prune`: removes the build cache; returns the number
    /// of bytes freed and the IDs of the cache records removed.
    fn build_prune(&self, all: bool) -> Result<(u64, Vec<String>), ApiError>;
}
