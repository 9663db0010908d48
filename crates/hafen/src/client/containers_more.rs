//! `hafen top`, `stats`, `cp`, `commit`, `diff`, `export`, `rename`,
//! `port`, `update` and `container prune`, as the docker CLI 28 does them:
//! the same flags, output and exit codes.
//!
//! `cp` follows the CLI's copy rules (moby's `go-archive` `copy.go`): a
//! directory is copied as itself, or its contents with a trailing `/.`;
//! the destination's existence and kind decide whether entries are renamed
//! and where the archive is unpacked. Unpacking on this side refuses
//! entries that would land outside the destination, also through symlinks
//! the archive made (the container's files are untrusted).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use hafen_api::client::{Client, ClientError, encode, next_chunk};
use hafen_api::filters::{self, Filters};
use hafen_api::models::{ChangeItem, ContainerPruneReport, ContainerSummary, TopResponse};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use serde_json::Value;

use super::format::{self, ListFormat};
use super::stats_format::{self, StatsRow};
use super::{CliError, Global, Session, out};

/// A container name or ID for a path, as the docker client checks it.
fn container_ref(name: &str) -> Result<String, CliError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CliError::Failed(
            "invalid container name or ID: value is empty".into(),
        ));
    }
    Ok(encode(name))
}

/// Go's `%q` of a string (printable text).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The text Go gives an OS error (`no such file or directory`).
fn errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Go's `*os.PathError` text: `lstat /x: no such file or directory`.
fn go_err(op: &str, path: &str, e: &io::Error) -> String {
    format!("{op} {path}: {}", errno_text(e))
}

// ---- top ------------------------------------------------------------------

/// `hafen top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container.
    container: String,
    /// Options for `ps` (everything after the container).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    ps_args: Vec<String>,
}

/// The processes as the docker CLI prints them (a tabwriter with cells at
/// least 20 wide, 3 spaces of padding).
fn top_table(t: &TopResponse) -> String {
    let mut lines = vec![t.titles.join("\t")];
    lines.extend(t.processes.iter().map(|p| p.join("\t")));
    format::tabwrite(&lines, 20, 3)
}

/// `hafen top`.
pub fn top(g: &Global, a: TopArgs) -> Result<(), CliError> {
    let id = container_ref(&a.container)?;
    let mut path = format!("/containers/{id}/top");
    if !a.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", encode(&a.ps_args.join(" "))));
    }
    let s = Session::open(g)?;
    let t: TopResponse = s.rt.block_on(s.client.get_json(&path))?;
    out(&top_table(&t));
    Ok(())
}

// ---- diff -----------------------------------------------------------------

/// `hafen diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container.
    container: String,
}

/// `C /etc`, `A /etc/new`, `D /x` lines.
fn diff_lines(changes: &[ChangeItem]) -> String {
    let mut text = String::new();
    for c in changes {
        let kind = match c.kind {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "",
        };
        text.push_str(&format!("{kind} {}\n", c.path));
    }
    text
}

/// `hafen diff`.
pub fn diff(g: &Global, a: DiffArgs) -> Result<(), CliError> {
    if a.container.is_empty() {
        return Err(CliError::Failed("Container name cannot be empty".into()));
    }
    let id = container_ref(&a.container)?;
    let s = Session::open(g)?;
    let changes: Option<Vec<ChangeItem>> =
        s.rt.block_on(s.client.get_json(&format!("/containers/{id}/changes")))?;
    out(&diff_lines(&changes.unwrap_or_default()));
    Ok(())
}

// ---- export ---------------------------------------------------------------

/// `hafen export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<String>,
    /// The container.
    container: String,
}

/// A file written under a temporary name next to its destination and
/// renamed into place once complete (moby's `atomicwriter`).
struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: std::fs::File,
    written: bool,
}

impl AtomicFile {
    /// Checks the destination as `atomicwriter.New` does and makes the
    /// temporary file.
    fn new(name: &str) -> Result<AtomicFile, String> {
        if name.is_empty() {
            return Err("file name is empty".into());
        }
        let dir = go_dir(name);
        if dir != "." && dir != ".." {
            match std::fs::metadata(&dir) {
                Err(e) => return Err(format!("invalid output path: {}", go_err("stat", &dir, &e))),
                Ok(m) if !m.is_dir() => {
                    return Err(format!("invalid output path: stat {dir}: not a directory"));
                }
                Ok(_) => {}
            }
        }
        match std::fs::symlink_metadata(name) {
            Ok(m) => {
                use std::os::unix::fs::FileTypeExt;
                let t = m.file_type();
                let mode = m.mode();
                let refuse = if t.is_dir() {
                    Some("cannot write to a directory")
                } else if t.is_symlink() {
                    Some("cannot write to a symbolic link directly")
                } else if t.is_fifo() {
                    Some("cannot write to a named pipe (FIFO)")
                } else if t.is_socket() {
                    Some("cannot write to a socket")
                } else if t.is_char_device() {
                    Some("cannot write to a character device file")
                } else if t.is_block_device() {
                    Some("cannot write to a block device file")
                } else if mode & 0o4000 != 0 {
                    Some("cannot write to a setuid file")
                } else if mode & 0o2000 != 0 {
                    Some("cannot write to a setgid file")
                } else if mode & 0o1000 != 0 {
                    Some("cannot write to a sticky bit file")
                } else {
                    None
                };
                if let Some(r) = refuse {
                    return Err(r.into());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "failed to stat output path: {}",
                    go_err("lstat", name, &e)
                ));
            }
        }
        let dest = PathBuf::from(resolve_local_path(name).map_err(|e| e.to_string())?);
        let parent = dest
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let base = go_base(name);
        use std::os::unix::fs::OpenOptionsExt;
        for n in 0..1000u32 {
            let tmp = parent.join(format!(".tmp-{base}{}{n}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(AtomicFile {
                        tmp,
                        dest,
                        file,
                        written: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(go_err("open", &tmp.display().to_string(), &e)),
            }
        }
        Err(format!("cannot make a file in {}", parent.display()))
    }

    /// Renames the file into place if anything was written; removes the
    /// temporary file either way.
    fn finish(self, ok: bool) -> Result<(), String> {
        let result = if ok && self.written {
            self.file
                .sync_all()
                .and_then(|()| std::fs::rename(&self.tmp, &self.dest))
                .map_err(|e| go_err("rename", &self.dest.display().to_string(), &e))
        } else {
            Ok(())
        };
        let _ = std::fs::remove_file(&self.tmp);
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written = true;
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `hafen export`.
pub fn export(g: &Global, a: ExportArgs) -> Result<(), CliError> {
    let mut file = match &a.output {
        None if io::stdout().is_terminal() => {
            return Err(CliError::Failed(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
            ));
        }
        None => None,
        Some(name) => Some(
            AtomicFile::new(name)
                .map_err(|e| CliError::Failed(format!("failed to export container: {e}")))?,
        ),
    };
    let id = container_ref(&a.container)?;
    let s = Session::open(g)?;
    let copied =
        s.rt.block_on(s.client.request(
            Method::GET,
            &format!("/containers/{id}/export"),
            None,
            hafen_api::client::empty(),
        ))
        .map_err(CliError::from)
        .and_then(|resp| {
            let mut body = resp.into_body();
            let mut stdout = io::stdout().lock();
            while let Some(chunk) = s.rt.block_on(next_chunk(&mut body))? {
                let w: &mut dyn Write = match file.as_mut() {
                    Some(f) => f,
                    None => &mut stdout,
                };
                if let Err(e) = w.write_all(&chunk) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Err(CliError::Exit(1));
                    }
                    return Err(CliError::Failed(errno_text(&e)));
                }
            }
            let _ = stdout.flush();
            Ok(())
        });
    if let Some(f) = file {
        f.finish(copied.is_ok()).map_err(CliError::Failed)?;
    }
    copied
}

// ---- rename ---------------------------------------------------------------

/// `hafen rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container.
    container: String,
    /// Its new name.
    new_name: String,
}

/// `hafen rename`.
pub fn rename(g: &Global, a: RenameArgs) -> Result<(), CliError> {
    let old = a.container.trim();
    let new = a.new_name.trim();
    if old.is_empty() || new.is_empty() {
        return Err(CliError::Failed(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    let s = Session::open(g)?;
    let r = s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/containers/{}/rename?name={}", encode(old), encode(new)),
        None,
        hafen_api::client::empty(),
    ));
    match r {
        Ok(_) => Ok(()),
        Err(e @ ClientError::Connect { .. }) => Err(e.into()),
        Err(e) => {
            eprintln!("{e}");
            Err(CliError::Failed(format!(
                "Error: failed to rename container named {old}"
            )))
        }
    }
}

// ---- port -----------------------------------------------------------------

/// `hafen port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container.
    container: String,
    /// `PRIVATE_PORT[/PROTO]`.
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `sortorder.NaturalLess`: runs of digits compare by value.
fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let (ni, nj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (&a[ni..i], &b[nj..j]);
            if da.len() != db.len() {
                return da.len() < db.len();
            }
            if da != db {
                return da < db;
            }
            // Equal values: fewer leading zeros first.
            if i - si != j - sj {
                return i - si < j - sj;
            }
            continue;
        }
        if ca != cb {
            return ca < cb;
        }
        i += 1;
        j += 1;
    }
    a.len() - i < b.len() - j
}

