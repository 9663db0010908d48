//! Dockerfile instructions, typed: what the parser's nodes mean, with
//! their flags checked (BuildKit's `instructions` package does the same
//! job). Words are kept as written: variables are expanded when a stage
//! is evaluated, with the stage's environment.

use std::collections::BTreeMap;

use crate::syntax::{Dockerfile, Heredoc, Node};

/// A Dockerfile error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {message}")]
pub struct InstructionError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(node: &Node, message: impl Into<String>) -> InstructionError {
    InstructionError {
        line: node.start_line,
        message: message.into(),
    }
}

/// A command: exec form (`["a", "b"]`) or shell form (run by the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The words (exec form) or the one command line (shell form).
    pub args: Vec<String>,
    /// Shell form: run through the stage's SHELL.
    pub shell: bool,
}

/// A `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunMount {
    /// `cache`, `bind`, `tmpfs` or `secret`.
    pub kind: String,
    /// Where it is mounted.
    pub target: String,
    /// bind/cache: the source path (in `from`, or the context).
    pub source: Option<String>,
    /// bind/cache: a stage or image to take `source` from.
    pub from: Option<String>,
    /// Read-only (bind: the default).
    pub readonly: Option<bool>,
    /// cache/secret: the ID.
    pub id: Option<String>,
    /// cache: `shared`, `private` or `locked`.
    pub sharing: Option<String>,
    /// Ownership and mode of a cache or secret.
    pub uid: Option<u32>,
    /// See `uid`.
    pub gid: Option<u32>,
    /// See `uid`.
    pub mode: Option<u32>,
    /// secret: fail when missing.
    pub required: bool,
    /// tmpfs: the size in bytes.
    pub size: Option<u64>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// The sources (context paths, wildcards, URLs for ADD).
    pub sources: Vec<String>,
    /// The destination.
    pub dest: String,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=octal`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Heredoc sources (`COPY <<EOF /dest`).
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Nanoseconds (0: unset).
    pub interval: i64,
    /// See `interval`.
    pub timeout: i64,
    /// See `interval`.
    pub start_period: i64,
    /// See `interval`.
    pub start_interval: i64,
    /// 0: unset.
    pub retries: i64,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM image [AS name]`.
    From {
        /// The image, stage or `scratch` (unexpanded).
        image: String,
        /// `AS name`, lower case.
        name: Option<String>,
        /// `--platform`.
        platform: Option<String>,
    },
    /// `RUN`.
    Run {
        /// The command.
        command: Command,
        /// `--mount`s.
        mounts: Vec<RunMount>,
        /// `--network=default|none|host`.
        network: Option<String>,
        /// Heredocs the command reads.
        heredocs: Vec<Heredoc>,
    },
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `LABEL k=v ...`.
    Label(Vec<(String, String)>),
    /// `EXPOSE 80/tcp ...`.
    Expose(Vec<String>),
    /// `ENV k=v ...`.
    Env(Vec<(String, String)>),
    /// `ADD`.
    Add(CopyArgs),
    /// `COPY`.
    Copy(CopyArgs),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `ONBUILD` and the instruction it stores (as written).
    Onbuild(String),
    /// `STOPSIGNAL`.
    Stopsignal(String),
    /// `HEALTHCHECK` (`NONE` is a test of `["NONE"]`).
    Healthcheck(Health),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `MAINTAINER` (deprecated: an author).
    Maintainer(String),
}

/// An instruction and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based first line.
    pub line: usize,
    /// The instruction as written (for messages and history).
    pub original: String,
    /// The instruction.
    pub instruction: Instruction,
}

/// A build stage: a FROM and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Its position (0-based), also its name for `--from=0`.
    pub index: usize,
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// The base: image, earlier stage or `scratch` (unexpanded).
    pub base: String,
    /// `FROM --platform`.
    pub platform: Option<String>,
    /// The line of the FROM.
    pub line: usize,
    /// The FROM as written.
    pub original: String,
    /// The instructions after the FROM.
    pub steps: Vec<Step>,
}

/// A Dockerfile as stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// The `ARG`s before the first FROM.
    pub global_args: Vec<Step>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The escape character (for word expansion).
    pub escape: char,
}

