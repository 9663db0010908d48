//! The engine as the API's backend: image store results in Docker's
//! shapes, image store errors as Docker's status codes.

use std::io::{Read, Write};

use hafen_api::ApiError;
use hafen_api::filters::{self, Filters};
use hafen_api::models::{
    DeleteItem, HistoryItem, ImageInspect, ImagePruneReport, ImageSummary, JsonMessage, Version,
};
use hafen_api::server::{Backend, EventFeed, ImportRequest};
use hafen_image::archive::LoadProgress;
use hafen_image::{ImageError, ImportOptions, ListFilters};
use serde_json::{Value, json};

use crate::Engine;

fn api_error(e: ImageError) -> ApiError {
    match e {
        ImageError::NotFound(_) => ApiError::not_found(e.to_string()),
        ImageError::Conflict(_) => ApiError::conflict(e.to_string()),
        ImageError::Reference(_) | ImageError::Invalid(_) => ApiError::bad_request(e.to_string()),
        ImageError::Archive(_) | ImageError::DiffId { .. } | ImageError::Apply(_) => {
            ApiError::bad_request(e.to_string())
        }
        _ => ApiError::internal(e.to_string()),
    }
}

fn summary(s: &hafen_image::ImageSummary) -> ImageSummary {
    ImageSummary {
        containers: 0,
        created: s.created,
        id: s.id.to_string(),
        labels: (!s.labels.is_empty()).then(|| s.labels.clone()),
        parent_id: s
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        repo_digests: s.repo_digests.clone(),
        repo_tags: s.repo_tags.clone(),
        shared_size: i64::try_from(s.shared_size).unwrap_or(i64::MAX),
        size: i64::try_from(s.size).unwrap_or(i64::MAX),
        virtual_size: None,
    }
}

/// A time filter value (`until`): a Unix time or a duration before now
/// (`24h`), in seconds.
pub(crate) fn time_filter(key: &str, value: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = value.split('.').next().unwrap_or("").parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp());
    }
    let go_duration = value
        .replace("h", "h ")
        .replace("m", "m ")
        .replace("s", "s ");
    humantime_parse(&go_duration)
        .map(|d| chrono::Utc::now().timestamp() - d)
        .ok_or_else(|| ApiError::bad_request(format!("invalid filter '{key}={value}'")))
}

/// Seconds of a Go-style duration (`1h30m`, `10m`, `30s`).
fn humantime_parse(text: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut any = false;
    for part in text.split_whitespace() {
        let (num, unit) = part.split_at(part.find(|c: char| c.is_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        let mult = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            _ => return None,
        };
        total += (n * mult) as i64;
        any = true;
    }
    any.then_some(total)
}

fn one_bool(f: &Filters, key: &str) -> Result<Option<bool>, ApiError> {
    match f.get(key).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([v]) => hafen_image::filters::parse_bool_filter(key, v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(e.to_string())),
        Some(_) => Err(ApiError::bad_request(format!(
            "invalid filter '{key}': give one value"
        ))),
    }
}

impl Backend for Engine {
    fn version(&self) -> Version {
        self.version_info()
    }

    fn info(&self) -> Value {
        self.system_info()
    }

    fn images(&self, all: bool, f: &Filters) -> Result<Vec<ImageSummary>, ApiError> {
        filters::only(
            f,
            &["dangling", "label", "before", "since", "reference", "until"],
        )?;
        let one = |k: &str| f.get(k).and_then(|v| v.first()).cloned();
        let lf = ListFilters {
            dangling: one_bool(f, "dangling")?,
            labels: f.get("label").cloned().unwrap_or_default(),
            before: one("before"),
            since: one("since"),
            reference: f.get("reference").cloned().unwrap_or_default(),
            until: one("until").map(|u| time_filter("until", &u)).transpose()?,
        };
        let list = self.images.list(&lf, all).map_err(api_error)?;
        Ok(list.iter().map(summary).collect())
    }

