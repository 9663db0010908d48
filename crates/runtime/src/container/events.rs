//! `events`: resource usage of a container, once (`--stats`) or as a stream
//! with OOM notices.

use std::time::Duration;

use serde::Serialize;

use super::{Runtime, wait_exit};
use crate::cgroups::Stats;
use crate::state::Status;
use crate::{Error, Result};

/// One event, as runc prints it.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// `stats` or `oom`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container.
    pub id: &'a str,
    /// The counters (for `stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// The counters of a container that is not stopped.
pub fn stats_event(rt: &Runtime, id: &str) -> Result<String> {
    let c = rt.load(id)?;
    if c.status() == Status::Stopped {
        return Err(Error::WrongState(format!(
            "container with id {id} is not running"
        )));
    }
    let event = Event {
        kind: "stats",
        id,
        data: Some(c.state.cgroup.stats()),
    };
    Ok(serde_json::to_string(&event).unwrap_or_default())
}

/// Emits a stats event every `interval`, and an `oom` event when the kernel
/// kills a process of the container for memory, until the container stops
/// or `emit` returns false.
pub fn events(
    rt: &Runtime,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&str) -> bool,
) -> Result<()> {
    let c = rt.load(id)?;
    if c.status() == Status::Stopped {
        return Err(Error::WrongState(format!(
            "container with id {id} is not running"
        )));
    }
    let Some(pidfd) = c.init_pidfd() else {
        return Err(Error::WrongState(format!(
            "container with id {id} is not running"
        )));
    };
    let mut ooms = c.state.cgroup.oom_kills();
    loop {
        if wait_exit(&pidfd, interval) {
            return Ok(());
        }
        let now = c.state.cgroup.oom_kills();
        if now > ooms {
            ooms = now;
            let oom = Event {
                kind: "oom",
                id,
                data: None,
            };
            if !emit(&serde_json::to_string(&oom).unwrap_or_default()) {
                return Ok(());
            }
        }
        let event = Event {
            kind: "stats",
            id,
            data: Some(c.state.cgroup.stats()),
        };
        if !emit(&serde_json::to_string(&event).unwrap_or_default()) {
            return Ok(());
        }
    }
}
