//! `hafen build`: sends the context (a directory, without what
//! `.dockerignore` leaves out, or a tar on stdin) to `POST /build` and
//! shows the progress.
//!
//! Progress goes to stderr (stdout stays for `-q`'s ID): `plain` prints
//! the daemon's lines as they come; `tty` (the default on a terminal)
//! also keeps a live line at the bottom with the running step and the
//! time. `--output` writes the image's files to a directory or a tar.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use hafen_api::client::{self, encode};
use hafen_build::dockerignore::Patterns;
use hyper::Method;

use super::{CliError, Global, Session, out};

/// `hafen build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a directory, or `-` for a tar (or a Dockerfile)
    /// on stdin.
    context: String,
    /// The Dockerfile (default: `PATH/Dockerfile`; `-`: read from stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Name the image (`name:tag`); may be given several times.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// A build-time variable (`KEY=value`, or `KEY` to take it from the
    /// environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// A label for the image (`key=value`).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    no_cache: bool,
    /// Always look for newer base images.
    #[arg(long)]
    pull: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// `auto`, `plain`, `tty` or `quiet`.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Write the result's files: `type=local,dest=DIR`, `type=tar,dest=FILE`
    /// or a directory.
    #[arg(short = 'o', long)]
    output: Option<String>,
    /// The platform of the image (`linux/amd64`).
    #[arg(long)]
    platform: Option<String>,
    /// The network of RUN steps: `default`, `none` or `host`.
    #[arg(long)]
    network: Option<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or
    /// `id=ID,env=VAR`.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Images to take cache from (accepted; the local cache is used).
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Remove intermediate containers (always done).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", hide = true)]
    rm: bool,
    /// Always remove intermediate containers (always done).
    #[arg(long, hide = true)]
    force_rm: bool,
}

/// `--secret id=ID,src=FILE|env=VAR` (a bare `id=ID` reads the
/// environment variable ID).
fn secret(spec: &str) -> Result<(String, String), CliError> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(v.to_string()),
            Some(("env", v)) => env = Some(v.to_string()),
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(CliError::Failed(format!(
                    "invalid --secret {spec:?}: expected id=ID,src=FILE or id=ID,env=VAR"
                )));
            }
        }
    }
    let id = id.ok_or_else(|| CliError::Failed(format!("invalid --secret {spec:?}: no id")))?;
    let content = match (src, env) {
        (Some(f), _) => std::fs::read_to_string(&f)
            .map_err(|e| CliError::Failed(format!("cannot read the secret {id} from {f}: {e}")))?,
        (None, Some(v)) => std::env::var(&v)
            .map_err(|_| CliError::Failed(format!("the secret {id}: ${v} is not set")))?,
        (None, None) => std::env::var(&id)
            .map_err(|_| CliError::Failed(format!("the secret {id}: give src=FILE or env=VAR")))?,
    };
    Ok((id, content))
}

/// Where `--output` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Dir(PathBuf),
    Tar(Option<PathBuf>),
}

fn parse_output(text: &str) -> Result<Output, CliError> {
    if !text.contains('=') {
        return Ok(if text == "-" {
            Output::Tar(None)
        } else {
            Output::Dir(PathBuf::from(text))
        });
    }
    let mut kind = None;
    let mut dest = None;
    for field in text.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(v.to_string()),
            _ => {
                return Err(CliError::Failed(format!(
                    "invalid --output {text:?}: expected type=local,dest=DIR or type=tar,dest=FILE"
                )));
            }
        }
    }
    match (kind.as_deref(), dest) {
        (Some("local"), Some(d)) => Ok(Output::Dir(PathBuf::from(d))),
        (Some("tar"), d) => Ok(Output::Tar(d.filter(|d| d != "-").map(PathBuf::from))),
        (Some("local"), None) => Err(CliError::Failed(
            "--output type=local needs dest=DIR".into(),
        )),
        (k, _) => Err(CliError::Failed(format!(
            "unsupported --output type {:?}: local or tar",
            k.unwrap_or("")
        ))),
    }
}

