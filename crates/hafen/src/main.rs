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

use client::{build, containers, containers_more, create_flags, images, networks, system, volumes};

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
    /// Create and run a new container from an image.
    Run(create_flags::RunArgs),
    /// Create a new container.
    Create(create_flags::CreateArgs),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Attach to a running container's input and output.
    Attach(containers::AttachArgs),
    /// Pause all processes within containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within containers.
    Unpause(containers::NamesArgs),
    /// Return low-level information on containers or images.
    Inspect(containers::InspectArgs),
    /// Display the running processes of a container.
    Top(containers_more::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(containers_more::StatsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(containers_more::CpArgs),
    /// Create a new image from a container's changes.
    Commit(containers_more::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(containers_more::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(containers_more::ExportArgs),
    /// Rename a container.
    Rename(containers_more::RenameArgs),
    /// List port mappings or a specific mapping for the container.
    Port(containers_more::PortArgs),
    /// Update configuration of one or more containers.
    Update(containers_more::UpdateArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
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
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// Show the hafen version.
    Version(system::FormatArgs),
    /// Show system-wide information.
    Info(system::FormatArgs),
    /// Manage hafen.
    #[command(subcommand)]
    System(SystemCommand),
    /// Show events from the daemon.
    Events(system::EventsArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
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
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
}

#[derive(Debug, Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image.
    Run(create_flags::RunArgs),
    /// Create a new container.
    Create(create_flags::CreateArgs),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(containers::RmArgs),
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(containers::PsArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Attach to a running container's input and output.
    Attach(containers::AttachArgs),
    /// Pause all processes within containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within containers.
    Unpause(containers::NamesArgs),
    /// Display detailed information on containers.
    Inspect(containers::InspectArgs),
    /// Display the running processes of a container.
    Top(containers_more::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(containers_more::StatsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(containers_more::CpArgs),
    /// Create a new image from a container's changes.
    Commit(containers_more::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(containers_more::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(containers_more::ExportArgs),
    /// Rename a container.
    Rename(containers_more::RenameArgs),
    /// List port mappings or a specific mapping for the container.
    Port(containers_more::PortArgs),
    /// Update configuration of one or more containers.
    Update(containers_more::UpdateArgs),
    /// Remove all stopped containers.
    Prune(containers_more::PruneArgs),
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
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => containers::run(g, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            containers::create_cmd(g, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            containers::start(g, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => containers::stop(g, a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            containers::restart(g, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => containers::kill(g, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(g, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(g, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => containers::logs(g, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => containers::exec(g, a),
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => containers::wait(g, a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            containers::attach(g, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            containers::pause(g, a)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            containers::unpause(g, a)
        }
        Command::Inspect(a) => containers::inspect(g, a, true),
        Command::Container(ContainerCommand::Inspect(a)) => containers::inspect(g, a, false),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            containers_more::top(g, a)
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            containers_more::stats(g, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => containers_more::cp(g, a),
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            containers_more::commit(g, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            containers_more::diff(g, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            containers_more::export(g, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            containers_more::rename(g, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            containers_more::port(g, a)
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            containers_more::update(g, a)
        }
        Command::Container(ContainerCommand::Prune(a)) => containers_more::prune(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(g, a),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(g, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => images::history(g, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(g, a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(g, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(g, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(g, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(g, a),
        Command::Version(a) => system::version(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(g, a),
        Command::System(SystemCommand::Df(a)) => system::df(g, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => system::events(g, a),
        Command::Network(c) => networks::run(g, c),
        Command::Builder(c) => build::builder(g, c),
        Command::Volume(c) => volumes::run(g, c),
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
