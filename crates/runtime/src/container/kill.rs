//! `kill`: signal a container's init, or with `all` every process in it.

use std::os::fd::AsFd;

use super::Runtime;
use crate::state::Status;
use crate::{Error, Result, io_err, sys};

/// Sends `signal` to the container.
pub fn kill(rt: &Runtime, id: &str, signal: i32, all: bool) -> Result<()> {
    let c = rt.load(id)?;
    let status = c.status();
    if all {
        if status == Status::Stopped && !c.state.cgroup.exists() {
            return Ok(());
        }
        c.state.cgroup.signal_all(signal)?;
        return Ok(());
    }
    if matches!(status, Status::Stopped) {
        return Err(Error::WrongState("container not running".into()));
    }
    let Some(pidfd) = c.init_pidfd() else {
        return Err(Error::WrongState("container not running".into()));
    };
    sys::pidfd_send_signal(pidfd.as_fd(), signal).map_err(io_err("unable to signal init"))?;
    if status == Status::Paused && signal == libc::SIGKILL {
        // A frozen process only dies once thawed.
        c.state.cgroup.set_frozen(false)?;
    }
    Ok(())
}