/// The tar of the context directory `dir`: everything `.dockerignore`
/// does not exclude, plus the Dockerfile and the ignore file themselves.
fn context_tar(
    dir: &Path,
    dockerfile_rel: &str,
    extra: Option<(&str, &[u8])>,
) -> Result<Vec<u8>, CliError> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let ignore_text =
        read(&format!("{dockerfile_rel}.dockerignore")).or_else(|| read(".dockerignore"));
    let ignore = ignore_text
        .map(|t| Patterns::parse(&t))
        .transpose()
        .map_err(|e| CliError::Failed(format!("error reading .dockerignore: {e}")))?;
    let keep = |rel: &str| {
        rel == dockerfile_rel
            || rel == ".dockerignore"
            || rel == format!("{dockerfile_rel}.dockerignore")
            || !ignore.as_ref().is_some_and(|p| p.excluded(rel))
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    fn walk(
        dir: &Path,
        rel: &str,
        keep: &dyn Fn(&str) -> bool,
        ignore: Option<&Patterns>,
        tar: &mut tar::Builder<Vec<u8>>,
    ) -> Result<(), CliError> {
        let io = |e: std::io::Error| CliError::Failed(format!("cannot read the context: {e}"));
        let mut names: Vec<_> = std::fs::read_dir(dir.join(rel))
            .map_err(io)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = dir.join(&r);
            let meta = std::fs::symlink_metadata(&path).map_err(io)?;
            let kept = keep(&r);
            if meta.is_dir() {
                if !kept && !ignore.is_some_and(|p| p.may_include_below(&r)) {
                    continue;
                }
                if kept {
                    tar.append_path_with_name(&path, &r).map_err(io)?;
                }
                walk(dir, &r, keep, ignore, tar)?;
            } else if kept {
                tar.append_path_with_name(&path, &r).map_err(io)?;
            }
        }
        Ok(())
    }
    walk(dir, "", &keep, ignore.as_ref(), &mut tar)?;
    if let Some((name, bytes)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, name, bytes)
            .map_err(|e| CliError::Failed(format!("cannot add the Dockerfile: {e}")))?;
    }
    tar.into_inner()
        .map_err(|e| CliError::Failed(format!("cannot make the context: {e}")))
}

/// The context tar with a Dockerfile that is not in the directory (from
/// stdin or elsewhere) added under a name of its own, as the docker CLI
/// does; the query names it.
fn context_with_dockerfile(
    dir: &Path,
    query: &mut Vec<String>,
    text: &[u8],
) -> Result<Vec<u8>, CliError> {
    let name = format!(".dockerfile.{}", std::process::id());
    query.push(format!("dockerfile={}", encode(&name)));
    context_tar(dir, &name, Some((&name, text)))
}

/// What the progress display shows.
struct Progress {
    live: bool,
    quiet: bool,
    started: Instant,
    current: String,
    drawn: bool,
}