    fn image_inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        let d = self.images.inspect(name).map_err(api_error)?;
        let c = &d.config;
        let comment = if c.comment.is_empty() {
            c.history
                .last()
                .map(|h| h.comment.clone())
                .unwrap_or_default()
        } else {
            c.comment.clone()
        };
        let mut data = serde_json::Map::new();
        if let Some((top, lower)) = d.layer_dirs.split_first() {
            if !lower.is_empty() {
                data.insert("LowerDir".into(), json!(lower.join(":")));
            }
            data.insert("UpperDir".into(), json!(top));
        }
        let last_tag = d
            .last_tag_time
            .map(|ns| {
                chrono::DateTime::from_timestamp_nanos(ns)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            })
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
        Ok(ImageInspect {
            id: d.summary.id.to_string(),
            repo_tags: d.summary.repo_tags.clone(),
            repo_digests: d.summary.repo_digests.clone(),
            parent: d
                .summary
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            comment,
            created: c.created.clone(),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            architecture: c.architecture.clone(),
            variant: Some(c.variant.clone()),
            os: c.os.clone(),
            os_version: Some(c.os_version.clone()),
            size: i64::try_from(d.summary.size).unwrap_or(i64::MAX),
            graph_driver: json!({"Data": data, "Name": d.snapshotter}),
            root_fs: json!({"Type": "layers", "Layers": c.rootfs.diff_ids}),
            metadata: json!({"LastTagTime": last_tag}),
            config: c
                .config
                .as_ref()
                .and_then(|cc| serde_json::to_value(cc).ok())
                .unwrap_or_else(|| json!({})),
            container_config: c.container_config.clone(),
            container: c.container.clone(),
        })
    }

    fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError> {
        let items = self.images.history(name).map_err(api_error)?;
        Ok(items
            .into_iter()
            .map(|h| HistoryItem {
                id: h.id.map_or_else(|| "<missing>".into(), |d| d.to_string()),
                created: h.created,
                created_by: h.created_by,
                tags: (!h.tags.is_empty()).then_some(h.tags),
                size: i64::try_from(h.size).unwrap_or(i64::MAX),
                comment: h.comment,
            })
            .collect())
    }

    fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ApiError> {
        if repo.is_empty() {
            return Err(ApiError::bad_request("invalid reference format"));
        }
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        self.images.tag(name, &target).map_err(api_error)
    }

    fn image_delete(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<DeleteItem>, ApiError> {
        if name.trim().is_empty() {
            return Err(ApiError::bad_request("image name cannot be blank"));
        }
        self.check_image_unused(name, force)?;
        let items = self
            .images
            .remove(name, force, !noprune)
            .map_err(api_error)?;
        Ok(items.into_iter().map(delete_item).collect())
    }

    fn image_prune(&self, f: &Filters) -> Result<ImagePruneReport, ApiError> {
        filters::only(f, &["dangling", "until", "label", "label!"])?;
        let dangling = one_bool(f, "dangling")?.unwrap_or(true);
        let until = f
            .get("until")
            .and_then(|v| v.first())
            .map(|u| time_filter("until", u))
            .transpose()?;
        let labels = f.get("label").cloned().unwrap_or_default();
        let labels_not = f.get("label!").cloned().unwrap_or_default();
        let (items, reclaimed) = self
            .images
            .prune(!dangling, until, &labels, &labels_not)
            .map_err(api_error)?;
        Ok(ImagePruneReport {
            images_deleted: (!items.is_empty())
                .then(|| items.into_iter().map(delete_item).collect()),
            space_reclaimed: reclaimed,
        })
    }

    fn image_load(
        &self,
        input: Box<dyn Read + Send>,
        quiet: bool,
        out: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError> {
        self.images
            .load(input, &mut |p| match p {
                LoadProgress::Message(m) => out(JsonMessage::stream(format!("{m}\n"))),
                LoadProgress::Layer(l) if !quiet && l.done => out(JsonMessage {
                    status: Some("Loading layer".into()),
                    progress_detail: Some(json!({"current": l.size, "total": l.size})),
                    progress: Some(format!(
                        "[==================================================>]  {}/{}",
                        human(l.size),
                        human(l.size)
                    )),
                    id: Some(l.diff_id.short().to_string()),
                    ..JsonMessage::default()
                }),
                LoadProgress::Layer(_) => {}
            })
            .map(|_| ())
            .map_err(api_error)
    }

    fn image_save_check(&self, names: &[String]) -> Result<(), ApiError> {
        if names.is_empty() {
            return Err(ApiError::bad_request("no image names given"));
        }
        self.images.check_save(names).map_err(api_error)
    }

    fn image_save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ApiError> {
        self.images.save(names, out).map_err(api_error)
    }

    fn image_import(
        &self,
        input: Box<dyn Read + Send>,
        r: &ImportRequest,
    ) -> Result<String, ApiError> {
        let reference = match (&r.repo, &r.tag) {
            (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
            (Some(repo), None) => Some(repo.clone()),
            _ => None,
        };
        let opts = ImportOptions {
            reference,
            message: r.message.clone(),
            changes: r.changes.clone(),
            source: r.source.clone(),
            platform: r.platform.clone(),
        };
        self.images
            .import(input, &opts)
            .map(|id| id.to_string())
            .map_err(api_error)
    }

    fn disk_usage(&self) -> Result<(i64, Vec<ImageSummary>), ApiError> {
        let du = self.images.disk_usage().map_err(api_error)?;
        Ok((
            i64::try_from(du.layers_size).unwrap_or(i64::MAX),
            du.images.iter().map(summary).collect(),
        ))
    }

    fn events(&self, since: Option<i64>) -> EventFeed {
        self.events.feed(since)
    }
}

impl Engine {
    /// Refuses to remove an image that containers use, as dockerd does
    /// (untagging one of several names is fine).
    fn check_image_unused(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let Ok(base) = self.images.container_base(name) else {
            return Ok(());
        };
        let id = base.id.to_string();
        let users: Vec<(String, bool)> = self
            .containers
            .all()
            .iter()
            .map(|c| c.rec().clone())
            .filter(|r| r.image == id)
            .map(|r| (r.id[..12].to_string(), r.state.status.is_running()))
            .collect();
        let Some((user, running)) = users.first().cloned() else {
            return Ok(());
        };
        let by_id = id
            .trim_start_matches("sha256:")
            .starts_with(name.trim_start_matches("sha256:"));
        let tags = self
            .images
            .inspect(name)
            .map(|d| d.summary.repo_tags.len())
            .unwrap_or(0);
        if !by_id && tags > 1 {
            return Ok(());
        }
        let short = &id.trim_start_matches("sha256:")[..12];
        if force {
            // Docker would untag and keep the layers; hafen's container
            // snapshots sit on the image's, so it refuses.
            let what = if running { "running" } else { "stopped" };
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by {what} container {user}"
            )));
        }
        if by_id {
            let what = if running { "running" } else { "stopped" };
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {short} (must be forced) - image is being used by {what} container {user}"
            )));
        }
        Err(ApiError::conflict(format!(
            "conflict: unable to remove repository reference \"{name}\" (must force) - container {user} is using its referenced image {short}"
        )))
    }
}

fn delete_item(i: hafen_image::DeleteItem) -> DeleteItem {
    match i {
        hafen_image::DeleteItem::Untagged(u) => DeleteItem {
            untagged: Some(u),
            deleted: None,
        },
        hafen_image::DeleteItem::Deleted(d) => DeleteItem {
            untagged: None,
            deleted: Some(d),
        },
    }
}

/// Docker's decimal size with 4 significant digits (`2.048kB`,
/// `1.982MB`), as its progress bars show it.
fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let decimals = 3usize.saturating_sub(v.abs().log10().floor().max(0.0) as usize);
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human(2048), "2.048kB");
        assert_eq!(human(1_982_429), "1.982MB");
        assert_eq!(human(17), "17B");
        assert_eq!(human(1_000_000), "1MB");
    }
}