/// The lines `docker port` prints for a container's `NetworkSettings`.
fn port_lines(
    network_settings: &Value,
    port: Option<&str>,
    container: &str,
) -> Result<Vec<String>, String> {
    let ports = network_settings.get("Ports").and_then(Value::as_object);
    let frontend = |f: &Value| {
        join_host_port(
            f.get("HostIp").and_then(Value::as_str).unwrap_or(""),
            f.get("HostPort").and_then(Value::as_str).unwrap_or(""),
        )
    };
    let mut lines = Vec::new();
    match port {
        Some(arg) => {
            let (number, proto) = arg.split_once('/').unwrap_or((arg, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if number.parse::<u16>().is_err() {
                let why = if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                return Err(format!(
                    "Error: invalid port ({number}): strconv.ParseUint: parsing {}: {why}",
                    go_quote(number)
                ));
            }
            let frontends = ports
                .and_then(|p| p.get(&format!("{number}/{proto}")))
                .and_then(Value::as_array)
                .filter(|f| !f.is_empty())
                .ok_or_else(|| {
                    format!("Error: No public port '{arg}' published for {container}")
                })?;
            lines.extend(frontends.iter().map(frontend));
        }
        None => {
            for (from, frontends) in ports.into_iter().flatten() {
                for f in frontends.as_array().into_iter().flatten() {
                    lines.push(format!("{from} -> {}", frontend(f)));
                }
            }
        }
    }
    lines.sort_by(|x, y| {
        if natural_less(x, y) {
            std::cmp::Ordering::Less
        } else if natural_less(y, x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    Ok(lines)
}

/// `hafen port`.
pub fn port(g: &Global, a: PortArgs) -> Result<(), CliError> {
    let id = container_ref(&a.container)?;
    let s = Session::open(g)?;
    let c: Value =
        s.rt.block_on(s.client.get_json(&format!("/containers/{id}/json")))?;
    let lines = port_lines(
        c.get("NetworkSettings").unwrap_or(&Value::Null),
        a.port.as_deref(),
        &a.container,
    )
    .map_err(CliError::Failed)?;
    if !lines.is_empty() {
        out(&format!("{}\n", lines.join("\n")));
    }
    Ok(())
}

// ---- commit ---------------------------------------------------------------

/// Go's `strconv.ParseBool`, for `--pause=false`.
fn go_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(v)
        )),
    }
}

/// `hafen commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value = "true", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pause: bool,
    /// The container.
    container: String,
    /// `REPOSITORY[:TAG]`.
    reference: Option<String>,
}

