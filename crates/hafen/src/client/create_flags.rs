//! `hafen run` and `hafen create`: docker's flags, and their translation
//! into the body of `POST /containers/create` as the docker CLI 28 makes it
//! (`cli/command/container/opts.go`, `parse()`, and the few lines of
//! `run.go`/`create.go` around it).
//!
//! The flags are kept as typed; [`create_body`] checks and converts them,
//! so that a bad value gives docker's message (printed, exit 125) instead of
//! clap's. Flag parsing stops at the image: everything after it is the
//! command (`run [OPTIONS] IMAGE [COMMAND] [ARG...]`).
//!
//! Where hafen departs from the docker CLI, on purpose:
//! - Without `--network`, `NetworkMode` stays empty (docker sends
//!   `default`): the daemon decides.
//! - Checks that docker leaves to the daemon are made here too, in the
//!   daemon's words: a retry count with a restart policy other than
//!   `on-failure`, an unknown restart policy, `--memory-swap` against
//!   `--memory`.
//! - Values docker passes through Go maps (`-e` after its proxy merge, `-v`)
//!   keep the order they were given in, not a random one.
//! - The proxy settings of `~/.docker/config.json` are not added to `Env`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;

use clap::ArgAction;
use hafen_api::models::{
    ContainerConfig, ContainerCreate, DeviceMapping, HealthConfig, HostConfig, LogConfig,
    MountSpec, RestartPolicy, Ulimit,
};
use serde_json::{Map, Value, json};

/// The flags `docker run` and `docker create` share (and the three only
/// `run` has: `-d`, `--detach-keys`, `--sig-proxy`).
///
/// Use it through [`RunArgs`] or [`CreateArgs`]: they turn clap's `-h`
/// help off (`-h` is `--hostname`) and stop flag parsing at the image.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long, allow_hyphen_values = true)]
    pub attach: Vec<String>,
    /// Run container in background and print container ID (run only).
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub detach: bool,
    /// Override the key sequence for detaching a container (run only).
    #[arg(long, allow_hyphen_values = true)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process (run only; default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = go_bool, action = ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: Option<bool>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub tty: bool,
    /// Automatically remove the container and its anonymous volumes when it exits.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub rm: bool,
    /// Set environment variables (`KEY=value`, or `KEY` to take it from here).
    #[arg(short = 'e', long, allow_hyphen_values = true)]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long, allow_hyphen_values = true)]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long, allow_hyphen_values = true)]
    pub workdir: Option<String>,
    /// Username or UID (format: `<name|uid>[:<group|gid>]`).
    #[arg(short = 'u', long, allow_hyphen_values = true)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image (`""` resets it).
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long, allow_hyphen_values = true)]
    pub hostname: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub read_only: bool,
    /// Memory limit (`512m`, `1g`, …).
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: `-1` to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (a decimal).
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (`0-3`, `0,1`).
    #[arg(long, allow_hyphen_values = true)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (`0-3`, `0,1`).
    #[arg(long, allow_hyphen_values = true)]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Ulimit options (`name=soft[:hard]`).
    #[arg(long, allow_hyphen_values = true)]
    pub ulimit: Vec<String>,
    /// Restart policy to apply when a container exits (`no`, `always`,
    /// `unless-stopped`, `on-failure[:N]`).
    #[arg(long, allow_hyphen_values = true)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = go_bool, action = ArgAction::Set, value_name = "BOOL")]
    pub init: Option<bool>,
    /// Set meta data on a container.
    #[arg(short = 'l', long, allow_hyphen_values = true)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long, allow_hyphen_values = true)]
    pub label_file: Vec<String>,
    /// Signal to stop the container.
    #[arg(long, allow_hyphen_values = true)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Command to run to check health.
    #[arg(long, allow_hyphen_values = true)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub no_healthcheck: bool,
    /// Add Linux capabilities.
    #[arg(long, allow_hyphen_values = true)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long, allow_hyphen_values = true)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub privileged: bool,
    /// Security options.
    #[arg(long, allow_hyphen_values = true)]
    pub security_opt: Vec<String>,
    /// Add a host device to the container (`host[:container[:perms]]`).
    #[arg(long, allow_hyphen_values = true)]
    pub device: Vec<String>,
    /// Mount a tmpfs directory (`path[:options]`).
    #[arg(long, allow_hyphen_values = true)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long, allow_hyphen_values = true)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long, allow_hyphen_values = true)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long, allow_hyphen_values = true)]
    pub volumes_from: Vec<String>,
    /// Logging driver for the container.
    #[arg(long, allow_hyphen_values = true)]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long, allow_hyphen_values = true)]
    pub log_opt: Vec<String>,
    /// Connect a container to a network.
    #[arg(long, alias = "net", allow_hyphen_values = true)]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container.
    #[arg(long, alias = "net-alias", allow_hyphen_values = true)]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long, allow_hyphen_values = true)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long, allow_hyphen_values = true)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long, allow_hyphen_values = true)]
    pub mac_address: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM", allow_hyphen_values = true)]
    pub platform: Option<String>,
    /// Pull image before running (`always`, `missing`, `never`).
    #[arg(long, allow_hyphen_values = true)]
    pub pull: Option<String>,
    /// Suppress the pull output.
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub quiet: bool,
    /// Add a custom host-to-IP mapping (`host:ip`).
    #[arg(long, allow_hyphen_values = true)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long, allow_hyphen_values = true)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long, allow_hyphen_values = true)]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long, alias = "dns-opt", allow_hyphen_values = true)]
    pub dns_option: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long, allow_hyphen_values = true)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long, allow_hyphen_values = true)]
    pub expose: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long, allow_hyphen_values = true)]
    pub shm_size: Option<String>,
    /// Sysctl options.
    #[arg(long, allow_hyphen_values = true)]
    pub sysctl: Vec<String>,
    /// Add additional groups to join.
    #[arg(long, allow_hyphen_values = true)]
    pub group_add: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Disable OOM Killer.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
        default_value = "false", value_parser = go_bool, action = ArgAction::Set,
        hide_default_value = true, value_name = "BOOL")]
    pub oom_kill_disable: bool,
    /// PID namespace to use.
    #[arg(long, allow_hyphen_values = true)]
    pub pid: Option<String>,
    /// IPC mode to use.
    #[arg(long, allow_hyphen_values = true)]
    pub ipc: Option<String>,
    /// UTS namespace to use.
    #[arg(long, allow_hyphen_values = true)]
    pub uts: Option<String>,
    /// User namespace to use.
    #[arg(long, allow_hyphen_values = true)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (`host`|`private`).
    #[arg(long, allow_hyphen_values = true)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long, allow_hyphen_values = true)]
    pub cgroup_parent: Option<String>,
    /// Runtime to use for this container.
    #[arg(long, allow_hyphen_values = true)]
    pub runtime: Option<String>,
    /// Write the container ID to the file.
    #[arg(long, allow_hyphen_values = true)]
    pub cidfile: Option<String>,
}

impl CreateFlags {
    /// `--pull`, `missing` when not given.
    pub fn pull_policy(&self) -> &str {
        self.pull.as_deref().unwrap_or("missing")
    }

    /// `--sig-proxy`, true when not given.
    pub fn sig_proxy(&self) -> bool {
        self.sig_proxy.unwrap_or(true)
    }

    /// Refuses the flags only `run` has (for `create`), as docker's flag
    /// parser would.
    pub fn reject_run_only(&self) -> Result<(), FlagError> {
        if self.detach {
            return Err(FlagError::UnknownFlag("--detach"));
        }
        if self.detach_keys.is_some() {
            return Err(FlagError::UnknownFlag("--detach-keys"));
        }
        if self.sig_proxy.is_some() {
            return Err(FlagError::UnknownFlag("--sig-proxy"));
        }
        Ok(())
    }
}

/// `hafen run [OPTIONS] IMAGE [COMMAND] [ARG...]`.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true, args_override_self = true)]
pub struct RunArgs {
    /// The flags.
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Print usage.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// The image, then the command and its arguments. One positional list,
    /// so that clap stops reading flags at the image.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

impl RunArgs {
    /// The image as given.
    pub fn image(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }

    /// The command after the image (empty: the image's).
    pub fn command(&self) -> &[String] {
        self.args.get(1..).unwrap_or(&[])
    }

    /// The create body for these arguments.
    pub fn body(
        &self,
        env_lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ContainerCreate, FlagError> {
        create_body(&self.flags, self.image(), self.command(), env_lookup)
    }
}

/// `hafen create [OPTIONS] IMAGE [COMMAND] [ARG...]`.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true, args_override_self = true)]
pub struct CreateArgs {
    /// The flags (`-d`, `--detach-keys` and `--sig-proxy` are refused by
    /// [`CreateArgs::body`]).
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Print usage.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// The image, then the command and its arguments.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

impl CreateArgs {
    /// The image as given.
    pub fn image(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }

    /// The command after the image (empty: the image's).
    pub fn command(&self) -> &[String] {
        self.args.get(1..).unwrap_or(&[])
    }

