//! `POST /build`: the context arrives as a tar (or a Dockerfile alone),
//! is unpacked into a temporary directory, and [`hafen_build`] builds from
//! it with the engine as its [`worker::EngineWorker`]. Progress goes back
//! as the classic builder's messages (`Step 1/5 : FROM busybox`,
//! ` ---> Using cache`, ` ---> 3f1a...`), so `docker build` prints what it
//! prints against dockerd.

mod progress;
mod worker;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;

use hafen_api::ApiError;
use hafen_api::models::{BuildOptions, ErrorDetail, JsonMessage};
use hafen_api::server::BuildBackend;
use hafen_build::builder::{self, BuildError, Event, Request};
use hafen_build::dockerignore::Patterns;
use serde_json::json;

use crate::Engine;
use progress::short;
use worker::{EngineWorker, tempfile_in};

fn stream(text: impl Into<String>) -> JsonMessage {
    JsonMessage::stream(text)
}

/// Unpacks the context (a tar, maybe gzip-compressed) into `dir`; a body
/// that is no tar is the Dockerfile itself (`docker build - <Dockerfile`).
/// Returns that Dockerfile's text in that case.
fn unpack_context(input: Box<dyn Read + Send>, dir: &Path) -> Result<Option<String>, String> {
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let head = r
        .fill_buf()
        .map_err(|e| format!("cannot read the context: {e}"))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::GzDecoder::new(r);
        return unpack_tar(BufReader::new(Box::new(gz) as Box<dyn Read>), dir).map(|()| None);
    }
    let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
    let empty_tar = head.len() >= 512 && head[..512].iter().all(|b| *b == 0);
    if is_tar || empty_tar || head.is_empty() {
        return unpack_tar(r, dir).map(|()| None);
    }
    let mut text = String::new();
    r.read_to_string(&mut text)
        .map_err(|e| format!("the Dockerfile given alone is not text: {e}"))?;
    Ok(Some(text))
}

fn unpack_tar(r: impl Read, dir: &Path) -> Result<(), String> {
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    a.set_unpack_xattrs(false);
    a.unpack(dir)
        .map_err(|e| format!("the build context is not a valid tar archive: {e}"))
}

fn error_message(e: &BuildError) -> JsonMessage {
    let text = e.to_string();
    JsonMessage {
        error_detail: Some(ErrorDetail {
            message: text.clone(),
            code: Some(i64::from(e.code)),
        }),
        error: Some(text),
        ..JsonMessage::default()
    }
}

impl Engine {
    fn build_dir(&self) -> std::path::PathBuf {
        self.config.root.join("build")
    }

    fn run_build(
        &self,
        opts: &BuildOptions,
        input: Box<dyn Read + Send>,
        out: &mut dyn FnMut(JsonMessage),
    ) -> Result<String, BuildError> {
        let dir = self.build_dir();
        let tmp = tempfile_in(&dir)?;
        let (root, alone) = match &opts.context_dir {
            Some(local) => {
                let root = std::path::PathBuf::from(local);
                // The client's directory, not one of the same name in
                // another mount namespace.
                let same = std::fs::metadata(&root)
                    .ok()
                    .filter(|m| m.is_dir())
                    .is_some_and(|m| {
                        use std::os::unix::fs::MetadataExt;
                        opts.context_id
                            .as_deref()
                            .is_none_or(|id| id == format!("{}:{}", m.dev(), m.ino()))
                    });
                if !root.is_absolute() || !same {
                    return Err(BuildError::new(format!(
                        "{}: {local}",
                        hafen_api::models::CONTEXT_NOT_SHARED
                    )));
                }
                let mut text = String::new();
                input
                    .take(16 << 20)
                    .read_to_string(&mut text)
                    .map_err(|e| BuildError::new(format!("cannot read the Dockerfile: {e}")))?;
                (root, (!text.is_empty()).then_some(text))
            }
            None => {
                let alone = unpack_context(input, tmp.path()).map_err(BuildError::new)?;
                (tmp.path().to_path_buf(), alone)
            }
        };
        let dockerfile_rel = hafen_build::copy::clean(&format!("/{}", opts.dockerfile));
        let dockerfile = match alone {
            Some(text) => text,
            None => {
                let path =
                    if opts.context_dir.is_some() && Path::new(&opts.dockerfile).is_absolute() {
                        std::path::PathBuf::from(&opts.dockerfile)
                    } else {
                        if hafen_build::copy::clean(&opts.dockerfile).starts_with("..") {
                            return Err(BuildError::new(format!(
                                "the Dockerfile ({}) must be within the build context",
                                opts.dockerfile
                            )));
                        }
                        root.join(dockerfile_rel.trim_start_matches('/'))
                    };
                std::fs::read_to_string(&path).map_err(|_| {
                    BuildError::new(format!(
                        "Cannot locate specified Dockerfile: {}",
                        opts.dockerfile
                    ))
                })?
            }
        };
        let named_ignore = if Path::new(&opts.dockerfile).is_absolute() {
            std::path::PathBuf::from(format!("{}.dockerignore", opts.dockerfile))
        } else {
            root.join(format!(
                "{}.dockerignore",
                dockerfile_rel.trim_start_matches('/')
            ))
        };
        let ignore_text = std::fs::read_to_string(named_ignore)
            .or_else(|_| std::fs::read_to_string(root.join(".dockerignore")))
            .ok();
        let ignore = ignore_text
            .map(|t| Patterns::parse(&t))
            .transpose()
            .map_err(|e| BuildError::new(format!(".dockerignore: {e}")))?;
        let req = Request {
            dockerfile,
            context: root.clone(),
            ignore,
            build_args: opts.build_args.clone(),
            target: opts.target.clone(),
            no_cache: opts.no_cache,
            pull: opts.pull,
            labels: opts.labels.clone(),
            platform: opts.platform.clone(),
            network: opts.network.clone().filter(|n| n != "default"),
            secrets: opts
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
        };
        let worker = EngineWorker {
            engine: self,
            dir: dir.clone(),
        };
        let quiet = opts.quiet;
        let (tx, rx) = mpsc::channel::<Event>();
        let built = std::thread::scope(|s| {
            let worker = &worker;
            let req = &req;
            let memo = &self.build_memo;
            let h = s.spawn(move || {
                let send = move |e: Event| {
                    let _ = tx.send(e);
                };
                builder::build(worker, req, memo, &send)
            });
            let mut progress = progress::Progress::new();
            for e in rx {
                if !quiet {
                    progress.push(e, out);
                }
            }
            progress.finish(out);
            h.join()
                .unwrap_or_else(|_| Err(BuildError::new("the builder failed unexpectedly")))
        })?;
        Ok(built.id)
    }
}