impl Progress {
    fn clear(&mut self) {
        if self.drawn {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn text(&mut self, t: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(t.as_bytes());
        drop(e);
        if let Some(step) = t.lines().rev().find(|l| l.starts_with("Step ")) {
            self.current = step.to_string();
        }
        self.draw();
    }

    fn draw(&mut self) {
        if !self.live || self.quiet {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let mut line = format!("[+] Building {secs:.1}s  {}", self.current);
        line.truncate(120);
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(format!("\x1b[2m{line}\x1b[0m").as_bytes());
        let _ = e.flush();
        self.drawn = true;
    }
}

/// `hafen build`.
pub fn build(g: &Global, a: BuildArgs) -> Result<(), CliError> {
    let output = a.output.as_deref().map(parse_output).transpose()?;
    let mut query = Vec::new();
    let dockerfile_arg = a.file.clone();
    let mut body = if a.context == "-" {
        if dockerfile_arg.as_deref() == Some("-") {
            return Err(CliError::Failed(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            ));
        }
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| CliError::Failed(format!("cannot read the context from stdin: {e}")))?;
        if let Some(f) = &dockerfile_arg {
            query.push(format!("dockerfile={}", encode(f)));
        }
        data
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            return Err(CliError::Failed(format!(
                "unable to prepare context: path {:?} not found",
                a.context
            )));
        }
        let mut stdin_dockerfile = None;
        if std::env::var_os("HAFEN_BUILD_SEND_CONTEXT").is_none() {
            // The daemon is on this machine: it reads the directory in
            // place (only the files a step reads are read, and those that
            // did not change are not read again). The Dockerfile goes in
            // the body.
            let abs = std::fs::canonicalize(&dir)
                .map_err(|e| CliError::Failed(format!("unable to prepare context: {e}")))?;
            let meta = std::fs::metadata(&abs)
                .map_err(|e| CliError::Failed(format!("unable to prepare context: {e}")))?;
            use std::os::unix::fs::MetadataExt;
            let mut q = query.clone();
            q.push(format!("hafen-context={}", encode(&abs.to_string_lossy())));
            q.push(format!("hafen-context-id={}:{}", meta.dev(), meta.ino()));
            let (rel, text) = match dockerfile_arg.as_deref() {
                Some("-") => {
                    let mut text = Vec::new();
                    std::io::stdin().read_to_end(&mut text).map_err(|e| {
                        CliError::Failed(format!("cannot read the Dockerfile from stdin: {e}"))
                    })?;
                    stdin_dockerfile = Some(text.clone());
                    (None, Some(text))
                }
                other => {
                    let file = match other {
                        None => abs.join("Dockerfile"),
                        Some(f) => std::env::current_dir().unwrap_or_default().join(f),
                    };
                    let file = std::fs::canonicalize(&file).unwrap_or(file);
                    match file.strip_prefix(&abs) {
                        Ok(rel) if file.is_file() => (
                            Some(rel.to_string_lossy().into_owned()),
                            std::fs::read(&file).ok(),
                        ),
                        // Missing, or outside the context: as a tar.
                        _ => (None, None),
                    }
                }
            };
            if let Some(text) = text {
                if let Some(rel) = rel {
                    q.push(format!("dockerfile={}", encode(&rel)));
                }
                match send(g, &a, q, text, output.clone(), true) {
                    Err(CliError::Failed(m))
                        if m.starts_with(hafen_api::models::CONTEXT_NOT_SHARED) =>
                    {
                        // Another machine or mount namespace: send a tar.
                    }
                    other => return other,
                }
            }
        }
        if let Some(text) = stdin_dockerfile {
            let tar = context_with_dockerfile(&dir, &mut query, &text)?;
            return send(g, &a, query, tar, output, false);
        }
        match dockerfile_arg.as_deref() {
            Some("-") => {
                let mut text = Vec::new();
                std::io::stdin().read_to_end(&mut text).map_err(|e| {
                    CliError::Failed(format!("cannot read the Dockerfile from stdin: {e}"))
                })?;
                context_with_dockerfile(&dir, &mut query, &text)?
            }
            other => {
                let rel = match other {
                    None => "Dockerfile".to_string(),
                    Some(f) => {
                        let p = Path::new(f);
                        let abs = if p.is_absolute() {
                            p.to_path_buf()
                        } else {
                            std::env::current_dir().unwrap_or_default().join(p)
                        };
                        let dir_abs = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
                        let file_abs = std::fs::canonicalize(&abs).map_err(|_| {
                            CliError::Failed(format!(
                                "unable to prepare context: the Dockerfile {f:?} does not exist"
                            ))
                        })?;
                        match file_abs.strip_prefix(&dir_abs) {
                            Ok(r) => r.to_string_lossy().into_owned(),
                            Err(_) => {
                                // Outside the context: sent along under
                                // a name of its own.
                                let text = std::fs::read(&file_abs).map_err(|e| {
                                    CliError::Failed(format!("cannot read {f}: {e}"))
                                })?;
                                let tar = context_with_dockerfile(&dir, &mut query, &text)?;
                                return send(g, &a, query, tar, output, false);
                            }
                        }
                    }
                };
                if !dir.join(&rel).is_file() {
                    return Err(CliError::Failed(format!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        dir.join(&rel).display()
                    )));
                }
                query.push(format!("dockerfile={}", encode(&rel)));
                context_tar(&dir, &rel, None)?
            }
        }
    };
    send(g, &a, query, std::mem::take(&mut body), output, false)
}

