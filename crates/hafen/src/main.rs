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
    let invoked_as = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    if invoked_as == "hafen-runc" {
        let args = runtime_cli::RuntimeArgs::parse_from(std::env::args_os());
        return runtime_cli::main(args);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Runtime(args) => runtime_cli::main(args),
    }
}