/// Splits a flag `--name=value` (or `--name`) into its name and value.
fn split_flag(flag: &str) -> (&str, Option<&str>) {
    let f = flag.trim_start_matches('-');
    match f.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (f, None),
    }
}

/// The flags of `node`, checked against `allowed` (names taking a value)
/// and `switches` (boolean flags).
fn flags(
    node: &Node,
    allowed: &[&str],
    switches: &[&str],
) -> Result<Vec<(String, String)>, InstructionError> {
    let mut out = Vec::new();
    for f in &node.flags {
        if !f.starts_with("--") {
            return Err(err(node, format!("invalid flag {f:?}")));
        }
        let (name, value) = split_flag(f);
        if switches.contains(&name) {
            let v = value.unwrap_or("true");
            if !matches!(v, "true" | "false" | "") {
                return Err(err(
                    node,
                    format!("expecting boolean value for flag {name}, not: {v}"),
                ));
            }
            out.push((name.to_string(), v.to_string()));
        } else if allowed.contains(&name) {
            let Some(v) = value else {
                return Err(err(node, format!("missing a value on flag: {name}")));
            };
            out.push((name.to_string(), v.to_string()));
        } else {
            return Err(err(
                node,
                format!(
                    "unknown flag: --{name} (valid flags for {}: {})",
                    node.keyword.to_uppercase(),
                    allowed
                        .iter()
                        .chain(switches)
                        .map(|f| format!("--{f}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(out)
}

fn last<'a>(flags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn command(node: &Node) -> Result<Command, InstructionError> {
    if node.json {
        return Ok(Command {
            args: node.values.clone(),
            shell: false,
        });
    }
    let line = node.values.join(" ");
    Ok(Command {
        args: vec![line],
        shell: true,
    })
}

fn pairs(node: &Node) -> Result<Vec<(String, String)>, InstructionError> {
    if node.values.is_empty() {
        return Err(err(
            node,
            format!(
                "{} requires at least one argument",
                node.keyword.to_uppercase()
            ),
        ));
    }
    if node.values.len() % 3 != 0 {
        return Err(err(node, "Syntax error - can't find = in the arguments"));
    }
    // Key, value, separator.
    Ok(node
        .values
        .chunks(3)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect())
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `100ms`) in nanoseconds.
pub fn go_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    Some(total as i64)
}

fn health(node: &Node) -> Result<Health, InstructionError> {
    let fl = flags(
        node,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        &[],
    )?;
    let Some(kind) = node.values.first() else {
        return Err(err(node, "HEALTHCHECK requires an argument"));
    };
    let mut h = Health::default();
    match kind.to_uppercase().as_str() {
        "NONE" => {
            if node.values.len() > 1 || !fl.is_empty() {
                return Err(err(node, "HEALTHCHECK NONE takes no arguments"));
            }
            h.test = vec!["NONE".into()];
            return Ok(h);
        }
        "CMD" => {}
        other => {
            return Err(err(
                node,
                format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"),
            ));
        }
    }
    let rest = &node.values[1..];
    if rest.is_empty() {
        return Err(err(node, "Missing command after HEALTHCHECK CMD"));
    }
    h.test = if node.json {
        std::iter::once("CMD".to_string())
            .chain(rest.iter().cloned())
            .collect()
    } else {
        vec!["CMD-SHELL".into(), rest.join(" ")]
    };
    for (name, value) in &fl {
        let duration = |v: &str| -> Result<i64, InstructionError> {
            let d = go_duration(v)
                .ok_or_else(|| err(node, format!("invalid duration for --{name}: {v:?}")))?;
            if d != 0 && d < 1_000_000 {
                return Err(err(
                    node,
                    format!("Interval {name:?} cannot be less than 1ms"),
                ));
            }
            Ok(d)
        };
        match name.as_str() {
            "interval" => h.interval = duration(value)?,
            "timeout" => h.timeout = duration(value)?,
            "start-period" => h.start_period = duration(value)?,
            "start-interval" => h.start_interval = duration(value)?,
            "retries" => {
                h.retries = value
                    .parse()
                    .map_err(|_| err(node, format!("invalid --retries value {value:?}")))?;
                if h.retries < 0 {
                    return Err(err(node, "--retries cannot be negative"));
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

/// Parses a `--mount` value (`type=cache,target=/x,...`).
pub fn parse_mount(text: &str) -> Result<RunMount, String> {
    let mut m = RunMount {
        kind: "bind".into(),
        ..RunMount::default()
    };
    let mut target = None;
    for field in text.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        let value_or = |v: Option<String>| -> Result<String, String> {
            v.ok_or_else(|| format!("--mount: {key} needs a value"))
        };
        let boolean = |v: &Option<String>| -> Result<bool, String> {
            match v.as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => Err(format!("--mount: invalid value for {key}: {other}")),
            }
        };
        let number = |v: Option<String>, radix: u32| -> Result<u32, String> {
            let v = v.ok_or_else(|| format!("--mount: {key} needs a value"))?;
            u32::from_str_radix(&v, radix).map_err(|_| format!("--mount: invalid {key}: {v}"))
        };
        match key.as_str() {
            "type" => m.kind = value_or(value)?.to_lowercase(),
            "target" | "dst" | "destination" => target = Some(value_or(value)?),
            "source" | "src" => m.source = Some(value_or(value)?),
            "from" => m.from = Some(value_or(value)?),
            "readonly" | "ro" => m.readonly = Some(boolean(&value)?),
            "readwrite" | "rw" => m.readonly = Some(!boolean(&value)?),
            "id" => m.id = Some(value_or(value)?),
            "sharing" => {
                let v = value_or(value)?;
                if !matches!(v.as_str(), "shared" | "private" | "locked") {
                    return Err(format!("--mount: unsupported sharing value {v:?}"));
                }
                m.sharing = Some(v);
            }
            "uid" => m.uid = Some(number(value, 10)?),
            "gid" => m.gid = Some(number(value, 10)?),
            "mode" => m.mode = Some(number(value, 8)?),
            "required" => m.required = boolean(&value)?,
            "size" => {
                let v = value_or(value)?;
                m.size = Some(parse_size(&v).ok_or_else(|| format!("--mount: invalid size {v}"))?);
            }
            other => return Err(format!("--mount: unexpected key {other:?}")),
        }
    }
    if !matches!(m.kind.as_str(), "bind" | "cache" | "tmpfs" | "secret") {
        return Err(format!("--mount: unsupported mount type {:?}", m.kind));
    }
    match target {
        Some(t) => m.target = t,
        None if m.kind == "secret" => {
            let id = m.id.clone().or_else(|| {
                m.source
                    .as_deref()
                    .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
            });
            let Some(id) = id else {
                return Err("--mount type=secret needs an id or a target".into());
            };
            m.target = format!("/run/secrets/{id}");
            m.id = Some(id);
        }
        None => return Err("--mount: a target is required".into()),
    }
    Ok(m)
}

/// `64m`, `1g`, `1024` in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn copy_args(node: &Node, add: bool) -> Result<CopyArgs, InstructionError> {
    let (values, switches): (&[&str], &[&str]) = if add {
        (
            &["chown", "chmod", "checksum", "exclude"],
            &["link", "keep-git-dir"],
        )
    } else {
        (&["from", "chown", "chmod", "exclude"], &["link", "parents"])
    };
    let fl = flags(node, values, switches)?;
    let is_true = |name: &str| last(&fl, name).is_some_and(|v| v != "false");
    let name = node.keyword.to_uppercase();
    if node.values.len() + node.heredocs.len() < 2 && node.values.len() < 2 {
        return Err(err(
            node,
            format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
        ));
    }
    let mut sources: Vec<String> = node.values.clone();
    let Some(dest) = sources.pop() else {
        return Err(err(node, format!("{name} requires a destination")));
    };
    // Heredoc sources appear in the values as `<<EOF`; keep them apart.
    let heredoc_names: Vec<String> = node.heredocs.iter().map(|h| h.name.clone()).collect();
    sources.retain(|s| {
        let name = s.trim_start_matches("<<").trim_start_matches('-');
        let name = name.trim_matches(|c| c == '"' || c == '\'');
        !(s.starts_with("<<") && heredoc_names.iter().any(|h| h == name))
    });
    if sources.is_empty() && node.heredocs.is_empty() {
        return Err(err(node, format!("{name} requires at least one source")));
    }
    Ok(CopyArgs {
        sources,
        dest,
        from: last(&fl, "from").map(str::to_string),
        chown: last(&fl, "chown").map(str::to_string),
        chmod: last(&fl, "chmod").map(str::to_string),
        link: is_true("link"),
        parents: is_true("parents"),
        exclude: fl
            .iter()
            .filter(|(n, _)| n == "exclude")
            .map(|(_, v)| v.clone())
            .collect(),
        heredocs: node.heredocs.clone(),
    })
}

fn one_value(node: &Node) -> Result<String, InstructionError> {
    match node.values.as_slice() {
        [] => Err(err(
            node,
            format!(
                "{} requires exactly one argument",
                node.keyword.to_uppercase()
            ),
        )),
        values => Ok(values.join(" ")),
    }
}

/// The typed instruction of a node.
pub fn instruction(node: &Node) -> Result<Instruction, InstructionError> {
    let no_flags = |node: &Node| flags(node, &[], &[]).map(|_| ());
    Ok(match node.keyword.as_str() {
        "from" => {
            let fl = flags(node, &["platform"], &[])?;
            let (image, name) = match node.values.as_slice() {
                [image] => (image.clone(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (image.clone(), Some(name.to_lowercase()))
                }
                _ => {
                    return Err(err(
                        node,
                        "FROM requires either one or three arguments (FROM image [AS name])",
                    ));
                }
            };
            if let Some(n) = &name
                && !valid_stage_name(n)
            {
                return Err(err(
                    node,
                    format!(
                        "invalid name for build stage: {n:?}, name can't start with a number or contain symbols"
                    ),
                ));
            }
            Instruction::From {
                image,
                name,
                platform: last(&fl, "platform").map(str::to_string),
            }
        }
        "run" => {
            let fl = flags(node, &["mount", "network", "security"], &[])?;
            let mut mounts = Vec::new();
            for (name, value) in &fl {
                if name == "mount" {
                    mounts.push(parse_mount(value).map_err(|m| err(node, m))?);
                }
            }
            let network = last(&fl, "network").map(str::to_string);
            if let Some(n) = &network
                && !matches!(n.as_str(), "default" | "none" | "host")
            {
                return Err(err(
                    node,
                    format!("unsupported network mode {n:?} (default, none or host)"),
                ));
            }
            if let Some(s) = last(&fl, "security")
                && !matches!(s, "sandbox" | "insecure")
            {
                return Err(err(node, format!("unsupported security mode {s:?}")));
            }
            if node.values.is_empty() && node.heredocs.is_empty() {
                return Err(err(node, "RUN requires at least one argument"));
            }
            Instruction::Run {
                command: command(node)?,
                mounts,
                network,
                heredocs: node.heredocs.clone(),
            }
        }
        "cmd" | "entrypoint" => {
            no_flags(node)?;
            let c = command(node)?;
            if node.keyword == "cmd" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "label" => {
            no_flags(node)?;
            Instruction::Label(pairs(node)?)
        }
        "env" => {
            no_flags(node)?;
            Instruction::Env(pairs(node)?)
        }
        "maintainer" => {
            no_flags(node)?;
            Instruction::Maintainer(one_value(node)?)
        }
        "expose" => {
            no_flags(node)?;
            if node.values.is_empty() {
                return Err(err(node, "EXPOSE requires at least one argument"));
            }
            Instruction::Expose(node.values.clone())
        }
        "add" => Instruction::Add(copy_args(node, true)?),
        "copy" => Instruction::Copy(copy_args(node, false)?),
        "volume" => {
            no_flags(node)?;
            let v: Vec<String> = node
                .values
                .iter()
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .collect();
            if v.is_empty() {
                return Err(err(node, "VOLUME requires at least one argument"));
            }
            Instruction::Volume(v)
        }
        "user" => {
            no_flags(node)?;
            Instruction::User(one_value(node)?)
        }
        "workdir" => {
            no_flags(node)?;
            Instruction::Workdir(one_value(node)?)
        }
        "arg" => {
            no_flags(node)?;
            if node.values.is_empty() {
                return Err(err(node, "ARG requires at least one argument"));
            }
            let mut args = Vec::new();
            for v in &node.values {
                let (name, default) = match v.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(unquote(d))),
                    None => (v.clone(), None),
                };
                if name.is_empty() {
                    return Err(err(node, format!("ARG names can not be blank: {v:?}")));
                }
                args.push((name, default));
            }
            Instruction::Arg(args)
        }
        "onbuild" => {
            let Some(sub) = &node.sub else {
                return Err(err(node, "ONBUILD requires at least one argument"));
            };
            match sub.keyword.as_str() {
                "onbuild" => {
                    return Err(err(
                        node,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ));
                }
                "from" | "maintainer" => {
                    return Err(err(
                        node,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            sub.keyword.to_uppercase()
                        ),
                    ));
                }
                _ => {}
            }
            instruction(sub)?;
            let text = node.original.trim_start();
            let rest = text
                .get(7..)
                .filter(|_| text.len() > 7 && text[..7].eq_ignore_ascii_case("onbuild"))
                .unwrap_or(text)
                .trim()
                .to_string();
            Instruction::Onbuild(rest)
        }
        "stopsignal" => {
            no_flags(node)?;
            Instruction::Stopsignal(one_value(node)?)
        }
        "healthcheck" => Instruction::Healthcheck(health(node)?),
        "shell" => {
            no_flags(node)?;
            if !node.json {
                return Err(err(node, "SHELL requires the arguments to be in JSON form"));
            }
            if node.values.is_empty() {
                return Err(err(node, "SHELL requires at least one argument"));
            }
            Instruction::Shell(node.values.clone())
        }
        other => {
            return Err(err(
                node,
                format!("unknown instruction: {}", other.to_uppercase()),
            ));
        }
    })
}

/// Removes one level of quotes around an ARG default, as BuildKit does.
fn unquote(s: &str) -> String {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Stage names: a letter first, then letters, digits, `-`, `_` and `.`.
pub fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The stages of a parsed Dockerfile.
pub fn stages(file: &Dockerfile) -> Result<Stages, InstructionError> {
    let mut out = Stages {
        global_args: Vec::new(),
        stages: Vec::new(),
        escape: file.directives.escape,
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for node in &file.nodes {
        let instruction = instruction(node)?;
        let step = Step {
            line: node.start_line,
            original: node.original.clone(),
            instruction,
        };
        match (&step.instruction, out.stages.last_mut()) {
            (
                Instruction::From {
                    image,
                    name,
                    platform,
                },
                _,
            ) => {
                let index = out.stages.len();
                if let Some(n) = name {
                    if let Some(first) = names.insert(n.clone(), index) {
                        let _ = first;
                        return Err(err(node, format!("duplicate stage name {n:?}")));
                    }
                }
                out.stages.push(Stage {
                    index,
                    name: name.clone(),
                    base: image.clone(),
                    platform: platform.clone(),
                    line: step.line,
                    original: step.original.clone(),
                    steps: Vec::new(),
                });
            }
            (Instruction::Arg(_), None) => out.global_args.push(step),
            (_, None) => {
                return Err(err(
                    node,
                    "no build stage in current context: the Dockerfile must begin with a FROM (only ARG may come before it)",
                ));
            }
            (_, Some(stage)) => stage.steps.push(step),
        }
    }
    if out.stages.is_empty() {
        return Err(InstructionError {
            line: file.nodes.last().map_or(1, |n| n.start_line),
            message: "the Dockerfile has no FROM: a build needs at least one stage".into(),
        });
    }
    Ok(out)
}

impl Stages {
    /// The stage `name_or_index` names (`builder`, `0`), if it is one
    /// before `before`.
    pub fn find(&self, name_or_index: &str, before: usize) -> Option<usize> {
        let lower = name_or_index.to_lowercase();
        if let Some(s) = self.stages[..before.min(self.stages.len())]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(s.index);
        }
        name_or_index
            .parse::<usize>()
            .ok()
            .filter(|i| *i < before.min(self.stages.len()))
    }

    /// The stage `--target` names (the last one without a target).
    pub fn target(&self, target: Option<&str>) -> Result<usize, String> {
        match target.filter(|t| !t.is_empty()) {
            None => Ok(self.stages.len() - 1),
            Some(t) => {
                let lower = t.to_lowercase();
                self.stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(lower.as_str()))
                    .map(|s| s.index)
                    .ok_or_else(|| format!("target stage {t:?} could not be found"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn stages_of(text: &str) -> Result<Stages, InstructionError> {
        stages(&parse(text).map_err(|e| InstructionError {
            line: e.line,
            message: e.message,
        })?)
    }

    #[test]
    fn typed_instructions() {
        let s = stages_of(
            "ARG V=1\nFROM busybox:${V} AS Base\nRUN --mount=type=cache,target=/c echo hi\nCMD [\"sh\"]\nENV A=1 B=\"x y\"\nCOPY --from=base --chown=1:2 a b /d/\nHEALTHCHECK --interval=5s --retries=3 CMD true\nHEALTHCHECK NONE\n",
        )
        .expect("stages");
        assert_eq!(s.global_args.len(), 1);
        assert_eq!(s.stages.len(), 1);
        let st = &s.stages[0];
        assert_eq!(st.name.as_deref(), Some("base"));
        assert_eq!(st.base, "busybox:${V}");
        match &st.steps[0].instruction {
            Instruction::Run {
                command, mounts, ..
            } => {
                assert!(command.shell);
                assert_eq!(command.args, vec!["echo hi"]);
                assert_eq!(mounts[0].kind, "cache");
                assert_eq!(mounts[0].target, "/c");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            st.steps[1].instruction,
            Instruction::Cmd(Command {
                args: vec!["sh".into()],
                shell: false
            })
        );
        match &st.steps[3].instruction {
            Instruction::Copy(c) => {
                assert_eq!(c.sources, vec!["a", "b"]);
                assert_eq!(c.dest, "/d/");
                assert_eq!(c.from.as_deref(), Some("base"));
                assert_eq!(c.chown.as_deref(), Some("1:2"));
            }
            other => panic!("{other:?}"),
        }
        match &st.steps[4].instruction {
            Instruction::Healthcheck(h) => {
                assert_eq!(h.test, vec!["CMD-SHELL", "true"]);
                assert_eq!(h.interval, 5_000_000_000);
                assert_eq!(h.retries, 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = stages_of("FROM busybox\n\nFOO bar\n").expect_err("unknown");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown instruction: FOO"), "{e}");
        let e = stages_of("# c\nRUN true\n").expect_err("no from");
        assert_eq!(e.line, 2);
        let e = stages_of("FROM a\nCOPY onlyone\n").expect_err("copy");
        assert_eq!(e.line, 2);
        let e = stages_of("FROM a\nRUN --bogus=1 true\n").expect_err("flag");
        assert!(e.message.contains("unknown flag: --bogus"), "{e}");
        let e = stages_of("FROM a AS x\nFROM b AS X\n").expect_err("dup");
        assert_eq!(e.line, 2);
        let e = stages_of("ARG A\n").expect_err("nothing");
        assert!(e.message.contains("no FROM"), "{e}");
        let e = stages_of("FROM a\nSHELL sh -c\n").expect_err("shell");
        assert!(e.message.contains("JSON"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("100ms"), Some(100_000_000));
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration("5"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=secret,id=tok").expect("secret");
        assert_eq!(m.target, "/run/secrets/tok");
        let m = parse_mount("type=bind,source=x,target=/y,rw").expect("bind");
        assert_eq!(m.readonly, Some(false));
        assert!(parse_mount("type=nfs,target=/x").is_err());
        assert!(parse_mount("type=cache").is_err());
        let m = parse_mount("type=tmpfs,target=/t,size=64m").expect("tmpfs");
        assert_eq!(m.size, Some(64 << 20));
    }
}