    /// The create body for these arguments (the run-only flags refused).
    pub fn body(
        &self,
        env_lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ContainerCreate, FlagError> {
        self.flags.reject_run_only()?;
        create_body(&self.flags, self.image(), self.command(), env_lookup)
    }
}

/// Why the flags make no container, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A value that does not parse (pflag's wording).
    #[error(
        "invalid argument {} for {} flag: {reason}",
        go_quote(value),
        go_quote(flag)
    )]
    InvalidArgument {
        /// `-m, --memory`, `--mount`, ….
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag this command does not have.
    #[error("unknown flag: {0}")]
    UnknownFlag(&'static str),
    /// `--pull` with another value.
    #[error("invalid pull option: '{0}': must be one of \"always\", \"missing\" or \"never\"")]
    Pull(String),
    /// Options that cannot go together.
    #[error("conflicting options: {0}")]
    Conflict(&'static str),
    /// `--no-healthcheck` with a `--health-*` option.
    #[error("--no-healthcheck conflicts with --health-* options")]
    HealthConflict,
    /// A negative healthcheck setting.
    #[error("{0} cannot be negative")]
    Negative(&'static str),
    /// `--pid`, `--uts`, `--userns`, `--cgroupns` with a value docker refuses.
    #[error("{flag}: invalid {kind} mode")]
    Mode {
        /// The flag.
        flag: &'static str,
        /// `PID`, `UTS`, `USER`, `CGROUP`.
        kind: &'static str,
    },
    /// `-v ""`.
    #[error("invalid empty volume spec")]
    EmptyVolume,
    /// A `-v` that does not parse.
    #[error("invalid spec: {spec}: {reason}")]
    Volume {
        /// The `-v` value.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `-p` or `--expose` that does not parse (nat's wording).
    #[error("{0}")]
    Port(String),
    /// A `--device` that does not parse.
    #[error("{0}")]
    Device(String),
    /// An `--env-file` or `--label-file` that cannot be opened.
    #[error("open {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// An `--env-file` or `--label-file` that does not parse (docker says
    /// "env file" for both).
    #[error("invalid env file ({path}): {reason}")]
    KvFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--restart` that does not parse, or that the daemon refuses.
    #[error("{0}")]
    Restart(String),
    /// `--log-opt` with the `none` driver.
    #[error("invalid logging opts for driver {0}")]
    LogOpts(String),
    /// A `--security-opt` without a value.
    #[error("Invalid --security-opt: {}", go_quote(.0))]
    SecurityOpt(String),
    /// A `seccomp=FILE` that cannot be read or is no JSON.
    #[error("{what} seccomp profile ({path}) failed: {reason}")]
    Seccomp {
        /// `opening` or `compacting json for`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `--memory-swap` against `--memory` (the daemon's checks).
    #[error("{0}")]
    Memory(&'static str),
    /// The same network twice.
    #[error("network {} is specified multiple times", go_quote(.0))]
    Network(String),
    /// A network endpoint option that does not parse.
    #[error("{0}")]
    Invalid(String),
}

/// The body of `POST /containers/create` for `docker run`/`docker create`
/// with these flags, image and command; `env_lookup` reads the CLI's
/// environment (for `-e KEY` and `KEY` lines of `--env-file`).
///
/// With `flags.detach` (run only), nothing is attached, as `docker run -d`.
/// Files named by `--env-file`, `--label-file` and `--security-opt
/// seccomp=FILE` are read here; relative `-v`/`--mount` sources starting
/// with `.` are made absolute against the current directory.
pub fn create_body(
    flags: &CreateFlags,
    image: &str,
    command: &[String],
    env_lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerCreate, FlagError> {
    // What pflag checks while it reads the command line.
    let attach = flags
        .attach
        .iter()
        .map(|a| {
            let lower = a.to_lowercase();
            if matches!(lower.as_str(), "stdin" | "stdout" | "stderr") {
                Ok(lower)
            } else {
                Err(invalid(
                    "-a, --attach",
                    a,
                    "valid streams are STDIN, STDOUT and STDERR",
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let flag_env = flag_env(&flags.env, env_lookup)?;
    for l in &flags.label {
        validate_label(l)?;
    }
    let stop_timeout = opt_int(&flags.stop_timeout, "--stop-timeout")?;
    let mut sysctls = BTreeMap::new();
    for s in &flags.sysctl {
        let (k, v) = validate_sysctl(s)?;
        sysctls.insert(k, v);
    }
    let mut ulimits = BTreeMap::new();
    for u in &flags.ulimit {
        let limit = parse_ulimit(u).map_err(|reason| invalid("--ulimit", u, reason))?;
        ulimits.insert(limit.name.clone(), limit);
    }
    let extra_hosts = flags
        .add_host
        .iter()
        .map(|h| validate_extra_host(h).map_err(|reason| invalid("--add-host", h, reason)))
        .collect::<Result<Vec<_>, _>>()?;
    let dns = flags
        .dns
        .iter()
        .map(|d| validate_ip(d).map_err(|reason| invalid("--dns", d, reason)))
        .collect::<Result<Vec<_>, _>>()?;
    let dns_search = flags
        .dns_search
        .iter()
        .map(|d| validate_dns_search(d).map_err(|reason| invalid("--dns-search", d, reason)))
        .collect::<Result<Vec<_>, _>>()?;
    let mounts = flags
        .mount
        .iter()
        .map(|m| parse_mount(m).map_err(|reason| invalid("--mount", m, reason)))
        .collect::<Result<Vec<_>, _>>()?;
    let health_interval = opt_duration(&flags.health_interval, "--health-interval")?;
    let health_timeout = opt_duration(&flags.health_timeout, "--health-timeout")?;
    let health_start_period = opt_duration(&flags.health_start_period, "--health-start-period")?;
    let health_start_interval =
        opt_duration(&flags.health_start_interval, "--health-start-interval")?;
    let health_retries = opt_int(&flags.health_retries, "--health-retries")?.unwrap_or(0);
    let cpu_period = opt_int(&flags.cpu_period, "--cpu-period")?.unwrap_or(0);
    let cpu_quota = opt_int(&flags.cpu_quota, "--cpu-quota")?.unwrap_or(0);
    let cpu_shares = opt_int(&flags.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0);
    let nano_cpus = match &flags.cpus {
        Some(c) => parse_cpus(c).map_err(|reason| invalid("--cpus", c, reason))?,
        None => 0,
    };
    let memory = opt_size(&flags.memory, "-m, --memory")?;
    let memory_reservation = opt_size(&flags.memory_reservation, "--memory-reservation")?;
    let memory_swap = match flags.memory_swap.as_deref() {
        None => 0,
        Some("-1") => -1,
        Some(s) => ram_in_bytes(s).map_err(|reason| invalid("--memory-swap", s, reason))?,
    };
    let oom_score_adj = opt_int(&flags.oom_score_adj, "--oom-score-adj")?.unwrap_or(0);
    let pids_limit = opt_int(&flags.pids_limit, "--pids-limit")?.unwrap_or(0);
    let shm_size = opt_size(&flags.shm_size, "--shm-size")?;

    // runRun / runCreate.
    let pull = flags.pull_policy();
    if !matches!(pull, "always" | "missing" | "never" | "") {
        return Err(FlagError::Pull(pull.to_string()));
    }

    // parse().
    let mut attach_stdin = attach.iter().any(|a| a == "stdin");
    let mut attach_stdout = attach.iter().any(|a| a == "stdout");
    let mut attach_stderr = attach.iter().any(|a| a == "stderr");
    if flags.interactive {
        attach_stdin = true;
    }
    if attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }

    let mut binds = Vec::new();
    let mut volumes = BTreeMap::new();
    let mut seen = Vec::new();
    for spec in &flags.volume {
        if seen.contains(&spec) {
            continue;
        }
        seen.push(spec);
        let parsed = parse_volume_spec(spec)?;
        if parsed.source.is_empty() {
            volumes.insert(spec.clone(), json!({}));
            continue;
        }
        let mut bind = spec.clone();
        if parsed.bind
            && let Some((host, target)) = spec.split_once(':')
        {
            let host = if !host.starts_with('/') && host.starts_with('.') {
                absolute(host)
            } else {
                host.to_string()
            };
            bind = format!("{host}:{target}");
        }
        binds.push(bind);
    }

    let mut tmpfs = BTreeMap::new();
    for t in &flags.tmpfs {
        let (k, v) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(k.to_string(), v.to_string());
    }

    let cmd = (!command.is_empty()).then(|| command.to_vec());
    let entrypoint = flags.entrypoint.as_ref().map(|e| vec![e.clone()]);

    let (mut exposed, port_bindings) = parse_publish(&flags.publish)?;
    for e in &flags.expose {
        expose(e, &mut exposed)?;
    }

    let devices = flags
        .device
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<Vec<_>, _>>()?;

    let mut env = Vec::new();
    for f in &flags.env_file {
        env.extend(read_kv_file(f, Some(env_lookup))?);
    }
    env.extend(flag_env);

    let mut label_lines = Vec::new();
    for f in &flags.label_file {
        label_lines.extend(read_kv_file(f, None)?);
    }
    label_lines.extend(flags.label.iter().cloned());
    let labels: BTreeMap<String, String> = label_lines
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();

    let pid = flags.pid.clone().unwrap_or_default();
    if !(pid.is_empty()
        || pid == "host"
        || pid
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty()))
    {
        return Err(FlagError::Mode {
            flag: "--pid",
            kind: "PID",
        });
    }
    let uts = flags.uts.clone().unwrap_or_default();
    if !(uts.is_empty() || uts == "host") {
        return Err(FlagError::Mode {
            flag: "--uts",
            kind: "UTS",
        });
    }
    let userns = flags.userns.clone().unwrap_or_default();
    if !(userns.is_empty() || userns == "host") {
        return Err(FlagError::Mode {
            flag: "--userns",
            kind: "USER",
        });
    }
    let cgroupns = flags.cgroupns.clone().unwrap_or_default();
    if !matches!(cgroupns.as_str(), "" | "private" | "host") {
        return Err(FlagError::Mode {
            flag: "--cgroupns",
            kind: "CGROUP",
        });
    }

    let restart_policy = parse_restart(flags.restart.as_deref().unwrap_or("no"))?;

    let log_driver = flags.log_driver.clone().unwrap_or_default();
    if log_driver == "none" && !flags.log_opt.is_empty() {
        return Err(FlagError::LogOpts(log_driver));
    }
    let log_opts: BTreeMap<String, String> = flags
        .log_opt
        .iter()
        .map(|o| {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();

    let security = security_opts(&flags.security_opt)?;

    let have_health = flags.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || health_interval != 0
        || health_timeout != 0
        || health_start_period != 0
        || health_retries != 0
        || health_start_interval != 0;
    let healthcheck = if flags.no_healthcheck {
        if have_health {
            return Err(FlagError::HealthConflict);
        }
        Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..HealthConfig::default()
        })
    } else if have_health {
        let test = flags
            .health_cmd
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]);
        for (value, flag) in [
            (health_interval, "--health-interval"),
            (health_timeout, "--health-timeout"),
            (health_retries, "--health-retries"),
            (health_start_period, "--health-start-period"),
            (health_start_interval, "--health-start-interval"),
        ] {
            if value < 0 {
                return Err(FlagError::Negative(flag));
            }
        }
        Some(HealthConfig {
            test,
            interval: health_interval,
            timeout: health_timeout,
            start_period: health_start_period,
            start_interval: health_start_interval,
            retries: health_retries,
        })
    } else {
        None
    };

    if flags.rm && !matches!(restart_policy.name.as_str(), "" | "no") {
        return Err(FlagError::Conflict(
            "cannot specify both --restart and --rm",
        ));
    }

    let mut stdin_once = flags.interactive && attach_stdin;

    let (network_mode, mut networking_config) = networks(&flags.network)?;
    // --ip, --network-alias and --mac-address go to the first network's
    // endpoint (`default` without --network), as docker sends them.
    let mut endpoint = Map::new();
    if let Some(ip) = flags.ip.as_deref().filter(|ip| !ip.is_empty()) {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(FlagError::Invalid(format!("invalid IPv4 address: {ip}")));
        }
        endpoint.insert("IPAMConfig".into(), json!({"IPv4Address": ip}));
    }
    if let Some(ip6) = flags.ip6.as_deref().filter(|ip| !ip.is_empty()) {
        return Err(FlagError::Invalid(format!(
            "invalid argument \"{ip6}\" for \"--ip6\" flag: hafen's networks are IPv4 only"
        )));
    }
    if !flags.network_alias.is_empty() {
        endpoint.insert("Aliases".into(), json!(flags.network_alias));
    }
    if let Some(mac) = flags.mac_address.as_deref().filter(|m| !m.is_empty()) {
        endpoint.insert("MacAddress".into(), json!(mac));
    }
    if !endpoint.is_empty() {
        let key = if network_mode.is_empty() {
            "default".to_string()
        } else {
            network_mode.clone()
        };
        let cfg = networking_config.get_or_insert_with(|| json!({"EndpointsConfig": {}}));
        if let Some(eps) = cfg
            .get_mut("EndpointsConfig")
            .and_then(Value::as_object_mut)
        {
            let entry = eps.entry(key).or_insert_with(|| json!({}));
            if let Some(e) = entry.as_object_mut() {
                e.extend(endpoint);
            }
        }
    }

    // runContainer: `-d` attaches nothing.
    if flags.detach {
        if !attach.is_empty() {
            return Err(FlagError::Conflict(
                "cannot specify both --attach and --detach",
            ));
        }
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
        stdin_once = false;
    }

    // What the daemon would refuse.
    check_restart(&restart_policy)?;
    if memory > 0 && memory_swap > 0 && memory_swap < memory {
        return Err(FlagError::Memory(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if memory == 0 && memory_swap > 0 {
        return Err(FlagError::Memory(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }

    let config = ContainerConfig {
        hostname: flags.hostname.clone().unwrap_or_default(),
        user: flags.user.clone().unwrap_or_default(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: (!exposed.is_empty()).then(|| {
            exposed
                .into_iter()
                .map(|p| (p, json!({})))
                .collect::<BTreeMap<_, _>>()
        }),
        tty: flags.tty,
        open_stdin: flags.interactive,
        stdin_once,
        env,
        cmd,
        healthcheck,
        image: image.to_string(),
        volumes: Some(volumes),
        working_dir: flags.workdir.clone().unwrap_or_default(),
        entrypoint,
        labels,
        stop_signal: flags.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_timeout,
        ..ContainerConfig::default()
    };
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        container_id_file: flags.cidfile.clone().unwrap_or_default(),
        log_config: LogConfig {
            kind: log_driver,
            config: log_opts,
        },
        network_mode,
        port_bindings: Some(port_bindings),
        restart_policy,
        auto_remove: flags.rm,
        volumes_from: (!flags.volumes_from.is_empty()).then(|| flags.volumes_from.clone()),
        mounts: (!mounts.is_empty()).then_some(mounts),
        cap_add: (!flags.cap_add.is_empty()).then(|| flags.cap_add.clone()),
        cap_drop: (!flags.cap_drop.is_empty()).then(|| flags.cap_drop.clone()),
        cgroupns_mode: cgroupns,
        dns: Some(dns),
        dns_options: Some(flags.dns_option.clone()),
        dns_search: Some(dns_search),
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        group_add: (!flags.group_add.is_empty()).then(|| flags.group_add.clone()),
        ipc_mode: flags.ipc.clone().unwrap_or_default(),
        oom_score_adj,
        pid_mode: pid,
        privileged: flags.privileged,
        publish_all_ports: flags.publish_all,
        readonly_rootfs: flags.read_only,
        security_opt: security.opts,
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        uts_mode: uts,
        userns_mode: userns,
        shm_size,
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        runtime: flags.runtime.clone().unwrap_or_default(),
        init: flags.init,
        cpu_shares,
        memory,
        cgroup_parent: flags.cgroup_parent.clone().unwrap_or_default(),
        cpu_period,
        cpu_quota,
        cpuset_cpus: flags.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: flags.cpuset_mems.clone().unwrap_or_default(),
        devices: Some(devices),
        memory_reservation,
        memory_swap,
        memory_swappiness: Some(-1),
        nano_cpus,
        oom_kill_disable: Some(flags.oom_kill_disable),
        pids_limit: Some(pids_limit),
        ulimits: Some(ulimits.into_values().collect()),
        masked_paths: security.masked_paths,
        readonly_paths: security.readonly_paths,
        ..HostConfig::default()
    };
    Ok(ContainerCreate {
        config,
        host_config,
        networking_config,
    })
}

// ---------------------------------------------------------------- helpers

/// A pflag "invalid argument" error.
fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::InvalidArgument {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Go's `strconv.Quote` (close enough: `"`, `\` and control characters
/// escaped).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A bool as Go's `strconv.ParseBool` reads it (for clap).
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, as pflag reads int flags.
fn go_int(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    };
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return Err(syntax());
    }
    let lower1 = body.as_bytes().get(1).map(u8::to_ascii_lowercase);
    let (base, digits) = match body.strip_prefix('0') {
        Some(rest) => match lower1 {
            Some(b'b') if body.len() >= 3 => (2, &body[2..]),
            Some(b'o') if body.len() >= 3 => (8, &body[2..]),
            Some(b'x') if body.len() >= 3 => (16, &body[2..]),
            _ => (8, rest),
        },
        None => (10, body),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    let mut overflow = false;
    for c in digits.chars() {
        if c == '_' {
            underscores = true;
            continue;
        }
        let Some(d) = c.to_digit(16).filter(|d| *d < base) else {
            return Err(syntax());
        };
        match n
            .checked_mul(u64::from(base))
            .and_then(|n| n.checked_add(u64::from(d)))
        {
            Some(v) => n = v,
            None => overflow = true,
        }
    }
    if underscores && !underscore_ok(s) {
        return Err(syntax());
    }
    let limit: u64 = if neg { 1 << 63 } else { (1 << 63) - 1 };
    if overflow || n > limit {
        return Err(range());
    }
    Ok(if neg {
        0i64.wrapping_sub_unsigned(n)
    } else {
        i64::try_from(n).map_err(|_| range())?
    })
}

/// Go's `underscoreOK`: underscores only between digits (or after a base
/// prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2
        && b[i] == b'0'
        && matches!(b[i + 1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = b[i + 1].eq_ignore_ascii_case(&b'x');
        i += 2;
        saw = b'0';
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || (hex && c.to_ascii_lowercase().is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 10, bits)` with its error text.
fn go_uint10(s: &str, bits: u32) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    s.parse::<u64>().ok().filter(|v| *v <= max).ok_or_else(|| {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// An int flag, if given.
fn opt_int(value: &Option<String>, flag: &'static str) -> Result<Option<i64>, FlagError> {
    value
        .as_deref()
        .map(|v| go_int(v).map_err(|reason| invalid(flag, v, reason)))
        .transpose()
}

/// A duration flag, if given (0 when not).
fn opt_duration(value: &Option<String>, flag: &'static str) -> Result<i64, FlagError> {
    value.as_deref().map_or(Ok(0), |v| {
        go_duration(v).map_err(|reason| invalid(flag, v, reason))
    })
}

/// A size flag, if given (0 when not).
fn opt_size(value: &Option<String>, flag: &'static str) -> Result<i64, FlagError> {
    value.as_deref().map_or(Ok(0), |v| {
        ram_in_bytes(v).map_err(|reason| invalid(flag, v, reason))
    })
}

/// go-units' `RAMInBytes`: `512`, `512b`, `64k`, `1.5g`, `2 MiB`, …
/// (1024-based, case-insensitive).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size = go_float(num)?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let lower = sfx.to_lowercase();
    let bad = || Err(format!("invalid suffix: '{lower}'"));
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { bad() } else { Ok(size as i64) };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return bad(),
    };
    match b.len() {
        2 if b[1] != b'b' => return bad(),
        3 if &b[1..] != b"ib" => return bad(),
        _ => {}
    }
    Ok((size * mul) as i64)
}

/// Go's `strconv.ParseFloat(s, 64)` for what `RAMInBytes` hands it.
fn go_float(s: &str) -> Result<f64, String> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(v) if ok_chars && v.is_finite() => Ok(v),
        Ok(_) if ok_chars => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        )),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// `--cpus`: a decimal (or `a/b`) number of CPUs as nano-CPUs, exactly.
pub(crate) fn parse_cpus(s: &str) -> Result<i64, String> {
    let fail = || format!("failed to parse {s} as a rational number");
    let too_precise = || "value is too precise".to_string();
    let too_large = || "value is out of range".to_string();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let nano: i128 = if let Some((a, b)) = body.split_once('/') {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return Err(fail());
        }
        let a: i128 = a.parse().map_err(|_| too_large())?;
        let b: i128 = b.parse().map_err(|_| too_large())?;
        if b == 0 {
            return Err(fail());
        }
        let num = a.checked_mul(1_000_000_000).ok_or_else(too_large)?;
        if num % b != 0 {
            return Err(too_precise());
        }
        num / b
    } else {
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let exp: i64 = match exp {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(fail());
                }
                e.parse().map_err(|_| fail())?
            }
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.len() + frac.len() == 0
            || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        {
            return Err(fail());
        }
        let all = format!("{int}{frac}");
        let mut digits = all.trim_start_matches('0');
        let frac_len = i64::try_from(frac.len()).map_err(|_| fail())?;
        let mut scale = exp.checked_sub(frac_len).ok_or_else(fail)? + 9;
        if digits.is_empty() {
            0
        } else {
            let trimmed = digits.trim_end_matches('0');
            scale += i64::try_from(digits.len() - trimmed.len()).map_err(|_| fail())?;
            digits = trimmed;
            if scale < 0 {
                return Err(too_precise());
            }
            let width = i64::try_from(digits.len()).map_err(|_| fail())?;
            if width + scale > 20 {
                return Err(too_large());
            }
            let base: i128 = digits.parse().map_err(|_| too_large())?;
            let pow = 10i128
                .checked_pow(u32::try_from(scale).map_err(|_| too_large())?)
                .ok_or_else(too_large)?;
            base.checked_mul(pow).ok_or_else(too_large)?
        }
    };
    let nano = if neg { -nano } else { nano };
    i64::try_from(nano).map_err(|_| too_large())
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn go_duration(orig: &str) -> Result<i64, String> {
    let invalid_duration = || format!("time: invalid duration {}", go_quote(orig));
    const LIMIT: u64 = 1 << 63;
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.bytes().next()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid_duration());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid_duration());
        }
        // The integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for c in s[..int_len].bytes() {
            if v > LIMIT / 10 {
                return Err(invalid_duration());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid_duration());
            }
        }
        let pre = int_len > 0;
        s = &s[int_len..];
        // The fraction.
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in rest[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = &rest[frac_len..];
        }
        if !pre && !post {
            return Err(invalid_duration());
        }
        // The unit.
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid_duration());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid_duration());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid_duration());
        }
    }
    if neg {
        return Ok(0i64.wrapping_sub_unsigned(d));
    }
    i64::try_from(d).map_err(|_| invalid_duration())
}

/// `-e`: docker's `ValidateEnv` (a `KEY` alone takes the value from the
/// CLI's environment, or stays a bare `KEY`, which makes the daemon unset
/// it), then one entry per key (the last value wins).
fn flag_env(
    values: &[String],
    env_lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for e in values {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (e.as_str(), None),
        };
        if key.is_empty() {
            return Err(invalid(
                "-e, --env",
                e,
                format!("invalid environment variable: {e}"),
            ));
        }
        let value = value.or_else(|| env_lookup(key));
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect())
}

/// `-l`: docker's `ValidateLabel`.
fn validate_label(value: &str) -> Result<(), FlagError> {
    let key = value.split_once('=').map_or(value, |(k, _)| k);
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(invalid(
            "-l, --label",
            value,
            format!("invalid label '{value}': empty name"),
        ));
    }
    if key.contains([' ', '\t']) {
        return Err(invalid(
            "-l, --label",
            value,
            format!("label '{key}' contains whitespaces"),
        ));
    }
    Ok(())
}

/// `--sysctl`: the namespaced sysctls docker lets through.
fn validate_sysctl(value: &str) -> Result<(String, String), FlagError> {
    let refuse = || {
        invalid(
            "--sysctl",
            value,
            format!("sysctl '{value}' is not allowed"),
        )
    };
    let Some((k, v)) = value.split_once('=') else {
        return Err(refuse());
    };
    let allowed = matches!(
        k,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || k.starts_with("net.")
        || k.starts_with("fs.mqueue.");
    if k.is_empty() || !allowed {
        return Err(refuse());
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--ulimit name=soft[:hard]` (go-units' `ParseUlimit`).
fn parse_ulimit(value: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = value.split_once('=') else {
        return Err(format!("invalid ulimit argument: {value}"));
    };
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let int = |s: &str| -> Result<i64, String> {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                go_quote(s)
            ));
        }
        s.parse::<i64>().map_err(|_| {
            format!(
                "strconv.ParseInt: parsing {}: value out of range",
                go_quote(s)
            )
        })
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = int(soft)?;
            (soft, soft)
        }
        [soft, hard] => {
            let hard = int(hard)?;
            (int(soft)?, hard)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ));
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// An IP address as Go's `net.ParseIP` reads it, written as Go writes it.
fn parse_ip(s: &str) -> Option<String> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        }),
    }
}

/// `--dns`: docker's `ValidateIPAddress` (normalised).
fn validate_ip(value: &str) -> Result<String, String> {
    parse_ip(value.trim()).ok_or_else(|| format!("IP address is not correctly formatted: {value}"))
}

/// `--dns-search`: docker's `ValidateDNSSearch`.
fn validate_dns_search(value: &str) -> Result<String, String> {
    let v = value.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let bad = || format!("{v} is not a valid domain");
    if !v.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    // `^(labels)\.?\s*$`, where docker's pattern (written with `(:?` for
    // `(?:`) also lets a few colons in around the labels.
    let body = v.trim_end_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    let body = body.strip_suffix('.').unwrap_or(body);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    let parts: Vec<&str> = body.split('.').collect();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        let max_leading = if i == 0 { 3 } else { 2 };
        let mut p = *part;
        if i < last {
            p = p.strip_suffix(':').unwrap_or(p);
        }
        let stripped = p.trim_start_matches(':');
        if p.len() - stripped.len() > max_leading || !label_ok(stripped) {
            return Err(bad());
        }
    }
    if body.len() >= 255 {
        return Err(bad());
    }
    Ok(body.to_string())
}

/// `--add-host host:ip` (or `host=ip`): docker's `ValidateExtraHost`,
/// giving the `host:ip` the daemon reads.
fn validate_extra_host(value: &str) -> Result<String, String> {
    let split = value.split_once('=').or_else(|| value.split_once(':'));
    let bad = || format!("bad format for add-host: {}", go_quote(value));
    let Some((host, ip)) = split else {
        return Err(bad());
    };
    if host.is_empty() || host.contains(':') {
        return Err(bad());
    }
    let mut ip = ip;
    if ip != "host-gateway" {
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = &ip[1..ip.len() - 1];
        }
        if parse_ip(ip.trim()).is_none() {
            return Err(format!("invalid IP address in add-host: {}", go_quote(ip)));
        }
    }
    Ok(format!("{host}:{ip}"))
}

/// One record of Go's `encoding/csv` reader (default settings), as
/// docker reads `--mount`.
fn csv_record(input: &str) -> Result<Vec<String>, String> {
    // Lines end in `\n` (`\r\n` read as `\n`, one added at the end).
    let mut lines: Vec<String> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (line, tail) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        lines.push(format!("{line}\n"));
        rest = tail;
    }
    // Empty lines are skipped.
    let mut next = lines
        .iter()
        .enumerate()
        .skip_while(|(_, l)| l.as_str() == "\n");
    let Some((first, first_line)) = next.next() else {
        return Err("EOF".to_string());
    };
    let start_line = first + 1;
    let mut line_no = start_line;
    let mut line: &str = first_line;
    let mut more = lines[first + 1..].iter();
    let parse_error = |line_no: usize, col: usize, what: &str| {
        if line_no == start_line {
            format!("parse error on line {line_no}, column {col}: {what}")
        } else {
            format!(
                "record on line {start_line}; parse error on line {line_no}, column {col}: {what}"
            )
        }
    };
    const BARE: &str = "bare \" in non-quoted field";
    const QUOTE: &str = "extraneous or missing \" in quoted-field";
    let mut fields = Vec::new();
    let mut col = 1;
    loop {
        if !line.starts_with('"') {
            let (field, comma) = match line.find(',') {
                Some(i) => (&line[..i], true),
                None => (line.strip_suffix('\n').unwrap_or(line), false),
            };
            if let Some(j) = field.find('"') {
                return Err(parse_error(line_no, col + j, BARE));
            }
            fields.push(field.to_string());
            if comma {
                line = &line[field.len() + 1..];
                col += field.len() + 1;
                continue;
            }
            return Ok(fields);
        }
        // A quoted field.
        let mut field = String::new();
        line = &line[1..];
        col += 1;
        loop {
            if let Some(i) = line.find('"') {
                field.push_str(&line[..i]);
                line = &line[i + 1..];
                col += i + 1;
                if line.starts_with('"') {
                    field.push('"');
                    line = &line[1..];
                    col += 1;
                } else if line.starts_with(',') {
                    line = &line[1..];
                    col += 1;
                    fields.push(field);
                    break;
                } else if line == "\n" {
                    fields.push(field);
                    return Ok(fields);
                } else {
                    return Err(parse_error(line_no, col - 1, QUOTE));
                }
            } else if !line.is_empty() {
                field.push_str(line);
                col += line.len();
                match more.next() {
                    Some(l) => {
                        line = l;
                        line_no += 1;
                        col = 1;
                    }
                    None => line = "",
                }
            } else {
                return Err(parse_error(line_no, col, QUOTE));
            }
        }
    }
}

/// Go's `path.Clean`.
use hafen_oci::path::clean as clean_path;

/// Go's `filepath.Abs`: against the current directory.
fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        return clean_path(p);
    }
    match std::env::current_dir() {
        Ok(cwd) => clean_path(&format!("{}/{p}", cwd.display())),
        // Go's Abs fails too, and docker then keeps the path as given.
        Err(_) => p.to_string(),
    }
}

/// Go's `strconv.ParseBool`, for mount options.
fn parse_go_bool(s: &str) -> Option<bool> {
    go_bool(s).ok()
}

/// `--mount`: docker's `MountOpt.Set`.
fn parse_mount(value: &str) -> Result<MountSpec, String> {
    #[derive(Default)]
    struct Bind {
        propagation: String,
        non_recursive: bool,
        ro_non_recursive: bool,
        ro_force_recursive: bool,
    }
    #[derive(Default)]
    struct Volume {
        no_copy: bool,
        labels: BTreeMap<String, String>,
        subpath: String,
        driver: String,
        driver_opts: BTreeMap<String, String>,
    }
    #[derive(Default)]
    struct Tmpfs {
        size: i64,
        mode: u32,
    }
    let fields = csv_record(value)?;
    let mut m = MountSpec {
        kind: "volume".to_string(),
        ..MountSpec::default()
    };
    let mut bind: Option<Bind> = None;
    let mut volume: Option<Volume> = None;
    let mut image_subpath: Option<String> = None;
    let mut tmpfs: Option<Tmpfs> = None;
    let set_kv = |target: &mut BTreeMap<String, String>, v: &str| {
        let (k, v) = v.split_once('=').unwrap_or((v, ""));
        if !k.is_empty() {
            target.insert(k.to_string(), v.to_string());
        }
    };
    for field in &fields {
        let Some((key, val)) = field.split_once('=') else {
            match field.to_lowercase().as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume.get_or_insert_with(Volume::default).no_copy = true,
                "bind-nonrecursive" => bind.get_or_insert_with(Bind::default).non_recursive = true,
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let key = key.to_lowercase();
        let bad_value = || format!("invalid value for {key}: {val}");
        match key.as_str() {
            "type" => m.kind = val.to_lowercase(),
            "source" | "src" => {
                m.source = if !val.starts_with('/') && val.starts_with('.') {
                    absolute(val)
                } else {
                    val.to_string()
                };
            }
            "target" | "dst" | "destination" => m.target = val.to_string(),
            "readonly" | "ro" => m.read_only = parse_go_bool(val).ok_or_else(bad_value)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => {
                bind.get_or_insert_with(Bind::default).propagation = val.to_lowercase();
            }
            "bind-nonrecursive" => {
                bind.get_or_insert_with(Bind::default).non_recursive =
                    parse_go_bool(val).ok_or_else(bad_value)?;
            }
            "bind-recursive" => match val {
                "enabled" => {}
                "disabled" => bind.get_or_insert_with(Bind::default).non_recursive = true,
                "writable" => bind.get_or_insert_with(Bind::default).ro_non_recursive = true,
                "readonly" => bind.get_or_insert_with(Bind::default).ro_force_recursive = true,
                _ => {
                    return Err(format!(
                        "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    ));
                }
            },
            "volume-subpath" => {
                volume.get_or_insert_with(Volume::default).subpath = val.to_string()
            }
            "volume-nocopy" => {
                volume.get_or_insert_with(Volume::default).no_copy = parse_go_bool(val)
                    .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?;
            }
            "volume-label" => set_kv(&mut volume.get_or_insert_with(Volume::default).labels, val),
            "volume-driver" => volume.get_or_insert_with(Volume::default).driver = val.to_string(),
            "volume-opt" => set_kv(
                &mut volume.get_or_insert_with(Volume::default).driver_opts,
                val,
            ),
            "image-subpath" => image_subpath = Some(val.to_string()),
            "tmpfs-size" => {
                tmpfs.get_or_insert_with(Tmpfs::default).size =
                    ram_in_bytes(val).map_err(|_| bad_value())?;
            }
            "tmpfs-mode" => {
                if val.is_empty() || !val.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    return Err(bad_value());
                }
                tmpfs.get_or_insert_with(Tmpfs::default).mode =
                    u32::from_str_radix(val, 8).map_err(|_| bad_value())?;
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if m.kind.is_empty() {
        return Err("type is required".to_string());
    }
    if m.target.is_empty() {
        return Err("target is required".to_string());
    }
    let mix = |what: &str| format!("cannot mix '{what}-*' options with mount type '{}'", m.kind);
    if volume.is_some() && m.kind != "volume" {
        return Err(mix("volume"));
    }
    if image_subpath.is_some() && m.kind != "image" {
        return Err(mix("image"));
    }
    if bind.is_some() && m.kind != "bind" {
        return Err(mix("bind"));
    }
    if tmpfs.is_some() && m.kind != "tmpfs" {
        return Err(mix("tmpfs"));
    }
    if let Some(b) = &bind {
        if b.ro_non_recursive && !m.read_only {
            return Err(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
                    .to_string(),
            );
        }
        if b.ro_force_recursive {
            if !m.read_only {
                return Err("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".to_string());
            }
            if b.propagation != "rprivate" {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".to_string());
            }
        }
    }
    // The option objects, field for field as Go's JSON writes them.
    m.bind_options = bind.map(|b| {
        let mut o = Map::new();
        if !b.propagation.is_empty() {
            o.insert("Propagation".into(), json!(b.propagation));
        }
        if b.non_recursive {
            o.insert("NonRecursive".into(), json!(true));
        }
        if b.ro_non_recursive {
            o.insert("ReadOnlyNonRecursive".into(), json!(true));
        }
        if b.ro_force_recursive {
            o.insert("ReadOnlyForceRecursive".into(), json!(true));
        }
        Value::Object(o)
    });
    m.volume_options = volume.map(|v| {
        let mut o = Map::new();
        if v.no_copy {
            o.insert("NoCopy".into(), json!(true));
        }
        if !v.labels.is_empty() {
            o.insert("Labels".into(), json!(v.labels));
        }
        if !v.subpath.is_empty() {
            o.insert("Subpath".into(), json!(v.subpath));
        }
        let mut driver = Map::new();
        if !v.driver.is_empty() {
            driver.insert("Name".into(), json!(v.driver));
        }
        if !v.driver_opts.is_empty() {
            driver.insert("Options".into(), json!(v.driver_opts));
        }
        o.insert("DriverConfig".into(), Value::Object(driver));
        Value::Object(o)
    });
    m.image_options = image_subpath.map(|s| {
        let mut o = Map::new();
        if !s.is_empty() {
            o.insert("Subpath".into(), json!(s));
        }
        Value::Object(o)
    });
    m.tmpfs_options = tmpfs.map(|t| {
        let mut o = Map::new();
        if t.size != 0 {
            o.insert("SizeBytes".into(), json!(t.size));
        }
        if t.mode != 0 {
            o.insert("Mode".into(), json!(t.mode));
        }
        Value::Object(o)
    });
    Ok(m)
}

/// What `-v` names: a source (path or volume name; empty for an anonymous
/// volume), and whether the source is a host path.
#[derive(Debug, PartialEq, Eq)]
struct VolumeSpec {
    source: String,
    target: String,
    bind: bool,
}

/// `-v`: docker's `volumespec.Parse`.
fn parse_volume_spec(spec: &str) -> Result<VolumeSpec, FlagError> {
    match spec.len() {
        0 => return Err(FlagError::EmptyVolume),
        1 | 2 => {
            return Ok(VolumeSpec {
                source: String::new(),
                target: spec.to_string(),
                bind: false,
            });
        }
        _ => {}
    }
    let windows_drive =
        |buffer: &[char], c: char| c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic();
    let mut source = String::new();
    let mut target = String::new();
    let mut buffer: Vec<char> = Vec::new();
    for c in spec.chars().chain(std::iter::once('\0')) {
        if windows_drive(&buffer, c) {
            buffer.push(c);
        } else if c == ':' || c == '\0' {
            let text: String = buffer.iter().collect();
            let err = |reason| FlagError::Volume {
                spec: spec.to_string(),
                reason,
            };
            if buffer.is_empty() {
                return Err(err("empty section between colons"));
            } else if source.is_empty() && c == '\0' {
                target = text;
            } else if source.is_empty() {
                source = text;
            } else if target.is_empty() {
                target = text;
            } else if c == ':' {
                return Err(err("too many colons"));
            }
            // Otherwise the mode (`ro`, `z`, …): kept in the bind string.
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    let bind = !source.is_empty() && {
        let mut chars = source.chars();
        let first = chars.next().unwrap_or(' ');
        let second = source.as_bytes().get(first.len_utf8()).copied();
        matches!(first, '.' | '/' | '~')
            || (source.chars().count() > 1
                && (source.starts_with("\\\\") || (first.is_alphabetic() && second == Some(b':'))))
    };
    Ok(VolumeSpec {
        source,
        target,
        bind,
    })
}

/// `-p`: port specs into exposed ports and the `PortBindings` map.
fn parse_publish(specs: &[String]) -> Result<(Vec<String>, Value), FlagError> {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for spec in specs {
        // The long syntax: `published=8080,target=80,protocol=udp`.
        let spec = if spec.contains('=') {
            let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
            for param in spec.split(',') {
                match param.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        params.insert(k, v);
                    }
                    _ => {
                        return Err(FlagError::Port(format!(
                            "invalid publish opts format (should be name=value but got '{param}')"
                        )));
                    }
                }
            }
            let get = |k| params.get(k).copied().unwrap_or("");
            format!("{}:{}/{}", get("published"), get("target"), get("protocol"))
        } else {
            spec.clone()
        };
        for (port, host_ip, host_port) in parse_port_spec(&spec)? {
            if !exposed.contains(&port) {
                exposed.push(port.clone());
            }
            bindings
                .entry(port)
                .or_default()
                .push(json!({"HostIp": host_ip, "HostPort": host_port}));
        }
    }
    let map: Map<String, Value> = bindings
        .into_iter()
        .map(|(k, v)| (k, Value::Array(v)))
        .collect();
    Ok((exposed, Value::Object(map)))
}

/// nat's `ParsePortRange`.
fn port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_string());
    }
    if !ports.contains('-') {
        let p = go_uint10(ports, 16)?;
        return Ok((p, p));
    }
    let mut parts = ports.split('-');
    let start = go_uint10(parts.next().unwrap_or(""), 16)?;
    let end = go_uint10(parts.next().unwrap_or(""), 16)?;
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// nat's `SplitProtoPort`.
fn split_proto_port(raw: &str) -> (String, String) {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return (String::new(), String::new());
    }
    let proto = if proto.is_empty() { "tcp" } else { proto };
    (proto.to_string(), port.to_string())
}

/// nat's `ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]` into
/// `(port/proto, host ip, host port)` triples.
fn parse_port_spec(raw: &str) -> Result<Vec<(String, String, String)>, FlagError> {
    let port_err = |s: String| FlagError::Port(s);
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container_port) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container_port) = split_proto_port(container_port);
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(port_err(format!("invalid proto: {proto}")));
    }
    let mut ip = ip;
    if ip.starts_with('[') {
        ip = strip_brackets(&ip)
            .map_err(|why| port_err(format!("invalid IP address {ip}: address {ip}:: {why}")))?;
    }
    if !ip.is_empty() && parse_ip(&ip).is_none() {
        return Err(port_err(format!("invalid IP address: {ip}")));
    }
    if container_port.is_empty() {
        return Err(port_err(format!("no port specified: {raw}<empty>")));
    }
    let (start, end) = port_range(&container_port)
        .map_err(|_| port_err(format!("invalid containerPort: {container_port}")))?;
    let (mut host_start, mut host_end) = (0, 0);
    if !host_port.is_empty() {
        (host_start, host_end) = port_range(host_port)
            .map_err(|_| port_err(format!("invalid hostPort: {host_port}")))?;
        if end - start != host_end - host_start && end != start {
            return Err(port_err(format!(
                "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            )));
        }
    }
    let count = end - start + 1;
    Ok((0..count)
        .map(|i| {
            let port = format!("{}/{proto}", start + i);
            let mut hp = String::new();
            if !host_port.is_empty() {
                hp = (host_start + i).to_string();
                if count == 1 && host_start != host_end {
                    hp = format!("{hp}-{host_end}");
                }
            }
            (port, ip.clone(), hp)
        })
        .collect())
}

/// The host of `[host]` as Go's `net.SplitHostPort(ip + ":")` finds it.
fn strip_brackets(ip: &str) -> Result<String, &'static str> {
    let with_port = format!("{ip}:");
    let Some(end) = with_port.find(']') else {
        return Err("missing ']' in address");
    };
    let last_colon = with_port.len() - 1;
    if end + 1 != last_colon {
        return Err(if with_port.as_bytes()[end + 1] == b':' {
            "too many colons in address"
        } else {
            "missing port in address"
        });
    }
    let host = &with_port[1..end];
    if host.contains('[') {
        return Err("unexpected '[' in address");
    }
    Ok(host.to_string())
}

/// `--expose port[-end][/proto]` into the exposed ports.
fn expose(value: &str, exposed: &mut Vec<String>) -> Result<(), FlagError> {
    if value.contains(':') {
        return Err(FlagError::Port(format!(
            "invalid port format for --expose: {value}"
        )));
    }
    let (proto, port) = split_proto_port(value);
    let (start, end) = port_range(&port).map_err(|e| {
        FlagError::Port(format!(
            "invalid range format for --expose: {value}, error: {e}"
        ))
    })?;
    for p in start..=end {
        let key = format!("{p}/{proto}");
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    Ok(())
}

/// A device cgroup mode: some of `r`, `w`, `m`, each at most once.
fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && ['r', 'w', 'm']
            .iter()
            .all(|c| mode.chars().filter(|m| m == c).count() <= 1)
}

/// `--device host[:container][:perms]` (docker's `validateLinuxPath` and
/// `parseLinuxDevice`).
fn parse_device(value: &str) -> Result<DeviceMapping, FlagError> {
    let bad = || FlagError::Device(format!("bad format for path: {value}"));
    if value.matches(':').count() > 2 {
        return Err(bad());
    }
    let split: Vec<&str> = value.splitn(3, ':').collect();
    if split[0].is_empty() {
        return Err(bad());
    }
    let (container_path, validated) = match split.as_slice() {
        [p] => (p.to_string(), clean_path(p)),
        [p, mode] if valid_device_mode(mode) => {
            (p.to_string(), format!("{}:{mode}", clean_path(p)))
        }
        [host, p] => (p.to_string(), format!("{host}:{}", clean_path(p))),
        [_, p, mode] => {
            if !valid_device_mode(mode) {
                return Err(FlagError::Device(format!("bad mode specified: {mode}")));
            }
            (p.to_string(), value.to_string())
        }
        _ => return Err(bad()),
    };
    if !container_path.starts_with('/') {
        return Err(FlagError::Device(format!(
            "{container_path} is not an absolute path"
        )));
    }
    let arr: Vec<&str> = validated.splitn(4, ':').collect();
    let mut permissions = "rwm".to_string();
    let mut dst = String::new();
    if arr.len() == 3 {
        permissions = arr[2].to_string();
    }
    if arr.len() >= 2 {
        if valid_device_mode(arr[1]) {
            permissions = arr[1].to_string();
        } else {
            dst = arr[1].to_string();
        }
    }
    let src = arr[0].to_string();
    if dst.is_empty() {
        dst = src.clone();
    }
    Ok(DeviceMapping {
        path_on_host: src,
        path_in_container: dst,
        cgroup_permissions: permissions,
    })
}

/// How the CLI's environment is read.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// An I/O error as Go writes it (`no such file or directory`).
fn go_errno(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A whole file, with Go's `open …`/`read …` errors.
fn read_file(path: &str) -> Result<Vec<u8>, (bool, String)> {
    let mut f =
        std::fs::File::open(path).map_err(|e| (true, format!("open {path}: {}", go_errno(&e))))?;
    let mut data = Vec::new();
    f.read_to_end(&mut data)
        .map_err(|e| (false, format!("read {path}: {}", go_errno(&e))))?;
    Ok(data)
}

/// An `--env-file` or `--label-file` (docker's `kvfile.Parse`): `KEY=value`
/// lines as they are, `#` comments and blank lines skipped, a `KEY` alone
/// looked up with `lookup` (and left out when not found or without one).
fn read_kv_file(path: &str, lookup: Option<Lookup<'_>>) -> Result<Vec<String>, FlagError> {
    let data = read_file(path).map_err(|(open, reason)| {
        if open {
            FlagError::Open {
                path: path.to_string(),
                reason: reason
                    .strip_prefix(&format!("open {path}: "))
                    .unwrap_or(&reason)
                    .to_string(),
            }
        } else {
            FlagError::KvFile {
                path: path.to_string(),
                reason,
            }
        }
    })?;
    parse_kv(&data, lookup).map_err(|reason| FlagError::KvFile {
        path: path.to_string(),
        reason,
    })
}

/// The lines of a key/value file.
fn parse_kv(data: &[u8], lookup: Option<Lookup<'_>>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (raw, tail) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = tail;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() >= 64 * 1024 {
            return Err("bufio.Scanner: token too long".to_string());
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            let bytes: Vec<String> = raw.iter().map(u8::to_string).collect();
            return Err(format!(
                "invalid utf8 bytes at line {number}: [{}]",
                bytes.join(" ")
            ));
        };
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(value) = lookup.and_then(|f| f(line)) {
            out.push(format!("{key}={value}"));
        }
    }
    Ok(out)
}

/// `--restart`: docker's `ParseRestartPolicy`.
fn parse_restart(policy: &str) -> Result<RestartPolicy, FlagError> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err(FlagError::Restart(
            "invalid restart policy format: no policy provided before colon".to_string(),
        ));
    }
    let mut p = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: 0,
    };
    if !count.is_empty() {
        p.maximum_retry_count = count.parse().map_err(|_| {
            FlagError::Restart(
                "invalid restart policy format: maximum retry count must be an integer".to_string(),
            )
        })?;
    }
    Ok(p)
}

/// The daemon's `ValidateRestartPolicy`.
fn check_restart(p: &RestartPolicy) -> Result<(), FlagError> {
    match p.name.as_str() {
        "always" | "unless-stopped" | "no" => {
            if p.maximum_retry_count != 0 {
                let mut msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string();
                if p.maximum_retry_count < 0 {
                    msg.push_str(" and cannot be negative");
                }
                return Err(FlagError::Restart(msg));
            }
            Ok(())
        }
        "on-failure" if p.maximum_retry_count < 0 => Err(FlagError::Restart(
            "invalid restart policy: maximum retry count cannot be negative".to_string(),
        )),
        "on-failure" | "" => Ok(()),
        other => Err(FlagError::Restart(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// What `--security-opt` gives: the options, and the masked and read-only
/// paths (`Some(empty)` with `systempaths=unconfined`).
#[derive(Debug, Default)]
struct Security {
    opts: Option<Vec<String>>,
    masked_paths: Option<Vec<String>>,
    readonly_paths: Option<Vec<String>>,
}

/// `--security-opt`: docker's `parseSecurityOpts` (a seccomp profile file
/// is read and sent as compact JSON) and `parseSystemPaths`.
fn security_opts(opts: &[String]) -> Result<Security, FlagError> {
    if opts.is_empty() {
        return Ok(Security::default());
    }
    let mut out = Vec::new();
    for opt in opts {
        let (mut k, mut v, mut ok) = match opt.split_once('=') {
            Some((k, v)) => (k, v, true),
            None => (opt.as_str(), "", false),
        };
        if !ok && k != "no-new-privileges" {
            (k, v, ok) = match opt.split_once(':') {
                Some((k, v)) => (k, v, true),
                None => (opt.as_str(), "", false),
            };
        }
        if (!ok || v.is_empty()) && k != "no-new-privileges" {
            return Err(FlagError::SecurityOpt(opt.clone()));
        }
        if k == "seccomp" && v != "builtin" && v != "unconfined" {
            let data = read_file(v).map_err(|(_, reason)| FlagError::Seccomp {
                what: "opening",
                path: v.to_string(),
                reason,
            })?;
            let compact = compact_json(&data).map_err(|reason| FlagError::Seccomp {
                what: "compacting json for",
                path: v.to_string(),
                reason,
            })?;
            out.push(format!("seccomp={compact}"));
        } else {
            out.push(opt.clone());
        }
    }
    let mut masked = None;
    let mut readonly = None;
    out.retain(|o| {
        if o == "systempaths=unconfined" {
            masked = Some(Vec::new());
            readonly = Some(Vec::new());
            false
        } else {
            true
        }
    });
    Ok(Security {
        opts: Some(out),
        masked_paths: masked,
        readonly_paths: readonly,
    })
}

/// Go's `json.Compact`: the same JSON without the spaces between tokens
/// (order and number forms kept).
fn compact_json(data: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(data).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    Ok(out)
}

/// `--network`: the mode (the first network; empty without one), and the
/// endpoints when more than one is named.
fn networks(names: &[String]) -> Result<(String, Option<Value>), FlagError> {
    let Some(first) = names.first() else {
        return Ok((String::new(), None));
    };
    if names.len() == 1 {
        return Ok((first.clone(), None));
    }
    let user_defined = |n: &str| {
        !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
    };
    let mut endpoints = Map::new();
    for n in names {
        if endpoints.contains_key(n) {
            return Err(FlagError::Network(n.clone()));
        }
        endpoints.insert(n.clone(), json!({}));
    }
    let any_user = names.iter().any(|n| user_defined(n));
    let any_other = names.iter().any(|n| !user_defined(n));
    if any_user && any_other {
        return Err(FlagError::Conflict(
            "cannot attach both user-defined and non-user-defined network-modes",
        ));
    }
    Ok((first.clone(), Some(json!({ "EndpointsConfig": endpoints }))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(name = "hafen")]
    enum Cli {
        Run(RunArgs),
        Create(CreateArgs),
    }

    fn lookup(key: &str) -> Option<String> {
        match key {
            "FROM_ENV" => Some("here".to_string()),
            "EMPTY_ENV" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(cmd: &str, args: &[&str]) -> Cli {
        let mut argv = vec!["hafen", cmd];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("clap parses")
    }

    fn run(args: &[&str]) -> Result<ContainerCreate, FlagError> {
        match parse("run", args) {
            Cli::Run(r) => r.body(&lookup),
            Cli::Create(_) => panic!("not run"),
        }
    }

    fn create(args: &[&str]) -> Result<ContainerCreate, FlagError> {
        match parse("create", args) {
            Cli::Create(c) => c.body(&lookup),
            Cli::Run(_) => panic!("not create"),
        }
    }

    fn ok(args: &[&str]) -> ContainerCreate {
        run(args).expect("a body")
    }

    fn err(args: &[&str]) -> String {
        run(args).expect_err("an error").to_string()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_what_docker_sends() {
        let b = ok(&["busybox"]);
        let c = &b.config;
        assert_eq!(c.image, "busybox");
        assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
        assert!(!c.open_stdin && !c.stdin_once && !c.tty);
        assert_eq!(c.cmd, None);
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.volumes, Some(BTreeMap::new()));
        assert_eq!(c.exposed_ports, None);
        assert_eq!(c.healthcheck, None);
        assert_eq!(c.stop_timeout, None);
        let h = &b.host_config;
        assert_eq!(h.restart_policy.name, "no");
        assert_eq!(h.network_mode, "");
        assert_eq!(h.port_bindings, Some(json!({})));
        assert_eq!(h.dns, Some(vec![]));
        assert_eq!(h.dns_search, Some(vec![]));
        assert_eq!(h.dns_options, Some(vec![]));
        assert_eq!(h.devices, Some(vec![]));
        assert_eq!(h.ulimits, Some(vec![]));
        assert_eq!(h.binds, None);
        assert_eq!(h.mounts, None);
        assert_eq!(h.init, None);
        assert_eq!(h.memory_swappiness, Some(-1));
        assert_eq!(h.pids_limit, Some(0));
        assert_eq!(h.oom_kill_disable, Some(false));
        assert_eq!(h.security_opt, None);
        assert_eq!(b.networking_config, None);
        // The JSON: a missing command is null, not [].
        let v = serde_json::to_value(&b).expect("serialises");
        assert_eq!(v["Cmd"], Value::Null);
        assert_eq!(v["Image"], "busybox");
        assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert!(v["HostConfig"].get("Tmpfs").is_none());
    }

    #[test]
    fn flags_stop_at_the_image() {
        let b = ok(&["-e", "A=1", "img", "-e", "B=2", "--", "ls", "-l"]);
        assert_eq!(b.config.env, strings(&["A=1"]));
        assert_eq!(
            b.config.cmd,
            Some(strings(&["-e", "B=2", "--", "ls", "-l"]))
        );
        let Cli::Run(r) = parse("run", &["-it", "--rm", "alpine", "sh", "-c", "echo hi"]) else {
            panic!("run");
        };
        assert_eq!(r.image(), "alpine");
        assert_eq!(r.command(), strings(&["sh", "-c", "echo hi"]).as_slice());
        assert!(r.flags.interactive && r.flags.tty && r.flags.rm);
        // `-h` is the host name, not help; `--help` after the image is the command's.
        let b = ok(&["-h", "box", "img", "--help"]);
        assert_eq!(b.config.hostname, "box");
        assert_eq!(b.config.cmd, Some(strings(&["--help"])));
        // Unknown flags before the image are refused, not taken for the image.
        assert!(Cli::try_parse_from(["hafen", "run", "--bogus", "img"]).is_err());
        // A repeated scalar flag: the last one wins, as with pflag.
        assert_eq!(
            ok(&["-w", "/a", "-w", "/b", "img"]).config.working_dir,
            "/b"
        );
        // Negative numbers are values.
        assert_eq!(
            ok(&["--oom-score-adj", "-500", "img"])
                .host_config
                .oom_score_adj,
            -500
        );
    }

    #[test]
    fn bool_flags_take_go_values() {
        assert!(!ok(&["--rm=false", "img"]).host_config.auto_remove);
        assert!(ok(&["--privileged=1", "img"]).host_config.privileged);
        assert!(!ok(&["-i=false", "img"]).config.open_stdin);
        assert!(Cli::try_parse_from(["hafen", "run", "--rm=yes", "img"]).is_err());
        let Cli::Run(r) = parse("run", &["--sig-proxy=false", "img"]) else {
            panic!("run")
        };
        assert!(!r.flags.sig_proxy());
        let Cli::Run(r) = parse("run", &["img"]) else {
            panic!("run")
        };
        assert!(r.flags.sig_proxy());
        assert_eq!(r.flags.pull_policy(), "missing");
        assert_eq!(ok(&["--init", "img"]).host_config.init, Some(true));
        assert_eq!(ok(&["--init=false", "img"]).host_config.init, Some(false));
    }

    #[test]
    fn attach_interactive_and_detach() {
        let c = ok(&["-it", "img"]).config;
        assert!(c.attach_stdin && c.attach_stdout && c.attach_stderr);
        assert!(c.open_stdin && c.stdin_once && c.tty);
        let c = ok(&["-a", "stdin", "img"]).config;
        assert!(c.attach_stdin && !c.attach_stdout && !c.attach_stderr);
        assert!(!c.open_stdin && !c.stdin_once);
        let c = ok(&["-a", "STDOUT", "-a", "stderr", "img"]).config;
        assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
        // -i with -a stdout: stdin is attached too (docker does so).
        let c = ok(&["-i", "-a", "stdout", "img"]).config;
        assert!(c.attach_stdin && c.stdin_once);
        let c = ok(&["-dit", "img"]).config;
        assert!(!c.attach_stdin && !c.attach_stdout && !c.attach_stderr);
        assert!(c.open_stdin && !c.stdin_once && c.tty);
        assert_eq!(
            err(&["-d", "-a", "stdout", "img"]),
            "conflicting options: cannot specify both --attach and --detach"
        );
        assert_eq!(
            err(&["-a", "ubuntu", "img"]),
            r#"invalid argument "ubuntu" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR"#
        );
    }

    #[test]
    fn create_attaches_like_docker_create_and_refuses_run_flags() {
        let c = create(&["img", "true"]).expect("a body").config;
        assert!(c.attach_stdout && c.attach_stderr && !c.attach_stdin);
        assert_eq!(
            create(&["-d", "img"]).expect_err("refused").to_string(),
            "unknown flag: --detach"
        );
        assert_eq!(
            create(&["--sig-proxy=false", "img"])
                .expect_err("refused")
                .to_string(),
            "unknown flag: --sig-proxy"
        );
        assert_eq!(
            create(&["--detach-keys", "ctrl-a", "img"])
                .expect_err("refused")
                .to_string(),
            "unknown flag: --detach-keys"
        );
    }

    #[test]
    fn pull_option() {
        for p in ["always", "missing", "never"] {
            assert!(run(&["--pull", p, "img"]).is_ok(), "{p}");
        }
        assert_eq!(
            err(&["--pull", "sometimes", "img"]),
            r#"invalid pull option: 'sometimes': must be one of "always", "missing" or "never""#
        );
    }

    #[test]
    fn env_from_flags() {
        let b = ok(&[
            "-e",
            "A=1",
            "-e",
            "FROM_ENV",
            "-e",
            "UNSET",
            "-e",
            "EMPTY_ENV",
            "-e",
            "B=",
            "-e",
            "A=2",
            "img",
        ]);
        // KEY alone: its value here, or a bare KEY (the daemon then unsets it).
        assert_eq!(
            b.config.env,
            strings(&["A=2", "FROM_ENV=here", "UNSET", "EMPTY_ENV=", "B="])
        );
        assert_eq!(
            err(&["-e", "=x", "img"]),
            r#"invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x"#
        );
        assert!(err(&["-e", "", "img"]).contains("invalid environment variable"));
    }

    #[test]
    fn env_file_in_docker_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("env");
        std::fs::write(
            &f,
            "\u{feff}# a comment\n\n  A=1\r\nFROM_ENV\nUNSET\nSPACES= kept \nQ=\"quoted\"\n   # indented comment\n",
        )
        .expect("write");
        let path = f.to_str().expect("utf-8");
        let b = ok(&["--env-file", path, "-e", "Z=9", "img"]);
        assert_eq!(
            b.config.env,
            strings(&[
                "A=1",
                "FROM_ENV=here",
                "SPACES= kept ",
                "Q=\"quoted\"",
                "Z=9"
            ])
        );

        std::fs::write(&f, "OK=1\nBAD KEY=1\n").expect("write");
        assert_eq!(
            err(&["--env-file", path, "img"]),
            format!("invalid env file ({path}): variable 'BAD KEY' contains whitespaces")
        );
        std::fs::write(&f, "=value\n").expect("write");
        assert_eq!(
            err(&["--env-file", path, "img"]),
            format!("invalid env file ({path}): no variable name on line '=value'")
        );
        std::fs::write(&f, b"A=1\nB=\xff\n").expect("write");
        assert_eq!(
            err(&["--env-file", path, "img"]),
            format!("invalid env file ({path}): invalid utf8 bytes at line 2: [66 61 255]")
        );
        let missing = dir.path().join("nope");
        let missing = missing.to_str().expect("utf-8");
        assert_eq!(
            err(&["--env-file", missing, "img"]),
            format!("open {missing}: no such file or directory")
        );
        let d = dir.path().to_str().expect("utf-8");
        assert_eq!(
            err(&["--env-file", d, "img"]),
            format!("invalid env file ({d}): read {d}: is a directory")
        );
    }

    #[test]
    fn labels_and_label_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("labels");
        std::fs::write(&f, "# c\na=1\nb=2\nFROM_ENV\n").expect("write");
        let path = f.to_str().expect("utf-8");
        let b = ok(&["--label-file", path, "-l", "b=3", "-l", "flag", "img"]);
        let want: BTreeMap<String, String> = [("a", "1"), ("b", "3"), ("flag", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // A key alone in a label file is left out (no lookup for labels).
        assert_eq!(b.config.labels, want);
        assert_eq!(
            err(&["-l", "=x", "img"]),
            r#"invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name"#
        );
        assert_eq!(
            err(&["-l", "a b=1", "img"]),
            r#"invalid argument "a b=1" for "-l, --label" flag: label 'a b' contains whitespaces"#
        );
    }

    #[test]
    fn command_and_entrypoint() {
        let c = ok(&["--entrypoint", "", "img"]).config;
        assert_eq!(c.entrypoint, Some(strings(&[""])));
        let c = ok(&["--entrypoint=/bin/sh", "img", "-c", "x"]).config;
        assert_eq!(c.entrypoint, Some(strings(&["/bin/sh"])));
        assert_eq!(c.cmd, Some(strings(&["-c", "x"])));
        let v = serde_json::to_value(ok(&["--entrypoint", "", "img"])).expect("json");
        assert_eq!(v["Entrypoint"], json!([""]));
    }

    #[test]
    fn plain_strings_pass_through() {
        let b = ok(&[
            "--name",
            "n",
            "-w",
            "/work",
            "-u",
            "1000:1000",
            "-h",
            "host",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "20",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems",
            "0",
            "--ipc",
            "shareable",
            "--cgroup-parent",
            "/p",
            "--runtime",
            "runc",
            "--cidfile",
            "/tmp/cid",
            "--read-only",
            "--privileged",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--group-add",
            "audio",
            "--volumes-from",
            "other:ro",
            "--dns-option",
            "ndots:2",
            "--dns-opt",
            "rotate",
            "--oom-kill-disable",
            "-P",
            "img",
        ]);
        let c = &b.config;
        assert_eq!(c.working_dir, "/work");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.hostname, "host");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.stop_timeout, Some(20));
        let h = &b.host_config;
        assert_eq!(h.cpuset_cpus, "0-1");
        assert_eq!(h.cpuset_mems, "0");
        assert_eq!(h.ipc_mode, "shareable");
        assert_eq!(h.cgroup_parent, "/p");
        assert_eq!(h.runtime, "runc");
        assert_eq!(h.container_id_file, "/tmp/cid");
        assert!(h.readonly_rootfs && h.privileged && h.publish_all_ports);
        assert_eq!(h.oom_kill_disable, Some(true));
        assert_eq!(h.cap_add, Some(strings(&["NET_ADMIN"])));
        assert_eq!(h.cap_drop, Some(strings(&["ALL"])));
        assert_eq!(h.group_add, Some(strings(&["audio"])));
        assert_eq!(h.volumes_from, Some(strings(&["other:ro"])));
        assert_eq!(h.dns_options, Some(strings(&["ndots:2", "rotate"])));
        assert_eq!(
            err(&["--stop-timeout", "soon", "img"]),
            r#"invalid argument "soon" for "--stop-timeout" flag: strconv.ParseInt: parsing "soon": invalid syntax"#
        );
    }

    #[test]
    fn sizes_in_docker_units() {
        let cases: [(&str, i64); 12] = [
            ("512", 512),
            ("512b", 512),
            ("1k", 1024),
            ("1K", 1024),
            ("1kb", 1024),
            ("1KiB", 1024),
            ("64m", 64 << 20),
            ("1.5g", 3 << 29),
            ("2 MB", 2 << 20),
            ("1t", 1 << 40),
            ("1p", 1 << 50),
            ("0", 0),
        ];
        for (s, want) in cases {
            assert_eq!(ram_in_bytes(s), Ok(want), "{s}");
        }
        let bad: [(&str, &str); 9] = [
            ("x", "invalid size: 'x'"),
            ("", "invalid size: ''"),
            ("1x", "invalid suffix: 'x'"),
            ("1KBB", "invalid suffix: 'kbb'"),
            ("1ibib", "invalid suffix: 'ibib'"),
            ("1bb", "invalid suffix: 'bb'"),
            ("-1", "invalid size: '-1'"),
            (".", "strconv.ParseFloat: parsing \".\": invalid syntax"),
            (
                "1..2k",
                "strconv.ParseFloat: parsing \"1..2\": invalid syntax",
            ),
        ];
        for (s, want) in bad {
            assert_eq!(ram_in_bytes(s), Err(want.to_string()), "{s}");
        }
        let h = ok(&[
            "-m",
            "512m",
            "--memory-reservation",
            "256m",
            "--memory-swap",
            "1g",
            "--shm-size",
            "128m",
            "img",
        ])
        .host_config;
        assert_eq!(h.memory, 512 << 20);
        assert_eq!(h.memory_reservation, 256 << 20);
        assert_eq!(h.memory_swap, 1 << 30);
        assert_eq!(h.shm_size, 128 << 20);
        assert_eq!(
            ok(&["-m", "1g", "--memory-swap", "-1", "img"])
                .host_config
                .memory_swap,
            -1
        );
        assert_eq!(
            err(&["-m", "x", "img"]),
            r#"invalid argument "x" for "-m, --memory" flag: invalid size: 'x'"#
        );
        assert_eq!(
            err(&["--memory-swap", "-2", "img"]),
            r#"invalid argument "-2" for "--memory-swap" flag: invalid size: '-2'"#
        );
        assert_eq!(
            err(&["--shm-size", "a128m", "img"]),
            r#"invalid argument "a128m" for "--shm-size" flag: strconv.ParseFloat: parsing "a128": invalid syntax"#
        );
        assert!(
            err(&["--memory-reservation", "1q", "img"])
                .starts_with(r#"invalid argument "1q" for "--memory-reservation" flag"#)
        );
    }

    #[test]
    fn memory_swap_against_memory() {
        assert_eq!(
            err(&["--memory-swap", "1g", "img"]),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            err(&["-m", "1g", "--memory-swap", "512m", "img"]),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert!(run(&["-m", "512m", "--memory-swap", "512m", "img"]).is_ok());
        assert!(run(&["--memory-swap", "-1", "img"]).is_ok());
    }

    #[test]
    fn cpus_are_exact_nano_cpus() {
        let cases: [(&str, i64); 8] = [
            ("1", 1_000_000_000),
            ("1.5", 1_500_000_000),
            ("0.001", 1_000_000),
            (".5", 500_000_000),
            ("1/4", 250_000_000),
            ("2e-1", 200_000_000),
            ("0.000000001", 1),
            ("1000", 1_000_000_000_000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_cpus(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".to_string())
        );
        assert_eq!(parse_cpus("1/3"), Err("value is too precise".to_string()));
        for bad in ["abc", "", "1/0", "1.2.3", "e5", "1e", "--1", "0x1"] {
            assert_eq!(
                parse_cpus(bad),
                Err(format!("failed to parse {bad} as a rational number")),
                "{bad}"
            );
        }
        assert!(parse_cpus("1e30").is_err());
        assert!(parse_cpus("99999999999999999999999999999999999999999999").is_err());
        assert_eq!(
            ok(&["--cpus", "2.5", "img"]).host_config.nano_cpus,
            2_500_000_000
        );
        assert_eq!(
            err(&["--cpus", "x", "img"]),
            r#"invalid argument "x" for "--cpus" flag: failed to parse x as a rational number"#
        );
    }

    #[test]
    fn ints_read_as_pflag_reads_them() {
        assert_eq!(go_int("1024"), Ok(1024));
        assert_eq!(go_int("0x10"), Ok(16));
        assert_eq!(go_int("010"), Ok(8));
        assert_eq!(go_int("0b11"), Ok(3));
        assert_eq!(go_int("1_000"), Ok(1000));
        assert_eq!(go_int("-1"), Ok(-1));
        assert_eq!(go_int("+7"), Ok(7));
        assert_eq!(go_int("-9223372036854775808"), Ok(i64::MIN));
        for bad in ["", "x", "1_", "_1", "1__0", "08", "0x", "1.5", "-"] {
            assert_eq!(
                go_int(bad),
                Err(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    go_quote(bad)
                )),
                "{bad}"
            );
        }
        assert_eq!(
            go_int("9223372036854775808"),
            Err(
                "strconv.ParseInt: parsing \"9223372036854775808\": value out of range".to_string()
            )
        );
        let h = ok(&[
            "-c",
            "512",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "-1",
            "--pids-limit",
            "-1",
            "img",
        ])
        .host_config;
        assert_eq!(h.cpu_shares, 512);
        assert_eq!(h.cpu_period, 100_000);
        assert_eq!(h.cpu_quota, -1);
        assert_eq!(h.pids_limit, Some(-1));
        assert_eq!(
            err(&["--cpu-shares", "many", "img"]),
            r#"invalid argument "many" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "many": invalid syntax"#
        );
        assert!(
            err(&["--pids-limit", "1e3", "img"])
                .starts_with(r#"invalid argument "1e3" for "--pids-limit" flag"#)
        );
    }

    #[test]
    fn durations_read_as_go_reads_them() {
        let cases: [(&str, i64); 9] = [
            ("0", 0),
            ("1s", 1_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("300ms", 300_000_000),
            ("1\u{b5}s", 1_000),
            ("2h", 7_200_000_000_000),
            ("-1s", -1_000_000_000),
            (".5m", 30_000_000_000),
        ];
        for (s, want) in cases {
            assert_eq!(go_duration(s), Ok(want), "{s}");
        }
        assert_eq!(
            go_duration("x"),
            Err("time: invalid duration \"x\"".to_string())
        );
        assert_eq!(
            go_duration(""),
            Err("time: invalid duration \"\"".to_string())
        );
        assert_eq!(
            go_duration("1"),
            Err("time: missing unit in duration \"1\"".to_string())
        );
        assert_eq!(
            go_duration("1x"),
            Err("time: unknown unit \"x\" in duration \"1x\"".to_string())
        );
        assert_eq!(
            go_duration("1s-1s"),
            Err("time: unknown unit \"s-\" in duration \"1s-1s\"".to_string())
        );
        assert_eq!(
            go_duration("-"),
            Err("time: invalid duration \"-\"".to_string())
        );
        assert_eq!(
            go_duration("9999999999h"),
            Err("time: invalid duration \"9999999999h\"".to_string())
        );
    }

    #[test]
    fn healthcheck() {
        let h = ok(&[
            "--health-cmd",
            "curl -f localhost",
            "--health-interval",
            "30s",
            "--health-timeout",
            "5s",
            "--health-retries",
            "3",
            "--health-start-period",
            "1m",
            "--health-start-interval",
            "2s",
            "img",
        ])
        .config
        .healthcheck
        .expect("a healthcheck");
        assert_eq!(h.test, Some(strings(&["CMD-SHELL", "curl -f localhost"])));
        assert_eq!(h.interval, 30_000_000_000);
        assert_eq!(h.timeout, 5_000_000_000);
        assert_eq!(h.retries, 3);
        assert_eq!(h.start_period, 60_000_000_000);
        assert_eq!(h.start_interval, 2_000_000_000);
        let h = ok(&["--no-healthcheck", "img"]).config.healthcheck;
        assert_eq!(h.and_then(|h| h.test), Some(strings(&["NONE"])));
        // Only an interval: the image's test stays (no Test sent).
        let h = ok(&["--health-interval", "1s", "img"])
            .config
            .healthcheck
            .expect("some");
        assert_eq!(h.test, None);
        assert_eq!(h.interval, 1_000_000_000);
        assert_eq!(ok(&["--health-cmd", "", "img"]).config.healthcheck, None);
        assert_eq!(
            err(&["--no-healthcheck", "--health-cmd", "x", "img"]),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(
            err(&["--health-interval", "-1s", "img"]),
            "--health-interval cannot be negative"
        );
        assert_eq!(
            err(&["--health-retries", "-1", "img"]),
            "--health-retries cannot be negative"
        );
        assert_eq!(
            err(&["--health-timeout", "5", "img"]),
            r#"invalid argument "5" for "--health-timeout" flag: time: missing unit in duration "5""#
        );
    }

    #[test]
    fn restart_policies() {
        let p = ok(&["--restart", "on-failure:3", "img"])
            .host_config
            .restart_policy;
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        let p = ok(&["--restart", "on-failure", "img"])
            .host_config
            .restart_policy;
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 0));
        for name in ["always", "unless-stopped", "no"] {
            assert_eq!(
                ok(&["--restart", name, "img"])
                    .host_config
                    .restart_policy
                    .name,
                name
            );
        }
        assert_eq!(
            ok(&["--restart=", "img"]).host_config.restart_policy.name,
            ""
        );
        assert_eq!(
            err(&["--restart", "always:3", "img"]),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            err(&["--restart", "no:-1", "img"]),
            "invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative"
        );
        assert_eq!(
            err(&["--restart", "on-failure:-1", "img"]),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert_eq!(
            err(&["--restart", ":1", "img"]),
            "invalid restart policy format: no policy provided before colon"
        );
        assert_eq!(
            err(&["--restart", "on-failure:x", "img"]),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            err(&["--restart", "always:2:3", "img"]),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            err(&["--restart", "sometimes", "img"]),
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
        assert_eq!(
            err(&["--rm", "--restart", "always", "img"]),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert!(
            ok(&["--rm", "--restart", "no", "img"])
                .host_config
                .auto_remove
        );
    }

    #[test]
    fn ulimits() {
        let u = ok(&[
            "--ulimit",
            "nproc=10",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "core=-1",
            "--ulimit",
            "nproc=20:30",
            "img",
        ])
        .host_config
        .ulimits
        .expect("ulimits");
        let got: Vec<(&str, i64, i64)> = u
            .iter()
            .map(|u| (u.name.as_str(), u.soft, u.hard))
            .collect();
        assert_eq!(
            got,
            [("core", -1, -1), ("nofile", 1024, 2048), ("nproc", 20, 30)]
        );
        let bad: [(&str, &str); 7] = [
            ("nofile", "invalid ulimit argument: nofile"),
            ("as=1", "invalid ulimit type: as"),
            (
                "nofile=a",
                "strconv.ParseInt: parsing \"a\": invalid syntax",
            ),
            (
                "nofile=1:b",
                "strconv.ParseInt: parsing \"b\": invalid syntax",
            ),
            (
                "nofile=2:1",
                "ulimit soft limit must be less than or equal to hard limit: 2 > 1",
            ),
            (
                "nofile=-1:5",
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 5",
            ),
            (
                "nofile=1:2:3",
                "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
            ),
        ];
        for (v, reason) in bad {
            assert_eq!(
                err(&["--ulimit", v, "img"]),
                format!("invalid argument \"{v}\" for \"--ulimit\" flag: {reason}")
            );
        }
    }

    #[test]
    fn devices() {
        let d = ok(&[
            "--device",
            "/dev/snd",
            "--device",
            "/dev/snd:rw",
            "--device",
            "/dev/a:/dev/b",
            "--device",
            "/dev/a:/dev/b:r",
            "--device",
            "/dev/x/../null",
            "img",
        ])
        .host_config
        .devices
        .expect("devices");
        let got: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|d| {
                (
                    d.path_on_host.as_str(),
                    d.path_in_container.as_str(),
                    d.cgroup_permissions.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/snd", "/dev/snd", "rwm"),
                ("/dev/snd", "/dev/snd", "rw"),
                ("/dev/a", "/dev/b", "rwm"),
                ("/dev/a", "/dev/b", "r"),
                ("/dev/null", "/dev/null", "rwm"),
            ]
        );
        let bad: [(&str, &str); 6] = [
            ("/dev/a:b", "b is not an absolute path"),
            ("/a:/b:/c:/d", "bad format for path: /a:/b:/c:/d"),
            (":/x", "bad format for path: :/x"),
            ("/dev/a:/dev/b:x", "bad mode specified: x"),
            ("/dev/a:rwmm", "rwmm is not an absolute path"),
            ("dev", "dev is not an absolute path"),
        ];
        for (v, want) in bad {
            assert_eq!(err(&["--device", v, "img"]), want, "{v}");
        }
    }

    #[test]
    fn publish_and_expose() {
        let b = ok(&[
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:9090:90/udp",
            "-p",
            "443",
            "-p",
            "[::1]:53:53/udp",
            "-p",
            "8000-8001:100-101",
            "-p",
            "7000-7010:70",
            "-p",
            "published=6000,target=60,protocol=sctp",
            "-p",
            "8081:80",
            "--expose",
            "3000-3001",
            "--expose",
            "80",
            "img",
        ]);
        assert_eq!(
            b.host_config.port_bindings,
            Some(json!({
                "100/tcp": [{"HostIp": "", "HostPort": "8000"}],
                "101/tcp": [{"HostIp": "", "HostPort": "8001"}],
                "443/tcp": [{"HostIp": "", "HostPort": ""}],
                "53/udp": [{"HostIp": "::1", "HostPort": "53"}],
                "60/sctp": [{"HostIp": "", "HostPort": "6000"}],
                "70/tcp": [{"HostIp": "", "HostPort": "7000-7010"}],
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
                "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}],
            }))
        );
        let exposed: Vec<String> = b
            .config
            .exposed_ports
            .expect("exposed")
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            exposed,
            strings(&[
                "100/tcp", "101/tcp", "3000/tcp", "3001/tcp", "443/tcp", "53/udp", "60/sctp",
                "70/tcp", "80/tcp", "90/udp"
            ])
        );
        let bad: [(&str, &str); 8] = [
            ("80/xyz", "invalid proto: xyz"),
            ("a:80", "invalid hostPort: a"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            // nat finds no protocol before it finds no port.
            ("8080:", "invalid proto: "),
            ("8080:x", "invalid containerPort: x"),
            ("70000", "invalid containerPort: 70000"),
            (
                "80-82:90-91",
                "invalid ranges specified for container and host Ports: 90-91 and 80-82",
            ),
            (
                "published=1,bad",
                "invalid publish opts format (should be name=value but got 'bad')",
            ),
        ];
        for (v, want) in bad {
            assert_eq!(err(&["-p", v, "img"]), want, "{v}");
        }
        assert!(err(&["-p", "[::1:80:80", "img"]).starts_with("invalid IP address [::1"));
        let bad_expose: [(&str, &str); 5] = [
            (":", "invalid port format for --expose: :"),
            ("8080:9090", "invalid port format for --expose: 8080:9090"),
            (
                "/tcp",
                "invalid range format for --expose: /tcp, error: empty string specified for ports",
            ),
            (
                "NaN/tcp",
                "invalid range format for --expose: NaN/tcp, error: strconv.ParseUint: parsing \"NaN\": invalid syntax",
            ),
            (
                "1234567890-8080/tcp",
                "invalid range format for --expose: 1234567890-8080/tcp, error: strconv.ParseUint: parsing \"1234567890\": value out of range",
            ),
        ];
        for (v, want) in bad_expose {
            assert_eq!(err(&["--expose", v, "img"]), want, "{v}");
        }
    }

    #[test]
    fn volumes_binds_and_anonymous() {
        let cwd = std::env::current_dir().expect("cwd");
        let b = ok(&[
            "-v",
            "/host:/ctr:ro",
            "-v",
            "named:/data",
            "-v",
            "/anon",
            "-v",
            "./rel:/rel",
            "-v",
            "/host:/ctr:ro",
            "-v",
            "~/x:/y",
            "-v",
            "a:/drive",
            "img",
        ]);
        assert_eq!(
            b.host_config.binds,
            Some(vec![
                "/host:/ctr:ro".to_string(),
                "named:/data".to_string(),
                format!("{}/rel:/rel", cwd.display()),
                "~/x:/y".to_string(),
            ])
        );
        let vols: Vec<String> = b.config.volumes.expect("volumes").into_keys().collect();
        // `a:/drive` reads as a Windows drive path, an anonymous volume: as docker.
        assert_eq!(vols, strings(&["/anon", "a:/drive"]));
        assert_eq!(err(&["-v", "", "img"]), "invalid empty volume spec");
        assert_eq!(
            err(&["-v", "/a::/b", "img"]),
            "invalid spec: /a::/b: empty section between colons"
        );
        assert_eq!(
            err(&["-v", "/a:/b:ro:x", "img"]),
            "invalid spec: /a:/b:ro:x: too many colons"
        );
        assert_eq!(
            parse_volume_spec("c:/x:/y").expect("parses"),
            VolumeSpec {
                source: "c:/x".to_string(),
                target: "/y".to_string(),
                bind: true
            }
        );
        assert_eq!(
            parse_volume_spec("vol:/d:nocopy").expect("parses"),
            VolumeSpec {
                source: "vol".to_string(),
                target: "/d".to_string(),
                bind: false
            }
        );
    }

    #[test]
    fn tmpfs_and_sysctls() {
        let h = ok(&[
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/tmp:rw,size=64m",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=1",
            "img",
        ])
        .host_config;
        let tmpfs = h.tmpfs.expect("tmpfs");
        assert_eq!(tmpfs.get("/run").map(String::as_str), Some(""));
        assert_eq!(tmpfs.get("/tmp").map(String::as_str), Some("rw,size=64m"));
        let sysctls = h.sysctls.expect("sysctls");
        assert_eq!(
            sysctls.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        assert_eq!(sysctls.len(), 2);
        for bad in ["kernel.pid_max=1", "net.core", "=1"] {
            assert_eq!(
                err(&["--sysctl", bad, "img"]),
                format!(
                    "invalid argument \"{bad}\" for \"--sysctl\" flag: sysctl '{bad}' is not allowed"
                )
            );
        }
    }

    #[test]
    fn mounts_in_docker_csv() {
        let cwd = std::env::current_dir().expect("cwd");
        let m = ok(&[
            "--mount",
            "type=bind,source=/a,target=/b,readonly,bind-propagation=rshared",
            "--mount",
            "type=volume,src=vol,dst=/data,volume-nocopy,volume-opt=o=size=1g,volume-label=k=v,volume-subpath=sub,volume-driver=local",
            "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770",
            "--mount",
            "target=/anon",
            "--mount",
            "type=bind,src=./here,\"target=/with,comma\",ro=false",
            "--mount",
            "type=image,src=img,target=/i,image-subpath=usr",
            "img",
        ])
        .host_config
        .mounts
        .expect("mounts");
        let v = serde_json::to_value(&m).expect("json");
        assert_eq!(
            v,
            json!([
                {"Target": "/b", "Source": "/a", "Type": "bind", "ReadOnly": true,
                 "BindOptions": {"Propagation": "rshared"}},
                {"Target": "/data", "Source": "vol", "Type": "volume",
                 "VolumeOptions": {"NoCopy": true, "Labels": {"k": "v"}, "Subpath": "sub",
                   "DriverConfig": {"Name": "local", "Options": {"o": "size=1g"}}}},
                {"Target": "/t", "Type": "tmpfs",
                 "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}},
                {"Target": "/anon", "Type": "volume"},
                {"Target": "/with,comma", "Source": format!("{}/here", cwd.display()), "Type": "bind"},
                {"Target": "/i", "Source": "img", "Type": "image", "ImageOptions": {"Subpath": "usr"}},
            ])
        );
        let bad: [(&str, &str); 13] = [
            ("type=bind,src=/a", "target is required"),
            ("type=,target=/x", "type is required"),
            (
                "type=tmpfs,target=/x,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'tmpfs'",
            ),
            (
                "type=volume,target=/x,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "target=/x,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "target=/x,foo",
                "invalid field 'foo' must be a key=value pair",
            ),
            ("target=/x,bar=1", "unexpected key 'bar' in 'bar=1'"),
            ("target=/x,RO=maybe", "invalid value for ro: maybe"),
            (
                "type=tmpfs,target=/x,tmpfs-size=big",
                "invalid value for tmpfs-size: big",
            ),
            (
                "type=tmpfs,target=/x,tmpfs-mode=789",
                "invalid value for tmpfs-mode: 789",
            ),
            (
                "type=bind,src=/a,target=/x,bind-recursive=readonly",
                "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction",
            ),
            (
                "target=/x\"y",
                "parse error on line 1, column 10: bare \" in non-quoted field",
            ),
            ("", "EOF"),
        ];
        for (v, reason) in bad {
            assert_eq!(
                err(&["--mount", v, "img"]),
                format!(
                    "invalid argument {} for \"--mount\" flag: {reason}",
                    go_quote(v)
                ),
                "{v}"
            );
        }
    }

    #[test]
    fn csv_records() {
        assert_eq!(csv_record("a,b,c"), Ok(strings(&["a", "b", "c"])));
        assert_eq!(csv_record("a,,"), Ok(strings(&["a", "", ""])));
        assert_eq!(
            csv_record("\"a,b\",\"c\"\"d\""),
            Ok(strings(&["a,b", "c\"d"]))
        );
        assert_eq!(csv_record("\n\na,b\nc,d"), Ok(strings(&["a", "b"])));
        assert_eq!(csv_record("\"a\nb\",c"), Ok(strings(&["a\nb", "c"])));
        assert_eq!(
            csv_record("\"ab\"c"),
            Err(
                "parse error on line 1, column 4: extraneous or missing \" in quoted-field"
                    .to_string()
            )
        );
        assert!(csv_record("\"open").is_err());
        assert_eq!(csv_record(""), Err("EOF".to_string()));
    }

    #[test]
    fn dns_hosts_and_networks() {
        let h = ok(&[
            "--dns",
            "8.8.8.8",
            "--dns",
            " ::ffff:1.2.3.4 ",
            "--dns",
            "0:0::1",
            "--dns-search",
            "example.com.",
            "--dns-search",
            ".",
            "--add-host",
            "db:10.0.0.2",
            "--add-host",
            "v6=[::1]",
            "--add-host",
            "gw:host-gateway",
            "--net",
            "host",
            "img",
        ])
        .host_config;
        assert_eq!(h.dns, Some(strings(&["8.8.8.8", "1.2.3.4", "::1"])));
        assert_eq!(h.dns_search, Some(strings(&["example.com", "."])));
        assert_eq!(
            h.extra_hosts,
            Some(strings(&["db:10.0.0.2", "v6:::1", "gw:host-gateway"]))
        );
        assert_eq!(h.network_mode, "host");
        assert_eq!(
            err(&["--dns", "1.2.3", "img"]),
            r#"invalid argument "1.2.3" for "--dns" flag: IP address is not correctly formatted: 1.2.3"#
        );
        assert_eq!(
            err(&["--dns-search", "-bad-", "img"]),
            r#"invalid argument "-bad-" for "--dns-search" flag: -bad- is not a valid domain"#
        );
        assert!(err(&["--dns-search", "123", "img"]).ends_with("123 is not a valid domain"));
        assert_eq!(
            err(&["--add-host", "nohost", "img"]),
            r#"invalid argument "nohost" for "--add-host" flag: bad format for add-host: "nohost""#
        );
        assert_eq!(
            err(&["--add-host", "h:notanip", "img"]),
            r#"invalid argument "h:notanip" for "--add-host" flag: invalid IP address in add-host: "notanip""#
        );
        let b = ok(&["--network", "a", "--network", "b", "img"]);
        assert_eq!(b.host_config.network_mode, "a");
        assert_eq!(
            b.networking_config,
            Some(json!({"EndpointsConfig": {"a": {}, "b": {}}}))
        );
        assert_eq!(
            err(&["--network", "a", "--network", "a", "img"]),
            r#"network "a" is specified multiple times"#
        );
        assert_eq!(
            err(&["--network", "host", "--network", "mine", "img"]),
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
        );
    }

    #[test]
    fn namespace_modes() {
        let h = ok(&[
            "--pid",
            "container:db",
            "--uts",
            "host",
            "--userns",
            "host",
            "--cgroupns",
            "private",
            "img",
        ])
        .host_config;
        assert_eq!(h.pid_mode, "container:db");
        assert_eq!(h.uts_mode, "host");
        assert_eq!(h.userns_mode, "host");
        assert_eq!(h.cgroupns_mode, "private");
        assert_eq!(
            err(&["--pid", "container:", "img"]),
            "--pid: invalid PID mode"
        );
        assert_eq!(err(&["--pid", "private", "img"]), "--pid: invalid PID mode");
        assert_eq!(err(&["--uts", "private", "img"]), "--uts: invalid UTS mode");
        assert_eq!(
            err(&["--userns", "keep-id", "img"]),
            "--userns: invalid USER mode"
        );
        assert_eq!(
            err(&["--cgroupns", "yes", "img"]),
            "--cgroupns: invalid CGROUP mode"
        );
    }

    #[test]
    fn logging() {
        let l = ok(&[
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=10m",
            "--log-opt",
            "max-file=3",
            "img",
        ])
        .host_config
        .log_config;
        assert_eq!(l.kind, "json-file");
        assert_eq!(l.config.get("max-size").map(String::as_str), Some("10m"));
        assert_eq!(l.config.len(), 2);
        assert_eq!(
            err(&["--log-driver", "none", "--log-opt", "a=b", "img"]),
            "invalid logging opts for driver none"
        );
    }

    #[test]
    fn security_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("profile.json");
        std::fs::write(
            &f,
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"names\": [ \"a b\", \"c\\\"d\" ],\n  \"n\": 1.50\n}\n",
        )
        .expect("write");
        let path = f.to_str().expect("utf-8");
        let seccomp = format!("seccomp={path}");
        let h = ok(&[
            "--security-opt",
            &seccomp,
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "label:disable",
            "--security-opt",
            "systempaths=unconfined",
            "img",
        ])
        .host_config;
        assert_eq!(
            h.security_opt,
            Some(strings(&[
                r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","names":["a b","c\"d"],"n":1.50}"#,
                "seccomp=unconfined",
                "no-new-privileges",
                "label:disable",
            ]))
        );
        assert_eq!(h.masked_paths, Some(vec![]));
        assert_eq!(h.readonly_paths, Some(vec![]));
        assert_eq!(
            err(&["--security-opt", "apparmor", "img"]),
            r#"Invalid --security-opt: "apparmor""#
        );
        assert_eq!(
            err(&["--security-opt", "apparmor=", "img"]),
            r#"Invalid --security-opt: "apparmor=""#
        );
        let missing = dir.path().join("nope.json");
        let missing = missing.to_str().expect("utf-8");
        assert_eq!(
            err(&["--security-opt", &format!("seccomp={missing}"), "img"]),
            format!(
                "opening seccomp profile ({missing}) failed: open {missing}: no such file or directory"
            )
        );
        std::fs::write(&f, "{not json").expect("write");
        assert!(
            err(&["--security-opt", &seccomp, "img"]).starts_with(&format!(
                "compacting json for seccomp profile ({path}) failed: "
            ))
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
        assert_eq!(go_quote("ü"), "\"ü\"");
    }

    #[test]
    fn path_cleaning() {
        for (p, want) in [
            ("", "."),
            ("/", "/"),
            ("/a/../..", "/"),
            ("a/../..", ".."),
            ("./a//b/./c/", "a/b/c"),
            ("/dev/x/../null", "/dev/null"),
        ] {
            assert_eq!(clean_path(p), want, "{p}");
        }
    }

    /// Odd input for every parser gives an error or a value, never a panic.
    #[test]
    fn odd_input_never_panics() {
        let odd = [
            "",
            ":",
            "::",
            ":::",
            "=",
            "==",
            ",",
            "\"",
            "\"\"",
            "-",
            "--",
            ".",
            "..",
            "/",
            "\0",
            "ü",
            "üü:ü",
            "[",
            "]",
            "[]",
            "[::1",
            "1-",
            "-1",
            "0x",
            "1e",
            "e",
            "/",
            "a/b/c",
            "9999999999999999999999999",
            "-9999999999999999999999",
            "1.",
            ".1",
            "1/",
            "/1",
            "\u{feff}",
            "a=b=c",
            "a:b:c:d:e",
            "type=bind,\"",
            "\n",
            "\r\n",
            "1ü",
            "ü1",
            "1 ",
            " 1",
            "1 k",
            "0b",
            "0o8",
            "1_",
            "µs",
            "1µ",
            ".s",
            "1.s",
            "+",
            "+-1",
        ];
        for s in odd {
            let _ = ram_in_bytes(s);
            let _ = parse_cpus(s);
            let _ = go_int(s);
            let _ = go_uint10(s, 16);
            let _ = go_duration(s);
            let _ = go_float(s);
            let _ = parse_ulimit(s);
            let _ = validate_ip(s);
            let _ = validate_dns_search(s);
            let _ = validate_extra_host(s);
            let _ = validate_sysctl(s);
            let _ = validate_label(s);
            let _ = csv_record(s);
            let _ = parse_mount(s);
            let _ = parse_volume_spec(s);
            let _ = parse_publish(&[s.to_string()]);
            let _ = parse_port_spec(s);
            let _ = expose(s, &mut Vec::new());
            let _ = parse_device(s);
            let _ = parse_restart(s);
            let _ = parse_kv(s.as_bytes(), Some(&lookup));
            let _ = compact_json(s.as_bytes());
            let _ = clean_path(s);
            let _ = go_quote(s);
            for flag in [
                "-a",
                "-e",
                "-l",
                "-m",
                "--memory-swap",
                "--cpus",
                "-c",
                "--ulimit",
                "--restart",
                "--health-interval",
                "--health-retries",
                "--device",
                "--tmpfs",
                "-v",
                "--mount",
                "-p",
                "--expose",
                "--add-host",
                "--dns",
                "--dns-search",
                "--sysctl",
                "--pid",
                "--security-opt",
                "--network",
                "--stop-timeout",
                "--shm-size",
            ] {
                let _ = run(&[flag, s, "img"]);
            }
        }
    }
}
