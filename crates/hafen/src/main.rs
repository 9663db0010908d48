//! The `hafen` command.
//!
//! One binary with one subcommand per capability. Invoked as `hafen-runc`
//! (a symlink), it is the OCI runtime command line itself, so that other
//! engines can use it as their runtime (`podman --runtime hafen-runc`).

mod log;
mod runtime_cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hafen: build, ship, run and orchestrate containers.
#[derive(Debug, Parser)]
#[command(name = "hafen", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime (runc-compatible): run containers from OCI bundles.
    Runtime(runtime_cli::RuntimeArgs),
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let runc_mode = invoked_as == "hafen-runc";
    let runtime_args = if runc_mode {
        Some(&args[args.len().min(1)..])
    } else if args.get(1).is_some_and(|a| a == "runtime") {
        Some(&args[2..])
    } else {
        None
    };
    if runtime_args.is_some_and(runtime_cli::enters_containers) {
        // Returns only when the binary is already protected; otherwise it
        // re-executes hafen from a protected copy.
        if let Err(e) = hafen_runtime::self_exe::ensure_protected() {
            eprintln!("hafen: cannot protect the hafen binary from the container: {e}");
            return ExitCode::from(1);
        }
    }
    if runc_mode {
        return runtime_cli::main(runtime_cli::RuntimeArgs::parse_from(args));
    }
    match Cli::parse_from(args).command {
        Command::Runtime(args) => runtime_cli::main(args),
    }
}
