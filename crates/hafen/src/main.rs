//! The `hafen` command.
//!
//! One binary with one subcommand per capability. Invoked as `hafen-runc`
//! (a symlink), it is the OCI runtime command line itself, so that other
//! engines can use it as their runtime (`podman --runtime hafen-runc`).

mod client;
mod daemon;
mod log;
mod runtime_cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::{images, system};

/// hafen: build, ship, run and orchestrate containers.
#[derive(Debug, Parser)]
#[command(name = "hafen", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: client::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (or `stop`, `status` it).
    Daemon(daemon::DaemonArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove images.
    Rmi(images::RmiArgs),
    /// Make an image from a root filesystem tarball.
    Import(images::ImportArgs),
    /// Load images from a tar archive (Docker or OCI).
    Load(images::LoadArgs),
    /// Save images to a tar archive.
    Save(images::SaveArgs),
    /// Show the hafen version.
    Version(system::FormatArgs),
    /// Show system-wide information.
    Info(system::FormatArgs),
    /// Manage hafen.
    #[command(subcommand)]
    System(SystemCommand),
    /// Show events from the daemon.
    Events(system::EventsArgs),
    /// The OCI runtime (runc-compatible): run containers from OCI bundles.
    Runtime(runtime_cli::RuntimeArgs),
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Show images in detail.
    Inspect(images::InspectArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove images.
    #[command(visible_alias = "remove")]
    Rm(images::RmiArgs),
    /// Remove unused images.
    Prune(images::PruneArgs),
    /// Make an image from a root filesystem tarball.
    Import(images::ImportArgs),
    /// Load images from a tar archive.
    Load(images::LoadArgs),
    /// Save images to a tar archive.
    Save(images::SaveArgs),
}

#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// Show disk usage.
    Df(system::DfArgs),
    /// Show system-wide information.
    Info(system::FormatArgs),
    /// Show events from the daemon.
    Events(system::EventsArgs),
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
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // Docker's code for bad flags and arguments.
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let g = &cli.global;
    let result = match cli.command {
        Command::Runtime(args) => return runtime_cli::main(args),
        Command::Daemon(args) => return daemon::main(args),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(g, a),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(g, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => images::history(g, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(g, a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(g, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(g, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(g, a),
        Command::Version(a) => system::version(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(g, a),
        Command::System(SystemCommand::Df(a)) => system::df(g, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => system::events(g, a),
    };
    client::finish(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