/// The `POST /commit` query of `docker commit`.
fn commit_query(a: &CommitArgs) -> Result<String, CliError> {
    let container = a.container.trim();
    if container.is_empty() {
        return Err(CliError::Failed(
            "invalid container name or ID: value is empty".into(),
        ));
    }
    let (mut repo, mut tag) = (String::new(), String::new());
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        let r = hafen_oci::Reference::parse_normalized(r)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        if r.digest().is_some() {
            return Err(CliError::Failed(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        repo = r.name();
        tag = r
            .tag()
            .unwrap_or(hafen_oci::reference::DEFAULT_TAG)
            .to_string();
    }
    let mut q = vec![
        format!("container={}", encode(container)),
        format!("repo={}", encode(&repo)),
        format!("tag={}", encode(&tag)),
        format!("comment={}", encode(a.message.as_deref().unwrap_or(""))),
        format!("author={}", encode(a.author.as_deref().unwrap_or(""))),
    ];
    q.extend(a.change.iter().map(|c| format!("changes={}", encode(c))));
    if !a.pause {
        q.push("pause=0".into());
    }
    Ok(q.join("&"))
}

/// `hafen commit`.
pub fn commit(g: &Global, a: CommitArgs) -> Result<(), CliError> {
    let q = commit_query(&a)?;
    let s = Session::open(g)?;
    #[derive(serde::Deserialize)]
    struct Created {
        #[serde(rename = "Id")]
        id: String,
    }
    let c: Created = s.rt.block_on(s.client.call_json(
        Method::POST,
        &format!("/commit?{q}"),
        None,
    ))?;
    out(&format!("{}\n", c.id));
    Ok(())
}

// ---- update ---------------------------------------------------------------

/// A `--memory`-like size (go-units' `RAMInBytes`).
fn mem_bytes(v: &str) -> Result<i64, String> {
    super::create_flags::ram_in_bytes(v)
}

/// `--memory-swap`: a size, or -1 for unlimited.
fn mem_swap_bytes(v: &str) -> Result<i64, String> {
    if v == "-1" {
        return Ok(-1);
    }
    super::create_flags::ram_in_bytes(v)
}

/// `--cpus`: nano-CPUs.
fn nano_cpus(v: &str) -> Result<i64, String> {
    super::create_flags::parse_cpus(v)
}

/// `hafen update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long, allow_hyphen_values = true)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    cpu_shares: Option<i64>,
    /// Number of CPUs.
    #[arg(long, value_parser = nano_cpus, allow_hyphen_values = true)]
    cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated: accepted, sent as docker sends it,
    /// and ignored by the kernel).
    #[arg(long, value_parser = mem_bytes, hide = true)]
    kernel_memory: Option<i64>,
    /// Memory limit.
    #[arg(short, long, value_parser = mem_bytes)]
    memory: Option<i64>,
    /// Memory soft limit.
    #[arg(long, value_parser = mem_bytes)]
    memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, value_parser = mem_swap_bytes, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Docker's `opts.ParseRestartPolicy` (the daemon validates the rest).
fn restart_policy(policy: &str) -> Result<(String, i64), String> {
    if policy.is_empty() {
        return Ok((String::new(), 0));
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let count = if count.is_empty() {
        0
    } else {
        count.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    Ok((name.to_string(), count))
}

impl UpdateArgs {
    /// Whether any flag was given (docker counts flags, whatever their
    /// values).
    fn any_flag(&self) -> bool {
        self.blkio_weight.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_rt_period.is_some()
            || self.cpu_rt_runtime.is_some()
            || self.cpu_shares.is_some()
            || self.cpus.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
            || self.kernel_memory.is_some()
            || self.memory.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swap.is_some()
            || self.pids_limit.is_some()
            || self.restart.is_some()
    }

    /// The `POST /containers/{id}/update` body: docker's `UpdateConfig`
    /// (the resources, zero where not given, and the restart policy).
    fn body(&self) -> Result<Value, CliError> {
        if !self.any_flag() {
            return Err(CliError::Failed(
                "you must provide one or more flags when using this command".into(),
            ));
        }
        let (name, count) = match self.restart.as_deref() {
            Some(p) => restart_policy(p).map_err(CliError::Failed)?,
            None => (String::new(), 0),
        };
        let mut body = serde_json::json!({
            "BlkioWeight": self.blkio_weight.unwrap_or(0),
            "CpusetCpus": self.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": self.cpuset_mems.clone().unwrap_or_default(),
            "CpuShares": self.cpu_shares.unwrap_or(0),
            "Memory": self.memory.unwrap_or(0),
            "MemoryReservation": self.memory_reservation.unwrap_or(0),
            "MemorySwap": self.memory_swap.unwrap_or(0),
            "KernelMemory": self.kernel_memory.unwrap_or(0),
            "CpuPeriod": self.cpu_period.unwrap_or(0),
            "CpuQuota": self.cpu_quota.unwrap_or(0),
            "CpuRealtimePeriod": self.cpu_rt_period.unwrap_or(0),
            "CpuRealtimeRuntime": self.cpu_rt_runtime.unwrap_or(0),
            "NanoCpus": self.cpus.unwrap_or(0),
            "RestartPolicy": {"Name": name, "MaximumRetryCount": count},
        });
        if let Some(l) = self.pids_limit.filter(|l| *l != 0) {
            body["PidsLimit"] = l.into();
        }
        Ok(body)
    }
}

/// `hafen update`.
pub fn update(g: &Global, a: UpdateArgs) -> Result<(), CliError> {
    let body = serde_json::to_vec(&a.body()?).map_err(|e| CliError::Failed(e.to_string()))?;
    let s = Session::open(g)?;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in &a.containers {
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Answer {
            warnings: Option<Vec<String>>,
        }
        let r = container_ref(name).and_then(|id| {
            s.rt.block_on(s.client.call_json::<Answer>(
                Method::POST,
                &format!("/containers/{id}/update"),
                Some(body.clone()),
            ))
            .map_err(CliError::from)
        });
        match r {
            Ok(answer) => {
                out(&format!("{name}\n"));
                warnings.extend(answer.warnings.unwrap_or_default());
            }
            Err(e @ CliError::Api(ClientError::Connect { .. })) => return Err(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !warnings.is_empty() {
        out(&format!("{}\n", warnings.join("\n")));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

// ---- container prune ------------------------------------------------------

/// `hafen container prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `--filter` values as docker's `filters.ParseFlag` reads them.
fn parse_filters(list: &[String]) -> Result<Filters, String> {
    let mut f = Filters::new();
    for item in list {
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').ok_or_else(|| {
            format!(
                "invalid argument {} for \"--filter\" flag: bad format of filter (expected name=value)",
                go_quote(item)
            )
        })?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(f)
}

/// What `docker container prune` prints for a report.
fn prune_text(report: &ContainerPruneReport) -> String {
    let mut text = String::new();
    let mut reclaimed = 0;
    if let Some(ids) = report.containers_deleted.as_ref().filter(|i| !i.is_empty()) {
        text.push_str("Deleted Containers:\n");
        for id in ids {
            text.push_str(id);
            text.push('\n');
        }
        text.push('\n');
        reclaimed = report.space_reclaimed;
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        format::human_size(i64::try_from(reclaimed).unwrap_or(i64::MAX), 4)
    ));
    text
}

/// `hafen container prune`.
pub fn prune(g: &Global, a: PruneArgs) -> Result<(), CliError> {
    let f = parse_filters(&a.filter).map_err(|e| {
        eprintln!(
            "{e}\n\nUsage:  hafen container prune [OPTIONS]\n\nRun 'hafen container prune --help' for more information"
        );
        CliError::Exit(125)
    })?;
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        // Cancelled: docker exits 0 and prints nothing more.
        return Ok(());
    }
    let s = Session::open(g)?;
    let report: ContainerPruneReport = s.rt.block_on(s.client.call_json(
        Method::POST,
        &format!("/containers/prune?filters={}", encode(&filters::encode(&f))),
        None,
    ))?;
    out(&prune_text(&report));
    Ok(())
}

// ---- stats ----------------------------------------------------------------

/// `hafen stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE',
    /// 'json', or a Go template).
    #[arg(long)]
    format: Option<String>,
    /// Containers (default: all running ones, and those that start).
    containers: Vec<String>,
}

/// One container's figures, as the collector last saw them.
#[derive(Debug)]
struct Slot {
    /// What the user named it by (or its short ID).
    container: String,
    row: StatsRow,
    error: Option<String>,
    /// A first sample (or error) came.
    first: bool,
    /// Samples seen, to print a table per sample when not redrawing.
    samples: u64,
}

type Slots = Arc<Mutex<Vec<Slot>>>;

fn with_slot(slots: &Slots, name: &str, f: impl FnOnce(&mut Slot)) -> bool {
    let mut list = slots.lock().unwrap_or_else(PoisonError::into_inner);
    match list.iter_mut().find(|s| s.container == name) {
        Some(slot) => {
            f(slot);
            true
        }
        None => false,
    }
}

/// Adds a container (unless known) and starts collecting its stats.
fn add_slot(slots: &Slots, client: &Client, name: &str, stream: bool) {
    {
        let mut list = slots.lock().unwrap_or_else(PoisonError::into_inner);
        if list.iter().any(|s| s.container == name) {
            return;
        }
        list.push(Slot {
            container: name.to_string(),
            row: StatsRow::default(),
            error: None,
            first: false,
            samples: 0,
        });
    }
    tokio::spawn(collect(
        client.clone(),
        slots.clone(),
        name.to_string(),
        stream,
    ));
}

/// JSON values complete in `pending` (which keeps the rest).
fn take_json_values(pending: &mut Vec<u8>) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(pending).into_iter::<Value>();
    let mut consumed = 0;
    loop {
        match stream.next() {
            Some(Ok(v)) => {
                consumed = stream.byte_offset();
                values.push(v);
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    pending.drain(..consumed);
    Ok(values)
}

/// How long without a sample before the row shows `--`.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The CLI's `collect`: reads a container's stats into its slot.
async fn collect(client: Client, slots: Slots, name: String, stream: bool) {
    let fail = |error: String, reset: bool| {
        with_slot(&slots, &name, |s| {
            if reset {
                s.row = StatsRow::default();
            }
            s.row.invalid = true;
            s.error = Some(error);
            s.first = true;
        })
    };
    let path = format!(
        "/containers/{}/stats?stream={}",
        encode(name.trim()),
        u8::from(stream)
    );
    let resp = match client
        .request(Method::GET, &path, None, hafen_api::client::empty())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            fail(e.to_string(), false);
            return;
        }
    };
    let mut body = resp.into_body();
    let mut pending = Vec::new();
    loop {
        match tokio::time::timeout(STATS_TIMEOUT, next_chunk(&mut body)).await {
            Err(_) => {
                if !fail("timeout waiting for stats".into(), true) {
                    return;
                }
            }
            Ok(Ok(Some(chunk))) => {
                pending.extend_from_slice(&chunk);
                let values = match take_json_values(&mut pending) {
                    Ok(v) => v,
                    Err(e) => {
                        fail(e, false);
                        return;
                    }
                };
                for v in values {
                    let row = stats_format::stats_row(&v);
                    let known = with_slot(&slots, &name, |s| {
                        s.row = row;
                        s.error = None;
                        s.first = true;
                        s.samples += 1;
                    });
                    if !known || !stream {
                        return;
                    }
                }
            }
            Ok(Ok(None)) => {
                fail("EOF".into(), false);
                return;
            }
            Ok(Err(e)) => {
                fail(e.to_string(), false);
                return;
            }
        }
    }
}

/// Watches container events (`docker stats` without names): containers
/// that start (or are created, with `-a`) are added, those that die
/// removed (without `-a`).
async fn watch_events(
    client: Client,
    slots: Slots,
    all: bool,
    stream: bool,
    failed: Arc<Mutex<Option<String>>>,
    body: Incoming,
) {
    let mut body = body;
    let mut pending = Vec::new();
    loop {
        match next_chunk(&mut body).await {
            Ok(Some(chunk)) => {
                pending.extend_from_slice(&chunk);
                let Ok(values) = take_json_values(&mut pending) else {
                    return;
                };
                for v in values {
                    let action = v
                        .get("Action")
                        .or_else(|| v.get("status"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let id = v
                        .pointer("/Actor/ID")
                        .or_else(|| v.get("id"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let short: String = id.chars().take(12).collect();
                    if short.is_empty() {
                        continue;
                    }
                    if action == "start" || (all && action == "create") {
                        add_slot(&slots, &client, &short, stream);
                    } else if !all && action == "die" {
                        slots
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .retain(|s| s.container != short);
                    }
                }
            }
            Ok(None) => return,
            Err(e) => {
                *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                return;
            }
        }
    }
}

/// A frame of the live view: home, each line cleared to its end, the rest
/// of the screen cleared.
fn redraw_frame(text: &str) -> String {
    let mut frame = String::from("\x1b[H");
    for line in text.split('\n') {
        frame.push_str(line);
        frame.push_str("\x1b[K\n");
    }
    frame.push_str("\x1b[J");
    frame
}

/// `hafen stats`.
pub fn stats(g: &Global, a: StatsArgs) -> Result<(), CliError> {
    let fmt = ListFormat::new(a.format.as_deref(), stats_format::DEFAULT_TABLE);
    let headers = stats_format::headers();
    let stream = !a.no_stream;
    let show_all = a.containers.is_empty();
    let redraw = stream && io::stdout().is_terminal();
    let s = Session::open(g)?;
    let client = s.client.clone();
    s.rt.block_on(async {
        let slots: Slots = Arc::default();
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        if show_all {
            // Subscribed before listing, so that no start is missed.
            let f = Filters::from([("type".to_string(), vec!["container".to_string()])]);
            let events = client
                .request(
                    Method::GET,
                    &format!("/events?filters={}", encode(&filters::encode(&f))),
                    None,
                    hafen_api::client::empty(),
                )
                .await?;
            tokio::spawn(watch_events(
                client.clone(),
                slots.clone(),
                a.all,
                stream,
                failed.clone(),
                events.into_body(),
            ));
            let list: Vec<ContainerSummary> = client
                .get_json(&format!("/containers/json?all={}", u8::from(a.all)))
                .await?;
            for c in &list {
                let short: String = c.id.chars().take(12).collect();
                add_slot(&slots, &client, &short, stream);
            }
        } else {
            for name in &a.containers {
                add_slot(&slots, &client, name, stream);
            }
        }
        // Each container's first sample (or error).
        loop {
            let done = slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .all(|s| s.first);
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !show_all {
            let errors: Vec<String> = slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter_map(|s| s.error.clone())
                .collect();
            if !errors.is_empty() {
                return Err(CliError::Failed(errors.join("\n")));
            }
        }
        let period = Duration::from_millis(500);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut printed_samples = None;
        loop {
            ticker.tick().await;
            let (rows, samples): (Vec<BTreeMap<String, String>>, u64) = {
                let list = slots.lock().unwrap_or_else(PoisonError::into_inner);
                let rows = list
                    .iter()
                    .map(|slot| {
                        let mut row = slot.row.clone();
                        row.container = slot.container.clone();
                        row.fields(a.no_trunc)
                    })
                    .collect();
                (rows, list.iter().map(|s| s.samples).sum())
            };
            let text = fmt.render(&rows, &headers)?;
            if redraw {
                out(&redraw_frame(&text));
            } else if printed_samples != Some(samples) {
                // Not a terminal: a table per new sample.
                out(&text);
                printed_samples = Some(samples);
            }
            if rows.is_empty() && !show_all {
                break;
            }
            if !stream {
                break;
            }
            if let Some(e) = failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
                return Err(CliError::Failed(e));
            }
        }
        Ok(())
    })
}

// ---- cp: paths ------------------------------------------------------------

/// Go's `filepath.Clean` of a byte path.
fn clean_bytes(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in p.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

fn utf8(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// `filepath.Clean`.
fn go_clean(p: &str) -> String {
    utf8(clean_bytes(p.as_bytes()))
}

/// `filepath.Base`.
fn go_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// `filepath.Dir`.
fn go_dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => go_clean(&p[..=i]),
        None => ".".into(),
    }
}

/// `filepath.Split`: up to and including the last `/`, and the rest.
fn go_split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// `filepath.Join` of two elements.
fn go_join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => go_clean(b),
        (false, true) => go_clean(a),
        (false, false) => go_clean(&format!("{a}/{b}")),
    }
}

fn specifies_current_dir(p: &str) -> bool {
    go_base(p) == "."
}

fn has_trailing_separator(p: &str) -> bool {
    p.ends_with('/')
}

/// The path names a directory: it ends in `/` or `/.`.
fn asserts_directory(p: &str) -> bool {
    has_trailing_separator(p) || specifies_current_dir(p)
}

/// go-archive's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !has_trailing_separator(&c) {
            c.push('/');
        }
        c.push('.');
    }
    if !has_trailing_separator(&c) && has_trailing_separator(original) {
        c.push('/');
    }
    c
}

/// go-archive's `SplitPathDirEntry`: the directory and the entry, keeping
/// a trailing `.`.
fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = go_clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (go_dir(&cleaned), go_base(&cleaned))
}

/// go-archive's `GetRebaseName`: the resolved path with the original's
/// trailing `/` or `/.`, and the name its entries must take when the last
/// component changed.
fn get_rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let rebase = if go_base(path) != go_base(&resolved) {
        go_base(path)
    } else {
        String::new()
    };
    (resolved, rebase)
}

/// An absolute local path, keeping a trailing `/` or `/.`.
fn resolve_local_path(p: &str) -> Result<String, CliError> {
    let abs = if p.starts_with('/') {
        go_clean(p)
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| CliError::Failed(format!("getwd: {}", errno_text(&e))))?;
        go_join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// `CONTAINER:PATH` or a local path (`docker cp`'s `splitCpArg`): a path
/// that starts with `/` or `.` is local even with a `:`.
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// What is known of a copy's source or destination.
#[derive(Debug, Clone, Default, PartialEq)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    rebase_name: String,
}

/// Why a copy cannot be prepared (go-archive's errors).
#[derive(Debug, PartialEq, thiserror::Error)]
enum PrepareError {
    /// A directory onto an existing file.
    #[error("cannot copy directory")]
    CannotCopyDir,
    /// A file onto a missing path that must be a directory.
    #[error("no such directory")]
    DirNotExists,
}

/// A renaming of archive entries: the first `from` in a name becomes `to`.
type Rebase = (Vec<u8>, Vec<u8>);

/// go-archive's `PrepareArchiveCopy`: the directory to unpack into and how
/// the entries must be renamed for the source to land at the destination.
fn prepare_archive_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<Rebase>), PrepareError> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let (_, mut src_base) = split_path_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    let rebase = || {
        // The root's entries already start with `/`.
        let from = if src_base == "/" {
            Vec::new()
        } else {
            src_base.clone().into_bytes()
        };
        Some((from, dst_base.clone().into_bytes()))
    };
    if dst.exists && dst.is_dir {
        Ok((dst.path.clone(), None))
    } else if dst.exists && src.is_dir {
        Err(PrepareError::CannotCopyDir)
    } else if dst.exists || src.is_dir {
        Ok((dst_dir, rebase()))
    } else if asserts_directory(&dst.path) {
        Err(PrepareError::DirNotExists)
    } else {
        Ok((dst_dir, rebase()))
    }
}