impl Engine {
    /// Removes what builds of a daemon that was killed left: their step
    /// containers and images (labelled [`worker::STEP_LABEL`]) and their
    /// temporary directories. Called at start, before any build.
    pub(crate) fn clean_build_leftovers(&self) {
        // Every build holds a directory in `tmp` while it runs: none
        // there, no build was cut short (and nothing to look for).
        let tmp = self.build_dir().join("tmp");
        let interrupted = std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some());
        if !interrupted {
            return;
        }
        for ctr in self.containers.all() {
            let (id, step) = {
                let r = ctr.rec();
                (
                    r.id.clone(),
                    r.config.labels.contains_key(worker::STEP_LABEL),
                )
            };
            if step && let Err(e) = self.remove_container(&id, true, true) {
                tracing::warn!("build: cannot remove the step container {id}: {e}");
            }
        }
        let filters = hafen_image::ListFilters {
            labels: vec![worker::STEP_LABEL.to_string()],
            ..Default::default()
        };
        if let Ok(images) = self.images().list(&filters, true) {
            for i in images.iter().filter(|i| i.repo_tags.is_empty()) {
                if let Err(e) = self.images().delete_untagged(&i.id) {
                    tracing::warn!("build: cannot remove the step image {}: {e}", i.id);
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            tracing::warn!("build: cannot remove {}: {e}", tmp.display());
        }
    }
}

impl BuildBackend for Engine {
    fn build(
        &self,
        opts: BuildOptions,
        input: Box<dyn Read + Send>,
        out: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError> {
        if let Some(remote) = &opts.remote {
            return Err(ApiError::bad_request(format!(
                "building from a remote context ({remote}) is not supported: send the context in the request body"
            )));
        }
        // Tags are checked before anything runs.
        for t in &opts.tags {
            hafen_oci::Reference::parse_normalized(t)
                .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
        }
        match self.run_build(&opts, input, out) {
            Ok(id) => {
                for t in &opts.tags {
                    // An unchanged rebuild's tags are already there.
                    let already = self
                        .images()
                        .container_base(t)
                        .is_ok_and(|b| b.id.to_string() == id);
                    if already {
                        continue;
                    }
                    if let Err(e) = self.images().tag(&id, t) {
                        out(error_message(&BuildError::new(format!(
                            "cannot tag the image as {t}: {e}"
                        ))));
                        return Ok(());
                    }
                }
                out(JsonMessage {
                    aux: Some(json!({"ID": id})),
                    ..JsonMessage::default()
                });
                if opts.quiet {
                    out(stream(format!("{id}\n")));
                } else {
                    out(stream(format!("Successfully built {}\n", short(&id))));
                    for t in &opts.tags {
                        let r = hafen_oci::Reference::parse_normalized(t)
                            .map(|r| r.with_default_tag().familiar())
                            .unwrap_or_else(|_| t.clone());
                        out(stream(format!("Successfully tagged {r}\n")));
                    }
                }
            }
            Err(e) => out(error_message(&e)),
        }
        Ok(())
    }

    fn build_prune(&self, _all: bool) -> Result<(u64, Vec<String>), ApiError> {
        let dir = self.build_dir();
        self.build_memo.clear();
        let (mut ids, mut freed) = self
            .images()
            .drop_build_cache()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for sub in ["cache", "mounts"] {
            let d = dir.join(sub);
            if let Ok(size) = hafen_snapshot::fsutil::tree_size(&d) {
                freed += size;
            }
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten() {
                    ids.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            if d.exists() {
                std::fs::remove_dir_all(&d).map_err(|e| {
                    ApiError::internal(format!("cannot remove {}: {e}", d.display()))
                })?;
            }
        }
        Ok((freed, ids))
    }
}
