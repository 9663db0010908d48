//! `start`: release a created container's init to run its program.

use std::os::fd::AsFd;
use std::path::Path;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

use super::{Container, Runtime};
use crate::hooks::{self, HookKind};
use crate::state::{EXEC_SOCKET, Status};
use crate::sync::{Channel, StartReply, StartRequest};
use crate::{Error, Result, io_err, sys};

/// Connects to a container's start socket.
pub(crate) fn connect(dir: &Path) -> std::io::Result<Channel> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = crate::unix_addr::address_for(&dir.join(EXEC_SOCKET))?;
    rustix::net::connect(&fd, &addr.addr)?;
    Ok(Channel::from_fd(fd))
}

/// Starts a created container.
pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    start_container(&rt.load(id)?)
}

/// Starts a loaded container: the startContainer hooks and the program run
/// in the container; the poststart hooks here, after the program started.
pub(crate) fn start_container(c: &Container) -> Result<()> {
    match c.status() {
        Status::Created => {}
        Status::Running => {
            return Err(Error::WrongState(
                "cannot start an already running container".into(),
            ));
        }
        Status::Paused => {
            return Err(Error::WrongState(
                "cannot start a container in the paused state".into(),
            ));
        }
        Status::Stopped | Status::Creating => {
            return Err(Error::WrongState(
                "cannot start a container that has stopped".into(),
            ));
        }
    }
    let conn = connect(&c.dir).map_err(io_err("cannot reach the container's init"))?;
    let state = c
        .state
        .hook_state(Status::Created, Some(c.pid_inside()))
        .to_json();
    conn.send(&StartRequest::Start { state }, None)
        .map_err(io_err("cannot start the container"))?;
    let reply = conn
        .recv::<StartReply>()
        .map_err(io_err("reading the start reply"))?;
    let outcome = match reply {
        Some((StartReply::Executing, _)) => match conn.recv::<StartReply>() {
            Ok(None) => Ok(()),
            Ok(Some((StartReply::Error { message }, _))) => Err(Error::Child(message)),
            Ok(Some((StartReply::Executing, _))) => {
                Err(Error::Child("unexpected start reply".into()))
            }
            Err(e) => Err(io_err("reading the start reply")(e)),
        },
        Some((StartReply::Error { message }, _)) => Err(Error::Child(message)),
        None => Err(Error::ChildDied(
            "the container's init ended before it could start".into(),
        )),
    };
    outcome?;
    let _ = std::fs::remove_file(c.dir.join(EXEC_SOCKET));
    // Only the hooks: the whole configuration (with its seccomp profile)
    // is big to read, and a supervisor that starts containers stays small.
    let hooks = c.hooks()?;
    let poststart = HookKind::Poststart.of(hooks.as_ref());
    if !poststart.is_empty() {
        let state = c
            .state
            .hook_state(Status::Running, Some(c.state.pid))
            .to_json();
        if let Err(e) = hooks::run(
            HookKind::Poststart,
            poststart,
            &state,
            Some(&c.state.bundle),
        ) {
            // The specification: a failing poststart hook stops the container.
            if let Some(fd) = c.init_pidfd() {
                let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            }
            return Err(e.into());
        }
    }
    Ok(())
}
