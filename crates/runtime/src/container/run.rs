//! `run`: create, start and, in the foreground, wait for the container and
//! delete it.

use super::wait::{ForegroundIo, take_signals, wait_foreground};
use super::{CreateOptions, Runtime, create, delete::destroy, start::start_container};
use crate::Result;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// What `create` needs.
    pub create: CreateOptions,
    /// Return once the program started (`--detach`).
    pub detach: bool,
    /// Keep the container after it ends (`--keep`).
    pub keep: bool,
    /// Do not become a child subreaper (`--no-subreaper`).
    pub no_subreaper: bool,
}

/// Runs a container; returns its exit code (0 when detached).
pub fn run(rt: &Runtime, opts: &RunOptions) -> Result<i32> {
    if opts.detach {
        let created = create(rt, &opts.create)?;
        if let Err(e) = start_container(&created.container) {
            let _ = super::delete(rt, &opts.create.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    if !opts.no_subreaper {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
    let signals = take_signals()?;
    let mut create_opts = opts.create.clone();
    create_opts.console_to_caller = true;
    let created = create(rt, &create_opts)?;
    if let Err(e) = start_container(&created.container) {
        let _ = super::delete(rt, &opts.create.id, true);
        return Err(e);
    }
    let pid = created.container.state.pid;
    let code = wait_foreground(
        pid,
        &created.pidfd,
        ForegroundIo {
            console: created.console,
            signals,
        },
    )?;
    if !opts.keep {
        destroy(&created.container)?;
    }
    Ok(code)
}
