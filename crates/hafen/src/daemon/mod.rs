//! `hafen daemon`: the engine behind the Docker Engine API on a unix
//! socket, in the foreground; `hafen daemon stop` and `status`.
//!
//! State: `--root` (persistent, `/var/lib/hafen`), `--run-root` (the pid
//! file and the default socket, `/run/hafen`). Settings come from the
//! command line, then the environment (`HAFEN_ROOT`, …), then the config
//! file (`/etc/hafen/daemon.json`, keys named like the flags).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

/// The default persistent state.
pub const DEFAULT_ROOT: &str = "/var/lib/hafen";
/// The default runtime state.
pub const DEFAULT_RUN_ROOT: &str = "/run/hafen";
/// The default config file.
const DEFAULT_CONFIG: &str = "/etc/hafen/daemon.json";

/// `hafen daemon`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DaemonArgs {
    #[command(subcommand)]
    command: Option<DaemonCommand>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum DaemonCommand {
    /// Stop the daemon (SIGTERM; it finishes what it is doing).
    Stop(Settings),
    /// Say whether the daemon runs, and where.
    Status(Settings),
}

/// Where the daemon keeps things and listens.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Persistent state.
    #[arg(long, env = "HAFEN_ROOT")]
    root: Option<PathBuf>,
    /// Runtime state (pid file, default socket).
    #[arg(long, env = "HAFEN_RUN_ROOT")]
    run_root: Option<PathBuf>,
    /// The socket to listen on (`unix:///run/hafen/hafen.sock`).
    #[arg(short = 'H', long, env = "HAFEN_HOST")]
    host: Option<String>,
    /// `debug`, `info`, `warn` or `error`.
    #[arg(long, env = "HAFEN_LOG_LEVEL")]
    log_level: Option<String>,
    /// A JSON config file.
    #[arg(long, env = "HAFEN_CONFIG")]
    config_file: Option<PathBuf>,
    /// `overlayfs` or `native` (default: overlayfs where it works).
    #[arg(long, env = "HAFEN_SNAPSHOTTER")]
    snapshotter: Option<String>,
}

/// The config file's keys.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    root: Option<PathBuf>,
    run_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    log_level: Option<String>,
    snapshotter: Option<String>,
    /// The default bridge's device.
    bridge: Option<String>,
    /// The default bridge's address and prefix (`172.17.0.1/16`).
    bip: Option<String>,
    mtu: Option<u32>,
    ip_masq: Option<bool>,
    ip_forward: Option<bool>,
    dns: Option<Vec<std::net::Ipv4Addr>>,
    dns_search: Option<Vec<String>>,
    dns_opts: Option<Vec<String>>,
}

/// Settings resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub socket: PathBuf,
    pub log_level: String,
    pub snapshotter: Option<String>,
    pub network: hafen_engine::networks::NetConfig,
}

/// `unix:///path` or a bare path → the path.
pub fn socket_of(host: &str) -> Result<PathBuf, String> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    Err(format!(
        "unsupported host {host:?}: hafen listens on unix sockets (unix:///path)"
    ))
}

impl Settings {
    /// Applies the config file under the flags and environment.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let path = self
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let file: FileConfig = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("config file {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.config_file.is_none() => {
                FileConfig::default()
            }
            Err(e) => return Err(format!("cannot read config file {}: {e}", path.display())),
        };
        let network = network_config(&file)?;
        let run_root = self
            .run_root
            .clone()
            .or(file.run_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
        let host = self
            .host
            .clone()
            .or_else(|| file.hosts.and_then(|h| h.into_iter().next()));
        let socket = match host {
            Some(h) => socket_of(&h)?,
            None => run_root.join("hafen.sock"),
        };
        Ok(Resolved {
            root: self
                .root
                .clone()
                .or(file.root)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            run_root,
            socket,
            log_level: self
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            snapshotter: self.snapshotter.clone().or(file.snapshotter),
            network,
        })
    }
}

/// The network keys of the config file.
fn network_config(file: &FileConfig) -> Result<hafen_engine::networks::NetConfig, String> {
    let mut n = hafen_engine::networks::NetConfig::default();
    if let Some(b) = &file.bridge {
        n.bridge = b.clone();
    }
    if let Some(bip) = &file.bip {
        let (ip, prefix) = bip
            .split_once('/')
            .and_then(|(ip, p)| Some((ip.parse().ok()?, p.parse::<u8>().ok().filter(|p| *p <= 30)?)))
            .ok_or_else(|| format!("config file: bip {bip:?} is not an address with a prefix length, like 172.17.0.1/16"))?;
        n.bip = Some((ip, prefix));
    }
    n.mtu = file.mtu;
    n.ip_masq = file.ip_masq.unwrap_or(true);
    n.ip_forward = file.ip_forward.unwrap_or(true);
    n.dns = file.dns.clone().unwrap_or_default();
    n.dns_search = file.dns_search.clone().unwrap_or_default();
    n.dns_options = file.dns_opts.clone().unwrap_or_default();
    Ok(n)
}

