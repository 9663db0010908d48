//! The JSON shapes of the API, as the newest version hafen speaks writes
//! them, with `render_*` functions for older versions. The same types are
//! read by the client (unknown fields are ignored, missing ones default).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ApiVersion;

/// `GET /images/json` and `/system/df` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    /// Containers using the image (-1: not counted).
    pub containers: i64,
    /// Unix seconds.
    pub created: i64,
    /// `sha256:…`.
    pub id: String,
    /// Labels, null when none.
    pub labels: Option<BTreeMap<String, String>>,
    /// `sha256:…` or empty.
    pub parent_id: String,
    /// `name@sha256:…`.
    pub repo_digests: Vec<String>,
    /// `name:tag`.
    pub repo_tags: Vec<String>,
    /// Bytes shared with other images (-1: not computed).
    pub shared_size: i64,
    /// Bytes of all layers.
    pub size: i64,
    /// Old APIs: the same as `Size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
}

/// Where a summary is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryUse {
    /// `/images/json` (with `shared-size` asked for or not).
    List {
        /// Whether `SharedSize` was asked for.
        shared_size: bool,
    },
    /// `/system/df`: every count and size is given.
    DiskUsage,
}

/// An image summary for a client of version `v`.
pub fn render_summary(s: &ImageSummary, v: ApiVersion, used: SummaryUse) -> Value {
    let mut s = s.clone();
    if let SummaryUse::List { shared_size } = used {
        if v.before(51) {
            s.containers = -1;
        }
        if !shared_size || v.before(42) {
            s.shared_size = -1;
        }
    }
    if v.before(43) && s.repo_tags.is_empty() && s.repo_digests.is_empty() {
        s.repo_tags = vec!["<none>:<none>".into()];
        s.repo_digests = vec!["<none>@<none>".into()];
    }
    if v.before(44) {
        s.virtual_size = Some(s.size);
    }
    serde_json::to_value(&s).unwrap_or(Value::Null)
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    /// `sha256:…`.
    pub id: String,
    /// Tags.
    pub repo_tags: Vec<String>,
    /// Digests.
    pub repo_digests: Vec<String>,
    /// Parent image ID or empty.
    pub parent: String,
    /// The comment.
    pub comment: String,
    /// RFC 3339.
    pub created: Option<String>,
    /// The engine version that made it.
    pub docker_version: String,
    /// Who made it.
    pub author: String,
    /// `amd64`.
    pub architecture: String,
    /// `v8`.
    pub variant: Option<String>,
    /// `linux`.
    pub os: String,
    /// Windows.
    pub os_version: Option<String>,
    /// Bytes.
    pub size: i64,
    /// The storage: `{"Data": {...}, "Name": "overlayfs"}`.
    pub graph_driver: Value,
    /// `{"Type": "layers", "Layers": [...]}`.
    #[serde(rename = "RootFS")]
    pub root_fs: Value,
    /// `{"LastTagTime": "..."}`.
    pub metadata: Value,
    /// The container config of the image (Docker's field names).
    pub config: Value,
    /// Old APIs: the config of the container it was committed from.
    pub container_config: Option<Value>,
    /// Old APIs: that container's ID.
    pub container: String,
}

/// An inspect document for a client of version `v`, in the order dockerd
/// writes it (`Config` last, its keys sorted).
pub fn render_inspect(i: &ImageInspect, v: ApiVersion) -> Value {
    let mut o = Map::new();
    o.insert("Id".into(), json!(i.id));
    o.insert("RepoTags".into(), json!(i.repo_tags));
    o.insert("RepoDigests".into(), json!(i.repo_digests));
    o.insert("Parent".into(), json!(i.parent));
    o.insert("Comment".into(), json!(i.comment));
    match &i.created {
        Some(c) => {
            o.insert("Created".into(), json!(c));
        }
        None if v.before(44) => {
            o.insert("Created".into(), json!("0001-01-01T00:00:00Z"));
        }
        None => {}
    }
    if v.before(45) {
        o.insert("Container".into(), json!(i.container));
        o.insert(
            "ContainerConfig".into(),
            i.container_config
                .clone()
                .unwrap_or_else(|| empty_config(v)),
        );
    }
    o.insert("DockerVersion".into(), json!(i.docker_version));
    o.insert("Author".into(), json!(i.author));
    o.insert("Architecture".into(), json!(i.architecture));
    if let Some(variant) = i.variant.as_ref().filter(|x| !x.is_empty()) {
        o.insert("Variant".into(), json!(variant));
    }
    o.insert("Os".into(), json!(i.os));
    if let Some(osv) = i.os_version.as_ref().filter(|x| !x.is_empty()) {
        o.insert("OsVersion".into(), json!(osv));
    }
    o.insert("Size".into(), json!(i.size));
    if v.before(44) {
        o.insert("VirtualSize".into(), json!(i.size));
    }
    o.insert("GraphDriver".into(), i.graph_driver.clone());
    o.insert("RootFS".into(), i.root_fs.clone());
    o.insert("Metadata".into(), i.metadata.clone());
    o.insert("Config".into(), render_config(&i.config, v));
    Value::Object(o)
}