/// Go's `strings.Replace(s, from, to, 1)` on bytes.
fn replace_first(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = if from.is_empty() {
        Some(0)
    } else {
        s.windows(from.len()).position(|w| w == from)
    };
    match at {
        Some(i) => [&s[..i], to, &s[i + from.len()..]].concat(),
        None => s.to_vec(),
    }
}

/// go-archive's `CopyInfoDestinationPath` for a local path: symlinks
/// followed (at most 10), a missing path allowed when its parent is a
/// directory.
fn copy_info_destination_path(path: &str) -> Result<CopyInfo, String> {
    let original = path.to_string();
    let mut path = path.to_string();
    let mut stat = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &stat {
        if !m.file_type().is_symlink() {
            break;
        }
        if n > 10 {
            return Err(format!("too many symlinks in {original}"));
        }
        n += 1;
        let target = std::fs::read_link(&path)
            .map_err(|e| go_err("readlink", &path, &e))?
            .to_string_lossy()
            .into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            go_join(&split_path_dir_entry(&path).0, &target)
        };
        stat = std::fs::symlink_metadata(&path);
    }
    match stat {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase_name: String::new(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, _) = split_path_dir_entry(&path);
            let m = std::fs::metadata(&parent).map_err(|e| go_err("stat", &parent, &e))?;
            if !m.is_dir() {
                return Err("not a directory".into());
            }
            Ok(CopyInfo {
                path,
                ..CopyInfo::default()
            })
        }
        Err(e) => Err(go_err("lstat", &path, &e)),
    }
}

/// `filepath.EvalSymlinks` of an absolute path.
fn eval_symlinks(p: &str) -> Result<String, String> {
    std::fs::canonicalize(p)
        .map(|r| r.to_string_lossy().into_owned())
        .map_err(|e| go_err("lstat", &go_clean(p), &e))
}

/// go-archive's `CopyInfoSourcePath`: symlinks before the last component
/// resolved (the last one too with `follow`).
fn copy_info_source_path(path: &str, follow: bool) -> Result<CopyInfo, String> {
    let (resolved, rebase_name) = if follow {
        let resolved = eval_symlinks(path)?;
        get_rebase_name(path, &resolved)
    } else {
        let (dir, base) = go_split(path);
        let resolved_dir = eval_symlinks(dir)?;
        let resolved = format!("{resolved_dir}/{base}");
        let rebase = if has_trailing_separator(path) && go_base(path) != go_base(&resolved) {
            go_base(path)
        } else {
            String::new()
        };
        (resolved, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| go_err("lstat", &resolved, &e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name,
    })
}

// ---- cp: archives ---------------------------------------------------------

/// Where and how the local source goes into the archive (go-archive's
/// `TarResourceRebase`): the directory walked from, the entry in it, its
/// name in the archive (empty: as is), and the renaming the destination
/// needs.
#[derive(Debug, Clone)]
struct TarPlan {
    source_dir: PathBuf,
    include: String,
    rebase_name: String,
    rebase: Option<Rebase>,
}

impl TarPlan {
    /// An entry's name: its path from `source_dir`, renamed.
    fn name(&self, rel: &[u8], is_dir: bool) -> Vec<u8> {
        let mut name = rel.to_vec();
        if !self.rebase_name.is_empty() {
            let to: &[u8] = if self.rebase_name == "/" {
                b""
            } else {
                self.rebase_name.as_bytes()
            };
            name = replace_first(&name, self.include.as_bytes(), to);
        }
        if is_dir && !name.ends_with(b"/") {
            name.push(b'/');
        }
        self.rebased(&name)
    }

    fn rebased(&self, name: &[u8]) -> Vec<u8> {
        match &self.rebase {
            Some((from, to)) => replace_first(name, from, to),
            None => name.to_vec(),
        }
    }
}

/// Writes the tar of a local source (a file, a directory with its
/// contents, a symlink as itself) as `docker cp` sends it.
fn write_source_tar(plan: &TarPlan, w: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let root = plan.source_dir.join(&plan.include);
    let root_rel = plan.include.as_bytes().to_vec();
    let mut seen = HashMap::new();
    append_tree(&mut b, plan, &root, &root_rel, &mut seen)?;
    b.into_inner()?.flush()
}

fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    plan: &TarPlan,
    path: &Path,
    rel: &[u8],
    seen: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| io::Error::new(e.kind(), go_err("lstat", &path.display().to_string(), &e)))?;
    append_entry(b, plan, path, rel, &meta, seen)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(path)
        .map_err(|e| io::Error::new(e.kind(), go_err("open", &path.display().to_string(), &e)))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let mut child_rel = rel.to_vec();
        if !child_rel.ends_with(b"/") {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(n.as_bytes());
        append_tree(b, plan, &path.join(&n), &child_rel, seen)?;
    }
    Ok(())
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    plan: &TarPlan,
    path: &Path,
    rel: &[u8],
    meta: &std::fs::Metadata,
    seen: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let name = plan.name(rel, t.is_dir());
    let name_path = Path::new(OsStr::from_bytes(&name));
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_mode(meta.mode() & 0o7777);
    h.set_size(0);
    let described = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot archive {}: {}", path.display(), errno_text(&e)),
        )
    };
    if t.is_file() {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = seen.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let target = plan.rebased(first);
                return b
                    .append_link(&mut h, name_path, Path::new(OsStr::from_bytes(&target)))
                    .map_err(described);
            }
            // Hard links point at the name before the destination's
            // renaming, which applies to them too.
            let mut before = rel.to_vec();
            if !plan.rebase_name.is_empty() {
                let to: &[u8] = if plan.rebase_name == "/" {
                    b""
                } else {
                    plan.rebase_name.as_bytes()
                };
                before = replace_first(&before, plan.include.as_bytes(), to);
            }
            seen.insert(key, before);
        }
        let f = std::fs::File::open(path).map_err(described)?;
        h.set_size(meta.len());
        b.append_data(&mut h, name_path, f).map_err(described)
    } else if t.is_dir() {
        b.append_data(&mut h, name_path, io::empty())
            .map_err(described)
    } else if t.is_symlink() {
        let target = std::fs::read_link(path).map_err(described)?;
        b.append_link(&mut h, name_path, &target).map_err(described)
    } else if t.is_fifo() || t.is_char_device() || t.is_block_device() {
        if !t.is_fifo() {
            let rdev = meta.rdev();
            h.set_device_major(rustix::fs::major(rdev))?;
            h.set_device_minor(rustix::fs::minor(rdev))?;
        }
        b.append_data(&mut h, name_path, io::empty())
            .map_err(described)
    } else {
        // Sockets cannot be archived; go-archive skips them too.
        Ok(())
    }
}

