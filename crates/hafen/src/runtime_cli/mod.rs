//! `hafen runtime` (and `hafen-runc`): the OCI runtime command line, with
//! runc's commands, flags, output formats and exit codes, so that engines
//! written for runc (containerd, Podman) can drive hafen unchanged.
//!
//! Exit codes follow runc, not Docker: 0 success, 1 failure, 255 when `exec`
//! itself fails; `run` and foreground `exec` exit with the container
//! process's code (128+N when it was killed by signal N).

mod exec_process;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hafen_runtime::container::{self, CreateOptions, ExecOptions, RunOptions};
use hafen_runtime::{Error, Runtime};

use crate::log::{self, LogFormat};

/// The OCI runtime (runc-compatible command line).
#[derive(Debug, Parser)]
#[command(name = "hafen-runc", version = VERSION, about = "hafen's OCI runtime (runc-compatible)")]
pub struct RuntimeArgs {
    /// State directory for containers.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log line format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Take linux.cgroupsPath as systemd's slice:prefix:name.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility (rootless mode is detected).
    #[arg(long, value_name = "true|false|auto")]
    rootless: Option<String>,
    /// Accepted for compatibility; checkpointing is not supported.
    #[arg(long, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: RuntimeCommand,
}

/// `--version`: hafen's version and the runtime-spec version it implements.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.3.0");

#[cfg(test)]
mod tests {
    use super::enters_containers;

    #[test]
    fn commands_that_enter_containers() {
        let args = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert!(enters_containers(&args(&["create", "--bundle", "b", "id"])));
        assert!(enters_containers(&args(&[
            "--root", "/r", "--log", "create", "run"
        ])));
        assert!(enters_containers(&args(&[
            "--debug",
            "--root=/run",
            "exec",
            "id",
            "sh"
        ])));
        assert!(!enters_containers(&args(&["--root", "run", "state", "id"])));
        assert!(!enters_containers(&args(&["list"])));
        assert!(!enters_containers(&args(&[])));
    }

    #[test]
    fn version_names_the_implemented_spec() {
        let spec = hafen_oci::version::RUNTIME_SPEC_VERSION.to_string();
        assert!(super::VERSION.ends_with(&format!("spec: {spec}")));
    }
}

#[derive(Debug, Args, Clone)]
struct CreateFlags {
    /// The bundle directory (default: the current directory).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the terminal's master fd.
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// File to write the container's pid to.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra fds (after stdio) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
}

