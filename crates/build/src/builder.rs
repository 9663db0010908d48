//! The builder: evaluates the stages a target needs (independent ones at
//! the same time), step by step, reusing every step whose cache key it
//! has seen, and makes the image.
//!
//! A step's cache key is the key of the step before it and what the step
//! does, with everything expanded: the command with its environment, user,
//! directory and mounts for `RUN`; the digest of the files and the
//! destination for `COPY`/`ADD`; the text for the steps that only change
//! the configuration. The first key is the base image's ID. A hit gives
//! back the layer made the first time and the step's time, so an unchanged
//! build makes the same image, with the same ID.
//!
//! Steps that change files run through the [`Worker`] (the engine):
//! `RUN` in a container, `COPY`/`ADD` into a new layer. Configuration steps
//! change only the configuration in memory; the image is written once, at
//! the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use hafen_image::config::{ContainerConfig, History, ImageConfig};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::copy::{self, DestKind, HashMemo, Tree};
use crate::dockerignore::Patterns;
use crate::expand::Lexer;
use crate::instructions::{
    self, Command, CopyArgs, Health, Instruction, RunMount, Stage, Stages, Step,
};
use crate::syntax as parser;

/// What makes a build fail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.text())]
pub struct BuildError {
    /// The Dockerfile line, when a step failed.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
    /// The exit code to report (a failed RUN's; else 1).
    pub code: i32,
}

impl BuildError {
    /// An error without a line.
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError {
            line: None,
            message: message.into(),
            code: 1,
        }
    }

    fn at(mut self, line: usize) -> BuildError {
        if self.line.is_none() {
            self.line = Some(line);
        }
        self
    }

    fn text(&self) -> String {
        match self.line {
            Some(l) => format!("Dockerfile:{l}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

type Result<T> = std::result::Result<T, BuildError>;

/// A base image.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its ID.
    pub id: String,
    /// Its layers (diff IDs).
    pub layers: Vec<String>,
    /// Its configuration.
    pub config: ImageConfig,
}

/// What the cache keeps for a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheHit {
    /// The layers after the step (diff IDs; steps that make layers).
    pub layers: Option<Vec<String>>,
    /// When the step first ran (RFC 3339): its history time.
    pub created: String,
}

/// A mount of a `RUN` step, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A directory of this machine, bound.
    Bind {
        /// The directory or file.
        host: PathBuf,
        /// Read-only.
        readonly: bool,
    },
    /// A cache directory that outlives builds.
    Cache {
        /// Its ID.
        id: String,
        /// Owner and mode of a new one.
        uid: u32,
        /// See `uid`.
        gid: u32,
        /// See `uid`.
        mode: u32,
    },
    /// A tmpfs.
    Tmpfs {
        /// Its size in bytes (0: the default).
        size: u64,
    },
    /// A secret file.
    Secret {
        /// Its content.
        content: Vec<u8>,
        /// Owner and mode.
        uid: u32,
        /// See `uid`.
        gid: u32,
        /// See `uid`.
        mode: u32,
    },
}

/// A mount of a `RUN` step before its sources are mounted.
#[derive(Debug, Clone)]
enum Pending {
    /// Ready.
    Ready(MountSource),
    /// A path in another stage's or image's files.
    From {
        layers: Vec<String>,
        source: String,
        readonly: bool,
    },
}

/// A `RUN` step for the worker.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The layers the step runs on (diff IDs).
    pub parent: Vec<String>,
    /// The process.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// Its user.
    pub user: String,
    /// Its working directory.
    pub workdir: String,
    /// `default`, `none` or `host`.
    pub network: String,
    /// Mounts: target and source.
    pub mounts: Vec<(String, MountSource)>,
}

/// The filesystem of the layer a `COPY` writes.
pub trait Target {
    /// Extracts a tar at `/`.
    fn extract(&self, tar: &mut dyn Read) -> std::result::Result<(), String>;
}