fn empty_config(v: ApiVersion) -> Value {
    render_config(&Value::Object(Map::new()), v)
}

/// The image's `Config`: sorted keys, with the fields dockerd always sends.
pub fn render_config(config: &Value, v: ApiVersion) -> Value {
    let mut sorted: BTreeMap<String, Value> = config
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (k, default) in [
        ("Cmd", Value::Null),
        ("Entrypoint", Value::Null),
        ("Env", Value::Null),
        ("Labels", Value::Null),
        ("OnBuild", Value::Null),
        ("User", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
    ] {
        sorted.entry(k.into()).or_insert(default);
    }
    if v.before(50) {
        for (k, default) in [
            ("AttachStderr", json!(false)),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("Domainname", json!("")),
            ("Hostname", json!("")),
            ("Image", json!("")),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Tty", json!(false)),
        ] {
            sorted.entry(k.into()).or_insert(default);
        }
    } else {
        for k in [
            "AttachStderr",
            "AttachStdin",
            "AttachStdout",
            "Domainname",
            "Hostname",
            "Image",
            "OpenStdin",
            "StdinOnce",
            "Tty",
        ] {
            sorted.remove(k);
        }
    }
    Value::Object(sorted.into_iter().collect())
}

/// `GET /images/{name}/history` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    /// Image ID or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command.
    pub created_by: String,
    /// Tags, null when none.
    pub tags: Option<Vec<String>>,
    /// Bytes.
    pub size: i64,
    /// The comment.
    pub comment: String,
}

/// One entry of `DELETE /images/{name}` or a prune.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteItem {
    /// A name removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// An image or layer removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagePruneReport {
    /// What went, null when nothing.
    pub images_deleted: Option<Vec<DeleteItem>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// `GET /version` components.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Component {
    /// `Engine`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Details (all strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    /// `{"Name": "..."}`.
    pub platform: BTreeMap<String, String>,
    /// Engine, runtime.
    pub components: Vec<Component>,
    /// The engine version.
    pub version: String,
    /// The newest API version.
    pub api_version: String,
    /// The oldest API version.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// The commit.
    pub git_commit: String,
    /// Docker's field: the toolchain (hafen: the Rust version).
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub arch: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// Experimental features.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    /// When built.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `GET /events` messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Legacy: the action.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Legacy: the actor ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Legacy: the image of a container event.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `image`, `container`, …
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// `tag`, `delete`, …
    #[serde(rename = "Action", default)]
    pub action: String,
    /// What it is about.
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    /// `local`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

/// The subject of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Its ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Attributes (`name`, labels).
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// A message of a JSON progress stream (load, import, pull).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// Text to print as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A status line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Progress numbers.
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<Value>,
    /// A rendered progress bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// What the message is about (a short layer ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An error: the stream ends.
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    /// The error's message (legacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Data for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<Value>,
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The code (a failed build step's exit code), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The message.
    #[serde(default)]
    pub message: String,
}

impl JsonMessage {
    /// A `stream` message.
    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            stream: Some(text.into()),
            ..JsonMessage::default()
        }
    }

    /// A `status` message.
    pub fn status(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(text.into()),
            ..JsonMessage::default()
        }
    }

    /// An error message.
    pub fn error(text: impl Into<String>) -> JsonMessage {
        let text = text.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: text.clone(),
            }),
            error: Some(text),
            ..JsonMessage::default()
        }
    }
}

mod build;
mod container;
mod networks;
mod volume;

pub use build::*;
pub use container::*;
pub use networks::*;
pub use volume::*;