fn send(
    g: &Global,
    a: &BuildArgs,
    mut query: Vec<String>,
    body: Vec<u8>,
    output: Option<Output>,
    in_place: bool,
) -> Result<(), CliError> {
    for t in &a.tags {
        query.push(format!("t={}", encode(t)));
    }
    let mut args = BTreeMap::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_string(), Some(v.to_string()));
            }
            None => {
                if let Ok(v) = std::env::var(b) {
                    args.insert(b.clone(), Some(v));
                }
            }
        }
    }
    if !args.is_empty() {
        query.push(format!(
            "buildargs={}",
            encode(&serde_json::to_string(&args).unwrap_or_default())
        ));
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    if !labels.is_empty() {
        query.push(format!(
            "labels={}",
            encode(&serde_json::to_string(&labels).unwrap_or_default())
        ));
    }
    for (flag, v) in [
        ("target", &a.target),
        ("platform", &a.platform),
        ("networkmode", &a.network),
    ] {
        if let Some(v) = v {
            query.push(format!("{flag}={}", encode(v)));
        }
    }
    if a.no_cache {
        query.push("nocache=1".into());
    }
    if a.pull {
        query.push("pull=1".into());
    }
    if !a.cache_from.is_empty() {
        query.push(format!(
            "cachefrom={}",
            encode(&serde_json::to_string(&a.cache_from).unwrap_or_default())
        ));
    }
    let quiet = a.quiet || a.progress == "quiet";
    let live = match a.progress.as_str() {
        "tty" => true,
        "plain" | "quiet" => false,
        "auto" => std::io::stderr().is_terminal(),
        other => {
            return Err(CliError::Failed(format!(
                "invalid --progress {other:?}: auto, plain, tty or quiet"
            )));
        }
    };
    let mut secrets = BTreeMap::new();
    for spec in &a.secrets {
        let (id, content) = secret(spec)?;
        secrets.insert(id, content);
    }
    let mut headers = Vec::new();
    if !secrets.is_empty() {
        headers.push((
            "x-hafen-build-secrets",
            encode(&serde_json::to_string(&secrets).unwrap_or_default()),
        ));
    }
    let s = Session::open(g)?;
    let resp = s.rt.block_on(s.client.request_with(
        Method::POST,
        &format!("/build?{}", query.join("&")),
        Some("application/x-tar"),
        &headers,
        client::from_reader(std::io::Cursor::new(body)),
    ))?;
    let mut progress = Progress {
        live,
        quiet,
        started: Instant::now(),
        current: String::new(),
        drawn: false,
    };
    let mut id = None;
    let mut failure = None;
    super::images::read_messages(&s, resp, &mut |m| {
        if let Some(d) = &m.error_detail {
            failure = Some((d.message.clone(), d.code.unwrap_or(1)));
            return Ok(false);
        }
        if let Some(e) = &m.error {
            failure = Some((e.clone(), 1));
            return Ok(false);
        }
        if let Some(aux) = &m.aux
            && let Some(i) = aux.get("ID").and_then(|v| v.as_str())
        {
            id = Some(i.to_string());
        }
        if let Some(t) = &m.stream
            && !t.starts_with("sha256:")
        {
            progress.text(t);
        }
        progress.draw();
        Ok(true)
    })?;
    progress.clear();
    if let Some((message, code)) = failure {
        if in_place && message.starts_with(hafen_api::models::CONTEXT_NOT_SHARED) {
            // The caller sends a tar instead.
            return Err(CliError::Failed(message));
        }
        eprintln!("ERROR: {message}");
        return Err(CliError::Exit(
            u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1),
        ));
    }
    let Some(id) = id else {
        return Err(CliError::Failed(
            "the daemon did not say which image it built".into(),
        ));
    };
    if quiet {
        out(&format!("{id}\n"));
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).map_err(|e| {
            CliError::Failed(format!("cannot write the image ID to {}: {e}", f.display()))
        })?;
    }
    if let Some(o) = output {
        export(&s, &id, &o)?;
    }
    Ok(())
}

