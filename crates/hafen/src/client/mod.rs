//! The `hafen` CLI as a client of the daemon: docker's commands, flags and
//! output over the Docker Engine API.
//!
//! The daemon is found on `-H`, `$HAFEN_HOST`, `$DOCKER_HOST` or the
//! default socket; if nothing answers there, one is started in the
//! background (its log goes to `<run-root>/hafen-daemon.log`) and the
//! command goes on. A `$DOCKER_HOST` names somebody else's daemon, so
//! none is started there: that is an error, as with docker.

pub mod build;
pub mod containers;
pub mod containers_more;
pub mod create_flags;
pub mod format;
pub mod images;
pub mod networks;
pub mod stats_format;
pub mod system;
pub mod volumes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hafen_api::client::{Client, ClientError};

use crate::daemon;

/// How a command failed, with Docker's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The daemon said no (exit 1, as docker).
    #[error("{0}")]
    Api(#[from] ClientError),
    /// Bad arguments or a local failure (exit 1).
    #[error("{0}")]
    Failed(String),
    /// hafen itself could not work (no daemon; exit 125).
    #[error("{0}")]
    Hafen(String),
    /// A template that does not parse (exit 64 where docker uses it).
    #[error("{0}")]
    Template(#[from] format::FormatError),
    /// Done, with this exit code and nothing to print.
    #[error("")]
    Exit(u8),
}

impl CliError {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Api(ClientError::Connect { .. }) | CliError::Hafen(_) => 125,
            CliError::Api(_) | CliError::Failed(_) | CliError::Template(_) => 1,
            CliError::Exit(c) => *c,
        }
    }
}

/// Prints an error and turns it into the exit code.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("{text}");
            }
            ExitCode::from(e.code())
        }
    }
}

/// The client's global options.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The daemon's socket (`unix:///run/hafen/hafen.sock`).
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
}

/// The socket to talk to, and whether hafen may start a daemon there.
pub fn socket(global: &Global) -> Result<(PathBuf, bool), CliError> {
    let env = |name| std::env::var(name).ok().filter(|h: &String| !h.is_empty());
    if let Some(h) = global.host.clone().or_else(|| env("HAFEN_HOST")) {
        return Ok((daemon::socket_of(&h).map_err(CliError::Failed)?, true));
    }
    if let Some(h) = env("DOCKER_HOST") {
        return Ok((daemon::socket_of(&h).map_err(CliError::Failed)?, false));
    }
    let run_root = std::env::var_os("HAFEN_RUN_ROOT")
        .map_or_else(|| PathBuf::from(daemon::DEFAULT_RUN_ROOT), PathBuf::from);
    Ok((run_root.join("hafen.sock"), true))
}

/// A connected client on a small runtime.
pub struct Session {
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
}

impl Session {
    /// Connects (starting a daemon if none answers) and negotiates the
    /// API version.
    pub fn open(global: &Global) -> Result<Session, CliError> {
        let (socket, may_start) = socket(global)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Hafen(format!("hafen: cannot start: {e}")))?;
        let mut client = Client::new(&socket);
        match rt.block_on(client.negotiate()) {
            Ok(_) => {}
            Err(ClientError::Connect { .. }) if may_start => {
                start_daemon(&socket)?;
                rt.block_on(client.negotiate())?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Session { client, rt })
    }
}

impl Session {
    /// Ends the session without waiting for blocking work (a read of the
    /// terminal that will never end, once a container's output has).
    pub fn close(self) {
        self.rt.shutdown_background();
    }
}

/// Starts `hafen daemon` in the background for `socket` and waits until it
/// answers.
fn start_daemon(socket: &Path) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Hafen(format!("hafen: cannot find its own binary: {e}")))?;
    let run_root = std::env::var_os("HAFEN_RUN_ROOT")
        .map_or_else(|| PathBuf::from(daemon::DEFAULT_RUN_ROOT), PathBuf::from);
    std::fs::create_dir_all(&run_root).map_err(|e| {
        CliError::Hafen(format!(
            "hafen: no daemon answers on unix://{} and one cannot be started ({}: {e}); start one with 'hafen daemon'",
            socket.display(),
            run_root.display()
        ))
    })?;
    let log_path = run_root.join("hafen-daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| CliError::Hafen(format!("hafen: cannot open {}: {e}", log_path.display())))?;
    let err_log = log
        .try_clone()
        .map_err(|e| CliError::Hafen(format!("hafen: {e}")))?;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(exe)
        .arg("daemon")
        .arg("--host")
        .arg(format!("unix://{}", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        // Its own process group: a Ctrl-C meant for this command does not
        // reach the daemon.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Hafen(format!("hafen: cannot start the daemon: {e}")))?;
    for _ in 0..3000 {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            // Reaped by whoever inherits it; this process ends soon.
            drop(child);
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another daemon may have won the race for the socket.
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            let last = std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            // It lost to another daemon starting for the same roots: wait
            // for that one to answer.
            if last.contains("another hafen daemon") {
                return wait_for_socket(socket, &log_path);
            }
            return Err(CliError::Hafen(format!(
                "hafen: the daemon did not start ({status}): {last} (log: {})",
                log_path.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(CliError::Hafen(format!(
        "hafen: the daemon did not answer on unix://{} within 30 s (log: {})",
        socket.display(),
        log_path.display()
    )))
}

/// Waits for a daemon that another client started.
fn wait_for_socket(socket: &Path, log_path: &Path) -> Result<(), CliError> {
    for _ in 0..3000 {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(CliError::Hafen(format!(
        "hafen: the daemon did not answer on unix://{} within 30 s (log: {})",
        socket.display(),
        log_path.display()
    )))
}

/// Asks a yes/no question on stdout; only `y` or `Y` is yes.
pub fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout();
    let _ = write!(out, "{question} [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y")
}

/// Writes to stdout (a closed pipe ends quietly).
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}