/// Whether `path` (its deepest existing ancestor, symlinks resolved) lies
/// within `root` (canonical).
fn inside(root: &Path, path: &Path) -> bool {
    let mut p = path.to_path_buf();
    loop {
        if std::fs::symlink_metadata(&p).is_ok() {
            return std::fs::canonicalize(&p).is_ok_and(|c| c.starts_with(root));
        }
        if !p.pop() {
            return false;
        }
    }
}

/// Sets a path's times without following a symlink.
fn set_times(path: &Path, mtime: u64) {
    let t = rustix::fs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let _ = rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
}

/// Unpacks an archive from a container into `dest` (go-archive's
/// `Untar` with `NoLchown` and `NoOverwriteDirNonDir`), renaming entries
/// with `rebases` in order. Entries that would land outside `dest`
/// (by `..`, or through a symlink) are refused.
fn untar(mut content: impl Read, dest: &str, rebases: &[Rebase]) -> Result<(), String> {
    let dest_clean = go_clean(dest);
    let dest_path = PathBuf::from(&dest_clean);
    let root = std::fs::canonicalize(&dest_path).map_err(|e| go_err("stat", &dest_clean, &e))?;
    let mut archive = tar::Archive::new(&mut content);
    let mut dirs = Vec::new();
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let mut name = entry.path_bytes().into_owned();
        let mut link = entry.link_name_bytes().map(|l| l.into_owned());
        for (from, to) in rebases {
            name = replace_first(&name, from, to);
            if kind.is_hard_link() {
                link = link.map(|l| replace_first(&l, from, to));
            }
        }
        let name = utf8(clean_bytes(&name));
        let full = go_join(&dest_clean, &name);
        if full != dest_clean
            && !full.starts_with(&format!("{}/", dest_clean.trim_end_matches('/')))
        {
            return Err(format!(
                "{} is outside of {}",
                go_quote(&name),
                go_quote(&dest_clean)
            ));
        }
        let path = PathBuf::from(&full);
        // The parent: within the destination, created if missing.
        if name != "." && name != "/" {
            let parent = PathBuf::from(go_dir(&full));
            if !inside(&root, &parent) {
                return Err(format!(
                    "{} is outside of {}",
                    go_quote(&name),
                    go_quote(&dest_clean)
                ));
            }
            if std::fs::symlink_metadata(&parent).is_err() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(&parent)
                    .map_err(|e| go_err("mkdir", &parent.display().to_string(), &e))?;
            }
        }
        if let Ok(existing) = std::fs::symlink_metadata(&path) {
            let is_dir = existing.is_dir();
            if is_dir && !kind.is_dir() {
                return Err(format!(
                    "cannot overwrite directory {} with non-directory {}",
                    go_quote(&full),
                    go_quote(&dest_clean)
                ));
            }
            if !is_dir && kind.is_dir() {
                return Err(format!(
                    "cannot overwrite non-directory {} with directory {}",
                    go_quote(&full),
                    go_quote(&dest_clean)
                ));
            }
            if is_dir && name == "." {
                continue;
            }
            if !is_dir {
                std::fs::remove_file(&path).map_err(|e| go_err("remove", &full, &e))?;
            }
        }
        let mtime = entry.header().mtime().unwrap_or(0);
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        if kind.is_hard_link() {
            let target_name = utf8(link.unwrap_or_default());
            let target = go_join(&dest_clean, &target_name);
            if !target.starts_with(&dest_clean) || !inside(&root, Path::new(&target)) {
                return Err(format!(
                    "invalid hardlink {} -> {}",
                    go_quote(&target),
                    go_quote(&target_name)
                ));
            }
            std::fs::hard_link(&target, &path).map_err(|e| go_err("link", &full, &e))?;
            continue;
        }
        if kind.is_symlink() {
            let target_name = utf8(link.unwrap_or_default());
            let target = go_join(&go_dir(&full), &target_name);
            if !target.starts_with(&dest_clean) {
                return Err(format!(
                    "invalid symlink {} -> {}",
                    go_quote(&full),
                    go_quote(&target_name)
                ));
            }
        }
        if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
            let (file_type, dev) = if kind.is_fifo() {
                (rustix::fs::FileType::Fifo, 0)
            } else {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let t = if kind.is_character_special() {
                    rustix::fs::FileType::CharacterDevice
                } else {
                    rustix::fs::FileType::BlockDevice
                };
                (t, rustix::fs::makedev(major, minor))
            };
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                file_type,
                rustix::fs::Mode::from_raw_mode(mode),
                dev,
            )
            .map_err(|e| go_err("mknod", &full, &io::Error::from(e)))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            set_times(&path, mtime);
            continue;
        }
        if !(kind.is_file()
            || kind.is_dir()
            || kind.is_symlink()
            || kind == tar::EntryType::Continuous
            || kind.is_gnu_sparse())
        {
            return Err(format!("unhandled tar header type {}", kind.as_byte()));
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry
            .unpack(&path)
            .map_err(|e| format!("cannot unpack {full}: {}", errno_text(&e)))?;
        if kind.is_dir() {
            dirs.push((path, mtime));
        }
    }
    // Directory times last: what was unpacked into them changed them.
    for (path, mtime) in dirs {
        set_times(&path, mtime);
    }
    // The end-of-archive blocks too (docker counts them as copied).
    let _ = io::copy(&mut content, &mut io::sink());
    Ok(())
}

// ---- cp: the command ------------------------------------------------------

/// `hafen cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is
    /// automatically suppressed if no terminal is attached.
    #[arg(short, long)]
    quiet: bool,
    /// `CONTAINER:SRC_PATH`, a local path or `-` (a tar on stdin).
    #[arg(value_name = "SRC_PATH", allow_hyphen_values = true)]
    source: String,
    /// `CONTAINER:DEST_PATH`, a local path or `-` (a tar on stdout).
    #[arg(value_name = "DEST_PATH", allow_hyphen_values = true)]
    destination: String,
}

/// `ContainerPathStat` (from the `X-Docker-Container-Path-Stat` header).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PathStat {
    mode: u32,
    #[serde(rename = "linkTarget")]
    link_target: String,
}

/// Go's `os.FileMode` bits.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_IRREGULAR: u32 = 1 << 19;

/// `command.ValidateOutputPathFileMode`.
fn validate_file_mode(mode: u32) -> Result<(), &'static str> {
    if mode & MODE_DEVICE != 0 {
        Err("got a device")
    } else if mode & MODE_IRREGULAR != 0 {
        Err("got an irregular file")
    } else {
        Ok(())
    }
}