/// Writes the files of image `id` where `--output` says, through a
/// container that is made, exported and removed.
fn export(s: &Session, id: &str, output: &Output) -> Result<(), CliError> {
    let request = serde_json::json!({
        "Image": id,
        "Cmd": ["/"],
        "Entrypoint": [],
        "HostConfig": {"NetworkMode": "none"},
    });
    let created = s.rt.block_on(s.client.request(
        Method::POST,
        "/containers/create",
        Some("application/json"),
        client::from_reader(std::io::Cursor::new(request.to_string().into_bytes())),
    ))?;
    let created: serde_json::Value =
        serde_json::from_slice(&s.rt.block_on(client::body_bytes(created))?).unwrap_or_default();
    let cid = created["Id"].as_str().unwrap_or_default().to_string();
    let result = (|| -> Result<(), CliError> {
        let resp = s.rt.block_on(s.client.request(
            Method::GET,
            &format!("/containers/{cid}/export"),
            None,
            client::empty(),
        ))?;
        let tar = s.rt.block_on(client::body_bytes(resp))?;
        let fail =
            |what: &str, e: std::io::Error| CliError::Failed(format!("cannot write {what}: {e}"));
        match output {
            Output::Tar(None) => {
                let mut o = std::io::stdout().lock();
                o.write_all(&tar).map_err(|e| fail("the output", e))?;
            }
            Output::Tar(Some(path)) => {
                std::fs::write(path, &tar).map_err(|e| fail(&path.display().to_string(), e))?;
            }
            Output::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
                let mut a = tar::Archive::new(&tar[..]);
                a.set_preserve_permissions(true);
                a.set_preserve_mtime(true);
                a.set_overwrite(true);
                a.unpack(dir)
                    .map_err(|e| fail(&dir.display().to_string(), e))?;
            }
        }
        Ok(())
    })();
    let _ = s.rt.block_on(s.client.request(
        Method::DELETE,
        &format!("/containers/{cid}?force=1"),
        None,
        client::empty(),
    ));
    result
}

/// `hafen builder`.
#[derive(Debug, clap::Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache.
    Prune(PruneArgs),
}

/// `hafen builder prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask.
    #[arg(short, long)]
    force: bool,
    /// Everything (the cache is removed whole either way).
    #[arg(short, long)]
    all: bool,
}

/// `hafen builder ...`.
pub fn builder(g: &Global, c: BuilderCommand) -> Result<(), CliError> {
    let BuilderCommand::Prune(a) = c;
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ",
        )
    {
        return Ok(());
    }
    let s = Session::open(g)?;
    let resp = s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/build/prune?all={}", u8::from(a.all)),
        None,
        client::empty(),
    ))?;
    let v: serde_json::Value =
        serde_json::from_slice(&s.rt.block_on(client::body_bytes(resp))?).unwrap_or_default();
    let freed = v["SpaceReclaimed"].as_i64().unwrap_or(0);
    out(&format!(
        "Total:\t{}\n",
        super::format::human_size(freed, 4)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs() {
        assert_eq!(
            parse_output("type=local,dest=out").expect("local"),
            Output::Dir("out".into())
        );
        assert_eq!(
            parse_output("type=tar,dest=x.tar").expect("tar"),
            Output::Tar(Some("x.tar".into()))
        );
        assert_eq!(parse_output("-").expect("stdout"), Output::Tar(None));
        assert_eq!(parse_output("dir").expect("dir"), Output::Dir("dir".into()));
        assert!(parse_output("type=registry").is_err());
        assert!(parse_output("type=local").is_err());
    }

    #[test]
    fn the_context_leaves_out_what_dockerignore_says() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("Dockerfile"), "FROM x\n").expect("df");
        std::fs::write(t.path().join(".dockerignore"), "*.log\nDockerfile\n").expect("ignore");
        std::fs::write(t.path().join("a.log"), "x").expect("log");
        std::fs::write(t.path().join("keep"), "x").expect("keep");
        let tar = context_tar(t.path(), "Dockerfile", None).expect("tar");
        let mut a = tar::Archive::new(&tar[..]);
        let names: Vec<String> = a
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "keep"]);
    }
}
