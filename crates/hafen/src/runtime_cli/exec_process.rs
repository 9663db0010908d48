//! `exec`'s flags, and the `process` they describe: either a complete
//! process file (`--process`), or the container's own process with the
//! command and the overrides given on the command line (runc's rules).

use std::path::PathBuf;

use clap::Args;
use hafen_oci::runtime::{Capabilities, Capability, LinuxCapabilities, Process};
use hafen_runtime::{Error, Runtime};

/// `exec`'s flags.
#[derive(Debug, Args)]
pub struct ExecFlags {
    /// Unix socket that receives the terminal's master fd (with -t and -d).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// The user, as UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<i64>,
    /// A JSON file with the complete process (the other process flags are
    /// then ignored).
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process started.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label for the process.
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile for the process.
    #[arg(long)]
    apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability; repeatable.
    #[arg(short, long = "cap", value_name = "CAP")]
    cap: Vec<String>,
    /// Pass this many extra fds (after stdio).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Accepted for compatibility; sub-cgroups are not supported.
    #[arg(long, hide = true)]
    cgroup: Vec<String>,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn bad(message: String) -> Error {
    Error::WrongState(message)
}

impl ExecFlags {
    /// The process to start.
    pub fn process(&self, rt: &Runtime) -> Result<Process, Error> {
        if let Some(path) = &self.process {
            let text = std::fs::read(path).map_err(|e| Error::Io {
                what: format!("cannot read {}", path.display()),
                source: e,
            })?;
            return serde_json::from_slice(&text)
                .map_err(|e| bad(format!("{}: invalid process: {e}", path.display())));
        }
        if self.command.is_empty() {
            return Err(bad(
                "process args cannot be empty: give a command after the container id".into(),
            ));
        }
        let container = rt.load(&self.id)?;
        let spec = container.spec()?;
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(self.command.clone()));
        p.set_terminal(Some(self.tty));
        if let Some(cwd) = &self.cwd {
            p.set_cwd(cwd.clone());
        }
        let mut env = p.env().clone().unwrap_or_default();
        for entry in &self.env {
            let key = entry.split('=').next().unwrap_or(entry);
            match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
                Some(existing) => existing.clone_from(entry),
                None => env.push(entry.clone()),
            }
        }
        p.set_env(Some(env));
        if let Some(user) = &self.user {
            let (uid, gid) = match user.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (user.as_str(), None),
            };
            let uid: u32 = uid
                .parse()
                .map_err(|_| bad(format!("bad uid {uid:?}: --user takes UID[:GID] numbers")))?;
            p.user_mut().set_uid(uid);
            if let Some(g) = gid {
                let gid: u32 = g
                    .parse()
                    .map_err(|_| bad(format!("bad gid {g:?}: --user takes UID[:GID] numbers")))?;
                p.user_mut().set_gid(gid);
            }
        }
        if !self.additional_gids.is_empty() {
            let mut gids = p.user().additional_gids().clone().unwrap_or_default();
            for &g in &self.additional_gids {
                let g = u32::try_from(g)
                    .map_err(|_| bad(format!("additional-gids must be a positive number {g}")))?;
                gids.push(g);
            }
            p.user_mut().set_additional_gids(Some(gids));
        }
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(profile) = &self.apparmor {
            p.set_apparmor_profile(Some(profile.clone()));
        }
        if let Some(label) = &self.process_label {
            p.set_selinux_label(Some(label.clone()));
        }
        if !self.cap.is_empty() {
            let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
            for name in &self.cap {
                let cap: Capability =
                    serde_json::from_value(serde_json::Value::String(name.clone()))
                        .map_err(|_| bad(format!("unknown capability {name:?}")))?;
                // Added to every set, inheritable included, so that the
                // ambient capability can be raised for a non-root user too.
                let add = |set: &Option<Capabilities>| {
                    let mut updated = set.clone().unwrap_or_default();
                    updated.insert(cap);
                    Some(updated)
                };
                let (b, e, p_, i, a) = (
                    add(caps.bounding()),
                    add(caps.effective()),
                    add(caps.permitted()),
                    add(caps.inheritable()),
                    add(caps.ambient()),
                );
                caps.set_bounding(b)
                    .set_effective(e)
                    .set_permitted(p_)
                    .set_inheritable(i)
                    .set_ambient(a);
            }
            p.set_capabilities(Some(caps));
        }
        Ok(p)
    }
}

fn empty_caps() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(None)
        .set_effective(None)
        .set_permitted(None)
        .set_inheritable(None)
        .set_ambient(None);
    caps
}