/// What runs the steps: the engine.
pub trait Worker: Send + Sync {
    /// A base image by name (pulled when missing or when `pull`).
    fn base(&self, name: &str, platform: Option<&str>, pull: bool) -> Result<Base>;
    /// The cache entry for `key`, if the cache has it (and its image).
    fn cached(&self, key: &str) -> Option<CacheHit>;
    /// Records a step.
    fn remember(&self, key: &str, hit: &CacheHit);
    /// Runs a `RUN` step, sending its output to `output`; returns the
    /// layers with the new one.
    fn run(&self, spec: &RunSpec, output: &mut dyn FnMut(&[u8])) -> Result<Vec<String>>;
    /// Makes a new layer on `parent` by letting `f` change the files;
    /// returns the layers with the new one.
    fn change(
        &self,
        parent: &[String],
        f: &mut dyn FnMut(&dyn Target) -> Result<()>,
    ) -> Result<Vec<String>>;
    /// Lets `f` read the files of these layers.
    fn with_rootfs(&self, layers: &[String], f: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()>;
    /// Writes the image: these layers, this configuration; its ID.
    fn assemble(&self, layers: &[String], config: ImageConfig) -> Result<String>;
    /// The time now (RFC 3339).
    fn now(&self) -> String;
}

/// What happens, for the progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step starts: its number, the total, the stage and its text.
    Step {
        /// 1-based, over the steps of the stages built.
        number: usize,
        /// The number of steps.
        total: usize,
        /// The stage's name or index.
        stage: String,
        /// The instruction.
        text: String,
    },
    /// The step was in the cache.
    Cached {
        /// The step's number.
        number: usize,
    },
    /// Output of a `RUN` step.
    Output {
        /// The step's number.
        number: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The step is done.
    Done {
        /// The step's number.
        number: usize,
        /// Its cache key (an ID for the state after the step).
        key: String,
    },
    /// A warning.
    Warning(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The context directory.
    pub context: PathBuf,
    /// The context's ignore patterns.
    pub ignore: Option<Patterns>,
    /// `--build-arg`s (`None`: from the environment, not supported: unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--label`s, added to the image.
    pub labels: BTreeMap<String, String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--network` for RUN steps (`default` when unset).
    pub network: Option<String>,
    /// Secrets (`--secret id=...`): ID to content.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID.
    pub id: String,
    /// How many steps ran and how many came from the cache.
    pub ran: usize,
    /// See `ran`.
    pub cached: usize,
}

/// BuildKit's default PATH, for images without one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The arguments every build knows without an ARG line (their values are
/// not written into the image).
const PREDEFINED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The state of a stage between steps.
#[derive(Debug, Clone)]
struct State {
    /// The stage's layers so far (diff IDs).
    layers: Vec<String>,
    /// The image being made.
    image: ImageConfig,
    /// The cache key so far.
    key: String,
    /// ARGs declared in the stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// Whether the cache may still be used (`--no-cache` or a miss ends it).
    use_cache: bool,
}

impl State {
    fn config(&mut self) -> &mut ContainerConfig {
        self.image
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn env(&self) -> Vec<String> {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    fn lookup(&self, name: &str) -> Option<String> {
        for e in self.env().iter().rev() {
            if let Some((k, v)) = e.split_once('=')
                && k == name
            {
                return Some(v.to_string());
            }
        }
        self.args.get(name).cloned().flatten()
    }

    fn shell(&self) -> Vec<String> {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// The outcome of a stage.
#[derive(Debug, Clone)]
struct StageOut {
    state: State,
}

/// A build in progress.
struct Build<'a> {
    worker: &'a dyn Worker,
    req: &'a Request,
    stages: Stages,
    lexer: Lexer,
    /// Global ARG values (for FROM lines and inherited ARGs).
    globals: BTreeMap<String, Option<String>>,
    memo: &'a HashMemo,
    events: &'a (dyn Fn(Event) + Sync),
    /// Step numbers: the first of each stage.
    first_number: Vec<usize>,
    total: usize,
    results: Mutex<Vec<Option<std::result::Result<StageOut, BuildError>>>>,
    ready: Condvar,
    counts: Mutex<(usize, usize)>,
}

/// Builds the image `req` asks for.
pub fn build(
    worker: &dyn Worker,
    req: &Request,
    memo: &HashMemo,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Built> {
    let file = parser::parse(&req.dockerfile).map_err(|e| BuildError {
        line: Some(e.line),
        message: e.message,
        code: 1,
    })?;
    for w in &file.warnings {
        events(Event::Warning(format!(
            "Dockerfile:{}: {}",
            w.line, w.message
        )));
    }
    let stages = instructions::stages(&file).map_err(|e| BuildError {
        line: Some(e.line),
        message: e.message,
        code: 1,
    })?;
    let lexer = Lexer::new(stages.escape);
    // Global ARGs: defaults, overridden by --build-arg.
    let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (k, v) in platform_args(req.platform.as_deref()) {
        globals.insert(k, Some(v));
    }
    for step in &stages.global_args {
        if let Instruction::Arg(args) = &step.instruction {
            for (name, default) in args {
                let value = match req.build_args.get(name) {
                    Some(v) => v.clone(),
                    None => match default {
                        Some(d) => Some(
                            lexer
                                .process_word(d, &|n| globals.get(n).cloned().flatten())
                                .map_err(|e| BuildError::new(e.to_string()).at(step.line))?,
                        ),
                        None => globals.get(name).cloned().flatten(),
                    },
                };
                globals.insert(name.clone(), value);
            }
        }
    }
    let target = stages
        .target(req.target.as_deref())
        .map_err(BuildError::new)?;
    let b = Build {
        worker,
        req,
        lexer,
        globals,
        memo,
        events,
        first_number: Vec::new(),
        total: 0,
        results: Mutex::new(vec![None; stages.stages.len()]),
        ready: Condvar::new(),
        counts: Mutex::new((0, 0)),
        stages,
    };
    let needed = b.needed(target)?;
    let mut b = b;
    let mut n = 1;
    b.first_number = vec![0; b.stages.stages.len()];
    for i in &needed {
        b.first_number[*i] = n;
        n += 1 + b.stages.stages[*i].steps.len();
    }
    b.total = n - 1;
    let b = &b;
    std::thread::scope(|s| {
        for &i in &needed {
            s.spawn(move || {
                let out = b.stage(i);
                let mut results = b.results.lock().unwrap_or_else(|p| p.into_inner());
                results[i] = Some(out);
                b.ready.notify_all();
            });
        }
    });
    let out = b.wait(target)?;
    let mut image = out.state.image.clone();
    if !b.req.labels.is_empty() {
        let cfg = image.config.get_or_insert_with(ContainerConfig::default);
        let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &b.req.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    if let Some(last) = image.history.last().and_then(|h| h.created.clone()) {
        image.created = Some(last);
    }
    image.container = String::new();
    image.container_config = None;
    let id = worker.assemble(&out.state.layers, image)?;
    let (ran, cached) = *b.counts.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Built { id, ran, cached })
}

/// `TARGETPLATFORM`, `BUILDPLATFORM` and their parts.
fn platform_args(platform: Option<&str>) -> Vec<(String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    let build = format!("linux/{arch}");
    let target = platform.map_or(build.clone(), str::to_string);
    let mut out = Vec::new();
    for (prefix, p) in [("BUILD", &build), ("TARGET", &target)] {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or("linux").to_string();
        let a = parts.next().unwrap_or(arch).to_string();
        let variant = parts.next().unwrap_or("").to_string();
        out.push((format!("{prefix}PLATFORM"), p.clone()));
        out.push((format!("{prefix}OS"), os));
        out.push((format!("{prefix}ARCH"), a));
        out.push((format!("{prefix}VARIANT"), variant));
    }
    out
}

impl Build<'_> {
    fn expand(&self, state: &State, word: &str, line: usize) -> Result<String> {
        self.lexer
            .process_word(word, &|n| state.lookup(n))
            .map_err(|e| BuildError::new(e.to_string()).at(line))
    }

    fn expand_global(&self, word: &str) -> std::result::Result<String, String> {
        self.lexer
            .process_word(word, &|n| self.globals.get(n).cloned().flatten())
            .map_err(|e| e.to_string())
    }

    /// The stage `name` names, if it is one (any stage by name, earlier
    /// ones by index).
    fn stage_named(&self, name: &str, from: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Some(s) = self
            .stages
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(s.index);
        }
        self.stages.find(name, from)
    }

    /// The stages stage `i` reads from.
    fn deps(&self, i: usize) -> Result<Vec<(usize, usize)>> {
        let stage = &self.stages.stages[i];
        let mut out = Vec::new();
        let base = self
            .expand_global(&stage.base)
            .map_err(|m| BuildError::new(m).at(stage.line))?;
        if let Some(d) = self.stage_named(&base, i) {
            out.push((d, stage.line));
        }
        for step in &stage.steps {
            let froms: Vec<&str> = match &step.instruction {
                Instruction::Copy(c) => c.from.iter().map(String::as_str).collect(),
                Instruction::Run { mounts, .. } => {
                    mounts.iter().filter_map(|m| m.from.as_deref()).collect()
                }
                _ => Vec::new(),
            };
            for f in froms {
                let f = self.expand_global(f).unwrap_or_else(|_| f.to_string());
                if let Some(d) = self.stage_named(&f, i) {
                    out.push((d, step.line));
                }
            }
        }
        Ok(out)
    }

    /// The stages `target` needs, dependencies first; a cycle is an error.
    fn needed(&self, target: usize) -> Result<Vec<usize>> {
        fn visit(
            b: &Build<'_>,
            i: usize,
            path: &mut Vec<usize>,
            done: &mut BTreeSet<usize>,
            order: &mut Vec<usize>,
        ) -> Result<()> {
            if done.contains(&i) {
                return Ok(());
            }
            for (d, line) in b.deps(i)? {
                if d == i || path.contains(&d) {
                    let name = b.stages.stages[d]
                        .name
                        .clone()
                        .unwrap_or_else(|| d.to_string());
                    return Err(BuildError::new(format!(
                        "circular dependency detected on stage: {name}"
                    ))
                    .at(line));
                }
                path.push(i);
                visit(b, d, path, done, order)?;
                path.pop();
            }
            done.insert(i);
            order.push(i);
            Ok(())
        }
        let mut order = Vec::new();
        visit(
            self,
            target,
            &mut Vec::new(),
            &mut BTreeSet::new(),
            &mut order,
        )?;
        Ok(order)
    }

    /// Waits for stage `i` to be built.
    fn wait(&self, i: usize) -> Result<StageOut> {
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = &results[i] {
                return r.clone().map_err(|e| {
                    if e.line.is_some() {
                        e
                    } else {
                        BuildError::new(format!("stage {i}: {}", e.message))
                    }
                });
            }
            results = self.ready.wait(results).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn event(&self, e: Event) {
        (self.events)(e);
    }

    fn count(&self, cached: bool) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if cached {
            c.1 += 1;
        } else {
            c.0 += 1;
        }
    }

    fn stage_label(&self, stage: &Stage) -> String {
        stage
            .name
            .clone()
            .unwrap_or_else(|| stage.index.to_string())
    }

    fn stage(&self, i: usize) -> Result<StageOut> {
        let stage = &self.stages.stages[i];
        let number = self.first_number[i];
        self.event(Event::Step {
            number,
            total: self.total,
            stage: self.stage_label(stage),
            text: stage.original.clone(),
        });
        let base_name = self
            .expand_global(&stage.base)
            .map_err(|m| BuildError::new(m).at(stage.line))?;
        let mut state = if let Some(d) = self.stage_named(&base_name, i) {
            let mut s = self.wait(d)?.state;
            s.args.clear();
            s
        } else if base_name == "scratch" {
            State {
                layers: Vec::new(),
                image: ImageConfig {
                    config: Some(ContainerConfig {
                        env: Some(vec![DEFAULT_PATH.into()]),
                        ..ContainerConfig::default()
                    }),
                    ..ImageConfig::default()
                },
                key: hash(&["scratch"]),
                args: BTreeMap::new(),
                use_cache: !self.req.no_cache,
            }
        } else {
            let platform = stage
                .platform
                .as_deref()
                .map(|p| self.expand_global(p))
                .transpose()
                .map_err(|m| BuildError::new(m).at(stage.line))?
                .or_else(|| self.req.platform.clone());
            let base = self
                .worker
                .base(&base_name, platform.as_deref(), self.req.pull)
                .map_err(|e| e.at(stage.line))?;
            let mut image = base.config.clone();
            let cfg = image.config.get_or_insert_with(ContainerConfig::default);
            if cfg
                .env
                .as_ref()
                .is_none_or(|e| !e.iter().any(|v| v.starts_with("PATH=")))
            {
                cfg.env
                    .get_or_insert_with(Vec::new)
                    .insert(0, DEFAULT_PATH.into());
            }
            State {
                key: hash(&["from", &base.id]),
                layers: base.layers,
                image,
                args: BTreeMap::new(),
                use_cache: !self.req.no_cache,
            }
        };
        state.image.container = String::new();
        state.image.container_config = None;
        self.event(Event::Done {
            number,
            key: state.key.clone(),
        });
        // ONBUILD triggers of the base run first.
        let triggers = state.config().on_build.take().unwrap_or_default();
        for t in triggers {
            let file = parser::parse(&t).map_err(|e| {
                BuildError::new(format!("ONBUILD trigger {t:?}: {}", e.message)).at(stage.line)
            })?;
            for node in &file.nodes {
                let instruction = instructions::instruction(node).map_err(|e| {
                    BuildError::new(format!("ONBUILD trigger {t:?}: {}", e.message)).at(stage.line)
                })?;
                let step = Step {
                    line: stage.line,
                    original: t.clone(),
                    instruction,
                };
                self.step(stage, &step, &mut state, None)?;
            }
        }
        for (k, step) in stage.steps.iter().enumerate() {
            self.step(stage, step, &mut state, Some(number + 1 + k))
                .map_err(|e| e.at(step.line))?;
        }
        Ok(StageOut { state })
    }

    /// Looks a step up in the cache; on a miss, `run` does it.
    fn cached_or(
        &self,
        state: &mut State,
        key_text: &str,
        number: Option<usize>,
        layer: bool,
        run: &mut dyn FnMut(&mut State) -> Result<()>,
    ) -> Result<()> {
        let key = hash(&[&state.key, key_text]);
        if state.use_cache
            && let Some(hit) = self.worker.cached(&key)
            && (!layer || hit.layers.is_some())
        {
            if let Some(l) = &hit.layers {
                state.layers = l.clone();
            }
            state.key = key;
            if let Some(n) = number {
                self.event(Event::Cached { number: n });
            }
            self.count(true);
            return Ok(()).map(|()| {
                state.image.history.push(History {
                    created: Some(hit.created),
                    ..History::default()
                });
            });
        }
        state.use_cache = false;
        run(state)?;
        let created = self.worker.now();
        state.key = key.clone();
        state.image.history.push(History {
            created: Some(created.clone()),
            ..History::default()
        });
        self.worker.remember(
            &key,
            &CacheHit {
                layers: layer.then(|| state.layers.clone()),
                created,
            },
        );
        self.count(false);
        Ok(())
    }

    fn step(
        &self,
        stage: &Stage,
        step: &Step,
        state: &mut State,
        number: Option<usize>,
    ) -> Result<()> {
        if let Some(n) = number {
            self.event(Event::Step {
                number: n,
                total: self.total,
                stage: self.stage_label(stage),
                text: step.original.clone(),
            });
        }
        let line = step.line;
        let layers_before = state.layers.len();
        let (created_by, layer) = match &step.instruction {
            Instruction::Run {
                command,
                mounts,
                network,
                heredocs,
            } => {
                let (args, shown) = self.run_args(state, command, heredocs);
                let env = self.run_env(state);
                let used_args: Vec<String> = state
                    .args
                    .iter()
                    .filter(|(k, v)| v.is_some() && !PREDEFINED.contains(&k.as_str()))
                    .filter(|(k, _)| !env_has(&state.env(), k))
                    .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                    .collect();
                let prefix = if used_args.is_empty() {
                    String::new()
                } else {
                    format!("|{} {} ", used_args.len(), used_args.join(" "))
                };
                let created_by = format!("RUN {prefix}{shown} # buildkit");
                let network = network
                    .clone()
                    .or_else(|| self.req.network.clone())
                    .unwrap_or_else(|| "default".into());
                let resolved = self.mounts(state, stage, mounts, line)?;
                let cfg = state.image.config.clone().unwrap_or_default();
                let mount_key: Vec<String> =
                    resolved.iter().map(|(t, m)| format!("{t}={m:?}")).collect();
                let key_text = format!(
                    "run\0{}\0{}\0{}\0{}\0{}\0{}",
                    args.join("\u{1}"),
                    env.join("\u{1}"),
                    cfg.user,
                    cfg.working_dir,
                    network,
                    mount_key.join("\u{1}")
                );
                let spec = RunSpec {
                    parent: Vec::new(),
                    args,
                    env,
                    user: cfg.user.clone(),
                    workdir: if cfg.working_dir.is_empty() {
                        "/".into()
                    } else {
                        cfg.working_dir.clone()
                    },
                    network,
                    mounts: Vec::new(),
                };
                self.cached_or(state, &key_text, number, true, &mut |state| {
                    let mut spec = spec.clone();
                    spec.parent = state.layers.clone();
                    let mut made = Vec::new();
                    self.with_mounts(&resolved, Vec::new(), &mut |mounts| {
                        spec.mounts = mounts;
                        let mut out = |b: &[u8]| {
                            if let Some(n) = number {
                                self.event(Event::Output {
                                    number: n,
                                    bytes: b.to_vec(),
                                });
                            }
                        };
                        made = self.worker.run(&spec, &mut out)?;
                        Ok(())
                    })?;
                    state.layers = made;
                    Ok(())
                })?;
                (created_by, true)
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                let add = matches!(step.instruction, Instruction::Add(_));
                let created_by = self.copy(stage, state, c, add, number, line)?;
                (created_by, true)
            }
            Instruction::Workdir(_) => {
                let created_by = self.meta(state, &step.instruction, line)?;
                let dir = state
                    .image
                    .config
                    .as_ref()
                    .map(|c| c.working_dir.clone())
                    .unwrap_or_default();
                // BuildKit makes the directory: a layer when it was missing.
                self.cached_or(
                    state,
                    &format!("workdir\0{dir}"),
                    number,
                    true,
                    &mut |state| {
                        let mut missing = false;
                        self.worker.with_rootfs(&state.layers, &mut |root| {
                            missing = kind_in(root, &dir) == DestKind::Missing;
                            Ok(())
                        })?;
                        if missing {
                            state.layers = self.worker.change(&state.layers, &mut |target| {
                                let mut tar = tar::Builder::new(Vec::new());
                                let mut h = tar::Header::new_gnu();
                                h.set_entry_type(tar::EntryType::Directory);
                                h.set_mode(0o755);
                                h.set_size(0);
                                h.set_mtime(0);
                                tar.append_data(
                                    &mut h,
                                    format!("{}/", dir.trim_start_matches('/')),
                                    std::io::empty(),
                                )
                                .map_err(|e| BuildError::new(e.to_string()))?;
                                let bytes = tar
                                    .into_inner()
                                    .map_err(|e| BuildError::new(e.to_string()))?;
                                target.extract(&mut &bytes[..]).map_err(BuildError::new)
                            })?;
                        }
                        Ok(())
                    },
                )?;
                (created_by, true)
            }
            other => {
                let created_by = self.meta(state, other, line)?;
                self.cached_or(state, &created_by, number, false, &mut |_| Ok(()))?;
                (created_by, false)
            }
        };
        // A step that made no change makes no layer: the history says so,
        // so that its layer steps and the layers stay one to one.
        let grew = layer && state.layers.len() > layers_before;
        if matches!(step.instruction, Instruction::Onbuild(_)) {
            // BuildKit keeps ONBUILD out of the history.
            state.image.history.pop();
        } else if let Some(h) = state.image.history.last_mut() {
            h.created_by = created_by;
            h.comment = "buildkit.dockerfile.v0".into();
            h.empty_layer = !grew;
        }
        if let Some(n) = number {
            self.event(Event::Done {
                number: n,
                key: state.key.clone(),
            });
        }
        Ok(())
    }

    /// The process of a RUN and its history text.
    fn run_args(
        &self,
        state: &State,
        command: &Command,
        heredocs: &[parser::Heredoc],
    ) -> (Vec<String>, String) {
        if !command.shell {
            let shown = command.args.join(" ");
            return (command.args.clone(), shown);
        }
        let mut script = command.args.join(" ");
        let only_heredoc = |h: &parser::Heredoc| {
            let t = script
                .trim()
                .trim_start_matches("<<")
                .trim_start_matches('-');
            t.trim_matches(|c| c == '"' || c == '\'') == h.name
        };
        match heredocs {
            [h] if only_heredoc(h) => script = h.content.clone(),
            _ => {
                for h in heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    if !h.content.ends_with('\n') {
                        script.push('\n');
                    }
                    script.push_str(&h.name);
                }
            }
        }
        let mut args = state.shell();
        args.push(script);
        let shown = args.join(" ");
        (args, shown)
    }

    /// The environment of a RUN: the image's plus the stage's ARGs.
    fn run_env(&self, state: &State) -> Vec<String> {
        let mut env = state.env();
        for (k, v) in &state.args {
            if let Some(v) = v
                && !env_has(&env, k)
            {
                env.push(format!("{k}={v}"));
            }
        }
        env
    }

    fn mounts(
        &self,
        state: &State,
        stage: &Stage,
        mounts: &[RunMount],
        line: usize,
    ) -> Result<Vec<(String, Pending)>> {
        let mut out = Vec::new();
        for m in mounts {
            let target = self.expand(state, &m.target, line)?;
            let target = self.absolute(state, &target);
            let source = match m.kind.as_str() {
                "cache" => MountSource::Cache {
                    id: m.id.clone().unwrap_or_else(|| target.clone()),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                    mode: m.mode.unwrap_or(0o755),
                },
                "tmpfs" => MountSource::Tmpfs {
                    size: m.size.unwrap_or(0),
                },
                "secret" => {
                    let id = m.id.clone().unwrap_or_default();
                    match self.req.secrets.get(&id) {
                        Some(content) => MountSource::Secret {
                            content: content.clone(),
                            uid: m.uid.unwrap_or(0),
                            gid: m.gid.unwrap_or(0),
                            mode: m.mode.unwrap_or(0o400),
                        },
                        None if m.required => {
                            return Err(BuildError::new(format!(
                                "secret {id} not found: give it with --secret id={id},src=FILE"
                            ))
                            .at(line));
                        }
                        None => continue,
                    }
                }
                _ => {
                    let source = self.expand(state, m.source.as_deref().unwrap_or("."), line)?;
                    let rel = copy::clean(&format!("/{source}"));
                    let host = match &m.from {
                        Some(from) => {
                            let from = self.expand(state, from, line)?;
                            let layers = match self.stage_named(&from, stage.index) {
                                Some(d) => self.wait(d)?.state.layers,
                                None => {
                                    self.worker
                                        .base(&from, None, self.req.pull)
                                        .map_err(|e| e.at(line))?
                                        .layers
                                }
                            };
                            out.push((
                                target,
                                Pending::From {
                                    layers,
                                    source: rel,
                                    readonly: m.readonly.unwrap_or(true),
                                },
                            ));
                            continue;
                        }
                        None => {
                            if copy::clean(&source).starts_with("..") {
                                return Err(BuildError::new(format!(
                                    "--mount source {source:?} is outside the build context"
                                ))
                                .at(line));
                            }
                            self.req.context.join(rel.trim_start_matches('/'))
                        }
                    };
                    MountSource::Bind {
                        host,
                        readonly: m.readonly.unwrap_or(true),
                    }
                }
            };
            out.push((target, Pending::Ready(source)));
        }
        Ok(out)
    }

    /// Runs `f` with the mounts, those from other stages or images
    /// mounted for the time of the call.
    fn with_mounts(
        &self,
        pending: &[(String, Pending)],
        done: Vec<(String, MountSource)>,
        f: &mut dyn FnMut(Vec<(String, MountSource)>) -> Result<()>,
    ) -> Result<()> {
        match pending.split_first() {
            None => f(done),
            Some(((target, Pending::Ready(m)), rest)) => {
                let mut d = done;
                d.push((target.clone(), m.clone()));
                self.with_mounts(rest, d, f)
            }
            Some((
                (
                    target,
                    Pending::From {
                        layers,
                        source,
                        readonly,
                    },
                ),
                rest,
            )) => self.worker.with_rootfs(layers, &mut |root| {
                let mut d = done.clone();
                let inside = copy::in_scope(root, source.trim_start_matches('/'));
                d.push((
                    target.clone(),
                    MountSource::Bind {
                        host: root.join(inside),
                        readonly: *readonly,
                    },
                ));
                self.with_mounts(rest, d, f)
            }),
        }
    }

    /// `path` made absolute against the working directory.
    fn absolute(&self, state: &State, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_string();
        }
        let wd = state
            .image
            .config
            .as_ref()
            .map(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let keep_slash = path.ends_with('/') || path == "." || path.ends_with("/.");
        let mut p = copy::clean(&format!("{wd}/{path}"));
        if keep_slash && !p.ends_with('/') {
            p.push('/');
        }
        p
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        stage: &Stage,
        state: &mut State,
        c: &CopyArgs,
        add: bool,
        number: Option<usize>,
        line: usize,
    ) -> Result<String> {
        let what = if add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        for s in &c.sources {
            let s = self.expand(state, s, line)?;
            if add
                && (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@"))
            {
                return Err(BuildError::new(format!(
                    "ADD {s}: downloading a URL needs the network, which this build does not have: download the file into the context and ADD it from there"
                ))
                .at(line));
            }
            sources.push(s);
        }
        let dest_raw = self.expand(state, &c.dest, line)?;
        let dest = self.absolute(state, &dest_raw);
        let chown = c
            .chown
            .as_deref()
            .map(|o| self.expand(state, o, line))
            .transpose()?;
        let chmod = match &c.chmod {
            Some(m) => {
                let m = self.expand(state, m, line)?;
                Some(copy::parse_chmod(&m).ok_or_else(|| {
                    BuildError::new(format!(
                        "invalid --chmod value {m:?}: an octal mode is expected"
                    ))
                    .at(line)
                })?)
            }
            None => None,
        };
        let from = c
            .from
            .as_deref()
            .map(|f| self.expand(state, f, line))
            .transpose()?;
        let opts = copy::Options {
            owner: None,
            mode: chmod,
            parents: c.parents,
            exclude: c.exclude.clone(),
            unpack_archives: add,
        };
        let mut shown = Vec::new();
        if let Some(f) = &from {
            shown.push(format!("--from={f}"));
        }
        if let Some(o) = &chown {
            shown.push(format!("--chown={o}"));
        }
        if let Some(m) = &c.chmod {
            shown.push(format!("--chmod={m}"));
        }
        if c.link {
            shown.push("--link".into());
        }
        shown.extend(c.sources.iter().cloned());
        for h in &c.heredocs {
            shown.push(format!("<<{}", h.name));
        }
        shown.push(c.dest.clone());
        let created_by = format!("{what} {} # buildkit", shown.join(" "));

        // Where the sources come from.
        let from_layers: Option<Vec<String>> = match &from {
            None => None,
            Some(f) => Some(match self.stage_named(f, stage.index) {
                Some(d) => self.wait(d)?.state.layers,
                None => {
                    let base = self
                        .worker
                        .base(f, None, self.req.pull)
                        .map_err(|e| e.at(line))?;
                    base.layers
                }
            }),
        };
        // Heredoc sources become files in a temporary directory.
        // (Kept until the copy is done.)
        let mut heredoc_dir = None;
        let mut heredoc_items = Vec::new();
        if !c.heredocs.is_empty() {
            let dir = heredoc_dir.insert(
                tempfile::Builder::new()
                    .prefix("hafen-heredoc-")
                    .tempdir()
                    .map_err(|e| {
                        BuildError::new(format!("cannot make a directory for heredocs: {e}"))
                    })?,
            );
            for h in &c.heredocs {
                let content = if h.expand {
                    self.expand_heredoc(state, &h.content, line)?
                } else {
                    h.content.clone()
                };
                let p = dir.path().join(&h.name);
                std::fs::write(&p, content)
                    .map_err(|e| BuildError::new(format!("cannot write a heredoc: {e}")))?;
                heredoc_items.push(p);
            }
        }
        let worker = self.worker;
        let memo = self.memo;
        // The files to copy and where they go, from a tree (the context or
        // a root filesystem) into the image as it is (`dest_kind`).
        let plan = |root: &Path,
                    rootfs: bool,
                    dest_kind: DestKind,
                    owner: Option<(u32, u32)>|
         -> Result<(Vec<copy::Item>, copy::Options)> {
            let tree = Tree {
                root,
                ignore: if rootfs {
                    None
                } else {
                    self.req.ignore.as_ref()
                },
                rootfs,
            };
            let mut o = opts.clone();
            o.owner = owner;
            let mut items = if sources.is_empty() {
                Vec::new()
            } else {
                copy::plan(&tree, &sources, &dest, dest_kind, &o, what)
                    .map_err(|e| BuildError::new(e.to_string()))?
            };
            for (h, p) in c.heredocs.iter().zip(&heredoc_items) {
                let into_dir =
                    dest.ends_with('/') || dest_kind == DestKind::Dir || c.heredocs.len() > 1;
                items.push(copy::Item {
                    unpack: false,
                    meta: None,
                    host: p.clone(),
                    dest: if into_dir {
                        copy::clean(&format!("{dest}/{}", h.name))
                    } else {
                        copy::clean(&dest)
                    },
                });
            }
            Ok((items, o))
        };
        // The key needs no look at the image: where the files land and
        // whose they are follow from the parent step, which the key
        // already holds. Context files count by content; a stage's or
        // image's files by its layers, which name their content.
        let key_text = match &from_layers {
            None => {
                let (items, o) = plan(&self.req.context, false, DestKind::Dir, None)?;
                let digest = copy::digest(&items, &o, false, memo)
                    .map_err(|e| BuildError::new(e.to_string()))?;
                format!("copy\0{created_by}\0{dest}\0{chown:?}\0{digest}")
            }
            Some(layers) => {
                let heredocs: Vec<String> = c
                    .heredocs
                    .iter()
                    .map(|h| format!("{}={}", h.name, h.content))
                    .collect();
                format!(
                    "copy-from\0{created_by}\0{dest}\0{chown:?}\0{}\0{}",
                    layers.join(","),
                    heredocs.join("\0")
                )
            }
        };
        self.cached_or(state, &key_text, number, true, &mut |state| {
            // The destination's kind and --chown's IDs: from the image's
            // files.
            let mut dest_kind = DestKind::Missing;
            let mut owner = None;
            worker.with_rootfs(&state.layers, &mut |root| {
                dest_kind = kind_in(root, &dest);
                if let Some(o) = &chown {
                    owner = Some(resolve_owner(root, o)?);
                }
                Ok(())
            })?;
            let mut run = |root: &Path, rootfs: bool| -> Result<()> {
                let (items, o) = plan(root, rootfs, dest_kind, owner)?;
                let mut make_dirs = Vec::new();
                if dest_kind == DestKind::Missing && (dest.ends_with('/') || items.len() > 1) {
                    make_dirs.push(copy::clean(&dest));
                }
                state.layers = worker.change(&state.layers, &mut |target| {
                    let mut buf = Vec::new();
                    copy::write_tar(&items, &make_dirs, &o, rootfs, &mut buf)
                        .map_err(|e| BuildError::new(e.to_string()))?;
                    target
                        .extract(&mut std::io::Cursor::new(buf))
                        .map_err(BuildError::new)
                })?;
                Ok(())
            };
            match &from_layers {
                None => run(&self.req.context, false),
                Some(layers) => worker.with_rootfs(layers, &mut |root| run(root, true)),
            }
        })?;
        Ok(created_by)
    }

    fn expand_heredoc(&self, state: &State, content: &str, line: usize) -> Result<String> {
        // Expansion keeps the text's quotes and spacing: only variables.
        let mut out = String::new();
        for (i, l) in content.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if l.contains('$') {
                let escaped = l.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&self.expand(state, &format!("\"{escaped}\""), line)?);
            } else {
                out.push_str(l);
            }
        }
        Ok(out)
    }

    /// A configuration step: changes the image config; its history text.
    fn meta(&self, state: &mut State, instruction: &Instruction, line: usize) -> Result<String> {
        let x = |s: &State, w: &str| self.expand(s, w, line);
        Ok(match instruction {
            Instruction::Cmd(c) | Instruction::Entrypoint(c) => {
                let is_cmd = matches!(instruction, Instruction::Cmd(_));
                let args = if c.shell {
                    let mut a = state.shell();
                    a.push(c.args.join(" "));
                    a
                } else {
                    c.args.clone()
                };
                let cfg = state.config();
                if is_cmd {
                    cfg.cmd = Some(args.clone());
                    // BuildKit marks the command as escaped (a Windows
                    // matter, written on every platform).
                    cfg.args_escaped = Some(true);
                } else {
                    cfg.entrypoint = Some(args.clone());
                    // An ENTRYPOINT resets the CMD of the base.
                    cfg.cmd = None;
                }
                let word = if is_cmd { "CMD" } else { "ENTRYPOINT" };
                format!("{word} {}", go_json_list(&args))
            }
            Instruction::Label(pairs) => {
                let mut shown = Vec::new();
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let k = x(state, k)?;
                    let v = x(state, v)?;
                    shown.push(format!("{k}={v}"));
                    expanded.push((k, v));
                }
                let labels = state.config().labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in expanded {
                    labels.insert(k, v);
                }
                format!("LABEL {}", shown.join(" "))
            }
            Instruction::Env(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = x(state, k)?;
                    let v = x(state, v)?;
                    shown.push(format!("{k}={v}"));
                    let env = state.config().env.get_or_insert_with(Vec::new);
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = format!("{k}={v}"),
                        None => env.push(format!("{k}={v}")),
                    }
                }
                format!("ENV {}", shown.join(" "))
            }
            Instruction::Expose(ports) => {
                let mut expanded = Vec::new();
                for p in ports {
                    for w in self
                        .lexer
                        .process_words(p, &|n| state.lookup(n))
                        .map_err(|e| BuildError::new(e.to_string()).at(line))?
                    {
                        let w = if w.contains('/') {
                            w.to_lowercase()
                        } else {
                            format!("{w}/tcp")
                        };
                        let (port, proto) = w.split_once('/').unwrap_or((&w, "tcp"));
                        if port.is_empty()
                            || !port.split('-').all(|p| p.parse::<u16>().is_ok())
                            || !matches!(proto, "tcp" | "udp" | "sctp")
                        {
                            return Err(
                                BuildError::new(format!("invalid port {w:?} in EXPOSE")).at(line)
                            );
                        }
                        expanded.push(w);
                    }
                }
                let ports = state
                    .config()
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for p in &expanded {
                    ports.insert(p.clone(), json!({}));
                }
                let mut all: Vec<String> = expanded.iter().map(|p| format!("{p}:{{}}")).collect();
                all.sort();
                format!("EXPOSE map[{}]", all.join(" "))
            }
            Instruction::Volume(list) => {
                let mut expanded = Vec::new();
                for v in list {
                    let v = x(state, v)?;
                    if v.trim().is_empty() {
                        return Err(
                            BuildError::new("VOLUME specified can not be an empty string").at(line),
                        );
                    }
                    expanded.push(v);
                }
                let vols = state.config().volumes.get_or_insert_with(BTreeMap::new);
                for v in &expanded {
                    vols.insert(v.clone(), json!({}));
                }
                format!("VOLUME [{}]", expanded.join(" "))
            }
            Instruction::User(u) => {
                let u = x(state, u)?;
                state.config().user = u.clone();
                format!("USER {u}")
            }
            Instruction::Workdir(w) => {
                let w = x(state, w)?;
                let abs = if w.starts_with('/') {
                    copy::clean(&w)
                } else {
                    let cur = state
                        .image
                        .config
                        .as_ref()
                        .map(|c| c.working_dir.clone())
                        .unwrap_or_default();
                    copy::clean(&format!("{}/{w}", if cur.is_empty() { "/" } else { &cur }))
                };
                state.config().working_dir = abs.clone();
                format!("WORKDIR {abs}")
            }
            Instruction::Arg(args) => {
                let mut shown = Vec::new();
                for (name, default) in args {
                    let value = match self.req.build_args.get(name) {
                        Some(v) => v.clone(),
                        None => match default {
                            Some(d) => Some(x(state, d)?),
                            None => self.globals.get(name).cloned().flatten(),
                        },
                    };
                    shown.push(match &value {
                        Some(v) if default.is_some() || self.req.build_args.contains_key(name) => {
                            format!("{name}={v}")
                        }
                        _ => name.clone(),
                    });
                    state.args.insert(name.clone(), value);
                }
                format!("ARG {}", shown.join(" "))
            }
            Instruction::Onbuild(text) => {
                state
                    .config()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(text.clone());
                format!("ONBUILD {text}")
            }
            Instruction::Stopsignal(s) => {
                let s = x(state, s)?;
                state.config().stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Instruction::Healthcheck(h) => {
                let v = health_json(h);
                state.config().healthcheck = Some(v.clone());
                format!("HEALTHCHECK {}", health_text(h))
            }
            Instruction::Shell(s) => {
                state.config().shell = Some(s.clone());
                format!("SHELL [{}]", s.join(" "))
            }
            Instruction::Maintainer(m) => {
                let m = x(state, m)?;
                state.image.author = m.clone();
                format!("MAINTAINER {m}")
            }
            Instruction::From { .. }
            | Instruction::Run { .. }
            | Instruction::Copy(_)
            | Instruction::Add(_) => String::new(),
        })
    }
}

fn env_has(env: &[String], name: &str) -> bool {
    env.iter().any(|e| e.split('=').next() == Some(name))
}

/// Go's `%q`-ish JSON list, as BuildKit prints CMD in history.
fn go_json_list(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_default()
}

fn health_json(h: &Health) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), json!(h.test));
    for (k, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if v != 0 {
            m.insert(k.into(), json!(v));
        }
    }
    if h.retries != 0 {
        m.insert("Retries".into(), json!(h.retries));
    }
    Value::Object(m)
}

fn go_duration_text(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let secs = ns as f64 / 1e9;
    if ns % 1_000_000_000 == 0 {
        let s = ns / 1_000_000_000;
        let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{s}s"));
        out
    } else {
        format!("{secs}s")
    }
}

/// BuildKit's history text of a HEALTHCHECK (Go's `%v` of the config).
fn health_text(h: &Health) -> String {
    let test: Vec<String> = h.test.iter().map(|t| format!("{t:?}")).collect();
    // Go's %q of an int is a character literal.
    let retries = match u8::try_from(h.retries) {
        Ok(c @ 0x20..=0x7e) if c != b'\'' && c != b'\\' => format!("'{}'", char::from(c)),
        Ok(c) => format!("'\\x{c:02x}'"),
        Err(_) => format!("{}", h.retries),
    };
    format!(
        "&{{[{}] {:?} {:?} {:?} {retries}}}",
        test.join(" "),
        go_duration_text(h.interval),
        go_duration_text(h.timeout),
        go_duration_text(h.start_period),
    )
}

/// What `path` is under `root` (symlinks followed inside it).
fn kind_in(root: &Path, path: &str) -> DestKind {
    let rel = copy::in_scope(root, copy::clean(path).trim_start_matches('/'));
    match std::fs::metadata(root.join(rel)) {
        Ok(m) if m.is_dir() => DestKind::Dir,
        Ok(_) => DestKind::Other,
        Err(_) => DestKind::Missing,
    }
}

/// `--chown=user[:group]` as IDs, names looked up in the image's
/// `/etc/passwd` and `/etc/group`.
fn resolve_owner(root: &Path, text: &str) -> Result<(u32, u32)> {
    let (user, group) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    let lookup = |file: &str, name: &str, what: &str| -> Result<(u32, u32)> {
        if let Ok(id) = name.parse::<u32>() {
            return Ok((id, id));
        }
        for line in read(file).lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 3 && fields[0] == name {
                let id = fields[2].parse().unwrap_or(0);
                let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
                return Ok((id, gid));
            }
        }
        Err(BuildError::new(format!(
            "unable to convert {what} {name:?} to an ID: no such {what} in the image's /{file}"
        )))
    };
    let (uid, primary) = lookup("etc/passwd", user, "user")?;
    let gid = match group {
        Some(g) => lookup("etc/group", g, "group")?.0,
        None if user.parse::<u32>().is_ok() => uid,
        None => primary,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A worker without containers: RUN steps record what they would
    /// run and make a layer named after it; COPY extracts nowhere.
    #[derive(Default)]
    struct Fake {
        cache: Mutex<HashMap<String, CacheHit>>,
        runs: Mutex<Vec<RunSpec>>,
        assembled: Mutex<Vec<(Vec<String>, ImageConfig)>>,
        clock: Mutex<u32>,
    }

    impl Worker for Fake {
        fn base(&self, name: &str, _: Option<&str>, _: bool) -> Result<Base> {
            if name != "busybox" && name != "busybox:latest" {
                return Err(BuildError::new(format!("no image {name}")));
            }
            Ok(Base {
                id: "sha256:base".into(),
                layers: vec!["sha256:l0".into()],
                config: ImageConfig {
                    config: Some(ContainerConfig {
                        env: Some(vec!["PATH=/bin".into()]),
                        cmd: Some(vec!["sh".into()]),
                        ..ContainerConfig::default()
                    }),
                    history: vec![History {
                        created_by: "base".into(),
                        ..History::default()
                    }],
                    ..ImageConfig::default()
                },
            })
        }
        fn cached(&self, key: &str) -> Option<CacheHit> {
            self.cache.lock().ok()?.get(key).cloned()
        }
        fn remember(&self, key: &str, hit: &CacheHit) {
            if let Ok(mut c) = self.cache.lock() {
                c.insert(key.to_string(), hit.clone());
            }
        }
        fn run(&self, spec: &RunSpec, output: &mut dyn FnMut(&[u8])) -> Result<Vec<String>> {
            output(b"ran\n");
            let mut runs = self.runs.lock().map_err(|_| BuildError::new("lock"))?;
            runs.push(spec.clone());
            if spec.args.last().is_some_and(|a| a.contains("exit 3")) {
                return Err(BuildError {
                    line: None,
                    message: "exit code: 3".into(),
                    code: 3,
                });
            }
            let mut l = spec.parent.clone();
            l.push(format!("sha256:run{}", runs.len()));
            Ok(l)
        }
        fn change(
            &self,
            parent: &[String],
            f: &mut dyn FnMut(&dyn Target) -> Result<()>,
        ) -> Result<Vec<String>> {
            struct Nowhere;
            impl Target for Nowhere {
                fn extract(&self, tar: &mut dyn Read) -> std::result::Result<(), String> {
                    std::io::copy(tar, &mut std::io::sink()).map_err(|e| e.to_string())?;
                    Ok(())
                }
            }
            f(&Nowhere)?;
            let mut l = parent.to_vec();
            l.push(format!("sha256:copy{}", l.len()));
            Ok(l)
        }
        fn with_rootfs(&self, _: &[String], f: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()> {
            let t = tempfile::tempdir().map_err(|e| BuildError::new(e.to_string()))?;
            f(t.path())
        }
        fn assemble(&self, layers: &[String], config: ImageConfig) -> Result<String> {
            let id = format!(
                "sha256:{}",
                hash(&[
                    &serde_json::to_string(&config).unwrap_or_default(),
                    &layers.join(",")
                ])
            );
            if let Ok(mut a) = self.assembled.lock() {
                a.push((layers.to_vec(), config));
            }
            Ok(id)
        }
        fn now(&self) -> String {
            let mut c = self.clock.lock().unwrap_or_else(|p| p.into_inner());
            *c += 1;
            format!("2026-01-01T00:00:{:02}Z", *c)
        }
    }

    fn request(dockerfile: &str, ctx: &Path) -> Request {
        Request {
            dockerfile: dockerfile.into(),
            context: ctx.to_path_buf(),
            ..Request::default()
        }
    }

    fn go(w: &Fake, req: &Request) -> Result<(Built, Vec<Event>)> {
        let events = Mutex::new(Vec::new());
        let memo = HashMemo::default();
        let built = build(w, req, &memo, &|e| events.lock().expect("events").push(e))?;
        Ok((built, events.into_inner().expect("events")))
    }

    #[test]
    fn configuration_steps_make_the_config_and_history_buildkit_writes() {
        let ctx = tempfile::tempdir().expect("ctx");
        let w = Fake::default();
        let df = "ARG TAG=latest\nFROM busybox:${TAG}\nARG N=2\nENV A=1 B=\"two words\"\nENV C=${A}x\nLABEL l=$A\nEXPOSE 80 53/udp\nWORKDIR /app\nWORKDIR sub\nUSER nobody\nVOLUME /data\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/ash\", \"-c\"]\nRUN echo $N\nENTRYPOINT [\"/bin/e\"]\nHEALTHCHECK --interval=30s CMD check\nONBUILD RUN later\n";
        let (built, events) = go(&w, &request(df, ctx.path())).expect("build");
        assert!(built.id.starts_with("sha256:"));
        let (layers, image) = w.assembled.lock().expect("a")[0].clone();
        // Each WORKDIR made its missing directory: a layer each.
        assert_eq!(
            layers,
            vec!["sha256:l0", "sha256:copy1", "sha256:copy2", "sha256:run1"]
        );
        let c = image.config.expect("config");
        assert_eq!(
            c.env,
            Some(vec![
                "PATH=/bin".into(),
                "A=1".into(),
                "B=two words".into(),
                "C=1x".into()
            ])
        );
        assert_eq!(c.working_dir, "/app/sub");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.entrypoint, Some(vec!["/bin/e".into()]));
        // ENTRYPOINT resets the base's CMD.
        assert_eq!(c.cmd, None);
        assert_eq!(c.labels.expect("labels")["l"], "1");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, Some(vec!["RUN later".into()]));
        assert_eq!(
            c.healthcheck,
            Some(json!({"Test": ["CMD-SHELL", "check"], "Interval": 30_000_000_000i64}))
        );
        let ports: Vec<String> = c.exposed_ports.expect("ports").keys().cloned().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        // The RUN used the SHELL, the ARG in its environment, the user and
        // the directory.
        let runs = w.runs.lock().expect("runs");
        assert_eq!(runs[0].args, vec!["/bin/ash", "-c", "echo $N"]);
        assert!(runs[0].env.contains(&"N=2".to_string()));
        assert_eq!(runs[0].user, "nobody");
        assert_eq!(runs[0].workdir, "/app/sub");
        // History: the base's, then one per step, BuildKit's texts.
        let h: Vec<(&str, bool)> = image
            .history
            .iter()
            .map(|h| (h.created_by.as_str(), h.empty_layer))
            .collect();
        assert_eq!(h[0], ("base", false));
        assert_eq!(h[1], ("ARG N=2", true));
        assert_eq!(h[2], ("ENV A=1 B=two words", true));
        assert_eq!(h[5], ("EXPOSE map[53/udp:{} 80/tcp:{}]", true));
        assert_eq!(h[6], ("WORKDIR /app", false));
        assert_eq!(
            h[14],
            (
                "HEALTHCHECK &{[\"CMD-SHELL\" \"check\"] \"30s\" \"0s\" \"0s\" '\\x00'}",
                true
            )
        );
        // ONBUILD is not in the history.
        assert_eq!(h.len(), 15);
        assert_eq!(h[12], ("RUN |1 N=2 /bin/ash -c echo $N # buildkit", false));
        assert_eq!(h[13], ("ENTRYPOINT [\"/bin/e\"]", true));
        assert!(
            image
                .history
                .iter()
                .skip(1)
                .all(|h| h.comment == "buildkit.dockerfile.v0")
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Output { bytes, .. } if bytes == b"ran\n"))
        );
        // The ARG is not in the image.
        assert!(!c.env.iter().flatten().any(|e| e.starts_with("N=")));
    }

    #[test]
    fn a_rebuild_takes_every_step_from_the_cache_and_makes_the_same_image() {
        let ctx = tempfile::tempdir().expect("ctx");
        std::fs::write(ctx.path().join("f"), "1").expect("f");
        let w = Fake::default();
        let df = "FROM busybox\nRUN one\nCOPY f /f\nRUN two\nENV X=1\n";
        let (first, _) = go(&w, &request(df, ctx.path())).expect("first");
        assert_eq!((first.ran, first.cached), (4, 0));
        let (second, _) = go(&w, &request(df, ctx.path())).expect("second");
        assert_eq!((second.ran, second.cached), (0, 4));
        assert_eq!(first.id, second.id);
        // A changed file: COPY and what follows run again.
        std::fs::write(ctx.path().join("f"), "2").expect("f");
        let (third, _) = go(&w, &request(df, ctx.path())).expect("third");
        assert_eq!((third.ran, third.cached), (3, 1));
        assert_ne!(third.id, first.id);
        // A changed build argument changes the RUN steps that see it.
        let mut req = request("FROM busybox\nARG V\nRUN use\n", ctx.path());
        go(&w, &req).expect("v unset");
        req.build_args.insert("V".into(), Some("x".into()));
        let (with_v, _) = go(&w, &req).expect("v set");
        assert_eq!((with_v.ran, with_v.cached), (2, 0));
        // --no-cache.
        let mut req = request(df, ctx.path());
        req.no_cache = true;
        let (nc, _) = go(&w, &req).expect("no cache");
        assert_eq!((nc.ran, nc.cached), (4, 0));
    }

    #[test]
    fn stages_targets_and_cycles() {
        let ctx = tempfile::tempdir().expect("ctx");
        let w = Fake::default();
        let df =
            "FROM busybox AS a\nRUN in-a\nFROM busybox AS b\nRUN in-b\nFROM a AS c\nRUN in-c\n";
        let mut req = request(df, ctx.path());
        req.target = Some("c".into());
        go(&w, &req).expect("target c");
        let ran: Vec<String> = w
            .runs
            .lock()
            .expect("runs")
            .iter()
            .map(|r| r.args.last().cloned().unwrap_or_default())
            .collect();
        assert_eq!(ran, ["in-a", "in-c"]);
        let cyc =
            "FROM busybox AS x\nCOPY --from=y /a /a\nFROM busybox AS y\nCOPY --from=x /b /b\n";
        let e = go(&w, &request(cyc, ctx.path())).expect_err("cycle");
        assert!(e.message.contains("circular dependency"), "{e}");
        assert_eq!(e.line, Some(2));
        let e = go(&w, &request(df, ctx.path()).clone()).map(|_| ());
        assert!(e.is_ok());
        let mut req = request(df, ctx.path());
        req.target = Some("nope".into());
        assert!(go(&w, &req).is_err());
    }

    #[test]
    fn a_failing_run_reports_its_line_and_code() {
        let ctx = tempfile::tempdir().expect("ctx");
        let w = Fake::default();
        let e = go(&w, &request("FROM busybox\n\nRUN exit 3\n", ctx.path())).expect_err("fails");
        assert_eq!((e.line, e.code), (Some(3), 3));
        assert!(e.to_string().starts_with("Dockerfile:3: "), "{e}");
        let e = go(&w, &request("FROM nothing\n", ctx.path())).expect_err("no base");
        assert_eq!(e.line, Some(1));
    }
}