/// Runs `hafen daemon …`.
pub fn main(args: DaemonArgs) -> ExitCode {
    let result = match args.command {
        None => run(&args.settings),
        Some(DaemonCommand::Stop(s)) => stop(&s),
        Some(DaemonCommand::Status(s)) => return status(&s),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hafen daemon: {e}");
            ExitCode::from(125)
        }
    }
}

fn pid_file(r: &Resolved) -> PathBuf {
    r.run_root.join("hafen.pid")
}

/// Whether no daemon holds the run root's lock (so none runs there; a pid
/// file alone may be stale, and its pid reused by another process).
fn lock_free(r: &Resolved) -> bool {
    let Ok(f) = std::fs::File::open(r.run_root.join("hafen.lock")) else {
        return true;
    };
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok()
}

/// The daemon's pid, if one runs for these settings.
fn running_pid(r: &Resolved) -> Option<i32> {
    if lock_free(r) {
        return None;
    }
    let pid: i32 = std::fs::read_to_string(pid_file(r))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// Whether `pid` runs (a zombie, waiting for its parent to reap it, has
/// stopped).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn status(s: &Settings) -> ExitCode {
    let r = match s.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hafen daemon: {e}");
            return ExitCode::from(125);
        }
    };
    match running_pid(&r) {
        Some(pid) if std::os::unix::net::UnixStream::connect(&r.socket).is_ok() => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "hafen daemon is running (pid {pid}) on unix://{}, root {}",
                    r.socket.display(),
                    r.root.display()
                );
            }
            ExitCode::SUCCESS
        }
        _ => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "hafen daemon is not running (unix://{})",
                    r.socket.display()
                );
            }
            ExitCode::from(3)
        }
    }
}

fn stop(s: &Settings) -> Result<(), String> {
    let r = s.resolve()?;
    let Some(pid) = running_pid(&r) else {
        return Ok(());
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).ok_or("bad pid file")?,
        rustix::process::Signal::TERM,
    )
    .map_err(|e| format!("cannot stop the daemon (pid {pid}): {e}"))?;
    // Stopped when its lock is free (all its threads are gone).
    for _ in 0..3000 {
        if lock_free(&r) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(format!("the daemon (pid {pid}) did not stop within 30 s"))
}

/// A file held locked while the daemon runs: a second daemon for the same
/// run root or root refuses to start.
fn lock(path: &Path) -> Result<std::fs::File, String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        format!(
            "another hafen daemon is using {}: stop it first (hafen daemon stop)",
            path.parent().unwrap_or(path).display()
        )
    })?;
    Ok(f)
}

fn run(s: &Settings) -> Result<(), String> {
    let r = s.resolve()?;
    crate::log::init_daemon(&r.log_level)?;
    for dir in [&r.root, &r.run_root] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let _run_lock = lock(&r.run_root.join("hafen.lock"))?;
    let _root_lock = lock(&r.root.join("hafen.lock"))?;
    std::fs::write(pid_file(&r), std::process::id().to_string())
        .map_err(|e| format!("cannot write the pid file: {e}"))?;
    let engine = hafen_engine::Engine::open(hafen_engine::Config {
        root: r.root.clone(),
        run_root: r.run_root.clone(),
        snapshotter: r.snapshotter.clone(),
        debug: r.log_level == "debug",
        network: r.network.clone(),
    })
    .map_err(|e| e.to_string())?;
    let engine = Arc::new(engine);
    engine.start().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    let result = runtime.block_on(async {
        if let Some(parent) = r.socket.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // A socket left by a daemon that died: nobody answers on it.
        if std::os::unix::net::UnixStream::connect(&r.socket).is_err() {
            let _ = std::fs::remove_file(&r.socket);
        }
        let listener = tokio::net::UnixListener::bind(&r.socket)
            .map_err(|e| format!("cannot listen on unix://{}: {e}", r.socket.display()))?;
        // Root-equivalent: owner and group only.
        let _ = std::fs::set_permissions(&r.socket, std::fs::Permissions::from_mode(0o660));
        tracing::info!(
            "hafen daemon {} listening on unix://{} (root {}, snapshotter {})",
            hafen_engine::VERSION,
            r.socket.display(),
            r.root.display(),
            engine.images().snapshotter().name()
        );
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
            tokio::select! {
                _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
                _ = async { if let Some(i) = int.as_mut() { i.recv().await; } else { std::future::pending::<()>().await } } => {}
            }
            tracing::info!("shutting down");
        };
        let server = format!("hafen/{} (linux)", hafen_engine::VERSION);
        hafen_api::server::serve(listener, engine.clone(), &server, shutdown)
            .await
            .map_err(|e| format!("serving: {e}"))
    });
    let _ = std::fs::remove_file(&r.socket);
    let _ = std::fs::remove_file(pid_file(&r));
    // Requests still running finish on the blocking pool before this.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}
