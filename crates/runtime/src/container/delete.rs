//! `delete`: remove a container's resources (its cgroup and its state) and
//! run the poststop hooks.

use std::os::fd::AsFd;
use std::time::Duration;

use super::{Container, Runtime, validate_id, wait_exit};
use crate::hooks::{self, HookKind};
use crate::state::Status;
use crate::{Error, Result, io_err, sys};

/// Deletes a container. A created container is deleted without `force`
/// (runc does the same); a running or paused one needs `force`, which kills
/// it first.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    validate_id(id)?;
    let dir = rt.dir_of(id);
    let c = match rt.load(id) {
        Ok(c) => c,
        Err(Error::NotFound(_)) if dir.is_dir() => {
            // A directory without state: an interrupted create.
            return std::fs::remove_dir_all(&dir)
                .map_err(io_err(format!("cannot remove {}", dir.display())));
        }
        Err(Error::Io { .. }) if dir.is_dir() => {
            tracing::warn!("the state of container {id} is unreadable; removing its directory");
            return std::fs::remove_dir_all(&dir)
                .map_err(io_err(format!("cannot remove {}", dir.display())));
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(&c)?,
        Status::Running | Status::Paused if force => kill_and_wait(&c)?,
        Status::Running | Status::Paused => {
            return Err(Error::WrongState(format!(
                "cannot delete container {id} that is not stopped: {status} (use --force to kill it)"
            )));
        }
    }
    destroy(&c)
}

/// Kills the container's processes and waits for the init to end.
fn kill_and_wait(c: &Container) -> Result<()> {
    if !c.state.own_pid_namespace {
        // Without its own pid namespace the container's other processes do
        // not die with its init.
        let _ = c.state.cgroup.signal_all(libc::SIGKILL);
    }
    let Some(pidfd) = c.init_pidfd() else {
        return Ok(());
    };
    sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL)
        .map_err(io_err("unable to signal init"))?;
    if c.state.cgroup.is_frozen() {
        c.state.cgroup.set_frozen(false)?;
    }
    if !wait_exit(&pidfd, Duration::from_secs(10)) {
        return Err(Error::WrongState(
            "container init still running 10 s after SIGKILL".into(),
        ));
    }
    Ok(())
}

/// Removes the cgroup and the state directory, then runs the poststop hooks
/// (whose failures are only warnings, as the specification says).
pub(crate) fn destroy(c: &Container) -> Result<()> {
    if let Some(base) = c.state.host_mounts {
        crate::init::rootfs::unmount_host_rootfs(&c.state.rootfs, base);
    }
    c.state.cgroup.destroy()?;
    let spec = c.spec().ok();
    std::fs::remove_dir_all(&c.dir)
        .map_err(io_err(format!("cannot remove {}", c.dir.display())))?;
    if let Some(spec) = spec {
        let poststop = HookKind::Poststop.of(spec.hooks().as_ref());
        if !poststop.is_empty() {
            let state = c.state.hook_state(Status::Stopped, None).to_json();
            if let Err(e) = hooks::run(HookKind::Poststop, poststop, &state, Some(&c.state.bundle))
            {
                tracing::warn!("{e}");
            }
        }
    }
    Ok(())
}
