//! `pause` and `resume`: freeze and thaw every process of a container.

use super::Runtime;
use crate::state::Status;
use crate::{Error, Result};

/// Freezes a running (or created) container.
pub fn pause(rt: &Runtime, id: &str) -> Result<()> {
    let c = rt.load(id)?;
    match c.status() {
        Status::Running | Status::Created => Ok(c.state.cgroup.set_frozen(true)?),
        Status::Paused => Err(Error::WrongState("container paused".into())),
        _ => Err(Error::WrongState("container not running".into())),
    }
}

/// Thaws a paused container.
pub fn resume(rt: &Runtime, id: &str) -> Result<()> {
    let c = rt.load(id)?;
    match c.status() {
        Status::Paused => Ok(c.state.cgroup.set_frozen(false)?),
        _ => Err(Error::WrongState("container not paused".into())),
    }
}