/// `command.ValidateOutputPath` for a local destination.
fn validate_output_path(path: &str) -> Result<(), String> {
    let dir = go_dir(&go_clean(path));
    if !dir.is_empty()
        && dir != "."
        && let Err(e) = std::fs::metadata(&dir)
        && e.kind() == io::ErrorKind::NotFound
    {
        return Err(format!(
            "invalid output path: directory {} does not exist",
            go_quote(&dir)
        ));
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(go_err("stat", path, &e)),
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if t.is_block_device() || t.is_char_device() {
                Err(format!(
                    "invalid output path: {} must be a directory or a regular file: got a device",
                    go_quote(path)
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Standard base64 (with or without padding) to bytes.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("illegal base64 data at input byte {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

fn decode_path_stat(header: Option<&hyper::header::HeaderValue>) -> Result<PathStat, String> {
    let text = header.and_then(|h| h.to_str().ok()).unwrap_or("");
    let bytes = base64_decode(text)
        .map_err(|e| format!("unable to decode container path stat header: {e}"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("unable to decode container path stat header: {e}"))
}

const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// `HEAD /containers/{id}/archive`: the stat of a path in a container.
fn stat_path(s: &Session, container: &str, path: &str) -> Result<PathStat, CliError> {
    let resp = s.rt.block_on(s.client.request(
        Method::HEAD,
        &format!(
            "/containers/{}/archive?path={}",
            container_ref(container)?,
            encode(path)
        ),
        None,
        hafen_api::client::empty(),
    ))?;
    decode_path_stat(resp.headers().get(PATH_STAT_HEADER)).map_err(CliError::Failed)
}

/// A response body read synchronously (for the tar reader), counting what
/// went through.
struct BodyRead<'a> {
    rt: &'a tokio::runtime::Runtime,
    body: Incoming,
    pending: Bytes,
    count: Arc<AtomicU64>,
}

impl Read for BodyRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match self.rt.block_on(next_chunk(&mut self.body)) {
                Ok(Some(b)) => self.pending = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A reader that counts the bytes read.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `hafen cp`.
pub fn cp(g: &Global, a: CpArgs) -> Result<(), CliError> {
    if a.source.is_empty() {
        return Err(CliError::Failed("source can not be empty".into()));
    }
    if a.destination.is_empty() {
        return Err(CliError::Failed("destination can not be empty".into()));
    }
    let quiet = a.quiet || !io::stdout().is_terminal();
    let (src_container, src_path) = split_cp_arg(&a.source);
    let (dst_container, dst_path) = split_cp_arg(&a.destination);
    match (src_container, dst_container) {
        (Some(c), None) => copy_from_container(g, &a, quiet, c, src_path, dst_path),
        (None, Some(c)) => copy_to_container(g, &a, quiet, c, src_path, dst_path),
        (Some(_), Some(_)) => Err(CliError::Failed(
            "copying between containers is not supported".into(),
        )),
        (None, None) => Err(CliError::Failed(
            "must specify at least one container source".into(),
        )),
    }
}

fn copy_from_container(
    g: &Global,
    a: &CpArgs,
    quiet: bool,
    container: &str,
    src_path: &str,
    dst_path: &str,
) -> Result<(), CliError> {
    let dst = if dst_path == "-" {
        dst_path.to_string()
    } else {
        resolve_local_path(dst_path)?
    };
    validate_output_path(&dst).map_err(CliError::Failed)?;
    let id = container_ref(container)?;
    let s = Session::open(g)?;
    let mut src = src_path.to_string();
    let mut rebase_name = String::new();
    if a.follow_link
        && let Ok(st) = stat_path(&s, container, &src)
        && st.mode & MODE_SYMLINK != 0
    {
        let mut target = st.link_target;
        if !target.starts_with('/') {
            target = go_join(&split_path_dir_entry(&src).0, &target);
        }
        (src, rebase_name) = get_rebase_name(&src, &target);
    }
    let resp = s.rt.block_on(s.client.request(
        Method::GET,
        &format!("/containers/{id}/archive?path={}", encode(&src)),
        None,
        hafen_api::client::empty(),
    ))?;
    let stat = decode_path_stat(resp.headers().get(PATH_STAT_HEADER))
        .map_err(|e| CliError::Failed(format!("unable to get resource stat from response: {e}")))?;
    let mut body = resp.into_body();
    if dst == "-" {
        let mut stdout = io::stdout().lock();
        while let Some(chunk) = s.rt.block_on(next_chunk(&mut body))? {
            if stdout.write_all(&chunk).is_err() {
                return Err(CliError::Exit(1));
            }
        }
        let _ = stdout.flush();
        return Ok(());
    }
    let src_info = CopyInfo {
        path: src.clone(),
        exists: true,
        is_dir: stat.mode & MODE_DIR != 0,
        rebase_name: rebase_name.clone(),
    };
    let count = Arc::new(AtomicU64::new(0));
    let reader = BodyRead {
        rt: &s.rt,
        body,
        pending: Bytes::new(),
        count: count.clone(),
    };
    let mut rebases = Vec::new();
    if !rebase_name.is_empty() {
        let (_, src_base) = split_path_dir_entry(&src);
        let from = if src_base == "/" {
            Vec::new()
        } else {
            src_base.into_bytes()
        };
        rebases.push((from, rebase_name.into_bytes()));
    }
    let result = copy_to(reader, &src_info, &dst, rebases);
    if !quiet {
        // docker 28 shows no progress (its check for a terminal never
        // holds), only this line.
        eprintln!(
            "Successfully copied {} to {dst}",
            format::human_size(
                i64::try_from(count.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
                3
            )
        );
    }
    result.map_err(CliError::Failed)
}

/// go-archive's `CopyTo`: unpacks `content` (the archive of `src`) so that
/// it lands at the local `dst`.
fn copy_to(
    content: impl Read,
    src: &CopyInfo,
    dst: &str,
    mut rebases: Vec<Rebase>,
) -> Result<(), String> {
    let dst_info = copy_info_destination_path(dst)?;
    let (dst_dir, rebase) = prepare_archive_copy(src, &dst_info).map_err(|e| e.to_string())?;
    rebases.extend(rebase);
    untar(content, &dst_dir, &rebases)
}

fn copy_to_container(
    g: &Global,
    a: &CpArgs,
    quiet: bool,
    container: &str,
    src_path: &str,
    dst_path: &str,
) -> Result<(), CliError> {
    let src = if src_path == "-" {
        src_path.to_string()
    } else {
        resolve_local_path(src_path)?
    };
    let id = container_ref(container)?;
    let s = Session::open(g)?;
    let mut dst_info = CopyInfo {
        path: dst_path.to_string(),
        ..CopyInfo::default()
    };
    let mut dst_stat = stat_path(&s, container, dst_path);
    if let Ok(st) = &dst_stat
        && st.mode & MODE_SYMLINK != 0
    {
        let mut target = st.link_target.clone();
        if !target.starts_with('/') {
            target = go_join(&split_path_dir_entry(dst_path).0, &target);
        }
        dst_info.path = target.clone();
        dst_stat = stat_path(&s, container, &target);
    }
    let mode = dst_stat.as_ref().map_or(0, |st| st.mode);
    validate_file_mode(mode).map_err(|e| {
        CliError::Failed(format!(
            "destination \"{container}:{dst_path}\" must be a directory or a regular file: {e}"
        ))
    })?;
    if let Ok(st) = &dst_stat {
        dst_info.exists = true;
        dst_info.is_dir = st.mode & MODE_DIR != 0;
    }
    let count = Arc::new(AtomicU64::new(0));
    let (body, resolved_dst, builder) = if src == "-" {
        if !dst_info.is_dir {
            return Err(CliError::Failed(format!(
                "destination \"{container}:{dst_path}\" must be a directory"
            )));
        }
        (
            hafen_api::client::from_reader(io::stdin()),
            dst_info.path.clone(),
            None,
        )
    } else {
        let src_info = copy_info_source_path(&src, a.follow_link).map_err(CliError::Failed)?;
        let (dst_dir, rebase) = prepare_archive_copy(&src_info, &dst_info)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let (source_dir, include) = split_path_dir_entry(&src_info.path);
        let plan = TarPlan {
            source_dir: PathBuf::from(source_dir),
            include,
            rebase_name: src_info.rebase_name.clone(),
            rebase,
        };
        let (reader, writer) = rustix::pipe::pipe()
            .map_err(|e| CliError::Failed(format!("cannot make a pipe: {e}")))?;
        let writer = std::fs::File::from(writer);
        let builder = std::thread::spawn(move || write_source_tar(&plan, writer));
        let counted = Counting {
            inner: std::fs::File::from(reader),
            count: count.clone(),
        };
        (
            hafen_api::client::from_reader(counted),
            dst_dir,
            Some(builder),
        )
    };
    let mut q = format!(
        "/containers/{id}/archive?path={}&noOverwriteDirNonDir=true",
        encode(&resolved_dst)
    );
    if a.archive {
        q.push_str("&copyUIDGID=true");
    }
    let sent = s.rt.block_on(
        s.client
            .request(Method::PUT, &q, Some("application/x-tar"), body),
    );
    let built = builder.map(|b| b.join());
    if !quiet {
        eprintln!(
            "Successfully copied {} to {container}:{}",
            format::human_size(
                i64::try_from(count.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
                3
            ),
            dst_info.path
        );
    }
    // A local failure explains a broken upload better than the daemon's
    // view of it.
    match built {
        Some(Ok(Err(e))) => return Err(CliError::Failed(e.to_string())),
        Some(Err(_)) => return Err(CliError::Failed("archiving the source failed".into())),
        _ => {}
    }
    sent?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments_split_as_docker() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("web:etc"), (Some("web"), "etc"));
        assert_eq!(split_cp_arg("web:"), (Some("web"), ""));
        // Local: absolute, explicitly relative, or without a colon.
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("../a:b"), (None, "../a:b"));
        assert_eq!(split_cp_arg("file.txt"), (None, "file.txt"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        // The first colon splits.
        assert_eq!(split_cp_arg("c:/a:b"), (Some("c"), "/a:b"));
    }

    #[test]
    fn go_paths() {
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_clean("/a//b/./c/.."), "/a/b");
        assert_eq!(go_clean("../../a"), "../../a");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("a/../.."), "..");
        assert_eq!(go_base("/a/b/"), "b");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_base(""), ".");
        assert_eq!(go_dir("/a/b"), "/a");
        assert_eq!(go_dir("b"), ".");
        assert_eq!(go_dir("/b"), "/");
        assert_eq!(go_split("/a/b"), ("/a/", "b"));
        assert_eq!(go_split("/a/b/"), ("/a/b/", ""));
        assert_eq!(go_join("/a", "../b"), "/b");
        assert_eq!(go_join("", "b"), "b");
        assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_path_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(split_path_dir_entry("tmp"), (".".into(), "tmp".into()));
        assert_eq!(preserve_trailing("/a/b", "x/b/."), "/a/b/.");
        assert_eq!(preserve_trailing("/a/b", "x/b/"), "/a/b/");
        assert_eq!(preserve_trailing("/", "/."), "/.");
        assert_eq!(preserve_trailing("/a", "a"), "/a");
        assert!(asserts_directory("a/"));
        assert!(asserts_directory("a/."));
        assert!(!asserts_directory("a"));
        assert_eq!(
            get_rebase_name("/x/link/", "/x/real"),
            ("/x/real/".into(), "link".into())
        );
        assert_eq!(
            get_rebase_name("/x/link/.", "/x/real"),
            ("/x/real/.".into(), String::new())
        );
        assert_eq!(
            get_rebase_name("/x/same", "/y/same"),
            ("/y/same".into(), String::new())
        );
    }

    #[test]
    fn local_paths_are_made_absolute() {
        let cwd = std::env::current_dir().expect("cwd");
        let cwd = cwd.to_string_lossy();
        assert_eq!(
            resolve_local_path("out/.").expect("path"),
            format!("{cwd}/out/.")
        );
        assert_eq!(resolve_local_path("/a/../b/").expect("path"), "/b/");
        assert_eq!(resolve_local_path(".").expect("path"), format!("{cwd}/."));
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: String::new(),
        }
    }

    #[test]
    fn the_copy_rules() {
        let r = |from: &str, to: &str| Some((from.as_bytes().to_vec(), to.as_bytes().to_vec()));
        // Into an existing directory: as is.
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/d", true, true)),
            Ok(("/tmp/d".into(), None))
        );
        // A directory onto a file.
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/f", true, false)),
            Err(PrepareError::CannotCopyDir)
        );
        // A file onto a file: renamed to it.
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/f", true, false)
            ),
            Ok(("/tmp".into(), r("hosts", "f")))
        );
        // A directory to a new path: renamed, unpacked in the parent.
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/new", false, false)),
            Ok(("/tmp".into(), r("etc", "new")))
        );
        // Its contents (`/.`) to a new path.
        assert_eq!(
            prepare_archive_copy(&info("/etc/.", true, true), &info("/tmp/new", false, false)),
            Ok(("/tmp".into(), r(".", "new")))
        );
        // A file to a missing directory.
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/new/", false, false)
            ),
            Err(PrepareError::DirNotExists)
        );
        // A file to a new file.
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/h2", false, false)
            ),
            Ok(("/tmp".into(), r("hosts", "h2")))
        );
        // The source's rebase name wins; the root's entries keep their `/`.
        let mut linked = info("/real", true, true);
        linked.rebase_name = "link".into();
        assert_eq!(
            prepare_archive_copy(&linked, &info("/tmp/x", false, false)),
            Ok(("/tmp".into(), r("link", "x")))
        );
        assert_eq!(
            prepare_archive_copy(&info("/", true, true), &info("/tmp/x", false, false)),
            Ok(("/tmp".into(), r("", "x")))
        );
        assert_eq!(replace_first(b"a/b/a", b"a", b"z"), b"z/b/a");
        assert_eq!(replace_first(b"./x", b".", b"new"), b"new/x");
        assert_eq!(replace_first(b"/x", b"", b"new"), b"new/x");
        assert_eq!(replace_first(b"x", b"y", b"z"), b"x");
    }

    fn args(list: &[&str]) -> UpdateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: UpdateArgs,
        }
        let mut v = vec!["update"];
        v.extend_from_slice(list);
        Cli::try_parse_from(v).expect("parses").a
    }

    #[test]
    fn the_update_body() {
        let a = args(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:3",
            "--cpuset-cpus",
            "0",
            "c1",
            "c2",
        ]);
        let b = a.body().expect("body");
        assert_eq!(b["Memory"], 64 * 1024 * 1024);
        assert_eq!(b["MemorySwap"], -1);
        assert_eq!(b["NanoCpus"], 1_500_000_000i64);
        assert_eq!(b["CpuShares"], 512);
        assert_eq!(b["PidsLimit"], -1);
        assert_eq!(b["CpusetCpus"], "0");
        assert_eq!(b["MemoryReservation"], 0);
        assert_eq!(
            b["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(a.containers, vec!["c1", "c2"]);
        // The body reads as the daemon's HostConfig.
        let h: hafen_api::models::HostConfig = serde_json::from_value(b).expect("a host config");
        assert_eq!(h.memory, 64 * 1024 * 1024);
        assert_eq!(h.restart_policy.name, "on-failure");
        assert_eq!(h.pids_limit, Some(-1));

        // Without --pids-limit (or with 0) there is no PidsLimit; without
        // --restart the policy's name is empty (unchanged).
        let b = args(&["--memory-reservation", "1g", "c"])
            .body()
            .expect("body");
        assert!(b.get("PidsLimit").is_none());
        assert_eq!(b["MemoryReservation"], 1024 * 1024 * 1024);
        assert_eq!(b["RestartPolicy"]["Name"], "");
        // A flag given with its zero value still counts.
        assert!(args(&["--cpu-shares", "0", "c"]).body().is_ok());

        match args(&["c"]).body() {
            Err(CliError::Failed(m)) => {
                assert_eq!(
                    m,
                    "you must provide one or more flags when using this command"
                );
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match args(&["--restart", ":3", "c"]).body() {
            Err(CliError::Failed(m)) => {
                assert_eq!(
                    m,
                    "invalid restart policy format: no policy provided before colon"
                );
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match args(&["--restart", "always:x", "c"]).body() {
            Err(CliError::Failed(m)) => assert_eq!(
                m,
                "invalid restart policy format: maximum retry count must be an integer"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn bad_update_flags_do_not_parse() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            a: UpdateArgs,
        }
        for bad in [
            &["update", "-m", "12x", "c"][..],
            &["update", "--cpus", "abc", "c"],
            &["update", "--memory-swap", "-2x", "c"],
            &["update", "--blkio-weight", "70000", "c"],
            &["update", "-m", "1g"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commit_queries() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: CommitArgs,
        }
        let q = |v: &[&str]| {
            let mut all = vec!["commit"];
            all.extend_from_slice(v);
            commit_query(&Cli::try_parse_from(all).expect("parses").a)
        };
        assert_eq!(
            q(&["c1"]).expect("query"),
            "container=c1&repo=&tag=&comment=&author="
        );
        assert_eq!(
            q(&[
                "-m",
                "a b",
                "-c",
                "CMD [\"sh\"]",
                "--pause=false",
                "c1",
                "me/app:v1"
            ])
            .expect("query"),
            "container=c1&repo=docker%2Eio%2Fme%2Fapp&tag=v1&comment=a%20b&author=&changes=CMD%20%5B%22sh%22%5D&pause=0"
        );
        assert!(
            q(&["c1", "busybox"])
                .expect("query")
                .contains("repo=docker%2Eio%2Flibrary%2Fbusybox&tag=latest")
        );
        assert!(q(&["-p", "c1"]).expect("query").ends_with("author="));
        match q(&["c1", "app/Name"]) {
            Err(CliError::Failed(m)) => assert_eq!(
                m,
                "invalid reference format: repository name (app/Name) must be lowercase"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
        let digest = format!("app@sha256:{}", "a".repeat(64));
        match q(&["c1", &digest]) {
            Err(CliError::Failed(m)) => {
                assert_eq!(m, "refusing to create a tag with a digest reference");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn top_and_diff_output() {
        let t = TopResponse {
            titles: vec!["UID".into(), "PID".into(), "CMD".into()],
            processes: vec![vec!["root".into(), "4242".into(), "sleep 100".into()]],
        };
        assert_eq!(
            top_table(&t),
            "UID                 PID                 CMD\nroot                4242                sleep 100\n"
        );
        let changes = [
            ChangeItem {
                path: "/etc".into(),
                kind: 0,
            },
            ChangeItem {
                path: "/etc/new".into(),
                kind: 1,
            },
            ChangeItem {
                path: "/x".into(),
                kind: 2,
            },
        ];
        assert_eq!(diff_lines(&changes), "C /etc\nA /etc/new\nD /x\n");
    }

    #[test]
    fn ports_as_docker_lists_them() {
        let ns = serde_json::json!({"Ports": {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "443/tcp": null,
            "9/udp": [{"HostIp": "127.0.0.1", "HostPort": "10009"}],
        }});
        assert_eq!(
            port_lines(&ns, None, "web").expect("lines"),
            vec![
                "9/udp -> 127.0.0.1:10009",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
            ]
        );
        assert_eq!(
            port_lines(&ns, Some("80"), "web").expect("lines"),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&ns, Some("443"), "web"),
            Err("Error: No public port '443' published for web".into())
        );
        assert_eq!(
            port_lines(&Value::Null, Some("80/tcp"), "web"),
            Err("Error: No public port '80/tcp' published for web".into())
        );
        assert_eq!(
            port_lines(&ns, Some("http"), "web"),
            Err(
                "Error: invalid port (http): strconv.ParseUint: parsing \"http\": invalid syntax"
                    .into()
            )
        );
        assert_eq!(
            port_lines(&ns, Some("70000"), "web"),
            Err("Error: invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range".into())
        );
        assert!(
            port_lines(&Value::Null, None, "web")
                .expect("lines")
                .is_empty()
        );
        assert!(natural_less("9/udp", "80/tcp"));
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("a", "ab"));
    }

    #[test]
    fn prune_output_and_filters() {
        let none = ContainerPruneReport {
            containers_deleted: None,
            space_reclaimed: 0,
        };
        assert_eq!(prune_text(&none), "Total reclaimed space: 0B\n");
        let some = ContainerPruneReport {
            containers_deleted: Some(vec!["abc".into(), "def".into()]),
            space_reclaimed: 2048,
        };
        assert_eq!(
            prune_text(&some),
            "Deleted Containers:\nabc\ndef\n\nTotal reclaimed space: 2.048kB\n"
        );
        let f = parse_filters(&["Label = a=b ".into(), "until=1h".into()]).expect("filters");
        assert_eq!(f["label"], vec!["a=b"]);
        assert_eq!(f["until"], vec!["1h"]);
        assert!(parse_filters(&["nonsense".into()]).is_err());
    }

    #[test]
    fn path_stats_decode() {
        let text = hafen_api_base64(br#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#);
        let header = hyper::header::HeaderValue::from_str(&text).expect("header");
        let st = decode_path_stat(Some(&header)).expect("stat");
        assert_ne!(st.mode & MODE_DIR, 0);
        assert!(decode_path_stat(None).is_err());
        assert_eq!(base64_decode("aGk=").expect("decodes"), b"hi");
        assert_eq!(base64_decode("aGk").expect("decodes"), b"hi");
        assert!(base64_decode("a*").is_err());
        assert_eq!(validate_file_mode(MODE_DEVICE), Err("got a device"));
        assert_eq!(validate_file_mode(MODE_DIR | 0o755), Ok(()));
    }

    /// Standard base64 with padding (what the daemon sends).
    fn hafen_api_base64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o640
            });
            h.set_mtime(1_000_000_000);
            h.set_size(data.len() as u64);
            // Names as the daemon writes them, unchecked.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn untar_renames_and_merges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().to_str().expect("utf-8").to_string();
        let tar = tar_of(&[
            ("etc/", tar::EntryType::Directory, b"", None),
            (
                "etc/hosts",
                tar::EntryType::Regular,
                b"127.0.0.1 localhost\n",
                None,
            ),
            ("etc/link", tar::EntryType::Symlink, b"", Some("hosts")),
            ("etc/hard", tar::EntryType::Link, b"", Some("etc/hosts")),
        ]);
        untar(&tar[..], &dest, &[(b"etc".to_vec(), b"copy".to_vec())]).expect("unpacks");
        let copy = dir.path().join("copy");
        assert_eq!(
            std::fs::read_to_string(copy.join("hosts")).expect("hosts"),
            "127.0.0.1 localhost\n"
        );
        assert_eq!(
            std::fs::read_link(copy.join("link")).expect("link"),
            Path::new("hosts")
        );
        assert_eq!(
            std::fs::metadata(copy.join("hard")).expect("hard").ino(),
            std::fs::metadata(copy.join("hosts")).expect("hosts").ino()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(copy.join("hosts"))
                .expect("hosts")
                .permissions()
                .mode()
                & 0o7777,
            0o640
        );
        // Directory times are set last.
        assert_eq!(
            std::fs::metadata(&copy).expect("copy").mtime(),
            1_000_000_000
        );

        // A file over an existing directory is refused, as is the reverse.
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        let over = tar_of(&[("d", tar::EntryType::Regular, b"x", None)]);
        let e = untar(&over[..], &dest, &[]).expect_err("refused");
        assert!(e.starts_with("cannot overwrite directory"), "{e}");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        let over = tar_of(&[("f/", tar::EntryType::Directory, b"", None)]);
        let e = untar(&over[..], &dest, &[]).expect_err("refused");
        assert!(e.starts_with("cannot overwrite non-directory"), "{e}");
        // An existing file is replaced.
        let replace = tar_of(&[("f", tar::EntryType::Regular, b"new", None)]);
        untar(&replace[..], &dest, &[]).expect("unpacks");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("f")).expect("f"),
            "new"
        );
    }

    #[test]
    fn untar_stays_inside() {
        let outer = tempfile::tempdir().expect("tempdir");
        let dest_dir = outer.path().join("dest");
        std::fs::create_dir(&dest_dir).expect("mkdir");
        let dest = dest_dir.to_str().expect("utf-8").to_string();
        for (tar, what) in [
            (
                tar_of(&[("../evil", tar::EntryType::Regular, b"x", None)]),
                "dot-dot",
            ),
            (
                tar_of(&[("a/../../evil", tar::EntryType::Regular, b"x", None)]),
                "dot-dot inside",
            ),
            (
                tar_of(&[("l", tar::EntryType::Symlink, b"", Some("../../evil"))]),
                "symlink out",
            ),
            (
                tar_of(&[("h", tar::EntryType::Link, b"", Some("../evil"))]),
                "hard link out",
            ),
            (
                // An absolute symlink is kept (as docker does), but nothing
                // is written through it.
                tar_of(&[
                    ("up", tar::EntryType::Symlink, b"", Some("/")),
                    ("up/evil", tar::EntryType::Regular, b"x", None),
                ]),
                "through a symlink",
            ),
            (
                tar_of(&[
                    ("up2", tar::EntryType::Symlink, b"", Some("/")),
                    ("up2/new/evil", tar::EntryType::Regular, b"x", None),
                ]),
                "through a symlink, new directories",
            ),
        ] {
            assert!(untar(&tar[..], &dest, &[]).is_err(), "{what}");
        }
        assert!(!outer.path().join("evil").exists());
        assert!(!Path::new("/evil").exists());
        assert!(!Path::new("/new").exists());
    }

    fn names_of(tar: &[u8]) -> Vec<(String, Option<String>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn source_archives_are_named_for_the_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("a.txt"), "a").expect("write");
        std::fs::write(src.join("sub/b"), "b").expect("write");
        std::fs::hard_link(src.join("a.txt"), src.join("z-hard")).expect("link");
        std::os::unix::fs::symlink("a.txt", src.join("sym")).expect("symlink");
        let plan = |include: &str, rebase: Option<(&str, &str)>| TarPlan {
            source_dir: dir.path().to_path_buf(),
            include: include.into(),
            rebase_name: String::new(),
            rebase: rebase.map(|(f, t)| (f.as_bytes().to_vec(), t.as_bytes().to_vec())),
        };
        let tar = |p: &TarPlan| {
            let mut v = Vec::new();
            write_source_tar(p, &mut v).expect("tar");
            names_of(&v)
        };
        let n = |s: &str| (s.to_string(), None);
        // The directory itself, into an existing directory.
        assert_eq!(
            tar(&plan("src", None)),
            vec![
                n("src/"),
                n("src/a.txt"),
                n("src/sub/"),
                n("src/sub/b"),
                ("src/sym".into(), Some("a.txt".into())),
                ("src/z-hard".into(), Some("src/a.txt".into())),
            ]
        );
        // To a new name: entries and hard links renamed.
        assert_eq!(
            tar(&plan("src", Some(("src", "dst"))))[5],
            ("dst/z-hard".into(), Some("dst/a.txt".into()))
        );
        // Its contents (`src/.`).
        let contents = TarPlan {
            source_dir: src.clone(),
            ..plan(".", None)
        };
        let names = tar(&contents);
        assert_eq!(names[0], n("./"));
        assert_eq!(names[1], n("a.txt"));
        let contents_renamed = TarPlan {
            source_dir: src.clone(),
            ..plan(".", Some((".", "new")))
        };
        assert_eq!(tar(&contents_renamed)[..2], [n("new/"), n("new/a.txt")]);
        // One file.
        assert_eq!(tar(&plan("src/a.txt", None)), vec![n("src/a.txt")]);
        let file = TarPlan {
            source_dir: src.clone(),
            ..plan("a.txt", Some(("a.txt", "renamed")))
        };
        assert_eq!(tar(&file), vec![n("renamed")]);
        // A source given with a trailing slash through a symlink keeps the
        // name the user gave.
        let linked = TarPlan {
            source_dir: dir.path().to_path_buf(),
            include: "src".into(),
            rebase_name: "link".into(),
            rebase: None,
        };
        assert_eq!(tar(&linked)[0], n("link/"));
        assert!(write_source_tar(&plan("missing", None), Vec::new()).is_err());
    }

    #[test]
    fn destination_and_source_info() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf-8");
        std::fs::create_dir(dir.path().join("real")).expect("mkdir");
        std::os::unix::fs::symlink("real", dir.path().join("link")).expect("symlink");
        std::fs::write(dir.path().join("file"), "x").expect("write");
        let i = copy_info_destination_path(&format!("{d}/link")).expect("info");
        assert_eq!(i.path, format!("{d}/real"));
        assert!(i.exists && i.is_dir);
        let i = copy_info_destination_path(&format!("{d}/new")).expect("info");
        assert!(!i.exists);
        assert_eq!(
            copy_info_destination_path(&format!("{d}/nope/new")),
            Err(format!("stat {d}/nope: no such file or directory"))
        );
        assert_eq!(
            copy_info_destination_path(&format!("{d}/file/new")),
            Err(format!("lstat {d}/file/new: not a directory"))
        );
        // A source symlink is itself unless followed; through a trailing
        // slash it is the directory, named as given.
        let canon = std::fs::canonicalize(dir.path()).expect("canonical");
        let canon = canon.to_str().expect("utf-8");
        let i = copy_info_source_path(&format!("{d}/link"), false).expect("info");
        assert!(!i.is_dir);
        let i = copy_info_source_path(&format!("{d}/link"), true).expect("info");
        assert_eq!(
            (i.path.as_str(), i.is_dir),
            (format!("{canon}/real").as_str(), true)
        );
        assert_eq!(i.rebase_name, "link");
        let i = copy_info_source_path(&format!("{d}/link/"), false).expect("info");
        assert!(i.is_dir);
        assert_eq!(i.rebase_name, "link");
        assert_eq!(
            copy_info_source_path(&format!("{d}/missing"), false),
            Err(format!("lstat {canon}/missing: no such file or directory"))
        );
    }

    #[test]
    fn output_paths_are_checked() {
        assert_eq!(
            validate_output_path("/nonexistent-dir-hafen/x"),
            Err("invalid output path: directory \"/nonexistent-dir-hafen\" does not exist".into())
        );
        assert_eq!(
            validate_output_path("/dev/null"),
            Err("invalid output path: \"/dev/null\" must be a directory or a regular file: got a device".into())
        );
        assert!(validate_output_path("/tmp").is_ok());
        assert!(validate_output_path("-").is_ok());
    }

    #[test]
    fn stats_frames_and_streams() {
        assert_eq!(
            redraw_frame("A\nB\n"),
            "\x1b[HA\x1b[K\nB\x1b[K\n\x1b[K\n\x1b[J"
        );
        let mut pending = b"{\"a\":1}\n{\"b\":".to_vec();
        let v = take_json_values(&mut pending).expect("values");
        assert_eq!(v, vec![serde_json::json!({"a": 1})]);
        assert_eq!(pending, b"\n{\"b\":");
        pending.extend_from_slice(b"2}");
        assert_eq!(
            take_json_values(&mut pending).expect("values"),
            vec![serde_json::json!({"b": 2})]
        );
        assert!(take_json_values(&mut b"nonsense".to_vec()).is_err());
    }

    #[test]
    fn go_error_texts() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(
            go_err("lstat", "/x", &e),
            "lstat /x: no such file or directory"
        );
        assert_eq!(go_bool("False"), Ok(false));
        assert!(go_bool("yes").is_err());
    }
}