impl CreateFlags {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            console_to_caller: false,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum RuntimeCommand {
    /// Create a container from a bundle; its program waits for `start`.
    Create(CreateFlags),
    /// Start a created container's program.
    Start {
        /// The container id.
        id: String,
    },
    /// Print a container's state as JSON.
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        /// The container id.
        id: String,
        /// A signal name (TERM, SIGKILL, RTMIN+1) or number.
        #[arg(default_value = "SIGTERM", allow_negative_numbers = true)]
        signal: String,
    },
    /// Delete a container's resources.
    Delete {
        /// Kill the container first if it runs.
        #[arg(short, long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// Create and start a container, and wait for it in the foreground.
    Run {
        #[command(flatten)]
        create: CreateFlags,
        /// Return once the program started.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container after it exits.
        #[arg(long)]
        keep: bool,
        /// Do not become a subreaper for the container's orphans.
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// Run another process in a running container.
    Exec(Box<exec_process::ExecFlags>),
    /// List the processes of a container.
    Ps {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The container id.
        id: String,
        /// Arguments for ps (default: -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a container.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
    /// Show resource usage, once (--stats) or every interval.
    Events {
        /// Time between stats.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Print one stats record and exit.
        #[arg(long)]
        stats: bool,
        /// The container id.
        id: String,
    },
    /// Print what this runtime implements (JSON).
    Features,
    /// Write a default config.json for a new bundle.
    Spec {
        /// Where to write it (default: the current directory).
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// A configuration for an unprivileged user.
        #[arg(long)]
        rootless: bool,
    },
}

/// A command's outcome: an exit code, or an error with the exit code it gets.
type Outcome = Result<u8, (Error, u8)>;

fn fail(code: u8) -> impl FnOnce(Error) -> (Error, u8) {
    move |e| (e, code)
}

/// Runs a runtime command and returns the process's exit code.
pub fn main(args: RuntimeArgs) -> ExitCode {
    let logging = log::init(args.log.as_deref(), args.log_format, args.debug);
    let mut rt = Runtime::new(
        args.root
            .clone()
            .unwrap_or_else(hafen_runtime::default_root),
    );
    rt.systemd_cgroup = args.systemd_cgroup;
    match dispatch(&rt, args.command) {
        Ok(code) => ExitCode::from(code),
        Err((e, code)) => {
            report(&logging, &e.to_string());
            ExitCode::from(code)
        }
    }
}

/// Whether a runtime command line (the arguments after `runtime`, or after
/// `hafen-runc`) puts processes into a container: those commands must run
/// from a protected copy of the binary (see `hafen_runtime::self_exe`),
/// which is settled before anything else, even argument parsing.
pub fn enters_containers(args: &[std::ffi::OsString]) -> bool {
    let mut iter = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        match arg.as_ref() {
            "--root" | "--log" | "--log-format" | "--rootless" | "--criu" => {
                iter.next();
            }
            flag if flag.starts_with('-') => {}
            command => return matches!(command, "create" | "run" | "exec"),
        }
    }
    false
}

fn report(logging: &log::Logging, message: &str) {
    if logging.to_file {
        log::error(message);
    }
    eprintln!("hafen: {message}");
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn dispatch(rt: &Runtime, command: RuntimeCommand) -> Outcome {
    match command {
        RuntimeCommand::Create(flags) => {
            container::create(rt, &flags.options()).map_err(fail(1))?;
            Ok(0)
        }
        RuntimeCommand::Start { id } => container::start(rt, &id).map(|()| 0).map_err(fail(1)),
        RuntimeCommand::State { id } => {
            let c = rt.load(&id).map_err(fail(1))?;
            out(&serde_json::to_string_pretty(&c.document()).unwrap_or_default());
            Ok(0)
        }
        RuntimeCommand::Kill { all, id, signal } => {
            let signal = hafen_runtime::signal::parse(&signal).map_err(|e| (e.into(), 1))?;
            container::kill(rt, &id, signal, all)
                .map(|()| 0)
                .map_err(fail(1))
        }
        RuntimeCommand::Delete { force, id } => match container::delete(rt, &id, force) {
            Err(Error::NotFound(_)) if force => Ok(0),
            other => other.map(|()| 0).map_err(fail(1)),
        },
        RuntimeCommand::Run {
            create,
            detach,
            keep,
            no_subreaper,
        } => {
            if !detach && create.console_socket.is_some() {
                return Err((Error::UnneededConsoleSocket, 1));
            }
            let opts = RunOptions {
                create: create.options(),
                detach,
                keep,
                no_subreaper,
            };
            let code = container::run(rt, &opts).map_err(fail(1))?;
            Ok(u8::try_from(code).unwrap_or(255))
        }
        RuntimeCommand::Exec(flags) => {
            let process = flags.process(rt).map_err(fail(255))?;
            let opts = ExecOptions {
                id: flags.id.clone(),
                process,
                console_socket: flags.console_socket.clone(),
                pid_file: flags.pid_file.clone(),
                detach: flags.detach,
                preserve_fds: flags.preserve_fds,
                ignore_paused: flags.ignore_paused,
            };
            let done = container::exec(rt, &opts).map_err(fail(255))?;
            Ok(done.exit_code.map_or(0, |c| u8::try_from(c).unwrap_or(255)))
        }
        RuntimeCommand::Ps {
            format,
            id,
            ps_args,
        } => {
            match format {
                Format::Json => {
                    let pids = container::ps_json(rt, &id).map_err(fail(1))?;
                    let json = if pids.is_empty() {
                        "null".to_string()
                    } else {
                        serde_json::to_string(&pids).unwrap_or_default()
                    };
                    out(&format!("{json}\n"));
                }
                Format::Table => out(&container::ps_table(rt, &id, &ps_args).map_err(fail(1))?),
            }
            Ok(0)
        }
        RuntimeCommand::List { format, quiet } => {
            let containers = rt
                .list(|id, e| eprintln!("hafen: load container {id}: {e}"))
                .map_err(fail(1))?;
            out(&table::list(&containers, format == Format::Json, quiet));
            Ok(0)
        }
        RuntimeCommand::Pause { id } => container::pause(rt, &id).map(|()| 0).map_err(fail(1)),
        RuntimeCommand::Resume { id } => container::resume(rt, &id).map(|()| 0).map_err(fail(1)),
        RuntimeCommand::Events {
            interval,
            stats,
            id,
        } => {
            if stats {
                out(&format!(
                    "{}\n",
                    container::stats_event(rt, &id).map_err(fail(1))?
                ));
                return Ok(0);
            }
            if interval.is_zero() {
                return Err((
                    Error::WrongState("duration interval must be greater than 0".into()),
                    1,
                ));
            }
            container::events(rt, &id, interval, |line| {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .is_ok()
            })
            .map_err(fail(1))?;
            Ok(0)
        }
        RuntimeCommand::Features => {
            let doc = hafen_runtime::features::document();
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            let _ = serde::Serialize::serialize(&doc, &mut ser);
            out(&format!("{}\n", String::from_utf8_lossy(&buf)));
            Ok(0)
        }
        RuntimeCommand::Spec { bundle, rootless } => {
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err((
                    Error::WrongState(format!("File {} exists. Remove it first", path.display())),
                    1,
                ));
            }
            let spec = if rootless {
                hafen_runtime::spec_default::rootless_spec(
                    rustix::process::geteuid().as_raw(),
                    rustix::process::getegid().as_raw(),
                )
            } else {
                hafen_runtime::spec_default::default_spec()
            };
            std::fs::write(&path, hafen_runtime::spec_default::to_text(&spec)).map_err(|e| {
                (
                    Error::Io {
                        what: format!("cannot write {}", path.display()),
                        source: e,
                    },
                    1,
                )
            })?;
            Ok(0)
        }
    }
}
