//! `POST /build`: what the query asks for.

use std::collections::BTreeMap;

/// The start of the error a daemon gives for a context directory it does
/// not share with the client (the client then sends the context as a
/// tar).
pub const CONTEXT_NOT_SHARED: &str = "the build context directory is not shared with the daemon";

/// The options of a build, from the query of `POST /build` (Docker's
/// names: `t`, `dockerfile`, `buildargs`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `t`: the names to give the image (several).
    pub tags: Vec<String>,
    /// `dockerfile`: the Dockerfile's path in the context.
    pub dockerfile: String,
    /// `q`: only the image ID is reported.
    pub quiet: bool,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`.
    pub pull: bool,
    /// `buildargs` (JSON object; a `null` value: from the client's
    /// environment, unset here).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels` (JSON object).
    pub labels: BTreeMap<String, String>,
    /// `target`.
    pub target: Option<String>,
    /// `networkmode` for RUN steps.
    pub network: Option<String>,
    /// `platform`.
    pub platform: Option<String>,
    /// `cachefrom` (JSON list of images).
    pub cache_from: Vec<String>,
    /// `remote`: a URL context (refused: hafen builds from the body).
    pub remote: Option<String>,
    /// `outputs`: `type=local,dest=...` or `type=tar` (hafen: the context
    /// of the export is written back in the response, see the CLI).
    pub outputs: Option<String>,
    /// `version`: `1` (classic protocol) or `2` (BuildKit sessions).
    pub version: String,
    /// hafen's own `context`: the context is this directory of the
    /// daemon's machine (the CLI's, on a local socket), read in place
    /// instead of sent as a tar; the body is then empty, or the
    /// Dockerfile's text.
    pub context_dir: Option<String>,
    /// With `context_dir`: the directory's `device:inode` as the client
    /// sees it; the daemon refuses a directory that is not the same (the
    /// client then sends a tar).
    pub context_id: Option<String>,
    /// hafen's own secrets for `RUN --mount=type=secret` (the header
    /// `X-Hafen-Build-Secrets`: a percent-encoded JSON object of ID to
    /// content), never written into an image.
    pub secrets: BTreeMap<String, String>,
}
