//! The image configuration (OCI image config with Docker's extensions).
//!
//! The bytes of a config are its identity (the image ID is their digest),
//! so hafen keeps them exactly as received; this model is for reading them
//! and for writing new ones (`import`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An image configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`).
    #[serde(default)]
    pub architecture: String,
    /// The image's comment (Docker: the commit or import message).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The default configuration of containers made from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// Docker: the configuration of the container the image was committed
    /// from (kept only for reading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<serde_json::Value>,
    /// Docker: the ID of that container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// When the image was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Docker: the engine version that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    /// One entry per build step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Docker: the parent image ID (local builds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// The layers, by uncompressed digest.
    pub rootfs: RootFs,
}

/// `rootfs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The digests of the uncompressed layer tars, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One step of the image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Who.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// A comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The container configuration inside an image config (Docker's field
/// names; the OCI subset has the same ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// Docker: hostname (empty in images).
    #[serde(default)]
    pub hostname: String,
    /// Docker: domain name.
    #[serde(default)]
    pub domainname: String,
    /// The user to run as.
    #[serde(default)]
    pub user: String,
    /// Docker: attach stdin.
    #[serde(default)]
    pub attach_stdin: bool,
    /// Docker: attach stdout.
    #[serde(default)]
    pub attach_stdout: bool,
    /// Docker: attach stderr.
    #[serde(default)]
    pub attach_stderr: bool,
    /// Ports the image exposes (`"80/tcp": {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Docker: allocate a terminal.
    #[serde(default)]
    pub tty: bool,
    /// Docker: keep stdin open.
    #[serde(default)]
    pub open_stdin: bool,
    /// Docker: close stdin after one attach.
    #[serde(default)]
    pub stdin_once: bool,
    /// `NAME=value` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// The default arguments.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The health check (kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    /// Windows: the command line is escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Docker: the image (empty in images).
    #[serde(default)]
    pub image: String,
    /// Volumes (`"/data": {}`).
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// The program.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Docker: triggers for images built from this one.
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// The signal that stops a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker: the shell for shell-form commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

impl ImageConfig {
    /// Parses config bytes (leniently: unknown fields are ignored).
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The creation time as Unix seconds (0 if unknown).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map_or(0, |t| t.timestamp())
    }

    /// The labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}
